import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as AirpayStatus from "../src/AirpayStatus.js"
import * as AirpayWire from "../src/AirpayWire.js"

const envelope = (input: unknown) => Schema.decodeUnknownSync(AirpayWire.Envelope)(input)
const data = (input: unknown) => Schema.decodeUnknownSync(AirpayWire.RefundData)(input)

// The seed's success example, as documented (ap_transactionid a number and a string, amount in one item only).
const seedSuccess = {
  status_code: "200",
  response_code: "00",
  status: "Success",
  message: "success",
  data: {
    transactions: [
      { ap_transactionid: 10265, amount: "100.00", success: "false", message: "Refund can not be performed. Refund already initiated.", refund_id: "12071" },
      { ap_transactionid: "10264", success: "true", message: "Transaction accepted for refund", refund_id: "12076" }
    ]
  }
}

describe("AirpayStatus", () => {
  it("maps outcome words to unified statuses; unknown words stay pending", () => {
    assert.strictEqual(AirpayStatus.statusOf("accepted"), "succeeded")
    assert.strictEqual(AirpayStatus.statusOf("already_initiated"), "failed")
    assert.strictEqual(AirpayStatus.statusOf("refused"), "failed")
    assert.strictEqual(AirpayStatus.statusOf("missing"), "unknown")
    assert.strictEqual(AirpayStatus.statusOf("settled_next_week"), "pending")
    assert.strictEqual(AirpayStatus.statusRank("accepted"), 1)
    assert.strictEqual(AirpayStatus.statusRank("missing"), 0)
    assert.isUndefined(AirpayStatus.statusRank("whatever"))
  })

  it("the seed's answer: a duplicate refunded nothing (it names the existing refund_id), the accepted one gets its own", () => {
    const decoded = envelope(seedSuccess)
    assert.strictEqual(decoded.status_code, "200")
    const outcome = AirpayStatus.outcomeOf(
      [{ target: "10265", amount: "100.00" }, { target: "10264", amount: "10.00" }],
      data(decoded.data))
    assert.strictEqual(outcome.status, "requires_action")
    assert.isUndefined(outcome.decline)
    assert.isUndefined(outcome.providerReference)
    assert.deepStrictEqual(outcome.items, [
      { target: "10265", amount: "100.00", status: "failed", providerStatus: "already_initiated", message: "Refund can not be performed. Refund already initiated. (Airpay's existing refund on this transaction, refund_id 12071 of 100.00, is another refund's; this request refunded nothing)" },
      { target: "10264", amount: "10.00", status: "succeeded", providerStatus: "accepted", providerReference: "12076", message: "Transaction accepted for refund" }
    ])
  })

  it("'already initiated' for a different amount is not the refund asked for", () => {
    const item = AirpayStatus.itemOf(
      { target: "10265", amount: "40.00" },
      data({ transactions: [{ ap_transactionid: 10265, amount: "100.00", success: "false", message: "Refund can not be performed. Refund already initiated.", refund_id: 12071 }] }).transactions[0])
    assert.strictEqual(item.status, "failed")
    assert.isUndefined(item.providerReference)
    assert.include(item.message, "refund_id 12071 of 100.00")
  })

  it("one refused transaction never fails the others; a decline only when all failed", () => {
    const mixed = AirpayStatus.outcomeOf(
      [{ target: "1", amount: "5.00" }, { target: "2", amount: "5.00" }],
      data({ transactions: [
        { ap_transactionid: 1, success: true, message: "Transaction accepted for refund", refund_id: "9" },
        { ap_transactionid: 2, success: "false", message: "Refund amount exceeds the transaction amount" }
      ] }))
    assert.deepStrictEqual(mixed.items?.map((i) => i.status), ["succeeded", "failed"])
    assert.strictEqual(mixed.status, "requires_action")
    assert.strictEqual(mixed.providerFinal, true)
    assert.isUndefined(mixed.decline)
    const refused = AirpayStatus.outcomeOf([{ target: "2", amount: "5.00" }], data({ transactions: [{ ap_transactionid: 2, success: "false", message: "Invalid transaction id" }] }))
    assert.strictEqual(refused.status, "failed")
    assert.deepStrictEqual(refused.decline, { providerCode: "refused", reason: "Invalid transaction id", action: "fix_request" })
  })

  it("a transaction the answer does not mention is unknown", () => {
    const outcome = AirpayStatus.outcomeOf([{ target: "1", amount: "5.00" }, { target: "2", amount: "5.00" }], data({ transactions: [{ ap_transactionid: "1", success: "true", message: "ok", refund_id: "3" }] }))
    assert.deepStrictEqual(outcome.items?.map((i) => [i.target, i.status]), [["1", "succeeded"], ["2", "unknown"]])
    assert.strictEqual(outcome.status, "unknown")
  })

  it("the seed's error example (response_code a number) is refused credentials", () => {
    const error = AirpayStatus.envelopeError(envelope({ status_code: "400", response_code: 501, status: "fail", message: "Invalid Merchant Id", data: [] }))
    assert.strictEqual(error._tag, "ProviderAuthFailed")
    assert.include(error.message, "Invalid Merchant Id")
    assert.include(error.message, "501")
  })

  it("other 400s are declines with Airpay's code and message", () => {
    const checksum = AirpayStatus.envelopeError(envelope({ status_code: "400", response_code: "400", status: "fail", message: "Invalid checksum", data: [] }))
    assert.strictEqual(checksum._tag, "ProviderDeclined")
    if (checksum._tag === "ProviderDeclined") {
      assert.strictEqual(checksum.providerCode, "400")
      assert.strictEqual(checksum.reason, "Invalid checksum")
      assert.strictEqual(checksum.action, "contact_support")
    }
    const data_ = AirpayStatus.envelopeError(envelope({ status_code: 400, response_code: "00", message: "Invalid transactions data" }))
    assert.strictEqual(data_._tag, "ProviderDeclined")
    if (data_._tag === "ProviderDeclined") assert.strictEqual(data_.action, "fix_request")
    assert.strictEqual(AirpayStatus.envelopeError(envelope({ status_code: "400", message: "Invalid private key" }))._tag, "ProviderAuthFailed")
    assert.strictEqual(AirpayStatus.envelopeError(envelope({ status_code: "503", message: "down" }))._tag, "ProviderUnavailable")
  })

  it("recognises a refused token", () => {
    assert.isTrue(AirpayStatus.isTokenRejection(envelope({ status_code: "401", message: "whatever" })))
    assert.isTrue(AirpayStatus.isTokenRejection(envelope({ status_code: "400", message: "Token expired" })))
    assert.isTrue(AirpayStatus.isTokenRejection(envelope({ status_code: "400", message: "Invalid access token" })))
    assert.isFalse(AirpayStatus.isTokenRejection(envelope({ status_code: "400", message: "Invalid Merchant Id" })))
  })

  it("wire quirks decode to one spelling", () => {
    const result = Schema.decodeUnknownEither(AirpayWire.RefundResult)({ ap_transactionid: "010264", success: false, refund_id: 12076 })
    assert.deepStrictEqual(result, Either.right({ ap_transactionid: "10264", success: false, refund_id: "12076" }))
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(AirpayWire.RefundResult)({ ap_transactionid: "abc", success: "true" })))
    const token = Schema.decodeUnknownSync(AirpayWire.TokenData)({ access_token: "abc", expires_in: "300", scope: null })
    assert.isTrue("access_token" in token && token.expires_in === 300)
    const refused = Schema.decodeUnknownSync(AirpayWire.TokenData)({ success: false, msg: "Invalid client id or secret" })
    assert.isFalse("access_token" in refused)
  })
})
