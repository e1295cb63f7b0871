/**
 * Reading a request body: collected as UTF-8 text under the body limit, then parsed
 * as one JSON object no deeper than any provider's request. Shared by the HttpApi
 * handlers and the direct `POST /v1/refunds` route, so both answer alike.
 *
 * @since 0.1.0
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { ApiError } from "@refundkit/api"
import * as JsonNumbers from "@refundkit/core/JsonNumbers"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { IncomingMessage } from "node:http"

/**
 * The default request body limit: 1 MiB.
 *
 * @since 0.1.0
 */
export const defaultBodyLimitBytes = 1024 * 1024

/**
 * The answer to a body over `limit` bytes.
 *
 * @since 0.1.0
 */
export const tooLarge = (limit: number): ApiError.PayloadTooLarge =>
  new ApiError.PayloadTooLarge({ message: `The request body is larger than ${limit} bytes.`, limitBytes: limit })

const unreadable = new ApiError.InvalidRequest({ message: "The request body could not be read.", issues: [{ path: "", message: "unreadable body" }] })

/**
 * Collects a Node request body as UTF-8 text and calls `done` once. Past `limit` it
 * stops collecting, lets the rest of the upload drain and answers `payload_too_large`:
 * the connection stays usable for that answer (the platform's own reader destroys the
 * socket instead, so a client streaming a large body would see a reset rather than the
 * error). Returns a function that stops listening.
 *
 * @since 0.1.0
 */
export const collect = (
  source: IncomingMessage,
  limit: number,
  done: (result: Either.Either<string, ApiError.PayloadTooLarge | ApiError.InvalidRequest>) => void
): () => void => {
  const chunks: Array<Buffer> = []
  let size = 0
  const detach = () => {
    source.off("data", onData)
    source.off("end", onEnd)
    source.off("error", onError)
  }
  const onData = (chunk: Buffer) => {
    size += chunk.length
    if (size <= limit) return void chunks.push(chunk)
    detach()
    source.resume()
    done(Either.left(tooLarge(limit)))
  }
  const onEnd = () => {
    detach()
    done(Either.right(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")))
  }
  const onError = () => {
    detach()
    done(Either.left(unreadable))
  }
  source.on("data", onData)
  source.on("end", onEnd)
  source.on("error", onError)
  return detach
}

/**
 * {@link collect} for an HttpApi handler, under the body limit in force.
 *
 * @since 0.1.0
 */
export const text = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<string, ApiError.PayloadTooLarge | ApiError.InvalidRequest> =>
  Effect.flatMap(HttpIncomingMessage.MaxBodySize, (maxBodySize) => {
    const limit = Option.match(maxBodySize, { onNone: () => defaultBodyLimitBytes, onSome: Number })
    return Effect.async<string, ApiError.PayloadTooLarge | ApiError.InvalidRequest>((resume) => {
      const detach = collect(NodeHttpServerRequest.toIncomingMessage(request), limit, resume)
      return Effect.sync(detach)
    })
  })

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

const invalidBody = (message: string, issue: string) => new ApiError.InvalidRequest({ message, issues: [{ path: "body", message: issue }] })

/**
 * A JSON object body, or the reason it is not one, naming the body.
 *
 * @since 0.1.0
 */
export const parseObject = (text: string): Either.Either<Record<string, unknown>, ApiError.InvalidRequest> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left(invalidBody("The request body is not valid JSON.", `not valid JSON${error instanceof Error ? `: ${error.message}` : ""}`))
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value
    return Either.left(invalidBody("The request body must be a JSON object.", `must be a JSON object, got ${got}`))
  }
  if (depthOf(value) > maxDepth) {
    return Either.left(invalidBody("The request body is nested too deeply.", `must be nested at most ${maxDepth} levels deep`))
  }
  // JSON.parse rounds what a double cannot hold (250.000000000000001 is 250): the schema would check, and
  // the provider be sent, a value the client never wrote.
  const inexact = JsonNumbers.inexactNumbers(text)
  if (inexact.length > 0) {
    return Either.left(new ApiError.InvalidRequest({
      message: `The request body has a JSON number that cannot be read exactly: ${inexact.map((n) => `${n.path} (${n.literal})`).join(", ")}.`,
      issues: inexact.map((n) => ({ path: n.path, message: JsonNumbers.refusal(n) }))
    }))
  }
  return Either.right(value as Record<string, unknown>)
}
