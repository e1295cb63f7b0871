/**
 * The Exirom card-refund plugin: `make(config)` builds the provider, `layer(config)`
 * and `layerConfig` register it in core's `Providers` registry.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Provider from "@refundkit/core/Provider"
import * as Providers from "@refundkit/core/Providers"
import { RefundId, type Refund } from "@refundkit/core/Refund"
import {
  ConfigurationError,
  InvalidRequest,
  OutcomeUnknown,
  ProviderAuthFailed,
  type ProviderDeclined,
  UnexpectedResponse,
  UnsupportedOperation,
  type ProviderError
} from "@refundkit/core/RefundError"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Checksum from "./internal/checksum.js"
import * as RawJson from "./internal/rawJson.js"
import * as ExiromClient from "./ExiromClient.js"
import * as ExiromConfig from "./ExiromConfig.js"
import { canonicalTarget, ExiromRequest } from "./ExiromRequest.js"
import * as ExiromStatus from "./ExiromStatus.js"
import * as ExiromWire from "./ExiromWire.js"

/**
 * @since 0.1.0
 */
export const id = ExiromStatus.provider

/**
 * What Exirom can do. Submits are idempotent because `requestId` is our refund id,
 * derived from the idempotency key: Exirom answers a repeat with the original
 * response. `rateLimit` is the documented 40 requests per minute; `make` takes it
 * from the config.
 *
 * @since 0.1.0
 */
export const capabilities: Provider.Capabilities = {
  partialRefunds: true,
  maxTargetsPerCall: 1,
  statusQuery: true,
  webhooks: true,
  idempotentSubmit: true,
  updates: false,
  settlement: "money",
  rateLimit: { requests: ExiromConfig.defaultRequestsPerMinute, perMillis: 60_000 }
}

const isRefundId = Schema.is(RefundId)

// A refusal of a resend: the same body under the same requestId after an attempt that may have
// taken effect (a retry after a 500 or a lost answer, or a sync of a refund in doubt). Exirom
// answers a requestId it holds with its original answer, so a 400 or 422 (its verdict on this very
// payload, which the first attempt would have got too) and a 409 (it holds this requestId for
// another payload, not ours) stand. A 404 does not: Exirom documents it for a wrong path as well as
// an unknown transactionId, and a proxy or a misrouted call answers it without Exirom seeing the
// request. Recorded `failed`, the refund would free its payment for a second refund while the first
// may stand; it stays in doubt instead.
const resendRefusal = (declined: ProviderDeclined, requestId: string): ProviderDeclined | OutcomeUnknown =>
  declined.providerCode === "HTTP_404"
    ? new OutcomeUnknown({
      provider: id,
      refundId: requestId,
      detail: `the resend of requestId ${requestId} was answered HTTP 404 (${declined.reason}). A wrong path or a proxy answers 404 too, so it does not show ` +
        `that the earlier attempt was never taken: ask Exirom whether it holds requestId ${requestId} before resolving this refund`
    })
    : declined

/**
 * The body sent for a request: `requestId` is refundkit's refund id, `mid` the
 * request's own or the configured one; `currency` stays home.
 *
 * @since 0.1.0
 */
export const wireBody = (request: ExiromRequest, requestId: string, config: Pick<ExiromConfig.ExiromConfig, "mid">): ExiromWire.RefundBody => ({
  requestId,
  mid: request.mid ?? config.mid,
  transactionId: request.transactionId,
  amount: request.amount,
  reason: request.reason,
  ...(request.callbackUrl === undefined ? {} : { callbackUrl: request.callbackUrl }),
  ...(request.metadata === undefined ? {} : { metadata: request.metadata })
})

/**
 * Builds the provider.
 *
 * @since 0.1.0
 */
export const make = (config: ExiromConfig.ExiromConfig): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* ExiromClient.make(config)
    const { rateLimit: _, ...unlimited } = capabilities

    const send = (request: ExiromRequest, refundId: string): Effect.Effect<Provider.Outcome, ProviderError> =>
      client.refund(wireBody(request, refundId, config)).pipe(
        Effect.flatMap((response) => {
          const reference = ExiromWire.refundIdOf(response)
          return reference === undefined
            ? Effect.fail(new UnexpectedResponse({ provider: id, path: "refundId", detail: "the refund answer names no refundId", httpStatus: 200 }))
            : Effect.succeed(ExiromStatus.outcome({
              ...response,
              refundId: reference,
              references: { refundId: reference, requestId: refundId, transactionId: Provider.integerTarget(request.transactionId) }
            }))
        })
      )

    const submit = (request: ExiromRequest, context: Provider.SubmitContext): Effect.Effect<Provider.Outcome, ProviderError> =>
      context.earlierMayHaveTakenEffect === true
        ? Effect.catchTag(send(request, context.refundId), "ProviderDeclined", (declined) => Effect.fail(resendRefusal(declined, context.refundId)))
        : send(request, context.refundId)

    // Without an Exirom refundId the only way to learn what happened is Exirom's own
    // advice for a request in doubt: send it again with the same requestId, which
    // returns the original answer and cannot refund twice.
    const status = (refund: Refund, request: ExiromRequest): Effect.Effect<Provider.Outcome, ProviderError> => {
      if (refund.providerReference !== undefined) {
        const reference = refund.providerReference
        return Effect.map(client.info(reference), (info) => ExiromStatus.outcome({ ...info, refundId: info.refundId ?? reference }))
      }
      // Core syncs no refund still `requested` (its submit is in flight): this is one in doubt.
      // Exirom answers a requestId it holds with its original answer, so a 400 or 422 refusing
      // the resend says it never took this refund: the refund failed, as the same refusal on the
      // first attempt would have recorded it. A 404 leaves it in doubt (see resendRefusal). A 409
      // is different again: Exirom holds this requestId for another payload, which a person has
      // to look at.
      if (refund.status === "unknown") {
        return send(request, refund.id).pipe(
          Effect.catchTag("ProviderDeclined", (declined): Effect.Effect<Provider.Outcome, ProviderError> => {
            const refusal = resendRefusal(declined, refund.id)
            return refusal._tag === "OutcomeUnknown" || declined.providerCode === "HTTP_409" ? Effect.fail(refusal) : Effect.succeed({
              status: "failed",
              providerStatus: declined.providerCode,
              decline: { providerCode: declined.providerCode, reason: declined.reason, ...(declined.action === undefined ? {} : { action: declined.action }) },
              detail: "resent with the same requestId to settle a refund in doubt; Exirom refused it, so it never took this refund"
            })
          })
        )
      }
      return Effect.fail(
        new UnsupportedOperation({
          provider: id,
          operation: "status queries for a refund Exirom never acknowledged",
          hint: `Refund ${refund.id} has no Exirom refundId and is ${refund.status}: Exirom did not take it.`
        })
      )
    }

    const webhook = (request: Provider.WebhookRequest, context: Provider.WebhookContext): Effect.Effect<ReadonlyArray<Provider.WebhookEvent>, ProviderError> =>
      Effect.gen(function*() {
        const fields = RawJson.members(request.body)
        if (fields === undefined) return yield* InvalidRequest.field("body", "an Exirom callback is a JSON object", id)
        const checksum = request.headers["x-checksum"]
        if (checksum === undefined || !Checksum.messages(fields).some((text) => Checksum.verify(Redacted.value(config.merchantSecret), text, checksum))) {
          return yield* new ProviderAuthFailed({
            provider: id,
            of: "callback",
            detail: checksum === undefined
              ? "the callback has no X-Checksum header"
              : "the callback's X-Checksum does not match its body (a forgery, or REFUNDKIT_EXIROM_MERCHANT_SECRET differs from Exirom's)"
          })
        }
        const callback = yield* Schema.decodeUnknown(Schema.parseJson(ExiromWire.Callback))(request.body).pipe(
          Effect.mapError((error) => InvalidRequest.fromParseError(error, id))
        )
        // X-Checksum covers only mid, amount, currency and transactionId: requestId, refundId and
        // transactionStatus are unsigned, so a captured callback could be replayed naming another
        // refund or another status. The callback is therefore only a hint: which refund it is and
        // what happened to it are read from Exirom itself (GET /v1/refunds/card/info/{refundId}).
        const hinted = callback.refundId ?? undefined
        // Exirom's only documented callback payload, the card one, names no refundId (the refund
        // callback's own is undocumented), and its transactionStatus may be the payment's word.
        // Without a refundId there is nothing to confirm it with, and core's contract has no event
        // that asks for a sync, so nothing is recorded: the refund moves by sync. Acknowledged
        // rather than refused: a refusal only has Exirom redeliver the same words five times.
        if (hinted === undefined) return []
        yield* context.permit
        const info = yield* client.info(hinted)
        const reference = info.refundId ?? hinted
        const requestId = info.requestId ?? undefined
        const ours = requestId !== undefined && isRefundId(requestId) ? requestId : undefined
        const said = ExiromStatus.outcome({ transactionStatus: info.transactionStatus, declineCode: info.declineCode, refundId: reference })
        return [{
          ...(ours === undefined ? {} : { refundId: ours }),
          providerReference: reference,
          dedupeKey: `${info.transactionId}:${info.transactionStatus}`,
          outcome: { ...said, detail: ExiromStatus.callbackDetail(info, said) }
        }]
      })

    return Provider.make({
      id,
      displayName: "Exirom",
      capabilities: config.requestsPerMinute === 0 ? unlimited : { ...unlimited, rateLimit: { requests: config.requestsPerMinute, perMillis: 60_000 } },
      requestSchema: ExiromRequest,
      describe: (request) => ({
        targets: [{ target: Provider.integerTarget(request.transactionId), amount: request.amount }],
        currency: request.currency,
        amount: request.amount
      }),
      submit,
      status,
      webhook,
      statusRank: ExiromStatus.statusRank,
      canonicalTarget
    })
  })

/**
 * The plugin as a Layer over core's registry.
 *
 * @since 0.1.0
 */
export const layer = (config: ExiromConfig.ExiromConfig): Layer.Layer<never, ConfigurationError, Providers.Providers | HttpClient.HttpClient> =>
  Providers.plugin(make(config))

/**
 * The plugin configured from `REFUNDKIT_EXIROM_*`.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError | ConfigurationError, Providers.Providers | HttpClient.HttpClient> =
  Providers.pluginConfig("Exirom", ExiromConfig.config, make)
