import * as Headers from "@effect/platform/Headers"
import { assert, describe, it } from "@effect/vitest"
import type * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { Effect, Option } from "effect"
import { AeroHubRequest, AeroHubStatus } from "../src/index.js"

const received = (status: number, text: string, headers: Record<string, string> = {}): ProviderHttp.Received => {
  let json = Option.none<unknown>()
  try {
    json = Option.some(JSON.parse(text))
  } catch {
    json = Option.none()
  }
  return { status, headers: Headers.fromInput(headers), text, json }
}

describe("AeroHubStatus", () => {
  it("maps every AeroHub word to the unified status, unknown words to pending", () => {
    const expected = {
      QUOTE_COMPLETED: "pending",
      QUOTE_REJECTED: "failed",
      PROCESSING: "pending",
      REFUNDED_PENDING: "pending",
      REFUNDED: "succeeded",
      CLOSED: "failed"
    } as const
    for (const word of AeroHubRequest.refundStatuses) assert.strictEqual(AeroHubStatus.statusOf(word), expected[word], word)
    assert.strictEqual(AeroHubStatus.statusOf("REFUND_PAUSED"), "pending")
  })

  it("ranks the lifecycle so a late word never moves a refund back", () => {
    const rank = (w: string) => AeroHubStatus.statusRank(w)!
    assert.isBelow(rank("QUOTE_COMPLETED"), rank("PROCESSING"))
    assert.isBelow(rank("PROCESSING"), rank("REFUNDED_PENDING"))
    assert.isBelow(rank("REFUNDED_PENDING"), rank("REFUNDED"))
    assert.strictEqual(rank("CLOSED"), rank("REFUNDED"))
    assert.strictEqual(rank("QUOTE_REJECTED"), rank("REFUNDED"))
    assert.isUndefined(AeroHubStatus.statusRank("SOMETHING_NEW"))
  })

  it("keeps the provider word, the order numbers and a CLOSED's rejection on the outcome, and the order held", () => {
    const outcome = AeroHubStatus.outcomeOf({ refundOrderNo: "FBRF1", purchaseOrderNo: "F1", refundStatus: "CLOSED", rejectReason: 4 })
    assert.deepStrictEqual(outcome, {
      status: "failed",
      holdsTarget: true,
      providerStatus: "CLOSED",
      providerReference: "FBRF1",
      references: { refundOrderNo: "FBRF1", purchaseOrderNo: "F1", rejection: `{"rejectReason":4}` }
    })
    // AeroHub keeps an order's first rejection and takes a second as a repeat: both rejections hold the order.
    assert.strictEqual(AeroHubStatus.outcomeOf({ refundOrderNo: "FBRF1", purchaseOrderNo: "F1", refundStatus: "QUOTE_REJECTED", rejectReason: 4 }).holdsTarget, true)
    const step = AeroHubStatus.outcomeOf({ refundOrderNo: "FBRF1", purchaseOrderNo: "F1", refundStatus: "PROCESSING" })
    assert.isUndefined(step.holdsTarget, "a refund that has not failed holds its order anyway")
    assert.deepStrictEqual(step.references, { refundOrderNo: "FBRF1", purchaseOrderNo: "F1" }, "a step with nothing a repeat must replay keeps only the order numbers")
    const quoted = AeroHubStatus.outcomeOf({
      refundOrderNo: "FBRF1",
      purchaseOrderNo: "F1",
      refundStatus: "QUOTE_COMPLETED",
      refundFeePricing: [{ amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }]
    })
    assert.deepStrictEqual(JSON.parse(quoted.references?.["refundFeePricing"] ?? "null"), [
      { amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }
    ])
  })

  describe("answers", () => {
    const fail = (r: ProviderHttp.Received) => Effect.runSync(Effect.flip(AeroHubStatus.fromResponse(r)))

    it("code 200 with HTTP 200 is success", () => {
      assert.deepStrictEqual(Effect.runSync(AeroHubStatus.fromResponse(received(200, `{"code":200,"msg":"Successful"}`))), { code: 200, msg: "Successful" })
    })

    it("a code with more digits than a double carries is UnexpectedResponse on code, not read as 200; a long number beside it is left alone", () => {
      const error = fail(received(200, `{"code":200.0000000000000001,"msg":"Successful"}`))
      assert.strictEqual(error._tag, "UnexpectedResponse")
      if (error._tag === "UnexpectedResponse") {
        assert.strictEqual(error.path, "code")
        assert.include(error.detail, "200.0000000000000001")
      }
      const withId = Effect.runSync(AeroHubStatus.fromResponse(received(200, `{"code":200,"msg":"Successful","data":{"id":1745553257834618888}}`)))
      assert.strictEqual(withId.code, 200)
    })

    it("code 1000 is refused credentials, even with HTTP 200", () => {
      const error = fail(received(200, `{"code":1000,"msg":"Invalid API Key"}`))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      assert.include(error.message, "code 1000: Invalid API Key")
    })

    it("code 400 is a decline carrying AeroHub's msg, not retried", () => {
      const error = fail(received(200, `{"code":400,"msg":"Failed"}`))
      assert.strictEqual(error._tag, "ProviderDeclined")
      if (error._tag === "ProviderDeclined") {
        assert.strictEqual(error.providerCode, "400")
        assert.strictEqual(error.reason, "Failed")
        assert.strictEqual(error.action, "fix_request")
      }
    })

    it("other codes are transient: ProviderUnavailable, to be retried as AeroHub asks", () => {
      const error = fail(received(200, `{"code":500,"msg":"System busy"}`))
      assert.strictEqual(error._tag, "ProviderUnavailable")
      if (error._tag === "ProviderUnavailable") assert.isTrue(error.maybeProcessed)
      const limited = fail(received(200, `{"code":429,"msg":"Too many requests"}`))
      assert.strictEqual(limited._tag, "ProviderUnavailable")
      if (limited._tag === "ProviderUnavailable") assert.isFalse(limited.maybeProcessed)
    })

    it("HTTP statuses keep their generic meaning", () => {
      assert.strictEqual(fail(received(401, ""))._tag, "ProviderAuthFailed")
      const unavailable = fail(received(503, "", { "retry-after": "3" }))
      assert.strictEqual(unavailable._tag, "ProviderUnavailable")
      if (unavailable._tag === "ProviderUnavailable") {
        assert.isFalse(unavailable.maybeProcessed)
        assert.strictEqual(unavailable.retryAfterMillis, 3000)
      }
      const server = fail(received(500, "oops"))
      assert.strictEqual(server._tag, "ProviderUnavailable")
      if (server._tag === "ProviderUnavailable") assert.isTrue(server.maybeProcessed)
    })

    it("another HTTP status is read through its body; code 200 with it is still a failure", () => {
      assert.strictEqual(fail(received(400, `{"code":400,"msg":"Failed"}`))._tag, "ProviderDeclined")
      assert.strictEqual(fail(received(202, `{"code":200,"msg":"Successful"}`))._tag, "ProviderUnavailable")
      assert.strictEqual(fail(received(404, "<html>Not Found</html>"))._tag, "UnexpectedResponse")
    })

    it("a body that is not JSON, or of another shape, is UnexpectedResponse naming the field", () => {
      const malformed = fail(received(200, "<html>"))
      assert.strictEqual(malformed._tag, "UnexpectedResponse")
      const shape = fail(received(200, `{"code":"200","msg":"Successful"}`))
      assert.strictEqual(shape._tag, "UnexpectedResponse")
      if (shape._tag === "UnexpectedResponse") assert.strictEqual(shape.path, "code")
      // AeroHub's own error example uses curly quotes: not JSON, read as the refusal it spells (quirk 8).
      const example = fail(received(200, "{\n“code”: 400,\n“msg”: “Failed”\n}"))
      assert.strictEqual(example._tag, "ProviderDeclined")
      if (example._tag === "ProviderDeclined") assert.strictEqual(example.reason, "Failed")
      // A quote inside its text leaves it no JSON even so.
      assert.strictEqual(fail(received(200, "{“code”: 400, “msg”: “the “reason””}"))._tag, "UnexpectedResponse")
    })
  })
})
