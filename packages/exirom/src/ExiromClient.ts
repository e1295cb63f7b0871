/**
 * Exirom over HTTP: the bearer token (fetched once, cached for its 30-day life,
 * fetched again exactly once after a 401) and the three refund calls, each answer
 * decoded against its documented shape or turned into a core error.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import type { ProviderError } from "@refundkit/core/RefundError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import * as Jwt from "./internal/jwt.js"
import type { ExiromConfig } from "./ExiromConfig.js"
import * as ExiromStatus from "./ExiromStatus.js"
import * as ExiromWire from "./ExiromWire.js"

/**
 * The calls the plugin makes.
 *
 * @since 0.1.0
 */
export interface ExiromClient {
  /** `POST /v1/refunds/card`. */
  readonly refund: (body: ExiromWire.RefundBody) => Effect.Effect<ExiromWire.RefundResponse, ProviderError>
  /** `GET /v1/refunds/card/status/{refundId}`: the bare status word. */
  readonly status: (refundId: string) => Effect.Effect<string, ProviderError>
  /** `GET /v1/refunds/card/info/{refundId}`. */
  readonly info: (refundId: string) => Effect.Effect<ExiromWire.InfoResponse, ProviderError>
}

/**
 * Tokens live 30 days; Exirom advises refreshing at day 29, which this margin does
 * whether the lifetime comes from the JWT's `exp` or is assumed.
 *
 * @since 0.1.0
 */
export const tokenLifetimeMillis = 30 * 24 * 60 * 60 * 1000

const refreshMarginMillis = 24 * 60 * 60 * 1000

/**
 * Builds the client. It needs an `HttpClient` from its caller and never creates one.
 *
 * @since 0.1.0
 */
export const make = (config: ExiromConfig): Effect.Effect<ExiromClient, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const provider = ExiromStatus.provider
    const send = (request: HttpClientRequest.HttpClientRequest) => ProviderHttp.execute(http, provider, HttpClientRequest.acceptJson(request))

    const decodeOk = <A, I>(schema: Schema.Schema<A, I>, call: ExiromStatus.Call) => (received: ProviderHttp.Received) =>
      received.status >= 200 && received.status < 300
        ? ProviderHttp.decodeBody(provider, schema, received)
        : Effect.fail(ExiromStatus.errorOf(received, call))

    const fetchToken = Effect.gen(function*() {
      const received = yield* send(
        HttpClientRequest.post(`${config.baseUrl}/v1/auth`).pipe(
          HttpClientRequest.bodyUnsafeJson({ merchantKey: Redacted.value(config.merchantKey), merchantSecret: Redacted.value(config.merchantSecret) })
        )
      )
      const token = ExiromWire.tokenOf(yield* decodeOk(ExiromWire.AuthResponse, { _tag: "Auth" })(ExiromWire.plainToken(received)))
      const now = yield* Clock.currentTimeMillis
      const exp = Jwt.expiresAt(token)
      return {
        token: Redacted.make(token),
        // A token already past its `exp` (clock skew) is still tried once a minute rather than on every call.
        expiresInMillis: exp === undefined ? tokenLifetimeMillis : Math.max(exp - now, 2 * 60_000)
      }
    })
    const tokens = yield* ProviderHttp.makeTokenCache(fetchToken, { provider, refreshMarginMillis })

    const authorized = (request: HttpClientRequest.HttpClientRequest) =>
      ProviderHttp.withToken(tokens, (token) => send(HttpClientRequest.bearerToken(request, token)), ProviderHttp.isUnauthorized)

    const path = (suffix: string, id: string) => `${config.baseUrl}/v1/refunds/card/${suffix}/${encodeURIComponent(id)}`

    return {
      refund: (body) =>
        authorized(HttpClientRequest.post(`${config.baseUrl}/v1/refunds/card`).pipe(HttpClientRequest.bodyUnsafeJson(body))).pipe(
          Effect.flatMap(decodeOk(ExiromWire.RefundResponse, { _tag: "Refund", transactionId: body.transactionId, requestId: body.requestId }))
        ),
      status: (refundId) =>
        authorized(HttpClientRequest.get(path("status", refundId))).pipe(
          Effect.flatMap(decodeOk(ExiromWire.StatusResponse, { _tag: "Lookup", refundId }))
        ),
      info: (refundId) =>
        authorized(HttpClientRequest.get(path("info", refundId))).pipe(
          Effect.flatMap(decodeOk(ExiromWire.InfoResponse, { _tag: "Lookup", refundId }))
        )
    }
  })
