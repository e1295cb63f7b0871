/**
 * Group commit for the SQLite ledger: every write issued in one event-loop turn shares
 * one `BEGIN IMMEDIATE … COMMIT`, so 32 concurrent refunds cost one fsync, not 32.
 *
 * Writes are queued and flushed from `setImmediate`, after the turn's I/O callbacks
 * have queued theirs, or, with a commit delay, once the batch's first write has waited
 * that long (see `Options.commitDelayMillis`). Each runs synchronously in its own
 * `SAVEPOINT`, so one that fails (an over-refund, a corrupt row) rolls back only its
 * own statements. If the COMMIT fails every write of the batch fails. What the writes
 * taught the refund cache is applied right after the COMMIT, so a rolled-back batch
 * never leaves the cache ahead of the database; the cache only ever answers for what
 * the database holds (its entries are checked against the row's version), so it need
 * not wait for the fsync.
 *
 * Nothing is reported before it is durable. On a file the connection runs at
 * `synchronous = NORMAL` and a committed batch waits for the next fsync of the WAL
 * (`WalSync`, on libuv's thread pool; a batch of one write with nothing else queued is
 * synced at once on the loop): its Effects are resumed only once that fsync completed. Writes issued while an fsync is in flight are held and committed together
 * when it completes, then share the following fsync (the write lock is never held
 * across an fsync). A result that rests on another write still
 * waiting for its fsync (an `Existing` claim, a change on top of it) is safe too: that
 * write committed earlier, so the fsync that covers this batch covers it (whichever
 * process wrote it: an fsync flushes the whole file).
 *
 * When an fsync fails, the batches it covered (and those waiting for the next one) are
 * committed but fail with `LedgerError`: they may not be on disk, and nobody is told
 * they succeeded. The writer then refuses every further write, and the ledger its
 * reads and readiness check: the process must restart, and SQLite then recovers the
 * WAL from what reached the disk. A claim that was committed but reported failed is a
 * refund left in `requested` with no provider call, which recovery moves to `unknown`
 * like one left by a crash.
 *
 * The whole batch is one synchronous call: no other JavaScript runs while the write
 * lock is held, and no transaction of this connection ever spans an await.
 *
 * @internal
 */
import { ledgerError } from "@refundkit/core/Ledger"
import type { LedgerError } from "@refundkit/core/RefundError"
import type BetterSqlite3 from "better-sqlite3"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as RuntimeFlags from "effect/RuntimeFlags"
import type * as Scope from "effect/Scope"
import type { Entry, RefundCache } from "./sqliteCache.js"
import { type Busy, failure, isBusy } from "./sqliteErrors.js"
import type { WalSync } from "./walSync.js"

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
  /**
   * Runs `body` inside the next group commit; completes once that COMMIT succeeded and is durable.
   * With `onBusy`, a write that finds the database busy continues as `onBusy` of that failure
   * instead of failing with it (a `catchIf` around the write would be one more Effect operation
   * on every write, busy or not).
   */
  readonly write: <A, E>(
    what: string,
    body: (scratch: Scratch) => Outcome<A, E>,
    onBusy?: (busy: Busy) => Effect.Effect<A, E | Busy | LedgerError>
  ) => Effect.Effect<A, E | Busy | LedgerError>
  /**
   * Completes once every write this process committed so far is durable: at once when
   * none is waiting for its fsync. A read waits for it before reporting what it read.
   */
  readonly durable: (what: string) => Effect.Effect<void, LedgerError>
  /** Why the ledger refuses to go on (a failed fsync), if it does. */
  readonly refusal: (what: string) => LedgerError | undefined
}

interface Pending {
  readonly what: string
  readonly body: (scratch: Scratch) => Outcome<unknown, unknown>
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
  /** Whether the fiber that asked for this write has been interrupted while waiting for it. */
  readonly cancelled: () => boolean
  readonly onBusy: ((busy: Busy) => Effect.Effect<unknown, unknown>) | undefined
}

/** How a write that failed with `error` is settled. */
const failed = (op: Pending, error: unknown): Effect.Effect<unknown, unknown> =>
  op.onBusy !== undefined && isBusy(error) ? op.onBusy(error) : Effect.fail(error)

/** @internal */
export interface Options {
  /** Most writes in one transaction: bounds how long the lock is held and how much one failed COMMIT takes down. */
  readonly maxBatch: number
  /**
   * Makes commits durable when the connection does not sync at COMMIT (a file at
   * `synchronous = NORMAL`); absent, a COMMIT is reported as soon as it returns (in
   * memory, or a connection left at `synchronous = FULL`).
   */
  readonly walSync?: WalSync | undefined
  /** Told how many writes each successful COMMIT held (the checkpointer counts them). */
  readonly onCommit?: ((writes: number) => void) | undefined
  /**
   * How long the first write of a batch waits for others to join it (default 0: until
   * the next turn of the event loop). Every write then waits up to that much longer,
   * so only a caller that keeps many writes in flight and does not wait on each one
   * (a bulk run) gains: fewer, larger COMMITs write fewer WAL pages per write and fsync
   * less often.
   */
  readonly commitDelayMillis?: number | undefined
}

const notDurable = (what: string, error: Error) =>
  ledgerError(
    `${what}: committed, but the fsync of the WAL failed (${error.message}), so it may not be on disk; the ledger refuses further operations until the process restarts`
  )

const unsure = (what: string, error: Error) =>
  ledgerError(`${what}: what was read may not be on disk: the fsync of the WAL failed (${error.message}); restart the process`)

const refused = (what: string, error: Error) =>
  ledgerError(`${what}: the ledger stopped after an fsync of its WAL failed (${error.message}); restart the process`)

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
    // Cancels the flush that is scheduled, if one is.
    let scheduled: (() => void) | undefined
    let closed = false
    const delay = options.commitDelayMillis !== undefined && Number.isFinite(options.commitDelayMillis) && options.commitDelayMillis > 0
      ? options.commitDelayMillis
      : 0

    const walSync = options.walSync
    const refusal = (what: string): LedgerError | undefined => {
      const error = walSync?.failure()
      return error === undefined ? undefined : refused(what, error)
    }

    /** The Effect each write is resumed with, and whether the batch committed (and must be made durable first). */
    interface Settled {
      readonly committed: boolean
      readonly results: ReadonlyArray<Effect.Effect<unknown, unknown>>
    }

    const runBatch = (batch: ReadonlyArray<Pending>): Settled => {
      try {
        begin.run()
      } catch (cause) {
        return { committed: false, results: batch.map((op) => failed(op, failure(op.what, cause))) }
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
          settled.push(outcome._tag === "Done" ? Effect.succeed(outcome.value) : failed(op, outcome.error))
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
        return { committed: false, results: batch.map((op) => failed(op, failure(op.what, cause))) }
      }
      for (const entry of overlay.values()) cache.set(entry)
      return { committed: true, results: settled }
    }

    let held = false

    const flush = () => {
      scheduled = undefined
      if (closed) return
      if (walSync !== undefined && walSync.pending() && walSync.failure() === undefined) {
        // An fsync is in flight, and whatever commits now waits for the next one anyway: hold
        // the writes and commit them together once it completes, in one COMMIT rather than
        // several small ones (measured: 2.6 times fewer COMMITs, less CPU per refund).
        if (!held) {
          held = true
          walSync.whenDurable(() => {
            held = false
            // The held writes have waited for a whole fsync: no commit delay on top.
            schedule(false)
          })
        }
        return
      }
      const batch = queue.splice(0, options.maxBatch).filter((op) => !op.cancelled())
      if (queue.length > 0) schedule(false)
      if (batch.length === 0) return
      const stopped = walSync?.failure()
      if (stopped !== undefined) {
        for (const op of batch) op.resume(Effect.fail(refused(op.what, stopped)))
        return
      }
      const { committed, results } = runBatch(batch)
      if (committed) options.onCommit?.(batch.length)
      if (!committed || walSync === undefined) {
        for (let i = 0; i < batch.length; i++) batch[i]!.resume(results[i]!)
        return
      }
      walSync.afterCommit((error) => {
        for (let i = 0; i < batch.length; i++) {
          const op = batch[i]!
          op.resume(error === undefined ? results[i]! : Effect.fail(notDurable(op.what, error)))
        }
      }, batch.length === 1 && queue.length === 0)
    }

    const schedule = (delayed: boolean) => {
      // While writes are held, the end of the fsync in flight flushes them.
      if (scheduled !== undefined || held) return
      if (delayed && delay > 0) {
        const timer = setTimeout(flush, delay)
        scheduled = () => clearTimeout(timer)
      } else {
        const immediate = setImmediate(flush)
        scheduled = () => clearImmediate(immediate)
      }
    }

    const durable = (what: string): Effect.Effect<void, LedgerError> =>
      walSync === undefined || !walSync.pending() ? Effect.void : Effect.async<void, LedgerError>((resume) =>
        walSync.whenDurable((error) => resume(error === undefined ? Effect.void : Effect.fail(unsure(what, error))))
      )

    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Effect.sync(() => {
          closed = true
          scheduled?.()
          const left = queue
          queue = []
          for (const op of left) op.resume(Effect.fail(failure(op.what, new Error("the ledger was closed before this write ran"))))
        }),
        // Committed batches are settled by their fsync, which must complete before the WAL's descriptor is closed.
        Effect.suspend(() => Effect.ignore(durable("closing the ledger")))
      )
    )

    // An interrupted write that has not run yet is skipped; one that ran is committed with its batch (and synced).
    // The batch asks the waiting fiber whether it was interrupted instead of registering a canceler with
    // `Effect.async`: Effect runs an async step with a canceler inside an uninterruptible region, which made
    // 12 operations of a 3-operation step, twice per refund. A fiber waiting in an uninterruptible region
    // cannot be interrupted there, so its write always runs, as it would have.
    const write = <A, E>(
      what: string,
      body: (scratch: Scratch) => Outcome<A, E>,
      onBusy?: (busy: Busy) => Effect.Effect<A, E | Busy | LedgerError>
    ): Effect.Effect<A, E | Busy | LedgerError> =>
      Effect.withFiberRuntime((fiber, status) => {
        const interruptible = RuntimeFlags.interruptible(status.runtimeFlags)
        const cancelled = () => interruptible && !Cause.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))
        return Effect.async<A, E | Busy | LedgerError>((resume) => {
          if (closed) return resume(Effect.fail(failure(what, new Error("the ledger is closed"))))
          const stopped = refusal(what)
          if (stopped !== undefined) return resume(Effect.fail(stopped))
          queue.push({
            what,
            body,
            // The batch settles each write with the Effect built for its own body.
            resume: resume as (effect: Effect.Effect<unknown, unknown>) => void,
            cancelled,
            onBusy
          })
          schedule(true)
        })
      })

    return { write, durable, refusal }
  })
