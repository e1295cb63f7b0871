/**
 * A refund's turn (`Ledger.serialise`) on SQLite: a lease row in `refund_turns`
 * (migration 8) instead of a lock, because nothing may hold SQLite's write lock while
 * the turn runs. A turn is a provider call (`Refunds.update`): seconds, up to minutes
 * with retries, and a transaction held that long would stall every writer of every
 * process on the file.
 *
 * - Taking the turn is one short write: insert the row, or take it over when the
 *   holder's lease has run out. A waiter first reads the row (no write lock) and
 *   tries the write only when the turn looks free; it polls on a jittered backoff
 *   (at most `pollCapMillis` apart) for up to `waitMillis`, then fails with a
 *   `LedgerError` naming the refund and the holder. Nothing was sent by then.
 * - The holder renews its lease every third of `leaseMillis` while the turn runs. A
 *   turn has no bound of its own (the call timeout times the retries, a `Retry-After`,
 *   a rate limit waited without limit in a bulk run), so a lease sized to outlast the
 *   longest turn would also keep a refund blocked that long after a crash; renewed,
 *   a process killed mid-turn (SIGKILL, power cut) blocks the refund for one lease at
 *   most, and a live one keeps its turn however long its call takes.
 * - The row is deleted when the turn ends, however it ends (success, failure,
 *   interruption), by its owner only. A turn that lost its lease (its renewals failed
 *   for a whole lease: the event loop or the database stalled that long) is logged.
 *
 * Times are the processes' wall clock, as ISO text. Every process on a SQLite file in
 * WAL mode runs on one machine (the WAL index is shared memory), so they share it.
 *
 * @internal
 */
import { ledgerError } from "@refundkit/core/Ledger"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"

/**
 * The statements on `refund_turns`, with SQLite's `?` parameters: the raw connection and the
 * `@effect/sql` client both run these.
 *
 * @internal
 */
export const statements = {
  holder: "SELECT owner, until FROM refund_turns WHERE refund_id = ?",
  /** Parameters: id, owner, until, now. Taken when free, or over from a holder whose lease ran out; a live holder's row is left as it is. */
  take: `INSERT INTO refund_turns (refund_id, owner, until) VALUES (?, ?, ?)
    ON CONFLICT (refund_id) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE refund_turns.until <= ?`,
  /** Parameters: until, id, owner. */
  renew: "UPDATE refund_turns SET until = ? WHERE refund_id = ? AND owner = ?",
  /** Parameters: id, owner. */
  release: "DELETE FROM refund_turns WHERE refund_id = ? AND owner = ?"
} as const

/** Who holds a turn, until when (ISO 8601). @internal */
export interface Holder {
  readonly owner: string
  readonly until: string
}

const HolderRow = Schema.Struct({ owner: Schema.String, until: Schema.String })

/** A `refund_turns` row as read (`owner`, `until`), or none. @internal */
export const decodeHolder = (raw: unknown): Either.Either<Option.Option<Holder>, LedgerError> =>
  raw === undefined || raw === null
    ? Either.right(Option.none())
    : Either.mapBoth(Schema.decodeUnknownEither(HolderRow)(raw), {
      onLeft: (error) => ledgerError(`a refund's turn is corrupt in the database (table refund_turns): ${error.message}`),
      onRight: (row) => Option.some<Holder>({ owner: row.owner, until: row.until })
    })

/** The statements a turn needs, on one connection or another. @internal */
export interface Store {
  /** The turn's row, if any (read without the write lock). */
  readonly holder: (id: string) => Effect.Effect<Option.Option<Holder>, LedgerError>
  /** Takes the turn unless someone holds it with a lease running past `now`; none when taken, else that holder. */
  readonly take: (id: string, owner: string, now: string, until: string) => Effect.Effect<Option.Option<Holder>, LedgerError>
  /** Moves the owner's lease on; false when the row is no longer the owner's. */
  readonly renew: (id: string, owner: string, until: string) => Effect.Effect<boolean, LedgerError>
  /** Deletes the owner's row, if it is still the owner's. */
  readonly release: (id: string, owner: string) => Effect.Effect<void, LedgerError>
}

/** @internal */
export interface Options {
  /** How long a turn's lease lasts without a renewal: how long a crashed holder blocks the refund. */
  readonly leaseMillis: number
  /** How long a caller waits for another's turn before it gives up. */
  readonly waitMillis: number
}

/** @internal */
export const defaults: Options = { leaseMillis: 30_000, waitMillis: 60_000 }

const pollCapMillis = 250

class Held extends Data.TaggedError("TurnHeld")<{ readonly holder: Holder }> {}

const isHeld = (error: unknown): error is Held => error instanceof Held

const iso = (millis: number) => new Date(millis).toISOString()

/**
 * `serialise` over `store`: runs `effect` as the only holder of refund `id`'s turn
 * among every process on the file.
 *
 * @internal
 */
export const make = (store: Store, options: Options) => {
  const leaseMillis = Math.max(1, Math.floor(options.leaseMillis))
  const waitMillis = Math.max(0, Math.floor(options.waitMillis))
  const poll = Schedule.exponential("10 millis", 2).pipe(
    Schedule.union(Schedule.spaced(Duration.millis(pollCapMillis))),
    Schedule.jittered,
    Schedule.upTo(Duration.millis(waitMillis))
  )
  const renewEvery = Duration.millis(Math.max(1, Math.floor(leaseMillis / 3)))

  return <A, E, R>(id: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | LedgerError, R> =>
    Effect.suspend(() => {
      // One owner per turn, not per process: two turns of one process wait for each other too.
      const owner = `${hostname()} pid ${process.pid} ${randomUUID()}`
      let wrote = false

      const attempt = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const seen = yield* store.holder(id)
        if (Option.isSome(seen) && seen.value.until > iso(now)) return yield* new Held({ holder: seen.value })
        wrote = true
        const refused = yield* store.take(id, owner, iso(now), iso(now + leaseMillis))
        if (Option.isSome(refused)) return yield* new Held({ holder: refused.value })
      })

      const take = Effect.catchIf(attempt, isHeld, () =>
        Effect.retry(attempt, { schedule: poll, while: isHeld }).pipe(
          Effect.catchIf(isHeld, ({ holder }) =>
            Effect.fail(ledgerError(
              `waiting for the turn of refund ${id}: another caller (${holder.owner}) has held it for longer than ${waitMillis} ms ` +
                `(its lease runs to ${holder.until}, renewed while it works); nothing was sent for this call: try again once that one has finished`
            )))
        ))

      const renewals = Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(renewEvery)
          const now = yield* Clock.currentTimeMillis
          const kept = yield* store.renew(id, owner, iso(now + leaseMillis)).pipe(
            Effect.catchAll((error) =>
              Effect.as(Effect.logWarning(`renewing the turn of refund ${id} failed; trying again: ${error.message}`), true)
            )
          )
          if (!kept) {
            return yield* Effect.logWarning(
              `the turn of refund ${id} was taken over after its lease ran out (${leaseMillis} ms without a renewal): another caller may be updating it too`
            )
          }
        }
      })

      const release = Effect.suspend(() =>
        wrote
          ? store.release(id, owner).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(`releasing the turn of refund ${id} failed; it frees itself within ${leaseMillis} ms: ${error.message}`)
            )
          )
          : Effect.void
      )

      const held = Effect.acquireUseRelease(
        // Forked in an uninterruptible region: the renewals must stay interruptible.
        Effect.fork(Effect.interruptible(renewals)),
        () => effect,
        (fiber) => Fiber.interrupt(fiber)
      )
      return Effect.ensuring(Effect.zipRight(take, held), release)
    })
}
