/**
 * What every request goes through: a request id, the body limit, the provider-time
 * tally behind `Server-Timing`, one structured log line, and the JSON error shape
 * for what the API itself cannot answer (unknown routes, bodies it cannot read, bugs).
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Api, ApiError } from "@refundkit/api"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { describeIssues, withoutAbsentAlternative } from "@refundkit/core/RefundError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomUUID } from "node:crypto"
import { performance } from "node:perf_hooks"
import * as ApiKeys from "./ApiKeys.js"
import type { Metrics } from "./GatewayMetrics.js"
import * as IdempotencyKey from "./IdempotencyKey.js"
import * as RequestBody from "./RequestBody.js"

// The query string stays out of the logs: a provider may put a token in a callback URL.
const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

// Access log lines wait for the end of the event-loop turn and go out in one write: a
// write to stdout (a pipe, synchronous on Linux) per request cost about 4% of the CPU at
// concurrency 32. Whatever is pending at exit is still written.
let pendingLog = ""
const flushLog = () => {
  const lines = pendingLog
  pendingLog = ""
  if (lines !== "") process.stdout.write(lines)
}
let exitFlush = false
const bufferLine = (line: string): void => {
  if (!exitFlush) {
    exitFlush = true
    process.once("exit", flushLog)
  }
  if (pendingLog === "") setImmediate(flushLog)
  pendingLog += line
}

const requestIdPattern = /^[\x21-\x7e]{1,128}$/

/**
 * The request id a response carries: the caller's `X-Request-Id` when it is 1 to 128
 * printable characters, else a fresh UUID.
 *
 * @since 0.1.0
 */
export const requestIdOf = (given: string | undefined): string =>
  given !== undefined && requestIdPattern.test(given) ? given : randomUUID()

/**
 * The `Server-Timing` value: the gateway's own time and the time spent waiting on providers,
 * in hundredths of a millisecond. Tenths hid the figure that matters at concurrency 1: the
 * gateway's own time is about a millisecond, and a median of 0.96 read as 1.0.
 *
 * @since 0.1.0
 */
export const serverTiming = (totalMillis: number, providerMillis: number): string =>
  `app;dur=${(totalMillis - providerMillis).toFixed(2)}, provider;dur=${providerMillis.toFixed(2)}`

/**
 * The access log: off, or on in one of the general log's formats (`true` is JSON).
 *
 * @since 0.1.0
 */
export type AccessLog = boolean | "json" | "logfmt" | "pretty"

/**
 * What one access log line tells.
 *
 * @since 0.1.0
 */
export interface RequestEntry {
  readonly requestId: string
  readonly method: string
  readonly url: string
  readonly status: number
  readonly totalMillis: number
  readonly timing: ProviderHttp.Timing
  readonly providerMillis: number
  /** The client hung up before the answer: `status` is what it would have been told. */
  readonly clientGone?: boolean
}

const tenths = (millis: number): number => Math.round(millis * 10) / 10

/**
 * A logfmt value: bare unless it holds what would end or split it.
 *
 * @since 0.4.0
 */
export const logfmtValue = (value: string | number | boolean): string => {
  const text = String(value)
  return text === "" || /[\s"=\\]/.test(text) ? JSON.stringify(text) : text
}

// A number as JSON.stringify writes it.
const jsonNumber = (value: number): string => (Number.isFinite(value) ? String(value) : "null")

// The JSON line, written out field by field: JSON.stringify of the same object, in the same key
// order, without building the object (and its spread copies) for every request.
const jsonLine = (entry: RequestEntry, timestamp: string): string =>
  `{"timestamp":${JSON.stringify(timestamp)},"level":"INFO","message":"request","requestId":${JSON.stringify(entry.requestId)},` +
  `"method":${JSON.stringify(entry.method)},"path":${JSON.stringify(pathOf(entry.url))},"status":${jsonNumber(entry.status)},` +
  `"durationMs":${jsonNumber(tenths(entry.totalMillis))},"providerMs":${jsonNumber(tenths(entry.providerMillis))},` +
  `"providerCalls":${jsonNumber(entry.timing.calls)}${entry.clientGone === true ? `,"clientGone":true` : ""}}\n`

/**
 * One access log line in `format`, ending in a newline.
 *
 * @since 0.1.0
 */
export const formatRequest = (format: "json" | "logfmt" | "pretty", entry: RequestEntry, now: Date = new Date()): string => {
  if (format === "json") return jsonLine(entry, now.toISOString())
  const fields = {
    requestId: entry.requestId,
    method: entry.method,
    path: pathOf(entry.url),
    status: entry.status,
    durationMs: tenths(entry.totalMillis),
    providerMs: tenths(entry.providerMillis),
    providerCalls: entry.timing.calls,
    ...(entry.clientGone === true ? { clientGone: true } : {})
  }
  const timestamp = now.toISOString()
  switch (format) {
    case "logfmt":
      return `${Object.entries({ timestamp, level: "INFO", message: "request", ...fields }).map(([k, v]) => `${k}=${logfmtValue(v)}`).join(" ")}\n`
    case "pretty":
      return `[${timestamp.slice(11, 23)}] INFO request ${fields.method} ${JSON.stringify(fields.path)} ${fields.status} ${fields.durationMs}ms ` +
        `(provider ${fields.providerMs}ms, ${fields.providerCalls} ${fields.providerCalls === 1 ? "call" : "calls"})` +
        `${entry.clientGone === true ? " client gone" : ""} requestId=${logfmtValue(fields.requestId)}\n`
  }
}

/**
 * One access log line, when the access log is on.
 *
 * @since 0.1.0
 */
export const logRequest = (log: AccessLog, entry: RequestEntry): void => {
  // One line straight to stdout: the access log is on every request's path, and the
  // general logger's machinery cost about an eighth of the gateway's CPU.
  if (log !== false) bufferLine(formatRequest(log === true ? "json" : log, entry))
}

/**
 * Where a finished request is told: the access log and, when the gateway keeps them, its metrics.
 *
 * @since 0.4.0
 */
export interface Observers {
  readonly accessLog: AccessLog
  readonly metrics?: Metrics | undefined
}

/**
 * Logs a finished request and counts it in the metrics.
 *
 * @since 0.4.0
 */
export const finished = (observers: Observers, entry: RequestEntry): void => {
  logRequest(observers.accessLog, entry)
  observers.metrics?.observe(entry)
}

const errorResponse = <A, I>(schema: Schema.Schema<A, I>, status: number, error: A): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(Schema.encodeSync(schema)(error), { status })

const isTooLarge = (error: HttpServerError.RequestError): boolean =>
  error.cause instanceof Error && error.cause.message === "maxBytes exceeded"

const unreadable = (error: HttpServerError.RequestError) =>
  new ApiError.InvalidRequest({
    message: "The request body is not valid JSON.",
    issues: [{ path: "", message: error.cause instanceof Error ? `not valid JSON: ${error.cause.message}` : "not valid JSON" }]
  })

const requestErrorOf = (cause: Cause.Cause<unknown>): Option.Option<HttpServerError.RequestError> =>
  Option.filter(
    Option.orElse(Cause.failureOption(cause), () => Cause.dieOption(cause)),
    (e): e is HttpServerError.RequestError => HttpServerError.isServerError(e) && e._tag === "RequestError" && e.reason === "Decode"
  )

const fromDecodeError = (error: HttpApiDecodeError): ApiError.MissingIdempotencyKey | ApiError.InvalidRequest => {
  if (error.issues.some((issue) => issue.path[0] === "idempotency-key" && issue._tag === "Missing")) {
    return IdempotencyKey.missingKey
  }
  const kept = withoutAbsentAlternative(error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message })))
  // A choice of literals fails once per literal: one issue per path lists them.
  const issues: Array<{ readonly path: string; readonly message: string }> = []
  const choices = new Map<string, { readonly expected: Array<string>; readonly actual: string; readonly at: number }>()
  for (const issue of kept) {
    const literal = /^Expected (".*"), actual (.*)$/.exec(issue.message)
    const seen = literal === null ? undefined : choices.get(issue.path)
    if (literal !== null && seen !== undefined && seen.actual === literal[2]) {
      seen.expected.push(literal[1]!)
      issues[seen.at] = { path: issue.path, message: `Expected one of ${seen.expected.join(", ")}, actual ${seen.actual}` }
      continue
    }
    if (literal !== null) choices.set(issue.path, { expected: [literal[1]!], actual: literal[2]!, at: issues.length })
    issues.push(issue)
  }
  return new ApiError.InvalidRequest({
    message: `The request is invalid: ${describeIssues(issues)}.`,
    issues
  })
}

// Every endpoint of the contract as a method and a path pattern (`:id` matches one segment).
const apiRoutes: ReadonlyArray<{ readonly method: string; readonly pattern: RegExp }> = (() => {
  const routes: Array<{ readonly method: string; readonly pattern: RegExp }> = []
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const source = endpoint.path.split("/").map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/")
      routes.push({ method: endpoint.method, pattern: new RegExp(`^${source}/?$`) })
    }
  })
  return routes
})()

/**
 * The API-level middleware, around the router and before HttpApi encodes errors:
 * requests HttpApi could not decode answer in the gateway's error shape
 * (`invalid_request`, `missing_idempotency_key`, `payload_too_large`) instead of
 * HttpApi's own, unknown routes are 404 `not_found`, and a defect is a logged 500
 * `internal_error` rather than an empty body.
 *
 * @since 0.1.0
 */
export const apiLayer = (bodyLimitBytes: number) => {
  const notFound = errorResponse(
    ApiError.Wire.RouteNotFound,
    404,
    new ApiError.RouteNotFound({ message: "No such route. See /openapi.json or /docs for the API." })
  )
  // A known path with another method (`DELETE /v1/refunds`, `GET /v1/refunds/{id}/sync`) is 405 with `Allow`
  // (RFC 9110, 15.5.6), and its message says which methods the path takes: a 404 "No such route" sent a
  // newcomer looking for a typo in the path.
  const wrongMethod = new Map<string, HttpServerResponse.HttpServerResponse>()
  const notFoundFor = (request: HttpServerRequest.HttpServerRequest): HttpServerResponse.HttpServerResponse => {
    const path = pathOf(request.url)
    const methods = apiRoutes.filter((route) => route.pattern.test(path)).map((route) => route.method)
    if (methods.length === 0) return notFound
    const allowed = [...new Set(methods)].sort().join(", ")
    let response = wrongMethod.get(allowed)
    if (response === undefined) {
      response = errorResponse(
        ApiError.Wire.MethodNotAllowed,
        405,
        new ApiError.MethodNotAllowed({ message: `This path takes ${allowed} only. See /openapi.json or /docs for the API.` })
      ).pipe(HttpServerResponse.setHeader("allow", allowed))
      wrongMethod.set(allowed, response)
    }
    return response
  }
  const internal = errorResponse(
    ApiError.Wire.InternalError,
    500,
    new ApiError.InternalError({ message: "Something went wrong in the gateway. The request id in X-Request-Id finds it in the logs." })
  )
  return HttpApiBuilder.middleware(Api.Api, (app) =>
    Effect.catchAllCause(app, (
      cause: Cause.Cause<unknown>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse, ApiError.InvalidRequest | ApiError.PayloadTooLarge> => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        if (error instanceof HttpApiDecodeError) {
          // MissingIdempotencyKey is declared by the one endpoint with that header only, not
          // API-wide; HttpApi's encoder knows every endpoint's errors, so it encodes it all the same.
          return Effect.fail(fromDecodeError(error)) as Effect.Effect<never, ApiError.InvalidRequest>
        }
        if (HttpServerError.isServerError(error) && error._tag === "RouteNotFound") return Effect.succeed(notFoundFor(error.request))
      }
      const requestError = requestErrorOf(cause)
      if (Option.isSome(requestError)) {
        return Effect.fail(isTooLarge(requestError.value) ? RequestBody.tooLarge(bodyLimitBytes) : unreadable(requestError.value))
      }
      if (Cause.isInterruptedOnly(cause) || Option.isSome(failure)) return Effect.failCause(cause as Cause.Cause<never>)
      return Effect.as(Effect.logError("unhandled defect", cause), internal)
    }))
}

/**
 * Reads a request body as UTF-8 text under the body limit in force (see `RequestBody.text`).
 *
 * @since 0.1.0
 */
export const bodyText = RequestBody.text

/**
 * The default request body limit: 1 MiB.
 *
 * @since 0.1.0
 */
export const defaultBodyLimitBytes = RequestBody.defaultBodyLimitBytes

// An error's `retryAfterSeconds` is also sent as the standard header (RFC 9110 section 10.2.3):
// HTTP clients, retry libraries and proxies read the header, not a field of our body.
const retryAfterField = /"retryAfterSeconds":(\d+)/
const utf8 = new TextDecoder()

/**
 * The headers an error answer carries beside its body: `Retry-After` when the body names
 * `retryAfterSeconds`, and `WWW-Authenticate` on a refused API key.
 *
 * @since 0.1.0
 */
export const errorHeadersOf = (status: number, body: string): Record<string, string> | undefined => {
  if (status < 400) return undefined
  if (status === 401) {
    const challenge = ApiKeys.challengeOf(body)
    return challenge === undefined ? undefined : { "www-authenticate": challenge }
  }
  const retryAfter = retryAfterField.exec(body)?.[1]
  return retryAfter === undefined ? undefined : { "retry-after": retryAfter }
}

/**
 * The outermost middleware, around the whole handled request. Every response gets
 * `X-Request-Id` and `Server-Timing: app;dur=<gateway ms>, provider;dur=<provider ms>`
 * (set by a pre-response handler, so error answers get them too); a body announced
 * larger than the limit is refused before anything reads it.
 *
 * @since 0.1.0
 */
export const make = (options: Observers & { readonly bodyLimitBytes: number }) => {
  const limit = options.bodyLimitBytes
  const tooLargeResponse = errorResponse(ApiError.Wire.PayloadTooLarge, 413, RequestBody.tooLarge(limit))

  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.gen(function*() {
      const started = performance.now()
      const request = yield* HttpServerRequest.HttpServerRequest
      const requestId = requestIdOf(request.headers["x-request-id"])
      const timing: ProviderHttp.Timing = { millis: 0, calls: 0 }
      const finish = (response: HttpServerResponse.HttpServerResponse) =>
        Effect.suspend(() => {
          const total = performance.now() - started
          const provider = Math.min(ProviderHttp.providerMillis(timing), total)
          const errorHeaders = response.status >= 400 && response.body._tag === "Uint8Array" ? errorHeadersOf(response.status, utf8.decode(response.body.body)) : undefined
          const answered = HttpServerResponse.setHeaders(response, {
            "x-request-id": requestId,
            "server-timing": serverTiming(total, provider),
            ...errorHeaders
          })
          finished(options, { requestId, method: request.method, url: request.url, status: response.status, totalMillis: total, timing, providerMillis: provider })
          return Effect.succeed(answered)
        })
      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > limit) return yield* finish(tooLargeResponse)
      yield* HttpApp.appendPreResponseHandler((_request, response) => finish(response))
      // Set for the rest of the request fiber rather than with Effect.locally: each fiber
      // serves one request and ends with it, so there is nothing to restore, and each
      // Effect.locally costs an uninterruptible acquire/use/release on every request.
      yield* FiberRef.set(ProviderHttp.currentTiming, timing)
      yield* FiberRef.update(FiberRef.currentLogAnnotations, HashMap.set("requestId", requestId as unknown))
      return yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(limit))
    })
}
