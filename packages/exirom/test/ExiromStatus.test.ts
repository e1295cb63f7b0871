import { assert, describe, it } from "@effect/vitest"
import * as Headers from "@effect/platform/Headers"
import type { ProviderHttp } from "@refundkit/core"
import { Option, Schema } from "effect"
import { ExiromStatus, ExiromWire } from "../src/index.js"

const received = (status: number, body: unknown, headers: Record<string, string> = {}): ProviderHttp.Received => {
  const text = body === undefined ? "" : typeof body === "string" && status === 0 ? body : JSON.stringify(body)
  return { status, headers: Headers.fromInput(headers), text, json: body === undefined ? Option.none() : Option.some(body) }
}

const refundCall: ExiromStatus.Call = { _tag: "Refund", transactionId: 12345, requestId: "rfd_0123456789abcdefghjkmnpqrs" }

describe("ExiromStatus", () => {
  it("maps every documented status word", () => {
    const expected = {
      NEW: "pending",
      PENDING: "pending",
      PROCESSING: "pending",
      CUSTOMER_VERIFICATION: "pending",
      SUCCEED: "succeeded",
      REFUNDED: "succeeded",
      FAILED: "failed",
      CANCELLED: "failed",
      CHARGEBACK: "requires_action",
      CHARGED_BACK: "requires_action"
    } as const
    for (const [word, status] of Object.entries(expected)) {
      const outcome = ExiromStatus.outcome({ transactionStatus: word, refundId: "r-1" })
      assert.strictEqual(outcome.status, status, word)
      assert.strictEqual(outcome.providerStatus, word)
      assert.strictEqual(outcome.providerReference, "r-1")
    }
    assert.deepStrictEqual(Object.keys(ExiromStatus.statuses).sort(), Object.keys(expected).sort())
  })

  it("an unknown future word is pending, keeps the raw word and says so", () => {
    const outcome = ExiromStatus.outcome({ transactionStatus: "PARTIALLY_SETTLED" })
    assert.strictEqual(outcome.status, "pending")
    assert.strictEqual(outcome.providerStatus, "PARTIALLY_SETTLED")
    assert.include(outcome.detail ?? "", "not in its documented vocabulary")
    assert.isUndefined(ExiromStatus.statusRank("PARTIALLY_SETTLED"))
  })

  it("ranks NEW < PENDING < PROCESSING < CUSTOMER_VERIFICATION < final states", () => {
    const rank = (w: string) => ExiromStatus.statusRank(w)!
    assert.isTrue(rank("NEW") < rank("PENDING"))
    assert.isTrue(rank("PENDING") < rank("PROCESSING"))
    assert.isTrue(rank("PROCESSING") < rank("CUSTOMER_VERIFICATION"))
    for (const final of ["SUCCEED", "REFUNDED", "FAILED", "CANCELLED", "CHARGEBACK", "CHARGED_BACK"]) {
      assert.isTrue(rank("CUSTOMER_VERIFICATION") < rank(final), final)
    }
  })

  it("the words Exirom calls final say so; CHARGEBACK is the one a person must still settle", () => {
    for (const word of ["CHARGEBACK", "CHARGED_BACK"]) {
      const outcome = ExiromStatus.outcome({ transactionStatus: word })
      assert.strictEqual(outcome.status, "requires_action")
      assert.strictEqual(outcome.providerFinal, true, word)
    }
    for (const word of ["SUCCEED", "REFUNDED", "FAILED", "CANCELLED"]) assert.strictEqual(ExiromStatus.outcome({ transactionStatus: word }).providerFinal, true, word)
    for (const word of ["NEW", "PENDING", "PROCESSING", "CUSTOMER_VERIFICATION", "DISPUTE_OPENED"]) {
      assert.isUndefined(ExiromStatus.outcome({ transactionStatus: word }).providerFinal, word)
    }
  })

  it("FAILED with a decline code gives the code's name and action group", () => {
    const cases: ReadonlyArray<readonly [number, string, string | undefined]> = [
      [1, "UNEXPECTED_ERROR", "retry"],
      [5, "INSUFFICIENT_FUNDS_ERROR", "customer_action"],
      [7, "ANTI_FRAUD_ERROR", "contact_support"],
      [8, "DATA_VALIDATION_ERROR", "fix_request"],
      [12, "GENERIC_PROCESSING_ERROR", "retry"],
      [14, "DUPLICATED_ORDER_ID_ERROR", "fix_request"],
      [2, "REJECTED_BY_ISSUER_BANK_ERROR", undefined],
      [18, "CARD_TIME_LIMIT_ERROR", undefined],
      [26, "decline code 26 (not named in Exirom's reference)", "fix_request"],
      [310, "decline code 310 (not named in Exirom's reference)", "customer_action"],
      [3010, "decline code 3010 (not named in Exirom's reference)", "contact_support"],
      [99999, "decline code 99999 (not named in Exirom's reference)", undefined]
    ]
    for (const [code, reason, action] of cases) {
      const outcome = ExiromStatus.outcome({ transactionStatus: "FAILED", declineCode: code })
      assert.strictEqual(outcome.status, "failed")
      assert.deepStrictEqual(outcome.decline, { providerCode: String(code), reason, ...(action === undefined ? {} : { action: action as "retry" }) }, String(code))
    }
    assert.strictEqual(ExiromStatus.outcome({ transactionStatus: "FAILED" }).decline?.providerCode, "FAILED")
  })

  it("a callback's words: its transactionStatus, a failed one's declineCode and its name, then the outcome's own words", () => {
    const words = (transactionStatus: string, declineCode?: number | null) =>
      ExiromStatus.callbackDetail({ transactionStatus, declineCode }, ExiromStatus.outcome({ transactionStatus, declineCode }))
    const opening = "Exirom's callback, confirmed by its refund info: transactionStatus"
    assert.strictEqual(words("SUCCEED"), `${opening} SUCCEED`)
    assert.strictEqual(words("NEW", 2), `${opening} NEW`, "a declineCode counts only with a failed word")
    assert.strictEqual(words("FAILED", 2), `${opening} FAILED, declineCode 2 (REJECTED_BY_ISSUER_BANK_ERROR)`)
    assert.strictEqual(words("CANCELLED", 77), `${opening} CANCELLED, declineCode 77 (not named in Exirom's reference)`)
    assert.strictEqual(words("FAILED", null), `${opening} FAILED, without a declineCode`)
    assert.strictEqual(
      words("CHARGEBACK"),
      `${opening} CHARGEBACK. Exirom reports CHARGEBACK: the cardholder may also have been repaid through a dispute; reconcile and resolve this refund by hand`
    )
    assert.include(words("ON_HOLD"), `${opening} ON_HOLD. Exirom status ON_HOLD is not in its documented vocabulary`)
  })

  it("the seed's example response (declineCode beside NEW) decodes and is pending without a decline", () => {
    const seedResponse = { refundId: "example_refundId", transactionStatus: "NEW", declineCode: 12345, paymentType: "CARD" }
    const response = Schema.decodeUnknownSync(ExiromWire.RefundResponse)(seedResponse)
    assert.strictEqual(ExiromWire.refundIdOf(response), "example_refundId")
    const outcome = ExiromStatus.outcome({ ...response, refundId: "example_refundId" })
    assert.strictEqual(outcome.status, "pending")
    assert.isUndefined(outcome.decline)
    const flowGuide = Schema.decodeUnknownSync(ExiromWire.RefundResponse)({ refundTransactionId: "rt-1", transactionStatus: "PROCESSING" })
    assert.strictEqual(ExiromWire.refundIdOf(flowGuide), "rt-1")
  })

  it("every documented auth answer decodes to the token", () => {
    const decode = Schema.decodeUnknownSync(ExiromWire.AuthResponse)
    assert.strictEqual(ExiromWire.tokenOf(decode("eyJhbGciOiJIUzI1NiIs")), "eyJhbGciOiJIUzI1NiIs")
    assert.strictEqual(ExiromWire.tokenOf(decode({ token: "t1" })), "t1")
    assert.strictEqual(ExiromWire.tokenOf(decode({ merchantKey: "5df495f", token: "t2" })), "t2")
    assert.throws(() => decode({ jwt: "x" }))
    assert.throws(() => decode(""))
  })

  it("maps HTTP answers to core errors", () => {
    const at = (status: number, body: unknown, call: ExiromStatus.Call = refundCall, headers: Record<string, string> = {}) =>
      ExiromStatus.errorOf(received(status, body, headers), call)

    const bad = at(400, { message: "Bad Request", errors: [{ field: "amount", message: "invalid" }], traceId: "t-9" })
    assert.strictEqual(bad._tag, "ProviderDeclined")
    if (bad._tag === "ProviderDeclined") {
      assert.strictEqual(bad.providerCode, "HTTP_400")
      assert.strictEqual(bad.action, "fix_request")
      assert.include(bad.reason, "amount: invalid")
      assert.include(bad.reason, "trace t-9")
    }
    const business = at(422, { message: "unsupported currency" })
    assert.strictEqual(business._tag === "ProviderDeclined" && business.providerCode, "HTTP_422")
    assert.include(business.message, "unsupported currency")

    const unknownTransaction = at(404, { message: "not found" })
    assert.strictEqual(unknownTransaction._tag === "ProviderDeclined" && unknownTransaction.providerCode, "HTTP_404")
    assert.include(unknownTransaction.message, "does not know transaction 12345")

    const duplicate = at(409, { message: "Duplicate requestId" })
    assert.strictEqual(duplicate._tag === "ProviderDeclined" && duplicate.providerCode, "HTTP_409")
    assert.include(duplicate.message, "rfd_0123456789abcdefghjkmnpqrs with a different payload")

    assert.strictEqual(at(401, {})._tag, "ProviderAuthFailed")
    const forbidden = at(403, { message: "no access" })
    assert.strictEqual(forbidden._tag, "ProviderAuthFailed")
    assert.include(forbidden.message, "REFUNDKIT_EXIROM_MID")

    const limited = at(429, { message: "slow down" }, refundCall, { "retry-after": "3" })
    assert.strictEqual(limited._tag, "ProviderUnavailable")
    if (limited._tag === "ProviderUnavailable") {
      assert.strictEqual(limited.retryAfterMillis, 3000)
      assert.isFalse(limited.maybeProcessed)
    }
    const down = at(500, { message: "boom" })
    assert.isTrue(down._tag === "ProviderUnavailable" && down.maybeProcessed)
    // Exirom's "500 and 503: retry with backoff" is safe with its requestId either way; a bare 503 may still have been processed.
    const unavailable = at(503, undefined)
    assert.isTrue(unavailable._tag === "ProviderUnavailable" && unavailable.maybeProcessed)

    assert.strictEqual(at(404, { message: "no refund" }, { _tag: "Lookup", refundId: "r-1" })._tag, "UnexpectedResponse")
    assert.strictEqual(at(418, "teapot")._tag, "UnexpectedResponse")
    for (const status of [400, 401, 404]) assert.strictEqual(at(status, { message: "bad credentials" }, { _tag: "Auth" })._tag, "ProviderAuthFailed")
    assert.strictEqual(at(500, {}, { _tag: "Auth" })._tag, "ProviderUnavailable")
  })
})
