/**
 * Exirom's wire shapes: the bodies refundkit sends and every documented response
 * shape, including the ones the docs disagree on (three auth answers; `refundId`
 * and `refundTransactionId`).
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * `POST /v1/auth` body.
 *
 * @since 0.1.0
 */
export const AuthBody = Schema.Struct({
  merchantKey: Schema.String,
  merchantSecret: Schema.String
})

/**
 * `POST /v1/auth` answer: the reference returns the JWT as a bare JSON string, an
 * older guide `{merchantKey, token}`, the quick start `{token}`. All decode to the token.
 *
 * @since 0.1.0
 */
export const AuthResponse = Schema.Union(
  Schema.NonEmptyString,
  Schema.Struct({ token: Schema.NonEmptyString, merchantKey: Schema.optional(Schema.String) })
).annotations({ identifier: "ExiromAuthResponse" })

const jwtText = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/**
 * The reference says `/v1/auth` "returns a JWT bearer token as a plain string". A Java
 * controller returning a String sends it as unquoted text, which is not JSON: such a body,
 * when it is a JWT and nothing else, is read as the bare string it means.
 *
 * @since 0.1.0
 */
export const plainToken = <R extends { readonly status: number; readonly text: string; readonly json: Option.Option<unknown> }>(received: R): R =>
  received.status >= 200 && received.status < 300 && Option.isNone(received.json) && jwtText.test(received.text.trim())
    ? { ...received, json: Option.some(received.text.trim()) }
    : received

/**
 * The token inside any {@link AuthResponse} shape.
 *
 * @since 0.1.0
 */
export const tokenOf = (response: typeof AuthResponse.Type): string => typeof response === "string" ? response : response.token

/**
 * `POST /v1/refunds/card` body, as sent.
 *
 * @since 0.1.0
 */
export const RefundBody = Schema.Struct({
  requestId: Schema.String,
  mid: Schema.String,
  transactionId: Schema.Number,
  amount: Schema.String,
  reason: Schema.String,
  callbackUrl: Schema.optional(Schema.String),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})

/**
 * @since 0.1.0
 */
export type RefundBody = typeof RefundBody.Type

const DeclineCode = Schema.optional(Schema.NullOr(Schema.Int))

/**
 * `POST /v1/refunds/card` answer. HTTP 200 is not success: a declined refund is
 * 200 with `transactionStatus: "FAILED"` and a `declineCode`. The Refund Flow guide
 * names the id `refundTransactionId`; either is accepted (see {@link refundIdOf}).
 *
 * @since 0.1.0
 */
export const RefundResponse = Schema.Struct({
  refundId: Schema.optional(Schema.String),
  refundTransactionId: Schema.optional(Schema.String),
  transactionStatus: Schema.String,
  declineCode: DeclineCode,
  paymentType: Schema.optional(Schema.String)
}).annotations({ identifier: "ExiromRefundResponse" })

/**
 * @since 0.1.0
 */
export type RefundResponse = typeof RefundResponse.Type

/**
 * The refund's id under either documented name.
 *
 * @since 0.1.0
 */
export const refundIdOf = (response: RefundResponse): string | undefined => response.refundId ?? response.refundTransactionId

/**
 * `GET /v1/refunds/card/status/{id}` answer: the status word as a bare JSON string.
 *
 * @since 0.1.0
 */
export const StatusResponse = Schema.String.annotations({ identifier: "ExiromStatusResponse" })

/**
 * `GET /v1/refunds/card/info/{id}` answer.
 *
 * @since 0.1.0
 */
export const InfoResponse = Schema.Struct({
  transactionId: Schema.Union(Schema.Number, Schema.String),
  refundId: Schema.optional(Schema.String),
  requestId: Schema.optional(Schema.NullOr(Schema.String)),
  mid: Schema.optional(Schema.NullOr(Schema.String)),
  transactionStatus: Schema.String,
  declineCode: DeclineCode,
  totalAmount: Schema.optional(Schema.NullOr(Schema.Number)),
  callbackUrl: Schema.optional(Schema.NullOr(Schema.String)),
  createdAt: Schema.optional(Schema.NullOr(Schema.String)),
  metadata: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String })))
}).annotations({ identifier: "ExiromInfoResponse" })

/**
 * @since 0.1.0
 */
export type InfoResponse = typeof InfoResponse.Type

/**
 * A callback Exirom POSTs to `callbackUrl` (with `?paymentMethod=card`). The card
 * payload is documented; a refund-specific one is not, so every field but the ones
 * the signature and the lookup need is optional.
 *
 * @since 0.1.0
 */
export const Callback = Schema.Struct({
  transactionId: Schema.Union(Schema.Number, Schema.String),
  refundId: Schema.optional(Schema.NullOr(Schema.String)),
  requestId: Schema.optional(Schema.NullOr(Schema.String)),
  mid: Schema.String,
  transactionStatus: Schema.String,
  declineCode: DeclineCode,
  orderAmount: Schema.optional(Schema.NullOr(Schema.Number)),
  totalAmount: Schema.optional(Schema.NullOr(Schema.Number)),
  orderCurrency: Schema.optional(Schema.NullOr(Schema.String)),
  processedCurrency: Schema.optional(Schema.NullOr(Schema.String))
}).annotations({ identifier: "ExiromCallback" })

/**
 * @since 0.1.0
 */
export type Callback = typeof Callback.Type

/**
 * The error body. Its JSON shape is not documented ("check the response body for
 * field-level details"), so whatever words it carries are read leniently.
 *
 * @since 0.1.0
 */
export const ErrorBody = Schema.Struct({
  message: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String),
  detail: Schema.optional(Schema.String),
  traceId: Schema.optional(Schema.String),
  errors: Schema.optional(Schema.Array(Schema.Struct({ field: Schema.optional(Schema.String), message: Schema.optional(Schema.String) })))
})
