/**
 * What a refund keeps of the update that brought it to a state whose repeat must be a
 * replay: the rejection of a CLOSED or QUOTE_REJECTED, and the quote of a
 * QUOTE_COMPLETED (REFUNDED's money is in `AeroHubStatus`). AeroHub takes an update
 * for the state an order is already in as a repeat and keeps the first (its sandbox
 * answers 200 and changes nothing), so a repeat with other content would make the
 * refund record something AeroHub never accepted.
 *
 * @since 0.4.0
 */
import * as Schema from "effect/Schema"
import type { UpdateRefund } from "./AeroHubRequest.js"

/**
 * Where a repeat differs from what was recorded: the field's path (as the request spells
 * it, `rejectReason`, `refundFeePricing.0.amount`) and both values, spelled for a message.
 *
 * @since 0.4.0
 */
export interface Conflict {
  readonly path: string
  readonly recorded: string
  readonly sent: string
}

const spell = (value: string | number | undefined): string => (value === undefined ? "absent" : String(value))

const elements = (n: number): string => `${n} element${n === 1 ? "" : "s"}`

const differs = (path: string, recorded: string | number | undefined, sent: string | number | undefined): Conflict | undefined =>
  recorded === sent ? undefined : { path, recorded: `${path} ${spell(recorded)}`, sent: spell(sent) }

const lengths = (path: string, recorded: number, sent: number): Conflict | undefined =>
  recorded === sent ? undefined : { path, recorded: `${path} of ${elements(recorded)}`, sent: elements(sent) }

/**
 * The rejection a CLOSED or QUOTE_REJECTED reports: its reason and the fields the reason
 * makes required (`refundDate` for 1, `refundableAmount` for 6, `flightNumber` for 7 in
 * the English numbering; amounts as two-place strings).
 *
 * @since 0.4.0
 */
export const Rejection = Schema.Struct({
  rejectReason: Schema.optional(Schema.Int),
  refundDate: Schema.optional(Schema.String),
  refundableAmount: Schema.optional(Schema.String),
  flightNumber: Schema.optional(Schema.String)
})

/**
 * @since 0.4.0
 */
export type Rejection = typeof Rejection.Type

/**
 * The fields of a rejection, in the order they are compared and named.
 *
 * @since 0.4.0
 */
export const rejectionFields = ["rejectReason", "refundDate", "refundableAmount", "flightNumber"] as const

/**
 * The rejection an update reports (its absent fields left out).
 *
 * @since 0.4.0
 */
export const rejectionOf = (update: UpdateRefund): Rejection => {
  const rejection: { -readonly [K in keyof Rejection]: Rejection[K] } = {}
  if (update.rejectReason !== undefined) rejection.rejectReason = update.rejectReason
  if (update.refundDate !== undefined) rejection.refundDate = update.refundDate
  if (update.refundableAmount !== undefined) rejection.refundableAmount = update.refundableAmount
  if (update.flightNumber !== undefined) rejection.flightNumber = update.flightNumber
  return rejection
}

/**
 * The first field where a repeated rejection differs from the one recorded; undefined
 * when it is the same rejection (a replay). A field present on one side only differs:
 * AeroHub keeps the first, with or without it.
 *
 * @since 0.4.0
 */
export const rejectionConflict = (recorded: Rejection, sent: Rejection): Conflict | undefined => {
  for (const field of rejectionFields) {
    const conflict = differs(field, recorded[field], sent[field])
    if (conflict !== undefined) return conflict
  }
  return undefined
}

/**
 * The quote a QUOTE_COMPLETED reports: each `refundFeePricing` element with its amounts
 * as two-place strings.
 *
 * @since 0.4.0
 */
export const Quote = Schema.Array(Schema.Struct({
  amount: Schema.optional(Schema.String),
  isRefundVoucher: Schema.optional(Schema.Int),
  voucherCurrency: Schema.optional(Schema.String),
  refundPolicyDetail: Schema.optional(Schema.Array(Schema.Struct({ ageType: Schema.Int, refundFeePolicy: Schema.String })))
}))

/**
 * @since 0.4.0
 */
export type Quote = typeof Quote.Type

/**
 * The quote an update reports (absent fields left out).
 *
 * @since 0.4.0
 */
export const quoteOf = (update: UpdateRefund): Quote =>
  (update.refundFeePricing ?? []).map((element) => {
    const priced: { -readonly [K in keyof Quote[number]]: Quote[number][K] } = {}
    if (element.amount !== undefined) priced.amount = element.amount
    if (element.isRefundVoucher !== undefined) priced.isRefundVoucher = element.isRefundVoucher
    if (element.voucherCurrency !== undefined) priced.voucherCurrency = element.voucherCurrency
    if (element.refundPolicyDetail !== undefined) {
      priced.refundPolicyDetail = element.refundPolicyDetail.map(({ ageType, refundFeePolicy }) => ({ ageType, refundFeePolicy }))
    }
    return priced
  })

const quoteFields = ["amount", "isRefundVoucher", "voucherCurrency"] as const

/**
 * The first field where a repeated quote differs from the one recorded
 * (`refundFeePricing` when the number of elements differs, `refundFeePricing.<i>.amount`,
 * `refundFeePricing.<i>.refundPolicyDetail.<j>.refundFeePolicy`, …); undefined when it is
 * the same quote (a replay), however its amounts are spelled. An absent
 * `refundPolicyDetail` and an empty one are the same: no fee details.
 *
 * @since 0.4.0
 */
export const quoteConflict = (recorded: Quote, sent: Quote): Conflict | undefined => {
  const count = lengths("refundFeePricing", recorded.length, sent.length)
  if (count !== undefined) return count
  for (let i = 0; i < recorded.length; i++) {
    const [was, now, at] = [recorded[i]!, sent[i]!, `refundFeePricing.${i}`]
    for (const field of quoteFields) {
      const conflict = differs(`${at}.${field}`, was[field], now[field])
      if (conflict !== undefined) return conflict
    }
    const [before, after] = [was.refundPolicyDetail ?? [], now.refundPolicyDetail ?? []]
    const details = lengths(`${at}.refundPolicyDetail`, before.length, after.length)
    if (details !== undefined) return details
    for (let j = 0; j < before.length; j++) {
      const path = `${at}.refundPolicyDetail.${j}`
      const conflict = differs(`${path}.ageType`, before[j]!.ageType, after[j]!.ageType) ??
        differs(`${path}.refundFeePolicy`, before[j]!.refundFeePolicy, after[j]!.refundFeePolicy)
      if (conflict !== undefined) return conflict
    }
  }
  return undefined
}

/**
 * The reference under which a CLOSED or QUOTE_REJECTED refund keeps its rejection (JSON
 * of {@link Rejection}).
 *
 * @since 0.4.0
 */
export const rejectionReference = "rejection"

/**
 * The reference under which a refund keeps the quote of its QUOTE_COMPLETED (JSON of
 * {@link Quote}). It stays after the order moves on: it is the quote the order went on with.
 *
 * @since 0.4.0
 */
export const quoteReference = "refundFeePricing"

/**
 * The references an accepted update of these states leaves on the refund.
 *
 * @since 0.4.0
 */
export const referencesOf = (update: UpdateRefund): Readonly<Record<string, string>> => {
  switch (update.refundStatus) {
    case "CLOSED":
    case "QUOTE_REJECTED":
      return { [rejectionReference]: JSON.stringify(rejectionOf(update)) }
    case "QUOTE_COMPLETED":
      return { [quoteReference]: JSON.stringify(quoteOf(update)) }
    default:
      return {}
  }
}
