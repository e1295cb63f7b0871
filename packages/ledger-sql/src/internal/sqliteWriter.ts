/**
 * Group commit for the SQLite ledger: every write issued in one event-loop turn shares
 * one `BEGIN IMMEDIATE … COMMIT`, so 32 concurrent refunds cost one fsync, not 32.
 *
 * Writes are queued and flushed from `setImmediate`, after the turn's I/O callbacks
 * have queued theirs. Each runs synchronously in its own `SAVEPOINT`, so one that
 * fails (an over-refund, a corrupt row) rolls back only its own statements. Nothing is
 * reported before the COMMIT succeeds: each write's Effect is resumed after it, and if
 * the COMMIT fails every write of the batch fails. What the writes taught the refund
 * cache is applied after the COMMIT too, so a rolled-back batch never leaves the cache
 * ahead of the database.
 *
 * The whole batch is one synchronous call: no other JavaScript runs while the write
 * lock is held, and no transaction of this connection ever spans an await.
 *
 * @internal
 */
import type { LedgerError } from "@refundkit/core/RefundError"
import type BetterSqlite3 from "better-sqlite3"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Entry, RefundCache } from "./sqliteCache.js"
import { type Busy, failure } from "./sqliteErrors.js"

/**
 * How one write ended: `Done` keeps its statements and succeeds; `Kept` keeps them
 * but fails (a refused transition whose refused event must be recorded); `Undone`
 * rolls them back and fails.
 *
 * @internal
 */
export type Outcome<A, E> =
  | { readonly _tag: "Done"; readonly value: A }
  | { readonly _tag: "Kept"; readonly error: E }
  | { readonly _tag: "Undone"; readonly error: E }

/** @internal */
export const done = <A>(value: A): Outcome<A, never> => ({ _tag: "Done", value })
/** @internal */
export const kept = <E>(error: E): Outcome<never, E> => ({ _tag: "Kept", error })
/** @internal */
export const undone = <E>(error: E): Outcome<never, E> => ({ _tag: "Undone", error })

/**
 * The refund cache as one write sees it: its own entries and those of the writes
 * before it in the batch first (uncommitted, but what this transaction reads), then
 * the committed cache.
 *
 * @internal
 */
export interface Scratch {
  readonly lookup: (id: string) => Entry | undefined
  /** Records what the database will hold for a refund once the batch commits. */
  readonly remember: (entry: Entry) => void
}

/** @internal */
export interface Writer {
  /** Runs `body` inside the next group commit; completes once that COMMIT succeeded. */
  readonly write: <A, E>(what: string, body: (scratch: Scratch) => Outcome<A, E>) => Effect.Effect<A, E | Busy | LedgerError>
}

interface Pending {
  readonly what: string
  readonly body: (scratch: Scratch) => Outcome<unknown, unknown>
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
  cancelled: boolean
}

/** @internal */
export interface Options {
  /** Most writes in one transaction: bounds how long the lock is held and how much one failed COMMIT takes down. */
  readonly maxBatch: number
}

/** @internal */
export const make = (db: BetterSqlite3.Database, cache: RefundCache, options: Options): Effect.Effect<Writer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const begin = db.prepare("BEGIN IMMEDIATE")
    const commit = db.prepare("COMMIT")
    const rollback = db.prepare("ROLLBACK")
    const savepoint = db.prepare("SAVEPOINT ledger_write")
    const rollbackTo = db.prepare("ROLLBACK TO ledger_write")
    const release = db.prepare("RELEASE ledger_write")

    let queue: Array<Pending> = []
    let scheduled: NodeJS.Immediate | undefined
    let closed = false

    const runBatch = (batch: ReadonlyArray<Pending>): ReadonlyArray<Effect.Effect<unknown, unknown>> => {
      try {
        begin.run()
      } catch (cause) {
        return batch.map((op) => Effect.fail(failure(op.what, cause)))
      }
      const overlay = new Map<string, Entry>()
      const settled: Array<Effect.Effect<unknown, unknown>> = []
      try {
        for (const op of batch) {
          const mine = new Map<string, Entry>()
          const scratch: Scratch = {
            lookup: (id) => mine.get(id) ?? overlay.get(id) ?? cache.get(id),
            remember: (entry) => void mine.set(entry.refund.id, entry)
          }
          savepoint.run()
          let outcome: Outcome<unknown, unknown>
          try {
            outcome = op.body(scratch)
          } catch (cause) {
            // Some failures (I/O, disk full) make SQLite roll back the whole transaction,
            // taking the earlier writes of the batch with it: then the batch fails as one.
            if (!db.inTransaction) throw cause
            outcome = undone(failure(op.what, cause))
          }
          if (outcome._tag === "Undone") rollbackTo.run()
          else for (const entry of mine.values()) overlay.set(entry.refund.id, entry)
          release.run()
          settled.push(outcome._tag === "Done" ? Effect.succeed(outcome.value) : Effect.fail(outcome.error))
        }
        commit.run()
      } catch (cause) {
        if (db.inTransaction) {
          try {
            rollback.run()
          } catch {
            // The connection is unusable either way; the writes are reported failed below.
          }
        }
        return batch.map((op) => Effect.fail(failure(op.what, cause)))
      }
      for (const entry of overlay.values()) cache.set(entry)
      return settled
    }

    const flush = () => {
      scheduled = undefined
      if (closed) return
      const batch = queue.splice(0, options.maxBatch).filter((op) => !op.cancelled)
      if (queue.length > 0) schedule()
      if (batch.length === 0) return
      const settled = runBatch(batch)
      for (let i = 0; i < batch.length; i++) batch[i]!.resume(settled[i]!)
    }

    const schedule = () => {
      if (scheduled === undefined) scheduled = setImmediate(flush)
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        if (scheduled !== undefined) clearImmediate(scheduled)
        const left = queue
        queue = []
        for (const op of left) op.resume(Effect.fail(failure(op.what, new Error("the ledger was closed before this write ran"))))
      })
    )

    const write = <A, E>(what: string, body: (scratch: Scratch) => Outcome<A, E>): Effect.Effect<A, E | Busy | LedgerError> =>
      Effect.async<A, E | Busy | LedgerError>((resume) => {
        if (closed) return resume(Effect.fail(failure(what, new Error("the ledger is closed"))))
        const pending: Pending = {
          what,
          body,
          // The batch settles each write with the Effect built for its own body.
          resume: resume as (effect: Effect.Effect<unknown, unknown>) => void,
          cancelled: false
        }
        queue.push(pending)
        schedule()
        // An interrupted write that has not run yet is skipped; one that ran is committed with its batch.
        return Effect.sync(() => {
          pending.cancelled = true
        })
      })

    return { write }
  })
