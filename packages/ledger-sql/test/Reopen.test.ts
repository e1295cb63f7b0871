// An operator's reopen of a final status the provider set (core's `Refunds.reopen`, `Change.reopens`): every SQL
// ledger moves the refund to requires_action, keeps (or takes back) its targets, refuses the provider's word it took
// back when it comes again, and refuses the reopen of a failed whose target another refund took since, recording
// nothing. The event's verdict carries `reopen: true`, read back exactly by another instance.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import type { OperatorVerdict, Refund } from "@refundkit/core/Refund"
import { Effect } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, locations, rawSql } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"

const esim = (key: string, iccid: string, n = 0): Refund => draft(key, { provider: "toy", n, targets: [{ target: iccid }], request: { iccids: [iccid] } })

const reopen = (n: number, note: string): Ledger.Change => {
  const verdict: OperatorVerdict = { note, releaseTargets: false, failedTargets: [], correct: false, reopen: true }
  return { to: "requires_action", source: "operator", at: at(n), reopens: true, detail: note, verdict }
}

// Settled by the provider's own answer to its call: `word` as `to`, the item with it.
const settledByProvider = (ledger: Ledger.Ledger.Service, refund: Refund, to: "succeeded" | "failed", word: string) =>
  Effect.gen(function*() {
    yield* ledger.claim(refund)
    return yield* ledger.transition(refund.id, {
      to,
      source: "submit",
      at: at(1),
      providerStatus: word,
      items: refund.targets.map((t) => ({ target: t.target, status: to, providerStatus: word }))
    })
  })

for (const location of locations) {
  describe(`an operator's reopen (${location.name})`, () => {
    it.scopedLive("of a succeeded: stored requires_action, its target still held, the same word again refused, a failed verdict keeps the hold", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const first = partial("first", "30004", "30.00", "40.00")
        const made = yield* settledByProvider(ledger, first, "succeeded", "SUCCESS")
        const reopened = yield* ledger.reclaim!(first.id, reopen(2, "operator: reversed in the dashboard"))
        assert.deepStrictEqual([reopened.status, reopened.providerStatus], ["requires_action", "SUCCESS"])
        assert.deepStrictEqual(reopened.items.map((i) => i.status), ["requires_action"])
        assert.strictEqual(
          reopened.events.at(-1)!.detail,
          `reopens the succeeded (SUCCESS) toy (submit) reported at ${made.updatedAt}, held in requires_action until a person settles it with refundkit resolve: ` +
            "operator: reversed in the dashboard"
        )

        // Another instance reads the row, the verdict column and the guard's columns.
        const other = yield* build(SqlLedger.layer({ url }))
        assert.deepStrictEqual(yield* other.get(first.id), reopened)
        const sql = yield* rawSql(url)
        const rows = yield* sql<{ readonly verdict: string | null }>`SELECT verdict FROM refund_events WHERE refund_id = ${first.id} ORDER BY sequence`
        assert.deepStrictEqual(JSON.parse(rows.at(-1)!.verdict!), { note: "operator: reversed in the dashboard", releaseTargets: false, failedTargets: [], correct: false, reopen: true })
        const over = yield* Effect.flip(other.claim(partial("second", "30004", "10.01", "40.00", 1)))
        assert.strictEqual(over._tag, "OverRefund")

        // The word the reopen took back, again (a sync, a callback), would undo it: refused, the refund unchanged.
        const again = yield* Effect.flip(other.transition(first.id, { to: "succeeded", source: "webhook", at: at(3), providerStatus: "SUCCESS" }))
        assert.strictEqual(again._tag, "IllegalTransition")
        assert.deepStrictEqual([(yield* ledger.get(first.id)).status, (yield* ledger.get(first.id)).updatedAt], ["requires_action", at(2)])

        // Resolved failed keeping the hold (core's resolve of a reopened refund): still counted against the target.
        const failed = yield* ledger.transition(first.id, { to: "failed", source: "operator", at: at(4), settleItems: true, holdsTarget: true, detail: "operator: confirmed" })
        assert.deepStrictEqual([failed.status, failed.holdsTarget], ["failed", true])
        assert.strictEqual((yield* Effect.flip(other.claim(partial("third", "30004", "10.01", "40.00", 2))))._tag, "OverRefund")
      }))

    it.scopedLive("of a failed: refused naming the refund that took its target since, nothing recorded; once free, its target is held again", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const first = esim("first", "8910300000000000701")
        const refused = yield* settledByProvider(ledger, first, "failed", "DECLINED")
        const second = esim("second", "8910300000000000701", 1)
        yield* ledger.claim(second)

        const taken = yield* Effect.flip(ledger.reclaim!(first.id, reopen(2, "operator: the dashboard shows it credited")))
        assert.strictEqual(taken._tag, "TargetAlreadyRefunded")
        if (taken._tag === "TargetAlreadyRefunded") assert.deepStrictEqual([taken.target, taken.refundId, taken.status], ["8910300000000000701", second.id, "requested"])
        assert.deepStrictEqual(yield* (yield* build(SqlLedger.layer({ url }))).get(first.id), refused, "nothing was recorded")

        // The other refund fails; the reopen now takes the eSIM back.
        yield* ledger.transition(second.id, { to: "failed", source: "submit", at: at(3), providerStatus: "DECLINED" })
        const reopened = yield* ledger.reclaim!(first.id, reopen(4, "operator: the dashboard shows it credited"))
        assert.deepStrictEqual([reopened.status, reopened.items.map((i) => i.status)], ["requires_action", ["requires_action"]])
        const third = yield* Effect.flip(ledger.claim(esim("third", "8910300000000000701", 2)))
        assert.deepStrictEqual(third._tag === "TargetAlreadyRefunded" ? [third.refundId, third.status] : [third._tag], [first.id, "requires_action"])
      }))
  })
}
