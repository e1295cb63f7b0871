/**
 * The HTTP call to AeroHub's UpdateRefund. AeroHub has no token endpoint: the
 * supplier `apiKey` travels in the JSON body, added here at the last moment together
 * with a fresh 32-character `requestId`, so neither is ever part of a stored request.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { ProviderAuthFailed, ProviderDeclined, ProviderUnavailable, UnexpectedResponse, type ProviderError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { type AeroHubConfig, updateRefundPath } from "./AeroHubConfig.js"
import { fromResponse } from "./AeroHubStatus.js"
import type { UpdateRefundResponse, UpdateRefundUpdate } from "./AeroHubWire.js"

/**
 * The AeroHub API as the plugin uses it.
 *
 * @since 0.1.0
 */
export interface AeroHubClient {
  /** Sends one UpdateRefund; every call gets its own `requestId`. */
  readonly updateRefund: (update: UpdateRefundUpdate) => Effect.Effect<UpdateRefundResponse, ProviderError>
}

/**
 * A new `requestId`: 32 hex characters from 16 random bytes. AeroHub documents no
 * idempotency on it, so it is a per-call nonce, fresh on every retry too.
 *
 * @since 0.1.0
 */
export const newRequestId: Effect.Effect<string> = Effect.sync(() => randomBytes(16).toString("hex"))

// AeroHub's msg or an unreadable body could echo what we sent; the apiKey must not travel on in an error.
const scrub = (secret: string) => (text: string): string => (secret.length === 0 ? text : text.split(secret).join("<redacted>"))

const scrubError = (secret: string) => (error: ProviderError): ProviderError => {
  const clean = scrub(secret)
  switch (error._tag) {
    case "ProviderDeclined":
      return new ProviderDeclined({ ...error, reason: clean(error.reason) })
    case "ProviderAuthFailed":
      return new ProviderAuthFailed({ ...error, detail: clean(error.detail) })
    case "ProviderUnavailable":
      return new ProviderUnavailable({ ...error, detail: clean(error.detail) })
    case "UnexpectedResponse":
      return new UnexpectedResponse({ ...error, path: clean(error.path), detail: clean(error.detail) })
    default:
      return error
  }
}

/**
 * Builds the client over the caller's `HttpClient`.
 *
 * @since 0.1.0
 */
export const make = (config: AeroHubConfig): Effect.Effect<AeroHubClient, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const url = `${config.baseUrl}${updateRefundPath}`
    const cleanError = scrubError(Redacted.value(config.apiKey))
    const updateRefund = (update: UpdateRefundUpdate) =>
      Effect.gen(function*() {
        const requestId = yield* newRequestId
        const request = HttpClientRequest.post(url).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUnsafeJson({ apiKey: Redacted.value(config.apiKey), requestId, ...update })
        )
        const received = yield* ProviderHttp.execute(http, "aerohub", request)
        const answer = yield* fromResponse(received)
        return { code: answer.code, msg: scrub(Redacted.value(config.apiKey))(answer.msg) }
      }).pipe(Effect.mapError(cleanError))
    return { updateRefund }
  })
