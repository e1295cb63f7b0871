import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
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
