// The simulated Exirom's bookkeeping, without HTTP: card transactions, the refunds
// made against them, requestId idempotency and settlement over time. Amounts are in
// hundredths (Exirom's amount strings carry two decimals whatever the currency); a
// refund finer than its payment's currency allows (a fraction of a yen) is refused,
// so every amount counted is a whole number of the currency's minor units.
import { canonicalJson } from "@refundkit/core/Refund"
import * as Money from "@refundkit/core/Money"
import * as Either from "effect/Either"
import { randomUUID } from "node:crypto"

export interface Transaction {
  readonly transactionId: number
  /** The captured amount, as Exirom prints amounts ("100.00"). */
  readonly amount: string
  readonly currency: string
  /** Only SUCCEED payments can be refunded; default SUCCEED. */
  readonly status?: "SUCCEED" | "FAILED" | "PROCESSING" | "PENDING" | "CANCELLED" | undefined
  /** A decline code refunds of this payment settle with (FAILED after NEW/PROCESSING) instead of SUCCEED. */
  readonly refundsDeclineWith?: number | undefined
  /** Refunds of this payment settle CHARGEBACK instead of SUCCEED: the cardholder also won a dispute (a final state at Exirom). */
  readonly refundsChargedBack?: boolean | undefined
}

export interface AutoSeed {
  readonly from: number
  readonly to: number
  readonly amount: string
  readonly currency: string
}

export interface RefundInput {
  readonly requestId: string
  readonly mid: string
  readonly transactionId: number
  readonly amount: string
  readonly reason: string
  readonly callbackUrl?: string | undefined
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

export interface RefundRecord {
  readonly refundId: string
  readonly input: RefundInput
  readonly fingerprint: string
  readonly minor: bigint
  readonly currency: string
  readonly createdAt: number
  /** Set when declined at submit (FAILED at once). */
  readonly declinedWith?: number | undefined
  /** Set when it settles as FAILED later. */
  readonly settlesDeclinedWith?: number | undefined
  /** Set when it settles as CHARGEBACK. */
  readonly settlesChargedBack?: boolean | undefined
  settledAt?: number | undefined
  /** Set when a test charged it back after it had settled SUCCEED (`chargeBack`): CHARGEBACK from then on. */
  chargedBackAt?: number | undefined
  /** Set when a test reversed it after it had settled SUCCEED (`reverse`): FAILED with this code from then on. */
  reversedWith?: number | undefined
}

/** What `chargeBack` or `reverse` did: only a refund that stands SUCCEED is taken back. */
export type TakenBack =
  | { readonly _tag: "TakenBack"; readonly record: RefundRecord }
  | { readonly _tag: "UnknownRefund" }
  | { readonly _tag: "NotSucceeded"; readonly word: string }

export type Submitted =
  | { readonly _tag: "Created"; readonly record: RefundRecord }
  | { readonly _tag: "Replayed"; readonly record: RefundRecord }
  | { readonly _tag: "Conflict" }
  | { readonly _tag: "UnknownTransaction" }
  | { readonly _tag: "NotRefundable"; readonly status: string }
  | { readonly _tag: "Imprecise"; readonly currency: string; readonly places: number }

/** The decline code the sandbox answers an over-refund with: 8 DATA_VALIDATION_ERROR (fix the request). */
export const overRefundDeclineCode = 8

export const minorOf = (amount: string): bigint | undefined => {
  const parsed = Money.parseMinor(amount, 2)
  return Either.isRight(parsed) ? parsed.right : undefined
}

interface TransactionState {
  readonly transaction: Transaction
  readonly captured: bigint
  refunded: bigint
  performed: number
}

export const make = (options: { readonly transactions: ReadonlyArray<Transaction>; readonly autoSeed: AutoSeed | undefined; readonly settleAfterMillis: number }) => {
  const transactions = new Map<number, TransactionState>()
  const refunds = new Map<string, RefundRecord>()
  const byRequestId = new Map<string, RefundRecord>()
  let performed = 0

  const add = (transaction: Transaction) => {
    transactions.set(transaction.transactionId, { transaction, captured: minorOf(transaction.amount) ?? 0n, refunded: 0n, performed: 0 })
  }
  for (const transaction of options.transactions) add(transaction)

  const lookup = (transactionId: number): TransactionState | undefined => {
    const known = transactions.get(transactionId)
    const seed = options.autoSeed
    if (known !== undefined || seed === undefined || transactionId < seed.from || transactionId > seed.to) return known
    add({ transactionId, amount: seed.amount, currency: seed.currency })
    return transactions.get(transactionId)
  }

  const submit = (input: RefundInput, now: number): Submitted => {
    const fingerprint = canonicalJson(input)
    const previous = byRequestId.get(input.requestId)
    if (previous !== undefined) return previous.fingerprint === fingerprint ? { _tag: "Replayed", record: previous } : { _tag: "Conflict" }
    const state = lookup(input.transactionId)
    if (state === undefined) return { _tag: "UnknownTransaction" }
    // Exirom answers 422 for "amount precision or unsupported currency": "10.50" of a JPY payment is
    // not an amount of yen, and counted in hundredths it would refund half a yen. "10.00" is exact.
    const currency = state.transaction.currency
    const places = Math.min(2, Money.exponentOf(currency) ?? 2)
    if (Either.isLeft(Money.parseMinor(input.amount, places))) return { _tag: "Imprecise", currency, places }
    const status = state.transaction.status ?? "SUCCEED"
    if (status !== "SUCCEED") return { _tag: "NotRefundable", status }
    const minor = minorOf(input.amount) ?? 0n
    const over = state.refunded + minor > state.captured
    const later = over ? undefined : state.transaction.refundsDeclineWith
    const record: RefundRecord = {
      refundId: randomUUID(),
      input,
      fingerprint,
      minor,
      currency: state.transaction.currency,
      createdAt: now,
      ...(over ? { declinedWith: overRefundDeclineCode, settledAt: now } : {}),
      ...(later === undefined ? {} : { settlesDeclinedWith: later }),
      ...(!over && later === undefined && state.transaction.refundsChargedBack === true ? { settlesChargedBack: true } : {})
    }
    if (!over && later === undefined) {
      state.refunded += minor
      state.performed += 1
      performed += 1
    }
    refunds.set(record.refundId, record)
    byRequestId.set(input.requestId, record)
    return { _tag: "Created", record }
  }

  const settled = (record: RefundRecord, now: number) =>
    record.settledAt !== undefined || now - record.createdAt >= options.settleAfterMillis

  const statusOf = (record: RefundRecord, now: number): { readonly word: string; readonly declineCode: number | null } => {
    if (record.declinedWith !== undefined) return { word: "FAILED", declineCode: record.declinedWith }
    if (record.reversedWith !== undefined) return { word: "FAILED", declineCode: record.reversedWith }
    if (record.chargedBackAt !== undefined) return { word: "CHARGEBACK", declineCode: null }
    if (settled(record, now)) {
      if (record.settlesDeclinedWith !== undefined) return { word: "FAILED", declineCode: record.settlesDeclinedWith }
      return { word: record.settlesChargedBack === true ? "CHARGEBACK" : "SUCCEED", declineCode: null }
    }
    return { word: now - record.createdAt < options.settleAfterMillis / 2 ? "NEW" : "PROCESSING", declineCode: null }
  }

  const takeBack = (refundId: string, now: number, change: (record: RefundRecord) => void): TakenBack => {
    const record = refunds.get(refundId)
    if (record === undefined) return { _tag: "UnknownRefund" }
    const { word } = statusOf(record, now)
    if (word !== "SUCCEED") return { _tag: "NotSucceeded", word }
    change(record)
    return { _tag: "TakenBack", record }
  }

  // The cardholder disputed a refund Exirom had made and won: the refund's word turns from SUCCEED to
  // CHARGEBACK. The money stays refunded (the payment's tallies are unchanged): the dispute paid on top.
  const chargeBack = (refundId: string, now: number): TakenBack =>
    takeBack(refundId, now, (record) => {
      record.chargedBackAt = now
    })

  // The refund Exirom had made did not reach the cardholder (the card account closed): its word turns from
  // SUCCEED to FAILED and the money is back with the merchant, so the payment has that much left to refund
  // again. `refundsPerformed` still counts it: Exirom did make it.
  const reverse = (refundId: string, declineCode: number, now: number): TakenBack =>
    takeBack(refundId, now, (record) => {
      record.reversedWith = declineCode
      const state = transactions.get(record.input.transactionId)
      if (state !== undefined) state.refunded -= record.minor
    })

  return {
    add,
    submit,
    statusOf,
    chargeBack,
    reverse,
    settled,
    refund: (refundId: string) => refunds.get(refundId),
    currencyOf: (transactionId: number) => lookup(transactionId)?.transaction.currency,
    settleAll: (now: number) => {
      for (const record of refunds.values()) record.settledAt ??= now
    },
    stats: () => ({
      refundsPerformed: performed,
      refundsPerTransaction: Object.fromEntries([...transactions].filter(([, s]) => s.performed > 0).map(([id, s]) => [String(id), s.performed])),
      refundedPerTransaction: Object.fromEntries([...transactions].filter(([, s]) => s.refunded > 0n).map(([id, s]) => [String(id), Money.formatMinor(s.refunded, 2)]))
    })
  }
}

export type State = ReturnType<typeof make>
