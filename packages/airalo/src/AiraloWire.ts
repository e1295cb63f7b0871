/**
 * Airalo's wire formats: the bodies refundkit sends to `POST /v2/token` and
 * `POST /v2/refund`, and every response shape Airalo documents for them.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { AiraloRefundRequest } from "./AiraloRequest.js"

/**
 * The token request, sent as `application/x-www-form-urlencoded` (the OpenAPI fragment
 * and the PHP and Python SDKs; the Node SDK sends JSON, which Airalo accepts too).
 *
 * @since 0.1.0
 */
export const TokenRequest = Schema.Struct({
  client_id: Schema.String,
  client_secret: Schema.String,
  grant_type: Schema.Literal("client_credentials")
})

/**
 * @since 0.1.0
 */
export type TokenRequest = typeof TokenRequest.Type

/**
 * `meta` as Airalo sends it on every JSON answer.
 *
 * @since 0.1.0
 */
export const Meta = Schema.Struct({ message: Schema.String })

/**
 * 200 from `POST /v2/token`. `expires_in` is in seconds (the example says 366 days).
 *
 * @since 0.1.0
 */
export const TokenResponse = Schema.Struct({
  data: Schema.Struct({
    token_type: Schema.optional(Schema.String),
    expires_in: Schema.Number.pipe(Schema.nonNegative()),
    access_token: Schema.String.pipe(Schema.minLength(1))
  }),
  meta: Schema.optional(Meta)
})

/**
 * @since 0.1.0
 */
export type TokenResponse = typeof TokenResponse.Type

/**
 * The refund body: the caller's request as Airalo spells it, sent as JSON.
 *
 * @since 0.1.0
 */
export const RefundRequest = AiraloRefundRequest

/**
 * @since 0.1.0
 */
export type RefundRequest = typeof RefundRequest.Encoded

/**
 * 202 from `POST /v2/refund`: the request is queued for Airalo's manual review.
 * `refund_id` is documented as a string; a numeric id is read as its decimal string
 * rather than leaving an accepted request "unknown". `created_at` is `YYYY-MM-DD HH:mm`,
 * kept as sent (no seconds, no time zone).
 *
 * @since 0.1.0
 */
export const RefundAccepted = Schema.Struct({
  data: Schema.Struct({
    refund_id: Schema.Union(
      Schema.String.pipe(Schema.minLength(1)),
      Schema.transform(Schema.Int, Schema.String, { strict: true, decode: (n) => String(n), encode: (s) => Number(s) })
    ),
    created_at: Schema.String
  }),
  meta: Schema.optional(Meta)
})

/**
 * @since 0.1.0
 */
export type RefundAccepted = typeof RefundAccepted.Type

/**
 * 422 "Parameter Error": `data` is either a map of field (dotted for array items:
 * `iccids.1`) to message(s), or an empty list with the whole story in `meta.message`
 * ("The iccids field is required.", "The following ICCIDs do not belong to your company: ...").
 *
 * @since 0.1.0
 */
export const ValidationError = Schema.Struct({
  data: Schema.Union(
    Schema.Array(Schema.String),
    Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Array(Schema.String)) })
  ),
  meta: Meta
})

/**
 * @since 0.1.0
 */
export type ValidationError = typeof ValidationError.Type

/**
 * A business error: `{code, reason}` (documented codes: 11 insufficient credit, 13
 * operator maintenance, 14 invalid checksum, 23 top-up disabled, 33 insufficient stock,
 * 34 package invalid, 43 bad request, 53 unexpected, 73 recycled eSIM; 89 is the IP
 * allowlist's 403).
 *
 * @since 0.1.0
 */
export const BusinessError = Schema.Struct({
  code: Schema.Int,
  reason: Schema.String
})

/**
 * @since 0.1.0
 */
export type BusinessError = typeof BusinessError.Type

/**
 * 429 and some edge errors: `{"message":"Too Many Attempts."}`.
 *
 * @since 0.1.0
 */
export const MessageOnly = Schema.Struct({ message: Schema.String })

/**
 * Any error body Airalo sends, for reading its words: the `{data, meta}` envelope,
 * a business error, or a bare message.
 *
 * @since 0.1.0
 */
export const ErrorBody = Schema.Union(ValidationError, BusinessError, MessageOnly, Schema.Struct({ meta: Meta }))

/**
 * @since 0.1.0
 */
export type ErrorBody = typeof ErrorBody.Type
