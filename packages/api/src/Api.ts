/**
 * The gateway's HttpApi: its groups, endpoints, payloads, successes and errors. The
 * server implements it; a TypeScript user derives a typed client from it with
 * `HttpApiClient.make(Api, { baseUrl })` without installing the server.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import { Wire } from "./ApiError.js"
import * as ApiModel from "./ApiModel.js"
import { Authorization } from "./Authorization.js"

/**
 * Refunds: create (idempotent), get, list, sync, follow-up events, an operator's verdict.
 *
 * @since 0.1.0
 */
export class RefundsGroup extends HttpApiGroup.make("refunds")
  .add(
    HttpApiEndpoint.post("create", "/v1/refunds")
      .setPayload(ApiModel.CreateRefund)
      .setHeaders(ApiModel.IdempotencyHeaders)
      .addSuccess(ApiModel.RefundResponse, { status: 201 })
      .addSuccess(ApiModel.ReplayedRefund, { status: 200 })
      .addError(Wire.MissingIdempotencyKey)
      .addError(Wire.UnsupportedMediaType)
      .addError(Wire.UnknownProvider)
      .addError(Wire.RefundInProgress)
      .addError(Wire.OverRefund)
      .addError(Wire.TargetAlreadyRefunded)
      .addError(Wire.IdempotencyKeyReused)
      .addError(Wire.ProviderUnavailable)
      .addError(Wire.ProviderAuthFailed)
      .addError(Wire.UnexpectedResponse)
      .addError(Wire.OutcomeUnknown)
      .annotateContext(OpenApi.annotations({
        summary: "Create a refund",
        description:
          "A body not sent as `Content-Type: application/json` is 415 unsupported_media_type, nothing read or sent. " +
          "Validates the body against the provider's schema (400 invalid_request, nothing sent), claims the Idempotency-Key, " +
          "and submits the refund. 201 with the refund whatever the provider said (a decline is a refund in status `failed`); " +
          "200 with `Idempotent-Replayed: true` for the same key and body again, unless the first answer was a 502 or 504 naming the refund " +
          "and the refund still stands where it left it (recorded `failed` by that submit, or still `unknown`): then the same error again, " +
          "with `Idempotent-Replayed: true`; a new attempt needs a new key. A target named without an amount is refunded " +
          "whole: 409 target_already_refunded, nothing sent, while another refund against it (any key) has not failed, " +
          "or failed but is kept on the target by its provider (an AeroHub order it closed)."
      }))
  )
  .add(
    HttpApiEndpoint.get("list", "/v1/refunds")
      .setUrlParams(ApiModel.ListQuery)
      .addSuccess(ApiModel.RefundPage)
      .annotateContext(OpenApi.annotations({
        summary: "List refunds, newest first",
        description: "400 invalid_request naming the field for a `provider` that is not installed (the message lists the installed ones: " +
          "a typo must not read as \"no refunds\"), a `status` not in the list, a `target` without a `provider`, a `limit` outside 1 to 500, " +
          "a `createdFrom` or `createdTo` that is not a timestamp with an offset or a date, a `createdFrom` after `createdTo`, or a `cursor` this ledger did not issue " +
          "(or one of a list with creation bounds given to one without them, or the other way round). " +
          "`provider` and `target` together list the refunds against one of that provider's transactions (or eSIMs, or orders). " +
          "`createdFrom` (inclusive) and `createdTo` (exclusive) select by `createdAt` (2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00, or 2026-12-06 for midnight UTC; " +
          "finer than a millisecond rounds up to the next one) and combine with every other filter and the cursor; with either, the page is ordered by `createdAt`, " +
          "newest first, rather than by the order the ledger recorded the refunds in (gateways' clocks may disagree)."
      }))
  )
  .add(
    HttpApiEndpoint.get("get", "/v1/refunds/:id")
      .setPath(ApiModel.RefundPath)
      .addSuccess(ApiModel.RefundResponse)
      .addError(Wire.RefundNotFound)
      .annotateContext(OpenApi.annotations({ summary: "Get a refund with its event history" }))
  )
  .add(
    HttpApiEndpoint.post("sync", "/v1/refunds/:id/sync")
      .setPath(ApiModel.RefundPath)
      .addSuccess(ApiModel.RefundResponse)
      .addError(Wire.RefundNotFound)
      .addError(Wire.UnknownProvider)
      .addError(Wire.SyncUnsupported)
      .addError(Wire.IllegalTransition)
      .addError(Wire.ProviderDeclined)
      .addError(Wire.ProviderUnavailable)
      .addError(Wire.ProviderAuthFailed)
      .addError(Wire.UnexpectedResponse)
      .addError(Wire.OutcomeUnknown)
      .annotateContext(OpenApi.annotations({
        summary: "Ask the provider for the refund's current status",
        description: "Takes no body (one sent is not read, whatever its Content-Type). " +
          "409 sync_unsupported for providers without a status API, and for a refund still `requested` (its submit is in flight; it is synced once it has an outcome, or once recovery made it `unknown`)."
      }))
  )
  .add(
    HttpApiEndpoint.post("update", "/v1/refunds/:id/events")
      .setPath(ApiModel.RefundPath)
      .setPayload(Schema.Unknown.annotations({ description: "The provider's follow-up schema (e.g. an AeroHub progress update)" }))
      .addSuccess(ApiModel.RefundResponse)
      .addError(Wire.UnsupportedMediaType)
      .addError(Wire.RefundNotFound)
      .addError(Wire.UnknownProvider)
      .addError(Wire.UnsupportedOperation)
      .addError(Wire.IllegalTransition)
      .addError(Wire.ProviderDeclined)
      .addError(Wire.ProviderUnavailable)
      .addError(Wire.ProviderAuthFailed)
      .addError(Wire.UnexpectedResponse)
      .addError(Wire.OutcomeUnknown)
      .annotateContext(OpenApi.annotations({
        summary: "Send a provider-specific follow-up action on a refund",
        description: "A body not sent as `Content-Type: application/json` is 415 unsupported_media_type, nothing read or sent."
      }))
  )
  .add(
    HttpApiEndpoint.post("resolve", "/v1/refunds/:id/resolve")
      .setPath(ApiModel.RefundPath)
      .setPayload(ApiModel.ResolveRefund)
      .addSuccess(ApiModel.RefundResponse)
      .addError(Wire.UnsupportedMediaType)
      .addError(Wire.RefundNotFound)
      .addError(Wire.IllegalTransition)
      .addError(Wire.TargetAlreadyRefunded)
      .addError(Wire.OverRefund)
      .annotateContext(OpenApi.annotations({
        summary: "Record an operator's verdict on a refund",
        description:
          "For a refund still `unknown`, or at a provider with no status query, once its outcome has been checked with the provider: " +
          "`status` `succeeded` or `failed`, and a `note` saying how it was checked, kept in the refund's history as an `operator` event. " +
          "Nothing is sent to any provider. 200 with the refund. A body not sent as `Content-Type: application/json` is 415 unsupported_media_type; " +
          "a body that is not a verdict (a missing or blank `note`, another `status`, an unknown field, `releaseTargets` without `failed`) is 400 invalid_request naming the field. " +
          "409 illegal_transition, nothing changed, for a refund still `requested` (its first call is out, and its answer settles it), one already final " +
          "(`succeeded` or `failed`), and `failed` for a refund whose items show a target the provider refunded or is refunding (resolve it `succeeded`). " +
          "A repeat of the verdict that settled the refund (the same `status`, `note`, `releaseTargets`, `failedTargets` and `correct`, as its event's `verdict` records them) " +
          "is answered 200 with `Idempotent-Replayed: true` and the refund as it stands, changing nothing, so a client may retry after a lost answer. " +
          "`releaseTargets: true` with `failed` frees the targets of a failed refund its provider keeps on them (`holdsTarget`, an AeroHub order it closed), " +
          "for when the provider has said it will take a new refund of them, and of a refund its provider took back after reporting it succeeded " +
          "(a reversal or a chargeback, in `requires_action`), which `failed` alone records failed with its targets still held. " +
          "`correct: true` replaces a verdict an operator recorded with the other final status (`succeeded` by `failed`, or `failed` by `succeeded`), " +
          "as `refundkit resolve --correct`: the event records which verdict it corrects. 400 invalid_request naming `correct` for a refund with no verdict to correct " +
          "(not final: send the verdict without `correct`) and for one already in that status (nothing to correct); 409 illegal_transition for a final status " +
          "the provider set, which is never corrected by hand. A correction to `succeeded` takes the refund's targets back: 409 target_already_refunded " +
          "(`refundId` names the refund that holds the target) or over_refund (the refunds made meanwhile would exceed the original amount), nothing changed, " +
          "while a refund made since it stood failed holds one."
      }))
  )
  .add(
    HttpApiEndpoint.post("reopen", "/v1/refunds/:id/reopen")
      .setPath(ApiModel.RefundPath)
      .setPayload(ApiModel.ReopenRefund)
      .addSuccess(ApiModel.RefundResponse)
      .addError(Wire.UnsupportedMediaType)
      .addError(Wire.RefundNotFound)
      .addError(Wire.IllegalTransition)
      .addError(Wire.TargetAlreadyRefunded)
      .addError(Wire.OverRefund)
      .annotateContext(OpenApi.annotations({
        summary: "Reopen a final refund the provider set, for a person to settle",
        description:
          "For a refund whose final status the provider set and whose dashboard says otherwise, at a provider that will not say so itself " +
          "(Airpay, Airalo and AeroHub have no status query and no callback after success): a reversal or chargeback of a `succeeded` refund, " +
          "or a `failed` one refunded after all. `note` says why. The refund moves to `requires_action` with an `operator` event whose `verdict` " +
          "has `reopen: true`, and holds its targets until a verdict (`POST /v1/refunds/{id}/resolve`) settles it: `failed` keeps them held unless " +
          "`releaseTargets`. Nothing is sent to any provider. 200 with the refund. A body not sent as `Content-Type: application/json` is 415 " +
          "unsupported_media_type; a body that is not a reopen (a missing or blank `note`, an unknown field) is 400 invalid_request naming the field. " +
          "409 illegal_transition, nothing changed, for a refund not final (settle it with resolve) and for a final status an operator's verdict set " +
          "(correct it with resolve and `correct: true`). A reopened `failed` takes its targets back: 409 target_already_refunded (`refundId` names " +
          "the refund that holds the target) or over_refund, nothing changed, while a refund made since holds one. A repeat of the reopen that moved " +
          "the refund (the same `note`, as its event's `verdict` records it), while nothing has moved it since, is answered 200 with " +
          "`Idempotent-Replayed: true` and the refund as it stands."
      }))
  )
  .middleware(Authorization)
{}

/**
 * Installed providers, their capabilities and request schemas.
 *
 * @since 0.1.0
 */
export class ProvidersGroup extends HttpApiGroup.make("providers")
  .add(
    HttpApiEndpoint.get("list", "/v1/providers")
      .addSuccess(ApiModel.ProviderList)
      .annotateContext(OpenApi.annotations({ summary: "Installed providers, their capabilities and request JSON Schemas" }))
  )
  .middleware(Authorization)
{}

/**
 * Provider callbacks. No API key: each provider's signature is the authentication.
 *
 * @since 0.1.0
 */
export class WebhooksGroup extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("receive", "/v1/webhooks/:provider")
      .setPath(Schema.Struct({ provider: Schema.String }))
      .setPayload(ApiModel.WebhookBody)
      .addSuccess(ApiModel.WebhookAck)
      .addError(Wire.WebhookInvalid)
      .addError(Wire.WebhookUnverified)
      .addError(Wire.UnknownProvider)
      .addError(Wire.UnsupportedOperation)
      .addError(Wire.ProviderUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Receive a provider callback",
        description:
          "Verified callbacks move the refund through the transition table; duplicates and out-of-order callbacks are " +
          "acknowledged and change nothing. A duplicate is a callback whose key (the event's `callbackKey`) the refund's history records " +
          "already, decided as the event is recorded, so deliveries of one callback to several gateways at once record it once and " +
          "the others are answered `applied: false`, `reason: \"duplicate callback\"`. An unverified (401) or unparsable (400) one changes nothing."
      }))
  )
{}

/**
 * Liveness and readiness.
 *
 * @since 0.1.0
 */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(ApiModel.Health))
  .add(HttpApiEndpoint.get("readyz", "/readyz").addSuccess(ApiModel.Readiness).addError(Wire.NotReady))
{}

/**
 * The gateway's metrics for Prometheus, behind the API key like `/v1`.
 *
 * @since 0.4.0
 */
export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotateContext(OpenApi.annotations({
        summary: "Metrics in Prometheus' text format",
        description:
          "Requests by method, route and status code with their durations and provider time; `refundkit_refunds`, the " +
          "ledger's refunds in `requested`, `unknown` and `requires_action` by provider, counted at each scrape " +
          "(`refundkit_ledger_up` 0 when the count failed); the process's CPU, memory and event-loop delay. Scrape it with " +
          "the API key as a bearer token (Prometheus' `authorization: {credentials: …}`)."
      }))
  )
  .middleware(Authorization)
{}

// HttpApi answers a request it cannot decode with its own HttpApiDecodeError; the
// gateway turns that into `invalid_request`, so the document must not promise the former.
// Effect renders `Schema.Unknown` as `{"$id": "/schemas/unknown"}`, and an `$id` used
// twice makes the document invalid OpenAPI 3.1: any JSON is `{}`.
const decodeErrorDescription = "The request did not match the expected schema"
const clean = (spec: Record<string, unknown>): Record<string, unknown> => {
  const ref = "#/components/schemas/HttpApiDecodeError"
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip)
    if (node === null || typeof node !== "object") return node
    const out: Record<string, unknown> = {}
    const unknownSchema = (node as { $id?: unknown }).$id === "/schemas/unknown"
    for (const [key, value] of Object.entries(node)) {
      if (unknownSchema && (key === "$id" || (key === "title" && value === "unknown"))) continue
      if ((key === "anyOf" || key === "oneOf") && Array.isArray(value)) {
        const kept = value.filter((v) => !(v !== null && typeof v === "object" && (v as { $ref?: unknown }).$ref === ref)).map(strip)
        if (kept.length === 1) Object.assign(out, kept[0] as object)
        else out[key] = kept
      } else if (key === "description" && value === decodeErrorDescription) {
        out[key] = "The request is invalid"
      } else {
        out[key] = strip(value)
      }
    }
    return out
  }
  const stripped = strip(spec) as { components?: { schemas?: Record<string, unknown> } } & Record<string, unknown>
  const schemas = stripped.components?.schemas
  if (schemas !== undefined) {
    delete schemas.HttpApiDecodeError
    delete schemas.Issue
  }
  return withResponseHeaders(stripped)
}

const header = (description: string) => ({ description, schema: { type: "string" } })

// HttpApi has no place for response headers, so they are written into the document here.
const responseHeaders = {
  "X-Request-Id": header("The request's id (the client's own X-Request-Id when it sent one); the gateway's log lines carry it."),
  "Server-Timing": header("`app;dur=<ms>, provider;dur=<ms>`: the gateway's own time and the time spent waiting on providers."),
  "Location": header("The created refund's URL, `/v1/refunds/{id}`."),
  "Idempotent-Replayed": header(
    "`true`: this answer replays the one given earlier for this key and body (the refund, or the 502/504 its create was answered with while the refund still stands there); " +
      "on a verdict, it repeats the verdict that settled the refund, and on a reopen the reopen that moved it, and nothing changed."
  ),
  "Retry-After": header("Seconds to wait before sending again, when the provider named its wait (the body's `retryAfterSeconds`)."),
  "WWW-Authenticate": header("`Bearer realm=\"refundkit\"`, with `error=\"invalid_token\"` when the key sent is not a configured one.")
}

type Operation = { responses?: Record<string, { headers?: Record<string, unknown> }>; security?: ReadonlyArray<unknown> }

const withResponseHeaders = (spec: Record<string, unknown>): Record<string, unknown> => {
  const refTo = (name: keyof typeof responseHeaders) => ({ [name]: { $ref: `#/components/headers/${name}` } })
  const paths = (spec.paths ?? {}) as Record<string, Record<string, Operation>>
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const bearer = (operation.security ?? [{}]).length > 0
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        response.headers = {
          ...refTo("X-Request-Id"),
          ...refTo("Server-Timing"),
          ...(path === "/v1/refunds" && method === "post" && status === "201" ? refTo("Location") : {}),
          ...(path === "/v1/refunds" && method === "post" && (status === "200" || status === "502" || status === "504") ? refTo("Idempotent-Replayed") : {}),
          ...((path === "/v1/refunds/{id}/resolve" || path === "/v1/refunds/{id}/reopen") && method === "post" && status === "200" ? refTo("Idempotent-Replayed") : {}),
          ...(status === "502" ? refTo("Retry-After") : {}),
          ...(status === "401" && bearer ? refTo("WWW-Authenticate") : {})
        }
      }
    }
  }
  const components = (spec.components ?? {}) as Record<string, unknown>
  return { ...spec, components: { ...components, headers: responseHeaders } }
}

/**
 * The gateway API.
 *
 * @since 0.1.0
 */
export class Api extends HttpApi.make("refundkit")
  .add(RefundsGroup)
  .add(ProvidersGroup)
  .add(WebhooksGroup)
  .add(HealthGroup)
  .add(MetricsGroup)
  .addError(Wire.InvalidRequest)
  .addError(Wire.PayloadTooLarge)
  .addError(Wire.HeadersTooLarge)
  .addError(Wire.LedgerUnavailable)
  .addError(Wire.ConfigurationError)
  .addError(Wire.InternalError)
  .annotateContext(OpenApi.annotations({
    title: "refundkit gateway",
    version: "0.1.0",
    description:
      "One HTTP API for every installed refund provider. JSON everywhere: a body sent to `/v1/refunds` carries " +
      "`Content-Type: application/json` (415 unsupported_media_type otherwise; provider callbacks are taken as their providers send them); errors are " +
      '`{"error": {"code", "message", "issues"?, "refundId"?}}`. Every response carries `Server-Timing` ' +
      "(`app` is the gateway's own time, `provider` the time spent waiting on providers) and `X-Request-Id`.",
    license: { name: "MIT" },
    transform: clean
  }))
{}
