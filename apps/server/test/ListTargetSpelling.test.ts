// A target is recorded as its plugin spells it (Airpay's "010265" as "10265", Exirom's "0012345" as
// "12345"): a list by target finds the refund whichever spelling of the id the caller gives.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Gateway from "./support/Gateway.js"

const post = (gw: Gateway.Gateway, body: unknown) => gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": Gateway.key("spelling") } })

const ids = (page: { readonly status: number; readonly text: string; readonly body: { readonly items: ReadonlyArray<{ readonly id: string }> } }) => {
  assert.strictEqual(page.status, 200, page.text)
  return page.body.items.map((r) => r.id)
}

describe("GET /v1/refunds?provider=&target=", () => {
  it.scopedLive("finds a refund by any spelling of its target the plugin accepts", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const number = yield* post(gw, { provider: "airpay", transactions: [{ ap_transactionid: 10264, amount: "1.00" }] })
      const padded = yield* post(gw, { provider: "airpay", transactions: [{ ap_transactionid: "010264", amount: "2.00" }] })
      for (const created of [number, padded]) assert.strictEqual(created.status, 201, created.text)
      for (const target of ["10264", "010264", "0000010264"]) {
        assert.deepStrictEqual(ids(yield* gw.fetch("GET", `/v1/refunds?provider=airpay&target=${target}`)), [padded.body.id, number.body.id], target)
      }
      // Not a spelling of an Airpay id: matched as written, so nothing.
      assert.deepStrictEqual(ids(yield* gw.fetch("GET", "/v1/refunds?provider=airpay&target=10264.0")), [])

      const exirom = yield* post(gw, Gateway.exiromRefund({ transactionId: "0012345", amount: "1.00" }))
      assert.strictEqual(exirom.status, 201, exirom.text)
      for (const target of ["12345", "0012345"]) {
        assert.deepStrictEqual(ids(yield* gw.fetch("GET", `/v1/refunds?provider=exirom&target=${target}`)), [exirom.body.id], target)
      }
    }))
})
