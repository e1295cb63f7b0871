// An operator's verdict (Refunds.resolve): corrections of a verdict recorded by hand, the error a
// verdict leaves, a provider's chargeback after an operator's succeeded, and an update in doubt.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Ledger from "../src/Ledger.js"
import * as Provider from "../src/Provider.js"
import { OutcomeUnknown, ProviderUnavailable, UnexpectedResponse } from "../src/RefundError.js"
import * as Refunds from "../src/Refunds.js"
import { create, toy } from "./toyProvider.js"

describe("Refunds.resolve", () => {
  it.scopedLive("corrects an operator's verdict only with correct: failed frees the targets, succeeded takes them back unless another refund holds one", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const first = yield* create("first", "esim-1")
      const credited = yield* refunds.resolve(first.id, "succeeded", "operator: credited, seen on the balance")
      assert.deepStrictEqual(credited.items.map((i) => [i.status, i.settledBy]), [["succeeded", "operator"]])

      // A final status stays final without the word: a typo's id must not overturn another refund's verdict.
      assert.strictEqual((yield* Effect.flip(refunds.resolve(first.id, "failed", "operator: typo"))).code, "illegal_transition")
      const events = (yield* refunds.get(first.id)).events.filter((e) => e.accepted).length

      // succeeded -> failed: the item the verdict settled is the verdict's, not the provider's word, so the
      // rule against failing a refunded target does not read it; the correction settles it again.
      const failed = yield* refunds.resolve(first.id, "failed", "operator: it was the other eSIM", { correct: true })
      assert.strictEqual(failed.status, "failed")
      assert.deepStrictEqual(failed.items.map((i) => [i.status, i.providerStatus, i.settledBy]), [["failed", "accepted_for_review", "operator"]])
      const event = failed.events.at(-1)!
      assert.deepStrictEqual([event.source, event.from, event.to, event.accepted], ["operator", "succeeded", "failed", true])
      assert.strictEqual(event.detail, `corrects the succeeded an operator recorded at ${credited.updatedAt}: operator: it was the other eSIM`)
      assert.strictEqual(failed.events.filter((e) => e.accepted).length, events + 1)

      // Freed, as any hand-made failed: a second refund of the eSIM is sent.
      const second = yield* create("second", "esim-1")
      assert.strictEqual(second.status, "pending")
      // failed -> succeeded would count esim-1 refunded twice: refused naming the refund that holds it, nothing recorded.
      const held = yield* Effect.flip(refunds.resolve(first.id, "succeeded", "operator: credited after all", { correct: true }))
      assert.strictEqual(held._tag, "TargetAlreadyRefunded")
      if (held._tag === "TargetAlreadyRefunded") assert.deepStrictEqual([held.target, held.refundId, held.status], ["esim-1", second.id, "pending"])
      assert.deepStrictEqual(yield* refunds.get(first.id), failed, "nothing was recorded")

      // Once the other refund is settled failed, the correction takes the eSIM back, and holds it.
      yield* refunds.resolve(second.id, "failed", "operator: refused by email, the first was credited")
      const back = yield* refunds.resolve(first.id, "succeeded", "operator: credited after all", { correct: true })
      assert.strictEqual(back.status, "succeeded")
      assert.isUndefined(back.error)
      assert.deepStrictEqual(back.items.map((i) => [i.status, i.settledBy]), [["succeeded", "operator"]])
      assert.include(back.events.at(-1)!.detail!, `corrects the failed an operator recorded at ${failed.updatedAt}`)
      const third = yield* Effect.flip(create("third", "esim-1"))
      assert.strictEqual(third._tag === "TargetAlreadyRefunded" ? third.refundId : third._tag, first.id)
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("correct is refused for a refund with no verdict, the status it has, and a final status the provider set; failed keeps its rules", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fields = (error: { readonly _tag: string; readonly issues?: ReadonlyArray<{ readonly path: string }> }) =>
        [error._tag, ...(error.issues ?? []).map((i) => i.path)]

      const pending = yield* create("pending", "esim-10")
      const open = yield* Effect.flip(refunds.resolve(pending.id, "succeeded", "operator: credited", { correct: true }))
      assert.deepStrictEqual(fields(open), ["InvalidRequest", "correct"])
      assert.include(open.message, `refund ${pending.id} is pending: there is no verdict to correct`)

      const settled = yield* refunds.resolve(pending.id, "succeeded", "operator: credited")
      const same = yield* Effect.flip(refunds.resolve(settled.id, "succeeded", "operator: credited", { correct: true }))
      assert.deepStrictEqual(fields(same), ["InvalidRequest", "correct"])
      assert.include(same.message, "is already succeeded: there is nothing to correct")

      t.submits.push(Effect.succeed({ status: "succeeded", providerStatus: "DONE", items: [{ target: "esim-11", status: "succeeded", providerStatus: "DONE" }] }))
      const byProvider = yield* create("provider", "esim-11")
      const final = yield* Effect.flip(refunds.resolve(byProvider.id, "failed", "operator: typo", { correct: true }))
      assert.deepStrictEqual(fields(final), ["InvalidRequest", "correct"])
      assert.include(final.message, `refund ${byProvider.id} is succeeded, set by toy (submit) at ${byProvider.updatedAt}`)
      assert.deepStrictEqual(yield* refunds.get(byProvider.id), byProvider, "nothing was recorded")
      // The same refusal as data, which the CLI words with its flags.
      assert.deepStrictEqual(Refunds.correctionRefusal(byProvider, "failed"), {
        reason: "set_by_provider",
        status: "succeeded",
        setBy: "toy (submit)",
        at: byProvider.updatedAt
      })
      assert.deepStrictEqual(Refunds.correctionRefusal(pending, "succeeded"), { reason: "not_final", status: "pending" })
      assert.deepStrictEqual(Refunds.correctionRefusal(settled, "succeeded"), { reason: "same_status", status: "succeeded" })
      assert.isUndefined(Refunds.correctionRefusal(settled, "failed"))
      // Nor the provider's answer to an update (AeroHub's REFUNDED), which is recorded as the operator's change.
      const updated = yield* create("updated", "order-11")
      t.updates.push(Effect.succeed({ status: "succeeded", providerStatus: "REFUNDED" }))
      const reported = yield* refunds.update(updated.id, { targets: ["order-11"], step: "REFUNDED" })
      assert.deepStrictEqual([reported.status, reported.events.at(-1)!.source], ["succeeded", "operator"])
      const answered = yield* Effect.flip(refunds.resolve(updated.id, "failed", "operator: typo", { correct: true }))
      assert.deepStrictEqual(fields(answered), ["InvalidRequest", "correct"])
      assert.include(answered.message, `is succeeded, set by toy (its answer to an update) at ${reported.updatedAt}`)

      // A refund the provider partly refunded: an operator settled it succeeded, and a correction to failed would
      // free esim-12, which the provider reported refunded.
      t.submits.push(Effect.succeed({
        status: "requires_action",
        providerStatus: "accepted+refused",
        items: [{ target: "esim-12", status: "succeeded", providerStatus: "accepted" }, { target: "esim-13", status: "failed", providerStatus: "refused" }]
      }))
      const mixed = yield* create("mixed", "esim-12", "esim-13")
      yield* refunds.resolve(mixed.id, "succeeded", "operator: esim-12 credited")
      const refunded = yield* Effect.flip(refunds.resolve(mixed.id, "failed", "operator: typo", { correct: true }))
      assert.deepStrictEqual(fields(refunded), ["InvalidRequest", "status"])
      assert.include(refunded.message, `refund ${mixed.id} cannot be failed: the provider reported esim-12 succeeded`)
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("a refund resolved failed drops the in-doubt error that no longer says what happened, and keeps a provider's decline", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      t.submits.push(Effect.fail(new OutcomeUnknown({ provider: "toy", detail: "no answer within 30 s" })))
      const lost = yield* Effect.flip(refunds.create({ provider: "toy", idempotencyKey: "lost", request: { targets: ["esim-20"] } }))
      const id = lost._tag === "OutcomeUnknown" ? lost.refundId! : ""
      assert.strictEqual((yield* refunds.get(id)).error?.code, "outcome_unknown")
      const failed = yield* refunds.resolve(id, "failed", "operator: toy does not hold it")
      assert.strictEqual(failed.status, "failed")
      assert.isUndefined(failed.error, "its \"kept as unknown\" no longer holds")
      assert.deepStrictEqual(yield* refunds.get(id), failed)

      // The provider's own no, recorded beside a status not yet final, is what it said: kept.
      const ledger = yield* Ledger.Ledger
      const declined = yield* create("declined", "esim-21")
      const decline = { code: "provider_declined", message: "toy declined the refund (USED): the eSIM was used" }
      yield* ledger.transition(declined.id, { to: "requires_action", source: "sync", at: new Date().toISOString(), providerStatus: "USED", error: decline })
      assert.deepStrictEqual((yield* refunds.resolve(declined.id, "failed", "operator: refused")).error, decline)
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("a chargeback after an operator's succeeded moves the refund to requires_action for a person, and sync answers with it", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const refund = yield* create("chargeback", "esim-30")
      yield* refunds.resolve(refund.id, "succeeded", "operator: credited")
      t.statuses.push(Effect.succeed({ status: "requires_action", providerStatus: "CHARGEBACK", providerFinal: true, detail: "the cardholder won a dispute" }))
      const synced = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([synced.status, synced.providerStatus, synced.providerFinal], ["requires_action", "CHARGEBACK", true])
      assert.include(synced.events.at(-1)!.detail!, "toy reports requires_action (CHARGEBACK) to a status query after an operator recorded succeeded")
      // A person settles it again, without correct: it is no longer final.
      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: reconciled, the dispute was reversed")
      assert.strictEqual(settled.status, "succeeded")
      // The same CHARGEBACK asked again is what the operator settled: nothing recorded, the verdict stands.
      t.statuses.push(Effect.succeed({ status: "requires_action", providerStatus: "CHARGEBACK", providerFinal: true, detail: "the cardholder won a dispute" }))
      assert.deepStrictEqual(yield* refunds.sync(refund.id), settled)
      assert.deepStrictEqual(yield* refunds.get(refund.id), settled)
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("a chargeback after the provider's own succeeded moves the refund to requires_action; resolved, a repeat of it changes nothing", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const refund = yield* create("provider-chargeback", "esim-31")
      t.statuses.push(Effect.succeed({ status: "succeeded", providerStatus: "DONE" }))
      const made = yield* refunds.sync(refund.id)
      assert.strictEqual(made.status, "succeeded")
      const chargeback = Effect.succeed<Provider.Outcome>({ status: "requires_action", providerStatus: "CHARGEBACK", providerFinal: true, detail: "the cardholder won a dispute" })
      t.statuses.push(chargeback)
      const charged = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([charged.status, charged.providerStatus, charged.providerFinal], ["requires_action", "CHARGEBACK", true])
      assert.strictEqual(
        charged.events.at(-1)!.detail,
        `toy reported CHARGEBACK to a status query after it had reported DONE to a status query at ${made.updatedAt}: ` +
          "the refund it made is charged back or disputed, and the customer may have been repaid twice; " +
          "check with toy and settle it with refundkit resolve (the cardholder won a dispute)"
      )
      // Its eSIM is still held: a whole refund of it is refused, naming this one.
      const second = yield* Effect.flip(create("provider-chargeback-again", "esim-31"))
      assert.deepStrictEqual(second._tag === "TargetAlreadyRefunded" ? [second.refundId, second.status] : [second._tag], [refund.id, "requires_action"])

      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: the dispute was lost, the refund stands")
      assert.deepStrictEqual([settled.status, settled.events.at(-1)!.source, settled.events.at(-1)!.detail], ["succeeded", "operator", "operator: the dispute was lost, the refund stands"])
      t.statuses.push(chargeback)
      assert.deepStrictEqual(yield* refunds.sync(refund.id), settled, "the same word again records nothing")
      // A new word is news.
      t.statuses.push(Effect.succeed({ status: "requires_action", providerStatus: "DISPUTED", providerFinal: true }))
      assert.strictEqual((yield* refunds.sync(refund.id)).status, "requires_action")
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("a failed after the provider's own succeeded holds the eSIM until resolve failed --release-targets; a plain failed keeps it held", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const refund = yield* create("reversed", "esim-51")
      t.statuses.push(Effect.succeed({ status: "succeeded", providerStatus: "DONE", items: [{ target: "esim-51", status: "succeeded", providerStatus: "DONE" }] }))
      const made = yield* refunds.sync(refund.id)
      assert.strictEqual(made.status, "succeeded")
      const reversal = Effect.succeed<Provider.Outcome>({
        status: "failed",
        providerStatus: "REVERSED",
        providerFinal: true,
        decline: { providerCode: "REVERSED", reason: "the card account is closed" }
      })
      t.statuses.push(reversal)
      const reversed = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([reversed.status, reversed.providerStatus, reversed.providerFinal], ["requires_action", "REVERSED", true])
      assert.strictEqual(
        reversed.events.at(-1)!.detail,
        `toy reported REVERSED (declined (REVERSED): the card account is closed) to a status query after it had reported DONE to a status query at ${made.updatedAt}: ` +
          "the refund may have been reversed and the customer not repaid, and its targets stay held; check with toy and settle it with refundkit resolve: " +
          "succeeded if the refund stands, or failed --release-targets if toy confirms the reversal, which lets its targets be refunded again"
      )
      const heldBy = (status: string) =>
        Effect.map(Effect.flip(create(`again-${status}`, "esim-51")), (second) =>
          assert.deepStrictEqual(second._tag === "TargetAlreadyRefunded" ? [second.refundId, second.status] : [second._tag], [refund.id, status]))
      yield* heldBy("requires_action")
      // The same word again (a status query asked by hand) records nothing: it would make the refund failed, its eSIM free.
      t.statuses.push(reversal)
      assert.deepStrictEqual(yield* refunds.sync(refund.id), reversed)

      // failed alone: the operator says the refund did not stand, not that the eSIM may be refunded again.
      const failed = yield* refunds.resolve(refund.id, "failed", "operator: toy reversed it; repaid by bank transfer")
      assert.deepStrictEqual([failed.status, failed.holdsTarget, failed.events.at(-1)!.detail], ["failed", true, "operator: toy reversed it; repaid by bank transfer"])
      assert.deepStrictEqual(failed.items.map((i) => [i.status, i.providerStatus, i.settledBy]), [["failed", "DONE", "operator"]])
      yield* heldBy("failed")
      t.statuses.push(reversal)
      assert.deepStrictEqual(yield* refunds.sync(refund.id), failed, "the same word does not drop the hold the verdict kept")

      const released = yield* refunds.resolve(refund.id, "failed", "operator: toy confirmed the reversal", { releaseTargets: true })
      assert.deepStrictEqual([released.status, released.holdsTarget], ["failed", undefined])
      assert.strictEqual(released.events.at(-1)!.detail, "operator: toy confirmed the reversal (targets released: toy took this refund back after it had made it)")
      assert.strictEqual((yield* create("again-released", "esim-51")).status, "pending", "a second refund of the eSIM is sent")
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("a reversed refund resolved failed --release-targets at once frees its eSIM; resolved succeeded, the same word again changes nothing", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const reversal = Effect.succeed<Provider.Outcome>({ status: "failed", providerStatus: "REVERSED", providerFinal: true })
      const reversedRefund = (key: string, esim: string) =>
        Effect.gen(function*() {
          const refund = yield* create(key, esim)
          t.statuses.push(Effect.succeed({ status: "succeeded", providerStatus: "DONE" }), reversal)
          yield* refunds.sync(refund.id)
          const reversed = yield* refunds.sync(refund.id)
          assert.strictEqual(reversed.status, "requires_action")
          return reversed
        })

      const confirmed = yield* reversedRefund("confirmed", "esim-61")
      assert.strictEqual((yield* Effect.flip(create("confirmed-again", "esim-61")))._tag, "TargetAlreadyRefunded")
      const released = yield* refunds.resolve(confirmed.id, "failed", "operator: toy confirmed the reversal", { releaseTargets: true })
      assert.deepStrictEqual([released.status, released.holdsTarget], ["failed", undefined])
      assert.strictEqual((yield* create("confirmed-again", "esim-61")).status, "pending")

      const stands = yield* reversedRefund("stands", "esim-62")
      const settled = yield* refunds.resolve(stands.id, "succeeded", "operator: toy says the refund stands")
      assert.deepStrictEqual([settled.status, settled.error], ["succeeded", undefined])
      t.statuses.push(reversal)
      assert.deepStrictEqual(yield* refunds.sync(stands.id), settled, "the word the verdict settled, again, records nothing")
      assert.strictEqual((yield* Effect.flip(create("stands-again", "esim-62")))._tag, "TargetAlreadyRefunded")
      // A new word is news.
      t.statuses.push(Effect.succeed({ status: "failed", providerStatus: "CANCELLED" }))
      assert.strictEqual((yield* refunds.sync(stands.id)).status, "requires_action")

      // A succeeded verdict corrected to failed keeps the eSIM as a failed verdict would.
      const corrected = yield* reversedRefund("corrected", "esim-63")
      yield* refunds.resolve(corrected.id, "succeeded", "operator: toy says it stands")
      const failed = yield* refunds.resolve(corrected.id, "failed", "operator: toy reversed it after all", { correct: true })
      assert.deepStrictEqual([failed.status, failed.holdsTarget], ["failed", true])
      assert.strictEqual((yield* Effect.flip(create("corrected-again", "esim-63")))._tag, "TargetAlreadyRefunded")
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("an update whose answer was lost says to send the same update again", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const refund = yield* create("update", "order-40")
      t.updates.push(Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "the connection failed after the request was sent", maybeProcessed: true })))
      const lost = yield* Effect.flip(refunds.update(refund.id, { targets: ["order-40"], step: "REFUNDED_PENDING" }))
      assert.strictEqual(lost._tag, "ProviderUnavailable")
      if (lost._tag === "ProviderUnavailable") {
        assert.deepStrictEqual([lost.refundId, lost.status, lost.maybeProcessed], [refund.id, "pending", true])
      }
      assert.include(
        lost.message,
        "the update may have been applied. Send the same update again: if toy applied it, it takes the repeat as a repeat, and its answer records where the refund stands."
      )
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("an update that timed out says the same, names the status the refund keeps, and the refund records those words", () => {
    const t = toy({ callTimeout: "200 millis" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const refund = yield* create("update-timeout", "order-41")
      t.updates.push(Effect.never)
      const late = yield* Effect.flip(refunds.update(refund.id, { targets: ["order-41"], step: "REFUNDED_PENDING" }))
      assert.strictEqual(late._tag, "OutcomeUnknown")
      if (late._tag === "OutcomeUnknown") assert.deepStrictEqual([late.refundId, late.status], [refund.id, "pending"])
      assert.strictEqual(
        late.message,
        "The outcome at toy is unknown: no answer within 200ms; the update may have been applied. Send the same update again: if toy applied it, it takes the repeat as a repeat, and its answer records where the refund stands."
      )
      const after = yield* refunds.get(refund.id)
      assert.strictEqual(after.status, "pending", "an update in doubt moves nothing")
      assert.deepStrictEqual(after.error, { code: "outcome_unknown", message: late.message })
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("an update whose answer could not be read says the same, naming the field, and the refund records it", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const refund = yield* create("update-unread", "order-42")
      t.updates.push(Effect.fail(new UnexpectedResponse({ provider: "toy", path: "state", detail: "is missing", httpStatus: 200 })))
      const unread = yield* Effect.flip(refunds.update(refund.id, { targets: ["order-42"], step: "REFUNDED_PENDING" }))
      assert.strictEqual(unread._tag, "UnexpectedResponse")
      if (unread._tag === "UnexpectedResponse") {
        assert.deepStrictEqual([unread.refundId, unread.status, unread.of, unread.path, unread.httpStatus], [refund.id, "pending", "update", "state", 200])
      }
      assert.strictEqual(
        unread.message,
        "toy sent a response refundkit does not understand (field state: is missing); the update may have been applied. " +
          "Send the same update again: if toy applied it, it takes the repeat as a repeat, and its answer records where the refund stands."
      )
      const after = yield* refunds.get(refund.id)
      assert.strictEqual(after.status, "pending", "an update in doubt moves nothing")
      assert.deepStrictEqual(after.error, { code: "unexpected_response", message: unread.message })
      assert.include(after.events.at(-1)?.detail, "may have been applied by toy (an answer refundkit does not understand, field state: is missing)")

      // The same update again, answered: recorded, and the error gone.
      const settled = yield* refunds.update(refund.id, { targets: ["order-42"], step: "REFUNDED_PENDING" })
      assert.deepStrictEqual([settled.status, settled.providerStatus, settled.error], ["pending", "REFUNDED_PENDING", undefined])
    }).pipe(Effect.provide(t.layer))
  })
})
