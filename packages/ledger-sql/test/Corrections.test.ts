// An operator's correction of a hand-made verdict (core's Refunds.resolve with `correct`). A correction of
// `failed` to `succeeded` takes back targets the failed verdict freed, which a second refund may have claimed
// since: each ledger checks that in the write that records the correction (`reclaim`), under the locks a claim
// takes, so a claim and a correction racing for one target never both win.
import { assert, describe, it } from "@effect/vitest"
import { Ledger, Provider, Providers, Refunds } from "@refundkit/core"
import type { Refund } from "@refundkit/core/Refund"
import { Context, Effect, Either, Layer, Schema } from "effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, memory, pg, pgSchema, sqlite, sqliteOnClient, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

// A whole refund of one eSIM, as Airalo's are (a target named without an amount).
const esim = (key: string, iccid: string, n = 0): Refund => draft(key, { provider: "airalo", n, targets: [{ target: iccid }], request: { iccids: [iccid] } })

// Settled failed by an operator: its eSIM is free for another refund.
const failedByHand = (ledger: Ledger.Ledger.Service, refund: Refund) =>
  Effect.gen(function*() {
    yield* ledger.claim(refund)
    yield* ledger.transition(refund.id, { to: "unknown", source: "recovery", at: at(1) })
    return yield* ledger.transition(refund.id, { to: "failed", source: "operator", at: at(2), detail: "operator: not at Airalo" })
  })

const correction: Ledger.Change = { to: "succeeded", source: "operator", at: at(3), corrects: true, detail: "operator: credited after all" }

for (const harness of [memory, sqlite, sqliteOnClient, pg]) {
  describe(`a correction to succeeded takes its targets back under the ledger's locks (${harness.name})`, () => {
    it.scopedLive("refused, nothing recorded, while another refund holds one; taken once that one failed", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const first = yield* failedByHand(ledger, esim("first", "8910300000000000101"))
        const second = esim("second", "8910300000000000101", 1)
        assert.strictEqual((yield* ledger.claim(second))._tag, "Claimed", "the failed verdict freed the eSIM")

        const refused = yield* Effect.flip(ledger.reclaim!(first.id, correction))
        assert.strictEqual(refused._tag, "TargetAlreadyRefunded")
        if (refused._tag === "TargetAlreadyRefunded") {
          assert.deepStrictEqual([refused.target, refused.refundId, refused.status], ["8910300000000000101", second.id, "requested"])
        }
        assert.deepStrictEqual(yield* ledger.get(first.id), first, "nothing was recorded")

        yield* ledger.transition(second.id, { to: "failed", source: "submit", at: at(4), error: { code: "provider_declined", message: "already refunded" } })
        const corrected = yield* ledger.reclaim!(first.id, correction)
        assert.strictEqual(corrected.status, "succeeded")
        assert.deepStrictEqual(yield* ledger.get(first.id), corrected)
        assert.include(corrected.events.at(-1)!.detail!, `corrects the failed an operator recorded at ${at(2)}: operator: credited after all`)
        const third = yield* Effect.flip(ledger.claim(esim("third", "8910300000000000101", 2)))
        assert.strictEqual(third._tag === "TargetAlreadyRefunded" ? third.refundId : third._tag, first.id, "held again")

        // A final status the provider set is not corrected: refused as an illegal move, as before.
        const byProvider = esim("provider", "8910300000000000102", 3)
        yield* ledger.claim(byProvider)
        yield* ledger.transition(byProvider.id, { to: "failed", source: "submit", at: at(4), providerStatus: "refused" })
        assert.strictEqual((yield* Effect.flip(ledger.reclaim!(byProvider.id, correction)))._tag, "IllegalTransition")
      }))

    it.scopedLive("a correction and a claim of the same eSIM raced: exactly one of them holds it", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        for (let round = 0; round < 8; round++) {
          const iccid = `89103000000000002${String(round).padStart(2, "0")}`
          const first = yield* failedByHand(ledger, esim(`race-first-${round}`, iccid))
          const [corrected, claimed] = yield* Effect.all([
            Effect.either(ledger.reclaim!(first.id, correction)),
            Effect.either(ledger.claim(esim(`race-second-${round}`, iccid, 1)))
          ], { concurrency: "unbounded" })
          const won = [Either.isRight(corrected), Either.isRight(claimed) && claimed.right._tag === "Claimed"]
          assert.deepStrictEqual(won.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify([corrected, claimed])}`)
        }
      }))
  })
}

// Two ledger instances on one database: each its own connections (and, on SQLite, its own file handle).
const shared: ReadonlyArray<{
  readonly name: string
  readonly open: Effect.Effect<Layer.Layer<Ledger.Ledger | SqlLedger.SqlLedger, unknown>, unknown, Scope.Scope>
}> = [
  { name: "SQLite", open: Effect.map(tempDir, (dir) => SqlLedger.layerSqlite(path.join(dir, "ledger.db"))) },
  { name: "PostgreSQL", open: Effect.map(pgSchema, (url) => SqlLedger.layerPg(url)) }
]

for (const database of shared) {
  it.scopedLive(`two processes on one ${database.name} ledger: a correction and a claim of the same eSIM never both win`, () =>
    Effect.gen(function*() {
      const layer = yield* database.open
      const one = yield* build(layer)
      const other = yield* build(layer)
      for (let round = 0; round < 8; round++) {
        const iccid = `89103000000000003${String(round).padStart(2, "0")}`
        const first = yield* failedByHand(one, esim(`shared-first-${round}`, iccid))
        const [corrected, claimed] = yield* Effect.all([
          Effect.either(one.reclaim!(first.id, correction)),
          Effect.either(other.claim(esim(`shared-second-${round}`, iccid, 1)))
        ], { concurrency: "unbounded" })
        const won = [Either.isRight(corrected), Either.isRight(claimed) && claimed.right._tag === "Claimed"]
        assert.deepStrictEqual(won.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify([corrected, claimed])}`)
        // Whoever lost, the other process reads the same winner.
        const stored = yield* other.get(first.id)
        assert.strictEqual(stored.status, Either.isRight(corrected) ? "succeeded" : "failed")
      }
    }))
}

// Through core's Refunds, as `refundkit resolve --correct` runs it: the items a verdict settled are marked as the
// operator's, stored so, and settled again by the correction, read back by another process.
const RequestSchema = Schema.Struct({ iccids: Schema.Array(Schema.String) })
const airaloLike = Provider.make({
  id: "airalo",
  displayName: "Airalo-like",
  capabilities: { partialRefunds: false, maxTargetsPerCall: 5, statusQuery: false, webhooks: false, idempotentSubmit: true, updates: false, settlement: "credits" },
  requestSchema: RequestSchema,
  describe: (request) => ({ targets: request.iccids.map((target) => ({ target })) }),
  submit: (request) =>
    Effect.succeed({
      status: "pending",
      providerStatus: "accepted_for_review",
      items: request.iccids.map((target) => ({ target, status: "pending" as const, providerStatus: "accepted_for_review" }))
    })
})

describe("resolve --correct through core's Refunds", () => {
  for (const database of shared) {
    it.scopedLive(`the correction and its items are stored, and a claim made meanwhile refuses it (${database.name})`, () =>
      Effect.gen(function*() {
        const layer = yield* database.open
        const stack = Refunds.layer().pipe(Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(airaloLike)), Providers.layer)), Layer.provideMerge(layer))
        const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)
        const reader = yield* build(layer)
        const create = (key: string) => Effect.map(refunds.create({ provider: "airalo", idempotencyKey: key, request: { iccids: ["8910300000000000401"] } }), (c) => c.refund.id)

        const id = yield* create("first")
        yield* refunds.resolve(id, "succeeded", "operator: credited")
        assert.strictEqual((yield* Effect.flip(refunds.resolve(id, "failed", "operator: typo")))._tag, "IllegalTransition", "not without correct")
        yield* refunds.resolve(id, "failed", "operator: it was the other eSIM", { correct: true })
        const failed = yield* reader.get(id)
        assert.deepStrictEqual(failed.items.map((i) => [i.status, i.providerStatus, i.settledBy]), [["failed", "accepted_for_review", "operator"]])
        // The verdict without `correct` was refused before the ledger (a final refund takes no second verdict): no event.
        assert.deepStrictEqual(failed.events.slice(-2).map((e) => [e.source, e.from, e.to, e.accepted]), [
          ["operator", "pending", "succeeded", true],
          ["operator", "succeeded", "failed", true]
        ])

        const second = yield* create("second")
        const refused = yield* Effect.flip(refunds.resolve(id, "succeeded", "operator: credited after all", { correct: true }))
        assert.strictEqual(refused._tag === "TargetAlreadyRefunded" ? refused.refundId : refused._tag, second)
        assert.deepStrictEqual(yield* reader.get(id), failed, "nothing was recorded")

        yield* refunds.resolve(second, "failed", "operator: refused by email")
        yield* refunds.resolve(id, "succeeded", "operator: credited after all", { correct: true })
        const back = yield* reader.get(id)
        assert.deepStrictEqual([back.status, back.items.map((i) => [i.status, i.settledBy])], ["succeeded", [["succeeded", "operator"]]])
      }))
  }
})
