// A provider answer carrying a NUL character, through core's Refunds onto each ledger: PostgreSQL
// text cannot hold one, so it is refused where the answer enters core, the same everywhere.
import { assert, describe, it } from "@effect/vitest"
import { Ledger, Provider, Providers, Refunds } from "@refundkit/core"
import { ProviderDeclined, UnexpectedResponse } from "@refundkit/core/RefundError"
import { Context, Effect, Layer, Schema } from "effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { pgSchema, tempDir } from "./support/databases.js"

const nul = "ref\u0000x"

const RequestSchema = Schema.Struct({ target: Schema.String })

// A toy plugin answering `submit` as given; by default with a NUL in its reference.
const toyProvider = (
  id: string,
  submit: Provider.Definition<typeof RequestSchema.Type, typeof RequestSchema.Encoded>["submit"] = () =>
    Effect.succeed({ status: "pending", providerStatus: "PROCESSING", providerReference: nul, references: { refundId: nul } })
) => Provider.make({
  id,
  displayName: "Toy",
  capabilities: {
    partialRefunds: true,
    maxTargetsPerCall: 1,
    statusQuery: true,
    webhooks: true,
    idempotentSubmit: true,
    updates: false,
    settlement: "money"
  },
  requestSchema: RequestSchema,
  describe: (request) => ({ targets: [{ target: request.target }] }),
  submit,
  status: () => Effect.succeed({ status: "succeeded", providerStatus: "DONE", references: { refundId: nul } }),
  webhook: () => Effect.succeed([{ providerReference: nul, dedupeKey: "d-1", outcome: { status: "succeeded", providerStatus: "DONE" } }])
})

const toy = toyProvider("toy")

const ledgers: ReadonlyArray<{ readonly name: string; readonly layer: Effect.Effect<Layer.Layer<Ledger.Ledger, unknown>, unknown, Scope.Scope> }> = [
  { name: "memory", layer: Effect.succeed(Ledger.layerMemory) },
  { name: "SQLite", layer: Effect.map(tempDir, (dir) => SqlLedger.layerSqlite(path.join(dir, "ledger.db"))) },
  { name: "PostgreSQL", layer: Effect.map(pgSchema, (url) => SqlLedger.layerPg(url)) }
]

describe("a provider answer with a NUL character", () => {
  for (const ledger of ledgers) {
    it.scopedLive(`is an UnexpectedResponse naming the field, and the refund is recorded unknown (${ledger.name})`, () =>
      Effect.gen(function*() {
        const stack = Refunds.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(toy)), Providers.layer)),
          Layer.provideMerge(yield* ledger.layer)
        )
        const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)
        // Asserted through booleans: a failure message quoting a NUL hangs vitest's reporter.
        const refusal = (effect: Effect.Effect<unknown, unknown>) =>
          Effect.match(effect, { onFailure: (e) => (e instanceof UnexpectedResponse ? e : undefined), onSuccess: () => undefined })
        const refused = yield* refusal(refunds.create({ provider: "toy", idempotencyKey: "nul", request: { target: "t-1" } }))
        assert.isTrue(refused !== undefined, "the submit's answer is refused")
        assert.strictEqual(refused?.path, "providerReference")
        assert.include(refused?.message, "NUL")
        assert.isFalse(refused?.message.includes("\u0000"))
        // Recorded (not left `requested` by a failed write), with the error: a person checks with the provider.
        const stored = (yield* refunds.list({ limit: 5 })).items[0]!
        assert.strictEqual(stored.status, "unknown")
        assert.strictEqual(stored.error?.code, "unexpected_response")
        assert.isTrue(stored.providerReference === undefined && stored.references.refundId === undefined, "nothing of the answer is stored")
        // A sync's answer is refused the same way, and changes nothing.
        assert.strictEqual((yield* refusal(refunds.sync(stored.id)))?.path, "references.refundId")
        assert.strictEqual((yield* refunds.get(stored.id)).status, "unknown")
        // So is a callback's, before its reference is looked up.
        assert.strictEqual((yield* refusal(refunds.webhook("toy", { headers: {}, body: "{}" })))?.path, "0.providerReference")
      }))
  }

  // A decline is an error, not an answer core checks field by field: its reason reaches the
  // history as the failure's event detail, which PostgreSQL could not store either.
  const decliner = toyProvider("decliner", () =>
    Effect.fail(new ProviderDeclined({ provider: "decliner", providerCode: "E1", reason: `card ${nul} closed`, action: "customer_action" })))
  for (const ledger of ledgers) {
    it.scopedLive(`a decline whose reason carries one is recorded failed, the character shown as U+FFFD in its history (${ledger.name})`, () =>
      Effect.gen(function*() {
        const stack = Refunds.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(decliner)), Providers.layer)),
          Layer.provideMerge(yield* ledger.layer)
        )
        const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)
        // A decline is a created refund that failed, not an error of `create`.
        const created = yield* Effect.either(refunds.create({ provider: "decliner", idempotencyKey: "nul-decline", request: { target: "t-2" } }))
        assert.isTrue(created._tag === "Right", `created, not ${created._tag === "Left" ? created.left._tag : ""}`)
        const stored = (yield* refunds.list({ limit: 5 })).items[0]!
        assert.isTrue(stored.status === "failed", "recorded failed, not left requested by a failed write")
        const detail = stored.events.at(-1)?.detail ?? ""
        assert.isTrue(detail.includes("card ref\uFFFDx closed") && !detail.includes("\u0000"), "the history keeps the reason, without the NUL")
      }))
  }
})
