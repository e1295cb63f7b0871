/**
 * What the ledger's queries share on both drivers: the keyset cursor of `list`, the
 * statuses a sync looks at, and the detail of a recovery event.
 *
 * @internal
 */
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"

/** @internal */
export const needsSyncStatuses = ["pending", "unknown", "requires_action"] as const

/** Refunds whose provider calls their status final are never due for a sync (`Refund.providerFinal`). @internal */
export const notProviderFinal = "provider_final = 0"

/**
 * A refund recovery cannot read (a row edited by hand, damaged) is left in `requested` and
 * named in a warning, and recovery goes on with the others. Failing the whole recovery on
 * it kept the gateway from starting, and its sync loop (which recovers before every sweep)
 * from syncing anything, until someone repaired that one row.
 *
 * @internal
 */
export const recoverySkipped = (error: LedgerError): Effect.Effect<void> =>
  Effect.logWarning(`refundkit ledger: recovery left a refund in requested: ${error.detail}; once the row is repaired it is recovered`)

/** @internal */
export const encodeCursor = (seq: bigint): string => Buffer.from(`s:${seq}`).toString("base64url")

const maxSeq = 9223372036854775807n

/** @internal */
export const decodeCursor = (cursor: string): bigint | undefined => {
  const text = Buffer.from(cursor, "base64url").toString()
  if (!/^s:\d{1,19}$/.test(text)) return undefined
  const seq = BigInt(text.slice(2))
  // A seq is a signed 64-bit integer on both databases: anything larger is not a cursor of this ledger.
  return seq <= maxSeq ? seq : undefined
}

/**
 * A refund due for a sync whose row does not decode is leased like the others but not
 * handed out, and named in a warning: failing the whole lease on it stopped a gateway's
 * sync loop, which leases the oldest due refund first, from syncing any refund at all.
 *
 * @internal
 */
export const syncSkipped = (error: LedgerError): Effect.Effect<void> =>
  Effect.logWarning(`refundkit ledger: a refund due for a sync was skipped: ${error.detail}; once the row is repaired it is synced`)
