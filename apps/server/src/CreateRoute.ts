/**
 * `POST /v1/refunds`, the route every refund goes through, answered straight from
 * Node's request: the same checks in the same order as HttpApi (body limit, API key,
 * Idempotency-Key, Content-Type, body, schema), the same error bodies and statuses, the same
 * `X-Request-Id`, `Server-Timing` and access log line; one Effect fiber per request
 * runs core's `create`. One difference: a client that hangs up does not stop its refund.
 *
 * Why: under load the HttpApi router, its middleware and the platform's request and
 * response objects cost more CPU per refund than core's orchestration and the ledger
 * together. Every other route stays on HttpApi, and the contract (`/openapi.json`,
 * the typed client) still describes this one.
 *
 * @since 0.1.0
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { ApiError, ApiModel } from "@refundkit/api"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { InvalidRequest } from "@refundkit/core/RefundError"
import { type Created, type CreateError as CoreCreateError, Refunds } from "@refundkit/core/Refunds"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import type * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type * as Http from "node:http"
import { performance } from "node:perf_hooks"
import * as ApiErrors from "./ApiErrors.js"
import * as ApiKeys from "./ApiKeys.js"
import { checkKey, sentKeys } from "./IdempotencyKey.js"
import * as RequestBody from "./RequestBody.js"
import * as RequestMiddleware from "./RequestMiddleware.js"

// The Either decoder: the Effect one costs several times as much on every create.
const decodeCreate = Schema.decodeUnknownEither(ApiModel.CreateRefund, { errors: "all" })

/**
 * Why a create is answered with an error.
 *
 * @since 0.1.0
 */
export type CreateError = ApiError.InvalidRequest | ApiErrors.Mapping[CoreCreateError["_tag"]]

/**
 * Parses and decodes the body, then creates (or replays) the refund.
 *
 * @since 0.1.0
 */
export const create = (service: Refunds["Type"], key: string, text: string): Effect.Effect<Created, CreateError> => {
  // Parsed and decoded as the Effect is built (both are pure): a `flatMap` over the parse would be two more operations per create.
  const json = RequestBody.parseObject(text)
  if (Either.isLeft(json)) return Effect.fail(json.left)
  const decoded = decodeCreate(json.right)
  if (Either.isLeft(decoded)) return Effect.fail(ApiErrors.fromRefundError(InvalidRequest.fromParseError(decoded.left)))
  const { originalAmounts, provider, ...providerRequest } = decoded.right
  return Effect.mapError(
    service.create({ provider, request: providerRequest, idempotencyKey: key, originalAmounts }),
    ApiErrors.fromRefundError
  )
}

const locationOf = (refund: Created["refund"]): string => `/v1/refunds/${refund.id}`

const replayedHeaders: Readonly<Record<string, string>> = { "idempotent-replayed": "true" }

/**
 * A replay's status and body: 200 with the refund, or the error its create was first answered
 * with while the refund still stands there (`ApiErrors.fromReplay`); `undefined` for a body the
 * error's wire schema could not encode.
 *
 * @since 0.6.0
 */
export const replayOf = (refund: Created["refund"]): { readonly status: number; readonly body: unknown } | undefined => {
  const error = ApiErrors.fromReplay(refund)
  if (error === undefined) return { status: 200, body: refund }
  const encoder = ApiErrors.encoders[error._tag]
  const encoded = encoder.encode(error)
  return Either.isRight(encoded) ? { status: encoder.status, body: encoded.right } : undefined
}

/**
 * 201 with the refund and its `Location`, or for a replay {@link replayOf} with `Idempotent-Replayed: true`.
 *
 * @since 0.1.0
 */
export const toResponse = (created: Created): HttpServerResponse.HttpServerResponse => {
  if (!created.replayed) return HttpServerResponse.unsafeJson(created.refund, { status: 201, headers: { location: locationOf(created.refund) } })
  const replay = replayOf(created.refund)
  return replay === undefined
    ? HttpServerResponse.unsafeJson({ error: { code: internalError.code, message: internalError.message } }, { status: ApiErrors.encoders.InternalError.status })
    : HttpServerResponse.unsafeJson(replay.body, { status: replay.status, headers: replayedHeaders })
}

const internalError = new ApiError.InternalError({ message: "Something went wrong in the gateway. The request id in X-Request-Id finds it in the logs." })

/**
 * The direct route: whether it answers a request, and the handler that does.
 *
 * @since 0.1.0
 */
export interface Route {
  readonly matches: (request: Http.IncomingMessage) => boolean
  readonly handle: (request: Http.IncomingMessage, response: Http.ServerResponse) => void
}

const singleHeader = (value: string | Array<string> | undefined): string | undefined => (typeof value === "string" ? value : undefined)

/**
 * Builds the route over the Refunds service in context. Each request's fiber runs on
 * the runtime of the layer that builds this, like the platform's own handler, so it
 * inherits the same logger and the disabled tracer.
 *
 * @since 0.1.0
 */
export const make = (options: {
  readonly apiKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly bodyLimitBytes: number
  readonly accessLog: RequestMiddleware.AccessLog
  readonly metrics?: RequestMiddleware.Observers["metrics"]
}): Effect.Effect<Route, never, Refunds> =>
  Effect.gen(function*() {
    const service = yield* Refunds
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const verify = ApiKeys.makeVerify(options.apiKeys)
    const limit = options.bodyLimitBytes

    // Every spelling HttpApi's router would take to its create handler (repeated slashes, a
    // trailing slash, any case), which stops the refund when the client hangs up: this route must
    // answer them all.
    const createPath = /^\/+v1\/+refunds\/*(?:[?#]|$)/i
    const matches = (request: Http.IncomingMessage): boolean => request.method === "POST" && createPath.test(request.url ?? "")

    const handle = (request: Http.IncomingMessage, response: Http.ServerResponse): void => {
      const started = performance.now()
      const requestId = RequestMiddleware.requestIdOf(singleHeader(request.headers["x-request-id"]))
      const timing: ProviderHttp.Timing = { millis: 0, calls: 0 }

      // `own` are the answer's own headers; an error answer also gets those its body implies (Retry-After).
      const answer = (status: number, body: unknown, own: Http.OutgoingHttpHeaders | undefined): void => {
        if (response.headersSent) return
        const total = performance.now() - started
        const provider = Math.min(ProviderHttp.providerMillis(timing), total)
        // A client that hung up gets no answer, but its refund went on: the line says what it would have been told.
        if (response.destroyed) {
          RequestMiddleware.finished(options, { requestId, method: "POST", url: request.url ?? "", status, totalMillis: total, timing, providerMillis: provider, clientGone: true })
          return
        }
        const text = JSON.stringify(body)
        const headers: Http.OutgoingHttpHeaders = {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
          "x-request-id": requestId,
          "server-timing": RequestMiddleware.serverTiming(total, provider)
        }
        const implied = status >= 400 ? RequestMiddleware.errorHeadersOf(status, text) : undefined
        response.writeHead(status, Object.assign(headers, implied, own))
        response.end(text)
        RequestMiddleware.finished(options, { requestId, method: "POST", url: request.url ?? "", status, totalMillis: total, timing, providerMillis: provider })
      }

      const refuse = (error: ApiError.ApiError): void => {
        const encoder = ApiErrors.encoders[error._tag]
        const encoded = encoder.encode(error)
        if (Either.isRight(encoded)) return answer(encoder.status, encoded.right, undefined)
        defect(Cause.die(encoded.left))
      }

      const defect = (cause: Cause.Cause<unknown>): void => {
        runFork(Effect.logError("unhandled defect", cause).pipe(Effect.annotateLogs("requestId", requestId)))
        answer(ApiErrors.encoders.InternalError.status, { error: { code: internalError.code, message: internalError.message } }, undefined)
      }

      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > limit) return refuse(RequestBody.tooLarge(limit))
      const unauthorized = verify(ApiKeys.bearerOf(request.headers.authorization))
      if (unauthorized !== undefined) return refuse(unauthorized)
      const key = checkKey(sentKeys(request))
      if (Either.isLeft(key)) return refuse(key.left)
      const unsupported = RequestBody.unsupportedMediaType(request.headers)
      if (unsupported !== undefined) return refuse(unsupported)

      RequestBody.collect(request, limit, (body) => {
        if (Either.isLeft(body)) return refuse(body.left)
        // The request's timing and log annotation are set as the fiber is made: one copy of
        // its FiberRefs, where a FiberRef.set inside the fiber copies them once per change.
        const fiber = runFork(create(service, key.right, body.right), {
          updateRefs: (refs, fiberId) =>
            FiberRefs.updateManyAs(refs, {
              entries: [
                [ProviderHttp.currentTiming, [[fiberId, timing]]],
                [
                  FiberRef.currentLogAnnotations,
                  [[fiberId, HashMap.set(FiberRefs.getOrDefault(refs, FiberRef.currentLogAnnotations), "requestId", requestId as unknown)]]
                ]
              ]
            })
        })
        // Unlike the platform, a client that hangs up does not interrupt its refund: once the key
        // is claimed, stopping halfway would leave the refund in `requested` (and a call already
        // sent in doubt) until recovery. It runs to its outcome, and a retry with the key replays it.
        fiber.addObserver(
          Exit.match({
            onSuccess: (created) => {
              if (!created.replayed) {
                options.metrics?.created(created.refund)
                return answer(201, created.refund, { location: locationOf(created.refund) })
              }
              const replay = replayOf(created.refund)
              if (replay === undefined) return defect(Cause.die(new Error(`the replayed error of ${created.refund.id} could not be encoded`)))
              answer(replay.status, replay.body, replayedHeaders)
            },
            onFailure: (cause) => {
              const failure = Cause.failureOption(cause)
              if (failure._tag === "Some") return refuse(failure.value)
              if (Cause.isInterruptedOnly(cause)) {
                if (!response.headersSent && !response.destroyed) response.writeHead(503).end()
                return
              }
              defect(cause)
            }
          })
        )
      })
    }

    return { matches, handle }
  })
