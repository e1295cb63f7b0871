/**
 * The `Idempotency-Key` header of `POST /v1/refunds`, checked before the body is read:
 * 1 to 255 printable ASCII characters.
 *
 * @since 0.1.0
 */
import { ApiError } from "@refundkit/api"
import * as Either from "effect/Either"

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

/**
 * The Idempotency-Key header, checked before the body is read.
 *
 * @since 0.1.0
 */
export const checkKey = (key: string | undefined): Either.Either<string, ApiError.MissingIdempotencyKey | ApiError.InvalidRequest> =>
  key === undefined ? Either.left(missingKey) : key === "" ? Either.left(emptyKey) : printable.test(key) ? Either.right(key) : Either.left(badKey)
