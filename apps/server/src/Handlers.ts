/**
 * The gateway's implementation of the contract: one Layer per HttpApi group. Nothing
 * here is provider-specific: each call goes to core's Refunds service, and core
 * errors become the contract's through `ApiErrors`.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Api, ApiError, ApiModel, type Authorization } from "@refundkit/api"
import { Providers } from "@refundkit/core/Providers"
import { InvalidRequest } from "@refundkit/core/RefundError"
import { Refunds } from "@refundkit/core/Refunds"
import { SqlLedger } from "@refundkit/ledger-sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ApiErrors from "./ApiErrors.js"
import { bodyText } from "./RequestMiddleware.js"
import { SyncLoop } from "./SyncLoop.js"

const printable = /^[\x20-\x7e]{1,255}$/

// The Either decoder: the Effect one costs several times as much on every create.
const decodeCreate = Schema.decodeUnknownEither(ApiModel.CreateRefund, { errors: "all" })

// Deeper than any provider's request; deeper bodies are refused before a Schema walks them.
const maxDepth = 32

/** The nesting depth of a JSON value, without recursion: a hostile body must not exhaust the stack. */
const depthOf = (value: unknown): number => {
  let deepest = 0
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!
    if (current === null || typeof current !== "object") continue
    if (depth > deepest) deepest = depth
    if (deepest > maxDepth) return deepest
    for (const child of Object.values(current)) stack.push([child, depth + 1])
  }
  return deepest
}

/** A JSON object body, or the reason it is not one, naming the body. */
const parseJson = (text: string): Effect.Effect<Record<string, unknown>, ApiError.InvalidRequest> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) =>
      new ApiError.InvalidRequest({
        message: "The request body is not valid JSON.",
        issues: [{ path: "body", message: `not valid JSON${error instanceof Error ? `: ${error.message}` : ""}` }]
      })
  }).pipe(
    Effect.filterOrFail(
      (value): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value),
      (value) =>
        invalidBody("The request body must be a JSON object.", [
          { path: "body", message: `must be a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}` }
        ])
    ),
    Effect.filterOrFail(
      (value) => depthOf(value) <= maxDepth,
      () => invalidBody(`The request body is nested too deeply.`, [{ path: "body", message: `must be nested at most ${maxDepth} levels deep` }])
    )
  )

const invalidBody = (message: string, issues: ReadonlyArray<{ readonly path: string; readonly message: string }>) =>
  new ApiError.InvalidRequest({ message, issues })

/**
 * `/v1/refunds`: create and events read their bodies themselves, so a body that is
 * not JSON, too large, or missing `provider` answers in the gateway's shape, and the
 * Idempotency-Key is checked before the body is read.
 *
 * @since 0.1.0
 */
export const refunds: Layer.Layer<
  HttpApiGroup.ApiGroup<"refundkit", "refunds">,
  never,
  Refunds | Authorization.Authorization
> = HttpApiBuilder.group(Api.Api, "refunds", (handlers) =>
  Effect.gen(function*() {
    const service = yield* Refunds
    return handlers
      .handleRaw("create", ({ headers, request }) =>
        Effect.gen(function*() {
          const key = headers["idempotency-key"]
          if (key === "") {
            return yield* new ApiError.MissingIdempotencyKey({ message: "The Idempotency-Key header is empty: send a unique key per refund." })
          }
          if (!printable.test(key)) {
            return yield* invalidBody("The Idempotency-Key header must be 1 to 255 printable ASCII characters.", [
              { path: "Idempotency-Key", message: "must be 1 to 255 printable ASCII characters" }
            ])
          }
          const text = yield* bodyText(request)
          const json = yield* parseJson(text)
          const body = yield* decodeCreate(json).pipe(
            Effect.mapError((error) => ApiErrors.fromRefundError(InvalidRequest.fromParseError(error)))
          )
          const { originalAmounts, provider, ...providerRequest } = body
          const created = yield* service.create({
            provider,
            request: providerRequest,
            idempotencyKey: key,
            originalAmounts
          }).pipe(Effect.mapError(ApiErrors.fromRefundError))
          return created.replayed
            ? HttpServerResponse.unsafeJson(created.refund, { status: 200, headers: { "idempotent-replayed": "true" } })
            : HttpServerResponse.unsafeJson(created.refund, { status: 201 })
        }))
      .handle("list", ({ urlParams }) =>
        service.list({
          provider: urlParams.provider,
          status: urlParams.status,
          limit: urlParams.limit ?? 50,
          cursor: urlParams.cursor
        }).pipe(
          Effect.map((page) => (page.nextCursor === undefined ? { items: page.items } : { items: page.items, nextCursor: page.nextCursor })),
          Effect.mapError(ApiErrors.fromRefundError)
        ))
      .handle("get", ({ path }) => service.get(path.id).pipe(Effect.mapError(ApiErrors.fromRefundError)))
      .handle("sync", ({ path }) => service.sync(path.id).pipe(Effect.mapError(ApiErrors.fromSyncError(path.id))))
      .handleRaw("update", ({ path, request }) =>
        Effect.gen(function*() {
          const input = yield* Effect.flatMap(bodyText(request), parseJson)
          const refund = yield* service.update(path.id, input).pipe(Effect.mapError(ApiErrors.fromRefundError))
          return HttpServerResponse.unsafeJson(refund)
        }))
  }))

/**
 * `/v1/providers`: computed once, since the installed plugins do not change while
 * the gateway runs.
 *
 * @since 0.1.0
 */
export const providers: Layer.Layer<
  HttpApiGroup.ApiGroup<"refundkit", "providers">,
  never,
  Providers | Authorization.Authorization
> = HttpApiBuilder.group(Api.Api, "providers", (handlers) =>
  Effect.gen(function*() {
    const installed = yield* Effect.flatMap(Providers, (registry) => registry.all)
    const list = {
      providers: installed.map((p) => ({
        id: p.id,
        displayName: p.displayName,
        capabilities: p.capabilities,
        requestSchema: p.requestJsonSchema
      }))
    }
    return handlers.handle("list", () => Effect.succeed(list))
  }))

/**
 * `/v1/webhooks/{provider}`: the raw body text, lower-cased headers and the query go
 * to the plugin. A callback that does not verify or parse changes nothing, is logged,
 * and wakes the sync loop so the refund it may have been about is asked for directly.
 *
 * @since 0.1.0
 */
export const webhooks: Layer.Layer<HttpApiGroup.ApiGroup<"refundkit", "webhooks">, never, Refunds> = HttpApiBuilder.group(
  Api.Api,
  "webhooks",
  (handlers) =>
    Effect.gen(function*() {
      const service = yield* Refunds
      return handlers.handleRaw("receive", ({ path, request }) =>
        Effect.gen(function*() {
          const body = yield* bodyText(request)
          const query: Record<string, string> = {}
          const at = request.url.indexOf("?")
          if (at !== -1) for (const [name, value] of new URLSearchParams(request.url.slice(at + 1))) query[name] = value
          const results = yield* service.webhook(path.provider, { headers: request.headers, body, query }).pipe(
            Effect.tapError((error) =>
              error._tag === "ProviderAuthFailed" || error._tag === "InvalidRequest" || error._tag === "UnexpectedResponse"
                ? Effect.logWarning(`webhook from ${path.provider} rejected: ${error.message}`).pipe(
                  Effect.zipRight(Effect.serviceOption(SyncLoop)),
                  Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: (loop) => loop.wake(path.provider) }))
                )
                : Effect.void
            ),
            Effect.mapError(ApiErrors.fromWebhookError(path.provider))
          )
          const ack: ApiModel.WebhookAck = {
            received: results.length,
            applied: results.filter((r) => r.applied).length,
            results: results.map((r) => ({
              applied: r.applied,
              ...(r.refundId === undefined ? {} : { refundId: r.refundId }),
              ...(r.reason === undefined ? {} : { reason: r.reason })
            }))
          }
          return HttpServerResponse.unsafeJson(ack)
        }))
    })
)

/**
 * `/healthz` and `/readyz`. Readiness asks the SQL ledger whether it answers and is
 * fully migrated; an in-memory ledger is always ready.
 *
 * @since 0.1.0
 */
export const health: Layer.Layer<HttpApiGroup.ApiGroup<"refundkit", "health">> = HttpApiBuilder.group(
  Api.Api,
  "health",
  (handlers) =>
    handlers
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
      .handle("readyz", () =>
        Effect.serviceOption(SqlLedger.SqlLedger).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.succeed({ status: "ready" as const, checks: { ledger: "ok (in memory)" } }),
            onSome: (ledger) =>
              ledger.ready.pipe(
                Effect.as({ status: "ready" as const, checks: { ledger: "ok" } }),
                Effect.mapError((error) => new ApiError.NotReady({ message: `Not ready: ${error.message}`, checks: { ledger: error.detail } }))
              )
          }))
        ))
)
