import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
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
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
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
      const garbage = yield* gw.fetch("POST", "/v1/webhooks/exirom", { body: "<xml/>", headers: { "x-checksum": "x" }, auth: false })
      assert.strictEqual(garbage.status, 400, garbage.text)
      assert.strictEqual(garbage.body.error.code, "webhook_invalid")
      const unchanged = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(unchanged.body.status, "pending")
      assert.deepStrictEqual(unchanged.body.events, created.body.events)

      const unknown = yield* gw.fetch("POST", "/v1/webhooks/nope", { body: "{}", auth: false })
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body.error.code, "unknown_provider")
      const noWebhooks = yield* gw.fetch("POST", "/v1/webhooks/airalo", { body: "{}", auth: false })
      assert.strictEqual(noWebhooks.status, 409)
      assert.strictEqual(noWebhooks.body.error.code, "unsupported_operation")
    }))
})
