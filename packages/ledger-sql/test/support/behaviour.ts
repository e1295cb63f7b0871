// The behaviour every Ledger implementation shares, run against core's in-memory ledger,
// a SQLite file and PostgreSQL: the SQL ledger must behave like the reference one.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import { Money } from "@refundkit/core"
import { Effect, Either, Option } from "effect"
import type { Harness } from "./databases.js"
import { at, draft, partial } from "./refunds.js"

const sum = (amounts: ReadonlyArray<string>) =>
  amounts.reduce((total, a) => total + Either.getOrThrow(Money.parse(a, "USD")).minor, 0n)

// Every ledger here leases refunds for sync (core leaves it optional for other ledgers).
const leasing = ({ claimForSync, releaseSync }: Ledger.Ledger.Service) =>
  claimForSync !== undefined && releaseSync !== undefined
    ? Effect.succeed({ claimForSync, releaseSync })
    : Effect.die("this ledger does not lease refunds for sync")

export const behaviour = (harness: Harness) =>
  describe(`Ledger behaviour: ${harness.name}`, () => {
    it.scopedLive("stores a claimed refund and reads it back exactly, by id, key and reference", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const refund = partial("k1", "pay-1", "12.34", "100.00")
        const claimed = yield* ledger.claim(refund)
        assert.strictEqual(claimed._tag, "Claimed")
        assert.deepStrictEqual(yield* ledger.get(refund.id), refund)
        assert.deepStrictEqual(Option.getOrUndefined(yield* ledger.findByKey("toy", "k1")), refund)
        assert.isTrue((yield* ledger.findByKey("toy", "nope"))._tag === "None")
        assert.isTrue((yield* ledger.findByKey("other", "k1"))._tag === "None")
        const moved = yield* ledger.transition(refund.id, {
          to: "pending",
          source: "submit",
          at: at(5),
          providerStatus: "PROCESSING",
          providerReference: "ref-1",
          references: { transactionId: "t-1" },
          items: [{ target: "pay-1", status: "pending", amount: "12.34" }]
        })
        const byReference = yield* ledger.findByReference("toy", "ref-1")
        assert.isTrue(byReference._tag === "Some")
        if (byReference._tag === "Some") assert.deepStrictEqual(byReference.value, moved)
        assert.isTrue((yield* ledger.findByReference("toy", "ref-2"))._tag === "None")
        const missing = yield* Effect.flip(ledger.get("rfd_00000000000000000000000000"))
        assert.strictEqual(missing._tag, "RefundNotFound")
      }))

    it.scopedLive("200 concurrent claims of one key: exactly one winner, every loser sees it", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const claims = yield* Effect.all(
          Array.from({ length: 200 }, (_, i) => ledger.claim({ ...draft("same-key", { n: i }), fingerprint: `f-${i}` })),
          { concurrency: "unbounded" }
        )
        const winners = claims.filter((c) => c._tag === "Claimed")
        assert.strictEqual(winners.length, 1)
        const winner = winners[0]!.refund
        for (const c of claims) {
          assert.strictEqual(c.refund.id, winner.id)
          assert.strictEqual(c.refund.fingerprint, winner.fingerprint)
        }
        const page = yield* ledger.list({ limit: 10 })
        assert.strictEqual(page.items.length, 1)
      }))

    it.scopedLive("concurrent partial refunds never take a target past its original amount; failed ones free theirs", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const results = yield* Effect.all(
          Array.from({ length: 25 }, (_, i) => Effect.either(ledger.claim(partial(`part-${i}`, "pay-9", "7.00", "100.00", i)))),
          { concurrency: "unbounded" }
        )
        const claimed = results.flatMap((r) => (Either.isRight(r) && r.right._tag === "Claimed" ? [r.right.refund] : []))
        const refused = results.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
        assert.strictEqual(claimed.length, 14)
        assert.strictEqual(refused.length, 11)
        assert.strictEqual(sum(claimed.map((r) => r.amount!)), 9800n)
        for (const error of refused) {
          assert.strictEqual(error._tag, "OverRefund")
          if (error._tag === "OverRefund") {
            assert.deepStrictEqual([error.target, error.requested, error.remaining, error.currency], ["pay-9", "7.00", "2.00", "USD"])
            // It names the refunds it counted: the first ten of the fourteen, each a claimed 7.00.
            assert.strictEqual(error.heldByCount, 14)
            assert.lengthOf(error.heldBy ?? [], 10)
            for (const held of error.heldBy ?? []) {
              assert.include(claimed.map((r) => r.id), held.refundId)
              assert.deepStrictEqual([held.amount, held.status], ["7.00", "requested"])
            }
            assert.include(error.message, `Counted against it: refund ${error.heldBy![0]!.refundId} (7.00 USD, requested), `)
            assert.include(error.message, " and 4 more.")
          }
        }
        // Another target and another provider are not affected by pay-9's reservations.
        assert.strictEqual((yield* ledger.claim(partial("other-target", "pay-10", "100.00", "100.00")))._tag, "Claimed")
        assert.strictEqual(
          (yield* ledger.claim({ ...partial("other-provider", "pay-9", "100.00", "100.00"), provider: "else", id: "rfd_elseelseelseelseelseelseel" }))._tag,
          "Claimed"
        )
        // A failed refund frees its amount: exactly one more 7.00 fits.
        yield* ledger.transition(claimed[0]!.id, { to: "failed", source: "submit", at: at(100) })
        const again = yield* Effect.all(
          Array.from({ length: 5 }, (_, i) => Effect.either(ledger.claim(partial(`again-${i}`, "pay-9", "7.00", "100.00", 200 + i)))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(again.filter(Either.isRight).length, 1)
        // Refunds that state no original amount still reserve theirs against the target.
        const plain = draft("plain", { currency: "USD", amount: "60.00", targets: [{ target: "pay-11", amount: "60.00" }] })
        assert.strictEqual((yield* ledger.claim(plain))._tag, "Claimed")
        const over = yield* Effect.flip(ledger.claim(partial("fifty", "pay-11", "50.00", "100.00")))
        assert.strictEqual(over._tag, "OverRefund")
        if (over._tag === "OverRefund") {
          assert.strictEqual(over.remaining, "40.00")
          assert.deepStrictEqual(over.heldBy, [{ refundId: plain.id, amount: "60.00", status: "requested" }])
          assert.isUndefined(over.heldByCount)
        }
        assert.strictEqual((yield* ledger.claim(partial("forty", "pay-11", "40.00", "100.00")))._tag, "Claimed")
        // Replaying a key returns the stored refund even when its amount would no longer fit.
        assert.strictEqual((yield* ledger.claim(partial("part-0", "pay-9", "7.00", "100.00")))._tag, "Existing")
      }))

    it.scopedLive("a guarded refund is refused against a target holding a refund it cannot count in its currency", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const blockedBy = (refund: { readonly id: string }, reason: string) =>
          Effect.gen(function*() {
            const over = yield* Effect.flip(ledger.claim(partial(`guarded-${refund.id}`, target(refund), "1.00", "100.00", 9)))
            assert.strictEqual(over._tag, "OverRefund")
            if (over._tag === "OverRefund") {
              assert.deepStrictEqual(over.blockedBy, { refundId: refund.id, reason })
              assert.strictEqual(over.remaining, "0.00")
              assert.include(over.message, "leave out originalAmounts")
            }
          })
        const targets = new Map<string, string>()
        const target = (refund: { readonly id: string }) => targets.get(refund.id)!
        const claim = (key: string, pay: string, options: Parameters<typeof draft>[1]) =>
          Effect.gen(function*() {
            const refund = draft(key, options)
            targets.set(refund.id, pay)
            assert.strictEqual((yield* ledger.claim(refund))._tag, "Claimed")
            return refund
          })
        // 80.00 with no currency, then 80.00 USD against 100.00: the first may well be USD, so the second is not sent.
        const noCurrency = yield* claim("no-currency", "pay-20", { amount: "80.00", targets: [{ target: "pay-20", amount: "80.00" }] })
        yield* blockedBy(noCurrency, "states no currency")
        // Three decimal places of KWD are not cents of USD.
        const otherCurrency = yield* claim("kwd", "pay-21", { currency: "KWD", amount: "10.000", targets: [{ target: "pay-21", amount: "10.000" }] })
        yield* blockedBy(otherCurrency, "is in KWD")
        // A refund naming the target without an amount refunds it whole.
        const whole = yield* claim("whole", "pay-22", { currency: "USD", targets: [{ target: "pay-22" }] })
        yield* blockedBy(whole, "states no amount (a whole refund)")
        // Once such a refund has failed it holds nothing, and the guard counts again.
        yield* ledger.transition(noCurrency.id, { to: "failed", source: "submit", at: at(10) })
        assert.strictEqual((yield* ledger.claim(partial("after-failed", "pay-20", "100.00", "100.00", 11)))._tag, "Claimed")
        // Another provider's refunds against the same name are not counted.
        const elsewhere = yield* claim("elsewhere", "pay-23", { provider: "else", amount: "5.00", targets: [{ target: "pay-23", amount: "5.00" }] })
        assert.strictEqual(elsewhere.provider, "else")
        assert.strictEqual((yield* ledger.claim(partial("not-elsewhere", "pay-23", "100.00", "100.00", 12)))._tag, "Claimed")
      }))

    it.scopedLive("a whole refund is refused while another refund against its target has not failed, with or without originalAmounts", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const whole = (key: string, target: string, n = 0, provider?: string) =>
          draft(key, { n, ...(provider === undefined ? {} : { provider }), targets: [{ target }] })
        const refusedBy = (key: string, target: string, blocker: { readonly id: string }, status: string) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(ledger.claim(whole(key, target, 50)))
            assert.strictEqual(error._tag, "TargetAlreadyRefunded")
            if (error._tag === "TargetAlreadyRefunded") {
              assert.deepStrictEqual([error.target, error.refundId, error.status, error.code], [target, blocker.id, status, "target_already_refunded"])
              assert.include(error.message, "Nothing was sent")
              // The advice follows the holder's status: a finished refund and one whose call is out are not resolved by hand.
              assert.include(
                error.message,
                status === "succeeded" ? `${blocker.id} is finished` : status === "requested" ? "wait for its answer" : `refundkit resolve ${blocker.id} --status failed`
              )
            }
            // Refused before it was recorded: the key stays free.
            assert.isTrue(Option.isNone(yield* ledger.findByKey("toy", key)))
          })
        // Every status but failed holds the target, whichever way the refund got there.
        const paths: ReadonlyArray<[string, ReadonlyArray<"pending" | "unknown" | "requires_action" | "succeeded">]> = [
          ["requested", []],
          ["pending", ["pending"]],
          ["unknown", ["unknown"]],
          ["requires_action", ["requires_action"]],
          ["succeeded", ["pending", "succeeded"]]
        ]
        for (const [status, steps] of paths) {
          const iccid = `iccid-${status}`
          const first = whole(`first-${status}`, iccid)
          assert.strictEqual((yield* ledger.claim(first))._tag, "Claimed")
          for (const [i, to] of steps.entries()) yield* ledger.transition(first.id, { to, source: "sync", at: at(i + 1) })
          yield* refusedBy(`second-${status}`, iccid, first, status)
          // originalAmount on a target without an amount does not make the refund partial.
          const withOriginal = draft(`original-${status}`, { currency: "USD", targets: [{ target: iccid, originalAmount: "10.00" }] })
          assert.strictEqual((yield* Effect.flip(ledger.claim(withOriginal)))._tag, "TargetAlreadyRefunded")
        }
        // A failed refund frees the target, for exactly one more whole refund.
        const refused = whole("refused", "iccid-free")
        yield* ledger.claim(refused)
        yield* ledger.transition(refused.id, { to: "failed", source: "submit", at: at(2) })
        const resent = whole("refused:retry-1", "iccid-free", 3)
        assert.strictEqual((yield* ledger.claim(resent))._tag, "Claimed")
        yield* refusedBy("third", "iccid-free", resent, "requested")
        // The unlocked read Refunds asks before a rate-limited whole refund waits for its turn.
        assert.isDefined(ledger.holderOf)
        if (ledger.holderOf !== undefined) {
          const held = yield* ledger.holderOf("toy", "iccid-free")
          assert.deepStrictEqual(Option.getOrUndefined(Option.map(held, (r) => [r.refundId, r.status])), [resent.id, "requested"])
          assert.isTrue(Option.isNone(yield* ledger.holderOf("toy", "iccid-none")))
          assert.isTrue(Option.isNone(yield* ledger.holderOf("nobody", "iccid-free")))
        }
        // Replaying the holder's own key is a replay, not a refusal.
        assert.strictEqual((yield* ledger.claim(resent))._tag, "Existing")
        // Another provider's refund of the same name is another target.
        assert.strictEqual((yield* ledger.claim(whole("elsewhere", "iccid-free", 4, "else")))._tag, "Claimed")
        // A refund with an amount holds the target against a whole refund ...
        const part = draft("part", { currency: "USD", amount: "5.00", targets: [{ target: "pay-30", amount: "5.00" }] })
        assert.strictEqual((yield* ledger.claim(part))._tag, "Claimed")
        yield* refusedBy("whole-after-part", "pay-30", part, "requested")
        // ... while amounts without originalAmounts keep today's rule: not guarded, even after a whole refund.
        const more = draft("more", { currency: "USD", amount: "5.00", targets: [{ target: "pay-30", amount: "5.00" }] })
        assert.strictEqual((yield* ledger.claim(more))._tag, "Claimed")
        const wholeFirst = whole("whole-first", "pay-31")
        yield* ledger.claim(wholeFirst)
        const amountAfter = draft("amount-after", { currency: "USD", amount: "5.00", targets: [{ target: "pay-31", amount: "5.00" }] })
        assert.strictEqual((yield* ledger.claim(amountAfter))._tag, "Claimed")
        // A guarded amount is still refused by a whole refund's reservation, as OverRefund.
        const guarded = yield* Effect.flip(ledger.claim(partial("guarded-after-whole", "pay-31", "1.00", "100.00")))
        assert.strictEqual(guarded._tag, "OverRefund")
        // A refund naming a target both whole and with an amount is a whole refund of it.
        const mixed = draft("mixed", { currency: "USD", amount: "1.00", targets: [{ target: "pay-30", amount: "1.00" }, { target: "pay-30" }] })
        assert.strictEqual((yield* Effect.flip(ledger.claim(mixed)))._tag, "TargetAlreadyRefunded")
        // Several targets: one held target refuses the whole claim, and none of its targets is reserved.
        const several = draft("several", { targets: [{ target: "iccid-new" }, { target: "iccid-requested" }] })
        assert.strictEqual((yield* Effect.flip(ledger.claim(several)))._tag, "TargetAlreadyRefunded")
        assert.strictEqual((yield* ledger.claim(whole("new-alone", "iccid-new")))._tag, "Claimed")
      }))

    it.scopedLive("a target whose item its refund records failed holds nothing, its amount nor as a whole refund; an item back from failed holds it again", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const guarded = (key: string, target: string, amount: string, n: number) =>
          draft(key, { n, currency: "INR", amount, targets: [{ target, amount, originalAmount: "100.00" }] })
        // An Airpay batch: 10264 refunded, 10265 refused (150.00 is more than it has); an eSIM refused with them.
        const batches = Array.from({ length: 4 }, (_, i) =>
          draft(`batch-${i}`, {
            n: i,
            currency: "INR",
            amount: "160.00",
            targets: [{ target: `1026${i}-ok`, amount: "10.00" }, { target: `1026${i}-refused`, amount: "150.00" }, { target: `iccid-${i}` }]
          }))
        for (const refund of batches) yield* ledger.claim(refund)
        const answer = (i: number, refused: "failed" | "pending") => [
          { target: `1026${i}-ok`, status: "succeeded" as const, amount: "10.00", providerStatus: "accepted" },
          { target: `1026${i}-refused`, status: refused, amount: "150.00", providerStatus: "refused" },
          { target: `iccid-${i}`, status: refused, providerStatus: "refused" }
        ]
        // Several answers at once, so PostgreSQL's group commit meets them too (with a plain change beside them).
        const plain = draft("plain", { n: 9, currency: "INR", amount: "1.00", targets: [{ target: "plain-1", amount: "1.00" }] })
        yield* ledger.claim(plain)
        yield* Effect.all([
          ...batches.map((refund, i) =>
            ledger.transition(refund.id, { to: "requires_action", source: "submit", at: at(5), providerStatus: "accepted+refused", providerFinal: true, items: answer(i, "failed") })
          ),
          ledger.transition(plain.id, { to: "succeeded", source: "submit", at: at(5), items: [{ target: "plain-1", status: "succeeded" }] })
        ], { concurrency: "unbounded" })
        // Resolved succeeded by hand, as core advises: the refused items stay failed, and still hold nothing.
        yield* ledger.transition(batches[0]!.id, { to: "succeeded", source: "operator", at: at(6), settleItems: true, detail: "operator: 10260 refunded" })

        for (const [i, refund] of batches.entries()) {
          assert.strictEqual((yield* ledger.claim(guarded(`fix-${i}`, `1026${i}-refused`, "15.00", 10 + i)))._tag, "Claimed", `${refund.id}: the refused 150.00 holds nothing`)
          const over = yield* Effect.flip(ledger.claim(guarded(`over-${i}`, `1026${i}-ok`, "95.00", 20 + i)))
          assert.deepStrictEqual(over._tag === "OverRefund" ? over.remaining : over, "90.00", "the refunded 10.00 still counts")
          if (ledger.holderOf !== undefined) assert.isTrue(Option.isNone(yield* ledger.holderOf("toy", `iccid-${i}`)))
        }
        assert.strictEqual((yield* ledger.claim(draft("esim-again", { n: 30, targets: [{ target: "iccid-0" }] })))._tag, "Claimed")
        assert.strictEqual((yield* Effect.flip(ledger.claim(draft("plain-again", { n: 31, targets: [{ target: "plain-1" }] }))))._tag, "TargetAlreadyRefunded")

        // The provider corrects itself about batch 1: its refused items are pending again, so their targets are held again.
        yield* ledger.transition(batches[1]!.id, { to: "pending", source: "webhook", at: at(40), providerStatus: "retrying", items: answer(1, "pending") })
        const held = yield* Effect.flip(ledger.claim(guarded("held-again", "10261-refused", "1.00", 41)))
        assert.deepStrictEqual(held._tag === "OverRefund" ? held.blockedBy : held, undefined)
        assert.deepStrictEqual(held._tag === "OverRefund" ? held.remaining : held, "0.00", "150.00 and 15.00 against 100.00")
        assert.strictEqual((yield* Effect.flip(ledger.claim(draft("esim-held", { n: 42, targets: [{ target: "iccid-1" }] }))))._tag, "TargetAlreadyRefunded")
        if (ledger.holderOf !== undefined) {
          assert.deepStrictEqual(Option.getOrUndefined(Option.map(yield* ledger.holderOf("toy", "iccid-1"), (r) => r.refundId)), batches[1]!.id)
        }

        // An operator's per-target verdict on a refund in doubt with no items: the named target is failed, and free.
        const lost = draft("lost", { n: 50, currency: "INR", amount: "610.00", targets: [{ target: "20003", amount: "10.00" }, { target: "20002", amount: "600.00" }] })
        yield* ledger.claim(lost)
        yield* ledger.transition(lost.id, { to: "unknown", source: "submit", at: at(51) })
        const resolved = yield* ledger.transition(lost.id, { to: "succeeded", source: "operator", at: at(52), settleItems: true, failedTargets: ["20002"] })
        assert.deepStrictEqual(resolved.items.map((item) => [item.target, item.status, item.amount]), [["20003", "succeeded", "10.00"], ["20002", "failed", "600.00"]])
        assert.deepStrictEqual(yield* ledger.get(lost.id), resolved)
        assert.strictEqual((yield* ledger.claim(guarded("20002-again", "20002", "100.00", 53)))._tag, "Claimed")
        const still = yield* Effect.flip(ledger.claim(guarded("20003-again", "20003", "95.00", 54)))
        assert.deepStrictEqual(still._tag === "OverRefund" ? still.remaining : still, "90.00")
      }))

    it.scopedLive("a failed refund its provider keeps on its targets still holds them: a whole refund is refused naming it, a guarded amount counts it, until an operator releases it", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const whole = (key: string, target: string, n = 0) => draft(key, { n, targets: [{ target }] })
        // Several answers at once, so PostgreSQL's group commit writes them in one batch as well as alone.
        const orders = ["FBRF900001", "FBRF900002", "FBRF900003", "FBRF900004"]
        const closed = orders.map((order, i) => whole(`closed-${i}`, order, i))
        for (const refund of closed) yield* ledger.claim(refund)
        const answered = yield* Effect.all(
          closed.map((refund) => ledger.transition(refund.id, { to: "failed", source: "submit", at: at(5), providerStatus: "CLOSED", holdsTarget: true })),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(answered.map((r) => [r.status, r.holdsTarget]), orders.map(() => ["failed" as const, true]))
        for (const [i, refund] of closed.entries()) {
          assert.deepStrictEqual(yield* ledger.get(refund.id), answered[i])
          const error = yield* Effect.flip(ledger.claim(whole(`again-${i}`, orders[i]!, 10)))
          assert.strictEqual(error._tag, "TargetAlreadyRefunded")
          if (error._tag === "TargetAlreadyRefunded") {
            assert.deepStrictEqual([error.target, error.refundId, error.status], [orders[i], refund.id, "failed"])
            assert.include(error.message, `held by refund ${refund.id} (status failed)`)
            assert.include(error.message, `refundkit resolve ${refund.id} --status failed --release-targets`)
          }
          assert.isTrue(Option.isNone(yield* ledger.findByKey("toy", `again-${i}`)), "the refused claim left nothing")
        }
        if (ledger.holderOf !== undefined) {
          const held = yield* ledger.holderOf("toy", orders[0]!)
          assert.deepStrictEqual(Option.getOrUndefined(Option.map(held, (r) => [r.refundId, r.status])), [closed[0]!.id, "failed"])
        }
        // A guarded amount against the held target is refused by the whole refund's reservation.
        const over = yield* Effect.flip(ledger.claim(partial("amount-after-closed", orders[1]!, "1.00", "100.00", 11)))
        assert.deepStrictEqual(over._tag === "OverRefund" ? over.blockedBy?.refundId : over, closed[1]!.id)

        // An operator's note keeps the hold; the provider's own later word without the flag, or an explicit release, ends it.
        const noted = yield* ledger.transition(closed[2]!.id, { to: "failed", source: "operator", at: at(20), detail: "operator: closed, seen at AeroHub" })
        assert.strictEqual(noted.holdsTarget, true)
        assert.strictEqual((yield* Effect.flip(ledger.claim(whole("after-note", orders[2]!, 21))))._tag, "TargetAlreadyRefunded")
        const released = yield* ledger.transition(closed[2]!.id, { to: "failed", source: "operator", at: at(22), holdsTarget: false, detail: "reopened" })
        assert.isUndefined(released.holdsTarget)
        assert.deepStrictEqual(yield* ledger.get(closed[2]!.id), released)
        if (ledger.holderOf !== undefined) assert.isTrue(Option.isNone(yield* ledger.holderOf("toy", orders[2]!)))
        assert.strictEqual((yield* ledger.claim(whole("after-release", orders[2]!, 23)))._tag, "Claimed")
        yield* ledger.transition(closed[3]!.id, { to: "failed", source: "sync", at: at(24), providerStatus: "CLOSED" })
        assert.strictEqual((yield* ledger.claim(whole("after-provider", orders[3]!, 25)))._tag, "Claimed")

        // A failed refund without the flag (a declined first update) holds nothing, as before.
        const declined = whole("declined", "FBRF900005", 30)
        yield* ledger.claim(declined)
        yield* ledger.transition(declined.id, { to: "failed", source: "submit", at: at(31), error: { code: "provider_declined", message: "declined (400): Failed" } })
        assert.strictEqual((yield* ledger.claim(whole("after-declined", "FBRF900005", 32)))._tag, "Claimed")
      }))

    it.scopedLive("concurrent whole refunds of one target with different keys: exactly one is claimed", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const results = yield* Effect.all(
          Array.from({ length: 40 }, (_, i) =>
            Effect.either(ledger.claim(draft(`esim-${i}`, { n: i, targets: [{ target: `iccid-${i % 2}` }] })))),
          { concurrency: "unbounded" }
        )
        const claimed = results.flatMap((r) => (Either.isRight(r) && r.right._tag === "Claimed" ? [r.right.refund] : []))
        assert.deepStrictEqual(claimed.map((r) => r.targets[0]!.target).sort(), ["iccid-0", "iccid-1"])
        const refused = results.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
        assert.strictEqual(refused.length, 38)
        for (const error of refused) {
          assert.strictEqual(error._tag, "TargetAlreadyRefunded")
          if (error._tag === "TargetAlreadyRefunded") {
            assert.strictEqual(error.refundId, claimed.find((r) => r.targets[0]!.target === error.target)!.id)
          }
        }
        assert.strictEqual((yield* ledger.list({ limit: 100 })).items.length, 2)
      }))

    it.scopedLive("a claim with several targets and events stores every one, and each target's reservation counts", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const base = draft("multi", {
          currency: "USD",
          amount: "30.00",
          targets: [
            { target: "pay-a", amount: "10.00", originalAmount: "10.00" },
            { target: "pay-b", amount: "20.00", originalAmount: "50.00" }
          ]
        })
        const refund = {
          ...base,
          events: [...base.events, { sequence: 2, at: at(1), source: "sync" as const, from: "requested" as const, to: "requested" as const, accepted: false, detail: "noted" }]
        }
        assert.strictEqual((yield* ledger.claim(refund))._tag, "Claimed")
        assert.deepStrictEqual(yield* ledger.get(refund.id), refund)
        // pay-a is spent; pay-b has 30.00 left.
        const spent = yield* Effect.flip(ledger.claim(partial("more-a", "pay-a", "0.01", "10.00")))
        assert.strictEqual(spent._tag, "OverRefund")
        const over = yield* Effect.flip(ledger.claim(partial("more-b", "pay-b", "30.01", "50.00")))
        assert.strictEqual(over._tag, "OverRefund")
        if (over._tag === "OverRefund") assert.strictEqual(over.remaining, "30.00")
        assert.strictEqual((yield* ledger.claim(partial("rest-b", "pay-b", "30.00", "50.00")))._tag, "Claimed")
        // The next change appends after both stored events.
        const moved = yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(2) })
        assert.deepStrictEqual(moved.events.map((e) => e.sequence), [1, 2, 3])
        assert.deepStrictEqual((yield* ledger.get(refund.id)).events, moved.events)
      }))

    it.scopedLive("applies legal transitions and records a refused one without overwriting", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const refund = draft("t1")
        yield* ledger.claim(refund)
        yield* ledger.transition(refund.id, {
          to: "pending",
          source: "submit",
          at: at(1),
          providerStatus: "QUEUED",
          error: { code: "provider_unavailable", message: "slow", retryAfterMillis: 500 }
        })
        const done = yield* ledger.transition(refund.id, { to: "succeeded", source: "webhook", at: at(2), providerStatus: "DONE", error: null, detail: "callback" })
        assert.strictEqual(done.status, "succeeded")
        assert.isUndefined(done.error)
        const refusal = yield* Effect.flip(ledger.transition(refund.id, { to: "failed", source: "sync", at: at(3), detail: "late FAILED" }))
        assert.strictEqual(refusal._tag, "IllegalTransition")
        const stored = yield* ledger.get(refund.id)
        assert.strictEqual(stored.status, "succeeded")
        assert.strictEqual(stored.updatedAt, at(2))
        assert.strictEqual(stored.providerStatus, "DONE")
        assert.deepStrictEqual(
          stored.events.map((e) => [e.sequence, e.from, e.to, e.source, e.accepted]),
          [[1, null, "requested", "submit", true], [2, "requested", "pending", "submit", true], [3, "pending", "succeeded", "webhook", true], [
            4,
            "succeeded",
            "failed",
            "sync",
            false
          ]]
        )
        assert.match(stored.events[3]!.detail ?? "", /^refused: succeeded -> failed is not a legal transition \(late FAILED\)$/)
        const missing = yield* Effect.flip(ledger.transition("rfd_00000000000000000000000000", { to: "pending", source: "sync", at: at(4) }))
        assert.strictEqual(missing._tag, "RefundNotFound")
      }))

    it.scopedLive("concurrent changes to one refund are serialised: no lost event", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const refund = draft("busy")
        yield* ledger.claim(refund)
        yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1) })
        const results = yield* Effect.all(
          Array.from({ length: 30 }, (_, i) =>
            Effect.either(ledger.transition(refund.id, i === 15
              ? { to: "succeeded", source: "webhook", at: at(2 + i) }
              : { to: "pending", source: "sync", at: at(2 + i), providerStatus: `P${i}` }))),
          { concurrency: "unbounded" }
        )
        const stored = yield* ledger.get(refund.id)
        assert.strictEqual(stored.status, "succeeded")
        assert.deepStrictEqual(stored.events.map((e) => e.sequence), Array.from({ length: 32 }, (_, i) => i + 1))
        // Every change after the success was refused and says so in the history.
        const afterSuccess = stored.events.slice(stored.events.findIndex((e) => e.to === "succeeded") + 1)
        assert.isTrue(afterSuccess.every((e) => !e.accepted))
        assert.strictEqual(results.filter(Either.isLeft).length, afterSuccess.length)
      }))

    it.scopedLive("lists newest first, with filters and a cursor that survives inserts", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        for (let n = 1; n <= 5; n++) yield* ledger.claim(draft(`key-${n}`, { n, provider: n % 2 === 0 ? "even" : "odd" }))
        const keys = (page: Ledger.Page) => page.items.map((r) => r.idempotencyKey)
        const first = yield* ledger.list({ limit: 2 })
        assert.deepStrictEqual(keys(first), ["key-5", "key-4"])
        yield* ledger.claim(draft("key-6", { n: 6, provider: "even" }))
        const second = yield* ledger.list({ limit: 2, cursor: first.nextCursor })
        assert.deepStrictEqual(keys(second), ["key-3", "key-2"])
        const third = yield* ledger.list({ limit: 2, cursor: second.nextCursor })
        assert.deepStrictEqual(keys(third), ["key-1"])
        assert.isUndefined(third.nextCursor)
        assert.deepStrictEqual(keys(yield* ledger.list({ limit: 10, provider: "odd" })), ["key-5", "key-3", "key-1"])
        assert.deepStrictEqual(keys(yield* ledger.list({ limit: 10, createdFrom: at(2), createdTo: at(5) })), ["key-4", "key-3", "key-2"])
        yield* ledger.transition(draft("key-3", { provider: "odd" }).id, { to: "failed", source: "submit", at: at(9) })
        assert.deepStrictEqual(keys(yield* ledger.list({ limit: 10, status: "failed" })), ["key-3"])
        assert.deepStrictEqual(keys(yield* ledger.list({ limit: 10, status: "requested", provider: "even" })), ["key-6", "key-4", "key-2"])
        // By status alone across both providers, newest first, page after page.
        const byStatus = yield* ledger.list({ limit: 2, status: "requested" })
        assert.deepStrictEqual(keys(byStatus), ["key-6", "key-5"])
        const byStatus2 = yield* ledger.list({ limit: 2, status: "requested", cursor: byStatus.nextCursor })
        assert.deepStrictEqual(keys(byStatus2), ["key-4", "key-2"])
        const byStatus3 = yield* ledger.list({ limit: 2, status: "requested", cursor: byStatus2.nextCursor })
        assert.deepStrictEqual(keys(byStatus3), ["key-1"])
        assert.isUndefined(byStatus3.nextCursor)
        const all = yield* ledger.list({ limit: 6 })
        assert.deepStrictEqual(keys(all), ["key-6", "key-5", "key-4", "key-3", "key-2", "key-1"])
        assert.isUndefined(all.nextCursor)
      }))

    it.scopedLive("lists the refunds against one target of one provider, newest first, page after page", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const keys = (page: Ledger.Page) => page.items.map((r) => r.idempotencyKey)
        // Refunds against tx-1 and tx-2 at two providers; one refund carries both targets.
        const targets = [["tx-1"], ["tx-2"], ["tx-1", "tx-2"], ["tx-1"], ["tx-1"], ["tx-3"]]
        for (let n = 0; n < targets.length; n++) {
          yield* ledger.claim(draft(`t-${n}`, { n, provider: "toy", targets: targets[n]!.map((target) => ({ target, amount: "1.00" })) }))
        }
        yield* ledger.claim(draft("other-0", { n: 9, provider: "other", targets: [{ target: "tx-1", amount: "1.00" }] }))
        const first = yield* ledger.list({ provider: "toy", target: "tx-1", limit: 2 })
        assert.deepStrictEqual(keys(first), ["t-4", "t-3"])
        // A refund claimed after the first page is not on the later ones.
        yield* ledger.claim(draft("t-late", { n: 10, provider: "toy", targets: [{ target: "tx-1", amount: "1.00" }] }))
        const second = yield* ledger.list({ provider: "toy", target: "tx-1", limit: 2, cursor: first.nextCursor })
        assert.deepStrictEqual(keys(second), ["t-2", "t-0"])
        assert.isUndefined(second.nextCursor)
        assert.deepStrictEqual(keys(yield* ledger.list({ provider: "toy", target: "tx-2", limit: 10 })), ["t-2", "t-1"])
        assert.deepStrictEqual(keys(yield* ledger.list({ provider: "other", target: "tx-1", limit: 10 })), ["other-0"])
        assert.deepStrictEqual(keys(yield* ledger.list({ provider: "toy", target: "tx-9", limit: 10 })), [])
        // With the other filters.
        yield* ledger.transition(draft("t-3", { provider: "toy" }).id, { to: "failed", source: "submit", at: at(20) })
        assert.deepStrictEqual(keys(yield* ledger.list({ provider: "toy", target: "tx-1", status: "failed", limit: 10 })), ["t-3"])
        assert.deepStrictEqual(
          keys(yield* ledger.list({ provider: "toy", target: "tx-1", createdFrom: at(2), createdTo: at(5), limit: 10 })),
          ["t-4", "t-3", "t-2"]
        )
        // A target is a provider's own id: without the provider it is refused, naming the field.
        const refused = yield* Effect.flip(ledger.list({ target: "tx-1", limit: 10 }))
        assert.strictEqual(refused._tag, "InvalidRequest")
        if (refused._tag === "InvalidRequest") assert.deepStrictEqual(refused.issues.map((i) => i.path), ["target"])
      }))

    it.scopedLive("lists by creation time: exactly the refunds created in the range whatever order they were recorded in, newest created first, page after page", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const keys = (page: Ledger.Page) => page.items.map((r) => r.idempotencyKey)
        // Recorded in this order, created at these seconds (gateways' clocks disagree): the range is [10, 20).
        const created: ReadonlyArray<readonly [string, number, string?]> = [
          ["c-0", 9, "tx-1"], ["c-1", 15, "tx-1"], ["c-2", 10], ["c-3", 25], ["c-4", 12], ["c-5", 20], ["c-6", 15], ["c-7", 3], ["c-8", 19, "tx-1"], ["c-9", 11]
        ]
        for (const [key, n, target] of created) {
          yield* ledger.claim(draft(key, { n, provider: key === "c-9" ? "other" : "toy", targets: target === undefined ? [] : [{ target, amount: "1.00" }] }))
        }
        const range = { createdFrom: at(10), createdTo: at(20) }
        const first = yield* ledger.list({ ...range, limit: 2 })
        assert.deepStrictEqual(keys(first), ["c-8", "c-6"])
        // Created after the last refund handed out: not on the later pages, which go on where the first stopped.
        yield* ledger.claim(draft("c-late", { n: 16 }))
        const second = yield* ledger.list({ ...range, limit: 2, cursor: first.nextCursor })
        assert.deepStrictEqual(keys(second), ["c-1", "c-4"])
        const third = yield* ledger.list({ ...range, limit: 2, cursor: second.nextCursor })
        assert.deepStrictEqual(keys(third), ["c-9", "c-2"])
        assert.isUndefined(third.nextCursor)
        assert.deepStrictEqual(keys(yield* ledger.list({ ...range, limit: 10 })), ["c-8", "c-late", "c-6", "c-1", "c-4", "c-9", "c-2"])
        // One bound alone, and each combined with the other filters.
        assert.deepStrictEqual(keys(yield* ledger.list({ createdTo: at(10), limit: 10 })), ["c-0", "c-7"])
        assert.deepStrictEqual(keys(yield* ledger.list({ createdFrom: at(20), limit: 10 })), ["c-3", "c-5"])
        assert.deepStrictEqual(keys(yield* ledger.list({ createdFrom: at(15), createdTo: at(15), limit: 10 })), [])
        assert.deepStrictEqual(keys(yield* ledger.list({ ...range, provider: "other", limit: 10 })), ["c-9"])
        yield* ledger.transition(draft("c-4").id, { to: "failed", source: "submit", at: at(30) })
        yield* ledger.transition(draft("c-3").id, { to: "failed", source: "submit", at: at(30) })
        assert.deepStrictEqual(keys(yield* ledger.list({ ...range, status: "failed", limit: 10 })), ["c-4"])
        assert.deepStrictEqual(keys(yield* ledger.list({ ...range, status: "requested", provider: "toy", limit: 3 })), ["c-8", "c-late", "c-6"])
        const byTarget = yield* ledger.list({ ...range, provider: "toy", target: "tx-1", limit: 1 })
        assert.deepStrictEqual(keys(byTarget), ["c-8"])
        const byTarget2 = yield* ledger.list({ ...range, provider: "toy", target: "tx-1", limit: 1, cursor: byTarget.nextCursor })
        assert.deepStrictEqual(keys(byTarget2), ["c-1"])
        assert.isUndefined(byTarget2.nextCursor)
        // A cursor goes on with a list of its own kind only.
        const plain = yield* ledger.list({ limit: 1 })
        for (const [query, cursor] of [[range, plain.nextCursor], [{}, first.nextCursor]] as const) {
          const refused = yield* Effect.flip(ledger.list({ ...query, limit: 2, cursor }))
          assert.strictEqual(refused._tag, "InvalidRequest")
          if (refused._tag === "InvalidRequest") assert.deepStrictEqual(refused.issues.map((i) => i.path), ["cursor"])
        }
        // Bounds in another form than createdAt's would compare wrongly as text; the wrong way round is a mistake.
        for (const [query, path, rule] of [
          [{ createdFrom: "2024-01-01T00:00:10Z" }, "createdFrom", "as the ledger writes createdAt"],
          [{ createdTo: "2024-01-01T01:00:10.000+01:00" }, "createdTo", "as the ledger writes createdAt"],
          [{ createdFrom: at(20), createdTo: at(10) }, "createdFrom", "must not be after createdTo"]
        ] as const) {
          const refused = yield* Effect.flip(ledger.list({ ...query, limit: 10 }))
          assert.strictEqual(refused._tag, "InvalidRequest")
          if (refused._tag === "InvalidRequest") {
            assert.deepStrictEqual(refused.issues.map((i) => i.path), [path])
            assert.include(refused.issues[0]!.message, rule)
          }
        }
      }))

    it.scopedLive("counts the refunds in some statuses, by provider", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const count = ledger.countByStatus
        if (count === undefined) return yield* Effect.die("every ledger here counts refunds by status")
        const moves = [["a", "unknown"], ["a", "unknown"], ["b", "unknown"], ["a", "requires_action"], ["a", "succeeded"], ["b", "requested"], ["b", "pending"]] as const
        for (const [i, [provider, status]] of moves.entries()) {
          const refund = draft(`c-${i}`, { n: i, provider })
          yield* ledger.claim(refund)
          if (status === "requires_action") yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(10) })
          if (status !== "requested") yield* ledger.transition(refund.id, { to: status, source: "sync", at: at(20) })
        }
        const sorted = (counts: ReadonlyArray<Ledger.StatusCount>) =>
          [...counts].sort((x, y) => `${x.provider} ${x.status}`.localeCompare(`${y.provider} ${y.status}`))
        assert.deepStrictEqual(sorted(yield* count(["requested", "unknown", "requires_action"])), [
          { provider: "a", status: "requires_action", count: 1 },
          { provider: "a", status: "unknown", count: 2 },
          { provider: "b", status: "requested", count: 1 },
          { provider: "b", status: "unknown", count: 1 }
        ])
        assert.deepStrictEqual(yield* count(["failed"]), [])
        assert.deepStrictEqual(yield* count([]), [])
      }))

    it.scopedLive("returns refunds needing sync, oldest update first, by provider", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const statuses = ["pending", "unknown", "requires_action", "succeeded", "failed", "requested"] as const
        const updated = [50, 10, 30, 5, 6, 1]
        for (let i = 0; i < statuses.length; i++) {
          const refund = draft(`s-${i}`, { n: i, provider: i % 2 === 0 ? "a" : "b" })
          yield* ledger.claim(refund)
          if (statuses[i] !== "requested") yield* ledger.transition(refund.id, { to: statuses[i]!, source: "submit", at: at(updated[i]!) })
        }
        const due = yield* ledger.needingSync({ limit: 10 })
        assert.deepStrictEqual(due.map((r) => r.idempotencyKey), ["s-1", "s-2", "s-0"])
        assert.deepStrictEqual((yield* ledger.needingSync({ limit: 2 })).map((r) => r.idempotencyKey), ["s-1", "s-2"])
        assert.deepStrictEqual((yield* ledger.needingSync({ limit: 10, providers: ["a"] })).map((r) => r.idempotencyKey), ["s-2", "s-0"])
        assert.deepStrictEqual(yield* ledger.needingSync({ limit: 10, providers: [] }), [])
      }))

    it.scopedLive("a refund whose provider status is final is not due for sync until a change says otherwise", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const [charged, open] = [draft("final-1", { n: 1 }), draft("final-2", { n: 2 })]
        for (const refund of [charged, open]) yield* ledger.claim(refund)
        yield* ledger.transition(open.id, { to: "pending", source: "submit", at: at(20), providerStatus: "NEW" })
        const final = yield* ledger.transition(charged.id, { to: "requires_action", source: "sync", at: at(10), providerStatus: "CHARGEBACK", providerFinal: true })
        assert.strictEqual(final.providerFinal, true)
        assert.strictEqual((yield* ledger.get(charged.id)).providerFinal, true)
        assert.deepStrictEqual((yield* ledger.needingSync({ limit: 10 })).map((r) => r.id), [open.id])
        // Nor is it leased to a sync worker.
        const { claimForSync, releaseSync } = yield* leasing(ledger)
        assert.deepStrictEqual((yield* claimForSync({ owner: "w", at: at(25), until: at(26), limit: 10 })).map((r) => r.id), [open.id])
        yield* releaseSync({ owner: "w", ids: [open.id] })
        // A change without a provider word (a note by a person) keeps it; a new word that is not final drops it.
        yield* ledger.transition(charged.id, { to: "requires_action", source: "operator", at: at(30), detail: "asked the bank" })
        assert.deepStrictEqual((yield* ledger.needingSync({ limit: 10 })).map((r) => r.id), [open.id])
        const reopened = yield* ledger.transition(charged.id, { to: "requires_action", source: "webhook", at: at(40), providerStatus: "DISPUTE_REVIEW" })
        assert.isUndefined(reopened.providerFinal)
        assert.deepStrictEqual((yield* ledger.needingSync({ limit: 10 })).map((r) => r.id), [open.id, charged.id])
        // A refund that needs no sync carries no flag, whatever the provider said.
        const done = yield* ledger.transition(open.id, { to: "succeeded", source: "sync", at: at(50), providerStatus: "SUCCEED", providerFinal: true })
        assert.isUndefined(done.providerFinal)
        assert.isUndefined((yield* ledger.get(open.id)).providerFinal)
      }))

    it.scopedLive("leases refunds to one sync worker at a time", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const { claimForSync, releaseSync } = yield* leasing(ledger)
        for (let i = 0; i < 12; i++) {
          const refund = draft(`sync-${i}`, { n: i, provider: i < 10 ? "a" : "b" })
          yield* ledger.claim(refund)
          yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(100 - i) })
        }
        const lease = (owner: string) => claimForSync({ owner, at: at(200), until: at(260), providers: ["a"], limit: 4 })
        const batches = yield* Effect.all([lease("w1"), lease("w2"), lease("w3")], { concurrency: "unbounded" })
        const ids = batches.flat().map((r) => r.idempotencyKey)
        assert.strictEqual(ids.length, 10)
        assert.strictEqual(new Set(ids).size, 10, "no refund leased twice")
        assert.isTrue(batches.every((batch) => batch.length <= 4))
        // Oldest update first within a batch.
        for (const batch of batches) {
          const times = batch.map((r) => r.updatedAt)
          assert.deepStrictEqual(times, [...times].sort())
        }
        assert.deepStrictEqual(yield* lease("w4"), [])
        // Released leases and expired ones are free again.
        const released = batches.find((b) => b.length > 0)!
        yield* releaseSync({ owner: "someone-else", ids: released.map((r) => r.id) })
        assert.deepStrictEqual(yield* lease("w4"), [])
        const owner = ["w1", "w2", "w3"][batches.indexOf(released)]!
        yield* releaseSync({ owner, ids: released.map((r) => r.id) })
        assert.sameMembers((yield* lease("w4")).map((r) => r.id), released.map((r) => r.id))
        const later = yield* claimForSync({ owner: "w5", at: at(261), until: at(300), providers: ["a"], limit: 100 })
        assert.strictEqual(later.length, 10)
        // needingSync itself ignores leases: it is core's read-only view.
        assert.strictEqual((yield* ledger.needingSync({ limit: 100 })).length, 12)
      }))

    it.scopedLive("a refund never leased for sync comes before older ones whose leases ran out: old refunds that never move cannot starve it", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const { claimForSync } = yield* leasing(ledger)
        const ids: Array<string> = []
        for (let i = 0; i < 4; i++) {
          const refund = draft(`starve-${i}`, { n: i, provider: "a" })
          yield* ledger.claim(refund)
          // Three old refunds, then a new one.
          yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(i < 3 ? 10 + i : 50) })
          ids.push(refund.id)
        }
        const lease = (from: number, limit: number) => claimForSync({ owner: "w", at: at(from), until: at(from + 10), providers: ["a"], limit })
        assert.deepStrictEqual((yield* lease(100, 3)).map((r) => r.id), ids.slice(0, 3), "never leased: oldest update first")
        // Their syncs changed nothing (updated_at stays old) and their leases ran out.
        assert.deepStrictEqual((yield* lease(111, 1)).map((r) => r.id), [ids[3]], "the new refund, not an old one again")
        assert.deepStrictEqual((yield* lease(122, 3)).map((r) => r.id), ids.slice(0, 3), "then the least recently leased")
      }))

    it.scopedLive("recovers refunds left in requested past the grace, and nothing else", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const old = draft("old", { n: 0 })
        const young = draft("young", { n: 100 })
        const moving = draft("moving", { n: 0 })
        for (const r of [old, young, moving]) yield* ledger.claim(r)
        yield* ledger.transition(moving.id, { to: "pending", source: "submit", at: at(1) })
        const moved = yield* ledger.recover({ olderThan: at(50), at: at(60) })
        assert.deepStrictEqual(moved.map((r) => r.id), [old.id])
        const recovered = yield* ledger.get(old.id)
        assert.strictEqual(recovered.status, "unknown")
        assert.strictEqual(recovered.updatedAt, at(60))
        assert.deepStrictEqual(recovered.events.at(-1), {
          sequence: 2,
          at: at(60),
          source: "recovery",
          from: "requested",
          to: "unknown",
          accepted: true,
          detail: "left in requested by an interrupted process; not resent"
        })
        assert.strictEqual((yield* ledger.get(young.id)).status, "requested")
        assert.strictEqual((yield* ledger.get(moving.id)).status, "pending")
        assert.deepStrictEqual(yield* ledger.recover({ olderThan: at(50), at: at(61) }), [])
      }))

    it.scopedLive("recovers a refund recorded as not sent (its packed call refused as a whole) as failed, and one sent since as unknown", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const waiting = draft("waiting", { n: 0 })
        const sending = draft("sending", { n: 0 })
        const notSent = { code: "not_sent", message: "not sent: the call packing it with 1 other refund was refused as a whole (no); it waits for a call of its own" }
        for (const r of [waiting, sending]) {
          yield* ledger.claim(r)
          yield* ledger.transition(r.id, { to: "requested", source: "submit", at: at(1), error: notSent, detail: notSent.message })
        }
        yield* ledger.transition(sending.id, { to: "requested", source: "submit", at: at(2), error: null, detail: "sent on its own" })
        const moved = yield* ledger.recover({ olderThan: at(50), at: at(60) })
        assert.deepStrictEqual(moved.map((r) => [r.id, r.status]).sort(), [[sending.id, "unknown"], [waiting.id, "failed"]].sort())
        const failed = yield* ledger.get(waiting.id)
        assert.deepStrictEqual(failed.error, notSent, "the failure says why nothing was sent")
        assert.deepStrictEqual(failed.events.map((e) => [e.source, e.from, e.to]), [
          ["submit", null, "requested"],
          ["submit", "requested", "requested"],
          ["recovery", "requested", "failed"]
        ])
        assert.include(failed.events.at(-1)!.detail, "before its call was sent")
        assert.isUndefined((yield* ledger.get(sending.id)).error)
      }))
  })
