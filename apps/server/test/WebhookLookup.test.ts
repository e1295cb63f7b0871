import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Gateway from "./support/Gateway.js"

describe("POST /v1/webhooks/exirom when the confirming lookup fails", () => {
  it.scopedLive("a verified callback whose info lookup Exirom answers with 404 or a bad body is 502, not 400 'could not be read'", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.body.status, "pending")
      for (const [label, callback] of [
        ["404", Gateway.exiromCallback("a-refund-exirom-does-not-show-yet", created.body.id)],
        ["malformed", Gateway.exiromCallback(created.body.providerReference, created.body.id)]
      ] as const) {
        if (label === "malformed") yield* gw.exirom.faults.inject({ fault: { _tag: "Malformed" }, route: "info" })
        const answer = yield* gw.fetch("POST", "/v1/webhooks/exirom", { body: callback.body, headers: { "x-checksum": callback.checksum }, auth: false })
        assert.strictEqual(answer.status, 502, `${label}: ${answer.text}`)
        assert.strictEqual(answer.body.error.code, "provider_unavailable")
        assert.notInclude(answer.body.error.message, "kept as \"unknown\"", "the refund is pending, not unknown")
      }
      const after = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.deepStrictEqual(after.body.events, created.body.events)
    }), 30_000)
})
