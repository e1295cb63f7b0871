/**
 * The HTTP edge every provider plugin shares: sending a request and turning
 * transport failures into core errors, reading and decoding a response body
 * against its documented Schema, the generic meaning of HTTP statuses, a cached
 * token with exactly one re-authentication, and the provider time the gateway
 * reports in `Server-Timing`.
 *
 * Plugins need an `HttpClient` from their caller; they never create one.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as GlobalValue from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ProviderAuthFailed, ProviderUnavailable, UnexpectedResponse, type ProviderError } from "./RefundError.js"

/**
 * A mutable tally of the time spent waiting on providers. The gateway installs one
 * per request (in its request fiber's FiberRefs); forked fibers share the same object, so time
 * spent in parallel calls is added up too.
 *
 * @since 0.1.0
 */
export interface Timing {
  /** The time of the calls that have finished. */
  millis: number
  /** The calls started. */
  calls: number
  /**
   * When each call not finished yet started (`performance.now()`). A call that was
   * interrupted (a timeout) never finishes: read the total with {@link providerMillis}.
   */
  running?: Array<number>
}

/**
 * The provider time in `timing` at `now` (`performance.now()`), in milliseconds: the
 * calls that finished, and the others up to `now`.
 *
 * @since 0.1.0
 */
export const providerMillis = (timing: Timing, now: number = performance.now()): number => {
  let millis = timing.millis
  if (timing.running !== undefined) for (const started of timing.running) millis += now - started
  return millis
}

/**
 * Where {@link send} adds the time of each provider call, when someone is counting.
 *
 * @since 0.1.0
 */
export const currentTiming: FiberRef.FiberRef<Timing | undefined> = GlobalValue.globalValue(
  Symbol.for("@refundkit/core/ProviderHttp/currentTiming"),
  () => FiberRef.unsafeMake<Timing | undefined>(undefined)
)

/**
 * A response whose body has been read: the status, the headers, the raw text (what
 * signatures are computed over) and, when the text was JSON, the parsed value.
 *
 * @since 0.1.0
 */
export interface Received {
  readonly status: number
  readonly headers: Headers.Headers
  readonly text: string
  readonly json: Option.Option<unknown>
}

// Error codes meaning the request never left this machine, so the provider did nothing.
const notSentCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT", "ERR_INVALID_URL"])

const codeOf = (cause: unknown): string | undefined => {
  for (let current = cause, depth = 0; current !== null && typeof current === "object" && depth < 4; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/**
 * The core error for a transport failure. The detail names the failure only: never
 * the URL, which for some providers carries a token.
 *
 * @since 0.1.0
 */
export const transportError = (provider: string, error: HttpClientError.HttpClientError): ProviderUnavailable => {
  const code = codeOf(error.cause)
  const notSent = error._tag === "RequestError" && (error.reason !== "Transport" || (code !== undefined && notSentCodes.has(code)))
  const what = error._tag === "RequestError"
    ? notSent ? "the request could not be sent" : "the connection failed after the request was sent"
    : "the response body could not be read"
  return new ProviderUnavailable({
    provider,
    detail: `${what}${code === undefined ? "" : ` (${code})`}`,
    maybeProcessed: !notSent
  })
}

/**
 * Sends a request through `client` and reads its whole body. Transport failures become
 * `ProviderUnavailable` (with `maybeProcessed: false` only when the request provably
 * never left); the time spent is added to {@link currentTiming}, whether the call
 * succeeds, fails or is interrupted (a timed-out call counts as provider time, see
 * {@link providerMillis}).
 *
 * A plugin that holds its `HttpClient` passes it here rather than providing it to
 * {@link send} on every call: providing a service copies the fiber's whole context.
 *
 * @since 0.1.0
 */
export const execute = (
  client: HttpClient.HttpClient,
  provider: string,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Received, ProviderUnavailable> =>
  Effect.withFiberRuntime((fiber) => {
    const timing = fiber.getFiberRef(currentTiming)
    const received = client.execute(request).pipe(
      Effect.flatMap((response) =>
        Effect.map(response.text, (text): Received => ({
          status: response.status,
          headers: response.headers,
          text,
          json: parseJson(text)
        }))
      )
      // No Effect.scoped: the body is read to the end here, which releases the request.
    )
    if (timing === undefined) return Effect.mapError(received, (error) => transportError(provider, error))
    // The call is counted as running from its start, so one that is interrupted (and never
    // gets here again) still counts: an exit handler would cost an uninterruptible region
    // on every provider call.
    const started = performance.now()
    const running = (timing.running ??= [])
    running.push(started)
    timing.calls += 1
    const finish = () => {
      const at = running.indexOf(started)
      if (at !== -1) running.splice(at, 1)
      timing.millis += performance.now() - started
    }
    // The transport error is made here too, as `mapError` would (from the cause's first failure): one step fewer per call.
    return Effect.matchCauseEffect(received, {
      onFailure: (cause) => {
        finish()
        const failure = Cause.failureOrCause(cause)
        return Either.isLeft(failure) ? Effect.fail(transportError(provider, failure.left)) : Effect.failCause(failure.right)
      },
      onSuccess: (answer) => {
        finish()
        return Effect.succeed(answer)
      }
    })
  })

/**
 * {@link execute} with the `HttpClient` from the context.
 *
 * @since 0.1.0
 */
export const send = (
  provider: string,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Received, ProviderUnavailable, HttpClient.HttpClient> =>
  Effect.flatMap(HttpClient.HttpClient, (client) => execute(client, provider, request))

const parseJson = (text: string): Option.Option<unknown> => {
  if (text.trim() === "") return Option.none()
  try {
    return Option.some(JSON.parse(text) as unknown)
  } catch {
    return Option.none()
  }
}

/**
 * The parsed JSON body, or `UnexpectedResponse` when the body is not JSON.
 *
 * @since 0.1.0
 */
export const json = (provider: string, received: Received): Effect.Effect<unknown, UnexpectedResponse> =>
  Option.match(received.json, {
    onNone: () =>
      Effect.fail(new UnexpectedResponse({ provider, path: "", detail: received.text.trim() === "" ? "the body is empty, JSON was expected" : "the body is not valid JSON", httpStatus: received.status })),
    onSome: Effect.succeed
  })

/**
 * Decodes a provider's JSON value against its documented Schema. A mismatch is
 * `UnexpectedResponse` naming the first offending field.
 *
 * @since 0.1.0
 */
export const decode = <A, I>(
  provider: string,
  schema: Schema.Schema<A, I>,
  value: unknown,
  httpStatus?: number
): Effect.Effect<A, UnexpectedResponse> =>
  // Response schemas are synchronous; the Either decoder is the cheap path on every call.
  Either.mapLeft(
    Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })(value),
    (error: ParseResult.ParseError) => UnexpectedResponse.fromParseError(provider, error, httpStatus)
  )

/**
 * `json` then `decode`: the common case of a JSON body with one documented shape.
 *
 * @since 0.1.0
 */
export const decodeBody = <A, I>(provider: string, schema: Schema.Schema<A, I>, received: Received): Effect.Effect<A, UnexpectedResponse> =>
  received.json._tag === "Some"
    ? decode(provider, schema, received.json.value, received.status)
    : Effect.flatMap(json(provider, received), (value) => decode(provider, schema, value, received.status))

/**
 * `Retry-After` in milliseconds: delay-seconds or an HTTP date.
 *
 * @since 0.1.0
 */
export const retryAfterMillis = (headers: Headers.Headers, now = Date.now()): number | undefined => {
  const value = Option.getOrUndefined(Headers.get(headers, "retry-after"))
  if (value === undefined || value.trim() === "") return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * The generic meaning of an HTTP status a plugin has no provider-specific reading
 * for: 401/403 refused credentials; a 429, and a 503 that says when to come back
 * (`Retry-After`), mean the provider did nothing and may be retried after the wait;
 * any other 5xx, a bare 503 included, may have been processed. Returns none for
 * statuses that need the provider's own reading (2xx, other 4xx).
 *
 * @since 0.1.0
 */
export const statusError = (provider: string, received: Received, detail?: string): Option.Option<ProviderError> => {
  const { status } = received
  const said = detail === undefined ? "" : `: ${detail}`
  if (status === 401 || status === 403) {
    return Option.some(new ProviderAuthFailed({ provider, detail: `HTTP ${status}${said}` }))
  }
  const retryAfter = status === 429 || status === 503 ? retryAfterMillis(received.headers) : undefined
  // A bare 503 is not proof: a proxy answers one when its upstream drops a request it has already
  // passed on (Envoy's "upstream connect error or disconnect/reset before headers"). A server that
  // is down for a time and says when to come back did nothing with the request.
  if (status === 429 || (status === 503 && retryAfter !== undefined)) {
    return Option.some(
      new ProviderUnavailable({
        provider,
        detail: `HTTP ${status}${status === 429 ? " (rate limited)" : ""}${said}`,
        httpStatus: status,
        maybeProcessed: false,
        ...(retryAfter === undefined ? {} : { retryAfterMillis: retryAfter })
      })
    )
  }
  if (status >= 500) {
    return Option.some(new ProviderUnavailable({ provider, detail: `HTTP ${status}${said}`, httpStatus: status, maybeProcessed: true }))
  }
  return Option.none()
}

/**
 * A bearer token as a provider issued it, and how long it lives.
 *
 * @since 0.1.0
 */
export interface IssuedToken {
  readonly token: Redacted.Redacted<string>
  /** How long the provider says it lives; the cache refreshes before that. */
  readonly expiresInMillis: number
}

/**
 * A cached token: fetched once for all concurrent callers, refreshed before it
 * expires, dropped on demand after a 401.
 *
 * @since 0.1.0
 */
export interface TokenCache {
  readonly get: Effect.Effect<Redacted.Redacted<string>, ProviderError>
  /** Forgets `token` if it is still the cached one (a concurrent refresh is kept). */
  readonly invalidate: (token: Redacted.Redacted<string>) => Effect.Effect<void>
}

const notSentForToken = (error: ProviderError): ProviderError => {
  switch (error._tag) {
    case "ProviderUnavailable":
      return error.maybeProcessed
        ? new ProviderUnavailable({
          provider: error.provider,
          detail: `${error.detail} (fetching a token; the refund was not sent)`,
          maybeProcessed: false,
          ...(error.httpStatus === undefined ? {} : { httpStatus: error.httpStatus }),
          ...(error.retryAfterMillis === undefined ? {} : { retryAfterMillis: error.retryAfterMillis })
        })
        : error
    case "OutcomeUnknown":
      return new ProviderUnavailable({ provider: error.provider, detail: `fetching a token failed (${error.detail}); the refund was not sent`, maybeProcessed: false })
    case "UnexpectedResponse": {
      // The field the token answer broke, as the error itself would name it ("is missing" alone named nothing).
      const where = error.path === "" ? "body" : `field ${error.path}`
      return new ProviderUnavailable({ provider: error.provider, detail: `fetching a token failed (the token answer's ${where}: ${error.detail}); the refund was not sent`, maybeProcessed: false })
    }
    default:
      return error
  }
}

/**
 * How long a token call may take by default before the refund call waiting on it is
 * given up as not sent: well inside the default 30 s call timeout, which would
 * otherwise end the refund call first, and call it `unknown`.
 *
 * @since 0.2.0
 */
export const defaultTokenTimeoutMillis = 10_000

/**
 * Builds a {@link TokenCache}. `refreshMarginMillis` (default 60 s) is taken off the
 * provider's lifetime, which is also capped at `maxAgeMillis` when given (some
 * providers ask for a refresh every 24 h whatever `expires_in` says). A token call
 * that takes longer than `timeoutMillis` (default {@link defaultTokenTimeoutMillis})
 * fails `provider`'s refund call as not sent.
 *
 * @since 0.1.0
 */
export const makeTokenCache = <R>(
  fetch: Effect.Effect<IssuedToken, ProviderError, R>,
  options: { readonly provider: string; readonly refreshMarginMillis?: number; readonly maxAgeMillis?: number; readonly timeoutMillis?: number }
): Effect.Effect<TokenCache, never, R> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const lock = yield* Effect.makeSemaphore(1)
    let cached: { readonly token: Redacted.Redacted<string>; readonly until: number } | undefined
    const margin = options.refreshMarginMillis ?? 60_000
    const timeout = Duration.millis(options.timeoutMillis ?? defaultTokenTimeoutMillis)
    const timedFetch = Effect.provide(fetch, context)
    // A token call cannot refund anything: however it failed, the refund call waiting on it was not sent.
    // The timeout bounds the wait for the lock as well as the fetch: callers queued behind other callers'
    // slow token calls would otherwise wait one timeout each, past the refund call's own timeout, which
    // would call refunds that were never sent `unknown`.
    const refresh = lock.withPermits(1)(
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (cached !== undefined && now < cached.until) return cached.token
        const issued = yield* timedFetch.pipe(Effect.mapError(notSentForToken))
        const lifetime = Math.min(issued.expiresInMillis, options.maxAgeMillis ?? Number.POSITIVE_INFINITY)
        cached = { token: issued.token, until: now + Math.max(lifetime - margin, lifetime / 2) }
        return issued.token
      })
    ).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new ProviderUnavailable({
            provider: options.provider,
            detail: `no token within ${Duration.format(timeout)} (the token call had no answer in time); the refund was not sent`,
            maybeProcessed: false
          })
      })
    )
    // A valid cached token is read without the lock: it is taken only to fetch, so that
    // concurrent callers share one fetch, and every provider call would otherwise queue on it.
    const get = Effect.clockWith((clock) =>
      cached !== undefined && clock.unsafeCurrentTimeMillis() < cached.until ? Effect.succeed(cached.token) : refresh
    )
    return {
      get,
      invalidate: (token) => Effect.sync(() => void (cached?.token === token ? (cached = undefined) : undefined))
    }
  })

/**
 * Runs a call with the cached token; when `unauthorized` says the answer means the
 * token was refused, drops it, fetches a new one and runs the call exactly once more.
 *
 * @since 0.1.0
 */
export const withToken = <A, E, R>(
  cache: TokenCache,
  run: (token: Redacted.Redacted<string>) => Effect.Effect<A, E, R>,
  unauthorized: (answer: A) => boolean
): Effect.Effect<A, E | ProviderError, R> =>
  // Plain flatMaps: every provider call with a token runs this, and a generator is one more allocation per step.
  Effect.flatMap(cache.get, (token) =>
    Effect.flatMap(run(token), (first): Effect.Effect<A, E | ProviderError, R> =>
      unauthorized(first) ? Effect.zipRight(cache.invalidate(token), Effect.flatMap(cache.get, run)) : Effect.succeed(first)))

/**
 * The usual `unauthorized` test for {@link withToken}: HTTP 401.
 *
 * @since 0.1.0
 */
export const isUnauthorized = (received: Received): boolean => received.status === 401
