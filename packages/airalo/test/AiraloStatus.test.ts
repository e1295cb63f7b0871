import * as Headers from "@effect/platform/Headers"
import { assert, describe, it } from "@effect/vitest"
import type * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { Effect, Option } from "effect"
import * as AiraloRequest from "../src/AiraloRequest.js"
import * as AiraloStatus from "../src/AiraloStatus.js"

// Answers as Airalo documents them, read the way ProviderHttp.send hands them over.
const received = (status: number, body: unknown, headers: Record<string, string> = {}): ProviderHttp.Received => {
  const text = typeof body === "string" ? body : JSON.stringify(body)
  let json = Option.none<unknown>()
  try {
    json = Option.some(JSON.parse(text) as unknown)
  } catch {
    json = Option.none()
  }
  return { status, headers: Headers.fromInput(headers), text, json }
}

const refundError = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Effect.flip(AiraloStatus.refundResponse(received(status, body, headers)))

const invalidReason = `The selected reason is invalid. It must be one of the following: ${AiraloRequest.reasons.join(", ")}`

describe("AiraloStatus", () => {
  it("an accepted request is pending under review, whatever words follow", () => {
    assert.strictEqual(AiraloStatus.toStatus(AiraloStatus.acceptedForReview), "pending")
    assert.strictEqual(AiraloStatus.toStatus("SOMETHING_NEW"), "pending")
    assert.strictEqual(AiraloStatus.statusRank(AiraloStatus.acceptedForReview), 1)
    assert.isUndefined(AiraloStatus.statusRank("SOMETHING_NEW"))
  })

  it("the outcome of a 202 gives every ICCID the call's one refund_id", () => {
    const outcome = AiraloStatus.acceptedOutcome({ data: { refund_id: "12345", created_at: "2024-10-12 09:30" }, meta: { message: "success" } }, ["1", "2"])
    assert.strictEqual(outcome.status, "pending")
    assert.strictEqual(outcome.providerStatus, "accepted_for_review")
    assert.strictEqual(outcome.providerReference, "12345")
    assert.deepStrictEqual(outcome.references, { refund_id: "12345", created_at: "2024-10-12 09:30" })
    assert.deepStrictEqual(outcome.items, [
      { target: "1", status: "pending", providerStatus: "accepted_for_review", providerReference: "12345" },
      { target: "2", status: "pending", providerStatus: "accepted_for_review", providerReference: "12345" }
    ])
    assert.include(outcome.detail, "Airalo credits")
  })

  it.effect("202 is decoded; a numeric refund_id is read as its string", () =>
    Effect.gen(function*() {
      const ok = yield* AiraloStatus.refundResponse(received(202, { data: { refund_id: "12345", created_at: "2024-10-12 09:30" }, meta: { message: "success" } }))
      assert.strictEqual(ok.data.refund_id, "12345")
      const numeric = yield* AiraloStatus.refundResponse(received(202, { data: { refund_id: 777, created_at: "2024-10-12 09:30" }, meta: { message: "success" } }))
      assert.strictEqual(numeric.data.refund_id, "777")
    }))

  it.effect("a 2xx of the wrong shape or not JSON is UnexpectedResponse naming the field", () =>
    Effect.gen(function*() {
      const missing = yield* refundError(202, { data: { created_at: "2024-10-12 09:30" }, meta: { message: "success" } })
      assert.strictEqual(missing._tag, "UnexpectedResponse")
      if (missing._tag === "UnexpectedResponse") assert.strictEqual(missing.path, "data.refund_id")
      const html = yield* refundError(202, "<html>oops")
      assert.strictEqual(html._tag, "UnexpectedResponse")
    }))

  it.effect("Airalo's error envelope sent with a 2xx (its docs file the error examples under 202 and 200) is read as the error it is", () =>
    Effect.gen(function*() {
      const foreign = "The following ICCIDs do not belong to your company: 894000000000001, 894000000000002"
      const owned = yield* refundError(202, { data: [], meta: { message: foreign } })
      assert.isTrue(owned._tag === "ProviderDeclined" && owned.providerCode === AiraloStatus.notOwnedCode && owned.reason === foreign)
      const required = yield* refundError(202, { data: [], meta: { message: "The iccids field is required." } })
      assert.isTrue(required._tag === "InvalidRequest" && required.issues[0]!.path === "iccids")
      const reason = yield* refundError(202, { data: { reason: invalidReason }, meta: { message: "the parameter is invalid" } })
      assert.isTrue(reason._tag === "InvalidRequest" && reason.issues[0]!.path === "reason")
      // An acceptance that lost its refund_id is still in doubt, not a refusal.
      const noId = yield* refundError(202, { data: { created_at: "2024-10-12 09:30" }, meta: { message: "success" } })
      assert.isTrue(noId._tag === "UnexpectedResponse" && noId.path === "data.refund_id")
      const wrongSecret = yield* Effect.flip(AiraloStatus.tokenResponse(received(200, { data: [], meta: { message: "Client authentication failed" } })))
      assert.isTrue(wrongSecret._tag === "ProviderAuthFailed" && wrongSecret.detail.includes("Client authentication failed"))
      const wrongId = yield* Effect.flip(AiraloStatus.tokenResponse(received(200, { data: { client_id: "The selected client id is invalid." }, meta: { message: "the parameter is invalid" } })))
      assert.isTrue(wrongId._tag === "ProviderAuthFailed" && wrongId.detail.includes("The selected client id is invalid."))
    }))

  it.effect("a business error {code, reason} is a decline with its code, also when sent with 200", () =>
    Effect.gen(function*() {
      const recycled = yield* refundError(422, { code: 73, reason: "The eSIM with iccid 8910300000005271146 has been recycled." })
      assert.strictEqual(recycled._tag, "ProviderDeclined")
      if (recycled._tag === "ProviderDeclined") {
        assert.strictEqual(recycled.providerCode, "73")
        assert.strictEqual(recycled.reason, "The eSIM with iccid 8910300000005271146 has been recycled.")
        assert.strictEqual(recycled.action, "none")
      }
      const unexpected = yield* refundError(200, { code: 53, reason: "Unexpected error" })
      assert.isTrue(unexpected._tag === "ProviderDeclined" && unexpected.providerCode === "53" && unexpected.action === "retry")
      const unknownCode = yield* refundError(422, { code: 999, reason: "New rule" })
      assert.isTrue(unknownCode._tag === "ProviderDeclined" && unknownCode.action === "contact_support")
    }))

  it.effect("422 with a field map is InvalidRequest on Airalo's fields, in Airalo's words", () =>
    Effect.gen(function*() {
      const error = yield* refundError(422, { data: { reason: invalidReason, "iccids.1": ["The iccids.1 field must be a string of digits."] }, meta: { message: "the parameter is invalid" } })
      assert.strictEqual(error._tag, "InvalidRequest")
      if (error._tag === "InvalidRequest") {
        assert.deepStrictEqual(error.issues, [
          { path: "reason", message: invalidReason },
          { path: "iccids.1", message: "The iccids.1 field must be a string of digits." }
        ])
        assert.strictEqual(error.provider, "airalo")
      }
    }))

  it.effect("422 with only a message: a field's rule is InvalidRequest, the ownership refusal and the rest are declines", () =>
    Effect.gen(function*() {
      const required = yield* refundError(422, { data: [], meta: { message: "The iccids field is required." } })
      assert.isTrue(required._tag === "InvalidRequest" && required.issues[0]!.path === "iccids" && required.issues[0]!.message === "The iccids field is required.")
      const foreign = "The following ICCIDs do not belong to your company: 894000000000001, 894000000000002"
      const owned = yield* refundError(422, { data: [], meta: { message: foreign } })
      assert.strictEqual(owned._tag, "ProviderDeclined")
      if (owned._tag === "ProviderDeclined") {
        assert.strictEqual(owned.providerCode, AiraloStatus.notOwnedCode)
        assert.strictEqual(owned.reason, foreign)
        assert.include(owned.message, foreign)
      }
      const other = yield* refundError(422, { data: [], meta: { message: "Refund window closed." } })
      assert.isTrue(other._tag === "ProviderDeclined" && other.providerCode === AiraloStatus.unprocessableCode && other.reason === "Refund window closed.")
      const garbage = yield* refundError(422, { nope: true })
      assert.strictEqual(garbage._tag, "UnexpectedResponse")
    }))

  it.effect("401 and 403 are ProviderAuthFailed; the IP allowlist refusal says what to do", () =>
    Effect.gen(function*() {
      const unauthorized = yield* refundError(401, { data: [], meta: { message: "Authentication failed." } })
      assert.isTrue(unauthorized._tag === "ProviderAuthFailed" && unauthorized.detail.includes("Authentication failed."))
      const blocked = yield* refundError(403, { code: 89, reason: "IP not allowed" })
      assert.strictEqual(blocked._tag, "ProviderAuthFailed")
      assert.include(blocked.message, "code 89: IP not allowed")
      assert.include(blocked.message, "IP allowlist")
      assert.include(blocked.message, "public IP address")
    }))

  it.effect("429 is ProviderUnavailable with Retry-After, not processed; 5xx per core's reading", () =>
    Effect.gen(function*() {
      const limited = yield* refundError(429, { message: "Too Many Attempts." }, { "retry-after": "300" })
      assert.strictEqual(limited._tag, "ProviderUnavailable")
      if (limited._tag === "ProviderUnavailable") {
        assert.strictEqual(limited.retryAfterMillis, 300_000)
        assert.isFalse(limited.maybeProcessed)
        assert.strictEqual(limited.httpStatus, 429)
        assert.include(limited.detail, "Too Many Attempts")
        assert.include(limited.message, "Too Many Attempts.")
      }
      const server = yield* refundError(500, { message: "Server Error" })
      assert.isTrue(server._tag === "ProviderUnavailable" && server.maybeProcessed)
      const gateway = yield* refundError(502, "<html>Bad Gateway</html>")
      assert.isTrue(gateway._tag === "ProviderUnavailable" && gateway.maybeProcessed)
      // Airalo has no idempotency: only a 503 that says when to come back is proof that nothing was done.
      const unavailable = yield* refundError(503, { message: "Service Unavailable" })
      assert.isTrue(unavailable._tag === "ProviderUnavailable" && unavailable.maybeProcessed)
    }))

  it.effect("Airalo's words that end a detail keep one full stop: 429, 5xx and another 4xx, on /refund and /token", () =>
    Effect.gen(function*() {
      const errors = [
        yield* refundError(429, { message: "Too Many Attempts." }, { "retry-after": "300" }),
        yield* refundError(500, { message: "Server Error." }),
        yield* refundError(503, { message: "Service Unavailable." }),
        yield* refundError(400, { message: "Bad Request." }),
        yield* Effect.flip(AiraloStatus.tokenResponse(received(429, { message: "Too Many Attempts." }, { "retry-after": "20" }))),
        yield* Effect.flip(AiraloStatus.tokenResponse(received(502, { message: "Bad Gateway." })))
      ]
      for (const error of errors) {
        assert.notInclude(error.message, "..", error._tag)
        assert.match(error.message, /(Attempts|Error|Unavailable|Request|Gateway)\./)
      }
    }))

  it.effect("404 points at the base URL; another 4xx is a decline with Airalo's words", () =>
    Effect.gen(function*() {
      const notFound = yield* refundError(404, { message: "Not Found" })
      assert.isTrue(notFound._tag === "ConfigurationError" && notFound.key === "REFUNDKIT_AIRALO_BASE_URL")
      const bad = yield* refundError(400, { message: "Bad Request" })
      assert.isTrue(bad._tag === "ProviderDeclined" && bad.providerCode === "http_400" && bad.reason === "Bad Request")
    }))

  it.effect("404 and 405 on /token point at the base URL, not at the credentials", () =>
    Effect.gen(function*() {
      for (const status of [404, 405]) {
        const error = yield* Effect.flip(AiraloStatus.tokenResponse(received(status, { message: "Not Found" })))
        assert.strictEqual(error._tag, "ConfigurationError")
        if (error._tag === "ConfigurationError") {
          assert.strictEqual(error.key, "REFUNDKIT_AIRALO_BASE_URL")
          assert.include(error.message, `HTTP ${status} on /token`)
          assert.include(error.message, "the refund was not sent")
        }
      }
    }))

  it.effect("token answers: 200 decoded, refused credentials are ProviderAuthFailed, 429 is transient", () =>
    Effect.gen(function*() {
      const ok = yield* AiraloStatus.tokenResponse(received(200, { data: { token_type: "Bearer", expires_in: 31622400, access_token: "t" }, meta: { message: "success" } }))
      assert.strictEqual(ok.data.expires_in, 31622400)
      const wrongSecret = yield* Effect.flip(AiraloStatus.tokenResponse(received(401, { data: [], meta: { message: "Client authentication failed" } })))
      assert.isTrue(wrongSecret._tag === "ProviderAuthFailed" && wrongSecret.detail.includes("Client authentication failed"))
      const wrongId = yield* Effect.flip(AiraloStatus.tokenResponse(received(422, { data: { client_id: "The selected client id is invalid." }, meta: { message: "the parameter is invalid" } })))
      assert.isTrue(wrongId._tag === "ProviderAuthFailed" && wrongId.detail.includes("client_id: The selected client id is invalid."))
      const limited = yield* Effect.flip(AiraloStatus.tokenResponse(received(429, { message: "Too Many Attempts." }, { "retry-after": "20" })))
      assert.isTrue(limited._tag === "ProviderUnavailable" && limited.retryAfterMillis === 20_000 && !limited.maybeProcessed)
      const blocked = yield* Effect.flip(AiraloStatus.tokenResponse(received(403, { code: 89, reason: "IP not allowed" })))
      assert.isTrue(blocked._tag === "ProviderAuthFailed" && blocked.detail.includes("allowlist"))
      const missingToken = yield* Effect.flip(AiraloStatus.tokenResponse(received(200, { data: { expires_in: 10 }, meta: { message: "success" } })))
      assert.isTrue(missingToken._tag === "UnexpectedResponse" && missingToken.path === "data.access_token")
    }))
})
