/**
 * The refund request a user writes, in Airpay's own field names: the transactions to
 * refund (`ap_transactionid` and `amount`, as in Airpay's refund docs). refundkit fills
 * in `mode`, the base64 `transactions`, `encdata`, `checksum`, `privatekey` and the token.
 *
 * @since 0.1.0
 */
import * as Money from "@refundkit/core/Money"
import * as Provider from "@refundkit/core/Provider"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * The largest `ap_transactionid` refundkit sends: PHP_INT_MAX. Airpay's side is PHP (its
 * samples, its checksum's `date('Y-m-d')`), whose `json_decode` reads a larger integer
 * literal as a float, so a larger id would reach Airpay as another number.
 *
 * @since 0.1.1
 */
export const maxApTransactionId = "9223372036854775807"

const digits = /^\d+$/

/** The digits of a positive id no larger than {@link maxApTransactionId}, without leading zeros; undefined otherwise. */
const canonicalDigits = (text: string): string | undefined => {
  const significant = text.replace(/^0+/, "")
  const within = significant.length < maxApTransactionId.length ||
    (significant.length === maxApTransactionId.length && significant <= maxApTransactionId)
  return significant !== "" && within ? significant : undefined
}

// One rule per value written: the union's own issues would name its first branch ("Expected number").
const ruleBroken = (actual: unknown): string => {
  if (typeof actual === "number") {
    if (!Number.isInteger(actual)) return "ap_transactionid must be a whole number (Airpay's transaction reference number)"
    if (actual <= 0) return "ap_transactionid must be greater than zero"
    return `ap_transactionid must be at most ${Number.MAX_SAFE_INTEGER} as a JSON number, which cannot carry a larger one exactly: write it as a string of digits, e.g. "9007199254740993"`
  }
  if (typeof actual === "string" && digits.test(actual)) {
    return /^0+$/.test(actual) ? "ap_transactionid must be greater than zero" : `ap_transactionid must be at most ${maxApTransactionId}`
  }
  return "ap_transactionid must be Airpay's transaction reference number: a positive whole number, as a JSON number or a string of digits (10265 or \"10265\")"
}

/**
 * Airpay's transaction reference number, decoded to its digits (the refund target): a
 * positive JSON number a double holds exactly, or a string of digits. Airpay's payment
 * callbacks and answers carry it as a string, and a string carries an id past 2^53 that a
 * JSON number would round to another transaction's. Either way it is sent to Airpay as
 * the JSON number its docs show, digit for digit. Encoded back as a number when a double
 * holds it, so a stored request (and its idempotency fingerprint) reads as before.
 *
 * @since 0.1.0
 */
export const ApTransactionId = Schema.transform(
  Schema.Union(
    Schema.Number.pipe(Schema.int(), Schema.positive(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
    Schema.String.pipe(Schema.pattern(digits), Schema.filter((text) => canonicalDigits(text) !== undefined))
  ).annotations({
    identifier: "ApTransactionId",
    description: `Airpay transaction reference number: a positive integer, as a JSON number (at most ${Number.MAX_SAFE_INTEGER}) or a string of digits (at most ${maxApTransactionId})`,
    message: (issue) => ({ message: ruleBroken(issue.actual), override: true })
  }),
  Schema.String,
  {
    strict: true,
    decode: (id) => (typeof id === "number" ? Provider.integerTarget(id) : canonicalDigits(id) ?? id),
    encode: (id) => (Number.isSafeInteger(Number(id)) ? Number(id) : id)
  }
)

const decodeApTransactionId = Schema.decodeUnknownEither(ApTransactionId)

/**
 * The refund target of an `ap_transactionid` as a caller writes it (`"010265"`, `10265`):
 * the digits a request naming it so records (`"10265"`); a text that is no transaction id unchanged.
 *
 * @since 0.2.0
 */
export const canonicalTarget = (text: string): string => Either.getOrElse(decodeApTransactionId(text), () => text)

/**
 * One transaction to refund: the full or a partial amount, a decimal string with at
 * most two decimals ("100.00").
 *
 * @since 0.1.0
 */
export const Transaction = Schema.Struct({
  ap_transactionid: ApTransactionId,
  amount: Money.DecimalAmount(2).annotations({ description: "full or partial refund amount, e.g. \"100.00\"" })
}).annotations({ identifier: "AirpayTransaction" })

/**
 * @since 0.1.0
 */
export type Transaction = typeof Transaction.Type

const twoPlaceCurrency = (code: string) => /^[A-Z]{3}$/.test(code) && Either.isRight(Money.parse("0.01", code)) && Either.isLeft(Money.parse("0.001", code))

/**
 * The currency of the transactions: refundkit's own field, never sent (Airpay refunds
 * in the transaction's currency). It is what the over-refund guard counts in; INR when absent.
 *
 * @since 0.1.0
 */
export const Currency = Schema.String.pipe(
  Schema.filter((code) => twoPlaceCurrency(code) || "currency must be an ISO 4217 code with two decimal places (Airpay amounts have two), e.g. INR"),
  Schema.annotations({ description: "ISO 4217 code of the transactions' currency (refundkit only, not sent); default INR" })
)

/**
 * The default currency: Airpay India settles in rupees.
 *
 * @since 0.1.0
 */
export const defaultCurrency = "INR"

const duplicates = (transactions: ReadonlyArray<Transaction>) => {
  const seen = new Set<string>()
  const issues: Array<Schema.FilterIssue> = []
  transactions.forEach((transaction, index) => {
    if (seen.has(transaction.ap_transactionid)) {
      issues.push({
        path: [index, "ap_transactionid"],
        message: `each ap_transactionid may appear once per request: ${transaction.ap_transactionid} is repeated`
      })
    }
    seen.add(transaction.ap_transactionid)
  })
  return issues
}

/**
 * The transactions of one refund request: one or more, each ap_transactionid once.
 *
 * @since 0.1.0
 */
export const Transactions = Schema.Array(Transaction).pipe(
  Schema.minItems(1, { message: () => "transactions must list at least one transaction" }),
  Schema.filter((transactions) => {
    const issues = duplicates(transactions)
    return issues.length === 0 ? true : issues
  })
)

/**
 * An Airpay refund request.
 *
 * @since 0.1.0
 */
export const AirpayRequest = Schema.Struct({
  transactions: Transactions,
  currency: Schema.optionalWith(Currency, { default: () => defaultCurrency, exact: true })
}).annotations({ identifier: "AirpayRefundRequest", title: "Airpay refund" })

/**
 * @since 0.1.0
 */
export type AirpayRequest = typeof AirpayRequest.Type

/**
 * The request schema with a cap on transactions per request (the configured
 * transactions per call), so a request refundkit cannot send in one call is refused upfront.
 *
 * @since 0.1.0
 */
export const withMaxTransactions = (max: number): Schema.Schema<AirpayRequest, typeof AirpayRequest.Encoded> =>
  AirpayRequest.pipe(
    Schema.filter((request) =>
      request.transactions.length <= max ||
      { path: ["transactions"], message: `transactions may list at most ${max} transactions per request (REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL)` }
    )
  )
