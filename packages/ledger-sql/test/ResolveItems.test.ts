// An operator's verdict (core's Refunds.resolve) settles the items the provider had not decided, and
// each ledger stores them so: read back by another process on the same database, not from a cache.
import { assert, describe, it } from "@effect/vitest"
import { Ledger, Provider, Providers, Refunds } from "@refundkit/core"
import { Context, Effect, Layer, Schema } from "effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { pgSchema, tempDir } from "./support/databases.js"

const RequestSchema = Schema.Struct({ targets: Schema.Array(Schema.String), refused: Schema.optional(Schema.String) })

// Like Airalo: every target "accepted for review", pending until the provider decides by email;
// `refused` names one the provider refused at once.
const toy = Provider.make({
  id: "toy",
  displayName: "Toy",
  capabilities: {
    partialRefunds: false,
    maxTargetsPerCall: 5,
    statusQuery: false,
    webhooks: false,
    idempotentSubmit: true,
    updates: false,
    settlement: "credits"
  },
  requestSchema: RequestSchema,
  describe: (request) => ({ targets: request.targets.map((target) => ({ target })) }),
  submit: (request) =>
    Effect.succeed({
      status: "pending",
      providerStatus: "accepted_for_review",
      items: request.targets.map((target) =>
        target === request.refused
          ? { target, status: "failed" as const, providerStatus: "refused", message: "already used" }
          : { target, status: "pending" as const, providerStatus: "accepted_for_review" }
      )
    })
})

// Each ledger, and a second one opened on the same storage (memory has no other reader: itself).
const ledgers: ReadonlyArray<{
  readonly name: string
  readonly open: Effect.Effect<{ readonly layer: Layer.Layer<Ledger.Ledger, unknown>; readonly reopen: Layer.Layer<Ledger.Ledger, unknown> }, unknown, Scope.Scope>
}> = [
  {
    name: "SQLite",
    open: Effect.map(tempDir, (dir) => ({ layer: SqlLedger.layerSqlite(path.join(dir, "ledger.db")), reopen: SqlLedger.layerSqlite(path.join(dir, "ledger.db")) }))
  },
  { name: "PostgreSQL", open: Effect.map(pgSchema, (url) => ({ layer: SqlLedger.layerPg(url), reopen: SqlLedger.layerPg(url) })) }
]

describe("resolve settles the items the provider had not decided", () => {
  for (const ledger of ledgers) {
    it.scopedLive(`and the ledger stores them settled, each with the provider's last word (${ledger.name})`, () =>
      Effect.gen(function*() {
        const { layer, reopen } = yield* ledger.open
        const stack = Refunds.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(toy)), Providers.layer)),
          Layer.provideMerge(layer)
        )
        const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)
        const create = (key: string, request: typeof RequestSchema.Type) =>
          Effect.map(refunds.create({ provider: "toy", idempotencyKey: key, request }), (created) => created.refund.id)
        const review = yield* create("review", { targets: ["esim-1", "esim-2"] })
        const mixed = yield* create("mixed", { targets: ["esim-3", "esim-4"], refused: "esim-4" })
        const refused = yield* create("refused", { targets: ["esim-5"] })
        yield* refunds.resolve(review, "succeeded", "operator: credited, seen on the balance")
        yield* refunds.resolve(mixed, "succeeded", "operator: esim-3 credited")
        yield* refunds.resolve(refused, "failed", "operator: refused by email")

        const other = Context.get(yield* Layer.build(reopen), Ledger.Ledger)
        const itemsOf = (id: string) =>
          Effect.map(other.get(id), (refund) => [refund.status, refund.items.map((i) => [i.target, i.status, i.providerStatus, i.message])])
        assert.deepStrictEqual(yield* itemsOf(review), ["succeeded", [
          ["esim-1", "succeeded", "accepted_for_review", undefined],
          ["esim-2", "succeeded", "accepted_for_review", undefined]
        ]])
        assert.deepStrictEqual(yield* itemsOf(mixed), ["succeeded", [
          ["esim-3", "succeeded", "accepted_for_review", undefined],
          ["esim-4", "failed", "refused", "already used"]
        ]])
        assert.deepStrictEqual(yield* itemsOf(refused), ["failed", [["esim-5", "failed", "accepted_for_review", undefined]]])
        // The history keeps what the provider said; the verdict is the operator's event.
        const history = (yield* other.get(review)).events.map((e) => [e.source, e.to, e.providerStatus])
        assert.deepStrictEqual(history, [["submit", "requested", undefined], ["submit", "pending", "accepted_for_review"], ["operator", "succeeded", undefined]])
      }))

    it.scopedLive(`an operator names the target the provider did not refund: resolved by another process, the target is free, the other held (${ledger.name})`, () =>
      Effect.gen(function*() {
        const { layer, reopen } = yield* ledger.open
        const refundsOn = (on: Layer.Layer<Ledger.Ledger, unknown>) =>
          Effect.map(
            Layer.build(Refunds.layer().pipe(
              Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(toy)), Providers.layer)),
              Layer.provideMerge(on)
            )),
            (context) => Context.get(context, Refunds.Refunds)
          )
        const first = yield* refundsOn(layer)
        const { refund } = yield* first.create({ provider: "toy", idempotencyKey: "two-esims", request: { targets: ["esim-7", "esim-8"] } })
        const blocked = yield* Effect.flip(first.create({ provider: "toy", idempotencyKey: "esim-8-again", request: { targets: ["esim-8"] } }))
        assert.strictEqual(blocked._tag, "TargetAlreadyRefunded")
        // Another process (a CLI run) resolves it: it remembers nothing, so PostgreSQL writes under the row lock.
        const second = yield* refundsOn(reopen)
        const resolved = yield* second.resolve(refund.id, "succeeded", "operator: esim-7 credited, esim-8 refused by email", { failedTargets: ["esim-8"] })
        assert.deepStrictEqual(resolved.items.map((i) => [i.target, i.status, i.providerStatus]), [
          ["esim-7", "succeeded", "accepted_for_review"],
          ["esim-8", "failed", "accepted_for_review"]
        ])
        const again = yield* first.create({ provider: "toy", idempotencyKey: "esim-8-again", request: { targets: ["esim-8"] } })
        assert.strictEqual(again.refund.status, "pending", "esim-8 is sent again")
        const held = yield* Effect.flip(first.create({ provider: "toy", idempotencyKey: "esim-7-again", request: { targets: ["esim-7"] } }))
        assert.deepStrictEqual(held._tag === "TargetAlreadyRefunded" ? [held.target, held.refundId] : held, ["esim-7", refund.id])
      }))
  }
})
