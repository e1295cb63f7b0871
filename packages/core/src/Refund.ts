/**
 * The refund a user tracks: our id, the provider, the idempotency key, the request
 * as sent (secrets never stored), the unified status, the provider's own status
 * word and references, per-item outcomes and an append-only event history.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import * as Schema from "effect/Schema"
import { ErrorInfo } from "./RefundError.js"
import { RefundStatus } from "./RefundStatus.js"

/**
 * A refund id: `rfd_` and 26 lowercase base32 characters.
 *
 * @since 0.1.0
 */
export const RefundId = Schema.String.pipe(
  Schema.pattern(/^rfd_[0-9a-z]{26}$/, { message: () => 'a refund id: "rfd_" followed by 26 lowercase letters or digits' }),
  Schema.annotations({ identifier: "RefundId" })
)

const base32 = "0123456789abcdefghjkmnpqrstvwxyz"

const encodeBase32 = (bytes: Uint8Array, length: number): string => {
  let out = ""
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5 && out.length < length) {
      out += base32[(buffer >>> (bits - 5)) & 31]
      bits -= 5
    }
    buffer &= (1 << bits) - 1
  }
  return out
}

/**
 * The refund id for an idempotency key at a provider. Deterministic, so every
 * gateway instance racing for the same key agrees on the id, and a provider that
 * takes a request id of ours (Exirom's `requestId`) sees the same one on every retry.
 *
 * @since 0.1.0
 */
export const deriveId = (provider: string, idempotencyKey: string): string =>
  `rfd_${encodeBase32(createHash("sha256").update(`${provider}\u0000${idempotencyKey}`).digest(), 26)}`

/**
 * Who moved a refund: the first submission, a status sync, a provider webhook, a
 * person, or crash recovery.
 *
 * @since 0.1.0
 */
export const EventSource = Schema.Literal("submit", "sync", "webhook", "operator", "recovery").annotations({ identifier: "EventSource" })

/**
 * @since 0.1.0
 */
export type EventSource = typeof EventSource.Type

/**
 * An operator's verdict as it was asked for (`Refunds.resolve`), kept on the event that records it:
 * the note as `resolve` was given it (the CLI and the gateway give `operator: <note>`), whether it
 * asked to release the targets, the targets it named as not refunded (as the refund spells them, in
 * its order; none is `[]`), whether it corrected an earlier verdict, and `reopen: true` on an operator's reopen of
 * a final status the provider set (`Refunds.reopen`, since 0.6.0; absent otherwise, so rows written before read the
 * same). The event's `detail` words
 * the same for a person; this is what a program compares (the gateway answers a repeat of the verdict
 * that settled a refund as a replay), so a note that happens to contain the detail's other words is
 * never taken for them.
 *
 * @since 0.6.0
 */
export const OperatorVerdict = Schema.Struct({
  note: Schema.String.annotations({ description: "The note as recorded, before any words the event's detail adds" }),
  releaseTargets: Schema.Boolean.annotations({
    description: "true when the verdict asked to let go of the targets of a failed refund its provider keeps on them (resolve --release-targets)"
  }),
  failedTargets: Schema.Array(Schema.String).annotations({
    description: "The targets the verdict named as not refunded by the provider (resolve --failed-target), as the refund spells them; empty when none"
  }),
  correct: Schema.Boolean.annotations({ description: "true when the verdict corrected an earlier operator's verdict (resolve --correct)" }),
  reopen: Schema.optionalWith(Schema.Boolean, { exact: true }).annotations({
    description:
      "true when an operator reopened a final status the provider set (reopen), moving the refund to requires_action; absent on every other verdict"
  })
}).annotations({
  identifier: "OperatorVerdict",
  description: "An operator's verdict (resolve) as it was asked for"
})

/**
 * @since 0.6.0
 */
export type OperatorVerdict = typeof OperatorVerdict.Type

/**
 * One entry of a refund's history. `accepted: false` records a change that was
 * refused (an illegal transition) without applying it. An operator's verdict
 * (`Refunds.resolve`) carries `verdict` (since 0.6.0); no other event does, and
 * neither do verdicts recorded before ledgers kept it (a SQL ledger before its migration 16).
 * A provider's callback (`Refunds.webhook`) carries `callbackKey` (since 0.6.0), the key its
 * plugin gave it (`WebhookEvent.dedupeKey`), on its event whether the ledger applied or refused
 * it: a repeat of the callback is known by it, and the event's `detail` keeps the provider's
 * own words. Callbacks recorded before ledgers kept it (a SQL ledger before its migration 17)
 * have none, and their key in their words (`webhook <key>`).
 *
 * @since 0.1.0
 */
export const RefundEvent = Schema.Struct({
  sequence: Schema.Int,
  at: Schema.String.annotations({ description: "ISO 8601 timestamp" }),
  source: EventSource,
  from: Schema.NullOr(RefundStatus),
  to: RefundStatus,
  providerStatus: Schema.optional(Schema.String),
  accepted: Schema.Boolean,
  detail: Schema.optional(Schema.String),
  verdict: Schema.optionalWith(OperatorVerdict, { exact: true }).annotations({
    description: "On an operator's verdict (source operator, from resolve) only: the verdict as it was asked for, which detail words for a person"
  }),
  callbackKey: Schema.optionalWith(Schema.String, { exact: true }).annotations({
    description:
      "On a provider's callback (source webhook) only: the key its provider plugin gave the callback (Exirom's `<transactionId>:<transactionStatus>`), by which a repeat of it is answered as a duplicate and records nothing; detail says what the provider said"
  })
}).annotations({ identifier: "RefundEvent" })

/**
 * @since 0.1.0
 */
export type RefundEvent = typeof RefundEvent.Type

/**
 * The outcome for one target of a refund that names several (an Airpay transaction,
 * an Airalo ICCID). `settledBy: "operator"` marks a status an operator's verdict gave an item
 * the provider had not decided (`Ledger.settleItems`, since 0.6.0): `resolve`'s rule against
 * failing a refund whose provider reported a target refunded reads only the provider's statuses,
 * and a correction of the verdict settles such items again.
 *
 * @since 0.1.0
 */
export const RefundItem = Schema.Struct({
  target: Schema.String,
  status: RefundStatus,
  amount: Schema.optional(Schema.String),
  providerStatus: Schema.optional(Schema.String),
  providerReference: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  settledBy: Schema.optional(Schema.Literal("operator")).annotations({
    description:
      "operator when status is an operator's verdict (resolve) on an item the provider had not decided, not the provider's word: providerStatus and message stay the provider's last ones, and a correction of the verdict settles the item again"
  })
}).annotations({ identifier: "RefundItem" })

/**
 * @since 0.1.0
 */
export type RefundItem = typeof RefundItem.Type

/**
 * What is refunded against: the provider's id of the original payment or product,
 * the amount refunded against it and, where the caller states it, the original amount.
 *
 * @since 0.1.0
 */
export const RefundTarget = Schema.Struct({
  target: Schema.String,
  amount: Schema.optional(Schema.String),
  originalAmount: Schema.optional(Schema.String)
}).annotations({ identifier: "RefundTarget" })

/**
 * @since 0.1.0
 */
export type RefundTarget = typeof RefundTarget.Type

/**
 * How the customer gets their money back.
 *
 * @since 0.1.0
 */
export const Settlement = Schema.Literal("money", "credits", "voucher", "none").annotations({ identifier: "Settlement" })

/**
 * A JSON value, as stored and returned.
 *
 * @since 0.1.0
 */
export const Json = Schema.Unknown.annotations({ identifier: "Json", jsonSchema: {} })

/**
 * The refund.
 *
 * @since 0.1.0
 */
export const Refund = Schema.Struct({
  id: RefundId,
  provider: Schema.String,
  idempotencyKey: Schema.String,
  fingerprint: Schema.String,
  request: Json,
  status: RefundStatus,
  providerStatus: Schema.optional(Schema.String),
  providerFinal: Schema.optional(Schema.Boolean).annotations({
    description: "true when the provider reports providerStatus as final while the refund still needs a person (requires_action): sync loops no longer ask the provider about it; resolve it"
  }),
  holdsTarget: Schema.optional(Schema.Boolean).annotations({
    description:
      "true on a failed refund that still holds its targets: one the provider accepted and keeps on them (AeroHub's CLOSED, QUOTE_REJECTED), where a new refund of those targets would be a repeat of this one, or one the provider took back after it had reported it succeeded (a reversal, a chargeback) that an operator resolved failed without releasing them. A new refund of those targets is refused as if this one had not failed. Set by the provider's answer or by that verdict; released only by an operator (resolve --release-targets)"
  }),
  providerReference: Schema.optional(Schema.String),
  references: Schema.Record({ key: Schema.String, value: Schema.String }),
  currency: Schema.optional(Schema.String),
  amount: Schema.optional(Schema.String),
  targets: Schema.Array(RefundTarget),
  items: Schema.Array(RefundItem),
  error: Schema.optional(ErrorInfo),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  events: Schema.Array(RefundEvent)
}).annotations({ identifier: "Refund" })

/**
 * @since 0.1.0
 */
export type Refund = typeof Refund.Type

/**
 * The value of `JSON.stringify` with object keys sorted at every level, so two
 * equal requests always print the same.
 *
 * @since 0.1.0
 */
export const canonicalJson = (value: unknown): string => {
  // Built by concatenation: every refund's fingerprint goes through here, and the
  // entries / filter / map / join version allocated several arrays per object.
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i])
    return `${out}]`
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>
    // The default sort orders by UTF-16 code units, as `<` does on strings.
    const keys = Object.keys(record).sort()
    let out = "{"
    for (const key of keys) {
      const member = record[key]
      if (member === undefined) continue
      out += `${out.length === 1 ? "" : ","}${JSON.stringify(key)}:${canonicalJson(member)}`
    }
    return `${out}}`
  }
  return JSON.stringify(value) ?? "null"
}

/**
 * The fingerprint of a request: same request, same fingerprint, whatever the key order.
 *
 * @since 0.1.0
 */
export const fingerprint = (provider: string, request: unknown): string =>
  createHash("sha256").update(`${provider}\u0000${canonicalJson(request)}`).digest("hex")
