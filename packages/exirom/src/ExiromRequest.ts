/**
 * The refund request a user writes, in Exirom's own field names
 * (`POST /api/v1/refunds/card`), minus `requestId`, which refundkit derives from the
 * idempotency key. `currency` is refundkit's addition: it is not sent to Exirom.
 *
 * @since 0.1.0
 */
import * as Money from "@refundkit/core/Money"
import * as Provider from "@refundkit/core/Provider"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * Exirom's id of the card payment being refunded: an integer in the reference. A
 * string of digits ("12345", as a CSV cell gives it) is accepted and sent as the integer.
 *
 * @since 0.1.0
 */
export const TransactionId = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.String),
  Schema.Number,
  {
    strict: true,
    decode: (input, _, ast) => {
      const value = typeof input === "string" && /^\d{1,16}$/.test(input) ? Number(input) : input
      if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return ParseResult.succeed(value)
      // A whole number past 2^53 - 1 is still a whole number: say which rule it breaks.
      const tooLarge = (typeof input === "string" && /^\d+$/.test(input)) || (typeof input === "number" && Number.isInteger(input) && input > 0)
      return ParseResult.fail(
        new ParseResult.Type(
          ast,
          input,
          tooLarge
            ? `transactionId ${JSON.stringify(input)} is larger than ${Number.MAX_SAFE_INTEGER}, the largest integer refundkit sends exactly`
            : `transactionId must be Exirom's positive integer transaction id (e.g. 12345), got ${JSON.stringify(input)}`
        )
      )
    },
    encode: ParseResult.succeed
  }
).annotations({
  identifier: "ExiromTransactionId",
  description: "Exirom's integer id of the original card payment",
  jsonSchema: { type: "integer", minimum: 1 }
})

const decodeTransactionId = Schema.decodeUnknownEither(TransactionId)

/**
 * The refund target of a `transactionId` as a caller writes it (`"0012345"`, `12345`): the
 * digits a request naming it so records (`"12345"`); a text that is no transaction id unchanged.
 *
 * @since 0.2.0
 */
export const canonicalTarget = (text: string): string =>
  Either.getOrElse(Either.map(decodeTransactionId(text), Provider.integerTarget), () => text)

const nonBlank = (field: string, example: string) =>
  Schema.String.pipe(
    Schema.filter((s) => s.trim().length > 0 || `${field} must not be empty (e.g. ${example})`),
    Schema.filter((s) => s.length <= 255 || `${field} must be at most 255 characters, got ${s.length}`)
  )

const CallbackUrl = Schema.String.pipe(
  Schema.filter((s) => {
    const url = Either.try(() => new URL(s))
    return (Either.isRight(url) && (url.right.protocol === "https:" || url.right.protocol === "http:")) ||
      `callbackUrl must be an absolute http(s) URL (Exirom POSTs the result there), got ${JSON.stringify(s)}`
  })
)

const refundkitFills = Schema.Never.annotations({
  message: () => "requestId is filled in by refundkit from the idempotency key (it makes retries safe at Exirom): leave it out"
})

/**
 * A refund of one captured card payment, fully or in part.
 *
 * @since 0.1.0
 */
export const ExiromRequest = Schema.Struct({
  transactionId: TransactionId,
  amount: Money.DecimalAmount(2).annotations({
    description: "decimal string in major units of the original order currency, e.g. \"10.50\"; more than two decimals is refused, never rounded"
  }),
  reason: nonBlank("reason", "customer_request, duplicate or fraudulent").annotations({
    description: "why the money goes back, e.g. customer_request, duplicate, fraudulent"
  }),
  callbackUrl: Schema.optional(CallbackUrl.annotations({ description: "where Exirom POSTs the final result" })),
  metadata: Schema.optional(
    Schema.Record({ key: Schema.String, value: Schema.String }).annotations({ description: "string pairs Exirom echoes in responses and callbacks" })
  ),
  mid: Schema.optional(nonBlank("mid", "merchant_123").annotations({ description: "merchant account; REFUNDKIT_EXIROM_MID when absent" })),
  currency: Schema.optional(Money.Currency.annotations({ description: "ISO 4217 code of the original order; refundkit uses it for the over-refund guard, Exirom is not sent it" })),
  requestId: Schema.optional(refundkitFills)
}).pipe(
  Schema.filter((request) =>
    request.currency === undefined || Either.isRight(Money.parse(request.amount, request.currency)) || {
      path: ["amount"],
      message: `amount ${request.amount} is not an exact amount of ${request.currency} (it has ${Money.exponentOf(request.currency)} decimal places)`
    }
  ),
  Schema.annotations({ identifier: "ExiromRefundRequest", title: "Exirom card refund" })
)

/**
 * @since 0.1.0
 */
export type ExiromRequest = typeof ExiromRequest.Type
