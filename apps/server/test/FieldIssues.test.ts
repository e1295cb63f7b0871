// What a caller reads when a body is refused: one issue per broken rule, in the provider's field
// names, with nothing that contradicts it (a nullable field "Expected null", a field refundkit fills
// in offered as one the caller may send).
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Gateway from "./support/Gateway.js"

const post = (gw: Gateway.Gateway, body: unknown) => gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": Gateway.key("issues") } })

const amountRule = `must be an amount with at most 2 decimal places, such as "250.00" (a JSON number like 250.00 is accepted too), got "1.005"`

describe("field issues of a refused body", () => {
  it.scopedLive("AeroHub: a bad value in a nullable field is its rule alone, on create and on an update", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF900777", purchaseOrderNo: "P1" }
      const closed = { provider: "aerohub", ...order, refundStatus: "CLOSED", rejectReason: 8 }
      const cases: ReadonlyArray<readonly [Record<string, unknown>, ReadonlyArray<{ readonly path: string; readonly message: string }>]> = [
        // The plugin's own tests hold each rule's wording; here, that the gateway reports the rule alone.
        [{ ...closed, rejectReason: 99 }, [{ path: "rejectReason", message: "rejectReason must be one of the English page's codes" }]],
        [{ ...closed, refundDate: "soon" }, [{ path: "refundDate", message: "must be an ISO 8601 date or date-time that exists on the calendar, such as 2024-04-15T12:00:00Z, got \"soon\"" }]],
        [{ ...closed, isDocumentation: 7 }, [{ path: "isDocumentation", message: "isDocumentation must be 1 (no documentation needed) or 2 (needed but not provided), got 7" }]],
        [{ ...closed, refundableAmount: "1.005" }, [{ path: "refundableAmount", message: amountRule }]]
      ]
      for (const [body, issues] of cases) {
        const refused = yield* post(gw, body)
        assert.strictEqual(refused.status, 400, refused.text)
        const got = refused.body.error.issues as ReadonlyArray<{ readonly path: string; readonly message: string }>
        assert.deepStrictEqual(got.map((i) => i.path), issues.map((i) => i.path), refused.text)
        got.forEach((issue, i) => assert.isTrue(issue.message.startsWith(issues[i]!.message), refused.text))
        assert.notInclude(refused.text, "Expected null")
      }

      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
      assert.strictEqual(created.status, 201, created.text)
      const update = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, {
        body: { ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "1.005" }] }
      })
      assert.strictEqual(update.status, 400, update.text)
      assert.deepStrictEqual(update.body.error.issues, [{ path: "refundAmount.0.refundCost", message: amountRule }])
      assert.notInclude(update.text, "Expected null")
    }))

  it.scopedLive("Exirom: an unknown field's message lists the fields a caller may send, not requestId", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const refused = yield* post(gw, Gateway.exiromRefund({ foo: 1 }))
      assert.strictEqual(refused.status, 400, refused.text)
      assert.deepStrictEqual(refused.body.error.issues, [{
        path: "foo",
        message: "is unexpected, expected: \"transactionId\" | \"amount\" | \"reason\" | \"callbackUrl\" | \"metadata\" | \"mid\" | \"currency\""
      }])
      assert.notInclude(refused.text, "requestId")
      // Sent anyway, it is refused with the reason.
      const requestId = yield* post(gw, Gateway.exiromRefund({ requestId: "mine" }))
      assert.deepStrictEqual(requestId.body.error.issues.map((i: { readonly path: string }) => i.path), ["requestId"])
      const providers = yield* gw.fetch("GET", "/v1/providers")
      const exirom = providers.body.providers.find((p: { readonly id: string }) => p.id === "exirom")
      assert.deepStrictEqual(Object.keys(exirom.requestSchema.properties), ["transactionId", "amount", "reason", "callbackUrl", "metadata", "mid", "currency"])
    }))
})
