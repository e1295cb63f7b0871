/**
 * Airalo's auth and HTTP: a bearer token from `POST /v2/token` (client credentials,
 * form-encoded), cached for `expires_in` but never longer than 24 hours, dropped and
 * fetched again exactly once when `/refund` answers 401; and the refund call itself.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import type { ProviderError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { AiraloConfig } from "./AiraloConfig.js"
import * as AiraloStatus from "./AiraloStatus.js"
import type * as AiraloWire from "./AiraloWire.js"
import { providerId } from "./internal/provider.js"

/**
 * Airalo asks partners to fetch a token at least every 24 hours, whatever `expires_in` says.
 *
 * @since 0.1.0
 */
export const tokenMaxAgeMillis = 24 * 60 * 60 * 1000

/**
 * The Airalo API as the plugin uses it.
 *
 * @since 0.1.0
 */
export interface AiraloClient {
  /** The cached bearer token (fetched on first use). */
  readonly token: Effect.Effect<Redacted.Redacted<string>, ProviderError>
  /** `POST /v2/refund`: Airalo's 202 answer, or the core error its answer means. */
  readonly refund: (body: AiraloWire.RefundRequest) => Effect.Effect<AiraloWire.RefundAccepted, ProviderError>
}

/**
 * Builds the client from the plugin's settings, with the caller's `HttpClient`.
 *
 * @since 0.1.0
 */
export const make = (config: AiraloConfig): Effect.Effect<AiraloClient, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const httpClient = yield* HttpClient.HttpClient
    const fetchToken = Effect.gen(function*() {
      const body: AiraloWire.TokenRequest = {
        client_id: config.clientId,
        client_secret: Redacted.value(config.clientSecret),
        grant_type: "client_credentials"
      }
      const request = HttpClientRequest.post(`${config.baseUrl}/token`).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUrlParams(body)
      )
      const received = yield* ProviderHttp.execute(httpClient, providerId, request)
      const issued = yield* AiraloStatus.tokenResponse(received)
      return { token: Redacted.make(issued.data.access_token), expiresInMillis: issued.data.expires_in * 1000 }
    })
    const tokens = yield* ProviderHttp.makeTokenCache(fetchToken, { provider: providerId, maxAgeMillis: tokenMaxAgeMillis })

    const refund = (body: AiraloWire.RefundRequest) =>
      ProviderHttp.withToken(
        tokens,
        (token) =>
          ProviderHttp.execute(
            httpClient,
            providerId,
            HttpClientRequest.post(`${config.baseUrl}/refund`).pipe(
              HttpClientRequest.acceptJson,
              HttpClientRequest.bearerToken(token),
              HttpClientRequest.bodyUnsafeJson(body)
            )
          ),
        ProviderHttp.isUnauthorized
      ).pipe(Effect.flatMap(AiraloStatus.refundResponse))

    return { token: tokens.get, refund }
  })
