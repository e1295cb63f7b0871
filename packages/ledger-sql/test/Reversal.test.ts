// A provider's failed after its own succeeded (a reversal, core's applyChange): every ledger moves the refund to
// requires_action and keeps counting it against its targets, as it counted the refund while succeeded; the same word
// again is refused while it waits for a person and after the verdict; a failed verdict keeps the targets held until
// an operator releases them.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import type { Refund } from "@refundkit/core/Refund"
import { Effect } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, locations } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"

// A whole refund of one eSIM: the target named without an amount.
const esim = (key: string, iccid: string, n = 0): Refund => draft(key, { provider: "toy", n, targets: [{ target: iccid }], request: { iccids: [iccid] } })

// The provider names the item with its failed word: held as requires_action, so the guard does not release it.
const reversal = (target: string): Ledger.Change => ({
  to: "failed",
  source: "webhook",
  at: at(3),
  providerStatus: "FAILED",
  providerFinal: true,
  items: [{ target, status: "failed", providerStatus: "FAILED", message: "card account closed" }],
  error: { code: "provider_declined", message: "declined (2): REJECTED_BY_ISSUER_BANK_ERROR", providerCode: "2" },
  detail: `the provider says ${target} is FAILED`
})

// Made by the provider: pending, then its own succeeded from a status query, its item refunded.
const madeByProvider = (ledger: Ledger.Ledger.Service, refund: Refund) =>
  Effect.gen(function*() {
    const target = refund.targets[0]!.target
    yield* ledger.claim(refund)
    yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerStatus: "NEW" })
    return yield* ledger.transition(refund.id, {
      to: "succeeded",
      source: "sync",
      at: at(2),
      providerStatus: "SUCCEED",
      providerFinal: true,
      items: [{ target, status: "succeeded", providerStatus: "SUCCEED" }]
    })
  })

for (const location of locations) {
  describe(`a failed after the provider's own succeeded (${location.name})`, () => {
    it.scopedLive("moves the refund to requires_action, stored so, its target and item still held; the same FAILED again is refused", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const first = partial("first", "30004", "30.00", "40.00")
        yield* madeByProvider(ledger, first)
        const reversed = yield* ledger.transition(first.id, reversal("30004"))
        assert.deepStrictEqual([reversed.status, reversed.providerStatus, reversed.providerFinal, reversed.error?.providerCode], ["requires_action", "FAILED", true, "2"])
        assert.deepStrictEqual(reversed.items.map((i) => [i.target, i.status, i.providerStatus]), [["30004", "requires_action", "FAILED"]])
        assert.include(reversed.events.at(-1)!.detail, `toy reported FAILED (declined (2): REJECTED_BY_ISSUER_BANK_ERROR) in a callback after it had reported SUCCEED to a status query at ${at(2)}`)

        // Another instance holds nothing in memory: it reads the row, the guard's columns and the history.
        const other = yield* build(SqlLedger.layer({ url }))
        assert.deepStrictEqual(yield* other.get(first.id), reversed)
        const over = yield* Effect.flip(other.claim(partial("second", "30004", "10.01", "40.00", 1)))
        assert.strictEqual(over._tag, "OverRefund")
        if (over._tag === "OverRefund") assert.strictEqual(over.remaining, "10.00")
        assert.deepStrictEqual((yield* other.needingSync({ limit: 10 })).map((r) => r.id), [], "a word the provider calls final is not synced by loops")

        // The same word again (a sync after the callback) would make it failed and free the target: refused, kept in the history.
        const again = yield* Effect.flip(other.transition(first.id, { ...reversal("30004"), source: "sync", at: at(4), detail: undefined }))
        assert.strictEqual(again._tag, "IllegalTransition")
        const stored = yield* ledger.get(first.id)
        assert.deepStrictEqual([stored.status, stored.updatedAt], ["requires_action", at(3)])
        assert.deepInclude(stored.events.at(-1), {
          source: "sync",
          from: "requires_action",
          to: "failed",
          accepted: false,
          detail: `refused: requires_action -> failed: FAILED repeats what toy said at ${at(3)}, which holds the refund in requires_action until a person settles it with refundkit resolve`
        })

        // A whole refund's target is held too, naming the refund and its status.
        const whole = esim("whole", "8910300000000000601", 3)
        yield* madeByProvider(ledger, whole)
        yield* ledger.transition(whole.id, reversal("8910300000000000601"))
        const held = yield* Effect.flip(other.claim(esim("whole-again", "8910300000000000601", 4)))
        assert.deepStrictEqual(held._tag === "TargetAlreadyRefunded" ? [held.refundId, held.status] : [held._tag], [whole.id, "requires_action"])
      }))

    it.scopedLive("a failed verdict keeps the target held against the same word and a new one; released by an operator, it is refunded again", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const iccid = "8910300000000000602"
        const refund = esim("settled", iccid)
        yield* madeByProvider(ledger, refund)
        yield* ledger.transition(refund.id, reversal(iccid))
        // As Refunds.resolve records `failed` without releaseTargets on such a refund.
        const failed = yield* ledger.transition(refund.id, { to: "failed", source: "operator", at: at(4), settleItems: true, holdsTarget: true, detail: "operator: repaid by bank transfer" })
        assert.deepStrictEqual([failed.status, failed.holdsTarget], ["failed", true])

        const other = yield* build(SqlLedger.layer({ url }))
        const held = yield* Effect.flip(other.claim(esim("again", iccid, 1)))
        assert.deepStrictEqual(held._tag === "TargetAlreadyRefunded" ? [held.refundId, held.status] : [held._tag], [refund.id, "failed"])
        assert.strictEqual((yield* Effect.flip(other.transition(refund.id, { ...reversal(iccid), source: "sync", at: at(5) })))._tag, "IllegalTransition")
        const renamed = yield* other.transition(refund.id, { ...reversal(iccid), providerStatus: "CANCELLED", items: undefined, at: at(6) })
        assert.deepStrictEqual([renamed.status, renamed.holdsTarget], ["failed", true], "the hold is the verdict's, not the provider's")
        assert.strictEqual((yield* Effect.flip(other.claim(esim("again", iccid, 1))))._tag, "TargetAlreadyRefunded")

        // As Refunds.resolve records `failed` with releaseTargets.
        const released = yield* other.transition(refund.id, { to: "failed", source: "operator", at: at(7), settleItems: true, holdsTarget: false, detail: "operator: refund it again" })
        assert.isUndefined(released.holdsTarget)
        const claim = yield* ledger.claim(esim("again", iccid, 1))
        assert.strictEqual(claim._tag, "Claimed")
      }))
  })
}
