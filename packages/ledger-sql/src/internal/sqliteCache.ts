/**
 * The SQLite ledger's memory of the refunds it last wrote or read, so a status change
 * to a refund it already holds needs neither a re-read of the row and its events nor
 * a Schema decode.
 *
 * An entry is trusted only while the database still says the same thing: every write
 * to a refund bumps its `version` (ours explicitly, anyone else's through the trigger
 * of migration 2) and every event raises the refund's last event sequence, so a
 * transition compares both, under the write lock, before using the entry. A mismatch
 * means someone else wrote: the row is read and decoded again.
 *
 * @internal
 */
import type { Refund } from "@refundkit/core/Refund"

/** A refund as the database held it at `version`, with events up to `lastSequence`. @internal */
export interface Entry {
  readonly refund: Refund
  readonly version: number
  readonly lastSequence: number
}

/** @internal */
export interface RefundCache {
  readonly get: (id: string) => Entry | undefined
  readonly set: (entry: Entry) => void
  readonly delete: (id: string) => void
}

/** The last event sequence of a refund, as the `MAX(sequence)` of its events would say. @internal */
export const lastSequence = (refund: Refund): number => refund.events.at(-1)?.sequence ?? 0

/**
 * A least-recently-used map bounded at `capacity` entries: a Map keeps insertion
 * order, so touching an entry re-inserts it and the first key is the coldest.
 *
 * @internal
 */
export const make = (capacity: number): RefundCache => {
  const entries = new Map<string, Entry>()
  return {
    get: (id) => {
      const entry = entries.get(id)
      if (entry !== undefined) {
        entries.delete(id)
        entries.set(id, entry)
      }
      return entry
    },
    set: (entry) => {
      const id = entry.refund.id
      entries.delete(id)
      entries.set(id, entry)
      if (entries.size > capacity) {
        const coldest = entries.keys().next()
        if (coldest.done !== true) entries.delete(coldest.value)
      }
    },
    delete: (id) => void entries.delete(id)
  }
}
