import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { AeroHubReplay, AeroHubRequest } from "../src/index.js"

const decode = Schema.decodeUnknownSync(AeroHubRequest.make("en").update)
const order = { refundOrderNo: "FBRF1", purchaseOrderNo: "F1" }
const rejection = (fields: Record<string, unknown>) => AeroHubReplay.rejectionOf(decode({ ...order, refundStatus: "CLOSED", ...fields }))
const quote = (refundFeePricing: unknown) => AeroHubReplay.quoteOf(decode({ ...order, refundStatus: "QUOTE_COMPLETED", refundFeePricing }))

const sampleQuote = [{
  amount: "300.00",
  isRefundVoucher: 0,
  voucherCurrency: "USD",
  refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }, { ageType: 1, refundFeePolicy: "150.00" }]
}]

describe("AeroHubReplay", () => {
  it("a rejection is its reason and the fields the reason requires, amounts as two-place strings", () => {
    assert.deepStrictEqual(rejection({ rejectReason: 6, refundableAmount: 10.5, documentationNote: "text, not part of it" }), { rejectReason: 6, refundableAmount: "10.50" })
    assert.deepStrictEqual(rejection({ rejectReason: 1, refundDate: "2024-05-01", flightNumber: null }), { rejectReason: 1, refundDate: "2024-05-01" })
  })

  it("a repeated rejection is the same however its amount is spelled; otherwise the first differing field is named with both values", () => {
    const recorded = rejection({ rejectReason: 6, refundableAmount: "10.50" })
    assert.isUndefined(AeroHubReplay.rejectionConflict(recorded, rejection({ rejectReason: 6, refundableAmount: 10.5 })))
    assert.deepStrictEqual(AeroHubReplay.rejectionConflict(recorded, rejection({ rejectReason: 4 })), { path: "rejectReason", recorded: "rejectReason 6", sent: "4" })
    assert.deepStrictEqual(AeroHubReplay.rejectionConflict(recorded, rejection({ rejectReason: 6, refundableAmount: "99.00" })), {
      path: "refundableAmount",
      recorded: "refundableAmount 10.50",
      sent: "99.00"
    })
    const flew = rejection({ rejectReason: 7, flightNumber: "CA1234" })
    assert.deepStrictEqual(AeroHubReplay.rejectionConflict(flew, rejection({ rejectReason: 7, flightNumber: "CA9999" }))?.path, "flightNumber")
    // A QUOTE_REJECTED recorded without a reason: a reason in the repeat is something AeroHub did not take.
    assert.deepStrictEqual(AeroHubReplay.rejectionConflict(rejection({}), rejection({ rejectReason: 2 })), { path: "rejectReason", recorded: "rejectReason absent", sent: "2" })
    assert.isUndefined(AeroHubReplay.rejectionConflict(rejection({}), rejection({})))
  })

  it("a repeated quote is the same however its amounts are spelled; otherwise the first differing field is named by its path", () => {
    const recorded = quote(sampleQuote)
    assert.isUndefined(AeroHubReplay.quoteConflict(recorded, quote([{ ...sampleQuote[0], amount: 300, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: 100 }, { ageType: 1, refundFeePolicy: "150" }] }])))
    const cases: ReadonlyArray<readonly [unknown, string, string, string]> = [
      [[{ ...sampleQuote[0], amount: "350.00" }], "refundFeePricing.0.amount", "refundFeePricing.0.amount 300.00", "350.00"],
      [[{ ...sampleQuote[0], isRefundVoucher: 1 }], "refundFeePricing.0.isRefundVoucher", "refundFeePricing.0.isRefundVoucher 0", "1"],
      [[{ ...sampleQuote[0], voucherCurrency: null }], "refundFeePricing.0.voucherCurrency", "refundFeePricing.0.voucherCurrency USD", "absent"],
      [[{ ...sampleQuote[0], refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }, { ageType: 1, refundFeePolicy: "120.00" }] }],
        "refundFeePricing.0.refundPolicyDetail.1.refundFeePolicy", "refundFeePricing.0.refundPolicyDetail.1.refundFeePolicy 150.00", "120.00"],
      [[{ ...sampleQuote[0], refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }, { ageType: 2, refundFeePolicy: "150.00" }] }],
        "refundFeePricing.0.refundPolicyDetail.1.ageType", "refundFeePricing.0.refundPolicyDetail.1.ageType 1", "2"],
      [[{ ...sampleQuote[0], refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }],
        "refundFeePricing.0.refundPolicyDetail", "refundFeePricing.0.refundPolicyDetail of 2 elements", "1 element"],
      [[...sampleQuote, { amount: "1.00" }], "refundFeePricing", "refundFeePricing of 1 element", "2 elements"]
    ]
    for (const [pricing, path, was, now] of cases) {
      assert.deepStrictEqual(AeroHubReplay.quoteConflict(recorded, quote(pricing)), { path, recorded: was, sent: now }, path)
    }
    // No fee details, absent or empty, are the same.
    assert.isUndefined(AeroHubReplay.quoteConflict(quote([{ amount: "300.00" }]), quote([{ amount: "300.00", refundPolicyDetail: [] }])))
  })
})
