// POST /v1/refunds/{id}/resolve with `correct`: a verdict an operator recorded replaced by the other final
// status, as `refundkit resolve --correct` does, against the real gateway, its sandboxes and a SQLite ledger
// file. A status the provider set is never corrected; a correction to succeeded takes the targets back.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Gateway from "./support/Gateway.js"

const create = (gw: Gateway.Gateway, body: unknown, key = Gateway.key("correct")) =>
  gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": key } })

const resolve = (gw: Gateway.Gateway, id: string, body: unknown) => gw.fetch("POST", `/v1/refunds/${id}/resolve`, { body })

const get = (gw: Gateway.Gateway, id: string) => Effect.map(gw.fetch("GET", `/v1/refunds/${id}`), (answer) => answer.body)

/** An Exirom refund left `unknown`: its call hangs past the call timeout (504 outcome_unknown). */
const inDoubt = (gw: Gateway.Gateway, refund: Record<string, unknown>) =>
  Effect.gen(function*() {
    yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "refund" })
    const timedOut = yield* create(gw, Gateway.exiromRefund({ currency: "EUR", amount: "1.00", ...refund }))
    yield* gw.exirom.faults.clear
    assert.strictEqual(timedOut.status, 504, timedOut.text)
    return timedOut.body.error.refundId as string
  })

const paths = (answer: { readonly body: any }) => answer.body.error.issues.map((i: { readonly path: string }) => i.path)

describe("POST /v1/refunds/{id}/resolve with correct", () => {
  it.scopedLive("replaces an operator's verdict with the other final status, recorded as a correction; its repeat is 200 Idempotent-Replayed, nothing recorded twice", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const id = yield* inDoubt(gw, { transactionId: 1100001 })

      // Nothing to correct yet: the refund is unknown. `correct` is the wrong field, 400 naming it, nothing recorded.
      const before = yield* get(gw, id)
      const early = yield* resolve(gw, id, { status: "failed", note: "not in the back office", correct: true })
      assert.strictEqual(early.status, 400, early.text)
      assert.strictEqual(early.body.error.code, "invalid_request")
      assert.deepStrictEqual(paths(early), ["correct"])
      assert.include(early.body.error.message, `correct: refund ${id} is unknown: there is no verdict to correct; resolve it without correct`)
      assert.include(early.body.error.message, "Nothing was changed.")
      assert.deepStrictEqual(yield* get(gw, id), before)

      const credited = yield* resolve(gw, id, { status: "succeeded", note: "credited, seen in the Exirom back office" })
      assert.strictEqual(credited.status, 200, credited.text)
      const creditedAt: string = credited.body.events.at(-1).at

      // Without correct, the other status is refused as before; the refusal says how to correct a verdict recorded by hand.
      const plain = yield* resolve(gw, id, { status: "failed", note: "typo: Exirom refused it" })
      assert.strictEqual(plain.status, 409, plain.text)
      assert.include(plain.body.error.message, `Refund ${id} is already succeeded, which is final: nothing was changed. An operator settled it succeeded at ${creditedAt};`)
      assert.include(plain.body.error.message, `If that verdict was wrong, correct it in so many words: send {"status": "failed", "correct": true, "note": "..."}.`)
      // The status it already has is no correction: 400 naming correct.
      const same = yield* resolve(gw, id, { status: "succeeded", note: "credited", correct: true })
      assert.strictEqual(same.status, 400, same.text)
      assert.deepStrictEqual(paths(same), ["correct"])
      assert.include(same.body.error.message, `refund ${id} is already succeeded: there is nothing to correct`)
      assert.deepStrictEqual(yield* get(gw, id), credited.body, "nothing was recorded")

      const correction = { status: "failed", note: "typo: Exirom refused it", correct: true }
      const corrected = yield* resolve(gw, id, correction)
      assert.strictEqual(corrected.status, 200, corrected.text)
      assert.isUndefined(corrected.headers["idempotent-replayed"])
      assert.strictEqual(corrected.body.status, "failed")
      assert.deepInclude(corrected.body.events.at(-1), {
        source: "operator",
        from: "succeeded",
        to: "failed",
        accepted: true,
        detail: `corrects the succeeded an operator recorded at ${creditedAt}: operator: typo: Exirom refused it`
      })

      // A client that lost the answer sends the same correction again: the refund as it stands, nothing recorded.
      for (const retry of [correction, { ...correction, note: `  ${correction.note} ` }]) {
        const again = yield* resolve(gw, id, retry)
        assert.strictEqual(again.status, 200, again.text)
        assert.strictEqual(again.headers["idempotent-replayed"], "true")
        assert.deepStrictEqual(again.body, corrected.body)
      }
      // Not a repeat: the same words without correct (the request that made it said correct), or another note.
      const uncorrected = yield* resolve(gw, id, { status: "failed", note: correction.note })
      assert.strictEqual(uncorrected.status, 409, uncorrected.text)
      assert.strictEqual(uncorrected.body.error.code, "illegal_transition")
      const otherNote = yield* resolve(gw, id, { ...correction, note: "refused by Exirom support" })
      assert.strictEqual(otherNote.status, 400, otherNote.text)
      assert.deepStrictEqual(paths(otherNote), ["correct"])
      assert.include(otherNote.body.error.message, "is already failed: there is nothing to correct")
      assert.deepStrictEqual(yield* get(gw, id), corrected.body, "nothing was recorded")

      // And back: a correction of the correction, its target free (no refund made meanwhile).
      const back = yield* resolve(gw, id, { status: "succeeded", note: "credited after all", correct: true })
      assert.strictEqual(back.status, 200, back.text)
      assert.strictEqual(back.body.status, "succeeded")
      assert.strictEqual(back.body.events.at(-1).detail, `corrects the failed an operator recorded at ${corrected.body.events.at(-1).at}: operator: credited after all`)
      // The first correction is no longer what settled the refund: sent again, it corrects the new verdict.
      const undone = yield* resolve(gw, id, correction)
      assert.strictEqual(undone.status, 200, undone.text)
      assert.isUndefined(undone.headers["idempotent-replayed"])
      assert.strictEqual(undone.body.events.filter((e: { readonly source: string }) => e.source === "operator").length, 4)

      // The typed client sends it too.
      const second = yield* inDoubt(gw, { transactionId: 1100002 })
      yield* gw.client.refunds.resolve({ path: { id: second }, payload: { status: "failed", note: "not seen" } })
      const typed = yield* gw.client.refunds.resolve({ path: { id: second }, payload: { status: "succeeded", note: "seen after all", correct: true } })
      assert.strictEqual(typed.status, "succeeded")
      const typedAgain = yield* gw.client.refunds.resolve({ path: { id: second }, payload: { status: "succeeded", note: "seen after all", correct: true } })
      assert.deepStrictEqual(typedAgain, typed)
      const typedSame = yield* Effect.flip(gw.client.refunds.resolve({ path: { id: second }, payload: { status: "succeeded", note: "other", correct: true } }))
      assert.strictEqual(typedSame._tag, "InvalidRequest")
    }))

  it.scopedLive("a status the provider set is not corrected: 409 illegal_transition naming who set it, nothing changed", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const airpay = yield* create(gw, { provider: "airpay", transactions: [{ ap_transactionid: 3100021, amount: "2.00" }] })
      assert.strictEqual(airpay.body.status, "succeeded", airpay.text)
      const refused = yield* resolve(gw, airpay.body.id, { status: "failed", note: "typo", correct: true })
      assert.strictEqual(refused.status, 409, refused.text)
      assert.deepInclude(refused.body.error, { code: "illegal_transition", refundId: airpay.body.id, from: "succeeded", to: "failed" })
      assert.include(
        refused.body.error.message,
        `The correction was refused: refund ${airpay.body.id} is succeeded, set by airpay (submit) at ${airpay.body.updatedAt}: only a verdict an operator recorded is corrected by hand; a final status the provider set stays.`
      )
      assert.include(refused.body.error.message, "Nothing was changed.")
      // Without correct, no advice to correct what the provider said.
      const plain = yield* resolve(gw, airpay.body.id, { status: "failed", note: "typo" })
      assert.strictEqual(plain.status, 409, plain.text)
      assert.notInclude(plain.body.error.message, "correct")
      // The status it has is 400 (nothing to correct), whoever set it: the verdict asks for no change.
      const same = yield* resolve(gw, airpay.body.id, { status: "succeeded", note: "typo", correct: true })
      assert.strictEqual(same.status, 400, same.text)
      assert.deepStrictEqual(paths(same), ["correct"])
      assert.deepStrictEqual(yield* get(gw, airpay.body.id), airpay.body)
    }))

  it.scopedLive("to succeeded it takes the eSIM back: 409 target_already_refunded naming the refund made meanwhile, nothing changed; taken once that one is failed", () =>
    Effect.gen(function*() {
      // Without Airalo's 1 call per 5 minutes: this test makes three.
      const gw = yield* Gateway.start({ airalo: { rateLimit: false } })
      const iccid = "8910300000000000094"
      const first = yield* create(gw, Gateway.airaloRefund(iccid))
      assert.strictEqual(first.status, 201, first.text)
      const id: string = first.body.id
      assert.strictEqual((yield* resolve(gw, id, { status: "succeeded", note: "credited, seen on the balance" })).status, 200)
      const failed = yield* resolve(gw, id, { status: "failed", note: "typo: Airalo refused it by email", correct: true })
      assert.strictEqual(failed.status, 200, failed.text)

      // The eSIM is free again, as after any failed verdict, and a second refund takes it.
      const second = yield* create(gw, Gateway.airaloRefund(iccid))
      assert.strictEqual(second.status, 201, second.text)
      const taken = yield* resolve(gw, id, { status: "succeeded", note: "credited after all", correct: true })
      assert.strictEqual(taken.status, 409, taken.text)
      assert.deepInclude(taken.body.error, { code: "target_already_refunded", target: iccid, refundId: second.body.id, status: "pending" })
      assert.include(
        taken.body.error.message,
        `Refund ${id} cannot be corrected to succeeded: its target ${iccid} is held by refund ${second.body.id} (status pending), made while ${id} stood failed. Nothing was changed.`
      )
      assert.include(taken.body.error.message, `record that on it (POST /v1/refunds/${second.body.id}/resolve), then send this correction again.`)
      assert.notInclude(taken.body.error.message, "Nothing was sent", "a correction sends nothing; core's create words are not its")
      assert.deepStrictEqual(yield* get(gw, id), failed.body, "nothing was recorded")

      assert.strictEqual((yield* resolve(gw, second.body.id, { status: "failed", note: "Airalo refused the second: the first was credited" })).status, 200)
      const back = yield* resolve(gw, id, { status: "succeeded", note: "credited after all", correct: true })
      assert.strictEqual(back.status, 200, back.text)
      assert.deepStrictEqual(back.body.items.map((i: { status: string; settledBy?: string }) => [i.status, i.settledBy]), [["succeeded", "operator"]])
      const third = yield* create(gw, Gateway.airaloRefund(iccid))
      assert.strictEqual(third.status, 409, third.text)
      assert.strictEqual(third.body.error.refundId, id, "the corrected refund holds the eSIM again")
    }))

  it.scopedLive("to succeeded past the original amount with the refunds made meanwhile: 409 over_refund, nothing changed", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const originalAmounts = { "1100011": "100.00" }
      const id = yield* inDoubt(gw, { transactionId: 1100011, amount: "60.00", originalAmounts })
      const failed = yield* resolve(gw, id, { status: "failed", note: "not in the back office" })
      assert.strictEqual(failed.status, 200, failed.text)
      const other = yield* create(gw, Gateway.exiromRefund({ transactionId: 1100011, currency: "EUR", amount: "50.00", originalAmounts }))
      assert.strictEqual(other.status, 201, other.text)

      const over = yield* resolve(gw, id, { status: "succeeded", note: "it was in the back office", correct: true })
      assert.strictEqual(over.status, 409, over.text)
      assert.deepInclude(over.body.error, { code: "over_refund", target: "1100011", requested: "60.00", remaining: "50.00", currency: "EUR" })
      assert.include(over.body.error.message, `Refund ${id} cannot be corrected to succeeded: with the refunds made against 1100011 while it stood failed it would exceed the original amount (50.00 EUR left).`)
      assert.include(over.body.error.message, "GET /v1/refunds?provider=exirom&target=1100011")
      assert.deepStrictEqual(yield* get(gw, id), failed.body, "nothing was recorded")
    }))

  it.scopedLive("the same correction sent at once, eight times: one correction recorded, every answer 200 with the refund", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const id = yield* inDoubt(gw, { transactionId: 1100021 })
      assert.strictEqual((yield* resolve(gw, id, { status: "succeeded", note: "credited" })).status, 200)
      const correction = { status: "failed", note: "typo: not credited", correct: true }
      // Connections opened first, so that the corrections are not queued one behind another on one connection.
      yield* Effect.all(Array.from({ length: 8 }, () => gw.fetch("GET", `/v1/refunds/${id}`)), { concurrency: "unbounded" })
      const answers = yield* Effect.all(Array.from({ length: 8 }, () => resolve(gw, id, correction)), { concurrency: "unbounded" })
      assert.deepStrictEqual(answers.map((a) => a.status), answers.map(() => 200), answers.map((a) => a.text).join("\n"))
      assert.strictEqual(answers.filter((a) => a.headers["idempotent-replayed"] === undefined).length, 1, "one recorded it, the others repeated it")
      const after = yield* get(gw, id)
      assert.strictEqual(after.events.filter((e: { readonly detail?: string }) => e.detail?.startsWith("corrects ")).length, 1, JSON.stringify(after.events))
      for (const answer of answers) assert.deepStrictEqual(answer.body, after)
    }))

  it.scopedLive("the body: correct is true or false, an unknown field is named; /openapi.json describes correct and the errors a correction answers", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const id = yield* inDoubt(gw, { transactionId: 1100031 })
      const yes = yield* resolve(gw, id, { status: "failed", note: "checked", correct: "yes" })
      assert.strictEqual(yes.status, 400, yes.text)
      assert.deepStrictEqual(paths(yes), ["correct"])
      assert.include(yes.body.error.message, "must be true or false, got \"yes\"")
      const misspelt = yield* resolve(gw, id, { status: "failed", note: "checked", corrects: true })
      assert.strictEqual(misspelt.status, 400, misspelt.text)
      assert.include(misspelt.body.error.message, "\"correct\"")
      // correct: false is a verdict like any other.
      const plain = yield* resolve(gw, id, { status: "failed", note: "checked", correct: false })
      assert.strictEqual(plain.status, 200, plain.text)
      const again = yield* resolve(gw, id, { status: "failed", note: "checked" })
      assert.strictEqual(again.headers["idempotent-replayed"], "true", "and its repeat without the field is a repeat")

      const spec = (yield* gw.fetch("GET", "/openapi.json", { auth: false })).body
      assert.strictEqual(spec.components.schemas.ResolveRefund.properties.correct.type, "boolean")
      assert.include(spec.components.schemas.ResolveRefund.properties.correct.description, "refundkit resolve --correct")
      const operation = spec.paths["/v1/refunds/{id}/resolve"].post
      assert.include(JSON.stringify(operation.responses["409"]), "TargetAlreadyRefundedError")
      assert.include(JSON.stringify(operation.responses["409"]), "OverRefundError")
      assert.include(operation.description, "`correct: true` replaces a verdict an operator recorded")
    }))
})
