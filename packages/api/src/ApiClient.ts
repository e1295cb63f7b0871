/**
 * A typed client of the gateway, derived from {@link Api}: every endpoint is a method
 * taking its path, query, headers and payload, and failing with the endpoint's
 * errors as `ApiError` classes.
 *
 * @since 0.1.0
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Api } from "./Api.js"

/**
 * Where the gateway is and the API key to send (as `Authorization: Bearer <key>`).
 *
 * @since 0.1.0
 */
export interface Options {
  readonly baseUrl: string | URL
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
}

/**
 * Builds the client over the `HttpClient` in context (e.g. `FetchHttpClient.layer`,
 * or `NodeHttpClient.layerUndici` from `@effect/platform-node`).
 *
 * @since 0.1.0
 */
export const make = (options: Options) =>
  HttpApiClient.make(Api, {
    baseUrl: options.baseUrl,
    transformClient: (client) => {
      const key = options.apiKey
      if (key === undefined) return client
      const token = Redacted.isRedacted(key) ? key : Redacted.make(key)
      return HttpClient.mapRequest(client, (request) => HttpClientRequest.bearerToken(request, Redacted.value(token)))
    }
  })

/**
 * The client's type.
 *
 * @since 0.1.0
 */
export type Client = Effect.Effect.Success<ReturnType<typeof make>>
