// POST /v1/refunds/{id}/reopen: an operator's reopen of a final refund the provider set, as `refundkit reopen`
// records it, against the real gateway, its sandboxes and a SQLite ledger file: a 400 naming the field, 409s
// pointing at resolve (or resolve with correct), 409 target_already_refunded naming the refund holding the eSIM,
// and a repeat of the reopen answered 200 Idempotent-Replayed from the verdict its event records.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Gateway from "./support/Gateway.js"

const create = (gw: Gateway.Gateway, body: unknown, key = Gateway.key("reopen")) =>
  gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": key } })

const reopen = (gw: Gateway.Gateway, id: string, body: unknown) => gw.fetch("POST", `/v1/refunds/${id}/reopen`, { body })
const resolve = (gw: Gateway.Gateway, id: string, body: unknown) => gw.fetch("POST", `/v1/refunds/${id}/resolve`, { body })
const get = (gw: Gateway.Gateway, id: string) => Effect.map(gw.fetch("GET", `/v1/refunds/${id}`), (answer) => answer.body)
const paths = (answer: { readonly body: any }) => answer.body.error.issues.map((i: { readonly path: string }) => i.path)

describe("POST /v1/refunds/{id}/reopen", () => {
  it.scopedLive("reopens a succeeded Airpay refund to requires_action; its repeat is 200 Idempotent-Replayed; refusals point at resolve", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const made = yield* create(gw, { provider: "airpay", transactions: [{ ap_transactionid: 3100031, amount: "2.00" }] })
      assert.strictEqual(made.body.status, "succeeded", made.text)
      const id: string = made.body.id

      for (const [body, field] of [[{}, "note"], [{ note: " " }, "note"], [{ note: "x", status: "failed" }, "status"]] as const) {
        const bad = yield* reopen(gw, id, body)
        assert.strictEqual(bad.status, 400, bad.text)
        assert.strictEqual(bad.body.error.code, "invalid_request")
        assert.deepStrictEqual(paths(bad), [field])
      }
      assert.strictEqual((yield* reopen(gw, "rfd_00000000000000000000000000", { note: "x" })).status, 404)
      assert.deepStrictEqual(yield* get(gw, id), made.body, "nothing was recorded")

      const note = "reversed in the Airpay dashboard: card account closed"
      const reopened = yield* reopen(gw, id, { note })
      assert.strictEqual(reopened.status, 200, reopened.text)
      assert.isUndefined(reopened.headers["idempotent-replayed"])
      assert.strictEqual(reopened.body.status, "requires_action")
      assert.deepInclude(reopened.body.events.at(-1), {
        source: "operator",
        from: "succeeded",
        to: "requires_action",
        accepted: true,
        detail: `reopens the succeeded (${made.body.providerStatus}) airpay (submit) reported at ${made.body.updatedAt}, ` +
          `held in requires_action until a person settles it with refundkit resolve: operator: ${note}`,
        verdict: { note: `operator: ${note}`, releaseTargets: false, failedTargets: [], correct: false, reopen: true }
      })

      // The same reopen again (a lost answer): the refund as it stands, nothing recorded twice.
      const again = yield* reopen(gw, id, { note })
      assert.strictEqual(again.status, 200, again.text)
      assert.strictEqual(again.headers["idempotent-replayed"], "true")
      assert.deepStrictEqual(again.body, reopened.body)
      // Another note is no repeat: the refund is not final, and a verdict settles it.
      const other = yield* reopen(gw, id, { note: "something else" })
      assert.strictEqual(other.status, 409, other.text)
      assert.deepInclude(other.body.error, { code: "illegal_transition", refundId: id, from: "requires_action", to: "requires_action" })
      assert.include(other.body.error.message, `Refund ${id} is requires_action, which is not final: there is nothing to reopen`)
      assert.include(other.body.error.message, `POST /v1/refunds/${id}/resolve`)
      assert.deepStrictEqual(yield* get(gw, id), reopened.body)

      // Resolved failed, it keeps its transaction held; reopened again it is a verdict, corrected rather than reopened.
      const failed = yield* resolve(gw, id, { status: "failed", note: "Airpay confirmed the reversal" })
      assert.strictEqual(failed.status, 200, failed.text)
      assert.deepInclude(failed.body, { status: "failed", holdsTarget: true })
      const byHand = yield* reopen(gw, id, { note })
      assert.strictEqual(byHand.status, 409, byHand.text)
      assert.include(byHand.body.error.message, `is failed by an operator's verdict recorded at ${failed.body.updatedAt}`)
      assert.include(byHand.body.error.message, `{"status": "succeeded", "correct": true, "note": "..."}`)
    }))

  it.scopedLive("the typed client reopens, reads the repeat as a replay, and fails with the contract's typed errors", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const made = yield* create(gw, { provider: "airpay", transactions: [{ ap_transactionid: 3100032, amount: "3.00" }] })
      assert.strictEqual(made.body.status, "succeeded", made.text)
      const id: string = made.body.id
      const note = "reversed in the Airpay dashboard"

      const reopened = yield* gw.client.refunds.reopen({ path: { id }, payload: { note } })
      assert.strictEqual(reopened.status, "requires_action")
      assert.deepStrictEqual(reopened.events.at(-1)?.verdict, { note: `operator: ${note}`, releaseTargets: false, failedTargets: [], correct: false, reopen: true })
      const [again, response] = yield* gw.client.refunds.reopen({ path: { id }, payload: { note }, withResponse: true })
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers["idempotent-replayed"], "true")
      assert.deepStrictEqual(again, reopened)

      const notFinal = yield* Effect.flip(gw.client.refunds.reopen({ path: { id }, payload: { note: "another" } }))
      assert.strictEqual(notFinal._tag, "IllegalTransition")
      // The contract's own schema refuses a blank note before anything is sent.
      const reopens = Effect.map(gw.fetch("GET", "/metrics"), (answer) => answer.text.match(/^refundkit_http_requests_total\{[^}]*route="\/v1\/refunds\/:id\/reopen"[^}]*\} \d+$/gm))
      const before = yield* reopens
      assert.lengthOf(before ?? [], 2, "the gateway counted the reopens so far: 200 twice, 409 once")
      const blank = yield* Effect.flip(gw.client.refunds.reopen({ path: { id }, payload: { note: "" } }))
      assert.strictEqual(blank._tag, "ParseError")
      assert.deepStrictEqual(yield* reopens, before, "the gateway saw no request")
      const missing = yield* Effect.flip(gw.client.refunds.reopen({ path: { id: "rfd_00000000000000000000000000" }, payload: { note } }))
      assert.strictEqual(missing._tag, "RefundNotFound")
      assert.strictEqual((yield* get(gw, id)).updatedAt, reopened.updatedAt, "nothing recorded after the reopen")
    }))

  it.scopedLive("a reopened failed takes its eSIM back: 409 target_already_refunded naming the refund made since, nothing changed", () =>
    Effect.gen(function*() {
      // Without Airalo's 1 call per 5 minutes: this test makes two.
      const gw = yield* Gateway.start({ airalo: { rateLimit: false } })
      // Not the company's eSIM at first: Airalo refuses it, and the refund is failed by Airalo's own answer.
      const iccid = "8920300000000000095"
      const first = yield* create(gw, Gateway.airaloRefund(iccid))
      assert.strictEqual(first.body.status, "failed", first.text)
      const id: string = first.body.id
      yield* gw.airalo.own(iccid)
      const second = yield* create(gw, Gateway.airaloRefund(iccid))
      assert.strictEqual(second.status, 201, second.text)

      const taken = yield* reopen(gw, id, { note: "the Airalo dashboard shows it credited" })
      assert.strictEqual(taken.status, 409, taken.text)
      assert.deepInclude(taken.body.error, { code: "target_already_refunded", target: iccid, refundId: second.body.id, status: "pending" })
      assert.include(taken.body.error.message, `Refund ${id} cannot be reopened: its target ${iccid} is held by refund ${second.body.id}`)
      assert.deepStrictEqual(yield* get(gw, id), first.body, "nothing was recorded")

      assert.strictEqual((yield* resolve(gw, second.body.id, { status: "failed", note: "refused by email" })).status, 200)
      const reopened = yield* reopen(gw, id, { note: "the Airalo dashboard shows it credited" })
      assert.strictEqual(reopened.status, 200, reopened.text)
      assert.strictEqual(reopened.body.status, "requires_action")
      const third = yield* create(gw, Gateway.airaloRefund(iccid))
      assert.strictEqual(third.status, 409, third.text)
      assert.strictEqual(third.body.error.refundId, id)
    }))
})
