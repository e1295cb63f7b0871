import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as Ledger from "../src/Ledger.js"
import type { Refund } from "../src/Refund.js"

const draft = (n: number, at = new Date(1_700_000_000_000 + n * 1000).toISOString()): Refund => ({
  id: `rfd_${String(n).padStart(26, "0")}`,
  provider: n % 2 === 0 ? "even" : "odd",
  idempotencyKey: `key-${n}`,
  fingerprint: "f",
  request: {},
  status: "requested",
  references: {},
  targets: [],
  items: [],
  createdAt: at,
  updatedAt: at,
  events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }]
})

/** The n-th second of 2024: a change's time, one second per event. */
const at = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString()

/** The refund after a change the transition table accepts (anything else fails the test). */
const accepted = (refund: Refund, change: Omit<Ledger.Change, "at">) =>
  Either.getOrThrowWith(Ledger.applyChange(refund, { at: at(refund.events.length + 1), ...change }), (e) => e.error)

/** What a change does to a refund: the refusal's tag and the status it keeps, or "accepted" and the new status. */
const refusedBy = (refund: Refund, change: Omit<Ledger.Change, "at">) => {
  const result = Ledger.applyChange(refund, { at: at(30), ...change })
  return Either.isLeft(result) ? [result.left.error._tag, result.left.refused.status] : ["accepted", result.right.status]
}

describe("Ledger (in memory)", () => {
  it.effect("claims a key once", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const results = yield* Effect.all([ledger.claim(draft(1)), ledger.claim({ ...draft(1), id: "rfd_x" })], { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => r._tag).sort(), ["Claimed", "Existing"])
    }))

  it.effect("refuses an illegal transition and keeps the refusal in the history", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      yield* ledger.claim(draft(1))
      yield* ledger.transition(draft(1).id, { to: "failed", source: "submit", at: "2024-01-01T00:00:00.000Z" })
      const error = yield* Effect.flip(ledger.transition(draft(1).id, { to: "succeeded", source: "webhook", at: "2024-01-01T00:00:01.000Z" }))
      assert.strictEqual(error._tag, "IllegalTransition")
      const stored = yield* ledger.get(draft(1).id)
      assert.strictEqual(stored.status, "failed")
      assert.deepStrictEqual(stored.events.map((e) => e.accepted), [true, true, false])
    }))

  it("settleItems carries a final verdict onto the undecided items as they stand when it applies, and only then", () => {
    const items: Refund["items"] = [
      { target: "a", status: "pending", providerStatus: "accepted_for_review" },
      { target: "b", status: "failed", providerStatus: "refused", message: "card closed" },
      { target: "c", status: "unknown" },
      { target: "d", status: "requested" },
      { target: "e", status: "requires_action", providerStatus: "CHECK" },
      { target: "f", status: "succeeded", providerStatus: "done" }
    ]
    const refund: Refund = { ...draft(1), status: "pending", items }
    const at = "2024-01-01T00:00:00.000Z"
    const apply = (change: Omit<Ledger.Change, "source" | "at">) =>
      Either.getOrThrowWith(Ledger.applyChange(refund, { source: "operator", at, ...change }), (e) => e.error).items
    assert.deepStrictEqual(apply({ to: "succeeded", settleItems: true }).map((i) => [i.target, i.status, i.providerStatus]), [
      ["a", "succeeded", "accepted_for_review"],
      ["b", "failed", "refused"],
      ["c", "succeeded", undefined],
      ["d", "succeeded", undefined],
      ["e", "succeeded", "CHECK"],
      ["f", "succeeded", "done"]
    ])
    assert.deepStrictEqual(apply({ to: "failed", settleItems: true }).map((i) => i.status), ["failed", "failed", "failed", "failed", "failed", "succeeded"])
    assert.strictEqual(apply({ to: "failed", settleItems: true })[1], items[1], "a decided item is kept as it was")
    assert.strictEqual(apply({ to: "succeeded" }), items, "without the flag the items stay")
    assert.strictEqual(apply({ to: "requires_action", settleItems: true }), items, "a verdict that is not final settles nothing")
    const given = [{ target: "a", status: "pending" as const }]
    assert.strictEqual(apply({ to: "succeeded", settleItems: true, items: given }), given, "items a change brings are its own word")
    const decided = [items[1]!, items[5]!]
    assert.strictEqual(Ledger.settleItems(decided, "succeeded"), decided, "nothing to settle: the same array")
  })

  it.effect("pages newest first with a cursor that survives inserts", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      for (let n = 1; n <= 5; n++) yield* ledger.claim(draft(n))
      const first = yield* ledger.list({ limit: 2 })
      assert.deepStrictEqual(first.items.map((r) => r.idempotencyKey), ["key-5", "key-4"])
      yield* ledger.claim(draft(6))
      const second = yield* ledger.list({ limit: 2, cursor: first.nextCursor })
      assert.deepStrictEqual(second.items.map((r) => r.idempotencyKey), ["key-3", "key-2"])
      const third = yield* ledger.list({ limit: 2, cursor: second.nextCursor })
      assert.deepStrictEqual(third.items.map((r) => r.idempotencyKey), ["key-1"])
      assert.isUndefined(third.nextCursor)
      const odd = yield* ledger.list({ limit: 10, provider: "odd" })
      assert.deepStrictEqual(odd.items.map((r) => r.idempotencyKey), ["key-5", "key-3", "key-1"])
      const refused = yield* Effect.flip(ledger.list({ limit: 2, cursor: "nope" }))
      assert.strictEqual(refused._tag === "InvalidRequest" ? refused.issues[0]?.path : refused._tag, "cursor")
    }))

  it.effect("refuses a plain list's cursor for a list with creation bounds, and the reverse, saying which list it continues", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      for (let n = 1; n <= 3; n++) yield* ledger.claim(draft(n))
      const plain = yield* ledger.list({ limit: 1 })
      const bounded = yield* ledger.list({ limit: 1, createdFrom: "2000-01-01T00:00:00.000Z" })
      for (const query of [{ limit: 1, createdFrom: "2000-01-01T00:00:00.000Z", cursor: plain.nextCursor }, { limit: 1, cursor: bounded.nextCursor }]) {
        const refused = yield* Effect.flip(ledger.list(query))
        assert.strictEqual(refused._tag, "InvalidRequest")
        if (refused._tag === "InvalidRequest") {
          assert.deepStrictEqual(refused.issues, [{
            path: "cursor",
            message: "is not a cursor of this list: pass the nextCursor of its previous page, asked with the same creation bounds (or none)"
          }])
        }
      }
    }))

  it.effect("guards a refund that names one target twice by the sum of its lines", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const twice: Refund = {
        ...draft(1),
        currency: "USD",
        targets: [
          { target: "tx-1", amount: "60.00", originalAmount: "100.00" },
          { target: "tx-1", amount: "60.00", originalAmount: "100.00" }
        ]
      }
      assert.deepStrictEqual(Ledger.guardedTargets(twice).map((g) => [g.target, g.amount, g.original]), [["tx-1", 12000n, 10000n]])
      const refused = yield* Effect.flip(ledger.claim(twice))
      assert.strictEqual(refused._tag, "OverRefund")
      if (refused._tag === "OverRefund") {
        // No other refund was counted: its own two lines are what exceed the payment.
        assert.isUndefined(refused.heldBy)
        assert.notInclude(refused.message, "Counted against it")
      }
      const fits: Refund = { ...twice, targets: [{ target: "tx-1", amount: "30.00", originalAmount: "100.00" }, { target: "tx-1", amount: "30.00", originalAmount: "100.00" }] }
      assert.strictEqual((yield* ledger.claim(fits))._tag, "Claimed")
      assert.strictEqual(Ledger.reservedAgainst(fits, "tx-1"), 6000n)
      const over = yield* Effect.flip(ledger.claim({ ...draft(2), provider: "odd", currency: "USD", targets: [{ target: "tx-1", amount: "40.01", originalAmount: "100.00" }] }))
      assert.strictEqual(over._tag, "OverRefund")
      if (over._tag === "OverRefund") {
        assert.deepStrictEqual(over.heldBy, [{ refundId: fits.id, amount: "60.00", status: fits.status }])
        assert.include(over.message, `only 40.00 USD is left to refund. Counted against it: refund ${fits.id} (60.00 USD, ${fits.status}).`)
      }
    }))

  it.effect("refuses a whole refund while another refund against its target has not failed; a failed one frees it", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const whole = (n: number, target: string): Refund => ({ ...draft(n), provider: "airalo", targets: [{ target }] })
      assert.deepStrictEqual(Ledger.targetGuards(whole(1, "iccid-1")), [{ _tag: "Whole", target: "iccid-1" }])
      const steps = {
        requested: [],
        pending: ["pending"],
        unknown: ["unknown"],
        requires_action: ["requires_action"],
        succeeded: ["pending", "succeeded"]
      } as const
      let n = 10
      for (const [status, path] of Object.entries(steps)) {
        const first = whole(n++, `iccid-${status}`)
        assert.strictEqual((yield* ledger.claim(first))._tag, "Claimed")
        for (const to of path) yield* ledger.transition(first.id, { to, source: "sync", at: "2024-01-01T00:00:01.000Z" })
        const second = whole(n++, `iccid-${status}`)
        const refused = yield* Effect.flip(ledger.claim(second))
        assert.deepStrictEqual(
          refused._tag === "TargetAlreadyRefunded" ? [refused.target, refused.refundId, refused.status, refused.code] : refused,
          [`iccid-${status}`, first.id, status, "target_already_refunded"]
        )
        assert.isTrue((yield* ledger.findByKey("airalo", second.idempotencyKey))._tag === "None", "nothing recorded for the refused claim")
        if (status !== "succeeded") {
          yield* ledger.transition(first.id, { to: "failed", source: "sync", at: "2024-01-01T00:00:02.000Z" })
          assert.strictEqual((yield* ledger.claim(second))._tag, "Claimed", `a failed ${status} refund frees the target`)
        }
      }
      // Amounts without original amounts are not guarded, against each other or against a whole refund.
      const part = (m: number): Refund => ({ ...draft(m), provider: "airalo", currency: "USD", amount: "5.00", targets: [{ target: "iccid-requested", amount: "5.00" }] })
      assert.strictEqual((yield* ledger.claim(part(100)))._tag, "Claimed")
      assert.strictEqual((yield* ledger.claim(part(101)))._tag, "Claimed")
      // And with one, the whole refund's reservation still refuses them as OverRefund.
      const guarded: Refund = { ...part(102), targets: [{ target: "iccid-requested", amount: "5.00", originalAmount: "100.00" }] }
      assert.strictEqual((yield* Effect.flip(ledger.claim(guarded)))._tag, "OverRefund")
    }))

  it.effect("a failed refund keeps holding its targets when its provider says so, until the provider's next word or an operator's explicit release", () =>
    Effect.gen(function*() {
      const pending = Either.getOrThrow(Ledger.applyChange(draft(1), { to: "pending", source: "submit", at: at(1), providerStatus: "PROCESSING" }))
      const apply = (refund: Refund, change: Omit<Ledger.Change, "at" | "source"> & { readonly source?: Ledger.Change["source"] }) =>
        Either.getOrThrow(Ledger.applyChange(refund, { source: "sync", at: at(2), ...change }))

      const closed = apply(pending, { to: "failed", providerStatus: "CLOSED", holdsTarget: true })
      assert.strictEqual(closed.holdsTarget, true)
      assert.isTrue(Ledger.holdsTargets(closed))
      // Only a failed refund carries it: every other status holds its targets anyway.
      assert.isUndefined(apply(pending, { to: "pending", providerStatus: "QUOTED", holdsTarget: true }).holdsTarget)
      // A failed answer without the flag (a decline) frees the targets, as before.
      const declined = apply(pending, { to: "failed", providerStatus: "REFUSED" })
      assert.isUndefined(declined.holdsTarget)
      assert.isFalse(Ledger.holdsTargets(declined))

      // An operator's note, or recovery, says nothing of the provider: the hold stays.
      const noted = apply(closed, { to: "failed", source: "operator", detail: "the airline refused" })
      assert.strictEqual(noted.holdsTarget, true)
      // The provider's own later word decides: repeated with the flag it stays, without it the hold goes.
      assert.strictEqual(apply(closed, { to: "failed", providerStatus: "CLOSED", holdsTarget: true }).holdsTarget, true)
      assert.isUndefined(apply(closed, { to: "failed", providerStatus: "CLOSED" }).holdsTarget)
      // An operator lets go only in so many words.
      const released = apply(noted, { to: "failed", source: "operator", holdsTarget: false, detail: "AeroHub reopened the order" })
      assert.isUndefined(released.holdsTarget)
      assert.isFalse(Ledger.holdsTargets(released))
      assert.strictEqual(Ledger.reservedAgainst({ ...closed, currency: "USD", targets: [{ target: "tx-1", amount: "5.00" }] }, "tx-1"), 500n)
      assert.strictEqual(Ledger.reservedAgainst({ ...released, currency: "USD", targets: [{ target: "tx-1", amount: "5.00" }] }, "tx-1"), 0n)

      // A provider's success after an operator's hand-made failed overrules it: requires_action, which holds anyway.
      const byHand = apply(pending, { to: "failed", source: "operator", holdsTarget: true, detail: "closed, seen at the provider" })
      const overruled = apply(byHand, { to: "succeeded", providerStatus: "DONE" })
      assert.strictEqual(overruled.status, "requires_action")
      assert.isUndefined(overruled.holdsTarget)
    }))

  it.effect("the in-memory guard counts a failed refund that holds its targets: a whole refund is refused naming it and why, an amount as OverRefund", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const at = "2024-01-01T00:00:01.000Z"
      const whole = (n: number, target: string): Refund => ({ ...draft(n), provider: "aerohub", targets: [{ target }] })
      const first = whole(10, "FBRF800001")
      yield* ledger.claim(first)
      yield* ledger.transition(first.id, { to: "failed", source: "submit", at, providerStatus: "CLOSED", holdsTarget: true })

      const refused = yield* Effect.flip(ledger.claim(whole(11, "FBRF800001")))
      assert.strictEqual(refused._tag, "TargetAlreadyRefunded")
      if (refused._tag === "TargetAlreadyRefunded") {
        assert.deepStrictEqual([refused.target, refused.refundId, refused.status], ["FBRF800001", first.id, "failed"])
        assert.include(refused.message, `held by refund ${first.id} (status failed)`)
        assert.include(refused.message, "keeps it on FBRF800001")
        assert.include(refused.message, "Nothing was sent")
        assert.include(refused.message, `refundkit resolve ${first.id} --status failed --release-targets`)
      }
      assert.isTrue((yield* ledger.findByKey("aerohub", whole(11, "FBRF800001").idempotencyKey))._tag === "None", "nothing recorded for the refused claim")
      const held = yield* ledger.holderOf!("aerohub", "FBRF800001")
      assert.deepStrictEqual(Option.getOrUndefined(Option.map(held, (r) => [r.refundId, r.status])), [first.id, "failed"])

      // Its reservation counts against a guarded amount too.
      const part: Refund = { ...draft(12), provider: "aerohub", currency: "USD", targets: [{ target: "FBRF800001", amount: "1.00", originalAmount: "100.00" }] }
      const over = yield* Effect.flip(ledger.claim(part))
      assert.deepStrictEqual(over._tag === "OverRefund" ? over.blockedBy : over, { refundId: first.id, reason: "states no currency" })

      // A failed refund without the flag (its first update declined) holds nothing.
      const declined = whole(13, "FBRF800002")
      yield* ledger.claim(declined)
      yield* ledger.transition(declined.id, { to: "failed", source: "submit", at, error: { code: "provider_declined", message: "declined" } })
      assert.strictEqual((yield* ledger.claim(whole(14, "FBRF800002")))._tag, "Claimed")

      // Released by an operator, the target takes a new refund.
      yield* ledger.transition(first.id, { to: "failed", source: "operator", at, holdsTarget: false, detail: "reopened" })
      assert.isTrue(Option.isNone(yield* ledger.holderOf!("aerohub", "FBRF800001")))
      assert.strictEqual((yield* ledger.claim(whole(11, "FBRF800001")))._tag, "Claimed")
    }))
  it("releasedTargets: a target whose every item failed, in a refund not itself failed; an item back from failed holds it again", () => {
    const refund = (status: Refund["status"], items: Refund["items"], holdsTarget?: boolean): Refund => ({
      ...draft(1),
      status,
      ...(holdsTarget === undefined ? {} : { holdsTarget }),
      currency: "INR",
      targets: [{ target: "10264", amount: "10.00" }, { target: "10265", amount: "150.00" }, { target: "10266", amount: "1.00" }],
      items
    })
    const mixed: Refund["items"] = [
      { target: "10264", status: "succeeded", providerStatus: "accepted" },
      { target: "10265", status: "failed", providerStatus: "refused" },
      { target: "10266", status: "failed", providerStatus: "refused" }
    ]
    for (const status of ["requires_action", "succeeded", "pending", "unknown"] as const) {
      assert.deepStrictEqual(Ledger.releasedTargets(refund(status, mixed)), ["10265", "10266"], status)
    }
    // A failed refund frees every target by its status, or (the provider's hold, refund-level) keeps every one.
    assert.deepStrictEqual(Ledger.releasedTargets(refund("failed", mixed)), [])
    assert.deepStrictEqual(Ledger.releasedTargets(refund("failed", mixed, true)), [])
    assert.isTrue(Ledger.holdsOn(refund("failed", mixed, true), "10265"))
    assert.isFalse(Ledger.holdsOn(refund("failed", mixed), "10264"))
    // No item, an item not failed, or a second item of the target not failed: held.
    assert.deepStrictEqual(Ledger.releasedTargets(refund("unknown", [])), [])
    assert.deepStrictEqual(Ledger.releasedTargets(refund("pending", [{ target: "10265", status: "failed" }, { target: "10265", status: "pending" }])), [])

    const held = refund("requires_action", mixed)
    assert.isTrue(Ledger.holdsOn(held, "10264"))
    assert.isFalse(Ledger.holdsOn(held, "10265"))
    assert.strictEqual(Ledger.reservedAgainst(held, "10264"), 1000n)
    assert.strictEqual(Ledger.reservedAgainst(held, "10265"), 0n, "refused: nothing reserved")

    // What a ledger writes: only a change that alters them.
    assert.isUndefined(Ledger.releasedChange(refund("pending", []), refund("succeeded", [{ target: "10264", status: "succeeded" }])))
    assert.isUndefined(Ledger.releasedChange(held, refund("succeeded", mixed)), "resolved succeeded: the same targets released")
    assert.deepStrictEqual(Ledger.releasedChange(refund("pending", []), held), ["10265", "10266"])
    const corrected = refund("requires_action", [mixed[0]!, { target: "10265", status: "pending", providerStatus: "retrying" }, mixed[2]!])
    assert.deepStrictEqual(Ledger.releasedChange(held, corrected), ["10266"], "the provider corrected itself about 10265: held again")
    assert.isTrue(Ledger.holdsOn(corrected, "10265"))
    assert.deepStrictEqual(Ledger.releasedChange(held, refund("failed", mixed)), [], "failed: nothing released beside the status")
  })

  it("verdictItems: the named targets are failed, the others take the verdict, and a target without an item gets one", () => {
    const refund: Refund = {
      ...draft(1),
      status: "unknown",
      currency: "INR",
      targets: [{ target: "20003", amount: "10.00" }, { target: "20002", amount: "600.00" }, { target: "20001", amount: "1.00" }, { target: "20001", amount: "2.50" }],
      items: []
    }
    assert.deepStrictEqual(Ledger.verdictItems(refund, "succeeded", ["20002"]), [
      { target: "20003", status: "succeeded", settledBy: "operator", amount: "10.00" },
      { target: "20002", status: "failed", settledBy: "operator", amount: "600.00" },
      { target: "20001", status: "succeeded", settledBy: "operator", amount: "3.50" }
    ])
    assert.strictEqual(Ledger.verdictItems(refund, "succeeded", undefined), refund.items, "without names: settleItems")
    // A verdict's items say so (settledBy), so that a correction of the verdict may change them again.
    const answered: Refund = {
      ...refund,
      targets: refund.targets.slice(0, 2),
      items: [
        { target: "20003", status: "pending", providerStatus: "accepted_for_review" },
        { target: "20002", status: "pending", providerStatus: "accepted_for_review", message: "as said" }
      ]
    }
    assert.deepStrictEqual(Ledger.verdictItems(answered, "succeeded", ["20002"]), [
      { target: "20003", status: "succeeded", providerStatus: "accepted_for_review", settledBy: "operator" },
      { target: "20002", status: "failed", providerStatus: "accepted_for_review", message: "as said", settledBy: "operator" }
    ])
    // The provider's own word outranks a name: a target it reported refunded stays succeeded.
    const decided: Refund = { ...answered, items: [{ target: "20003", status: "succeeded" }, { target: "20002", status: "pending" }] }
    assert.deepStrictEqual(Ledger.verdictItems(decided, "succeeded", ["20003"]).map((i) => i.status), ["succeeded", "succeeded"])
    // Through applyChange, as the ledgers apply it under their lock.
    const applied = Either.getOrThrow(Ledger.applyChange(refund, { to: "succeeded", source: "operator", at: "2024-01-01T00:00:00.000Z", settleItems: true, failedTargets: ["20002"] }))
    assert.deepStrictEqual(applied.items.map((i) => [i.target, i.status]), [["20003", "succeeded"], ["20002", "failed"], ["20001", "succeeded"]])
    assert.deepStrictEqual(Ledger.releasedTargets(applied), ["20002"])
  })

  it.effect("the in-memory guard passes a target by whose item failed, and counts it again once the item moves back", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const at = "2024-01-01T00:00:01.000Z"
      const batch: Refund = {
        ...draft(1),
        provider: "airpay",
        currency: "INR",
        targets: [{ target: "10264", amount: "10.00" }, { target: "10265", amount: "150.00" }, { target: "iccid-9" }]
      }
      yield* ledger.claim(batch)
      const items = (last: Refund["items"][number]["status"]) => [
        { target: "10264", status: "succeeded" as const },
        { target: "10265", status: last },
        { target: "iccid-9", status: last }
      ]
      yield* ledger.transition(batch.id, { to: "requires_action", source: "submit", at, providerStatus: "accepted+refused", items: items("failed") })
      yield* ledger.transition(batch.id, { to: "succeeded", source: "operator", at, settleItems: true, detail: "10264 refunded, 10265 refused" })
      const fix = (n: number, target: string, amount: string): Refund => ({
        ...draft(n),
        provider: "airpay",
        currency: "INR",
        targets: [{ target, amount, originalAmount: "100.00" }]
      })
      assert.strictEqual((yield* ledger.claim(fix(2, "10265", "15.00")))._tag, "Claimed", "the refused 150.00 holds nothing")
      const over = yield* Effect.flip(ledger.claim(fix(3, "10264", "95.00")))
      assert.deepStrictEqual(over._tag === "OverRefund" ? over.remaining : over, "90.00", "the refunded 10.00 still counts")
      const whole = (n: number): Refund => ({ ...draft(n), provider: "airpay", targets: [{ target: "iccid-9" }] })
      assert.isTrue(Option.isNone(yield* ledger.holderOf!("airpay", "iccid-9")))
      assert.strictEqual((yield* ledger.claim(whole(4)))._tag, "Claimed", "a whole refund of the refused target")

      // The provider corrects itself (a change bringing the item back from failed): the target is held again.
      const second: Refund = { ...batch, id: draft(5).id, idempotencyKey: "k-second", targets: [{ target: "10270", amount: "50.00" }] }
      yield* ledger.claim(second)
      yield* ledger.transition(second.id, { to: "requires_action", source: "submit", at, items: [{ target: "10270", status: "failed" }, { target: "10271", status: "succeeded" }] })
      yield* ledger.transition(second.id, { to: "requires_action", source: "webhook", at, items: [{ target: "10270", status: "pending" }, { target: "10271", status: "succeeded" }] })
      const refused = yield* Effect.flip(ledger.claim(fix(6, "10270", "60.00")))
      assert.deepStrictEqual(refused._tag === "OverRefund" ? refused.remaining : refused, "50.00")
    }))

  it("a change's verdict goes on its event, its four fields only, and only from an operator", () => {
    const at = "2024-01-01T00:00:01.000Z"
    const verdict = { note: "operator: credited", releaseTargets: false, failedTargets: ["t2"], correct: false }
    const unknown = Either.getOrThrow(Ledger.applyChange(draft(1), { to: "unknown", source: "recovery", at, verdict }))
    assert.isUndefined(unknown.events.at(-1)!.verdict, "recovery records no verdict")
    const synced = Either.getOrThrow(Ledger.applyChange(unknown, { to: "pending", source: "sync", at, providerStatus: "NEW", verdict }))
    assert.isUndefined(synced.events.at(-1)!.verdict, "nor does the provider's word")
    const extra = { ...verdict, extra: "not recorded" }
    const settled = Either.getOrThrow(Ledger.applyChange(synced, { to: "succeeded", source: "operator", at, detail: verdict.note, verdict: extra }))
    assert.deepStrictEqual(settled.events.at(-1)!.verdict, verdict)
    // A refused verdict keeps what was asked beside the refusal.
    const refused = Ledger.applyChange(settled, { to: "failed", source: "operator", at, detail: "operator: typo", verdict: { ...verdict, note: "operator: typo" } })
    assert.deepStrictEqual(Either.isLeft(refused) ? refused.left.refused.events.at(-1)!.verdict : refused, { ...verdict, note: "operator: typo" })
  })

  it.effect("a callback's key goes on its event, applied or refused; the same key again records nothing and is a DuplicateCallback", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      yield* ledger.claim(draft(1))
      const id = draft(1).id
      const callback = { to: "succeeded", source: "webhook", at: at(1), providerStatus: "DONE", callbackKey: "R1:DONE", detail: "the provider says DONE" } as const
      const done = yield* ledger.transition(id, callback)
      assert.deepInclude(done.events.at(-1), { source: "webhook", callbackKey: "R1:DONE", detail: "the provider says DONE", accepted: true })

      const again = yield* Effect.flip(ledger.transition(id, { ...callback, at: at(2) }))
      assert.strictEqual(again._tag, "DuplicateCallback")
      assert.deepInclude(again, { refundId: id, callbackKey: "R1:DONE" })
      assert.deepStrictEqual(yield* ledger.get(id), done, "nothing recorded, not even a refused event")

      // A refused callback keeps its key too: its repeat is a duplicate, not a second refusal.
      const late = { to: "pending", source: "webhook", at: at(3), providerStatus: "PENDING", callbackKey: "R1:PENDING" } as const
      assert.strictEqual((yield* Effect.flip(ledger.transition(id, late)))._tag, "IllegalTransition")
      const refused = yield* ledger.get(id)
      assert.deepInclude(refused.events.at(-1), { accepted: false, callbackKey: "R1:PENDING" })
      assert.strictEqual((yield* Effect.flip(ledger.transition(id, { ...late, at: at(4) })))._tag, "DuplicateCallback")
      assert.deepStrictEqual(yield* ledger.get(id), refused)

      // Only a callback's change carries a key onto its event, and only a callback's key is checked.
      const synced = yield* ledger.transition(id, { to: "succeeded", source: "sync", at: at(5), providerStatus: "DONE", callbackKey: "R1:DONE" })
      assert.isUndefined(synced.events.at(-1)!.callbackKey)
    }))

  it("a callback recorded before ledgers kept its key is known by the words core gave it then", () => {
    const event = (source: "webhook" | "sync", detail: string, callbackKey?: string) => ({
      sequence: 2,
      at: at(1),
      source,
      from: "requested" as const,
      to: "succeeded" as const,
      accepted: true,
      detail,
      ...(callbackKey === undefined ? {} : { callbackKey })
    })
    // The whole detail, and the end of one core wrapped (a change that reopened a final refund, a refused one).
    assert.isTrue(Ledger.recordsCallback(event("webhook", "webhook R1:DONE"), "R1:DONE"))
    assert.isTrue(Ledger.recordsCallback(event("webhook", "refused: succeeded -> pending is not a legal transition (webhook R1:DONE)"), "R1:DONE"))
    assert.isFalse(Ledger.recordsCallback(event("webhook", "webhook R1:DONE"), "R1:DON"))
    assert.isFalse(Ledger.recordsCallback(event("webhook", "webhook R1:DONE (late)"), "R1:DONE"))
    // Words alone never stand for a key where the event has one, nor on an event no callback recorded.
    assert.isFalse(Ledger.recordsCallback(event("webhook", "webhook R1:DONE", "R1:OTHER"), "R1:DONE"))
    assert.isFalse(Ledger.recordsCallback(event("sync", "webhook R1:DONE"), "R1:DONE"))
    assert.isTrue(Ledger.recordsCallback(event("webhook", "callback R1:DONE", "R1:DONE"), "R1:DONE"))

    const before = { ...draft(1), status: "succeeded" as const, events: [...draft(1).events, event("webhook", "webhook R1:DONE")] }
    const repeat = { to: "succeeded", source: "webhook", at: at(2), providerStatus: "DONE", callbackKey: "R1:DONE" } as const
    assert.deepInclude(Ledger.repeatedCallback(before, repeat), { _tag: "DuplicateCallback", refundId: before.id, callbackKey: "R1:DONE" })
    assert.isUndefined(Ledger.repeatedCallback(before, { ...repeat, callbackKey: "R1:FAILED" }))
    assert.isUndefined(Ledger.repeatedCallback(before, { ...repeat, callbackKey: undefined }))
  })

  it("an operator's correction moves a final status an operator set to the other one, and names the verdict it corrects; nothing else leaves a final status", () => {
    const apply = (refund: Refund, change: Omit<Ledger.Change, "at">) => Ledger.applyChange(refund, { at: at(refund.events.length + 1), ...change })
    const unknown = accepted(draft(1), { to: "unknown", source: "recovery" })
    const byHand = accepted(unknown, { to: "succeeded", source: "operator", detail: "operator: credited" })

    // Without the word, as before: a final status is final.
    const plain = apply(byHand, { to: "failed", source: "operator", detail: "operator: typo" })
    assert.isTrue(Either.isLeft(plain) && plain.left.error._tag === "IllegalTransition")
    const corrected = accepted(byHand, { to: "failed", source: "operator", corrects: true, detail: "operator: typo, it was refused" })
    assert.strictEqual(corrected.status, "failed")
    assert.deepStrictEqual(corrected.events.at(-1), {
      sequence: 4,
      at: at(4),
      source: "operator",
      from: "succeeded",
      to: "failed",
      accepted: true,
      detail: `corrects the succeeded an operator recorded at ${at(3)}: operator: typo, it was refused`
    })
    assert.isFalse(Ledger.holdsTargets(corrected), "a hand-made failed frees its targets")
    // And back: the correction is itself an operator's verdict.
    const back = accepted(corrected, { to: "succeeded", source: "operator", corrects: true, detail: "operator: refunded after all" })
    assert.strictEqual(back.status, "succeeded")
    assert.include(back.events.at(-1)!.detail!, `corrects the failed an operator recorded at ${at(4)}`)

    // A final status the provider set is not an operator's verdict, and the flag is for operators only.
    const byProvider = accepted(unknown, { to: "succeeded", source: "sync", providerStatus: "DONE" })
    for (const change of [
      { to: "failed", source: "operator", corrects: true },
      { to: "failed", source: "sync", corrects: true }
    ] as const) {
      const refused = apply(byProvider, change)
      assert.isTrue(Either.isLeft(refused) && refused.left.error._tag === "IllegalTransition", JSON.stringify(change))
    }
    // The provider's own failed word is no correction either: it is a reversal, held for a person.
    const reversed = accepted(byProvider, { to: "failed", source: "sync", corrects: true, providerStatus: "FAILED" })
    assert.deepStrictEqual([reversed.status, reversed.events.at(-1)!.detail?.startsWith("odd reported FAILED to a status query")], ["requires_action", true])
    assert.isFalse(Ledger.isCorrection(byHand, { to: "failed", source: "webhook", at: at(9), corrects: true }))
    assert.isFalse(Ledger.isCorrection(byHand, { to: "succeeded", source: "operator", at: at(9), corrects: true }), "the same status is no correction")
    assert.strictEqual(Ledger.setterOf(byProvider)?.source, "sync")
    assert.strictEqual(Ledger.setterOf(accepted(byHand, { to: "succeeded", source: "sync", providerStatus: "DONE" }))?.source, "operator", "a repeat does not set the status")
  })

  it("a chargeback after an operator's succeeded moves the refund to requires_action; a repeat of it after the next verdict does not", () => {
    const pending = accepted(draft(1), { to: "pending", source: "submit", providerStatus: "NEW" })
    const chargeback = { to: "requires_action", source: "sync", providerStatus: "CHARGEBACK", providerFinal: true, detail: "Exirom reports CHARGEBACK" } as const

    const byHand = accepted(pending, { to: "succeeded", source: "operator", detail: "operator: seen refunded" })
    const overruled = accepted(byHand, chargeback)
    assert.deepStrictEqual([overruled.status, overruled.providerStatus, overruled.providerFinal], ["requires_action", "CHARGEBACK", true])
    assert.strictEqual(
      overruled.events.at(-1)!.detail,
      "odd reports requires_action (CHARGEBACK) to a status query after an operator recorded succeeded: check with odd and resolve it again (Exirom reports CHARGEBACK)"
    )
    assert.isTrue(Ledger.holdsTargets(overruled))

    // Settled again by hand, the same word asked again is no news: refused, not reopened, so the verdict stands.
    const settled = accepted(overruled, { to: "succeeded", source: "operator", detail: "operator: reconciled" })
    assert.isTrue(Ledger.repeatsSettled(settled, chargeback))
    const repeated = Ledger.applyChange(settled, { at: at(20), ...chargeback, source: "webhook" })
    assert.isTrue(Either.isLeft(repeated) && repeated.left.error._tag === "IllegalTransition")
    assert.strictEqual(Either.isLeft(repeated) ? repeated.left.refused.status : undefined, "succeeded")
    // A new word does reopen it.
    assert.isFalse(Ledger.repeatsSettled(settled, { ...chargeback, providerStatus: "CHARGED_BACK" }))
    assert.strictEqual(accepted(settled, { ...chargeback, providerStatus: "CHARGED_BACK" }).status, "requires_action")
    // So does a word that says the verdict itself is wrong, repeated or not: failed by hand while the provider still has it NEW.
    const failedByHand = accepted(pending, { to: "failed", source: "operator", detail: "operator: not in the dashboard" })
    const stillNew = { to: "pending", source: "sync", providerStatus: "NEW" } as const
    assert.isFalse(Ledger.repeatsSettled(failedByHand, stillNew))
    assert.strictEqual(accepted(failedByHand, stillNew).status, "requires_action")
  })

  it("a chargeback the provider reports after its own succeeded moves the refund to requires_action, still holding its targets; nothing else leaves its succeeded", () => {
    const held: Refund = { ...draft(3), currency: "USD", targets: [{ target: "30004", amount: "10.00", originalAmount: "40.00" }] }
    const pending = accepted(held, { to: "pending", source: "submit", providerStatus: "NEW" })
    const made = accepted(pending, { to: "succeeded", source: "sync", providerStatus: "SUCCEED" })
    const chargeback = { to: "requires_action", source: "webhook", providerStatus: "CHARGEBACK", providerFinal: true,
      detail: "the provider's callback says CHARGEBACK", callbackKey: "30004:CHARGEBACK" } as const

    const charged = accepted(made, chargeback)
    assert.deepStrictEqual([charged.status, charged.providerStatus, charged.providerFinal], ["requires_action", "CHARGEBACK", true])
    assert.deepStrictEqual(charged.events.at(-1), {
      sequence: 4,
      at: at(4),
      source: "webhook",
      from: "succeeded",
      to: "requires_action",
      accepted: true,
      providerStatus: "CHARGEBACK",
      detail: `odd reported CHARGEBACK in a callback after it had reported SUCCEED to a status query at ${at(3)}: ` +
        "the refund it made is charged back or disputed, and the customer may have been repaid twice; " +
        "check with odd and settle it with refundkit resolve (the provider's callback says CHARGEBACK)",
      callbackKey: "30004:CHARGEBACK"
    })
    assert.isTrue(Ledger.holdsTargets(charged))
    assert.strictEqual(Ledger.reservedAgainst(charged, "30004"), 1000n, "it reserves what it reserved while succeeded")

    // Narrow: a requires_action the provider does not call final, a submit's late answer, and a provider word
    // with no status word are refused out of the provider's succeeded, as before (a failed word is a reversal:
    // the next test).
    assert.deepStrictEqual(refusedBy(made, { ...chargeback, providerStatus: "DISPUTE", providerFinal: false }), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(made, { ...chargeback, source: "submit", onlyFrom: ["requested"] }), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(made, { to: "requires_action", source: "sync", providerFinal: true }), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(made, { to: "pending", source: "sync", providerStatus: "PROCESSING" }), ["IllegalTransition", "succeeded"])

    // The operator's verdict settles it; the same CHARGEBACK again does not reopen it, a new word does.
    const settled = accepted(charged, { to: "succeeded", source: "operator", detail: "operator: the dispute was reversed" })
    assert.deepStrictEqual(refusedBy(settled, chargeback), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(settled, { ...chargeback, source: "sync" }), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(settled, { ...chargeback, providerStatus: "CHARGED_BACK" }), ["accepted", "requires_action"])
  })

  it("a failed the provider reports after its own succeeded is a reversal: requires_action, its targets and items still held, and the same word again is no news", () => {
    const held: Refund = { ...draft(3), currency: "USD", targets: [{ target: "30004", amount: "10.00", originalAmount: "40.00" }] }
    const made = accepted(accepted(held, { to: "pending", source: "submit", providerStatus: "NEW" }), {
      to: "succeeded",
      source: "sync",
      providerStatus: "SUCCEED",
      providerFinal: true,
      items: [{ target: "30004", status: "succeeded", providerStatus: "SUCCEED" }]
    })
    const declined = { code: "provider_declined", message: "declined (2): REJECTED_BY_ISSUER_BANK_ERROR", providerCode: "2" }
    const reversal = { to: "failed", source: "webhook", providerStatus: "FAILED", providerFinal: true, error: declined,
      detail: "the provider's callback says FAILED", callbackKey: "30004:FAILED" } as const

    const reversed = accepted(made, reversal)
    assert.deepStrictEqual([reversed.status, reversed.providerStatus, reversed.providerFinal, reversed.error], ["requires_action", "FAILED", true, declined])
    assert.deepStrictEqual(reversed.events.at(-1), {
      sequence: 4,
      at: at(4),
      source: "webhook",
      from: "succeeded",
      to: "requires_action",
      accepted: true,
      providerStatus: "FAILED",
      detail: `odd reported FAILED (declined (2): REJECTED_BY_ISSUER_BANK_ERROR) in a callback after it had reported SUCCEED to a status query at ${at(3)}: ` +
        "the refund may have been reversed and the customer not repaid, and its targets stay held; check with odd and settle it with refundkit resolve: " +
        "succeeded if the refund stands, or failed --release-targets if odd confirms the reversal, which lets its targets be refunded again (the provider's callback says FAILED)",
      callbackKey: "30004:FAILED"
    })
    // Its item is held with it: a failed item would release its target.
    assert.deepStrictEqual(reversed.items, [{ target: "30004", status: "requires_action", providerStatus: "SUCCEED" }])
    assert.isTrue(Ledger.holdsTargets(reversed))
    assert.strictEqual(Ledger.reservedAgainst(reversed, "30004"), 1000n, "it reserves what it reserved while succeeded")
    assert.strictEqual(Ledger.reopening(reversed), reversed.events.at(-1))
    // Items the provider names with its failed word are held too, its words kept.
    const named = accepted(made, { ...reversal, items: [{ target: "30004", status: "failed", providerStatus: "FAILED", message: "card account closed" }] })
    assert.deepStrictEqual(named.items, [{ target: "30004", status: "requires_action", providerStatus: "FAILED", message: "card account closed" }])
    assert.deepStrictEqual(Ledger.releasedTargets(named), [])

    // Narrow: a failed without a status word, or a submit's late answer, is refused as before.
    assert.deepStrictEqual(refusedBy(made, { to: "failed", source: "sync" }), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(made, { ...reversal, source: "submit", onlyFrom: ["requested", "unknown"] }), ["IllegalTransition", "succeeded"])

    // Held for a person: the same FAILED again (a sync after the callback) would make it failed and free its
    // target with nobody having decided. It is refused, saying why; another word is news.
    assert.isTrue(Ledger.repeatsSettled(reversed, { ...reversal, source: "sync" }))
    const again = Ledger.applyChange(reversed, { at: at(30), ...reversal, source: "sync", detail: undefined })
    assert.isTrue(Either.isLeft(again))
    if (Either.isLeft(again)) {
      assert.strictEqual(again.left.refused.status, "requires_action")
      assert.strictEqual(
        again.left.refused.events.at(-1)!.detail,
        `refused: requires_action -> failed: FAILED repeats what odd said at ${at(4)}, which holds the refund in requires_action until a person settles it with refundkit resolve`
      )
    }
    assert.deepStrictEqual(refusedBy(reversed, { ...reversal, providerStatus: "CANCELLED" }), ["accepted", "failed"])
    assert.deepStrictEqual(refusedBy(reversed, { to: "succeeded", source: "sync", providerStatus: "SUCCEED" }), ["accepted", "succeeded"])

    // Settled by a verdict either way, the same word again does not reopen it, nor drop a hold the verdict kept.
    const stands = accepted(reversed, { to: "succeeded", source: "operator", settleItems: true, error: null, detail: "operator: the refund stands" })
    assert.isTrue(Ledger.repeatsSettled(stands, reversal))
    assert.deepStrictEqual(refusedBy(stands, reversal), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(stands, { ...reversal, source: "sync" }), ["IllegalTransition", "succeeded"])
    assert.deepStrictEqual(refusedBy(stands, { ...reversal, providerStatus: "CANCELLED" }), ["accepted", "requires_action"], "a new word is news")
    const failedHeld = accepted(reversed, { to: "failed", source: "operator", settleItems: true, holdsTarget: true, detail: "operator: repaid by bank transfer" })
    assert.isTrue(Ledger.holdsTargets(failedHeld))
    assert.deepStrictEqual(refusedBy(failedHeld, { ...reversal, source: "sync" }), ["IllegalTransition", "failed"])
    // The hold is the verdict's: a new failed word from the provider keeps it, where an AeroHub CLOSED's hold follows the provider.
    assert.strictEqual(accepted(failedHeld, { ...reversal, providerStatus: "CANCELLED" }).holdsTarget, true)
    // And after a correction of that verdict too: the word is still the one the provider took its success back with.
    const corrected = accepted(stands, { to: "failed", source: "operator", corrects: true, detail: "operator: it was reversed after all" })
    assert.isTrue(Ledger.repeatsSettled(corrected, reversal))
  })

  it("a failed after an operator's succeeded keeps the older rules: held for a person, and after the next verdict the same word reopens it", () => {
    const unknown = accepted(draft(5), { to: "unknown", source: "recovery" })
    const byHand = accepted(unknown, { to: "succeeded", source: "operator", detail: "operator: seen on the dashboard" })
    const failed = { to: "failed", source: "sync", providerStatus: "FAILED", providerFinal: true } as const
    const overruled = accepted(byHand, failed)
    assert.strictEqual(overruled.status, "requires_action")
    assert.include(overruled.events.at(-1)!.detail!, "odd reports failed (FAILED) to a status query after an operator recorded succeeded")
    assert.isUndefined(Ledger.reopening(overruled), "the succeeded it took back was an operator's")
    assert.isFalse(Ledger.repeatsSettled(overruled, failed))
    const again = accepted(overruled, { to: "succeeded", source: "operator", detail: "operator: checked again" })
    assert.strictEqual(accepted(again, failed).status, "requires_action", "a failed contradicting a verdict by hand says the verdict is wrong")
  })

  it.effect("a refund charged back after its provider's succeeded still counts against its target's original amount", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const at = "2024-01-01T00:00:01.000Z"
      const partial = (n: number, amount: string): Refund => ({
        ...draft(n),
        provider: "exirom",
        currency: "USD",
        targets: [{ target: "30004", amount, originalAmount: "40.00" }]
      })
      const first = partial(41, "30.00")
      yield* ledger.claim(first)
      yield* ledger.transition(first.id, { to: "succeeded", source: "sync", at, providerStatus: "SUCCEED", providerFinal: true })
      const charged = yield* ledger.transition(first.id, { to: "requires_action", source: "sync", at, providerStatus: "CHARGEBACK", providerFinal: true })
      assert.strictEqual(charged.status, "requires_action")
      const over = yield* Effect.flip(ledger.claim(partial(43, "10.01")))
      assert.strictEqual(over._tag, "OverRefund")
      if (over._tag === "OverRefund") assert.strictEqual(over.remaining, "10.00")
      assert.strictEqual((yield* ledger.claim(partial(45, "10.00")))._tag, "Claimed", "what is left is still refundable")
    }))

  it("a verdict marks the items it settles as an operator's, and settles them again when it is corrected; the provider's words stay", () => {
    const at = "2024-01-01T00:00:00.000Z"
    const items: Refund["items"] = [
      { target: "a", status: "pending", providerStatus: "accepted_for_review" },
      { target: "b", status: "failed", providerStatus: "refused" },
      { target: "c", status: "succeeded", providerStatus: "done" }
    ]
    const pending: Refund = { ...draft(1), status: "pending", items }
    const succeeded = Either.getOrThrowWith(Ledger.applyChange(pending, { to: "succeeded", source: "operator", at, settleItems: true }), (e) => e.error)
    assert.deepStrictEqual(succeeded.items, [
      { target: "a", status: "succeeded", providerStatus: "accepted_for_review", settledBy: "operator" },
      items[1]!,
      items[2]!
    ])
    assert.deepStrictEqual(succeeded.items.map(Ledger.providerDecided), [false, true, true])
    const failed = Either.getOrThrowWith(
      Ledger.applyChange(succeeded, { to: "failed", source: "operator", at, settleItems: true, corrects: true }),
      (e) => e.error
    )
    assert.deepStrictEqual(failed.items.map((i) => [i.target, i.status, i.settledBy]), [["a", "failed", "operator"], ["b", "failed", undefined], ["c", "succeeded", undefined]])
    assert.strictEqual(Ledger.settleItems(failed.items, "failed"), failed.items, "settled already: the same array")
    // The provider's own word with items replaces the verdict's.
    const told = Either.getOrThrowWith(
      Ledger.applyChange({ ...failed, status: "requires_action" }, { to: "requires_action", source: "sync", at, items: [{ target: "a", status: "succeeded" }] }),
      (e) => e.error
    )
    assert.deepStrictEqual(told.items, [{ target: "a", status: "succeeded" }])
  })

  it.effect("reclaim takes a failed refund's targets back only where a claim of it would pass now, in the same step; nothing is recorded when it may not", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const at = "2024-01-01T00:00:01.000Z"
      const whole = (n: number, target: string): Refund => ({ ...draft(n), provider: "airalo", targets: [{ target }] })
      const first = whole(20, "iccid-1")
      yield* ledger.claim(first)
      yield* ledger.transition(first.id, { to: "unknown", source: "recovery", at })
      yield* ledger.transition(first.id, { to: "failed", source: "operator", at, detail: "operator: not at airalo" })
      // Its target was free, and a second refund took it.
      const second = whole(21, "iccid-1")
      assert.strictEqual((yield* ledger.claim(second))._tag, "Claimed")

      const correction: Ledger.Change = { to: "succeeded", source: "operator", at, corrects: true, detail: "operator: it was credited" }
      const refused = yield* Effect.flip(ledger.reclaim!(first.id, correction))
      assert.strictEqual(refused._tag, "TargetAlreadyRefunded")
      if (refused._tag === "TargetAlreadyRefunded") assert.deepStrictEqual([refused.target, refused.refundId, refused.status], ["iccid-1", second.id, "requested"])
      const after = yield* ledger.get(first.id)
      assert.deepStrictEqual([after.status, after.events.length], ["failed", 3], "nothing recorded")

      // Once the other refund failed, the correction takes the target back, and holds it against a third.
      yield* ledger.transition(second.id, { to: "failed", source: "submit", at, error: { code: "provider_declined", message: "already refunded" } })
      const taken = yield* ledger.reclaim!(first.id, correction)
      assert.strictEqual(taken.status, "succeeded")
      assert.strictEqual((yield* Effect.flip(ledger.claim(whole(22, "iccid-1"))))._tag, "TargetAlreadyRefunded")
      // A change that takes nothing back applies as a transition does.
      const unrelated = whole(23, "iccid-2")
      yield* ledger.claim(unrelated)
      assert.strictEqual((yield* ledger.reclaim!(unrelated.id, { to: "unknown", source: "recovery", at })).status, "unknown")
    }))
})
