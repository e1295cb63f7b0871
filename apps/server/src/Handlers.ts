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
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Api, ApiError, ApiModel, type Authorization } from "@refundkit/api"
import { Ledger } from "@refundkit/core/Ledger"
import { Providers } from "@refundkit/core/Providers"
import { Refunds } from "@refundkit/core/Refunds"
import { SqlLedger } from "@refundkit/ledger-sql"
import { InvalidRequest, LedgerError } from "@refundkit/core/RefundError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ApiErrors from "./ApiErrors.js"
import { create, toResponse } from "./CreateRoute.js"
import * as GatewayMetrics from "./GatewayMetrics.js"
import * as Installed from "./Installed.js"
import { checkKey, sentKeys } from "./IdempotencyKey.js"
import * as RequestBody from "./RequestBody.js"
import * as ReopenRoute from "./ReopenRoute.js"
import * as ResolveRoute from "./ResolveRoute.js"
import { SyncLoop } from "./SyncLoop.js"

/**
 * A list's `provider` filter must name an installed plugin, as the CLI's `list --provider`
 * must: a typo would otherwise match nothing and answer an empty page, which reads as "no
 * refunds". An installed plugin this gateway did not enable (its settings missing) still
 * lists the refunds the ledger holds for it.
 */
const checkProvider = (installed: ReadonlyArray<string>, provider: string | undefined): Effect.Effect<void, InvalidRequest> =>
  provider === undefined || installed.includes(provider)
    ? Effect.void
    : Effect.fail(InvalidRequest.field("provider", `${JSON.stringify(provider)} is not an installed provider; installed: ${[...installed].sort().join(", ")}`))

/**
 * `/v1/refunds`: create and events read their bodies themselves, so a body that is
 * not JSON, too large, or missing `provider` answers in the gateway's shape, and the
 * Idempotency-Key and then the Content-Type are checked before the body is read. Resolve
 * checks the Content-Type, then reads its body (`ResolveRoute`). Sync takes no body and reads
 * none, so it checks no Content-Type. `installed`: the plugin ids a
 * list's `provider` filter may name (default: every one in `Installed.plugins`).
 *
 * @since 0.1.0
 */
export const refunds = (installed: ReadonlyArray<string> = Installed.ids): Layer.Layer<
  HttpApiGroup.ApiGroup<"refundkit", "refunds">,
  never,
  Refunds | Ledger | Providers | Authorization.Authorization
> =>
  HttpApiBuilder.group(Api.Api, "refunds", (handlers) =>
    Effect.gen(function*() {
      const service = yield* Refunds
      const registry = yield* Providers
      const metrics = Option.getOrUndefined(yield* Effect.serviceOption(GatewayMetrics.GatewayMetrics))
      return handlers
        // The gateway answers this route directly (CreateRoute); this handler serves the
        // same logic when the gateway is built with `createRoute: "httpapi"`.
        .handleRaw("create", ({ request }) =>
          checkKey(sentKeys(NodeHttpServerRequest.toIncomingMessage(request))).pipe(
            Effect.zipLeft(RequestBody.requireJson(request.headers)),
            Effect.flatMap((key) => Effect.flatMap(RequestBody.text(request), (text) => create(service, key, text))),
            Effect.map((created) => {
              if (!created.replayed) metrics?.created(created.refund)
              return toResponse(created)
            })
          ))
        .handle("list", ({ urlParams }) =>
          Effect.zipRight(
            checkProvider(installed, urlParams.provider),
            service.list({
              provider: urlParams.provider,
              status: urlParams.status,
              target: urlParams.target,
              createdFrom: urlParams.createdFrom,
              createdTo: urlParams.createdTo,
              limit: urlParams.limit ?? 50,
              cursor: urlParams.cursor
            })
          ).pipe(
            Effect.map((page) => (page.nextCursor === undefined ? { items: page.items } : { items: page.items, nextCursor: page.nextCursor })),
            Effect.mapError(ApiErrors.fromListError)
          ))
        .handle("get", ({ path }) => service.get(path.id).pipe(Effect.mapError(ApiErrors.fromRefundError)))
        .handle("sync", ({ path }) => service.sync(path.id).pipe(Effect.mapError(ApiErrors.fromSyncError(path.id))))
        .handleRaw("update", ({ path, request }) =>
          Effect.gen(function*() {
            yield* RequestBody.requireJson(request.headers)
            const input = yield* Effect.flatMap(RequestBody.text(request), RequestBody.parseObject)
            // As with create, a client that hangs up does not stop its update: once sent, the provider
            // may apply it, and only running it to its outcome gets that into the ledger.
            const refund = yield* service.update(path.id, input).pipe(Effect.mapError(ApiErrors.fromRefundError), Effect.forkDaemon, Effect.flatMap(Fiber.join))
            return HttpServerResponse.unsafeJson(refund)
          }))
        .handleRaw("resolve", ({ path, request }) =>
          Effect.gen(function*() {
            yield* RequestBody.requireJson(request.headers)
            const body = yield* Effect.flatMap(RequestBody.text(request), RequestBody.parseObject)
            const verdict = yield* ResolveRoute.decode(body)
            // Like an update, a verdict the gateway has begun to record is recorded even if its client hangs up:
            // the client's retry of it is then answered as a repeat.
            const resolved = yield* ResolveRoute.resolve(service, path.id, verdict, ResolveRoute.canonicalIn(registry)).pipe(Effect.forkDaemon, Effect.flatMap(Fiber.join))
            return HttpServerResponse.unsafeJson(resolved.refund, resolved.repeated ? { headers: ResolveRoute.repeatedHeaders } : undefined)
          }))
        .handleRaw("reopen", ({ path, request }) =>
          Effect.gen(function*() {
            yield* RequestBody.requireJson(request.headers)
            const body = yield* Effect.flatMap(RequestBody.text(request), RequestBody.parseObject)
            const reopen = yield* ReopenRoute.decode(body)
            // As a verdict: once begun it is recorded even if its client hangs up, and the retry is its repeat.
            const reopened = yield* ReopenRoute.reopen(service, path.id, reopen).pipe(Effect.forkDaemon, Effect.flatMap(Fiber.join))
            return HttpServerResponse.unsafeJson(reopened.refund, reopened.repeated ? { headers: ResolveRoute.repeatedHeaders } : undefined)
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
 * and wakes the sync loop so the refund it may have been about is asked for directly;
 * so does an event of a verified callback that core does not record (an identifier
 * with a NUL character), which is acknowledged as not applied while the others apply.
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
          const body = yield* RequestBody.text(request)
          const query: Record<string, string> = {}
          const at = request.url.indexOf("?")
          if (at !== -1) for (const [name, value] of new URLSearchParams(request.url.slice(at + 1))) query[name] = value
          const wake = Effect.serviceOption(SyncLoop).pipe(
            Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: (loop) => loop.wake(path.provider) }))
          )
          const results = yield* service.webhook(path.provider, { headers: request.headers, body, query }).pipe(
            Effect.tapError((error) => {
              const warning = ApiErrors.webhookWarning(path.provider, error)
              return warning === undefined ? Effect.void : Effect.zipRight(Effect.logWarning(warning), wake)
            }),
            Effect.mapError(ApiErrors.fromWebhookError(path.provider))
          )
          // An event no ledger can store is acknowledged as not recorded (a redelivery would carry it
          // again): logged, and the sync loop asks the provider directly.
          const refused = results.flatMap((r) => (r.refused === undefined ? [] : [r.refused]))
          if (refused.length > 0) {
            yield* Effect.logWarning(
              `webhook from ${path.provider}: not recorded, acknowledged: ${refused.map((e) => `event field ${e.path}: ${e.detail}`).join("; ")}`
            )
            yield* wake
          }
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

// How long /readyz (and /metrics' count) waits for the ledger before giving up on it.
const readyTimeout = Duration.seconds(3)

/**
 * A ledger check bounded by `readyTimeout`. The check is disconnected first: a transaction takes
 * its connection and sends BEGIN uninterruptibly (`@effect/sql`), so on a connection that went
 * silent the timeout could not interrupt it and waited with it. The check then ends in the
 * background, when the connection fails or answers.
 */
const withinReadyTimeout = <A>(check: Effect.Effect<A, LedgerError>): Effect.Effect<A, LedgerError> =>
  check.pipe(
    Effect.disconnect,
    Effect.timeoutFail({
      duration: readyTimeout,
      onTimeout: () => new LedgerError({ detail: `the ledger did not answer within ${Duration.format(readyTimeout)}` })
    })
  )

/**
 * `/metrics`: the gateway's metrics, with the ledger's refunds that wait on someone counted
 * now. A ledger that does not answer in time, or cannot count, leaves that gauge out and sets
 * `refundkit_ledger_up` to 0 rather than failing the scrape: the other metrics still matter
 * most when the ledger is in trouble.
 *
 * @since 0.4.0
 */
export const metrics: Layer.Layer<
  HttpApiGroup.ApiGroup<"refundkit", "metrics">,
  never,
  GatewayMetrics.GatewayMetrics | Ledger | Providers | Authorization.Authorization
> = HttpApiBuilder.group(Api.Api, "metrics", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* GatewayMetrics.GatewayMetrics
    const ledger = yield* Ledger
    const providers = (yield* Effect.flatMap(Providers, (registry) => registry.all)).map((p) => p.id)
    const count = ledger.countByStatus
    const counts: Effect.Effect<GatewayMetrics.LedgerCounts> = count === undefined
      ? Effect.succeed({ _tag: "Unsupported" })
      : count(GatewayMetrics.watchedStatuses).pipe(
        withinReadyTimeout,
        Effect.map((counted): GatewayMetrics.LedgerCounts => ({ _tag: "Counted", counts: counted, providers })),
        Effect.catchAll((error) => Effect.as(Effect.logWarning(`metrics: could not count refunds by status: ${error.detail}`), { _tag: "Failed" as const }))
      )
    return handlers.handle("metrics", () => Effect.map(counts, gateway.render))
  }))


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
                // A database that stops answering (a network partition, a lock held by a migration)
                // would otherwise keep the probe waiting for as long as the connection lives.
                withinReadyTimeout,
                Effect.as({ status: "ready" as const, checks: { ledger: "ok" } }),
                Effect.mapError((error) => new ApiError.NotReady({ message: `Not ready: ${error.message}`, checks: { ledger: error.detail } }))
              )
          }))
        ))
)
