// A provider's chargeback after its own succeeded (Exirom's CHARGEBACK after SUCCEED, core's applyChange): every
// ledger moves the refund to requires_action and keeps counting it against its targets, exactly as it counted the
// refund while succeeded; an operator's verdict settles it, and the same word again is refused, not reopened.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import type { Refund } from "@refundkit/core/Refund"
import { Effect } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, locations } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"

// A whole refund of one eSIM: the target named without an amount.
const esim = (key: string, iccid: string, n = 0): Refund => draft(key, { provider: "toy", n, targets: [{ target: iccid }], request: { iccids: [iccid] } })

const chargeback: Ledger.Change = { to: "requires_action", source: "webhook", at: at(3), providerStatus: "CHARGEBACK", providerFinal: true, detail: "the provider says 30004 is CHARGEBACK" }

// Made by the provider: pending, then its own succeeded from a status query.
const madeByProvider = (ledger: Ledger.Ledger.Service, refund: Refund) =>
  Effect.gen(function*() {
    yield* ledger.claim(refund)
    yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerStatus: "NEW" })
    return yield* ledger.transition(refund.id, { to: "succeeded", source: "sync", at: at(2), providerStatus: "SUCCEED", providerFinal: true })
  })

for (const location of locations) {
  describe(`a chargeback after the provider's own succeeded (${location.name})`, () => {
    it.scopedLive("moves the refund to requires_action, stored so; the rest of its target stays the only part refundable", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const first = partial("first", "30004", "30.00", "40.00")
        yield* madeByProvider(ledger, first)
        const charged = yield* ledger.transition(first.id, chargeback)
        assert.deepStrictEqual([charged.status, charged.providerStatus, charged.providerFinal], ["requires_action", "CHARGEBACK", true])
        assert.include(charged.events.at(-1)!.detail, `toy reported CHARGEBACK in a callback after it had reported SUCCEED to a status query at ${at(2)}`)

        // Another instance holds nothing in memory: it reads the row, the guard's columns and the history.
        const other = yield* build(SqlLedger.layer({ url }))
        assert.deepStrictEqual(yield* other.get(first.id), charged)
        const over = yield* Effect.flip(other.claim(partial("second", "30004", "10.01", "40.00", 1)))
        assert.strictEqual(over._tag, "OverRefund")
        if (over._tag === "OverRefund") assert.strictEqual(over.remaining, "10.00")
        assert.strictEqual((yield* other.claim(partial("third", "30004", "10.00", "40.00", 2)))._tag, "Claimed")
        assert.deepStrictEqual((yield* other.needingSync({ limit: 10 })).map((r) => r.id), [], "a word the provider calls final is not synced by loops")

        // A whole refund's target is held too, naming the refund and its status.
        const whole = esim("whole", "8910300000000000501", 3)
        yield* madeByProvider(ledger, whole)
        yield* ledger.transition(whole.id, chargeback)
        const held = yield* Effect.flip(other.claim(esim("whole-again", "8910300000000000501", 4)))
        assert.deepStrictEqual(held._tag === "TargetAlreadyRefunded" ? [held.refundId, held.status] : [held._tag], [whole.id, "requires_action"])
      }))

    it.scopedLive("an operator's verdict settles it; the same CHARGEBACK again is refused and the verdict stands, a new word reopens it", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const refund = partial("settled", "30004", "30.00", "40.00")
        yield* madeByProvider(ledger, refund)
        yield* ledger.transition(refund.id, chargeback)
        const settled = yield* ledger.transition(refund.id, { to: "succeeded", source: "operator", at: at(4), settleItems: true, error: null, detail: "operator: the refund stands" })
        assert.strictEqual(settled.status, "succeeded")

        for (const source of ["webhook", "sync"] as const) {
          const refused = yield* Effect.flip(ledger.transition(refund.id, { ...chargeback, source, at: at(5) }))
          assert.strictEqual(refused._tag, "IllegalTransition", source)
        }
        const other = yield* build(SqlLedger.layer({ url }))
        const stored = yield* other.get(refund.id)
        assert.deepStrictEqual([stored.status, stored.updatedAt], ["succeeded", at(4)])
        assert.deepStrictEqual(stored.events.slice(-3).map((e) => [e.source, e.to, e.accepted]), [["operator", "succeeded", true], ["webhook", "requires_action", false], [
          "sync",
          "requires_action",
          false
        ]])
        assert.strictEqual((yield* Effect.flip(other.claim(partial("over", "30004", "10.01", "40.00", 1))))._tag, "OverRefund", "still held once settled")

        const reopened = yield* other.transition(refund.id, { ...chargeback, at: at(6), providerStatus: "DISPUTED" })
        assert.strictEqual(reopened.status, "requires_action")
      }))
  })
}
