// POST /v1/refunds/{id}/resolve: which verdict is a repeat of the one that settled a refund (200
// Idempotent-Replayed, nothing recorded) is read from the verdict its event records (core's
// `RefundEvent.verdict`), not from the words of its detail, against the real gateway, its sandboxes and a
// SQLite ledger file. An event recorded before the ledger kept verdicts has only its words, read as before.
import { assert, describe, it } from "@effect/vitest"
import { Ledger } from "@refundkit/core"
import { correctionOpening } from "@refundkit/core/Ledger"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Context, Effect, Layer } from "effect"
import * as Gateway from "./support/Gateway.js"

const create = (gw: Gateway.Gateway, body: unknown, key = Gateway.key("replay")) =>
  gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": key } })

const resolve = (gw: Gateway.Gateway, id: string, body: unknown) => gw.fetch("POST", `/v1/refunds/${id}/resolve`, { body })

const get = (gw: Gateway.Gateway, id: string) => Effect.map(gw.fetch("GET", `/v1/refunds/${id}`), (answer) => answer.body)

/** An Exirom refund left `unknown`: its call hangs past the call timeout (504 outcome_unknown). */
const inDoubt = (gw: Gateway.Gateway, transactionId: number) =>
  Effect.gen(function*() {
    yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "refund" })
    const timedOut = yield* create(gw, Gateway.exiromRefund({ transactionId, currency: "EUR", amount: "1.00" }))
    yield* gw.exirom.faults.clear
    assert.strictEqual(timedOut.status, 504, timedOut.text)
    return timedOut.body.error.refundId as string
  })

/** An Airalo request of two ICCIDs, pending (accepted for review): each may be settled apart. */
const twoEsims = (gw: Gateway.Gateway, first: string, second: string) =>
  Effect.gen(function*() {
    const created = yield* create(gw, { provider: "airalo", iccids: [first, second], reason: "TRIP_CANCELLATION" })
    assert.strictEqual(created.status, 201, created.text)
    assert.strictEqual(created.body.status, "pending")
    return created.body.id as string
  })

/** `verdict` sent again: 200 marked as a replay, the refund as it stands, nothing recorded. */
const replayed = (gw: Gateway.Gateway, id: string, verdict: unknown) =>
  Effect.gen(function*() {
    const before = yield* get(gw, id)
    const again = yield* resolve(gw, id, verdict)
    assert.strictEqual(again.status, 200, `${JSON.stringify(verdict)}: ${again.text}`)
    assert.strictEqual(again.headers["idempotent-replayed"], "true", JSON.stringify(verdict))
    assert.deepStrictEqual(again.body, before, JSON.stringify(verdict))
  })

/** `verdict` is no repeat: refused with `status` (409 for a final refund, 400 for a `correct` that does not fit), nothing recorded. */
const refused = (gw: Gateway.Gateway, id: string, verdict: unknown, status: 400 | 409, says: string) =>
  Effect.gen(function*() {
    const before = yield* get(gw, id)
    const answer = yield* resolve(gw, id, verdict)
    assert.strictEqual(answer.status, status, `${JSON.stringify(verdict)}: ${answer.text}`)
    assert.isUndefined(answer.headers["idempotent-replayed"], JSON.stringify(verdict))
    assert.include(answer.body.error.message, says, JSON.stringify(verdict))
    assert.deepStrictEqual(yield* get(gw, id), before, `${JSON.stringify(verdict)}: nothing was recorded`)
  })

describe("POST /v1/refunds/{id}/resolve: a repeat is the same verdict, as recorded", () => {
  it.scopedLive("a note in the words core adds to a detail is not taken for them; the same verdict again is a replay", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second", airalo: { rateLimit: false } })

      // Recorded without a release, in words that read like one: a release asked with the note's first half is no repeat.
      const failedId = yield* inDoubt(gw, 1200001)
      const wordy = { status: "failed", note: "AeroHub closed it (targets released: not by us)" }
      const failed = yield* resolve(gw, failedId, wordy)
      assert.strictEqual(failed.status, 200, failed.text)
      assert.strictEqual(failed.body.events.at(-1).detail, "operator: AeroHub closed it (targets released: not by us)")
      assert.deepStrictEqual(failed.body.events.at(-1).verdict, { note: "operator: AeroHub closed it (targets released: not by us)", releaseTargets: false, failedTargets: [], correct: false })
      yield* refused(gw, failedId, { status: "failed", note: "AeroHub closed it", releaseTargets: true }, 409, "holds no target to release")
      yield* replayed(gw, failedId, wordy)

      // Recorded with every ICCID refunded, in words that name one as not: that ICCID named as not refunded is no repeat.
      const [credited, other] = ["8910300000000000110", "8910300000000000128"]
      const esims = yield* twoEsims(gw, credited, other)
      const both = { status: "succeeded", note: `both credited (failed targets, not refunded by airalo: ${other})` }
      const settled = yield* resolve(gw, esims, both)
      assert.strictEqual(settled.status, 200, settled.text)
      assert.deepStrictEqual(settled.body.items.map((i: { readonly status: string }) => i.status), ["succeeded", "succeeded"])
      yield* refused(gw, esims, { status: "succeeded", note: "both credited", failedTargets: [other] }, 409, "is already succeeded, which is final")
      yield* replayed(gw, esims, both)

      // A correction whose note opens as core opens a correction: a repeat only as the same correction.
      const correctedId = yield* inDoubt(gw, 1200002)
      const first = yield* resolve(gw, correctedId, { status: "succeeded", note: "credited" })
      assert.strictEqual(first.status, 200, first.text)
      const opening = correctionOpening("succeeded", first.body.events.at(-1).at)
      const correction = { status: "failed", note: `${opening}: operator: refused after all`, correct: true }
      const corrected = yield* resolve(gw, correctedId, correction)
      assert.strictEqual(corrected.status, 200, corrected.text)
      assert.strictEqual(corrected.body.events.at(-1).detail, `${opening}: operator: ${opening}: operator: refused after all`)
      assert.deepStrictEqual(corrected.body.events.at(-1).verdict, { note: `operator: ${correction.note}`, releaseTargets: false, failedTargets: [], correct: true })
      yield* replayed(gw, correctedId, correction)
      yield* refused(gw, correctedId, { status: "failed", note: "refused after all", correct: true }, 400, "there is nothing to correct")
      yield* refused(gw, correctedId, { status: "failed", note: correction.note }, 409, "is already failed, which is final")
    }))

  it.scopedLive("another failedTargets, releaseTargets or correct is another verdict: refused, nothing recorded; the same fields in any spelling a repeat", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second", airalo: { rateLimit: false } })

      // failedTargets: none, the other ICCID, or both together are not the verdict that named one.
      const [credited, refusedEsim] = ["8910300000000000136", "8910300000000000144"]
      const esims = yield* twoEsims(gw, credited, refusedEsim)
      const perEsim = { status: "succeeded", note: "Airalo's email: one credited, one refused", failedTargets: [refusedEsim] }
      assert.strictEqual((yield* resolve(gw, esims, perEsim)).status, 200)
      yield* replayed(gw, esims, perEsim)
      yield* replayed(gw, esims, { ...perEsim, failedTargets: [refusedEsim, refusedEsim], note: ` ${perEsim.note} ` })
      for (const failedTargets of [undefined, [credited], [credited, refusedEsim]]) {
        const { failedTargets: _, ...rest } = perEsim
        yield* refused(gw, esims, failedTargets === undefined ? rest : { ...rest, failedTargets }, 409, "is already succeeded, which is final")
      }

      // releaseTargets: a release asked of a refund that held nothing is recorded as asked, and repeated only so.
      const releasedId = yield* inDoubt(gw, 1200011)
      const release = { status: "failed", note: "not at Exirom; let go of the transaction", releaseTargets: true }
      const released = yield* resolve(gw, releasedId, release)
      assert.strictEqual(released.status, 200, released.text)
      assert.strictEqual(released.body.events.at(-1).detail, `operator: ${release.note}`, "it held nothing: the note alone")
      assert.strictEqual(released.body.events.at(-1).verdict.releaseTargets, true)
      yield* replayed(gw, releasedId, release)
      yield* refused(gw, releasedId, { status: "failed", note: release.note }, 409, "is already failed, which is final")
      yield* refused(gw, releasedId, { ...release, releaseTargets: false }, 409, "is already failed, which is final")
      const plainId = yield* inDoubt(gw, 1200012)
      const plain = { status: "failed", note: "not at Exirom" }
      assert.strictEqual((yield* resolve(gw, plainId, plain)).status, 200)
      yield* replayed(gw, plainId, { ...plain, releaseTargets: false })
      yield* refused(gw, plainId, { ...plain, releaseTargets: true }, 409, "holds no target to release")

      // correct: a plain verdict is not repeated by a correction, nor a correction by a plain verdict.
      yield* refused(gw, plainId, { ...plain, correct: true }, 400, "there is nothing to correct")
      const undo = { status: "succeeded", note: "credited after all", correct: true }
      assert.strictEqual((yield* resolve(gw, plainId, undo)).status, 200)
      yield* replayed(gw, plainId, undo)
      yield* refused(gw, plainId, { ...undo, correct: false }, 409, "is already succeeded, which is final")
      yield* refused(gw, plainId, { status: "succeeded", note: undo.note }, 409, "is already succeeded, which is final")
    }))

  it.scopedLive("a verdict recorded before the ledger kept verdicts (no verdict on its event) is still repeated by its words", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second", airalo: { rateLimit: false } })
      // Another writer on the ledger file records verdicts as core did before RefundEvent.verdict: words alone. Their
      // rows hold NULL in the verdict column, as every row written before migration 16 does.
      const ledger = Context.get(yield* Layer.build(LedgerSql.layerSqlite(gw.ledgerFile)), Ledger.Ledger)
      const at = () => new Date().toISOString()

      const id = yield* inDoubt(gw, 1200021)
      yield* ledger.transition(id, { to: "failed", source: "operator", at: at(), error: null, settleItems: true, detail: "operator: not at Exirom" })
      const old = yield* get(gw, id)
      assert.isUndefined(old.events.at(-1).verdict)
      yield* replayed(gw, id, { status: "failed", note: "not at Exirom" })
      // Its words hold no release: one asked for matches them too, as it always did (a release of a refund holding nothing
      // records the note alone); the words cannot tell.
      yield* replayed(gw, id, { status: "failed", note: "not at Exirom", releaseTargets: true })
      yield* refused(gw, id, { status: "failed", note: "refused by Exirom" }, 409, "is already failed, which is final")

      // A correction in words: the opening core wrote, then the note.
      yield* ledger.transition(id, { to: "succeeded", source: "operator", at: at(), corrects: true, settleItems: true, detail: "operator: credited after all" })
      yield* replayed(gw, id, { status: "succeeded", note: "credited after all", correct: true })
      yield* refused(gw, id, { status: "succeeded", note: "credited after all" }, 409, "is already succeeded, which is final")

      // failed targets in words.
      const [credited, notRefunded] = ["8910300000000000151", "8910300000000000169"]
      const esims = yield* twoEsims(gw, credited, notRefunded)
      yield* ledger.transition(esims, {
        to: "succeeded",
        source: "operator",
        at: at(),
        settleItems: true,
        failedTargets: [notRefunded],
        detail: `operator: one refused (failed targets, not refunded by airalo: ${notRefunded})`
      })
      yield* replayed(gw, esims, { status: "succeeded", note: "one refused", failedTargets: [notRefunded] })
      yield* refused(gw, esims, { status: "succeeded", note: "one refused", failedTargets: [credited] }, 409, "is already succeeded, which is final")

      // A verdict the gateway records now carries its record, beside the old events that do not.
      const next = yield* inDoubt(gw, 1200022)
      const recorded = yield* resolve(gw, next, { status: "failed", note: "not at Exirom" })
      assert.deepStrictEqual(recorded.body.events.at(-1).verdict, { note: "operator: not at Exirom", releaseTargets: false, failedTargets: [], correct: false })
    }))
})
