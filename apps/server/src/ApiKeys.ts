/**
 * The API key check behind `Authorization: Bearer <key>`: keys are compared as
 * SHA-256 digests with `crypto.timingSafeEqual`, against every configured key with
 * no early exit, so neither a key's content nor which key matched leaks through timing.
 *
 * @since 0.1.0
 */
import { ApiError, Authorization } from "@refundkit/api"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/**
 * A predicate over presented keys, built once from the configured keys.
 *
 * @since 0.1.0
 */
export const makeCheck = (keys: ReadonlyArray<Redacted.Redacted<string>>): (presented: string) => boolean => {
  const digests = keys.map((key) => digest(Redacted.value(key)))
  return (presented) => {
    const candidate = digest(presented)
    let matched = false
    for (const known of digests) matched = timingSafeEqual(known, candidate) || matched
    return matched
  }
}

const missing = new ApiError.Unauthorized({ message: "Missing API key: send `Authorization: Bearer <key>`." })
// Also what a key sent without its scheme (`Authorization: <key>`) gets: the scheme is cut off unread, as HttpApi does.
const unknown = new ApiError.Unauthorized({
  message: "Unknown API key: send `Authorization: Bearer <key>` with a key from REFUNDKIT_API_KEYS (or the sandbox key printed at start)."
})

// A 401 must name the scheme that would be accepted (RFC 9110 section 11.6.1); a key that was
// presented and refused adds `error="invalid_token"` (RFC 6750 section 3.1), a missing one does not.
const bearerChallenge = `Bearer realm="refundkit"`
const unknownInBody = JSON.stringify(unknown.message)

/**
 * The `WWW-Authenticate` challenge for a 401's JSON body, when it refuses the API key
 * (a webhook's 401, refused for its signature, has none).
 *
 * @since 0.1.0
 */
export const challengeOf = (body: string): string | undefined =>
  !body.includes(`"code":"unauthorized"`) ? undefined : body.includes(unknownInBody) ? `${bearerChallenge}, error="invalid_token"` : bearerChallenge

/**
 * The key in an `Authorization` header, read as HttpApi's bearer scheme reads it:
 * whatever follows the first seven characters (`Bearer `).
 *
 * @since 0.1.0
 */
export const bearerOf = (header: string | undefined): string => (header ?? "").slice("Bearer ".length)

/**
 * Why a presented key is refused (none given, or not a configured one), or undefined
 * when it is accepted.
 *
 * @since 0.1.0
 */
export const makeVerify = (keys: ReadonlyArray<Redacted.Redacted<string>>): (presented: string) => ApiError.Unauthorized | undefined => {
  const check = makeCheck(keys)
  return (presented) => (presented === "" ? missing : check(presented) ? undefined : unknown)
}

/**
 * The gateway's implementation of the contract's `Authorization` middleware.
 *
 * @since 0.1.0
 */
export const layer = (keys: ReadonlyArray<Redacted.Redacted<string>>): Layer.Layer<Authorization.Authorization> => {
  const verify = makeVerify(keys)
  return Layer.succeed(
    Authorization.Authorization,
    Authorization.Authorization.of({
      bearer: (token) => {
        const refused = verify(Redacted.value(token))
        return refused === undefined ? Effect.void : Effect.fail(refused)
      }
    })
  )
}

/**
 * A fresh random key for sandbox mode: `rk_sandbox_` and 32 hex characters.
 *
 * @since 0.1.0
 */
export const generate = (): Redacted.Redacted<string> => Redacted.make(`rk_sandbox_${randomBytes(16).toString("hex")}`)
