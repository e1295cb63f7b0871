// A JSON number in a request body that a double cannot carry exactly (more digits than it
// holds) is refused naming its field, before any provider's schema sees the rounded value.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Gateway from "./support/Gateway.js"

describe("JSON numbers past a double's precision in a request body", () => {
  it.scopedLive("an AeroHub amount of 18 digits is refused on its field, not rounded to 250.00 and sent", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF940001", purchaseOrderNo: "F340001" }
      const created = yield* gw.fetch("POST", "/v1/refunds", {
        body: { provider: "aerohub", ...order, refundStatus: "PROCESSING" },
        headers: { "idempotency-key": Gateway.key("exact") }
      })
      assert.strictEqual(created.status, 201, created.text)
      const id = created.body.id as string
      const step = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, { body: { ...order, refundStatus: "REFUNDED_PENDING" } })
      assert.strictEqual(step.status, 200, step.text)
      const sent = (yield* gw.aerohub.calls).length
      const text = `{"refundOrderNo":"${order.refundOrderNo}","purchaseOrderNo":"${order.purchaseOrderNo}","refundStatus":"REFUNDED",` +
        `"refundAmount":[{"refundCost":250.000000000000001}]}`
      const inexact = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, { body: text })
      assert.strictEqual(inexact.status, 400, inexact.text)
      assert.strictEqual(inexact.body.error.code, "invalid_request")
      assert.deepStrictEqual(inexact.body.error.issues.map((i: { path: string }) => i.path), ["refundAmount.0.refundCost"])
      assert.include(inexact.text, "250.000000000000001")
      assert.strictEqual((yield* gw.aerohub.calls).length, sent, "nothing was sent")

      // On the create route too, and an id-like integer past 2^53.
      const create = yield* gw.fetch("POST", "/v1/refunds", {
        body: `{"provider":"exirom","transactionId":9007199254740993,"amount":"10.00","currency":"USD","reason":"customer_request"}`,
        headers: { "idempotency-key": Gateway.key("exact") }
      })
      assert.strictEqual(create.status, 400, create.text)
      assert.deepStrictEqual(create.body.error.issues.map((i: { path: string }) => i.path), ["transactionId"])

      // What a double carries exactly is taken as before, however it is spelled.
      const exact = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, {
        body: text.replace("250.000000000000001", "2.5000e2")
      })
      assert.strictEqual(exact.status, 200, exact.text)
    }))
})
