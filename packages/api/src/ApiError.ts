/**
 * The gateway's errors. Each is a `Schema.TaggedError` a typed client can catch by
 * tag, and each travels as `{"error": {"code", "message", ...}}` with its own HTTP
 * status: {@link response} builds that wire form. The `code` is stable and matches
 * core's error codes where one exists.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { FieldIssue } from "@refundkit/core/RefundError"
import { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Schema from "effect/Schema"

// Every error body carries a message a person can act on.
const base = { message: Schema.String }

/**
 * The request carries no `Idempotency-Key` header (or an empty one).
 *
 * @since 0.1.0
 */
export class MissingIdempotencyKey extends Schema.TaggedError<MissingIdempotencyKey>()("MissingIdempotencyKey", {
  code: Schema.tag("missing_idempotency_key"),
  ...base
}) {}

/**
 * The request is malformed or fails the provider's schema; nothing was sent to the
 * provider. `issues` names each field and the rule it broke.
 *
 * @since 0.1.0
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  code: Schema.tag("invalid_request"),
  ...base,
  provider: Schema.optional(Schema.String),
  issues: Schema.Array(FieldIssue)
}) {}

/**
 * A provider callback that is not parsable; nothing changed.
 *
 * @since 0.1.0
 */
export class WebhookInvalid extends Schema.TaggedError<WebhookInvalid>()("WebhookInvalid", {
  code: Schema.tag("webhook_invalid"),
  ...base,
  provider: Schema.String
}) {}

/**
 * No or an unknown API key.
 *
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  code: Schema.tag("unauthorized"),
  ...base
}) {}

/**
 * A provider callback whose signature did not verify; nothing changed.
 *
 * @since 0.1.0
 */
export class WebhookUnverified extends Schema.TaggedError<WebhookUnverified>()("WebhookUnverified", {
  code: Schema.tag("webhook_unverified"),
  ...base,
  provider: Schema.String
}) {}

/**
 * The provider id is not installed in this gateway; `installed` lists those that are.
 *
 * @since 0.1.0
 */
export class UnknownProvider extends Schema.TaggedError<UnknownProvider>()("UnknownProvider", {
  code: Schema.tag("unknown_provider"),
  ...base,
  provider: Schema.String,
  installed: Schema.Array(Schema.String)
}) {}

/**
 * No refund with this id.
 *
 * @since 0.1.0
 */
export class RefundNotFound extends Schema.TaggedError<RefundNotFound>()("RefundNotFound", {
  code: Schema.tag("refund_not_found"),
  ...base,
  refundId: Schema.String
}) {}

/**
 * No such route.
 *
 * @since 0.1.0
 */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  code: Schema.tag("not_found"),
  ...base
}) {}

/**
 * A path the API has, asked with a method it does not take (`DELETE /v1/refunds`): 405 with
 * `Allow` naming the methods it takes.
 *
 * @since 0.6.0
 */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  code: Schema.tag("method_not_allowed"),
  ...base
}) {}

/**
 * The first request with this idempotency key is still running: retry later with the same key.
 *
 * @since 0.1.0
 */
export class RefundInProgress extends Schema.TaggedError<RefundInProgress>()("RefundInProgress", {
  code: Schema.tag("refund_in_progress"),
  ...base,
  refundId: Schema.String
}) {}

/**
 * The refund would take a target past the original amount stated in `originalAmounts`,
 * counting every refund against it that has not failed. `blockedBy` names a refund against
 * the target that the guard cannot count in this currency (it states no currency, another
 * one, or no amount), so it refuses rather than guess.
 *
 * @since 0.1.0
 */
export class OverRefund extends Schema.TaggedError<OverRefund>()("OverRefund", {
  code: Schema.tag("over_refund"),
  ...base,
  target: Schema.String,
  requested: Schema.String,
  remaining: Schema.String,
  currency: Schema.String,
  blockedBy: Schema.optional(
    Schema.Struct({ refundId: Schema.String, reason: Schema.String }).annotations({
      description: "A refund against the target whose amount cannot be counted in this currency; since 0.2.0"
    })
  ),
  heldBy: Schema.optional(
    Schema.Array(Schema.Struct({ refundId: Schema.String, amount: Schema.String, status: RefundStatus })).annotations({
      description:
        "The refunds whose amounts against the target were counted (each its amount in `currency` and its status), at most 10, " +
        "in the order the ledger read them: the ones to check with the provider before refunding more; since 0.6.0"
    })
  ),
  heldByCount: Schema.optional(Schema.Number.annotations({ description: "How many refunds were counted in all, when more than `heldBy` lists; since 0.6.0" }))
}) {}

/**
 * A whole refund (a target named without an amount) against a target that another refund,
 * `refundId`, holds (`status` is its status): one that has not failed, or a failed one its
 * provider keeps on the target (`Refund.holdsTarget`, an AeroHub order it closed). Nothing was
 * sent, whatever the idempotency key: wait for that refund, or resolve it as failed if the
 * provider refused it, and send again; a failed holder is released only by an operator who
 * knows the provider will take a new refund of the target.
 *
 * @since 0.3.0
 */
export class TargetAlreadyRefunded extends Schema.TaggedError<TargetAlreadyRefunded>()("TargetAlreadyRefunded", {
  code: Schema.tag("target_already_refunded"),
  ...base,
  target: Schema.String,
  refundId: Schema.String.annotations({ description: "The refund that holds the target (not this request's)" }),
  status: RefundStatus.annotations({
    description: "That refund's status; failed only when its provider keeps it on the target (the refund's holdsTarget)"
  })
}) {}

/**
 * The provider has no status API; the refund moves by webhook or by an operator.
 *
 * @since 0.1.0
 */
export class SyncUnsupported extends Schema.TaggedError<SyncUnsupported>()("SyncUnsupported", {
  code: Schema.tag("sync_unsupported"),
  ...base,
  provider: Schema.String,
  refundId: Schema.String
}) {}

/**
 * The provider has no such operation (follow-up updates, webhooks).
 *
 * @since 0.1.0
 */
export class UnsupportedOperation extends Schema.TaggedError<UnsupportedOperation>()("UnsupportedOperation", {
  code: Schema.tag("unsupported_operation"),
  ...base,
  provider: Schema.String,
  operation: Schema.String
}) {}

/**
 * The change is not allowed from the refund's current status; nothing was overwritten.
 *
 * @since 0.1.0
 */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  code: Schema.tag("illegal_transition"),
  ...base,
  refundId: Schema.String,
  from: Schema.String,
  to: Schema.String
}) {}

/**
 * The request body is larger than the gateway accepts.
 *
 * @since 0.1.0
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  code: Schema.tag("payload_too_large"),
  ...base,
  limitBytes: Schema.Int
}) {}

/**
 * A request body that is not declared as JSON: a route that reads a JSON body takes
 * `Content-Type: application/json` (optionally `; charset=utf-8`) or a `+json` type such as
 * `application/merge-patch+json`, and a body sent without a `Content-Type` or with another one is
 * refused before it is read: nothing was sent to a provider or recorded.
 *
 * @since 0.6.0
 */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  code: Schema.tag("unsupported_media_type"),
  ...base
}) {}

/**
 * The request line and headers are larger than the gateway's HTTP parser accepts
 * (Node's `maxHeaderSize`, 16 KiB unless the operator changed it); nothing was read.
 *
 * @since 0.1.0
 */
export class HeadersTooLarge extends Schema.TaggedError<HeadersTooLarge>()("HeadersTooLarge", {
  code: Schema.tag("headers_too_large"),
  ...base,
  limitBytes: Schema.Int
}) {}

/**
 * The idempotency key was used before with another body; use a new key for a new refund.
 *
 * @since 0.1.0
 */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  code: Schema.tag("idempotency_key_reused"),
  ...base,
  refundId: Schema.String
}) {}

/**
 * The provider said no to a follow-up action or a status query. (A declined refund
 * at creation is not an error: it is a refund in status `failed`.)
 *
 * @since 0.1.0
 */
export class ProviderDeclined extends Schema.TaggedError<ProviderDeclined>()("ProviderDeclined", {
  code: Schema.tag("provider_declined"),
  ...base,
  provider: Schema.String,
  providerCode: Schema.String,
  refundId: Schema.optional(Schema.String)
}) {}

/**
 * The provider could not be reached or failed transiently. When a refund was recorded,
 * `refundId` and `status` say what it is now (`failed` if the provider provably did
 * nothing, `unknown` if it may have acted).
 *
 * @since 0.1.0
 */
export class ProviderUnavailable extends Schema.TaggedError<ProviderUnavailable>()("ProviderUnavailable", {
  code: Schema.tag("provider_unavailable"),
  ...base,
  provider: Schema.String,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus),
  retryAfterSeconds: Schema.optional(Schema.Int)
}) {}

/**
 * The provider refused the gateway's credentials for it.
 *
 * @since 0.1.0
 */
export class ProviderAuthFailed extends Schema.TaggedError<ProviderAuthFailed>()("ProviderAuthFailed", {
  code: Schema.tag("provider_auth_failed"),
  ...base,
  provider: Schema.String,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus)
}) {}

/**
 * The provider answered with a body that does not match its documentation. A submit's
 * answer names the refund, kept as `unknown` (`refundId`, `status`); a status query's
 * records nothing, and the refund keeps its status. An update's (`POST /v1/refunds/{id}/events`)
 * may have been applied: it names the refund and the `status` it keeps, and the message says
 * what settles it (AeroHub: the same update again), as a timed-out update's 504 does.
 *
 * @since 0.1.0
 */
export class UnexpectedResponse extends Schema.TaggedError<UnexpectedResponse>()("UnexpectedResponse", {
  code: Schema.tag("unexpected_response"),
  ...base,
  provider: Schema.String,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus)
}) {}

/**
 * The ledger could not be read or written.
 *
 * @since 0.1.0
 */
export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()("LedgerUnavailable", {
  code: Schema.tag("ledger_error"),
  ...base
}) {}

/**
 * `/readyz`: a dependency is not ready; `checks` says which.
 *
 * @since 0.1.0
 */
export class NotReady extends Schema.TaggedError<NotReady>()("NotReady", {
  code: Schema.tag("not_ready"),
  ...base,
  checks: Schema.Record({ key: Schema.String, value: Schema.String })
}) {}

/**
 * The provider's outcome is unknown after the request may have left (a timeout, or
 * retries that ended on a not-processed answer after an attempt that may have been
 * processed): the refund is `unknown`, is never resent blindly, and is resolved by sync
 * or an operator. An update's (`POST /v1/refunds/{id}/events`) leaves its refund in the
 * status it had, which `status` names, and the message says what settles it (AeroHub:
 * the same update again).
 *
 * @since 0.1.0
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  code: Schema.tag("outcome_unknown"),
  ...base,
  provider: Schema.String,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus)
}) {}

/**
 * A plugin or the gateway is misconfigured.
 *
 * @since 0.1.0
 */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()("ConfigurationError", {
  code: Schema.tag("configuration_error"),
  ...base
}) {}

/**
 * A bug on our side; the request id in `X-Request-Id` finds it in the logs.
 *
 * @since 0.1.0
 */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  code: Schema.tag("internal_error"),
  ...base
}) {}

/**
 * The wire form of an error class: `{"error": {...its fields but _tag}}`, with the
 * HTTP status it is answered with, as `HttpApiEndpoint.addError` takes it.
 *
 * @since 0.1.0
 */
export const response = <Self, I>(
  self: Schema.Schema<Self, I> & { readonly _tag: string; readonly fields: Schema.Struct.Fields },
  status: number,
  description: string
): Schema.Schema<Self, { readonly error: Omit<I, "_tag"> }> => {
  const { _tag: _, ...fields } = self.fields
  const wire = Schema.Struct({ error: Schema.Struct(fields) }).annotations({ identifier: self._tag.endsWith("Error") ? self._tag : `${self._tag}Error`, description })
  return Schema.transform(wire, self, {
    strict: false,
    decode: (encoded) => ({ ...encoded.error, _tag: self._tag }),
    encode: (decoded) => {
      const { _tag: _, ...rest } = decoded as { readonly _tag: string }
      return { error: rest }
    }
  }).annotations(HttpApiSchema.annotations({ status, description })) as unknown as Schema.Schema<Self, { readonly error: Omit<I, "_tag"> }>
}

/**
 * Wire schemas of every error, each with its status.
 *
 * @since 0.1.0
 */
export const Wire = {
  MissingIdempotencyKey: response(MissingIdempotencyKey, 400, "The Idempotency-Key header is missing"),
  InvalidRequest: response(InvalidRequest, 400, "The request is invalid; nothing was sent to the provider"),
  WebhookInvalid: response(WebhookInvalid, 400, "The callback could not be parsed; nothing changed"),
  Unauthorized: response(Unauthorized, 401, "Missing or unknown API key"),
  WebhookUnverified: response(WebhookUnverified, 401, "The callback's signature did not verify; nothing changed"),
  UnknownProvider: response(UnknownProvider, 404, "The provider is not installed"),
  RefundNotFound: response(RefundNotFound, 404, "No refund with this id"),
  RouteNotFound: response(RouteNotFound, 404, "No such route"),
  MethodNotAllowed: response(MethodNotAllowed, 405, "The path does not take this method; Allow names the methods it takes"),
  RefundInProgress: response(RefundInProgress, 409, "The first request with this key is still running"),
  OverRefund: response(OverRefund, 409, "The refund would exceed a target's original amount"),
  TargetAlreadyRefunded: response(
    TargetAlreadyRefunded,
    409,
    "A whole refund of a target another refund (not failed) already names; nothing was sent"
  ),
  SyncUnsupported: response(SyncUnsupported, 409, "The provider has no status API"),
  UnsupportedOperation: response(UnsupportedOperation, 409, "The provider has no such operation"),
  IllegalTransition: response(IllegalTransition, 409, "The change is not allowed from the refund's status"),
  PayloadTooLarge: response(PayloadTooLarge, 413, "The body is larger than the gateway accepts"),
  UnsupportedMediaType: response(
    UnsupportedMediaType,
    415,
    "The body is not declared as JSON: send Content-Type: application/json; nothing was read, sent or recorded"
  ),
  HeadersTooLarge: response(HeadersTooLarge, 431, "The request line and headers are larger than the gateway accepts"),
  IdempotencyKeyReused: response(IdempotencyKeyReused, 422, "The key was used before with another body"),
  ProviderDeclined: response(ProviderDeclined, 422, "The provider declined the action"),
  InternalError: response(InternalError, 500, "A bug in the gateway"),
  ConfigurationError: response(ConfigurationError, 500, "The gateway or a plugin is misconfigured"),
  ProviderUnavailable: response(ProviderUnavailable, 502, "The provider could not be reached or failed"),
  ProviderAuthFailed: response(ProviderAuthFailed, 502, "The provider refused the gateway's credentials"),
  UnexpectedResponse: response(UnexpectedResponse, 502, "The provider answered with an undocumented body"),
  LedgerUnavailable: response(LedgerUnavailable, 503, "The ledger could not be reached"),
  NotReady: response(NotReady, 503, "A dependency is not ready"),
  OutcomeUnknown: response(OutcomeUnknown, 504, "The outcome at the provider is unknown after the request may have left (a timeout, or retries that ended without a verdict)")
} as const

/**
 * Every gateway error.
 *
 * @since 0.1.0
 */
export type ApiError =
  | MissingIdempotencyKey
  | InvalidRequest
  | WebhookInvalid
  | Unauthorized
  | WebhookUnverified
  | UnknownProvider
  | RefundNotFound
  | RouteNotFound
  | MethodNotAllowed
  | RefundInProgress
  | OverRefund
  | TargetAlreadyRefunded
  | SyncUnsupported
  | UnsupportedOperation
  | IllegalTransition
  | PayloadTooLarge
  | UnsupportedMediaType
  | HeadersTooLarge
  | IdempotencyKeyReused
  | ProviderDeclined
  | InternalError
  | ConfigurationError
  | ProviderUnavailable
  | ProviderAuthFailed
  | UnexpectedResponse
  | LedgerUnavailable
  | NotReady
  | OutcomeUnknown
