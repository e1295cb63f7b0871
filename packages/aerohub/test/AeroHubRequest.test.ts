import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { InvalidRequest } from "@refundkit/core/RefundError"
import { Effect, Either, Redacted, Schema } from "effect"
import { readFileSync } from "node:fs"
import { AeroHub, AeroHubRequest, AeroHubWire } from "../src/index.js"

// The sample request of AeroHub's UpdateRefund page, verbatim.
const seedSample: Record<string, unknown> = JSON.parse(readFileSync(new URL("./fixtures/seed-sample-request.json", import.meta.url), "utf8"))

const en = AeroHubRequest.make("en")
const cn = AeroHubRequest.make("cn")

const issuesOf = (schema: Schema.Schema<AeroHubRequest.UpdateRefund, AeroHubRequest.UpdateRefundEncoded>, input: unknown) =>
  Either.match(Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(input), {
    onLeft: (error) => InvalidRequest.fromParseError(error).issues,
    onRight: () => []
  })

const decode = (schema: Schema.Schema<AeroHubRequest.UpdateRefund, AeroHubRequest.UpdateRefundEncoded>, input: unknown) =>
  Schema.decodeUnknownSync(schema, { errors: "all", onExcessProperty: "error" })(input)

const base = { refundOrderNo: "FBRF2403112526", purchaseOrderNo: "F1745553257834618888" }
const pricing = [{ amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }]
const paid = [{ refundCost: "250.00" }]

const expectIssue = (
  schema: Schema.Schema<AeroHubRequest.UpdateRefund, AeroHubRequest.UpdateRefundEncoded>,
  input: unknown,
  path: string,
  fragment: string
) => {
  const issues = issuesOf(schema, input)
  const hit = issues.find((issue) => issue.path === path)
  assert.isDefined(hit, `expected an issue on ${path}, got ${JSON.stringify(issues)}`)
  assert.include(hit!.message, fragment)
}

describe("AeroHubRequest", () => {
  describe("conditional rules, each with a message naming it", () => {
    it("refundFeePricing is required with QUOTE_COMPLETED (the English page's QUOTE_ACCEPTED)", () => {
      expectIssue(en.update, { ...base, refundStatus: "QUOTE_COMPLETED" }, "refundFeePricing", "refundFeePricing is required when refundStatus is QUOTE_COMPLETED")
      expectIssue(en.update, { ...base, refundStatus: "QUOTE_COMPLETED", refundFeePricing: [] }, "refundFeePricing", "QUOTE_ACCEPTED")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "QUOTE_COMPLETED", refundFeePricing: pricing }), [])
    })

    it("refundAmount is required with REFUNDED (the English page's \"status 4\")", () => {
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED" }, "refundAmount", "refundAmount is required when refundStatus is REFUNDED")
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [] }, "refundAmount", "status 4")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: paid }), [])
    })

    it("REFUNDED must report an amount: an empty element (or one of nulls) is refused, and a voucher needs its currency", () => {
      for (const refundAmount of [[{}], [{ refundCost: null, refundVoucher: null }], [{ voucherNote: "valid one year" }]]) {
        expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount }, "refundAmount", "a refundCost or a refundVoucher in at least one element")
      }
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundVoucher: "50.00" }] }, "refundAmount.0.voucherCurrency", "voucherCurrency is required with refundVoucher")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "0.00", refundVoucher: "50.00", voucherCurrency: "EUR" }] }), [])
    })

    it("refundableAmount is required when rejectReason is 6", () => {
      expectIssue(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 6 }, "refundableAmount", "refundableAmount is required when rejectReason is 6 (refundable amount less than the fee)")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "12.50" }), [])
    })

    it("flightNumber is required when rejectReason is 7", () => {
      expectIssue(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 7 }, "flightNumber", "flightNumber is required when rejectReason is 7 (passenger has traveled")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA1234" }), [])
    })

    it("refundDate is required when rejectReason is 1", () => {
      expectIssue(en.update, { ...base, refundStatus: "QUOTE_REJECTED", rejectReason: 1 }, "refundDate", "refundDate is required when rejectReason is 1 (not yet refundable)")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "QUOTE_REJECTED", rejectReason: 1, refundDate: "2024-04-15T12:00:00Z" }), [])
    })

    it("reports every broken rule at once", () => {
      const issues = issuesOf(en.update, { ...base, refundStatus: "REFUNDED", rejectReason: 7 })
      assert.deepStrictEqual(issues.map((i) => i.path).sort(), ["flightNumber", "refundAmount"])
    })
  })

  describe("the rejectReason code set", () => {
    it("the English set (default) is 1-9, listing the accepted codes on refusal", () => {
      expectIssue(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 20 }, "rejectReason", "rejectReason must be one of the English page's codes: 1 (not yet refundable)")
      expectIssue(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 0 }, "rejectReason", "9 (passenger card already refunded)")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 8 }), [])
      assert.deepStrictEqual(issuesOf(AeroHubRequest.make().update, { ...base, refundStatus: "CLOSED", rejectReason: 8 }), [])
    })

    it("the Chinese set is 20-35, with refundDate for 27 and flightNumber for 30", () => {
      expectIssue(cn.update, { ...base, refundStatus: "CLOSED", rejectReason: 6 }, "rejectReason", "Chinese page's codes: 20 (")
      assert.deepStrictEqual(issuesOf(cn.update, { ...base, refundStatus: "CLOSED", rejectReason: 32 }), [])
      expectIssue(cn.update, { ...base, refundStatus: "CLOSED", rejectReason: 27 }, "refundDate", "refundDate is required when rejectReason is 27")
      expectIssue(cn.update, { ...base, refundStatus: "CLOSED", rejectReason: 30 }, "flightNumber", "flightNumber is required when rejectReason is 30")
      // No Chinese code means "refundable amount less than the fee": nothing requires refundableAmount.
      assert.deepStrictEqual(issuesOf(cn.update, { ...base, refundStatus: "CLOSED", rejectReason: 21 }), [])
    })
  })

  describe("fields", () => {
    it("requires the order numbers and a documented refundStatus", () => {
      const issues = issuesOf(en.update, { refundStatus: "QUOTE_ACCEPTED" })
      assert.deepStrictEqual(issues.map((i) => i.path).sort(), ["purchaseOrderNo", "refundOrderNo", "refundStatus"])
      assert.include(issues.find((i) => i.path === "refundStatus")!.message, "must be one of QUOTE_COMPLETED, QUOTE_REJECTED, PROCESSING, REFUNDED_PENDING, REFUNDED, CLOSED")
      assert.include(issues.find((i) => i.path === "refundStatus")!.message, "QUOTE_ACCEPTED is QUOTE_COMPLETED")
    })

    it("amounts are exact: decimal strings or JSON numbers with at most two places, normalised, never rounded", () => {
      const decoded = decode(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250", refundVoucher: 50.5, voucherCurrency: "USD" }] })
      assert.deepStrictEqual(decoded.refundAmount, [{ refundCost: "250.00", refundVoucher: "50.50", voucherCurrency: "USD" }])
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "1.005" }] }, "refundAmount.0.refundCost", "at most 2 decimal places")
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 0.1 + 0.2 }] }, "refundAmount.0.refundCost", "at most 2 decimal places")
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "-1.00" }] }, "refundAmount.0.refundCost", "must not be negative")
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "1e3" }] }, "refundAmount.0.refundCost", "at most 2 decimal places")
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "12345678901234.00" }] }, "refundAmount.0.refundCost", "more digits")
      assert.deepStrictEqual(decode(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "0.00" }] }).refundAmount, [{ refundCost: "0.00" }])
    })

    it("a voucher in a currency without minor units needs a whole amount", () => {
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundVoucher: "50.50", voucherCurrency: "JPY" }] }, "refundAmount.0.refundVoucher", "at most 0 decimal places in JPY")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundVoucher: "5000", voucherCurrency: "JPY" }] }), [])
      expectIssue(en.update, { ...base, refundStatus: "REFUNDED", refundAmount: [{ refundVoucher: "50.00", voucherCurrency: "usd" }] }, "refundAmount.0.voucherCurrency", "ISO 4217")
    })

    it("enumerated integers name their meanings", () => {
      const input = {
        ...base,
        refundStatus: "QUOTE_COMPLETED",
        isDocumentation: 3,
        refundFeePricing: [{ isRefundVoucher: 2, refundPolicyDetail: [{ ageType: 3, refundFeePolicy: "1.00" }] }]
      }
      expectIssue(en.update, input, "isDocumentation", "1 (no documentation needed) or 2 (needed but not provided)")
      expectIssue(en.update, input, "refundFeePricing.0.isRefundVoucher", "0 (yes, a voucher refund) or 1 (no)")
      expectIssue(en.update, input, "refundFeePricing.0.refundPolicyDetail.0.ageType", "0 (adult), 1 (child) or 2 (infant)")
    })

    it("refundPolicyDetail is an array, as in AeroHub's sample (its table says object)", () => {
      expectIssue(
        en.update,
        { ...base, refundStatus: "QUOTE_COMPLETED", refundFeePricing: [{ refundPolicyDetail: { ageType: 0, refundFeePolicy: "1.00" } }] },
        "refundFeePricing.0.refundPolicyDetail",
        "must be an array of { ageType, refundFeePolicy }"
      )
    })

    it("refundDate is ISO 8601; order numbers carry no spaces", () => {
      expectIssue(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 1, refundDate: "15/04/2024" }, "refundDate", "ISO 8601")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 1, refundDate: "2024-04-15" }), [])
      expectIssue(en.update, { ...base, refundOrderNo: "", refundStatus: "PROCESSING" }, "refundOrderNo", "refundOrderNo must be a non-empty AeroHub number")
    })

    it("order numbers are ledger keys: a control character or an unbounded length is refused before anything is stored", () => {
      // PostgreSQL cannot store NUL in text, nor index a key of thousands of bytes: both were 503s after validation passed.
      expectIssue(en.update, { ...base, refundOrderNo: "FBRF2403119999\u0000", refundStatus: "PROCESSING" }, "refundOrderNo", "control characters")
      expectIssue(en.update, { ...base, purchaseOrderNo: "F17455\u200b53257", refundStatus: "PROCESSING" }, "purchaseOrderNo", "control characters")
      expectIssue(en.update, { ...base, refundOrderNo: "9".repeat(9000), refundStatus: "PROCESSING" }, "refundOrderNo", "at most 128 characters")
      assert.deepStrictEqual(issuesOf(en.update, { ...base, refundOrderNo: "F".repeat(128), refundStatus: "PROCESSING" }), [])
    })

    it("refundDate must be a day on the calendar: Date.parse's roll-over (30 February, 31 April, 24:00) is refused", () => {
      for (const refundDate of ["2024-02-30", "2023-02-29", "2024-04-31T10:00:00Z", "2024-04-15T24:00:00Z"]) {
        expectIssue(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 1, refundDate }, "refundDate", "exists on the calendar")
      }
      for (const refundDate of ["2024-02-29", "2024-04-30T23:59:59Z", "2024-04-15T12:00:00+08:00", "2024-04-15T12:00"]) {
        assert.deepStrictEqual(issuesOf(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 1, refundDate }), [], refundDate)
      }
    })

    it("apiKey and requestId are refundkit's to fill in: a request carrying them is refused", () => {
      const issues = issuesOf(en.update, { ...base, refundStatus: "PROCESSING", apiKey: "x", requestId: "y" })
      assert.deepStrictEqual(issues.map((i) => i.path).sort(), ["apiKey", "requestId"])
    })

    it("null is read as absent, as AeroHub's sample writes it", () => {
      const decoded = decode(en.update, { ...base, refundStatus: "PROCESSING", rejectReason: null, flightNumber: null, refundableAmount: null })
      assert.deepStrictEqual(decoded, { ...base, refundStatus: "PROCESSING" })
    })

    it("a bad value in a nullable field is reported by its rule alone, not also as \"Expected null\"", () => {
      const amountRule = (got: string) => `must be an amount with at most 2 decimal places, such as "250.00" (a JSON number like 250.00 is accepted too), got ${got}`
      const closed = { ...base, refundStatus: "CLOSED", rejectReason: 8 }
      const cases: ReadonlyArray<readonly [Record<string, unknown>, ReadonlyArray<{ readonly path: string; readonly message: string }>]> = [
        [{ ...closed, rejectReason: 99 }, [{
          path: "rejectReason",
          message: "rejectReason must be one of the English page's codes: 1 (not yet refundable), 2 (neither voluntary nor involuntary refund allowed), " +
            "3 (involuntary refund not allowed, voluntary refund allowed), 4 (refund request period expired), " +
            "5 (refund requires passport, passport not provided within the specified time), 6 (refundable amount less than the fee), " +
            "7 (passenger has traveled or taken an alternative flight), 8 (ticket already refunded), 9 (passenger card already refunded); got 99"
        }]],
        [{ ...closed, rejectReason: "8" }, [{ path: "rejectReason", message: "Expected number, actual \"8\"" }]],
        [{ ...closed, refundDate: "x" }, [{ path: "refundDate", message: "must be an ISO 8601 date or date-time that exists on the calendar, such as 2024-04-15T12:00:00Z, got \"x\"" }]],
        [{ ...closed, isDocumentation: 7 }, [{ path: "isDocumentation", message: "isDocumentation must be 1 (no documentation needed) or 2 (needed but not provided), got 7" }]],
        [{ ...closed, refundableAmount: "1.005" }, [{ path: "refundableAmount", message: amountRule("\"1.005\"") }]],
        // Two levels of nullable: the element's field and the array itself.
        [{ ...base, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "1.005" }] }, [{ path: "refundAmount.0.refundCost", message: amountRule("\"1.005\"") }]],
        [{ ...base, refundStatus: "REFUNDED", refundAmount: [5] }, [{ path: "refundAmount.0", message: "Expected Struct (Encoded side), actual 5" }]]
      ]
      for (const [input, expected] of cases) assert.deepStrictEqual(issuesOf(en.update, input), expected, JSON.stringify(input))
    })
  })

  describe("a new refund order's first update (refunds.create)", () => {
    it("starts at QUOTE_COMPLETED, QUOTE_REJECTED, PROCESSING or CLOSED", () => {
      for (const refundStatus of ["QUOTE_REJECTED", "PROCESSING", "CLOSED"]) {
        assert.deepStrictEqual(issuesOf(en.create, { ...base, refundStatus }), [], refundStatus)
      }
      assert.deepStrictEqual(issuesOf(en.create, { ...base, refundStatus: "QUOTE_COMPLETED", refundFeePricing: pricing }), [])
      expectIssue(en.create, { ...base, refundStatus: "REFUNDED_PENDING" }, "refundStatus", "a new refund order's first update must be one of QUOTE_COMPLETED, QUOTE_REJECTED, PROCESSING, CLOSED")
      expectIssue(en.create, { ...base, refundStatus: "REFUNDED", refundAmount: paid }, "refundStatus", "REFUNDED comes later")
    })
  })

  describe("AeroHub's own sample request", () => {
    // What in the sample does not fit AeroHub's own table, and what the plugin does with it:
    // 1. apiKey and requestId are in the body: refundkit adds both itself (requestId is
    //    13 characters there, 32 in the table; refundkit sends 32 hex characters), so a
    //    user request carrying them is refused.
    // 2. refundStatus REFUNDED as an order's first update: the state machine starts at a
    //    quote or PROCESSING, so refunds.create refuses it; it is valid as a later update.
    // 3. Amounts are JSON numbers (250.00), and refundFeePricing.amount is typed string in
    //    the table: both spellings are accepted and kept as exact "250.00" strings.
    // 4. refundPolicyDetail is an array (the table says object): an array is required.
    // 5. documentationNote is not in the table: accepted and passed through.
    // 6. null for absent fields: read as absent.
    // 7. refundDate and quote data (refundFeePricing) with REFUNDED: not forbidden, kept.
    it.effect("is refused as a new order's first update, naming each inconsistency", () =>
      Effect.gen(function*() {
        const provider = yield* AeroHub.make({ baseUrl: "http://127.0.0.1:9", apiKey: Redacted.make("k"), rejectReasons: "en" })
        const error = yield* Effect.flip(provider.prepare(seedSample))
        assert.strictEqual(error._tag, "InvalidRequest")
        assert.deepStrictEqual(error.issues.map((i) => i.path).sort(), ["apiKey", "requestId"])
        const { apiKey: _apiKey, requestId: _requestId, ...withoutCredentials } = seedSample
        const first = yield* Effect.flip(provider.prepare(withoutCredentials))
        assert.deepStrictEqual(first.issues.map((i) => i.path), ["refundStatus"])
        assert.include(first.issues[0]!.message, "first update must be one of")
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

    it("decodes as a later update, exact, and goes on the wire with JSON numbers", () => {
      const { apiKey: _apiKey, requestId: _requestId, ...withoutCredentials } = seedSample
      const decoded = decode(en.update, withoutCredentials)
      assert.strictEqual(decoded.refundStatus, "REFUNDED")
      assert.strictEqual(decoded.documentationNote, "Please provide necessary documentation.")
      assert.isUndefined(decoded.rejectReason)
      assert.deepStrictEqual(decoded.refundAmount, [{ refundCost: "250.00", refundVoucher: "50.00", voucherCurrency: "USD", voucherNote: "Expired on January 31, 2025, for personal use only." }])
      assert.deepStrictEqual(decoded.refundFeePricing?.[0]?.refundPolicyDetail?.map((d) => d.refundFeePolicy), ["100.00", "150.00", "50.00"])
      assert.strictEqual(decoded.refundFeePricing?.[0]?.amount, "300.00")
      const stored = Schema.encodeSync(en.update)(decoded)
      assert.deepStrictEqual(stored.refundAmount?.[0]?.refundCost, "250.00")
      const wire = Either.getOrThrow(AeroHubWire.fromRequest(decoded))
      assert.deepStrictEqual(wire.refundAmount, [{ refundCost: 250, refundVoucher: 50, voucherCurrency: "USD", voucherNote: "Expired on January 31, 2025, for personal use only." }])
      assert.deepStrictEqual(wire.refundFeePricing, [{
        amount: 300,
        isRefundVoucher: 0,
        voucherCurrency: "USD",
        refundPolicyDetail: [{ ageType: 0, refundFeePolicy: 100 }, { ageType: 1, refundFeePolicy: 150 }, { ageType: 2, refundFeePolicy: 50 }]
      }])
      assert.isFalse("rejectReason" in wire, "absent fields are left out, not sent as null")
      assert.isFalse("apiKey" in wire)
    })

    it("a fractional amount goes on the wire as the exact JSON number", () => {
      const decoded = decode(en.update, { ...base, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "1234567.89" })
      const wire = Either.getOrThrow(AeroHubWire.fromRequest(decoded))
      assert.strictEqual(JSON.stringify(wire.refundableAmount), "1234567.89")
    })
  })
})
