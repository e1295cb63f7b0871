/**
 * Reading a request body: its `Content-Type` checked before it is read, then collected as
 * UTF-8 text under the body limit and parsed as one JSON object no deeper than any
 * provider's request. Shared by the HttpApi handlers and the direct `POST /v1/refunds`
 * route, so both answer alike.
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

/**
 * Request headers by lower-cased name, as Node and the platform both give them.
 *
 * @since 0.6.0
 */
export type RequestHeaders = { readonly [name: string]: string | ReadonlyArray<string> | undefined }

const single = (headers: RequestHeaders, name: string): string | undefined => {
  const value = headers[name]
  return typeof value === "string" ? value : undefined
}

// RFC 9110 8.3.1: type "/" subtype, then `; name=value` parameters (a value a token or a quoted
// string); matched on the lower-cased header, since every part the rule reads is case-insensitive.
const mediaTypePattern = /^[ \t]*([!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+)[ \t]*/
const parameterPattern = /;[ \t]*(?:([!#$%&'*+.^_`|~0-9a-z-]+)[ \t]*=[ \t]*([!#$%&'*+.^_`|~0-9a-z-]+|"(?:[^"\\]|\\.)*")[ \t]*)?/y
// RFC 6839 3.1: a `+json` type is JSON, and is read as plain JSON here.
const jsonSubtype = /^application\/(?:json|[^/]+\+json)$/

const rule = "send Content-Type: application/json (charset=utf-8 may follow) with a JSON body"

const refusal = (why: string) =>
  new ApiError.UnsupportedMediaType({ message: `${why}: ${rule}. Nothing was read, sent to a provider or recorded.` })

const noType = refusal("The request has a body and no Content-Type")

const shown = (value: string): string => JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value)

/**
 * The refusal of a body not declared as JSON, decided from the headers before the body is read;
 * `undefined` when it may be read. JSON is `application/json` in any case, with a `charset`
 * parameter only if it is UTF-8 (the body is read as UTF-8: a UTF-16 body would be garbled, not
 * refused), other parameters ignored; or a `+json` type, which RFC 6839 makes JSON. A body sent
 * without a `Content-Type` is refused too: its sender never said it is JSON, and a client that
 * works only because its body happened to parse breaks on the first body that does not. A request
 * with neither a body nor a type is let through, since there is nothing to type: the body's own
 * check then says what is missing.
 *
 * @since 0.6.0
 */
export const unsupportedMediaType = (headers: RequestHeaders): ApiError.UnsupportedMediaType | undefined => {
  const given = single(headers, "content-type")
  if (given === "application/json") return undefined
  if (given === undefined || given.trim() === "") {
    // RFC 9112 6.3: a request with neither header has no body.
    const length = single(headers, "content-length")
    const hasBody = headers["transfer-encoding"] !== undefined || (length !== undefined && Number(length) !== 0)
    return hasBody ? noType : undefined
  }
  const lower = given.toLowerCase()
  const type = mediaTypePattern.exec(lower)
  if (type === null || !jsonSubtype.test(type[1]!)) return refusal(`Content-Type ${shown(given)} is not JSON`)
  parameterPattern.lastIndex = type[0].length
  while (parameterPattern.lastIndex < lower.length) {
    const parameter = parameterPattern.exec(lower)
    if (parameter === null) return refusal(`Content-Type ${shown(given)} is not a media type this gateway can read`)
    if (parameter[1] !== "charset") continue
    const value = parameter[2]!.startsWith("\"") ? parameter[2]!.slice(1, -1) : parameter[2]!
    if (value !== "utf-8") return refusal(`Content-Type ${shown(given)} names a charset other than UTF-8`)
  }
  return undefined
}

/**
 * {@link unsupportedMediaType} for an HttpApi handler.
 *
 * @since 0.6.0
 */
export const requireJson = (headers: RequestHeaders): Effect.Effect<void, ApiError.UnsupportedMediaType> => {
  const refused = unsupportedMediaType(headers)
  return refused === undefined ? Effect.void : Effect.fail(refused)
}

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
