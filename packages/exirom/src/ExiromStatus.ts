/**
 * Exirom's vocabulary in refundkit's terms: each `transactionStatus` word as a
 * unified status, its place in the lifecycle (so late callbacks never move a refund
 * backwards), decline codes as a reason and an action, and each HTTP answer as a
 * core error.
 *
 * @since 0.1.0
 */
import type * as Provider from "@refundkit/core/Provider"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { ProviderAuthFailed, ProviderDeclined, UnexpectedResponse, type ProviderError } from "@refundkit/core/RefundError"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as DeclineCodes from "./internal/declineCodes.js"
import { ErrorBody } from "./ExiromWire.js"

/**
 * The plugin id.
 *
 * @since 0.1.0
 */
export const provider = "exirom"

/**
 * Every documented `transactionStatus` and what it means for a refund.
 * `CUSTOMER_VERIFICATION` is `pending`: Exirom lists it as intermediate and nothing
 * the merchant can do moves it. `CHARGEBACK` (spelled `CHARGED_BACK` in the error
 * guide) is `requires_action`: the cardholder got money back through a dispute, so a
 * person must reconcile it against this refund.
 *
 * @since 0.1.0
 */
export const statuses: Readonly<Record<string, RefundStatus>> = {
  NEW: "pending",
  PENDING: "pending",
  PROCESSING: "pending",
  CUSTOMER_VERIFICATION: "pending",
  SUCCEED: "succeeded",
  REFUNDED: "succeeded",
  FAILED: "failed",
  CANCELLED: "failed",
  CHARGEBACK: "requires_action",
  CHARGED_BACK: "requires_action"
}

/**
 * The words Exirom's status reference calls final. Only CHARGEBACK (and its spelling in the
 * error guide, CHARGED_BACK) is final at Exirom without being final here: its refund is
 * `requires_action`, and the outcome says `providerFinal` so sync loops stop asking.
 *
 * @since 0.4.0
 */
export const finalWords: ReadonlySet<string> = new Set(["SUCCEED", "REFUNDED", "FAILED", "CANCELLED", "CHARGEBACK", "CHARGED_BACK"])

/**
 * The unified status of a status word; a word Exirom adds later is `pending` (the
 * versioning page says new values may appear without a version bump).
 *
 * @since 0.1.0
 */
export const toStatus = (word: string): RefundStatus => statuses[word] ?? "pending"

const ranks: Readonly<Record<string, number>> = {
  NEW: 1,
  PENDING: 2,
  PROCESSING: 3,
  CUSTOMER_VERIFICATION: 4,
  SUCCEED: 5,
  REFUNDED: 5,
  FAILED: 5,
  CANCELLED: 5,
  CHARGEBACK: 5,
  CHARGED_BACK: 5
}

/**
 * Lifecycle position: NEW < PENDING < PROCESSING < CUSTOMER_VERIFICATION < final
 * states. Unknown words have no rank, so they are never refused as regressions.
 *
 * @since 0.1.0
 */
export const statusRank = (word: string): number | undefined => ranks[word]

/**
 * A decline code's name (codes 1-18 are named in Exirom's reference) and action group.
 *
 * @since 0.1.0
 */
export const decline = (code: number): NonNullable<Provider.Outcome["decline"]> => {
  const action = DeclineCodes.actionOf(code)
  return {
    providerCode: String(code),
    reason: DeclineCodes.names[code] ?? `decline code ${code} (not named in Exirom's reference)`,
    ...(action === undefined ? {} : { action })
  }
}

/**
 * What Exirom said about a refund as an outcome. `declineCode` counts only with a
 * failed status: the reference example shows one beside `NEW`.
 *
 * @since 0.1.0
 */
export const outcome = (answer: {
  readonly transactionStatus: string
  readonly declineCode?: number | null | undefined
  readonly refundId?: string | undefined
  readonly references?: Readonly<Record<string, string>> | undefined
}): Provider.Outcome => {
  const word = answer.transactionStatus
  const status = toStatus(word)
  const failed = status === "failed"
  return {
    status,
    providerStatus: word,
    ...(finalWords.has(word) ? { providerFinal: true } : {}),
    ...(answer.refundId === undefined ? {} : { providerReference: answer.refundId }),
    ...(answer.references === undefined ? {} : { references: answer.references }),
    ...(failed
      ? {
        decline: answer.declineCode === undefined || answer.declineCode === null
          ? { providerCode: word, reason: `Exirom reported ${word} without a decline code` }
          : decline(answer.declineCode)
      }
      : {}),
    ...(statuses[word] === undefined ? { detail: `Exirom status ${word} is not in its documented vocabulary; treated as pending until it settles` } : {}),
    ...(status === "requires_action" ? { detail: `Exirom reports ${word}: the cardholder may also have been repaid through a dispute; reconcile and resolve this refund by hand` } : {})
  }
}

/**
 * What a callback said, in Exirom's terms, as the detail of the event that records it: its
 * `transactionStatus` as Exirom's refund info confirmed it, the `declineCode` of a failed one (with its
 * name), and after them the outcome's own words where it has any (a chargeback's advice). Core keeps a
 * callback's dedupe key beside the event, so the detail is free for what Exirom said.
 *
 * @since 0.6.0
 */
export const callbackDetail = (answer: { readonly transactionStatus: string; readonly declineCode?: number | null | undefined }, said: Provider.Outcome): string => {
  const word = answer.transactionStatus
  const code = answer.declineCode
  const declined = toStatus(word) !== "failed"
    ? ""
    : code === undefined || code === null
    ? ", without a declineCode"
    : `, declineCode ${code} (${DeclineCodes.names[code] ?? "not named in Exirom's reference"})`
  return `Exirom's callback, confirmed by its refund info: transactionStatus ${word}${declined}${said.detail === undefined ? "" : `. ${said.detail}`}`
}

/**
 * Exirom's own words from an error body (its JSON shape is undocumented), at most 300
 * characters.
 *
 * @since 0.1.0
 */
export const errorWords = (received: ProviderHttp.Received): string => {
  const words = Option.flatMap(received.json, (json) =>
    Either.match(Schema.decodeUnknownEither(ErrorBody)(json), {
      onLeft: () => typeof json === "string" && json.trim() !== "" ? Option.some(json) : Option.none(),
      onRight: (body) => {
        const fields = (body.errors ?? []).map((e) => [e.field, e.message].filter((s) => s !== undefined).join(": ")).filter((s) => s !== "")
        const said = [body.message ?? body.error ?? body.detail, ...fields].filter((s): s is string => s !== undefined && s !== "")
        const joined = said.join("; ")
        return joined === "" ? Option.none() : Option.some(body.traceId === undefined ? joined : `${joined} (trace ${body.traceId})`)
      }
    }))
  const text = Option.getOrElse(words, () => received.text.trim() === "" ? "no details given" : received.text.trim())
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}

/**
 * Which call an answer is for: the meaning of 404 and 409 depends on it.
 *
 * @since 0.1.0
 */
export type Call =
  | { readonly _tag: "Auth" }
  | { readonly _tag: "Refund"; readonly transactionId: number; readonly requestId: string }
  | { readonly _tag: "Lookup"; readonly refundId: string }

/**
 * The core error for a non-2xx answer: 400/422 and an unknown transaction (404) are
 * declines the request must be fixed for; 409 is a `requestId` reused with another
 * payload; 401/403 refused credentials or mid; 429/5xx unavailable (with `Retry-After`).
 *
 * @since 0.1.0
 */
export const errorOf = (received: ProviderHttp.Received, call: Call): ProviderError => {
  const { status } = received
  const words = errorWords(received)
  const declined = (reason: string) => new ProviderDeclined({ provider, providerCode: `HTTP_${status}`, reason, action: "fix_request" })
  if (call._tag === "Auth" && status >= 400 && status < 500 && status !== 429) {
    return new ProviderAuthFailed({
      provider,
      detail: `POST /v1/auth answered HTTP ${status} (${words}); check the merchant key and secret, and that REFUNDKIT_EXIROM_BASE_URL ends in /api`
    })
  }
  if (status === 403) {
    return new ProviderAuthFailed({ provider, detail: `HTTP 403: the token has no permission for this mid (${words}); verify REFUNDKIT_EXIROM_MID or the request's mid` })
  }
  const generic = ProviderHttp.statusError(provider, received, words)
  if (Option.isSome(generic)) return generic.value
  if (call._tag === "Refund") {
    switch (status) {
      case 400:
      case 422:
        return declined(`Exirom refused the request (${words})`)
      case 404:
        return declined(`Exirom does not know transaction ${call.transactionId} (${words}); check the transactionId, or that REFUNDKIT_EXIROM_BASE_URL has the right path prefix`)
      case 409:
        return declined(
          `Exirom already holds requestId ${call.requestId} with a different payload (${words}): that idempotency key was used for another refund at Exirom; use a new key`
        )
    }
  }
  if (call._tag === "Lookup" && status === 404) {
    return new UnexpectedResponse({ provider, path: "", detail: `Exirom does not know refund ${call.refundId} (${words})`, httpStatus: status })
  }
  return new UnexpectedResponse({ provider, path: "", detail: `HTTP ${status} is not a documented answer here (${words})`, httpStatus: status })
}
