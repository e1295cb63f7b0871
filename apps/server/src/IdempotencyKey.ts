/**
 * The `Idempotency-Key` header of `POST /v1/refunds`, checked before the body is read:
 * 1 to 255 printable ASCII characters.
 *
 * @since 0.1.0
 */
import { ApiError } from "@refundkit/api"
import * as Either from "effect/Either"
import type { IncomingMessage } from "node:http"

/**
 * The answer to a create without an Idempotency-Key.
 *
 * @since 0.1.0
 */
export const missingKey = new ApiError.MissingIdempotencyKey({
  message: "The Idempotency-Key header is required: send a unique key (1 to 255 printable characters) per refund, and the same key when you retry it."
})

const printable = /^[\x20-\x7e]{1,255}$/

const emptyKey = new ApiError.MissingIdempotencyKey({ message: "The Idempotency-Key header is empty: send a unique key per refund." })

const badKey = new ApiError.InvalidRequest({
  message: "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
  issues: [{ path: "Idempotency-Key", message: "must be 1 to 255 printable ASCII characters" }]
})

// Node joins a repeated header's values with ", ": two keys (a proxy adding its own, say) would
// make a key no retry of either sender carries.
const repeatedKey = new ApiError.InvalidRequest({
  message: "The Idempotency-Key header was sent more than once: send one key per refund.",
  issues: [{ path: "Idempotency-Key", message: "must be sent once" }]
})

/**
 * Each value the Idempotency-Key header was sent with. Node's `headersDistinct` would build
 * every header's list on each create; only a joined value (one holding ", ") needs the raw lines.
 *
 * @since 0.1.0
 */
export const sentKeys = (message: IncomingMessage): ReadonlyArray<string> | undefined => {
  const joined = message.headers["idempotency-key"]
  if (typeof joined !== "string") return joined
  if (!joined.includes(", ")) return [joined]
  const raw = message.rawHeaders
  const values: Array<string> = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === "idempotency-key") values.push(raw[i + 1]!)
  return values
}

/**
 * The Idempotency-Key header, checked before the body is read: each value it was sent
 * with ({@link sentKeys}).
 *
 * @since 0.1.0
 */
export const checkKey = (sent: ReadonlyArray<string> | undefined): Either.Either<string, ApiError.MissingIdempotencyKey | ApiError.InvalidRequest> => {
  if (sent === undefined || sent.length === 0) return Either.left(missingKey)
  if (sent.length > 1) return Either.left(repeatedKey)
  const key = sent[0]!
  return key === "" ? Either.left(emptyKey) : printable.test(key) ? Either.right(key) : Either.left(badKey)
}
