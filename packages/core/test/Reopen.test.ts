// An operator's reopen (Refunds.reopen) of a final status the provider set: a reversal or a refund seen only in the
// provider's dashboard, held in requires_action with its targets until a person settles it.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Ledger from "../src/Ledger.js"
import * as Provider from "../src/Provider.js"
import * as Refunds from "../src/Refunds.js"
import { create, toy } from "./toyProvider.js"

const fields = (error: { readonly _tag: string; readonly issues?: ReadonlyArray<{ readonly path: string }> }) =>
  [error._tag, ...(error.issues ?? []).map((i) => i.path)]

const done = (target: string): Provider.Outcome => ({
  status: "succeeded",
  providerStatus: "DONE",
  items: [{ target, status: "succeeded", providerStatus: "DONE" }]
})
const declined = (target: string): Provider.Outcome => ({
  status: "failed",
  providerStatus: "DECLINED",
  items: [{ target, status: "failed", providerStatus: "DECLINED" }]
})

describe("Refunds.reopen", () => {
  it.scopedLive("reopens a succeeded the provider set: held in requires_action with its target, the same word again is no news, resolve failed keeps the hold", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      t.submits.push(Effect.succeed(done("esim-1")))
      const made = yield* create("made", "esim-1")
      assert.strictEqual(made.status, "succeeded")

      const reopened = yield* refunds.reopen(made.id, "operator: reversed in the toy dashboard on 6 Dec")
      assert.deepStrictEqual([reopened.status, reopened.providerStatus, reopened.holdsTarget], ["requires_action", "DONE", undefined])
      // The item is held too: a succeeded item would make resolve failed refuse the refund.
      assert.deepStrictEqual(reopened.items.map((i) => [i.status, i.providerStatus]), [["requires_action", "DONE"]])
      const event = reopened.events.at(-1)!
      assert.deepStrictEqual([event.source, event.from, event.to, event.accepted, event.providerStatus], ["operator", "succeeded", "requires_action", true, undefined])
      assert.strictEqual(
        event.detail,
        `reopens the succeeded (DONE) toy (submit) reported at ${made.updatedAt}, held in requires_action until a person settles it with refundkit resolve: ` +
          "operator: reversed in the toy dashboard on 6 Dec"
      )
      assert.deepStrictEqual(event.verdict, { note: "operator: reversed in the toy dashboard on 6 Dec", releaseTargets: false, failedTargets: [], correct: false, reopen: true })
      assert.isFalse(Ledger.isVerdict(event))
      assert.strictEqual(Ledger.reopening(reopened), event)
      assert.strictEqual(Ledger.reopenedWord(reopened), "DONE")

      // Its eSIM is still held.
      const again = yield* Effect.flip(create("again", "esim-1"))
      assert.deepStrictEqual(again._tag === "TargetAlreadyRefunded" ? [again.refundId, again.status] : [again._tag], [made.id, "requires_action"])

      // The provider's DONE again would undo the operator's reopen without anyone deciding: no news.
      t.statuses.push(Effect.succeed(done("esim-1")))
      assert.deepStrictEqual(yield* refunds.sync(made.id), reopened, "the word the reopen took back records nothing")
      assert.isTrue(Ledger.repeatsSettled(reopened, { to: "succeeded", source: "webhook", providerStatus: "DONE" }))
      assert.isFalse(Ledger.repeatsSettled(reopened, { to: "failed", source: "webhook", providerStatus: "REVERSED" }))
      // Nor does the ledger take it when asked directly.
      const ledger = yield* Ledger.Ledger
      const direct = yield* Effect.flip(ledger.transition(made.id, { to: "succeeded", source: "sync", at: new Date().toISOString(), providerStatus: "DONE" }))
      assert.strictEqual(direct._tag, "IllegalTransition")

      // Resolved failed, it keeps the eSIM held (the customer may have been repaid some other way)...
      const failed = yield* refunds.resolve(made.id, "failed", "operator: toy confirmed the reversal")
      assert.deepStrictEqual([failed.status, failed.holdsTarget], ["failed", true])
      const still = yield* Effect.flip(create("still", "esim-1"))
      assert.strictEqual(still._tag === "TargetAlreadyRefunded" ? still.refundId : still._tag, made.id)
      // ...and the DONE word is still no news once settled.
      t.statuses.push(Effect.succeed(done("esim-1")))
      assert.deepStrictEqual(yield* refunds.sync(made.id), failed)
      // Released in so many words, the eSIM is free.
      const released = yield* refunds.resolve(made.id, "failed", "operator: refund it again", { releaseTargets: true })
      assert.isUndefined(released.holdsTarget)
      assert.strictEqual(
        released.events.at(-1)!.detail,
        "operator: refund it again (targets released: an operator reopened this refund against what toy had reported)"
      )
      assert.strictEqual((yield* create("free", "esim-1")).status, "pending")
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("reopens a failed the provider set: its target held again, refused naming the refund that took it since, resolve succeeded settles it", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      t.submits.push(Effect.succeed(declined("esim-2")))
      const refused = yield* create("refused", "esim-2")
      assert.strictEqual(refused.status, "failed")

      // Another refund took the eSIM while the first stood failed: the reopen would count it refunded twice.
      const second = yield* create("second", "esim-2")
      const taken = yield* Effect.flip(refunds.reopen(refused.id, "operator: the dashboard shows it credited"))
      assert.strictEqual(taken._tag, "TargetAlreadyRefunded")
      if (taken._tag === "TargetAlreadyRefunded") assert.deepStrictEqual([taken.target, taken.refundId, taken.status], ["esim-2", second.id, "pending"])
      assert.deepStrictEqual(yield* refunds.get(refused.id), refused, "nothing was recorded")

      yield* refunds.resolve(second.id, "failed", "operator: refused by email")
      const reopened = yield* refunds.reopen(refused.id, "operator: the dashboard shows it credited")
      assert.deepStrictEqual([reopened.status, reopened.providerStatus], ["requires_action", "DECLINED"])
      assert.deepStrictEqual(reopened.items.map((i) => i.status), ["requires_action"])
      assert.include(reopened.events.at(-1)!.detail!, `reopens the failed (DECLINED) toy (submit) reported at ${refused.updatedAt}`)
      // Held again: a third refund of the eSIM is refused naming the reopened one.
      const third = yield* Effect.flip(create("third", "esim-2"))
      assert.strictEqual(third._tag === "TargetAlreadyRefunded" ? third.refundId : third._tag, refused.id)

      const settled = yield* refunds.resolve(refused.id, "succeeded", "operator: credited, seen on the balance")
      assert.deepStrictEqual([settled.status, settled.items.map((i) => [i.status, i.settledBy])], ["succeeded", [["succeeded", "operator"]]])
      // A settled refund is a verdict now: corrected, not reopened.
      const verdict = yield* Effect.flip(refunds.reopen(refused.id, "operator: again"))
      assert.deepStrictEqual(fields(verdict), ["InvalidRequest", "status"])
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("a new provider word after a reopen still applies", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      t.submits.push(Effect.succeed(done("esim-3")))
      const made = yield* create("made", "esim-3")
      yield* refunds.reopen(made.id, "operator: reversed in the dashboard")
      t.statuses.push(Effect.succeed({ status: "failed", providerStatus: "REVERSED" }))
      const reversed = yield* refunds.sync(made.id)
      assert.deepStrictEqual([reversed.status, reversed.providerStatus, reversed.events.at(-1)!.source], ["failed", "REVERSED", "sync"])
    }).pipe(Effect.provide(t.layer))
  })

  it.scopedLive("is refused for an empty note, a refund not final, and a final status an operator's verdict set; nothing recorded", () => {
    const t = toy()
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      t.submits.push(Effect.succeed(done("esim-4")))
      const made = yield* create("made", "esim-4")
      assert.deepStrictEqual(fields(yield* Effect.flip(refunds.reopen(made.id, "  "))), ["InvalidRequest", "note"])

      const pending = yield* create("pending", "esim-5")
      const open = yield* Effect.flip(refunds.reopen(pending.id, "operator: why"))
      assert.deepStrictEqual(fields(open), ["InvalidRequest", "status"])
      assert.include(open.message, `refund ${pending.id} is pending, which is not final: there is nothing to reopen; settle it with resolve`)
      assert.deepStrictEqual(Refunds.reopenRefusal(pending), { reason: "not_final", status: "pending" })

      const settled = yield* refunds.resolve(pending.id, "succeeded", "operator: credited")
      const byHand = yield* Effect.flip(refunds.reopen(settled.id, "operator: why"))
      assert.deepStrictEqual(fields(byHand), ["InvalidRequest", "status"])
      assert.include(byHand.message, "is corrected (resolve with correct), not reopened")
      assert.deepStrictEqual(Refunds.reopenRefusal(settled), { reason: "set_by_operator", status: "succeeded", at: settled.updatedAt })
      assert.deepStrictEqual(yield* refunds.get(settled.id), settled, "nothing was recorded")
      // The ledger refuses it too, asked directly: the table allows requires_action out of a final status only so marked.
      const ledger = yield* Ledger.Ledger
      const at = new Date().toISOString()
      const fromVerdict = yield* Effect.flip(ledger.transition(settled.id, { to: "requires_action", source: "operator", at, reopens: true }))
      assert.deepStrictEqual(fromVerdict._tag === "IllegalTransition" ? [fromVerdict.from, fromVerdict.to] : [fromVerdict._tag], ["succeeded", "requires_action"])
      const unmarked = yield* Effect.flip(ledger.transition(made.id, { to: "requires_action", source: "operator", at }))
      assert.deepStrictEqual(unmarked._tag === "IllegalTransition" ? [unmarked.from, unmarked.to] : [unmarked._tag], ["succeeded", "requires_action"])
      // Reopened once, a second reopen finds it not final.
      yield* refunds.reopen(made.id, "operator: reversed")
      assert.deepStrictEqual(fields(yield* Effect.flip(refunds.reopen(made.id, "operator: reversed"))), ["InvalidRequest", "status"])
    }).pipe(Effect.provide(t.layer))
  })
})
