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

/** @internal */
export const decodeCursor = (cursor: string): bigint | undefined => {
  const text = Buffer.from(cursor, "base64url").toString()
  return /^s:\d{1,19}$/.test(text) ? BigInt(text.slice(2)) : undefined
}
