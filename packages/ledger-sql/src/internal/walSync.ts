/**
 * Makes the SQLite ledger's commits durable with an fsync of its WAL file on libuv's
 * thread pool, instead of the one SQLite does inside every COMMIT on the event loop.
 *
 * Why this keeps the guarantee of `synchronous = FULL` (sqlite.org: pragma.html
 * "synchronous", wal.html "Performance Considerations"; the SQLite forum thread
 * "Switching pragma synchronous to upgrade durability" recommends exactly this, an
 * xSync of the WAL after committing at NORMAL):
 *
 * - In WAL mode a commit is durable once its WAL frames are on disk. FULL syncs the WAL
 *   at every COMMIT; NORMAL skips that sync but still syncs the WAL before every
 *   checkpoint, the database file after it, and the WAL header when the WAL is reused,
 *   so the database stays consistent and a power cut can only lose the last commits.
 *   After a COMMIT at NORMAL, `fsync` on any descriptor of the `-wal` file flushes every
 *   dirty page of that inode (on Linux, whichever descriptor or process wrote it), so
 *   the committed frames are then as durable as FULL would have left them. Nothing is
 *   reported written before that fsync completes.
 * - The descriptor must name the inode SQLite writes. The `-wal` file is created when
 *   the connection first uses the database in WAL mode, and is deleted only by the last
 *   connection to close (or by leaving WAL mode, which needs every other connection
 *   gone): while our connection is open, SQLite keeps its shared lock on the database,
 *   so no other connection (in this or another process) is the last one. Reusing the
 *   WAL after a checkpoint overwrites it from the start, and `journal_size_limit` or a
 *   TRUNCATE checkpoint truncate it: the same inode either way. Frames that were
 *   overwritten had been checkpointed into the database file, which the checkpoint
 *   synced.
 * - A new `-wal` file is only durable with its directory entry: FULL syncs the directory
 *   with the first WAL sync; we sync it once after opening the descriptor.
 *
 * The fsyncs are grouped: at most one is in flight, and every commit made while it
 * runs waits for the next one, which covers them all (and whatever another process
 * wrote to the WAL before it started).
 *
 * A commit made alone (one write, nothing else queued, no fsync in flight) is synced
 * on the event loop instead, with `fsyncSync`: there is nothing to group it with, and
 * the round trip through the thread pool (waking a pool thread, then the loop) added
 * about 85 µs to each such commit on top of the fsync itself (measured at concurrency
 * 1; the same fsync, so the same durability). Under load commits come in groups and
 * keep the thread pool, so the loop stays free for other requests.
 *
 * After a failed fsync nothing is retried: the kernel may have dropped the dirty pages,
 * so a later fsync could succeed without the data being on disk (PostgreSQL's "fsync
 * gate"). The failure is kept, every waiting commit is told, and the ledger refuses to
 * go on (see `Writer`).
 *
 * @internal
 */
import { ledgerError } from "@refundkit/core/Ledger"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

/** `fs.fsync`'s shape, so tests can hold or fail it. @internal */
export type Fsync = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => void

/** `fs.fsyncSync`'s shape: throws on failure. @internal */
export type FsyncSync = (fd: number) => void

/** Called once the commits it waited for are durable (`undefined`) or may not be (the fsync's error). @internal */
export type Callback = (error: Error | undefined) => void

/** @internal */
export interface WalSync {
  /**
   * Call right after a COMMIT: `callback` runs once an fsync that started after it has
   * completed. With `alone` (no other write is waiting) and no fsync in flight, that
   * fsync runs at once on this thread and `callback` before this returns.
   */
  readonly afterCommit: (callback: Callback, alone: boolean) => void
  /** `callback` runs once every commit registered so far is durable; at once when none is waiting. */
  readonly whenDurable: (callback: Callback) => void
  /** Whether any commit is waiting for its fsync. */
  readonly pending: () => boolean
  /** The fsync failure after which nothing this process wrote can be trusted to be on disk. */
  readonly failure: () => Error | undefined
}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const fsyncEffect = (fsync: Fsync, fd: number) =>
  Effect.async<void, NodeJS.ErrnoException>((resume) => fsync(fd, (error) => resume(error === null ? Effect.void : Effect.fail(error))))

/**
 * The grouping, on an open descriptor of the WAL file. Without `fsyncSync` every fsync
 * runs on the thread pool.
 *
 * @internal
 */
export const make = (fd: number, fsync: Fsync, fsyncSync?: FsyncSync): WalSync => {
  // Waiting for the fsync in flight, and for the one after it.
  let current: Array<Callback> | undefined
  let next: Array<Callback> = []
  let failed: Error | undefined

  const start = () => {
    if (current !== undefined || next.length === 0) return
    const covered = next
    current = covered
    next = []
    fsync(fd, (error) => {
      current = undefined
      if (error === null) {
        for (const callback of covered) callback(undefined)
        return start()
      }
      failed = error
      // No fsync runs after a failure: the commits waiting for the next one fail too.
      const waiting = next
      next = []
      for (const callback of covered) callback(error)
      for (const callback of waiting) callback(error)
    })
  }

  return {
    afterCommit: (callback, alone) => {
      if (failed !== undefined) return callback(failed)
      if (alone && fsyncSync !== undefined && current === undefined && next.length === 0) {
        try {
          fsyncSync(fd)
        } catch (cause) {
          failed = cause instanceof Error ? cause : new Error(messageOf(cause))
          return callback(failed)
        }
        return callback(undefined)
      }
      next.push(callback)
      start()
    },
    whenDurable: (callback) => {
      if (failed !== undefined) return callback(failed)
      // `next` is only ever non-empty while an fsync is in flight.
      if (next.length > 0) next.push(callback)
      else if (current !== undefined) current.push(callback)
      else callback(undefined)
    },
    pending: () => current !== undefined,
    failure: () => failed
  }
}

/**
 * Opens `walFile` (which must exist: SQLite created it), syncs its directory once, and
 * closes the descriptor with the scope. Close the writer first (its finalizer waits
 * for the fsync in flight): the scope runs finalizers in reverse order.
 *
 * @internal
 */
export const open = (walFile: string, fsync: Fsync, fsyncSync?: FsyncSync): Effect.Effect<WalSync, LedgerError, Scope.Scope> =>
  Effect.gen(function*() {
    const cannot = (doing: string) => (cause: unknown) => ledgerError(`cannot ${doing} the SQLite ledger's WAL file ${walFile}: ${messageOf(cause)}`)
    // Read-write: Windows' FlushFileBuffers refuses a read-only handle. No create flag:
    // the file must be the one SQLite already has open.
    const fd = yield* Effect.acquireRelease(
      Effect.try({ try: () => NodeFs.openSync(walFile, "r+"), catch: cannot("open") }),
      (fd) => Effect.sync(() => NodeFs.closeSync(fd))
    )
    // Windows cannot open a directory, and needs no directory sync (SQLite skips it too).
    if (process.platform !== "win32") {
      yield* Effect.acquireUseRelease(
        Effect.try({ try: () => NodeFs.openSync(NodePath.dirname(walFile), "r"), catch: cannot("open the directory of") }),
        (dir) => Effect.mapError(fsyncEffect(NodeFs.fsync, dir), cannot("sync the directory of")),
        (dir) => Effect.sync(() => NodeFs.closeSync(dir))
      )
    }
    return make(fd, fsync, fsyncSync)
  })
