/**
 * Airpay v4 on the wire: the forms refundkit posts, the data encrypted inside them,
 * and every response shape Airpay documents, including the errors it sends with
 * HTTP 200. Airpay is loose with types (`response_code` is "00" in one example and
 * 501 in another, `ap_transactionid` a number or a string, `success` the string
 * "true"), so the schemas accept both spellings and decode to one.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A code Airpay sends as a string or a number; decoded to its string form.
 *
 * @since 0.1.0
 */
export const Code = Schema.transform(Schema.Union(Schema.String, Schema.Number), Schema.String, {
  strict: true,
  decode: (value) => String(value),
  encode: (value) => value
})

/**
 * A positive integer id sent as a number or a digit string ("10264"); decoded to
 * its canonical decimal string, which is the refund target.
 *
 * @since 0.1.0
 */
export const IdString = Schema.transform(
  Schema.Union(
    Schema.Number.pipe(Schema.int(), Schema.nonNegative(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
    Schema.String.pipe(Schema.pattern(/^\d{1,20}$/, { message: () => "a digit string" }))
  ),
  Schema.String,
  { strict: true, decode: (value) => (typeof value === "number" ? String(value) : BigInt(value).toString()), encode: (value) => value }
)

/**
 * Airpay's booleans: the strings "true"/"false" (documented) or JSON booleans (observed).
 *
 * @since 0.1.0
 */
export const Flag = Schema.transform(Schema.Union(Schema.Literal("true", "false"), Schema.Boolean), Schema.Boolean, {
  strict: true,
  decode: (value) => value === true || value === "true",
  encode: (value) => value
})

// JSON as Schema's own messages print it, so core's guard can drop a long or structured value.
const echo = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * Seconds as a number or a digit string (`expires_in` is "300" in the docs, 360 in practice).
 *
 * @since 0.1.0
 */
export const Seconds = Schema.transform(
  Schema.Union(Schema.Number.pipe(Schema.nonNegative()), Schema.String.pipe(Schema.pattern(/^\d{1,9}$/))).annotations({
    // One rule for the field: the union's own issues would name only its first branch ("Expected number").
    message: (issue) => ({
      message: `must be a number of seconds: a non-negative JSON number or a digit string such as "300", actual ${echo(issue.actual)}`,
      override: true
    })
  }),
  Schema.Number,
  { strict: true, decode: (value) => Number(value), encode: (value) => value }
)

/**
 * The data encrypted into the token call's `encdata` (and checksummed).
 *
 * @since 0.1.0
 */
export const TokenRequestData = Schema.Struct({
  client_id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(20)),
  client_secret: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  merchant_id: Schema.String.pipe(Schema.pattern(/^\d{1,20}$/)),
  grant_type: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(50))
})

/**
 * The data encrypted into the refund call's `encdata` (and checksummed): `mode` and
 * the base64 of the {@link WireTransactions} JSON.
 *
 * @since 0.1.0
 */
export const RefundRequestData = Schema.Struct({
  mode: Schema.optional(Schema.String),
  transactions: Schema.String
})

/**
 * One transaction inside the refund's base64 `transactions`.
 *
 * @since 0.1.0
 */
export const WireTransaction = Schema.Struct({
  ap_transactionid: IdString,
  amount: Schema.String
})

/**
 * The JSON array base64-encoded into `transactions`.
 *
 * @since 0.1.0
 */
export const WireTransactions = Schema.Array(WireTransaction).pipe(Schema.minItems(1))

/**
 * The form posted to `/oauth2/`.
 *
 * @since 0.1.0
 */
export const TokenForm = Schema.Struct({
  merchant_id: Schema.String,
  encdata: Schema.String,
  checksum: Schema.String
})

/**
 * The form posted to `/refund/?token=...`.
 *
 * @since 0.1.0
 */
export const RefundForm = Schema.Struct({
  merchant_id: Schema.String,
  encdata: Schema.String,
  checksum: Schema.String,
  privatekey: Schema.String
})

/**
 * Every encrypted answer: `{"response": "<16-hex IV><base64>"}`.
 *
 * @since 0.1.0
 */
export const Encrypted = Schema.Struct({ response: Schema.String })

/**
 * The envelope of every answer (after decryption, or sent plain). A failure is
 * `status_code` "400" with HTTP 200; `data` depends on the call.
 *
 * @since 0.1.0
 */
export const Envelope = Schema.Struct({
  status_code: Code,
  response_code: Schema.optional(Schema.NullOr(Code)),
  status: Schema.optional(Schema.NullOr(Schema.String)),
  message: Schema.optional(Schema.NullOr(Schema.String)),
  data: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 */
export type Envelope = typeof Envelope.Type

/**
 * A token the `/oauth2/` call granted.
 *
 * @since 0.1.0
 */
export const TokenGranted = Schema.Struct({
  success: Schema.optional(Schema.Literal(true, "true")),
  access_token: Schema.String.pipe(Schema.minLength(1)),
  expires_in: Seconds,
  token_type: Schema.optional(Schema.NullOr(Schema.String)),
  scope: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * A refused token call: the envelope says "success", `data.success` says no.
 *
 * @since 0.1.0
 */
export const TokenRefused = Schema.Struct({
  success: Schema.Literal(false, "false"),
  msg: Schema.optional(Schema.NullOr(Schema.String)),
  message: Schema.optional(Schema.NullOr(Schema.String))
})

const TokenOutcome = Schema.Struct({ success: Schema.optional(Flag) })

const TokenAnswer = Schema.Union(TokenRefused, TokenGranted)

/**
 * The `data` of a `/oauth2/` answer with `status_code` "200": refused when `success` is
 * false, else granted. `success` picks the branch before the branch is decoded, so a
 * malformed field is reported by the branch that applies (a granted token's bad
 * `expires_in` as `expires_in`); a plain union reported the other branch's
 * "success: Expected false, actual true".
 *
 * @since 0.1.0
 */
export const TokenData: Schema.Schema<typeof TokenAnswer.Type, unknown> = Schema.transformOrFail(
  Schema.Unknown,
  Schema.typeSchema(TokenAnswer),
  {
    strict: true,
    decode: (input, options) =>
      ParseResult.flatMap(
        ParseResult.decodeUnknown(TokenOutcome)(input, options),
        ({ success }): Effect.Effect<typeof TokenAnswer.Type, ParseResult.ParseIssue> =>
          success === false
            ? ParseResult.decodeUnknown(TokenRefused)(input, options)
            : ParseResult.decodeUnknown(TokenGranted)(input, options)
      ),
    encode: (answer, options) => ParseResult.encodeUnknown(TokenAnswer)(answer, options)
  }
)

/**
 * One transaction's outcome in a refund answer.
 *
 * @since 0.1.0
 */
export const RefundResult = Schema.Struct({
  ap_transactionid: IdString,
  amount: Schema.optional(Schema.NullOr(Schema.String)),
  success: Flag,
  message: Schema.optional(Schema.NullOr(Schema.String)),
  refund_id: Schema.optional(Schema.NullOr(Code))
})

/**
 * @since 0.1.0
 */
export type RefundResult = typeof RefundResult.Type

/**
 * The `data` of a refund answer with `status_code` "200".
 *
 * @since 0.1.0
 */
export const RefundData = Schema.Struct({
  transactions: Schema.Array(RefundResult),
  mode: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * @since 0.1.0
 */
export type RefundData = typeof RefundData.Type
