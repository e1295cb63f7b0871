/**
 * What Airalo's answers mean for refundkit: the (single) status word of an accepted
 * request and its unified status, the rank for out-of-order protection, and the mapping
 * of every documented error answer to core errors.
 *
 * Airalo only ever says "accepted for review" (HTTP 202): a person at Airalo decides
 * later and the outcome arrives by email and, when approved, as Airalo credits. So an
 * accepted request is `pending`, never `succeeded`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Outcome } from "@refundkit/core/Provider"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import {
  ConfigurationError,
  InvalidRequest,
  ProviderAuthFailed,
  ProviderDeclined,
  type ProviderError,
  UnexpectedResponse
} from "@refundkit/core/RefundError"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Schema from "effect/Schema"
import * as AiraloWire from "./AiraloWire.js"
import { clip, providerId } from "./internal/provider.js"

/**
 * The status word refundkit records for a request Airalo accepted (HTTP 202). Airalo's
 * answer has no status word of its own; this one says what the 202 means.
 *
 * @since 0.1.0
 */
export const acceptedForReview = "accepted_for_review"

/**
 * The unified status of an Airalo status word. Words refundkit does not know (an
 * operator's note, a future Airalo answer) stay `pending`: only a person can close an
 * Airalo refund.
 *
 * @since 0.1.0
 */
export const toStatus = (word: string): RefundStatus => statuses[word] ?? "pending"

const statuses: Readonly<Record<string, RefundStatus>> = { [acceptedForReview]: "pending" }

/**
 * Position of a status word in the lifecycle; Airalo has one word, so nothing can arrive out of order.
 *
 * @since 0.1.0
 */
export const statusRank = (word: string): number | undefined => (word === acceptedForReview ? 1 : undefined)

/**
 * The outcome of an accepted request: `pending` for every ICCID in it, all under the
 * one `refund_id` Airalo gave the whole call.
 *
 * @since 0.1.0
 */
export const acceptedOutcome = (accepted: AiraloWire.RefundAccepted, iccids: ReadonlyArray<string>): Outcome => {
  const refundId = accepted.data.refund_id
  return {
    status: toStatus(acceptedForReview),
    providerStatus: acceptedForReview,
    providerReference: refundId,
    references: { refund_id: refundId, created_at: accepted.data.created_at },
    items: iccids.map((iccid) => ({ target: iccid, status: "pending", providerStatus: acceptedForReview, providerReference: refundId })),
    detail: `Airalo accepted refund request ${refundId} (created ${accepted.data.created_at}) for manual review; ` +
      "the decision comes by email from Airalo support, and an approved refund is credited as Airalo credits (GET /v2/balance)"
  }
}

/**
 * Why Airalo says no to a whole request that did not come from its field rules: the
 * ICCIDs are not the caller's. Airalo gives no code for it; this is the one refundkit records.
 *
 * @since 0.1.0
 */
export const notOwnedCode = "iccids_not_owned"

/**
 * The code recorded for a 422 whose only content is a message refundkit cannot place on a field.
 *
 * @since 0.1.0
 */
export const unprocessableCode = "unprocessable"

/**
 * The hint given with Airalo's IP-allowlist refusal (HTTP 403, code 89).
 *
 * @since 0.1.0
 */
export const allowlistHint =
  "Airalo's IP allowlist is on for this account and refused this server's address: add the server's public IP address to the allowlist in the Airalo Partners Platform (or ask your Airalo account manager), then retry"

const businessActions: Readonly<Record<number, ProviderDeclined["action"]>> = {
  11: "contact_support",
  13: "retry",
  14: "contact_support",
  23: "none",
  33: "retry",
  34: "none",
  43: "fix_request",
  53: "retry",
  73: "none"
}

/**
 * A business error `{code, reason}` as a decline with what the code asks of the caller.
 *
 * @since 0.1.0
 */
export const businessDecline = (error: AiraloWire.BusinessError): ProviderDeclined =>
  new ProviderDeclined({
    provider: providerId,
    providerCode: String(error.code),
    reason: clip(error.reason),
    action: businessActions[error.code] ?? "contact_support"
  })

const decodeErrorBody = Schema.decodeUnknownOption(AiraloWire.ErrorBody)

const decodeEnvelope = Schema.decodeUnknownOption(AiraloWire.ValidationError)

/**
 * Whether a 2xx body is Airalo's error envelope rather than an answer: `{data, meta}` whose
 * `meta.message` is not "success" and whose `data` carries none of the answer's own fields.
 * Airalo's docs file their error examples under the 202 (refund) and 200 (token) responses;
 * read as a malformed answer, a refusal would leave the refund `unknown` at a provider with
 * no status query, for a person to settle by hand.
 *
 * @since 0.1.0
 */
export const isErrorEnvelope = (body: unknown, answerField: string): boolean =>
  Option.match(decodeEnvelope(body), {
    onNone: () => false,
    onSome: (envelope) => envelope.meta.message.trim().toLowerCase() !== "success" && (Array.isArray(envelope.data) || !(answerField in envelope.data))
  })

/**
 * Airalo's own words in an error body, when there are any.
 *
 * @since 0.1.0
 */
export const wordsOf = (received: ProviderHttp.Received): string | undefined => {
  if (Option.isNone(received.json)) return undefined
  const body = decodeErrorBody(received.json.value)
  if (Option.isNone(body)) return undefined
  const value = body.value
  if ("code" in value) return clip(`code ${value.code}: ${value.reason}`)
  if ("message" in value) return clip(value.message)
  if ("data" in value && !Array.isArray(value.data)) {
    const fields = Object.entries(value.data).map(([field, message]) => `${field}: ${typeof message === "string" ? message : message.join(" ")}`)
    if (fields.length > 0) return clip(fields.join("; "))
  }
  return clip(value.meta.message)
}

// A 404 or 405 says the URL called is not one of Airalo's routes: the base URL is wrong (most
// often missing `/v2`), whatever the credentials.
const isWrongRoute = (status: number): boolean => status === 404 || status === 405

// Neither status means the call was taken: the refund was not sent, and the setting to fix is named.
const wrongBaseUrl = (status: number, what: string): ConfigurationError =>
  new ConfigurationError({
    key: "REFUNDKIT_AIRALO_BASE_URL",
    detail: `HTTP ${status} on ${what}: the base URL does not serve Airalo's API (it should end in /v2, e.g. https://partners-api.airalo.com/v2); the refund was not sent`
  })

const forbidden = (received: ProviderHttp.Received, what: string): ProviderAuthFailed => {
  const words = wordsOf(received)
  return new ProviderAuthFailed({
    provider: providerId,
    detail: `HTTP 403 on ${what}${words === undefined ? "" : ` (${words})`}. ${allowlistHint}`
  })
}

const fieldOfMessage = /^The ([a-z0-9_. ]+?) field\b/i

/**
 * A 422 from `/refund`. Field messages (`{data: {field: message}}`, and message-only
 * answers that name a field, "The iccids field is required.") are `InvalidRequest` on
 * those fields: the request broke a rule. The ownership refusal ("The following ICCIDs do
 * not belong to your company: ...") and other whole-request messages are
 * `ProviderDeclined` with Airalo's words: the request was well formed and Airalo said no.
 * A business error `{code, reason}` is a decline with its code.
 *
 * @since 0.1.0
 */
export const unprocessable = (received: ProviderHttp.Received): Effect.Effect<never, ProviderError> =>
  Effect.flatMap(ProviderHttp.decodeBody(providerId, AiraloWire.ErrorBody, received), (body): Effect.Effect<never, ProviderError> => {
    if ("code" in body) return Effect.fail(businessDecline(body))
    if ("data" in body && !Array.isArray(body.data) && Object.keys(body.data).length > 0) {
      const issues = Object.entries(body.data).map(([path, message]) => ({ path, message: clip(typeof message === "string" ? message : message.join(" ")) }))
      return Effect.fail(new InvalidRequest({ provider: providerId, issues }))
    }
    const message = "message" in body ? body.message : body.meta.message
    if (/do not belong to your company/i.test(message)) {
      return Effect.fail(new ProviderDeclined({ provider: providerId, providerCode: notOwnedCode, reason: clip(message), action: "fix_request" }))
    }
    const field = fieldOfMessage.exec(message)
    if (field !== null) return Effect.fail(InvalidRequest.field(field[1]!.trim().replace(/ /g, "_"), clip(message), providerId))
    return Effect.fail(new ProviderDeclined({ provider: providerId, providerCode: unprocessableCode, reason: clip(message), action: "fix_request" }))
  })

/**
 * Reads the answer of `POST /v2/refund` (after the client's one re-authentication).
 *
 * @since 0.1.0
 */
export const refundResponse = (received: ProviderHttp.Received): Effect.Effect<AiraloWire.RefundAccepted, ProviderError> => {
  const { status } = received
  if (status >= 200 && status < 300) {
    return Effect.flatMap(ProviderHttp.json(providerId, received), (body) =>
      typeof body === "object" && body !== null && "code" in body && "reason" in body
        ? Effect.flatMap(ProviderHttp.decode(providerId, AiraloWire.BusinessError, body, status), (error) => Effect.fail(businessDecline(error)))
        : isErrorEnvelope(body, "refund_id")
        ? unprocessable(received)
        : ProviderHttp.decode(providerId, AiraloWire.RefundAccepted, body, status))
  }
  if (status === 401) {
    const words = wordsOf(received)
    return Effect.fail(
      new ProviderAuthFailed({
        provider: providerId,
        detail: `HTTP 401 on /refund even with a freshly issued token${words === undefined ? "" : ` (${words})`}`
      })
    )
  }
  if (status === 403) return Effect.fail(forbidden(received, "/refund"))
  if (status === 422) return unprocessable(received)
  const words = wordsOf(received)
  const generic = ProviderHttp.statusError(providerId, received, words)
  if (Option.isSome(generic)) return Effect.fail(generic.value)
  if (isWrongRoute(status)) return Effect.fail(wrongBaseUrl(status, "/refund"))
  if (status >= 400 && status < 500) {
    return Effect.fail(new ProviderDeclined({ provider: providerId, providerCode: `http_${status}`, reason: words ?? `HTTP ${status}`, action: "contact_support" }))
  }
  return Effect.fail(new UnexpectedResponse({ provider: providerId, path: "", detail: `unexpected HTTP status ${status}`, httpStatus: status }))
}

/**
 * Reads the answer of `POST /v2/token`. Refused credentials (401, or the 422 "The
 * selected client id is invalid.") are `ProviderAuthFailed`; 404 and 405 are a wrong
 * base URL (`ConfigurationError`); 429 and 5xx are transient.
 *
 * @since 0.1.0
 */
export const tokenResponse = (received: ProviderHttp.Received): Effect.Effect<AiraloWire.TokenResponse, ProviderError> => {
  const { status } = received
  const refused = status >= 200 && status < 300 && Option.isSome(received.json) && isErrorEnvelope(received.json.value, "access_token")
  if (status >= 200 && status < 300 && !refused) return ProviderHttp.decodeBody(providerId, AiraloWire.TokenResponse, received)
  if (status === 403) return Effect.fail(forbidden(received, "/token"))
  const words = wordsOf(received)
  if (refused || status === 401 || status === 400 || status === 422) {
    return Effect.fail(new ProviderAuthFailed({ provider: providerId, detail: `HTTP ${status} on /token${words === undefined ? "" : ` (${words})`}` }))
  }
  // /token is called before every first /refund: read as refused credentials, a wrong base URL sent
  // people to check the client id and secret instead of the URL.
  if (isWrongRoute(status)) return Effect.fail(wrongBaseUrl(status, "/token"))
  const generic = ProviderHttp.statusError(providerId, received, words)
  if (Option.isSome(generic)) return Effect.fail(generic.value)
  return Effect.fail(new ProviderAuthFailed({ provider: providerId, detail: `HTTP ${status} on /token${words === undefined ? "" : ` (${words})`}` }))
}
