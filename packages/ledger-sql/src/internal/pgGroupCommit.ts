/**
 * Group commit for PostgreSQL's one-statement writes (`pgFastPath.ts`). Writes of one kind
 * (claims, or version-checked changes) that meet while earlier ones are on their way to
 * the server leave together, as one statement over all of them: one round trip and one
 * transaction, instead of one each. Much of what PostgreSQL spends on such a write is
 * per statement and per commit (parse and bind, executor start-up, snapshot, the commit
 * record and its WAL flush): in the bench's load of one gateway at concurrency 32,
 * batches of about 5 took PostgreSQL's CPU per refund from 1,006 to 584 us.
 *
 * A write waits only while `maxInFlight` batches of its kind are out: a lone write, or
 * any write on an idle ledger, leaves on the next turn of the event loop as its own
 * statement, as before. Batches are sent and counted from callbacks, never from the
 * writers' fibers, so a writer interrupted while it waits cannot leave a batch counted
 * as out (its write still goes, as a statement already sent would). A batch never holds
 * two writes to one refund (a second is held for the next batch): each write's result is
 * read from the rows the statement returns by refund id.
 *
 * The statement is atomic: when PostgreSQL refuses it (a constraint, a deadlock, a
 * prepared statement a pooler lost) nothing was written, and each write then runs again
 * as its own statement, to get its own answer. When the connection fails instead, the
 * batch may or may not have committed, and every write of it fails, as its own
 * statement would have.
 *
 * @internal
 */
import { SqlError } from "@effect/sql/SqlError"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * An error PostgreSQL answered with (`pg`'s `DatabaseError`), told by its shape so that
 * the ledger's modules need not load `pg` for SQLite: only a server's error carries a
 * `severity` beside its SQLSTATE `code` (Node's own errors carry a `code` alone).
 *
 * @internal
 */
export const isDatabaseError = (error: unknown): error is { readonly severity: unknown; readonly code: string } =>
  typeof error === "object" && error !== null && "severity" in error && "code" in error && typeof error.code === "string"

/** @internal */
export type WriteResult = Effect.Effect<Option.Option<number>, SqlError | LedgerError>

interface Member<I> {
  readonly id: string
  readonly input: I
  /** The write as its own statement. */
  readonly alone: WriteResult
  readonly resume: (effect: WriteResult) => void
}

/** How a statement ended: PostgreSQL's or the connection's error, or the rows it returned. @internal */
export type Sent = (error: Error | undefined, rows: ReadonlyArray<unknown>) => void

/** @internal */
export interface Options<I> {
  /** Batches of this kind out at once; a write waits only while this many are. */
  readonly maxInFlight: number
  /** Most writes in one statement. */
  readonly maxBatch: number
  /**
   * Sends one statement for `inputs` (distinct refund ids; a lone one as its own
   * statement) and calls back with the rows it returned.
   */
  readonly send: (inputs: ReadonlyArray<I>, done: Sent) => void
  /** Each returned row's refund id and new version. */
  readonly decode: (row: unknown) => Either.Either<{ readonly id: string; readonly version: number }, LedgerError>
}

/** @internal */
export interface GroupCommit<I> {
  /**
   * The write of `input` to refund `id`: its new version, or none when it matched no row
   * (a taken key, a version another writer moved on). `alone` is the same write as its
   * own statement.
   */
  readonly write: (id: string, input: I, alone: WriteResult) => WriteResult
}

/** @internal */
export const make = <I>(options: Options<I>): GroupCommit<I> => {
  let queue: Array<Member<I>> = []
  let inFlight = 0
  let scheduled = false

  const schedule = () => {
    if (scheduled || inFlight >= options.maxInFlight || queue.length === 0) return
    scheduled = true
    setImmediate(flush)
  }

  const release = () => {
    inFlight -= 1
    schedule()
  }

  const take = (): Array<Member<I>> => {
    const batch: Array<Member<I>> = []
    const ids = new Set<string>()
    const rest: Array<Member<I>> = []
    for (const member of queue) {
      if (batch.length < options.maxBatch && !ids.has(member.id)) {
        ids.add(member.id)
        batch.push(member)
      } else {
        rest.push(member)
      }
    }
    queue = rest
    return batch
  }

  const settle = (batch: ReadonlyArray<Member<I>>, error: Error | undefined, rows: ReadonlyArray<unknown>) => {
    if (error !== undefined) {
      // PostgreSQL answered with an error: nothing of the statement was written.
      if (isDatabaseError(error)) for (const member of batch) member.resume(member.alone)
      else {
        const failure = Effect.fail(new SqlError({ cause: error, message: "Failed to execute statement" }))
        for (const member of batch) member.resume(failure)
      }
      return
    }
    const versions = new Map<string, number>()
    for (const row of rows) {
      const decoded = options.decode(row)
      if (Either.isLeft(decoded)) {
        for (const member of batch) member.resume(Effect.fail(decoded.left))
        return
      }
      versions.set(decoded.right.id, decoded.right.version)
    }
    for (const member of batch) member.resume(Effect.succeed(Option.fromNullable(versions.get(member.id))))
  }

  const flush = () => {
    scheduled = false
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = take()
      inFlight += 1
      options.send(batch.map((member) => member.input), (error, rows) => {
        release()
        settle(batch, error, rows)
      })
    }
  }

  return {
    write: (id, input, alone) =>
      Effect.async<Option.Option<number>, SqlError | LedgerError>((resume) => {
        queue.push({ id, input, alone, resume })
        schedule()
      })
  }
}
