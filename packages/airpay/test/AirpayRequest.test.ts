import { assert, describe, it } from "@effect/vitest"
import * as RefundError from "@refundkit/core/RefundError"
import { Either, Schema } from "effect"
import * as AirpayCrypto from "../src/AirpayCrypto.js"
import * as AirpayRequest from "../src/AirpayRequest.js"

const decode = (input: unknown, max = 50) => {
  const result = Schema.decodeUnknownEither(AirpayRequest.withMaxTransactions(max), { errors: "all", onExcessProperty: "error" })(input)
  return Either.mapLeft(result, (error) => RefundError.InvalidRequest.fromParseError(error, "airpay").issues)
}

const issues = (input: unknown, max?: number) => {
  const result = decode(input, max)
  assert.isTrue(Either.isLeft(result), `expected ${JSON.stringify(input)} to be refused`)
  return Either.isLeft(result) ? result.left : []
}

const one = (ap_transactionid: unknown, amount: unknown = "10.00") => ({ transactions: [{ ap_transactionid, amount }] })

describe("AirpayRequest", () => {
  it("the seed's example transactions, decoded from its base64, are a valid request", () => {
    const base64 =
      "W3siYXBfdHJhbnNhY3Rpb25pZCI6IDEwMjY1LCJhbW91bnQiOiAiMTAwLjAwIn0seyJhcF90cmFuc2FjdGlvbmlkIjogMTAyNjQsImFtb3VudCI6ICIxMC4wMCJ9XQ=="
    const json = AirpayCrypto.decodeTransactions(base64)
    assert.isTrue(Either.isRight(json))
    const transactions = JSON.parse(Either.getOrThrow(json)) as unknown
    const request = decode({ transactions })
    assert.deepStrictEqual(request, Either.right({
      transactions: [{ ap_transactionid: "10265", amount: "100.00" }, { ap_transactionid: "10264", amount: "10.00" }],
      currency: "INR"
    }))
  })

  it("amounts are exact two-place strings: \"10.5\" becomes \"10.50\"", () => {
    assert.deepStrictEqual(decode(one(7, "10.5")), Either.right({ transactions: [{ ap_transactionid: "7", amount: "10.50" }], currency: "INR" }))
  })

  it("ap_transactionid must be a positive whole number", () => {
    assert.deepStrictEqual(issues(one(-5)), [{ path: "transactions.0.ap_transactionid", message: "ap_transactionid must be greater than zero" }])
    assert.deepStrictEqual(issues(one(0)), [{ path: "transactions.0.ap_transactionid", message: "ap_transactionid must be greater than zero" }])
    assert.deepStrictEqual(issues(one(1.5)), [{ path: "transactions.0.ap_transactionid", message: "ap_transactionid must be a whole number (Airpay's transaction reference number)" }])
    assert.include(issues(one(2 ** 60))[0]!.message, "at most 9007199254740991")
  })

  it("ap_transactionid may be a string of digits, past 2^53 too (a JSON number there names another transaction)", () => {
    const id = (request: unknown) => Either.map(decode(request), (r) => r.transactions[0]!.ap_transactionid)
    assert.deepStrictEqual(id(one("10265")), Either.right("10265"))
    assert.deepStrictEqual(id(one("0010265")), Either.right("10265"))
    assert.deepStrictEqual(id(one("9007199254740993")), Either.right("9007199254740993"))
    assert.deepStrictEqual(id(one(AirpayRequest.maxApTransactionId)), Either.right("9223372036854775807"))
    // The hint a JSON number past 2^53 gets says what to write instead, and that is accepted.
    assert.include(issues(one(2 ** 60))[0]!.message, "write it as a string of digits")
    const rule = "ap_transactionid must be Airpay's transaction reference number: a positive whole number, as a JSON number or a string of digits (10265 or \"10265\")"
    assert.deepStrictEqual(issues(one("9223372036854775808")), [{ path: "transactions.0.ap_transactionid", message: "ap_transactionid must be at most 9223372036854775807" }])
    assert.deepStrictEqual(issues(one("000")), [{ path: "transactions.0.ap_transactionid", message: "ap_transactionid must be greater than zero" }])
    assert.deepStrictEqual(issues(one("10265.0")), [{ path: "transactions.0.ap_transactionid", message: rule }])
    assert.deepStrictEqual(issues(one(" 10265")), [{ path: "transactions.0.ap_transactionid", message: rule }])
    assert.deepStrictEqual(issues(one(true)), [{ path: "transactions.0.ap_transactionid", message: rule }])
    assert.deepStrictEqual(
      issues({ transactions: [{ ap_transactionid: 10265, amount: "1.00" }, { ap_transactionid: "010265", amount: "1.00" }] }),
      [{ path: "transactions.1.ap_transactionid", message: "each ap_transactionid may appear once per request: 10265 is repeated" }]
    )
    // Stored as before: a number when a double holds it, else the digits.
    const encode = Schema.encodeSync(AirpayRequest.AirpayRequest)
    assert.deepStrictEqual(encode({ transactions: [{ ap_transactionid: "10265", amount: "1.00" }], currency: "INR" }).transactions[0]!.ap_transactionid, 10265)
    assert.deepStrictEqual(encode({ transactions: [{ ap_transactionid: "9007199254740993", amount: "1.00" }], currency: "INR" }).transactions[0]!.ap_transactionid, "9007199254740993")
  })

  it("amount must be a positive decimal string with at most two decimals", () => {
    assert.include(issues(one(1, "1.005"))[0]!.message, "at most 2 decimal places")
    assert.include(issues(one(1, "0.00"))[0]!.message, "greater than zero")
    assert.strictEqual(issues(one(1, 10))[0]!.path, "transactions.0.amount")
    assert.strictEqual(issues(one(1, "ten"))[0]!.path, "transactions.0.amount")
  })

  it("at least one transaction, each ap_transactionid once, at most the configured number", () => {
    assert.deepStrictEqual(issues({ transactions: [] }), [{ path: "transactions", message: "transactions must list at least one transaction" }])
    assert.deepStrictEqual(
      issues({ transactions: [{ ap_transactionid: 1, amount: "1.00" }, { ap_transactionid: 2, amount: "1.00" }, { ap_transactionid: 1, amount: "2.00" }] }),
      [{ path: "transactions.2.ap_transactionid", message: "each ap_transactionid may appear once per request: 1 is repeated" }]
    )
    const three = { transactions: [1, 2, 3].map((id) => ({ ap_transactionid: id, amount: "1.00" })) }
    assert.isTrue(Either.isRight(decode(three, 3)))
    assert.deepStrictEqual(issues(three, 2), [{
      path: "transactions",
      message: "transactions may list at most 2 transactions per request (REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL)"
    }])
  })

  it("currency is optional (INR), and must have two decimal places", () => {
    assert.deepStrictEqual(decode({ ...one(1), currency: "USD" }), Either.right({ transactions: [{ ap_transactionid: "1", amount: "10.00" }], currency: "USD" }))
    assert.deepStrictEqual(issues({ ...one(1), currency: "JPY" }), [{
      path: "currency",
      message: "currency must be an ISO 4217 code with two decimal places (Airpay amounts have two), e.g. INR"
    }])
    assert.strictEqual(issues({ ...one(1), currency: "inr" })[0]!.path, "currency")
  })

  it("fields refundkit fills in itself, and unknown fields, are refused", () => {
    assert.deepStrictEqual(issues({ ...one(1), mode: "refund" }).map((i) => i.path), ["mode"])
    assert.deepStrictEqual(issues({ transactions: [{ ap_transactionid: 1, amount: "1.00", refund_id: "x" }] }).map((i) => i.path), ["transactions.0.refund_id"])
    assert.deepStrictEqual(issues({}).map((i) => i.path), ["transactions"])
  })
})
