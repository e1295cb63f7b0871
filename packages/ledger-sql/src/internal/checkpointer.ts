/**
 * Checkpoints the SQLite ledger's WAL from a worker thread, on a connection of its own,
 * instead of inside a COMMIT on the event loop.
 *
 * SQLite's automatic checkpoint runs in the COMMIT that takes the WAL past 1000 pages:
 * it copies those pages into the database file and fsyncs the WAL and the database, all
 * on the thread that committed. Measured on the gateway at concurrency 32, those 4% of
 * commits took 59% of all COMMIT time (over 1 ms each, two fsyncs blocking the loop).
 * A PASSIVE checkpoint on another connection needs no lock the writer holds (SQLite's
 * checkpointer lock is its own), so the worker copies pages while the loop commits.
 * Once a checkpoint has copied every frame and no reader still needs the old ones, the
 * writer starts the WAL over at its next transaction, as it does after its own
 * checkpoints, so the WAL stays small.
 *
 * Durability is unchanged: a checkpoint (on any connection, at NORMAL or FULL) fsyncs
 * the WAL before copying and the database file after, so frames the writer later
 * overwrites when it starts the WAL over are already on disk in the database.
 *
 * The worker is asked for a checkpoint once every `every` committed writes, with at
 * most one request outstanding, and starts with the first request, not when the ledger
 * opens: a thread with its own Node environment and connection takes 70-80 ms to start
 * and stop, which a short command (`refundkit list`, `get`, `create`) would otherwise
 * wait for on exit. Until then the WAL holds at most `every` writes' pages, below the
 * backstop. The writer's own automatic checkpoint stays as a
 * backstop at a higher threshold (`backstopPages`) in case the worker falls behind; if
 * the worker fails or exits, the writer goes back to SQLite's default threshold.
 *
 * @internal
 */
import type BetterSqlite3 from "better-sqlite3"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

/** @internal */
export interface Checkpointer {
  /** Call after each COMMIT with how many writes it held. */
  readonly committed: (writes: number) => void
  /** Checkpoints the worker has completed (for tests and diagnostics). */
  readonly completed: () => number
  /** Whether checkpoints are still the worker's (it has not failed or exited). */
  readonly running: () => boolean
  /** The worker thread, once the first checkpoint request has started it (tests stop it to see the fallback). */
  readonly worker: () => Worker | undefined
}

/** SQLite's default `wal_autocheckpoint`, restored when the worker stops. */
const defaultPages = 1000

/** @internal */
export interface Options {
  /** Committed writes between two checkpoint requests. */
  readonly every: number
  /** The writer's own `wal_autocheckpoint` while the worker runs. */
  readonly backstopPages: number
}

/** @internal */
export const defaults: Options = { every: 200, backstopPages: 10_000 }

// The worker's code, evaluated as CommonJS: a file next to this module would not exist
// when the sources run untranspiled (the tests), while a string runs the same anywhere.
// The driver's path comes from this package's resolution, not the worker's cwd.
const source = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true, timeout: 0 })
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)")
parentPort.on("message", (message) => {
  if (message === "close") {
    db.close()
    parentPort.close()
    return
  }
  try {
    checkpoint.all()
    parentPort.postMessage("done")
  } catch (error) {
    // SQLITE_BUSY: another connection is checkpointing; the next request tries again.
    parentPort.postMessage(error && error.code === "SQLITE_BUSY" ? "done" : "failed: " + String(error && error.message))
  }
})
`

const driver = createRequire(import.meta.url).resolve("better-sqlite3")

/**
 * Hands `file`'s checkpoints (the database `db` has open in WAL mode) to a worker
 * started at the first checkpoint request, and lowers the writer's automatic
 * checkpoint to a backstop. The scope closes the worker's connection and waits for it
 * to exit.
 *
 * @internal
 */
export const start = (db: BetterSqlite3.Database, file: string, options: Options = defaults): Effect.Effect<Checkpointer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      db.pragma(`wal_autocheckpoint = ${options.backstopPages}`)
      let worker: Worker | undefined
      let alive = true
      let outstanding = false
      let since = 0
      let completed = 0
      const stop = () => {
        if (!alive) return
        alive = false
        try {
          if (db.open) db.pragma(`wal_autocheckpoint = ${defaultPages}`)
        } catch {
          // The connection is closing; nothing is left to checkpoint for.
        }
      }
      const launch = (): Worker => {
        const launched = new Worker(source, { eval: true, workerData: { driver, file } })
        // An idle ledger must not keep the process alive.
        launched.unref()
        launched.on("message", (message: unknown) => {
          outstanding = false
          if (message === "done") {
            completed += 1
            return
          }
          // A checkpoint failed for a reason other than a busy lock: leave checkpoints to the writer again.
          stop()
          launched.postMessage("close")
        })
        launched.on("error", stop)
        launched.on("exit", stop)
        return launched
      }
      return {
        committed: (writes) => {
          since += writes
          if (!alive || outstanding || since < options.every) return
          outstanding = true
          since = 0
          // A request sent while the thread is still starting waits in its queue.
          ;(worker ??= launch()).postMessage("checkpoint")
        },
        completed: () => completed,
        running: () => alive,
        worker: () => worker,
        close: () => {
          // No worker is started once the ledger is closing.
          alive = false
          return worker
        }
      }
    }),
    (checkpointer) =>
      Effect.async<void>((resume) => {
        const worker = checkpointer.close()
        // -1 once the thread has exited (it failed, or was closed after a failed checkpoint).
        if (worker === undefined || worker.threadId === -1) return resume(Effect.void)
        worker.once("exit", () => resume(Effect.void))
        // Closing, the worker must keep the process alive until it has exited: unref'd, a
        // script with nothing else to do ended here, mid-close, and its own code after the
        // ledger's scope never ran.
        worker.ref()
        worker.postMessage("close")
      })
  )
