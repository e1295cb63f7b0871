/**
 * What Airpay's answers mean: each transaction's outcome as a unified status, and an
 * answer's envelope (errors arrive with HTTP 200 and `status_code` "400") as a core error.
 *
 * Airpay has no refund status word: each transaction carries `success` and a
 * message. refundkit names the three outcomes (`accepted`, `already_initiated`,
 * `refused`) and keeps Airpay's message on the item.
 *
 * @since 0.1.0
 */
import type { Outcome } from "@refundkit/core/Provider"
import type { RefundItem } from "@refundkit/core/Refund"
import { ProviderAuthFailed, ProviderDeclined, ProviderUnavailable, UnexpectedResponse, type ProviderError } from "@refundkit/core/RefundError"
import * as RefundStatus from "@refundkit/core/RefundStatus"
import type { Envelope, RefundData, RefundResult } from "./AirpayWire.js"

/**
 * The plugin id, used in every error.
 *
 * @since 0.1.0
 */
export const provider = "airpay"

/**
 * refundkit's names for Airpay's per-transaction outcomes:
 * - `accepted`: `success` "true" ("Transaction accepted for refund"): Airpay initiated the refund;
 * - `already_initiated`: `success` "false", "Refund already initiated": the transaction already
 *   has a refund (its `refund_id` is returned), so this request did not refund again;
 * - `refused`: `success` "false" for any other reason (over-refund, unknown transaction, ...);
 * - `missing`: the answer did not mention a transaction we sent.
 *
 * @since 0.1.0
 */
export type ProviderStatus = "accepted" | "already_initiated" | "refused" | "missing"

/**
 * The unified status of an outcome word. `accepted` is final (`succeeded`): Airpay
 * has initiated the refund and offers no status API or callback that would ever say
 * more. Unknown future words stay `pending`.
 *
 * @since 0.1.0
 */
export const statusOf = (word: string): RefundStatus.RefundStatus => {
  switch (word) {
    case "accepted":
      return "succeeded"
    case "already_initiated":
    case "refused":
      return "failed"
    case "missing":
      return "unknown"
    default:
      return "pending"
  }
}

/**
 * Lifecycle position of a word; every known Airpay outcome is final.
 *
 * @since 0.1.0
 */
export const statusRank = (word: string): number | undefined => {
  switch (word) {
    case "missing":
      return 0
    case "accepted":
    case "already_initiated":
    case "refused":
      return 1
    default:
      return undefined
  }
}

/**
 * Whether a transaction's message says it already has a refund.
 *
 * @since 0.1.0
 */
export const isAlreadyInitiated = (message: string | null | undefined): boolean =>
  message !== null && message !== undefined && /already\s+initiated/i.test(message)

const present = (value: string | null | undefined): value is string => value !== null && value !== undefined && value.trim() !== ""

/** Airpay's existing refund as its answer names it: "refund_id 12071 of 100.00". */
const existingRefund = (result: RefundResult): string =>
  `${present(result.refund_id) ? `refund_id ${result.refund_id}` : "refund_id not given"}${present(result.amount) ? ` of ${result.amount}` : ""}`

/**
 * One transaction's item. "Refund already initiated" refunded nothing: it names Airpay's
 * existing refund, which is not known to be this one's, so its `refund_id` is named in the
 * message and never kept as the item's `providerReference` (core makes an item's reference
 * its refund's, and this refund would carry another's).
 *
 * @since 0.1.0
 */
export const itemOf = (
  requested: { readonly target: string; readonly amount: string },
  result: RefundResult | undefined,
  resent = false
): RefundItem => {
  if (result === undefined) {
    return {
      target: requested.target,
      amount: requested.amount,
      status: "unknown",
      providerStatus: "missing",
      message: "Airpay's answer did not mention this transaction; check it in the Airpay dashboard"
    }
  }
  const message = present(result.message) ? result.message : undefined
  const reference = present(result.refund_id) ? { providerReference: result.refund_id } : {}
  if (result.success) {
    return { target: requested.target, amount: requested.amount, status: "succeeded", providerStatus: "accepted", ...reference, ...(message === undefined ? {} : { message }) }
  }
  if (isAlreadyInitiated(message) && resent) {
    // This call repeats one that Airpay may have performed (core resends only after an answer that
    // said "not processed", such as a 503 with Retry-After): the refund Airpay already has may be this very one, or
    // another's. Only the dashboard tells, so its id stays in the message, not in providerReference.
    return {
      target: requested.target,
      amount: requested.amount,
      status: "unknown",
      providerStatus: "already_initiated",
      message: `${message ?? "Refund already initiated"} (on a resend: Airpay's existing refund on this transaction, ${existingRefund(result)}, may be this request's own first attempt; check it in the Airpay dashboard)`
    }
  }
  if (isAlreadyInitiated(message)) {
    // refundkit never sends one Airpay refund twice (the submit is not idempotent: nothing that may have
    // reached Airpay is resent, and a refund is `failed` only when Airpay provably did nothing), so the
    // refund Airpay names here is never this one's: it is another row's, another key's, or one made outside
    // refundkit. Whatever its amount, this request refunded nothing.
    return {
      target: requested.target,
      amount: requested.amount,
      status: "failed",
      providerStatus: "already_initiated",
      message: `${message ?? "Refund already initiated"} (Airpay's existing refund on this transaction, ${existingRefund(result)}, is another refund's; this request refunded nothing)`
    }
  }
  return {
    target: requested.target,
    amount: requested.amount,
    status: "failed",
    providerStatus: "refused",
    ...reference,
    message: message ?? "Airpay did not initiate this refund and gave no reason"
  }
}

/**
 * The outcome of one refund call: one item per transaction sent, in the order sent.
 * The whole is the items' aggregate; a decline is set only when every item failed,
 * so one refused transaction never marks the others failed. No batch-wide `detail`:
 * core copies it onto every refund packed into the call, where it could be untrue.
 *
 * @since 0.1.0
 */
export const outcomeOf = (
  requested: ReadonlyArray<{ readonly target: string; readonly amount: string }>,
  data: RefundData,
  resent = false
): Outcome => {
  const byTarget = new Map<string, RefundResult>()
  for (const result of data.transactions) if (!byTarget.has(result.ap_transactionid)) byTarget.set(result.ap_transactionid, result)
  const items = requested.map((r) => itemOf(r, byTarget.get(r.target), resent))
  const status = RefundStatus.aggregate(items.map((item) => item.status))
  const words = [...new Set(items.map((item) => item.providerStatus ?? "missing"))].sort()
  const only = items.length === 1 ? items[0] : undefined
  const failed = items.every((item) => item.status === "failed")
  return {
    status,
    providerStatus: words.join("+"),
    // Every Airpay word is final, and a mix of accepted and refused transactions stays one for a
    // person to settle: Airpay will say nothing more about it.
    ...(status === "requires_action" ? { providerFinal: true } : {}),
    ...(only?.providerReference === undefined ? {} : { providerReference: only.providerReference }),
    items,
    ...(failed
      ? {
        decline: {
          providerCode: words.length === 1 ? words[0]! : "refused",
          reason: items.map((item) => (items.length === 1 ? item.message : `${item.target}: ${item.message}`)).join("; "),
          action: "fix_request" as const
        }
      }
      : {})
  }
}

/**
 * Whether an answer says the access token was refused. Airpay documents no wording
 * for this; refundkit reads `status_code` "401" (the sandbox's answer), HTTP 401, or a
 * message naming an invalid or expired token as the signal for one re-authentication.
 *
 * @since 0.1.0
 */
export const isTokenRejection = (envelope: Envelope): boolean => {
  if (envelope.status_code === "401") return true
  const message = envelope.message ?? ""
  return /token/i.test(message) && /(invalid|expired|missing|not\s+found|unauthori[sz]ed)/i.test(message)
}

const credentialWords = /(merchant|private\s*key|privatekey|client|secret|credential|user\s*name|username|password|unauthori[sz]ed|forbidden|access\s+denied)/i
const integrityWords = /(checksum|encrypt|decrypt|encdata)/i

/**
 * The core error for an envelope whose `status_code` is not "200". Airpay says why only
 * in `message`, so the mapping reads it:
 * - a refused token: `ProviderAuthFailed` (after the one re-authentication);
 * - a 5xx `status_code`: `ProviderUnavailable`, possibly processed;
 * - a `status_code` neither 4xx nor 5xx (Airpay publishes no code table, and uses 211 for
 *   "processing" elsewhere): `UnexpectedResponse`, so the refund is `unknown`;
 * - a message about the merchant or credentials ("Invalid Merchant Id"): `ProviderAuthFailed`;
 * - any other 4xx (a checksum, data or amount problem): `ProviderDeclined` with
 *   `response_code` as the code and Airpay's message.
 *
 * A failure envelope that still lists per-transaction results never gets here: its items
 * decide (see `AirpayClient`).
 *
 * @since 0.1.0
 */
export const envelopeError = (envelope: Envelope): ProviderError => {
  const message = present(envelope.message) ? envelope.message : `status_code ${envelope.status_code}`
  const code = envelope.response_code ?? envelope.status_code
  if (isTokenRejection(envelope)) return new ProviderAuthFailed({ provider, detail: `Airpay refused the access token (${code}): ${message}` })
  if (/^5\d\d$/.test(envelope.status_code)) {
    return new ProviderUnavailable({ provider, detail: `Airpay answered status_code ${envelope.status_code} (${code}): ${message}`, maybeProcessed: true })
  }
  if (!/^4\d\d$/.test(envelope.status_code)) {
    // Only a 4xx status_code says Airpay refused the call; Airpay publishes no code table and uses
    // 211 for "processing" elsewhere (Order Confirmation), so any other code proves nothing.
    return new UnexpectedResponse({ provider, path: "status_code", detail: `status_code ${envelope.status_code} (${code}) is not a documented answer: ${message}` })
  }
  if (credentialWords.test(message)) return new ProviderAuthFailed({ provider, detail: `${message} (response_code ${code})` })
  return new ProviderDeclined({
    provider,
    providerCode: code,
    reason: message,
    action: integrityWords.test(message) ? "contact_support" : "fix_request"
  })
}
