/**
 * AeroHub's refund-order statuses in refundkit's unified terms, their order, and the
 * meaning of AeroHub's answers (HTTP status and `{code, msg}`) as core errors.
 *
 * @since 0.1.0
 */
import type { Outcome } from "@refundkit/core/Provider"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import * as JsonNumbers from "@refundkit/core/JsonNumbers"
import { ProviderAuthFailed, ProviderDeclined, ProviderUnavailable, type ProviderError, UnexpectedResponse } from "@refundkit/core/RefundError"
import type { RefundStatus as Unified } from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AeroHubReplay from "./AeroHubReplay.js"
import type { RefundStatus, UpdateRefund } from "./AeroHubRequest.js"
import { failedCode, invalidApiKeyCode, successCode, UpdateRefundResponse } from "./AeroHubWire.js"

const provider = "aerohub"

const unified: { readonly [S in RefundStatus]: Unified } = {
  QUOTE_COMPLETED: "pending",
  QUOTE_REJECTED: "failed",
  PROCESSING: "pending",
  REFUNDED_PENDING: "pending",
  REFUNDED: "succeeded",
  CLOSED: "failed"
}

const isKnown = (word: string): word is RefundStatus => Object.hasOwn(unified, word)

/**
 * The unified status of an AeroHub word. The quote phase and the refund steps before
 * reimbursement are `pending`, REFUNDED is `succeeded`, CLOSED and QUOTE_REJECTED are
 * `failed`; a word AeroHub may add later is `pending` (the raw word is kept beside it).
 *
 * @since 0.1.0
 */
export const statusOf = (word: string): Unified => (isKnown(word) ? unified[word] : "pending")

const ranks: { readonly [S in RefundStatus]: number } = {
  QUOTE_COMPLETED: 0,
  PROCESSING: 1,
  REFUNDED_PENDING: 2,
  REFUNDED: 3,
  CLOSED: 3,
  QUOTE_REJECTED: 3
}

/**
 * Position of a word in the refund-order lifecycle; final states share the last rank.
 *
 * @since 0.1.0
 */
export const statusRank = (word: string): number | undefined => (isKnown(word) ? ranks[word] : undefined)

/**
 * The money one `refundAmount` element reports: its amounts (two-place strings) and the
 * voucher's currency. The `voucherNote` is text about the voucher, not money.
 *
 * @since 0.4.0
 */
export const ReportedMoney = Schema.Array(Schema.Struct({
  refundCost: Schema.optional(Schema.String),
  refundVoucher: Schema.optional(Schema.String),
  voucherCurrency: Schema.optional(Schema.String)
}))

/**
 * The money fields of a `refundAmount` element, in the order they are compared and named.
 *
 * @since 0.4.0
 */
export const moneyFields = ["refundCost", "refundVoucher", "voucherCurrency"] as const

/**
 * The money a REFUNDED update reports, element by element.
 *
 * @since 0.4.0
 */
export const moneyOf = (update: UpdateRefund): typeof ReportedMoney.Type =>
  (update.refundAmount ?? []).map((element) => {
    const money: { refundCost?: string; refundVoucher?: string; voucherCurrency?: string } = {}
    for (const field of moneyFields) {
      const value = element[field]
      if (value !== undefined) money[field] = value
    }
    return money
  })

/**
 * Where a repeated REFUNDED reports other money than the REFUNDED recorded: the field's
 * path (`refundAmount`, or `refundAmount.<i>.<field>`) and both values, spelled for a
 * message; undefined when it is the same money (a replay).
 *
 * @since 0.4.0
 */
export const moneyConflict = (
  recorded: typeof ReportedMoney.Type,
  sent: typeof ReportedMoney.Type
): { readonly path: string; readonly recorded: string; readonly sent: string } | undefined => {
  if (recorded.length !== sent.length) {
    return {
      path: "refundAmount",
      recorded: `${recorded.length} refundAmount element${recorded.length === 1 ? "" : "s"}`,
      sent: `${sent.length}`
    }
  }
  for (let i = 0; i < recorded.length; i++) {
    for (const field of moneyFields) {
      const was = recorded[i]![field]
      const now = sent[i]![field]
      if (was !== now) {
        return { path: `refundAmount.${i}.${field}`, recorded: `${field} ${was ?? "absent"} in element ${i}`, sent: now ?? "none" }
      }
    }
  }
  return undefined
}

/**
 * The reference under which a REFUNDED refund keeps the money it was reported with (JSON
 * of {@link ReportedMoney}), so a repeated REFUNDED can be told a replay from a conflict.
 *
 * @since 0.4.0
 */
export const refundedMoneyReference = "refundAmount"

/**
 * What an accepted update leaves the refund as. A REFUNDED one keeps its money in the
 * references: REFUNDED is final, and what AeroHub was told it settled is part of it.
 * So do a CLOSED or QUOTE_REJECTED (its rejection) and a QUOTE_COMPLETED (its quote),
 * for the same reason: a repeat of them must replay them (`AeroHubReplay`).
 *
 * A CLOSED or QUOTE_REJECTED AeroHub accepted is `failed` but keeps holding the refund
 * order (`holdsTarget`): AeroHub keeps the order's first rejection and takes a second
 * as a repeat, so a new refund for the order would be sent and recorded beside this one.
 * A first update AeroHub refused never gets here: that refund is `failed` with
 * `provider_declined` and holds nothing.
 *
 * @since 0.1.0
 */
export const outcomeOf = (update: UpdateRefund): Outcome => ({
  status: statusOf(update.refundStatus),
  ...(statusOf(update.refundStatus) === "failed" ? { holdsTarget: true } : {}),
  providerStatus: update.refundStatus,
  providerReference: update.refundOrderNo,
  references: {
    refundOrderNo: update.refundOrderNo,
    purchaseOrderNo: update.purchaseOrderNo,
    ...(update.refundStatus === "REFUNDED" ? { [refundedMoneyReference]: JSON.stringify(moneyOf(update)) } : {}),
    ...AeroHubReplay.referencesOf(update)
  }
})

/**
 * The core error for a failure `code`. AeroHub asks suppliers to retry whenever the
 * code is not 200; its full code table is not published, so: 1000 is refused
 * credentials; 429 is a rate limit (nothing done); other 4xx codes, like the documented
 * 400 "Failed", refuse this request and would refuse it again (a decline, not retried);
 * any other code is transient and retried under the core schedule (an update is safe to
 * repeat for the same target state).
 *
 * @since 0.1.0
 */
export const errorOfCode = (answer: UpdateRefundResponse, httpStatus: number): ProviderError => {
  const said = `code ${answer.code}: ${answer.msg}`
  if (answer.code === invalidApiKeyCode) return new ProviderAuthFailed({ provider, detail: said })
  if (answer.code === 429) return new ProviderUnavailable({ provider, detail: `${said} (rate limited)`, maybeProcessed: false, httpStatus })
  if (answer.code >= failedCode && answer.code < 500) {
    return new ProviderDeclined({ provider, providerCode: String(answer.code), reason: answer.msg, action: "fix_request" })
  }
  return new ProviderUnavailable({ provider, detail: `${said} (AeroHub asks for a retry)`, maybeProcessed: true, httpStatus })
}

// AeroHub's error example quotes its keys and strings with “ ” (quirk 8), which is not JSON. Read as
// such, a refusal written that way would be an answer refundkit cannot read: an update in doubt, whose
// repeat meets the same refusal, so the update could never be settled. A body that is not JSON, but is
// JSON once its curly double quotes are straight ones, is read as that JSON; any other body is untouched.
const curlyQuotes = /[\u201C\u201D]/g

const parsed = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text) as unknown)
  } catch {
    return Option.none()
  }
}

const withStraightQuotes = (received: ProviderHttp.Received): ProviderHttp.Received => {
  if (Option.isSome(received.json) || !/[\u201C\u201D]/.test(received.text)) return received
  const text = received.text.replace(curlyQuotes, "\"")
  const json = parsed(text)
  return Option.isSome(json) ? { ...received, text, json } : received
}

/**
 * Reads an UpdateRefund answer: the success envelope, or the core error it means.
 * HTTP 401/403/429/5xx keep their generic meaning; any other status and every code
 * other than 200 is a failure, even with HTTP 200.
 *
 * @since 0.1.0
 */
export const fromResponse = (given: ProviderHttp.Received): Effect.Effect<UpdateRefundResponse, ProviderError> =>
  Effect.gen(function*() {
    const received = withStraightQuotes(given)
    if (received.status !== 200) {
      const generic = ProviderHttp.statusError(provider, received)
      if (Option.isSome(generic)) return yield* generic.value
    }
    const answer = yield* ProviderHttp.decodeBody(provider, UpdateRefundResponse, received)
    // JSON.parse reads a code of 200.0000000000000001 as 200, a success. Only the fields read here
    // are checked: a long numeric id AeroHub may add beside them is no reason to refuse the answer.
    const inexact = JsonNumbers.inexactNumbers(received.text).find((n) => n.path === "code")
    if (inexact !== undefined) {
      return yield* new UnexpectedResponse({ provider, path: "code", detail: JsonNumbers.describe(inexact), httpStatus: received.status })
    }
    if (answer.code !== successCode) return yield* errorOfCode(answer, received.status)
    if (received.status !== 200) {
      return yield* new ProviderUnavailable({
        provider,
        detail: `HTTP ${received.status} with code ${answer.code} (AeroHub asks for a retry when the HTTP status is not 200)`,
        httpStatus: received.status,
        maybeProcessed: true
      })
    }
    return answer
  })
