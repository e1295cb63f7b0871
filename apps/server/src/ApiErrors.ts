/**
 * Core's errors as the gateway answers them: each `RefundError` becomes the
 * contract's error class with its HTTP status, keeping the stable code, the message
 * and what the caller needs (issues, refund id, status).
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { ApiError } from "@refundkit/api"
import type { Refund } from "@refundkit/core/Refund"
import * as RefundError from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import type * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * Which contract error each core error becomes.
 *
 * @since 0.1.0
 */
export interface Mapping {
  readonly InvalidRequest: ApiError.InvalidRequest
  readonly ProviderAuthFailed: ApiError.ProviderAuthFailed
  readonly ProviderDeclined: ApiError.ProviderDeclined
  readonly ProviderUnavailable: ApiError.ProviderUnavailable
  readonly OutcomeUnknown: ApiError.OutcomeUnknown
  readonly UnexpectedResponse: ApiError.UnexpectedResponse
  readonly IdempotencyKeyReused: ApiError.IdempotencyKeyReused
  readonly RefundInProgress: ApiError.RefundInProgress
  readonly RefundNotFound: ApiError.RefundNotFound
  readonly UnsupportedOperation: ApiError.UnsupportedOperation
  readonly ConfigurationError: ApiError.ConfigurationError
  readonly UnknownProvider: ApiError.UnknownProvider
  readonly IllegalTransition: ApiError.IllegalTransition
  readonly OverRefund: ApiError.OverRefund
  readonly TargetAlreadyRefunded: ApiError.TargetAlreadyRefunded
  readonly LedgerError: ApiError.LedgerUnavailable
}

const retryAfterSeconds = (millis: number | undefined) => (millis === undefined ? {} : { retryAfterSeconds: Math.ceil(millis / 1000) })

/**
 * The API error for a core error.
 *
 * @since 0.1.0
 */
export const fromRefundError = <E extends RefundError.RefundError>(error: E): Mapping[E["_tag"]] => convert(error) as Mapping[E["_tag"]]

// Core's advice names the CLI command (its messages are shared with `refundkit`); the gateway's
// answer names its own route beside it, for a team that runs only the gateway.
const resolveCommand = /`refundkit resolve (\S+) --status (succeeded|failed)( --release-targets)?(?: --failed-target (\S+))? --note "\.\.\."`/g
const resolveMention = /\(refundkit resolve\)/g
const getCommand = /`refundkit get (\S+)`/g
// A plugin's advice (its status hint) offers both verdicts, in the CLI's and the library's words.
const resolveEither = /`refundkit resolve (\S+) --status succeeded\|failed --note \.\.\.`(?: \(or Refunds\.resolve\))?/g

/**
 * `message` with the gateway's own routes named beside the CLI commands core's advice spells out:
 * `POST /v1/refunds/{id}/resolve` wherever it advises `refundkit resolve`, beside each command (with the
 * body that does the same) and in the in-doubt advice (`(refundkit resolve)`) with the refund's id where
 * the error has one, and `GET /v1/refunds/{id}` beside `refundkit get <id>`, and beside a plugin's advice offering
 * both verdicts (`refundkit resolve <id> --status succeeded|failed`, in place of the library's `Refunds.resolve`).
 *
 * @since 0.6.0
 */
export const withGatewayRoutes = (message: string, refundId: string | undefined): string =>
  message
    .replace(getCommand, (command, id: string) => `${command} (over HTTP: \`GET /v1/refunds/${id}\`)`)
    .replace(resolveCommand, (command, id: string, status: string, release: string | undefined, failedTarget: string | undefined) =>
      `${command} (over HTTP: \`POST /v1/refunds/${id}/resolve\` with \`{"status": "${status}", ${release === undefined ? "" : "\"releaseTargets\": true, "}${
        failedTarget === undefined ? "" : `"failedTargets": [${JSON.stringify(failedTarget)}], `
      }"note": "..."}\`)`)
    .replace(resolveMention, `(refundkit resolve, or POST /v1/refunds/${refundId ?? "{id}"}/resolve)`)
    .replace(resolveEither, (_, id: string) =>
      `\`refundkit resolve ${id} --status succeeded|failed --note ...\` (over HTTP: \`POST /v1/refunds/${id}/resolve\` with \`{"status": "succeeded" | "failed", "note": "..."}\`)`)

/**
 * @since 0.6.0
 * @deprecated the same as {@link withGatewayRoutes}, which names every route the advice mentions
 */
export const withResolveRoute = withGatewayRoutes

const convert = (error: RefundError.RefundError): ApiError.ApiError => {
  const message = withGatewayRoutes(error.message, "refundId" in error ? error.refundId : undefined)
  switch (error._tag) {
    case "InvalidRequest":
      return new ApiError.InvalidRequest({ message, issues: error.issues, ...(error.provider === undefined ? {} : { provider: error.provider }) })
    case "ProviderAuthFailed":
      return new ApiError.ProviderAuthFailed({
        message,
        provider: error.provider,
        ...(error.refundId === undefined ? {} : { refundId: error.refundId }),
        ...(error.status === undefined ? {} : { status: error.status })
      })
    case "ProviderDeclined":
      return new ApiError.ProviderDeclined({
        message,
        provider: error.provider,
        providerCode: error.providerCode,
        ...(error.refundId === undefined ? {} : { refundId: error.refundId })
      })
    case "ProviderUnavailable":
      return new ApiError.ProviderUnavailable({
        message,
        provider: error.provider,
        ...(error.refundId === undefined ? {} : { refundId: error.refundId }),
        ...(error.status === undefined ? {} : { status: error.status }),
        ...retryAfterSeconds(error.retryAfterMillis)
      })
    case "OutcomeUnknown":
      // An update's keeps its refund's status (`status`); a submit's leaves the refund `unknown`.
      return new ApiError.OutcomeUnknown({
        message,
        provider: error.provider,
        ...(error.refundId === undefined ? {} : { refundId: error.refundId, status: error.status ?? "unknown" })
      })
    case "UnexpectedResponse":
      // An update's keeps its refund's status, as a timed-out update's does; a submit's leaves the refund `unknown`.
      return new ApiError.UnexpectedResponse({
        message,
        provider: error.provider,
        ...(error.refundId === undefined ? {} : { refundId: error.refundId, status: error.status ?? "unknown" })
      })
    case "IdempotencyKeyReused":
      return new ApiError.IdempotencyKeyReused({ message, refundId: error.refundId })
    case "RefundInProgress":
      return new ApiError.RefundInProgress({ message, refundId: error.refundId })
    case "RefundNotFound":
      return new ApiError.RefundNotFound({ message, refundId: error.refundId })
    case "UnsupportedOperation":
      return new ApiError.UnsupportedOperation({ message, provider: error.provider, operation: error.operation })
    case "ConfigurationError":
      return new ApiError.ConfigurationError({ message })
    case "UnknownProvider":
      return new ApiError.UnknownProvider({ message, provider: error.provider, installed: error.installed })
    case "IllegalTransition":
      return new ApiError.IllegalTransition({ message, refundId: error.refundId, from: error.from, to: error.to })
    case "OverRefund":
      return new ApiError.OverRefund({
        message,
        target: error.target,
        requested: error.requested,
        remaining: error.remaining,
        currency: error.currency,
        ...(error.blockedBy === undefined ? {} : { blockedBy: error.blockedBy }),
        ...(error.heldBy === undefined ? {} : { heldBy: error.heldBy }),
        ...(error.heldByCount === undefined ? {} : { heldByCount: error.heldByCount })
      })
    case "TargetAlreadyRefunded":
      return new ApiError.TargetAlreadyRefunded({ message, target: error.target, refundId: error.refundId, status: error.status })
    case "LedgerError":
      return new ApiError.LedgerUnavailable({ message })
  }
}

/**
 * What a replayed create answers instead of the refund, when its first answer was an error.
 *
 * @since 0.6.0
 */
export type ReplayedError = ApiError.ProviderUnavailable | ApiError.ProviderAuthFailed | ApiError.UnexpectedResponse | ApiError.OutcomeUnknown

/**
 * The error a create replayed under its key answers (core's `Refunds.replayedError`): the 502 or
 * 504 its first request was answered with, while the refund still stands where that left it; a
 * 200 with the refund would tell a client that retries 502s the refund was made.
 *
 * @since 0.6.0
 */
export const fromReplay = (refund: Refund): ReplayedError | undefined => {
  const recorded = Refunds.replayedError(refund)
  if (recorded === undefined) return undefined
  const named = { message: withGatewayRoutes(recorded.message, refund.id), provider: refund.provider, refundId: refund.id, status: refund.status }
  switch (recorded.code) {
    case "provider_unavailable":
      return new ApiError.ProviderUnavailable({ ...named, ...retryAfterSeconds(recorded.retryAfterMillis) })
    case "provider_auth_failed":
      return new ApiError.ProviderAuthFailed(named)
    case "unexpected_response":
      return new ApiError.UnexpectedResponse(named)
    default:
      return new ApiError.OutcomeUnknown(named)
  }
}

/**
 * A `sync` on a provider without a status API is `sync_unsupported`, not the generic
 * `unsupported_operation`.
 *
 * @since 0.1.0
 */
export const fromSyncError = (refundId: string) =>
<E extends RefundError.RefundError>(error: E): ApiError.SyncUnsupported | Mapping[Exclude<E["_tag"], "UnsupportedOperation">] =>
  error._tag === "UnsupportedOperation"
    ? new ApiError.SyncUnsupported({ message: withGatewayRoutes(error.message, refundId), provider: (error as RefundError.UnsupportedOperation).provider, refundId })
    : fromRefundError(error) as Mapping[Exclude<E["_tag"], "UnsupportedOperation">]

// A callback's failed signature names the caller's mistake, not refundkit's settings: anyone can
// post to the route. Only the provider's own callbacks failing it point at the secret they are checked with.
const unverified = (error: RefundError.ProviderAuthFailed): string => `failed verification: ${error.detail}. Nothing was changed.`

// The plugin's own call while handling a verified callback (Exirom's confirming lookup) was refused or
// misunderstood: a failure on refundkit's side of the provider, which may deliver the callback again.
const unconfirmed = (provider: string, why: string): string =>
  `could not be confirmed with ${provider}: ${why} Nothing was changed; the callback may be delivered again.`

/**
 * The warning logged for a callback refused because it did not verify, could not be read or could not
 * be confirmed with the provider; `undefined` for the other refusals (a provider not installed, or
 * without webhooks), which say nothing an operator must act on. It says what the HTTP answer says, to
 * an operator: a signature that does not verify is the caller's (anyone can post to the route) and
 * points at the webhook secret only if the provider's own callbacks fail it.
 *
 * @since 0.6.0
 */
export const webhookWarning = (provider: string, error: RefundError.RefundError): string | undefined => {
  const callback = `a callback to /v1/webhooks/${provider}`
  switch (error._tag) {
    case "ProviderAuthFailed":
      return error.of === "callback"
        ? `${callback} ${unverified(error)} If ${provider}'s own callbacks are refused like this, the webhook secret refundkit verifies them with ` +
          `(a REFUNDKIT_${provider.toUpperCase()}_* setting) may be wrong.`
        : `${callback} ${unconfirmed(provider, error.message)}`
    case "InvalidRequest":
      return `${callback} could not be read: ${RefundError.describeIssues(error.issues)}. Nothing was changed.`
    case "UnexpectedResponse":
      return `${callback} ${unconfirmed(provider, `${error.detail}.`)}`
    default:
      return undefined
  }
}

/**
 * A webhook the plugin could not verify (401) or parse (400); both change nothing. A refusal of
 * refundkit's own call while confirming a verified callback is 502: the provider delivers it again.
 *
 * @since 0.1.0
 */
export const fromWebhookError = (provider: string) =>
(
  error: RefundError.RefundError
):
  | ApiError.WebhookUnverified
  | ApiError.WebhookInvalid
  | ApiError.UnknownProvider
  | ApiError.UnsupportedOperation
  | ApiError.ProviderUnavailable
  | ApiError.LedgerUnavailable
  | ApiError.ConfigurationError =>
{
  switch (error._tag) {
    case "ProviderAuthFailed":
      return error.of === "callback"
        ? new ApiError.WebhookUnverified({ message: `The ${provider} callback ${unverified(error)}`, provider })
        : new ApiError.ProviderUnavailable({ message: `The ${provider} callback ${unconfirmed(provider, error.message)}`, provider })
    case "UnknownProvider":
    case "UnsupportedOperation":
    case "ProviderUnavailable":
    case "LedgerError":
    case "ConfigurationError":
      return fromRefundError(error)
    case "OutcomeUnknown":
      return new ApiError.ProviderUnavailable({ message: error.message, provider })
    // The callback verified, but the provider's own answer to the lookup that confirms it
    // did not (a 404 for a refund it is still creating, a body of the wrong shape): the
    // provider is the one to ask again later, as with any failed lookup.
    case "UnexpectedResponse":
      return new ApiError.ProviderUnavailable({ message: `The ${provider} callback ${unconfirmed(provider, `${error.detail}.`)}`, provider })
    case "InvalidRequest":
      // Core's message speaks of a refund request not sent; this is a callback received.
      return new ApiError.WebhookInvalid({ message: `The ${provider} callback could not be read: ${RefundError.describeIssues(error.issues)}. Nothing was changed.`, provider })
    default:
      return new ApiError.WebhookInvalid({ message: `The ${provider} callback could not be read: ${error.message} Nothing was changed.`, provider })
  }
}

/**
 * A query the list could not use (a `cursor` this ledger did not issue): core's message
 * speaks of a refund request not sent, which a listing is not.
 *
 * @since 0.1.0
 */
export const fromListError = <E extends RefundError.RefundError>(error: E): Mapping[E["_tag"]] => {
  const narrowed: RefundError.RefundError = error
  return (narrowed._tag === "InvalidRequest"
    ? new ApiError.InvalidRequest({ message: `The query is invalid: ${RefundError.describeIssues(narrowed.issues)}.`, issues: narrowed.issues })
    : convert(narrowed)) as Mapping[E["_tag"]]
}

type Wire = typeof ApiError.Wire

/**
 * Each contract error's HTTP status and wire body encoder, for answers written
 * outside HttpApi (the direct create route, the parser's refusals).
 *
 * @since 0.1.0
 */
export const encoders = Object.fromEntries(
  Object.entries(ApiError.Wire).map(([tag, schema]) => [
    tag,
    {
      status: HttpApiSchema.getStatusError(schema),
      encode: Schema.encodeEither(schema as unknown as Schema.Schema<ApiError.ApiError, unknown>)
    }
  ])
  // Each error's wire schema is the one under its own tag in `ApiError.Wire`; TypeScript
  // cannot follow that correlation through an indexed access, hence the one widening here.
) as { readonly [K in keyof Wire]: { readonly status: number; readonly encode: (error: ApiError.ApiError) => Either.Either<unknown, unknown> } }
