/**
 * The UpdateRefund request a refundkit user writes, in AeroHub's own field names,
 * minus what refundkit fills in itself (`apiKey`, `requestId`). Every documented
 * rule is checked here, before anything is sent, with a message naming the rule.
 *
 * The `rejectReason` code set differs between AeroHub's English (1-9) and Chinese
 * (20-35) pages, so the schemas are built for one set with {@link make}.
 *
 * @since 0.1.0
 */
import * as Money from "@refundkit/core/Money"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { RejectReasonSet } from "./AeroHubConfig.js"
import * as AeroHubTransitions from "./AeroHubTransitions.js"

/**
 * Every refund-order status a supplier may report, in lifecycle order.
 *
 * @since 0.1.0
 */
export const refundStatuses = ["QUOTE_COMPLETED", "QUOTE_REJECTED", "PROCESSING", "REFUNDED_PENDING", "REFUNDED", "CLOSED"] as const

/**
 * The `refundStatus` of an update. The English page's "QUOTE_ACCEPTED" is read as
 * QUOTE_COMPLETED (the Chinese page's word, and the only quote-accepted word in the list).
 *
 * @since 0.1.0
 */
export const RefundStatus = Schema.Literal(...refundStatuses).annotations({
  identifier: "AeroHubRefundStatus",
  // override: a literal union otherwise reports one "Expected X" per member.
  message: (issue) => ({
    message: `must be one of ${refundStatuses.join(", ")} (the English page's QUOTE_ACCEPTED is QUOTE_COMPLETED), got ${JSON.stringify(issue.actual)}`,
    override: true
  })
})

/**
 * @since 0.1.0
 */
export type RefundStatus = typeof RefundStatus.Type

/**
 * Whether a word is one of AeroHub's refund-order statuses.
 *
 * @since 0.1.0
 */
export const isRefundStatus = Schema.is(RefundStatus)

/**
 * The `rejectReason` codes of each documented set, with AeroHub's meaning.
 *
 * @since 0.1.0
 */
export const rejectReasons: { readonly [Set in RejectReasonSet]: ReadonlyMap<number, string> } = {
  en: new Map([
    [1, "not yet refundable"],
    [2, "neither voluntary nor involuntary refund allowed"],
    [3, "involuntary refund not allowed, voluntary refund allowed"],
    [4, "refund request period expired"],
    [5, "refund requires passport, passport not provided within the specified time"],
    [6, "refundable amount less than the fee"],
    [7, "passenger has traveled or taken an alternative flight"],
    [8, "ticket already refunded"],
    [9, "passenger card already refunded"]
  ]),
  cn: new Map([
    [20, "not refundable and no tax refund"],
    [21, "penalty above the ticket price"],
    [22, "schedule change too small for an involuntary refund (try voluntary)"],
    [23, "schedule change too small for an involuntary refund, voluntary not allowed either"],
    [24, "submission deadline passed"],
    [25, "flight operated normally (not involuntary)"],
    [26, "ticket reissued"],
    [27, "not refundable yet (time not reached)"],
    [28, "wrong submission type"],
    [29, "passport required and not supplied in time"],
    [30, "passenger flew or used an alternative flight"],
    [31, "ticket already refunded"],
    [32, "airline refused"],
    [33, "supplier quote error"],
    [34, "channel intercepted the refund"],
    [35, "passenger rebooked themselves"]
  ])
}

/**
 * Which `rejectReason` code makes which field required, per code set. The English
 * page states 1 -> refundDate, 6 -> refundableAmount, 7 -> flightNumber; the Chinese
 * excerpt states none, so its equivalents (27 "time not reached", 30 "passenger flew")
 * are carried over by meaning; no Chinese code means "refundable amount less than the fee".
 *
 * @since 0.1.0
 */
export const requiredBy: {
  readonly [Set in RejectReasonSet]: { readonly refundDate: number; readonly refundableAmount?: number; readonly flightNumber: number }
} = {
  en: { refundDate: 1, refundableAmount: 6, flightNumber: 7 },
  cn: { refundDate: 27, flightNumber: 30 }
}

// A double carries 15 significant digits exactly; more could not go on the wire as a JSON number.
const maxDigits = 15

/**
 * An AeroHub amount: an exact decimal string with at most two places ("250.00"), or a
 * JSON number with at most two places as AeroHub's own sample writes them (250.00).
 * Normalised to a two-place string; never rounded, never negative.
 *
 * @since 0.1.0
 */
export const Amount: Schema.Schema<string, string | number> = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.String,
  {
    strict: true,
    decode: (input, _, ast) => {
      // String() of a JSON number is its shortest exact spelling; exponents and extra places are refused below.
      const text = typeof input === "number" ? (Number.isFinite(input) ? String(input) : "") : input
      const parsed = Money.parseMinor(text, 2)
      const fail = (message: string) => ParseResult.fail(new ParseResult.Type(ast, input, message))
      if (Either.isLeft(parsed)) {
        return fail(`must be an amount with at most 2 decimal places, such as "250.00" (a JSON number like 250.00 is accepted too), got ${JSON.stringify(input)}`)
      }
      if (parsed.right < 0n) return fail(`must not be negative, got ${JSON.stringify(input)}`)
      if (parsed.right.toString().length > maxDigits) return fail(`has more digits than AeroHub's JSON number carries exactly, got ${JSON.stringify(input)}`)
      return ParseResult.succeed(Money.formatMinor(parsed.right, 2))
    },
    encode: ParseResult.succeed
  }
).annotations({
  title: "AeroHubAmount",
  description: "non-negative amount with at most 2 decimal places: \"250.00\" (or the JSON number 250.00)",
  jsonSchema: { anyOf: [{ type: "string", pattern: "^\\d+(\\.\\d{1,2})?$" }, { type: "number", minimum: 0 }] }
})

// null is what AeroHub's sample sends for an absent field; it decodes as absent.
const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { nullable: true, exact: true })

// AeroHub's numbers are short codes ("FBRF2403112526"). An order number is the refund's target,
// a ledger key: a control character (NUL) or thousands of characters made PostgreSQL refuse the
// row (a 503 after validation had passed), so both are refused here, naming the field.
const maxIdentifierLength = 128
const identifierPattern = /^[^\s\p{C}]+$/u

const Identifier = (name: string) =>
  Schema.String.pipe(
    Schema.filter((s) =>
      s.length > maxIdentifierLength
        ? `${name} must be at most ${maxIdentifierLength} characters, got ${s.length}`
        : identifierPattern.test(s) || `${name} must be a non-empty AeroHub number without spaces or control characters, got ${JSON.stringify(s)}`
    )
  )

const CurrencyCode = Schema.String.pipe(
  Schema.filter((s) => /^[A-Z]{3}$/.test(s) || `must be an ISO 4217 currency code such as USD, got ${JSON.stringify(s)}`)
)

const isoDate = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/

// Date.parse rolls impossible days over ("2024-02-30" is 1 March, "T24:00" the next day):
// such a date must not reach AeroHub as the day a refund can be requested.
const isCalendarDate = (s: string): boolean => {
  const match = isoDate.exec(s)
  if (match === null || Number.isNaN(Date.parse(s))) return false
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  const sameDay = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
  return sameDay && (match[4] === undefined || Number(match[4]) <= 23)
}

/**
 * `refundDate`: ISO 8601, a date or a date-time.
 *
 * @since 0.1.0
 */
export const RefundDate = Schema.String.pipe(
  Schema.filter((s) =>
    isCalendarDate(s) || `must be an ISO 8601 date or date-time that exists on the calendar, such as 2024-04-15T12:00:00Z, got ${JSON.stringify(s)}`
  )
)

/**
 * One `refundAmount` element: what the supplier paid back to AeroHub. `refundVoucher`
 * is in `voucherCurrency`, so a currency without minor units (JPY) needs a whole amount.
 *
 * @since 0.1.0
 */
export const RefundAmountElement = Schema.Struct({
  refundCost: optionalNullable(Amount),
  refundVoucher: optionalNullable(Amount),
  voucherCurrency: optionalNullable(CurrencyCode),
  voucherNote: optionalNullable(Schema.String)
}).pipe(
  Schema.filter((element) => {
    if (element.refundVoucher === undefined) return undefined
    // A voucher amount is in the airline's currency, not the settlement one: without it the amount means nothing.
    if (element.voucherCurrency === undefined) {
      return { path: ["voucherCurrency"], message: `voucherCurrency is required with refundVoucher: the currency of the voucher (the airline's), such as USD` }
    }
    const places = Money.exponentOf(element.voucherCurrency)
    if (places === undefined || places >= 2) return undefined
    return Either.isRight(Money.parseMinor(element.refundVoucher, places)) ||
      { path: ["refundVoucher"], message: `must have at most ${places} decimal places in ${element.voucherCurrency}, got ${JSON.stringify(element.refundVoucher)}` }
  })
)

/**
 * One `refundPolicyDetail` element: the fee for one passenger type.
 *
 * @since 0.1.0
 */
export const RefundPolicyDetail = Schema.Struct({
  ageType: Schema.Literal(0, 1, 2).annotations({ message: (issue) => ({ message: `ageType must be 0 (adult), 1 (child) or 2 (infant), got ${JSON.stringify(issue.actual)}`, override: true }) }),
  refundFeePolicy: Amount
})

/**
 * One `refundFeePricing` element: the quote. `isRefundVoucher` is AeroHub's inverted
 * flag: 0 means a voucher refund, 1 means not. `refundPolicyDetail` is an array, as
 * AeroHub's sample sends it (its table says "object").
 *
 * @since 0.1.0
 */
export const RefundFeePricingElement = Schema.Struct({
  amount: optionalNullable(Amount),
  isRefundVoucher: optionalNullable(
    Schema.Literal(0, 1).annotations({ message: (issue) => ({ message: `isRefundVoucher must be 0 (yes, a voucher refund) or 1 (no), got ${JSON.stringify(issue.actual)}`, override: true }) })
  ),
  voucherCurrency: optionalNullable(CurrencyCode),
  refundPolicyDetail: optionalNullable(
    Schema.Array(RefundPolicyDetail).annotations({
      // Element issues keep their own messages; this one is for a value that is not an array at all.
      message: (issue) =>
        `refundPolicyDetail must be an array of { ageType, refundFeePolicy } (AeroHub's sample sends an array; its table says object), got ${JSON.stringify(issue.actual)}`
    })
  )
})

const RejectReason = (set: RejectReasonSet) => {
  const codes = rejectReasons[set]
  const listed = [...codes].map(([code, meaning]) => `${code} (${meaning})`).join(", ")
  return Schema.Int.pipe(
    Schema.filter((code) => codes.has(code) || `rejectReason must be one of the ${set === "en" ? "English" : "Chinese"} page's codes: ${listed}; got ${code}`)
  ).annotations({ description: `AeroHub reject reason (${set} code set)` })
}

const struct = (set: RejectReasonSet) =>
  Schema.Struct({
    refundOrderNo: Identifier("refundOrderNo").annotations({ description: "AeroHub's refund order number" }),
    purchaseOrderNo: Identifier("purchaseOrderNo").annotations({ description: "AeroHub's order number" }),
    refundStatus: RefundStatus,
    rejectReason: optionalNullable(RejectReason(set)),
    refundDate: optionalNullable(RefundDate),
    refundableAmount: optionalNullable(Amount),
    flightNumber: optionalNullable(
      Schema.String.pipe(Schema.filter((s) => /^\S+$/.test(s) || `flightNumber must be a flight number such as CA1234, got ${JSON.stringify(s)}`))
    ),
    isDocumentation: optionalNullable(
      Schema.Literal(1, 2).annotations({ message: (issue) => ({ message: `isDocumentation must be 1 (no documentation needed) or 2 (needed but not provided), got ${JSON.stringify(issue.actual)}`, override: true }) })
    ),
    documentationNote: optionalNullable(Schema.String),
    refundAmount: optionalNullable(Schema.Array(RefundAmountElement)),
    refundFeePricing: optionalNullable(Schema.Array(RefundFeePricingElement))
  })

/**
 * An UpdateRefund request after decoding: amounts are exact two-place strings.
 *
 * @since 0.1.0
 */
export type UpdateRefund = Schema.Schema.Type<ReturnType<typeof struct>>

/**
 * An UpdateRefund request as a user writes it.
 *
 * @since 0.1.0
 */
export type UpdateRefundEncoded = Schema.Schema.Encoded<ReturnType<typeof struct>>

/**
 * The conditional rules of UpdateRefund, each reported on the field it requires.
 *
 * @since 0.1.0
 */
export const conditionalIssues = (set: RejectReasonSet, update: UpdateRefund): Array<Schema.FilterIssue> => {
  const issues: Array<Schema.FilterIssue> = []
  const rules = requiredBy[set]
  if (update.refundStatus === "QUOTE_COMPLETED" && (update.refundFeePricing === undefined || update.refundFeePricing.length === 0)) {
    issues.push({
      path: ["refundFeePricing"],
      message: "refundFeePricing is required when refundStatus is QUOTE_COMPLETED (the quote; the English page calls this status QUOTE_ACCEPTED)"
    })
  }
  if (update.refundStatus === "REFUNDED" && (update.refundAmount === undefined || update.refundAmount.length === 0)) {
    issues.push({
      path: ["refundAmount"],
      message: "refundAmount is required when refundStatus is REFUNDED (the English page's \"status 4 Refund Completed\")"
    })
  } else if (update.refundStatus === "REFUNDED" && !update.refundAmount?.some((e) => e.refundCost !== undefined || e.refundVoucher !== undefined)) {
    // [{}] or [{"refundCost": null}] (nulls are absent) would report a completed reimbursement of no amount.
    issues.push({
      path: ["refundAmount"],
      message: "refundAmount must say what was refunded when refundStatus is REFUNDED: a refundCost or a refundVoucher in at least one element"
    })
  }
  if (rules.refundableAmount !== undefined && update.rejectReason === rules.refundableAmount && update.refundableAmount === undefined) {
    issues.push({
      path: ["refundableAmount"],
      message: `refundableAmount is required when rejectReason is ${rules.refundableAmount} (${rejectReasons[set].get(rules.refundableAmount)})`
    })
  }
  if (update.rejectReason === rules.flightNumber && update.flightNumber === undefined) {
    issues.push({
      path: ["flightNumber"],
      message: `flightNumber is required when rejectReason is ${rules.flightNumber} (${rejectReasons[set].get(rules.flightNumber)}): the flight the passenger took`
    })
  }
  if (update.rejectReason === rules.refundDate && update.refundDate === undefined) {
    issues.push({
      path: ["refundDate"],
      message: `refundDate is required when rejectReason is ${rules.refundDate} (${rejectReasons[set].get(rules.refundDate)}): the date the refund can be requested`
    })
  }
  return issues
}

/**
 * The two schemas for one `rejectReason` code set: `update` is any UpdateRefund with
 * its conditional rules; `create` is the first update of a new refund order, which must
 * also be one of the states a refund order may start at.
 *
 * @since 0.1.0
 */
export const make = (set: RejectReasonSet = "en") => {
  const update = struct(set).pipe(
    Schema.filter((request) => conditionalIssues(set, request)),
    Schema.annotations({ identifier: "AeroHubUpdateRefund", description: "AeroHub UpdateRefund, without apiKey and requestId (refundkit adds them)" })
  )
  const create = update.pipe(
    Schema.filter((request) => {
      const refused = AeroHubTransitions.refusal(undefined, request.refundStatus)
      return refused === undefined ? undefined : { path: ["refundStatus"], message: refused }
    }),
    Schema.annotations({ identifier: "AeroHubFirstUpdateRefund" })
  )
  return { update, create } as const
}
