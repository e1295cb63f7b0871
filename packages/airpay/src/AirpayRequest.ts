/**
 * The refund request a user writes, in Airpay's own field names: the transactions to
 * refund (`ap_transactionid` and `amount`, as in Airpay's refund docs). refundkit fills
 * in `mode`, the base64 `transactions`, `encdata`, `checksum`, `privatekey` and the token.
 *
 * @since 0.1.0
 */
import * as Money from "@refundkit/core/Money"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * Airpay's transaction reference number: a positive integer that a JSON number
 * carries exactly.
 *
 * @since 0.1.0
 */
export const ApTransactionId = Schema.Number.pipe(
  Schema.positive({ message: () => "ap_transactionid must be greater than zero" }),
  Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER, { message: () => `ap_transactionid must be at most ${Number.MAX_SAFE_INTEGER}` }),
  Schema.int({ message: () => "ap_transactionid must be a whole number (Airpay's transaction reference number)" }),
  Schema.annotations({ identifier: "ApTransactionId", description: "Airpay transaction reference number" })
)

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
  const seen = new Set<number>()
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
