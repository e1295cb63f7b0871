// A provider answer carrying a NUL character, through core's Refunds onto each ledger: PostgreSQL
// text cannot hold one, so where the answer enters core an identifier with one is refused and free
// text keeps it as U+FFFD, the same everywhere.
import { assert, describe, it } from "@effect/vitest"
import { Ledger, Provider, Providers, Refunds } from "@refundkit/core"
import { ProviderDeclined, UnexpectedResponse } from "@refundkit/core/RefundError"
import { Context, Effect, Layer, Option, Schema } from "effect"
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
    Effect.succeed({ status: "pending", providerStatus: "PROCESSING", providerReference: nul, references: { refundId: nul } }),
  webhook: Provider.Definition<typeof RequestSchema.Type, typeof RequestSchema.Encoded>["webhook"] = () =>
    Effect.succeed([{ providerReference: nul, dedupeKey: "d-1", outcome: { status: "succeeded", providerStatus: "DONE" } }])
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
  webhook
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
        // So is a callback's event, before its reference is looked up: it is answered as not recorded.
        const [event] = yield* refunds.webhook("toy", { headers: {}, body: "{}" })
        assert.isTrue(event?.applied === false && event.refused?.path === "0.providerReference", "the event is refused, naming its field")
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

  // A callback's events are checked one by one: an event whose reference has a NUL is not
  // recorded, and the next one, about a refund core knows, still applies. Its free text
  // (an item's message) keeps the NUL as U+FFFD.
  const batcher = toyProvider(
    "batcher",
    () => Effect.succeed({ status: "pending", providerStatus: "PROCESSING", providerReference: "ok-ref" }),
    () =>
      Effect.succeed([
        { providerReference: nul, dedupeKey: "d-1", outcome: { status: "failed", providerStatus: "DECLINED" } },
        { providerReference: "ok-ref", dedupeKey: "d-2", outcome: { status: "succeeded", providerStatus: "DONE", items: [{ target: "t-3", status: "succeeded", message: `paid ${nul}` }] } }
      ])
  )
  for (const ledger of ledgers) {
    it.scopedLive(`one callback event with one in an identifier refuses only itself (${ledger.name})`, () =>
      Effect.gen(function*() {
        const stack = Refunds.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(batcher)), Providers.layer)),
          Layer.provideMerge(yield* ledger.layer)
        )
        const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)
        const created = yield* refunds.create({ provider: "batcher", idempotencyKey: "nul-batch", request: { target: "t-3" } })
        assert.strictEqual(created.refund.status, "pending")
        const results = yield* refunds.webhook("batcher", { headers: {}, body: "{}" })
        assert.strictEqual(results.length, 2)
        assert.isTrue(results[0]!.applied === false && results[0]!.refused?.path === "0.providerReference", "the first event is refused, naming its field")
        assert.isFalse(results[0]!.reason?.includes("\u0000") ?? true, "the reason does not quote the NUL")
        assert.deepStrictEqual([results[1]!.applied, results[1]!.refundId], [true, created.refund.id])
        const stored = yield* refunds.get(created.refund.id)
        assert.strictEqual(stored.status, "succeeded")
        assert.isTrue(stored.items[0]?.message === "paid ref\uFFFDx", "the item's message keeps the NUL as U+FFFD")
        // The same callback again: the second event is a duplicate, the first still refused.
        const again = yield* refunds.webhook("batcher", { headers: {}, body: "{}" })
        assert.deepStrictEqual(again.map((r) => [r.applied, r.reason?.startsWith("not recorded") === true || r.reason === "duplicate callback"]), [[false, true], [false, true]])
        assert.strictEqual((yield* refunds.get(created.refund.id)).events.length, stored.events.length)
      }))
  }
})

// A caller's id or filter with a NUL (`GET /v1/refunds/a%00b` on the gateway): PostgreSQL refuses
// such a parameter outright, which was a ledger error (a 503) for what is only a miss.
describe("a lookup by a value with a NUL character", () => {
  for (const ledger of ledgers) {
    it.scopedLive(`finds nothing, as for any id no refund has (${ledger.name})`, () =>
      Effect.gen(function*() {
        const stack = Refunds.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(toyProvider("plain", () => Effect.succeed({ status: "succeeded", providerStatus: "DONE", providerReference: "r-1" })))), Providers.layer)),
          Layer.provideMerge(yield* ledger.layer)
        )
        const context = yield* Layer.build(stack)
        const refunds = Context.get(context, Refunds.Refunds)
        const store = Context.get(context, Ledger.Ledger)
        const created = yield* refunds.create({ provider: "plain", idempotencyKey: "k-1", request: { target: "t-1" } })
        // Asserted through tags and booleans: a failure message quoting a NUL hangs vitest's reporter.
        const tagOf = (effect: Effect.Effect<unknown, { readonly _tag: string }>) => Effect.match(effect, { onFailure: (e) => e._tag, onSuccess: () => "found" })
        assert.strictEqual(yield* tagOf(store.get(`${created.refund.id}\u0000`)), "RefundNotFound")
        assert.strictEqual(yield* tagOf(store.transition(`${created.refund.id}\u0000`, { to: "failed", source: "operator", at: new Date().toISOString() })), "RefundNotFound")
        assert.isTrue(Option.isNone(yield* store.findByKey("plain", "k-1\u0000")))
        assert.isTrue(Option.isNone(yield* store.findByReference("plain", "r-1\u0000")))
        assert.strictEqual((yield* store.list({ provider: "plain", target: "t-1\u0000", limit: 10 })).items.length, 0)
        assert.strictEqual((yield* store.list({ provider: "plain\u0000", limit: 10 })).items.length, 0)
        // The same lookups without the NUL find the refund.
        assert.strictEqual((yield* store.get(created.refund.id)).id, created.refund.id)
        assert.strictEqual((yield* store.list({ provider: "plain", target: "t-1", limit: 10 })).items.length, 1)
        assert.isTrue(Option.isSome(yield* store.findByReference("plain", "r-1")))
      }))
  }
})
