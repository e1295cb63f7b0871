/**
 * How failures of the synchronous SQLite driver become ledger errors, and how the
 * ledger waits for another process's write lock without blocking the event loop.
 *
 * The connection runs with `busy_timeout = 0`: a busy database fails at once instead
 * of making better-sqlite3 sleep on the thread (which would stall every request, and
 * could deadlock against a transaction of this process waiting on that thread). The
 * operation is retried on a jittered schedule until `busyTimeoutMillis` has passed.
 *
 * @internal
 */
import { ledgerError } from "@refundkit/core/Ledger"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** Another connection holds the lock this operation needs; worth trying again. @internal */
export class Busy extends Data.TaggedError("SqliteBusy")<{ readonly message: string }> {}

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** @internal */
export const isBusyCause = (cause: unknown): boolean => {
  const code = codeOf(cause)
  return code !== undefined && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
}

/** What a driver exception means for the operation `what`. @internal */
export const failure = (what: string, cause: unknown): Busy | LedgerError =>
  isBusyCause(cause) ? new Busy({ message: messageOf(cause) }) : ledgerError(`${what}: ${messageOf(cause)}`)

/** @internal */
export const isBusy = (error: unknown): error is Busy => error instanceof Busy

const busySchedule = (millis: number) =>
  Schedule.exponential("1 millis", 2).pipe(
    // At most 50 ms between attempts: a group commit holds the lock for its statements only
    // (its fsync runs after the lock is released), or for a checkpoint's two fsyncs.
    Schedule.union(Schedule.spaced("50 millis")),
    Schedule.jittered,
    Schedule.upTo(Duration.millis(millis))
  )

/**
 * Retries `effect` while the database is busy, for up to `busyTimeoutMillis`; then it
 * is a `LedgerError`. The first attempt carries no retry machinery: the schedule is
 * only built once the database was found busy.
 *
 * @internal
 */
export const retryBusy = (what: string, busyTimeoutMillis: number) => {
  const again = busyAgain(what, busyTimeoutMillis)
  return <A, E>(effect: Effect.Effect<A, E | Busy>): Effect.Effect<A, Exclude<E, Busy> | LedgerError> =>
    Effect.catchIf(effect, isBusy, (first) => again(effect, first)) as Effect.Effect<A, Exclude<E, Busy> | LedgerError>
}

/**
 * What {@link retryBusy} does once `effect` has failed busy (`first`): tries it again on the
 * schedule while it is busy, up to `busyTimeoutMillis`, then it is a `LedgerError`. For a caller
 * that learns of the first failure itself (the SQLite writer, as it settles a write) and so needs
 * no `catchIf` around every attempt.
 *
 * @internal
 */
export const busyAgain = (what: string, busyTimeoutMillis: number) => {
  const locked = (error: Busy) =>
    ledgerError(`${what}: the database is locked by another connection (waited ${busyTimeoutMillis} ms): ${error.message}`)
  return <A, E>(effect: Effect.Effect<A, E | Busy>, first: Busy): Effect.Effect<A, Exclude<E, Busy> | LedgerError> =>
    (busyTimeoutMillis <= 0
      ? Effect.fail(locked(first))
      : Effect.catchIf(Effect.retry(effect, { schedule: busySchedule(busyTimeoutMillis), while: isBusy }), isBusy, (last) =>
        Effect.fail(locked(last)))) as Effect.Effect<A, Exclude<E, Busy> | LedgerError>
}
