/**
 * What the ledger's queries share on both drivers: the keyset cursor of `list`, the
 * statuses a sync looks at, and the detail of a recovery event.
 *
 * @internal
 */

/** @internal */
export const needsSyncStatuses = ["pending", "unknown", "requires_action"] as const

/** @internal */
export const recoveryDetail = "left in requested by an interrupted process; not resent"

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
