import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as LedgerSql from "@refundkit/ledger-sql"
import { eventually } from "@refundkit/testkit/Waiting"
import * as Main from "../src/Main.js"
import * as Gateway from "./support/Gateway.js"

// Polls until the sandbox has delivered `count` callbacks (bounded: 5 s).
const deliveries = (gw: Gateway.Gateway, count: number) =>
  gw.exirom.deliveries.pipe(
    Effect.filterOrFail((all) => all.length >= count, () => "not yet"),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds"))),
    Effect.orDie
  )

const webhookEvents = (refund: { events: ReadonlyArray<{ source: string; accepted: boolean }> }) =>
  refund.events.filter((e) => e.source === "webhook")

describe("POST /v1/webhooks/{provider}", () => {
  it.scopedLive("a verified callback from the Exirom sandbox settles the refund; a replay changes nothing", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 100, callbacks: { delayMillis: 10 } } })
      const created = yield* gw.fetch("POST", "/v1/refunds", {
        body: Gateway.exiromRefund({ callbackUrl: `${gw.info.url}/v1/webhooks/exirom` }),
        headers: { "idempotency-key": Gateway.key() }
      })
      assert.strictEqual(created.status, 201, created.text)
      assert.strictEqual(created.body.status, "pending")
      const [delivery] = yield* deliveries(gw, 1)
      assert.strictEqual(delivery!.httpStatus, 200)
      assert.strictEqual(delivery!.transactionStatus, "SUCCEED")
      const settled = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(settled.body.status, "succeeded")
      assert.strictEqual(webhookEvents(settled.body).length, 1)

      const replay = yield* gw.exirom.sendCallback(settled.body.providerReference)
      assert.strictEqual(replay.httpStatus, 200, "a duplicate is acknowledged so the provider stops retrying")
      const after = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.deepStrictEqual(after.body.events, settled.body.events)
    }))

  // One callback posted twenty times at once, half to each of two gateways sharing the ledger: the ledger decides a
  // repeat as it records the event, so it is recorded once, and every other delivery is answered as a duplicate.
  const concurrentDeliveries = (a: Gateway.Gateway, b: Gateway.Gateway) =>
    Effect.gen(function*() {
      const created = yield* a.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.body.status, "pending", created.text)
      yield* a.exirom.settle
      const callback = Gateway.exiromCallback(created.body.providerReference, created.body.id)
      const post = (gw: Gateway.Gateway) =>
        gw.fetch("POST", "/v1/webhooks/exirom", { body: callback.body, headers: { "x-checksum": callback.checksum }, auth: false })
      const answers = yield* Effect.all(Array.from({ length: 20 }, (_, i) => post(i % 2 === 0 ? a : b)), { concurrency: "unbounded" })
      assert.deepStrictEqual([...new Set(answers.map((answer) => answer.status))], [200], answers.map((answer) => answer.text).join("\n"))
      assert.strictEqual(answers.filter((answer) => answer.body.applied === 1).length, 1)
      const duplicate = { received: 1, applied: 0, results: [{ applied: false, refundId: created.body.id, reason: "duplicate callback" }] }
      for (const answer of answers.filter((answer) => answer.body.applied === 0)) assert.deepStrictEqual(answer.body, duplicate)

      const settled = yield* b.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(settled.body.status, "succeeded")
      assert.deepStrictEqual(settled.body.events.filter((e: { source: string }) => e.source === "webhook"), [{
        sequence: 3,
        at: settled.body.updatedAt,
        source: "webhook",
        from: "pending",
        to: "succeeded",
        providerStatus: "SUCCEED",
        accepted: true,
        detail: "Exirom's callback, confirmed by its refund info: transactionStatus SUCCEED",
        callbackKey: "12345:SUCCEED"
      }])
      // The same callback later, as Exirom retries it: answered as before, nothing recorded.
      const again = yield* post(b)
      assert.deepStrictEqual([again.status, again.body], [200, duplicate])
      assert.deepStrictEqual((yield* a.fetch("GET", `/v1/refunds/${created.body.id}`)).body, settled.body)
    })

  it.scopedLive("one callback delivered twenty times at once to two gateways sharing a SQLite ledger is recorded once", () =>
    Effect.gen(function*() {
      const a = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
      yield* concurrentDeliveries(a, yield* Gateway.start({ shareWith: a }))
    }), 30_000)

  it.scopedLive("one callback delivered twenty times at once to two gateways sharing a PostgreSQL ledger is recorded once", () =>
    Effect.gen(function*() {
      const url = yield* Gateway.pgSchema
      const a = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 }, ledger: LedgerSql.layerPg(url) })
      yield* concurrentDeliveries(a, yield* Gateway.start({ shareWith: a, ledger: LedgerSql.layerPg(url) }))
    }), 30_000)

  it.scopedLive("out-of-order and duplicated lifecycle callbacks end in the final status, applied once", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({
        exirom: { settleAfterMillis: 100, callbacks: { delayMillis: 10, lifecycle: true, outOfOrder: true, duplicates: 1 } }
      })
      const created = yield* gw.fetch("POST", "/v1/refunds", {
        body: Gateway.exiromRefund({ callbackUrl: `${gw.info.url}/v1/webhooks/exirom` }),
        headers: { "idempotency-key": Gateway.key() }
      })
      const all = yield* deliveries(gw, 6)
      assert.deepStrictEqual(all.map((d) => d.transactionStatus), ["SUCCEED", "SUCCEED", "PROCESSING", "PROCESSING", "NEW", "NEW"])
      assert.isTrue(all.every((d) => d.httpStatus === 200))
      const refund = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(refund.body.status, "succeeded")
      assert.strictEqual(webhookEvents(refund.body).length, 1, "only the first SUCCEED moved it")
    }))

  it.scopedLive("a forged callback is 401 and an unparsable one 400; neither changes anything; no API key is needed", () =>
    Effect.gen(function*() {
      // The gateway's warnings go to stdout, through the logger refundkit-server installs: read them there.
      const stdout = yield* Gateway.captureStdout
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } }).pipe(Effect.provide(Main.loggerLayer))
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.body.status, "pending")
      const forgedBody = JSON.stringify({
        transactionId: 12345,
        refundId: created.body.providerReference,
        requestId: created.body.id,
        mid: "sandbox_mid",
        transactionStatus: "FAILED",
        declineCode: 6,
        totalAmount: 10.0
      })
      const forged = yield* gw.fetch("POST", "/v1/webhooks/exirom", {
        body: forgedBody,
        headers: { "x-checksum": "bm90IGEgcmVhbCBjaGVja3N1bQ==" },
        auth: false
      })
      assert.strictEqual(forged.status, 401, forged.text)
      assert.strictEqual(forged.body.error.code, "webhook_unverified")
      const unsigned = yield* gw.fetch("POST", "/v1/webhooks/exirom", { body: forgedBody, auth: false })
      assert.strictEqual(unsigned.status, 401)
      assert.strictEqual(unsigned.body.error.message, "The exirom callback failed verification: the callback has no X-Checksum header. Nothing was changed.")
      // Anyone can post to the route: the warning says the callback failed verification, and points at the
      // webhook secret only for the provider's own callbacks, not at refundkit's credentials for Exirom.
      const warning = "a callback to /v1/webhooks/exirom failed verification: the callback has no X-Checksum header. Nothing was changed. " +
        "If exirom's own callbacks are refused like this, the webhook secret refundkit verifies them with (a REFUNDKIT_EXIROM_* setting) may be wrong."
      yield* eventually(() => stdout.text().includes(warning), "the unsigned callback's warning was logged")
      assert.include(stdout.text(), "a callback to /v1/webhooks/exirom failed verification: the callback's X-Checksum does not match its body")
      assert.notInclude(stdout.text(), "refused refundkit's credentials")
      const garbage = yield* gw.fetch("POST", "/v1/webhooks/exirom", { body: "<xml/>", headers: { "x-checksum": "x" }, auth: false })
      assert.strictEqual(garbage.status, 400, garbage.text)
      assert.strictEqual(garbage.body.error.code, "webhook_invalid")
      const unchanged = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(unchanged.body.status, "pending")
      assert.deepStrictEqual(unchanged.body.events, created.body.events)

      yield* eventually(() => stdout.text().includes("a callback to /v1/webhooks/exirom could not be read: "), "the unreadable callback's warning was logged")

      const unknown = yield* gw.fetch("POST", "/v1/webhooks/nope", { body: "{}", auth: false })
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body.error.code, "unknown_provider")
      const noWebhooks = yield* gw.fetch("POST", "/v1/webhooks/airalo", { body: "{}", auth: false })
      assert.strictEqual(noWebhooks.status, 409)
      assert.strictEqual(noWebhooks.body.error.code, "unsupported_operation")
    }))

  it.scopedLive("a genuine callback whose confirming lookup Exirom refuses for refundkit's credentials is 502, and logged as that", () =>
    Effect.gen(function*() {
      const stdout = yield* Gateway.captureStdout
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } }).pipe(Effect.provide(Main.loggerLayer))
      const created = yield* gw.fetch("POST", "/v1/refunds", {
        body: Gateway.exiromRefund({ callbackUrl: `${gw.info.url}/v1/webhooks/exirom` }),
        headers: { "idempotency-key": Gateway.key() }
      })
      assert.strictEqual(created.status, 201, created.text)
      // Every token Exirom issues is refused now: the callback verifies, its lookup does not.
      yield* gw.exirom.faults.inject({ fault: { _tag: "ExpiredToken" }, route: "*", times: 0 })
      const delivery = yield* gw.exirom.sendCallback(created.body.providerReference)
      assert.strictEqual(delivery.httpStatus, 502, "refundkit's side failed: Exirom delivers the callback again")
      yield* eventually(
        () => stdout.text().includes("a callback to /v1/webhooks/exirom could not be confirmed with exirom: exirom refused refundkit's credentials"),
        "the refusal of refundkit's credentials was logged as that"
      )
      assert.notInclude(stdout.text(), "failed verification")
    }))
})
