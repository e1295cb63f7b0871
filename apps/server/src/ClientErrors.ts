/**
 * Requests Node's HTTP parser refuses before any route sees them: headers over the
 * limit, a malformed request line, header or chunked body. Node's own answer is a bare status with
 * no body; the gateway answers them in its error shape instead (431
 * `headers_too_large` with the limit, 400 `invalid_request` naming the part of the
 * request that broke the rule), with an `X-Request-Id` and an access log line, after
 * the response to the request before it on the same connection, if one is still being
 * written, and then closes the connection as Node does: after a parse error the rest
 * of the stream cannot be trusted.
 *
 * @since 0.1.0
 */
import { ApiError } from "@refundkit/api"
import * as Either from "effect/Either"
import * as Http from "node:http"
import type * as Stream from "node:stream"
import * as ApiErrors from "./ApiErrors.js"
import * as RequestMiddleware from "./RequestMiddleware.js"

/**
 * What a parse error is answered with.
 *
 * @since 0.1.0
 */
export type Refusal = ApiError.HeadersTooLarge | ApiError.InvalidRequest

// llhttp's error codes (`HPE_*`), by the part of the request they are about.
const partOf = (code: string): string => {
  if (code === "HPE_INVALID_METHOD") return "method"
  if (code === "HPE_INVALID_URL") return "url"
  if (code === "HPE_INVALID_VERSION") return "version"
  if (/CHUNK/.test(code)) return "body"
  if (/HEADER|CONTENT_LENGTH|TRANSFER_ENCODING/.test(code)) return "headers"
  return "request"
}

/**
 * The refusal for a parser error, or `undefined` when the error is not about the
 * request's text (a reset, a timeout), which gets Node's answer.
 *
 * @since 0.1.0
 */
export const refusalFor = (code: string, reason: string, maxHeaderBytes: number): Refusal | undefined => {
  if (code === "HPE_HEADER_OVERFLOW") {
    return new ApiError.HeadersTooLarge({
      message: `The request line and headers are larger than ${maxHeaderBytes} bytes.`,
      limitBytes: maxHeaderBytes
    })
  }
  if (!code.startsWith("HPE_")) return undefined
  const part = partOf(code)
  const rule = reason === "" ? code : reason
  return new ApiError.InvalidRequest({
    message: `The request is not valid HTTP/1.1 (${part}: ${rule}); nothing was sent to a provider.`,
    issues: [{ path: part, message: `not valid HTTP/1.1: ${rule}` }]
  })
}

const statusText = (status: number): string => Http.STATUS_CODES[status] ?? "Error"

/**
 * The whole response, as bytes for the socket (headers, then the JSON body), and its status.
 *
 * @since 0.1.0
 */
export const response = (refusal: Refusal, requestId: string): { readonly status: number; readonly text: string } => {
  const encoder = ApiErrors.encoders[refusal._tag]
  // Both wire schemas only drop the tag: encoding cannot fail, but a failure must not leave the client without an answer.
  const body = JSON.stringify(Either.getOrElse(encoder.encode(refusal), () => ({ error: { code: refusal.code, message: refusal.message } })))
  const text = [
    `HTTP/1.1 ${encoder.status} ${statusText(encoder.status)}`,
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    "Connection: close",
    "",
    body
  ].join("\r\n")
  return { status: encoder.status, text }
}

const stringField = (value: object, key: string): string | undefined => {
  const field: unknown = Reflect.get(value, key)
  return typeof field === "string" ? field : undefined
}

// The response this socket is still writing (keep-alive: the request before the bad
// one). `_httpMessage` is Node's field for it; it has no public accessor.
const responseInFlight = (socket: Stream.Duplex): Http.ServerResponse | undefined => {
  const message: unknown = Reflect.get(socket, "_httpMessage")
  return message instanceof Http.ServerResponse && !message.writableFinished ? message : undefined
}

/**
 * A `clientError` listener for `server`. Node stops answering client errors itself once
 * one is registered, so every error is handled here: parse errors in the error shape,
 * a reset by closing, anything else (a request that took too long) with Node's bare status.
 *
 * @since 0.1.0
 */
export const listener = (options: RequestMiddleware.Observers & { readonly maxHeaderBytes: number }) =>
(error: Error, socket: Stream.Duplex): void => {
  const code = stringField(error, "code") ?? ""
  const inFlight = responseInFlight(socket)
  if (code === "ECONNRESET" || !socket.writable) {
    socket.destroy()
    return
  }
  const refusal = refusalFor(code, stringField(error, "reason") ?? "", options.maxHeaderBytes)
  if (refusal === undefined) {
    // As Node does: a bare status, unless a response has begun on this socket.
    if (inFlight?.headersSent === true) socket.destroy()
    else socket.end(`HTTP/1.1 ${code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request"}\r\nConnection: close\r\n\r\n`)
    return
  }
  const requestId = RequestMiddleware.requestIdOf(undefined)
  const answered = response(refusal, requestId)
  const answer = () => socket.end(answered.text)
  if (inFlight === undefined) answer()
  // The request before the bad one, read whole, is still being answered: the refusal
  // follows its response, so the client reads both in order (Node would give up).
  else if (inFlight.req.complete) inFlight.once("finish", answer)
  // The error is in this request's own body, which its route can never finish reading:
  // the refusal is its answer, unless the route has begun another one.
  else if (!inFlight.headersSent) answer()
  else {
    socket.destroy()
    return
  }
  RequestMiddleware.finished(options, {
    requestId,
    method: "-",
    url: "-",
    status: answered.status,
    totalMillis: 0,
    timing: { millis: 0, calls: 0 },
    providerMillis: 0
  })
}
