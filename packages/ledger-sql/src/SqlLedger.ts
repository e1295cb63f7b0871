/**
 * The durable ledger: core's `Ledger` on `@effect/sql`, backed by a SQLite file (the
 * embedded default) or PostgreSQL (several gateway or CLI processes sharing one ledger).
 *
 * Every rule that decides what a refund may become is core's (`applyChange`,
 * `targetGuards`, `refusalOf`); this module only makes those
 * decisions atomic on a database:
 *
 * - a claim is `INSERT … ON CONFLICT DO NOTHING RETURNING` (the id derives from the key)
 *   against a unique constraint: exactly one concurrent claimant gets a row back;
 * - the target guards (the over-refund sum, and a whole refund's refusal while another
 *   refund holds its target: one not failed, or failed and kept on it by its provider) and the claim's reservations are read and written in the same
 *   transaction, under SQLite's write lock (`BEGIN IMMEDIATE`) or, on PostgreSQL, a
 *   `FOR UPDATE` lock on one row per (provider, target);
 * - a status change reads the refund under the same locks (`FOR UPDATE` on PostgreSQL),
 *   applies the transition table and writes the row and its event together.
 *
 * On PostgreSQL the common cases are one statement each (`internal/pgFastPath.ts`): a
 * claim without target guards (no whole refund, no original amounts), and a status change to a refund this process
 * remembers, written only `WHERE version` is still the remembered one; any other
 * writer moves `version` on, and the change then takes the locked path above. Those
 * that meet share one statement and one commit (`internal/pgGroupCommit.ts`).
 *
 * `layerSqlite` does the same on one raw better-sqlite3 connection, synchronously and
 * with group commit (`internal/sqliteLedger.ts`); `make` and `layerFromClient` run on
 * any `SqlClient`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { Change, Claim, ListQuery, Page, StatusCount, SyncLease as CoreSyncLease } from "@refundkit/core/Ledger"
import type { GuardError, TargetGuard } from "@refundkit/core/Ledger"
import {
  applyChange,
  byCreation,
  createdRangeRefusal,
  holdsTargets,
  invalidCursor,
  Ledger,
  ledgerError,
  reclaimRefusal,
  recoveryOf,
  refusalOf,
  repeatedCallback,
  targetGuards,
  targetWithoutProvider
} from "@refundkit/core/Ledger"
import type { Reservation } from "@refundkit/core/Ledger"
import type { Refund, RefundEvent } from "@refundkit/core/Refund"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import type { ConfigurationError, DuplicateCallback, IllegalTransition } from "@refundkit/core/RefundError"
import { type InvalidRequest, LedgerError, RefundNotFound } from "@refundkit/core/RefundError"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import {
  byStatusAlone,
  countByStatus as queryCounts,
  decodeCreatedCursor,
  decodeCursor,
  encodeCreatedCursor,
  encodeCursor,
  firstInLeaseOrder,
  leaseCandidates,
  listByCreationPage,
  listPage,
  providersDueText,
  providersWithStatus,
  recoverySkipped,
  syncSkipped,
  syncWhere,
  withoutSorts
} from "./internal/queries.js"
import * as Claimants from "./internal/claimants.js"
import * as PgDeadline from "./internal/pgDeadline.js"
import * as PgFastPath from "./internal/pgFastPath.js"
import { isDatabaseError } from "./internal/pgGroupCommit.js"
import type * as PgPool from "./internal/pgPool.js"
import * as Rows from "./internal/rows.js"
import * as RefundCache from "./internal/sqliteCache.js"
import * as SqliteLedger from "./internal/sqliteLedger.js"
import * as Transactions from "./internal/transactions.js"
import * as Turns from "./internal/turns.js"
import * as LedgerConfig from "./LedgerConfig.js"
import * as Migrations from "./Migrations.js"

/**
 * A lease on refunds for one sync worker: core's `SyncLease` (it moved there when the
 * in-memory ledger learned to lease too).
 *
 * @since 0.1.0
 */
export type SyncLease = CoreSyncLease

/**
 * The SQL ledger: core's `Ledger.Service` plus what only a shared database can offer.
 *
 * @since 0.1.0
 */
export class SqlLedger extends Context.Tag("@refundkit/ledger-sql/SqlLedger")<SqlLedger, SqlLedger.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace SqlLedger {
  /**
   * @since 0.1.0
   */
  export interface Service extends Ledger.Service {
    /** Which database this ledger runs on. */
    readonly dialect: "sqlite" | "pg"
    /** Succeeds when the database answers and the schema is at the latest migration: for `/readyz`. */
    readonly ready: Effect.Effect<void, LedgerError>
    /**
     * Core's `claimForSync`, always present: several instances sharing a PostgreSQL ledger
     * never sync the same refund at once. Rows another transaction is leasing right now
     * are skipped, not waited for.
     */
    readonly claimForSync: (lease: SyncLease) => Effect.Effect<ReadonlyArray<Refund>, LedgerError>
    /** Core's `countByStatus`, always present. */
    readonly countByStatus: (statuses: ReadonlyArray<RefundStatus>) => Effect.Effect<ReadonlyArray<StatusCount>, LedgerError>
    /** Ends `owner`'s leases on these refunds early (after syncing them). */
    readonly releaseSync: (options: { readonly owner: string; readonly ids: ReadonlyArray<string> }) => Effect.Effect<void, LedgerError>
  }
}

/**
 * Options shared by every layer.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Apply pending migrations when the layer starts (default `true`). */
  readonly migrate?: boolean | undefined
  /**
   * SQLite: how long a refund's turn (`serialise`) stays held without a renewal, in
   * milliseconds (default 30000). The holder renews it every third of that while its
   * turn runs, so it bounds only how long a process that died mid-turn blocks the
   * refund. PostgreSQL's turn is an advisory lock, freed with the connection.
   */
  readonly turnLeaseMillis?: number | undefined
  /**
   * How long a caller waits for another's turn on the same refund before it fails with a
   * `LedgerError` naming the refund, in milliseconds (default 60000). On PostgreSQL it
   * bounds every wait for another caller's lock (a refund's turn, a refund or a target
   * locked by a claim or a change), as the server's `lock_timeout`.
   */
  readonly turnWaitMillis?: number | undefined
  /**
   * PostgreSQL, on the ledger's own pool (`layerPg`): how long a claim or status change
   * written in one statement (the group commit's) waits for the server's answer, in
   * milliseconds.
   *
   * @deprecated `statementTimeoutMillis` (`PgOptions`) bounds every statement, these
   * writes included; when this is set it still bounds these writes, and the other
   * statements follow `statementTimeoutMillis`.
   */
  readonly writeTimeoutMillis?: number | undefined
}

const turnOptions = (options: Options): Turns.Options => ({
  leaseMillis: options.turnLeaseMillis ?? Turns.defaults.leaseMillis,
  waitMillis: options.turnWaitMillis ?? Turns.defaults.waitMillis
})

/**
 * Options of the SQLite layer.
 *
 * @since 0.1.0
 */
export interface SqliteOptions extends Options {
  /**
   * How long a writer waits for another process's write lock, in milliseconds (default
   * 5000). The wait is a retry on a timer: the event loop keeps running meanwhile.
   */
  readonly busyTimeoutMillis?: number | undefined
  /**
   * How long the first write of a group commit waits for others to join it, in
   * milliseconds (default 0: writes issued in the same event-loop turn, or while the
   * previous commit's fsync runs, share a commit). Every write is reported up to that
   * much later, so it suits a process that keeps many writes in flight without waiting
   * on each (`refundkit bulk` uses 5): fewer, larger commits write fewer WAL pages per
   * refund and fsync less often. A gateway answering each request leaves it at 0.
   */
  readonly commitDelayMillis?: number | undefined
}

/**
 * Options of the PostgreSQL layer.
 *
 * @since 0.1.0
 */
export interface PgOptions extends Options {
  /** Pool size (default 10). */
  readonly maxConnections?: number | undefined
  /** `application_name` seen in `pg_stat_activity` (default `refundkit-ledger`). */
  readonly applicationName?: string | undefined
  /**
   * How long any statement on the ledger's pool may go without PostgreSQL's answer, in
   * milliseconds (default 30000); a new connection's handshake too. Past it the operation
   * fails with a `LedgerError` naming it and saying whether a write is in doubt, and the
   * connection is dropped, never returned to the pool: the next operation goes out on a new
   * one. A statement that waits for another caller's lock by design gets `turnWaitMillis`
   * on top. The migrations that `layerPg` runs at start-up are not bounded (see the README,
   * "When PostgreSQL stops answering").
   */
  readonly statementTimeoutMillis?: number | undefined
}

const causeText = (error: SqlError): string => {
  const cause: unknown = error.cause
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message
}

const storageFailure = (what: string, error: SqlError): LedgerError => {
  const deadline = PgDeadline.deadlineOf(error.cause)
  if (deadline !== undefined) {
    return ledgerError(
      `${what}: ${deadline.message}` +
        (deadline.phase === "statement" ? ", so its connection was dropped and the next operation opens a new one; " : "; ") +
        (deadline.inDoubt
          ? "the write may or may not have been recorded: read the refund again before acting on it"
          : "nothing was written by this call") +
        "; check that the ledger database is reachable"
    )
  }
  if (Transactions.isLockWaitOver(error)) {
    return ledgerError(
      `${what}: another caller held a lock this call needed for longer than the ledger waits for one (turnWaitMillis); ` +
        "nothing was written by this call: try again once it has finished"
    )
  }
  return ledgerError(`${what}: ${causeText(error)}; check that the ledger database is reachable and accepts writes`)
}

/**
 * A read whose rows did not decode (a `LedgerError`; storage failures are `SqlError`s, left
 * to `run`) as a `Left`: recovery and sync leases pass such a refund by and go on.
 */
const undecodedAsLeft = <A, R>(read: Effect.Effect<A, LedgerError | SqlError, R>): Effect.Effect<Either.Either<A, LedgerError>, SqlError, R> =>
  read.pipe(
    Effect.map((a) => Either.right(a)),
    Effect.catchIf((e): e is LedgerError => e instanceof LedgerError, (e) => Effect.succeed(Either.left(e)))
  )

const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

// `pg` and `@effect/sql-pg` are loaded for a PostgreSQL ledger only. A SQLite command's start took
// ~40 ms longer with them: as it loads, `pg` looks for a Cloudflare runtime, which loads Node's fetch.
const loadPgPool = Effect.promise(() => import("./internal/pgPool.js"))

/**
 * How many refunds a PostgreSQL ledger remembers (with their row's `version`) for
 * status changes without a locked read.
 */
const pgCacheSize = 10_000

/** The first key of every advisory lock the ledger takes ("RFND"), so its locks meet no other application's. */
const turnLockClass = 0x52464e44

/** A change applied, with the version the refund's row moved to. */
interface Persisted {
  readonly applied: ReturnType<typeof applyChange>
  readonly version: number
}

/**
 * Builds the ledger on the `SqlClient` in context. The schema must already be
 * migrated (see `Migrations.run`); the layers below do both.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<SqlLedger.Service, LedgerError, SqlClient.SqlClient> = Effect.suspend(() => makeWith({}))

/** The default of `PgOptions.statementTimeoutMillis`. */
const defaultStatementTimeoutMillis = 30_000

const makeWith = (options: Options & Pick<PgOptions, "statementTimeoutMillis">): Effect.Effect<SqlLedger.Service, LedgerError, SqlClient.SqlClient> => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const dialect = yield* sql.onDialectOrElse({
    sqlite: () => Effect.succeed<Rows.Dialect>("sqlite"),
    pg: () => Effect.succeed<Rows.Dialect>("pg"),
    orElse: () => Effect.fail(new LedgerError({ detail: "the ledger supports SQLite and PostgreSQL only" }))
  })
  const turns = turnOptions(options)
  const tx = Transactions.make(sql, dialect, { lockWaitMillis: dialect === "pg" ? turns.waitMillis : undefined })
  // PostgreSQL only: one-statement claims and version-checked changes (internal/pgFastPath.ts),
  // and the refunds this process last wrote or read, at their row's version.
  const fast = dialect === "pg"
    ? PgFastPath.make(sql, yield* Effect.serviceOption((yield* loadPgPool).PgPool), options.writeTimeoutMillis ?? options.statementTimeoutMillis ?? defaultStatementTimeoutMillis)
    : undefined
  // Statements that wait for another caller's row lock by design get the lock budget (internal/pgDeadline.ts).
  const waitsForLock = sql.literal(dialect === "pg" ? PgDeadline.waitsForLock : "")
  const cache = dialect === "pg" ? RefundCache.make(pgCacheSize) : undefined
  const lockedColumns = sql.literal(`${Rows.refundColumns}, version`)
  // On PostgreSQL a read that takes no lock brings the events along in the same statement.
  const columnsText = dialect === "pg" ? PgFastPath.hydratedColumns : `${Rows.refundColumns}, version`
  const columns = sql.literal(columnsText)
  const forUpdate = sql.literal(dialect === "pg" ? " FOR UPDATE" : "")

  /** A consistent read: on PostgreSQL each read is one statement, which is one snapshot. */
  const snapshot = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
    dialect === "pg" ? effect : tx.read(effect)

  /**
   * Whether a transaction is open around this point: the ledger's own, or one the caller
   * opened around the ledger (`sql.withTransaction`). What is read or written inside one
   * may yet be rolled back, so it is not remembered, and a caller's transaction gets the
   * transactional paths, which join it.
   */
  const inTransaction = Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)

  const remember = (refund: Refund, version: number): Effect.Effect<void> =>
    cache === undefined ? Effect.void : Effect.map(inTransaction, (inside) => {
      if (!inside) cache.set({ refund, version, lastSequence: RefundCache.lastSequence(refund) })
    })

  /**
   * Runs one ledger operation: whole transactions are retried when another writer
   * made them fail (busy, deadlock), and storage failures become `LedgerError`.
   */
  const run = <A, E>(what: string, effect: Effect.Effect<A, E | SqlError>): Effect.Effect<A, Exclude<E, SqlError> | LedgerError> =>
    effect.pipe(
      Effect.retry({ schedule: Transactions.retryTransient, while: (e) => e instanceof SqlError && Transactions.isTransient(e) }),
      Effect.catchIf((e): e is SqlError => e instanceof SqlError, (e) => Effect.fail(storageFailure(what, e))),
      // @effect/sql turns a failed COMMIT or ROLLBACK into a defect; it is still a storage failure.
      Effect.catchSomeDefect((defect) => defect instanceof SqlError ? Option.some(Effect.fail(storageFailure(what, defect))) : Option.none())
    ) as Effect.Effect<A, Exclude<E, SqlError> | LedgerError>

  const eventsOf = (ids: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const byRefund = new Map<string, Array<RefundEvent>>()
      for (const chunk of chunks(ids, 500)) {
        const rows = yield* sql`SELECT ${sql.literal(Rows.eventColumns)} FROM refund_events
          WHERE refund_seq IN (SELECT seq FROM refunds WHERE ${sql.in("id", chunk)}) ORDER BY refund_seq, sequence`
        for (const raw of rows) {
          const row = yield* Rows.decodeEventRow(raw)
          const list = byRefund.get(row.refund_id) ?? []
          list.push(Rows.toEvent(row))
          byRefund.set(row.refund_id, list)
        }
      }
      return byRefund
    })

  /** Decodes rows read with `lockedColumns` and attaches their events, read by a second statement. */
  const withEvents = (raws: ReadonlyArray<unknown>) =>
    Effect.gen(function*() {
      const rows = yield* Effect.forEach(raws, (raw) => Effect.zip(Rows.decodeRefundRow(raw), Rows.decodeVersionEither(raw)))
      const events = yield* eventsOf(rows.map(([row]) => row.id))
      return rows.map(([row, version]): Rows.Versioned => ({ row, version, refund: Rows.toRefund(row, events.get(row.id) ?? []) }))
    })

  /** Decodes rows read with `columns`, keeping their order; PostgreSQL's carry their events. */
  const hydrate = (raws: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<Rows.Versioned>, LedgerError | SqlError> =>
    dialect === "pg"
      ? Effect.forEach(raws, (raw) => Effect.tap(Rows.decodeHydratedEither(raw), (read) => remember(read.refund, read.version)))
      : withEvents(raws)

  const first = (raws: ReadonlyArray<unknown>) =>
    Effect.map(hydrate(raws.slice(0, 1)), (list) => Option.map(Option.fromNullable(list[0]), (x) => x.refund))

  /**
   * The refund under its row lock (`FOR UPDATE` on PostgreSQL; SQLite's write
   * transaction holds the whole file), its events read after the lock was granted.
   */
  const selectLocked = (id: string) =>
    Effect.map(
      Effect.flatMap(sql`${waitsForLock}SELECT ${lockedColumns} FROM refunds WHERE id = ${id}${forUpdate}`, (raws) => withEvents(raws.slice(0, 1))),
      (list) => Option.fromNullable(list[0])
    )

  const selectByKey = (provider: string, key: string) =>
    Effect.flatMap(sql`SELECT ${columns} FROM refunds WHERE provider = ${provider} AND idempotency_key = ${key}`, first)

  // Events and reservations are keyed by the refund's seq (Migrations.ts): a write takes it
  // from the row it inserted or read under its lock, and inserts all its rows in one statement.
  const insertEvents = (seq: bigint, refundId: string, events: ReadonlyArray<RefundEvent>) =>
    events.length === 0
      ? Effect.void
      : Effect.asVoid(sql`INSERT INTO refund_events ${sql.insert(events.map((e) => ({ refund_seq: seq, ...Rows.eventRow(dialect, refundId, e) })))}`)

  /** Serialises claims against one target across PostgreSQL connections; SQLite claims already hold the write lock. */
  const lockTargets = (provider: string, targets: ReadonlyArray<string>) =>
    dialect === "sqlite"
      ? Effect.void
      : Effect.forEach(
        // One order for every transaction, so two claims on the same targets cannot deadlock.
        [...new Set(targets)].sort(),
        (target) =>
          sql`INSERT INTO refund_target_locks (provider, target) VALUES (${provider}, ${target}) ON CONFLICT DO NOTHING`.pipe(
            Effect.zipRight(sql`SELECT 1 FROM refund_target_locks WHERE provider = ${provider} AND target = ${target} FOR UPDATE`)
          ),
        { discard: true }
      )

  const reservedFor = (provider: string, target: string) =>
    Effect.flatMap(
      sql`SELECT t.refund_id, t.amount_minor, t.currency, r.status FROM refund_targets t JOIN refunds r ON r.seq = t.refund_seq
          WHERE t.provider = ${provider} AND t.target = ${target} AND (r.status <> 'failed' OR r.holds_target = 1) AND t.released = 0 ORDER BY t.refund_seq`,
      Rows.decodeReserved
    )

  const reserve = (seq: bigint, refund: Refund) => {
    const rows = Rows.targetRows(refund)
    return rows.length === 0 ? Effect.void : Effect.asVoid(sql`INSERT INTO refund_targets ${sql.insert(rows.map((t) => ({ refund_seq: seq, ...t })))}`)
  }

  /** The refund holding a key another claim took: the winner has committed, so a new read sees it. */
  const existing = (refund: Refund) =>
    Effect.flatMap(selectByKey(refund.provider, refund.idempotencyKey), (found) =>
      Option.isNone(found)
        ? Effect.fail(new LedgerError({ detail: `the idempotency key of ${refund.id} conflicted but no refund holds it` }))
        : Effect.succeed<Claim>({ _tag: "Existing", refund: found.value }))

  /**
   * PostgreSQL's claim under target locks in four round trips (BEGIN, the locks, the claim
   * with the sums held by others, COMMIT), where a statement per table and lock took eight.
   */
  const pgLockedClaim = (fast: PgFastPath.PgFastPath, refund: Refund, guards: ReadonlyArray<TargetGuard>) =>
    Effect.gen(function*() {
      const claimed = yield* fast.guardedClaim(refund, guards.map((g) => g.target))
      if (Option.isNone(claimed)) return { claim: yield* existing(refund), version: Option.none<number>() }
      for (const guard of guards) {
        const refused = refusalOf(guard, claimed.value.held.get(guard.target) ?? [])
        if (refused !== undefined) return yield* refused
      }
      return { claim: { _tag: "Claimed", refund } satisfies Claim, version: Option.some(claimed.value.version) }
    })

  /** A claim in one transaction: the key, then (where targets are guarded) the locked over-refund sums. */
  const lockedClaim = (refund: Refund, guards: ReadonlyArray<TargetGuard>) =>
    Effect.tap(
      tx.write(fast !== undefined ? pgLockedClaim(fast, refund, guards) : Effect.gen(function*() {
        // The target locks come before the row: its seq (the list's order and cursor) is drawn
        // when the row is inserted, and a row inserted before a wait on a lock commits after rows
        // with higher seqs, behind a cursor a listing already handed out, so it is never listed.
        yield* lockTargets(refund.provider, guards.map((g) => g.target))
        // No conflict target, as in the fast path (see pgFastPath.ts): a primary-key collision is the same key.
        const inserted = yield* sql`INSERT INTO refunds ${sql.insert(Rows.insertRow(refund))}
          ON CONFLICT DO NOTHING RETURNING id, seq, version`
        if (inserted.length === 0) return { claim: yield* existing(refund), version: Option.none<number>() }
        const { seq, version } = yield* Rows.decodeClaimedEither(inserted[0])
        for (const guard of guards) {
          const refused = refusalOf(guard, yield* reservedFor(refund.provider, guard.target))
          if (refused !== undefined) return yield* refused
        }
        yield* reserve(seq, refund)
        yield* insertEvents(seq, refund.id, refund.events)
        return { claim: { _tag: "Claimed", refund } satisfies Claim, version: Option.some(version) }
      })),
      // Remembered once committed.
      ({ version }) => Option.match(version, { onNone: () => Effect.void, onSome: (v) => remember(refund, v) })
    )

  const claim = (refund: Refund): Effect.Effect<Claim, GuardError | LedgerError> => {
    // Whole refunds are guarded too, so they take the locked path as guarded amounts do.
    const guards = targetGuards(refund)
    const locked = Effect.map(lockedClaim(refund, guards), (r) => r.claim)
    if (fast === undefined || guards.length > 0) return run("claiming an idempotency key", locked)
    // Without a guard there is nothing to lock and sum: PostgreSQL claims in one statement.
    const oneStatement = Effect.flatMap(fast.claim(refund), (version): Effect.Effect<Claim, LedgerError | SqlError> =>
      Option.isNone(version) ? existing(refund) : Effect.as(remember(refund, version.value), { _tag: "Claimed", refund }))
    return run("claiming an idempotency key", Effect.flatMap(inTransaction, (inside) => (inside ? locked : oneStatement)))
  }

  // PostgreSQL text cannot hold U+0000: a parameter carrying one is refused as an encoding error
  // (a 503 for a request that named a refund `a%00b`), not a miss. No ledger stores one (core keeps
  // NULs out of what it records, and idempotency keys are printable ASCII), so such a lookup finds nothing.
  const unstorable = (...values: ReadonlyArray<string | undefined>): boolean => values.some((value) => value !== undefined && value.includes("\u0000"))

  const get = (id: string): Effect.Effect<Refund, RefundNotFound | LedgerError> =>
    unstorable(id) ? Effect.fail(new RefundNotFound({ refundId: id })) : run("reading a refund", snapshot(Effect.flatMap(sql`SELECT ${columns} FROM refunds WHERE id = ${id}`, first))).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.fail(new RefundNotFound({ refundId: id })), onSome: Effect.succeed }))
    )

  const findByKey = (provider: string, key: string) =>
    unstorable(provider, key) ? Effect.succeed(Option.none()) : run("reading a refund by idempotency key", snapshot(selectByKey(provider, key)))

  const holderOf = (provider: string, target: string) =>
    unstorable(provider, target)
      ? Effect.succeed(Option.none())
      : run("reading the refunds against a target", snapshot(Effect.map(reservedFor(provider, target), (held) => Option.fromNullable(held[0]))))

  const findByReference = (provider: string, reference: string) =>
    unstorable(provider, reference) ? Effect.succeed(Option.none()) : run(
      "reading a refund by provider reference",
      snapshot(Effect.flatMap(
        sql`SELECT ${columns} FROM refunds WHERE provider = ${provider} AND provider_reference = ${reference} ORDER BY seq LIMIT 1`,
        first
      ))
    )

  /**
   * Writes an accepted change, or records the refusal (its event, and a version bump so
   * no cached copy of the old history is trusted), on the refund read under its lock.
   */
  const persistChange = (current: Rows.Versioned, change: Change): Effect.Effect<Persisted, LedgerError | SqlError> => {
    const applied = applyChange(current.refund, change)
    const id = current.refund.id
    if (fast !== undefined) {
      return Effect.flatMap(fast.writeInTransaction(current.refund, current.version, applied), (version) =>
        Option.isSome(version)
          ? Effect.succeed({ applied, version: version.value })
          : Effect.fail(new LedgerError({ detail: `refund ${id} changed while it was locked` })))
    }
    const next = Either.isRight(applied) ? applied.right : applied.left.refused
    const row = Either.isRight(applied)
      ? sql`UPDATE refunds SET ${sql.update(Rows.updateRow(next))}, version = version + 1 WHERE id = ${id}`
      : sql`UPDATE refunds SET version = version + 1 WHERE id = ${id}`
    // Only a change that alters the targets the refund releases (an item failed, or back from failed) writes them.
    const release = Either.isRight(applied) ? Rows.releaseOf(current.refund, next) : undefined
    const released = release === undefined ? Effect.void : Effect.asVoid(
      sql`UPDATE refund_targets SET released = CASE WHEN ${sql.in("target", release.released)} THEN 1 ELSE 0 END
          WHERE provider = ${release.provider} AND ${sql.in("target", release.targets)} AND refund_seq = ${current.row.seq}`
    )
    return row.pipe(
      Effect.zipRight(released),
      Effect.zipRight(insertEvents(current.row.seq, id, next.events.slice(current.refund.events.length))),
      Effect.as({ applied, version: current.version + 1 })
    )
  }

  /** Remembers the refund a committed change left, and returns the change's result. */
  const settle = ({ applied, version }: Persisted) =>
    Effect.as(remember(Either.isRight(applied) ? applied.right : applied.left.refused, version), applied)

  /** Reads the refund under its lock, applies the change and writes it, in one transaction. */
  const lockedTransition = (id: string, change: Change) =>
    Effect.flatMap(
      tx.write(Effect.gen(function*() {
        const current = yield* selectLocked(id)
        if (Option.isNone(current)) return yield* new RefundNotFound({ refundId: id })
        const repeated = repeatedCallback(current.value.refund, change)
        if (repeated !== undefined) return yield* repeated
        return yield* persistChange(current.value, change)
      })),
      settle
    )

  /**
   * A change to a refund this process holds, written only if its row is still at the
   * remembered version (one statement). Otherwise someone else wrote it: the memory is
   * dropped and the change is made under the lock, from what the database holds.
   */
  const optimisticTransition = (id: string, change: Change) =>
    Effect.flatMap(inTransaction, (inside) => {
      const entry = inside ? undefined : cache?.get(id)
      if (fast === undefined || entry === undefined) return lockedTransition(id, change)
      // Events are only ever added, and what this process remembers was committed: a callback it records is
      // recorded for good, with nothing to write.
      const repeated = repeatedCallback(entry.refund, change)
      if (repeated !== undefined) return Effect.fail(repeated)
      const applied = applyChange(entry.refund, change)
      return fast.write(entry.refund, entry.version, applied).pipe(
        Effect.catchIf((e) => e instanceof SqlError && PgFastPath.isUniqueViolation(e), () => Effect.succeed(Option.none<number>())),
        // An error may hide a commit (a connection lost before the answer): forget rather than guess.
        Effect.tapError(() => Effect.sync(() => cache?.delete(id))),
        Effect.flatMap((version) => {
          if (Option.isSome(version)) return settle({ applied, version: version.value })
          cache?.delete(id)
          return lockedTransition(id, change)
        })
      )
    })

  const transition = (id: string, change: Change): Effect.Effect<Refund, IllegalTransition | DuplicateCallback | RefundNotFound | LedgerError> =>
    unstorable(id) ? Effect.fail(new RefundNotFound({ refundId: id })) : run("recording a status change", optimisticTransition(id, change)).pipe(
      // The refused event is committed before the refusal is reported.
      Effect.flatMap(Either.match({ onLeft: ({ error }) => Effect.fail(error), onRight: Effect.succeed }))
    )

  /**
   * A change that may take a refund's targets back (core's `reclaim`), in one transaction: the targets'
   * locks first, in the order a claim takes them (the refund's targets never change, so an unlocked read
   * names them), then the refund's row, then, when the change makes it hold its targets again, the
   * reservations of the refunds that hold them, read under those locks as a claim reads them. A refusal
   * rolls the transaction back: nothing is recorded.
   */
  const reclaim = (id: string, change: Change): Effect.Effect<Refund, GuardError | IllegalTransition | RefundNotFound | LedgerError> =>
    unstorable(id) ? Effect.fail(new RefundNotFound({ refundId: id })) : run(
      "recording a status change",
      Effect.flatMap(
        tx.write(Effect.gen(function*() {
          const seen = yield* first(yield* sql`SELECT ${columns} FROM refunds WHERE id = ${id}`)
          if (Option.isNone(seen)) return yield* new RefundNotFound({ refundId: id })
          yield* lockTargets(seen.value.provider, targetGuards(seen.value).map((g) => g.target))
          const current = yield* selectLocked(id)
          if (Option.isNone(current)) return yield* new RefundNotFound({ refundId: id })
          const before = current.value.refund
          const applied = applyChange(before, change)
          if (Either.isRight(applied) && !holdsTargets(before) && holdsTargets(applied.right)) {
            const held = new Map<string, ReadonlyArray<Reservation>>()
            for (const guard of targetGuards(before)) held.set(guard.target, yield* reservedFor(before.provider, guard.target))
            const refused = reclaimRefusal(before, applied.right, (target) => held.get(target) ?? [])
            if (refused !== undefined) return yield* refused
          }
          return yield* persistChange(current.value, change)
        })),
        settle
      )
    ).pipe(Effect.flatMap(Either.match({ onLeft: ({ error }) => Effect.fail(error), onRight: Effect.succeed })))

  const list = (query: ListQuery): Effect.Effect<Page, LedgerError | InvalidRequest> => {
    const byTime = byCreation(query)
    const before = query.cursor === undefined || byTime ? undefined : decodeCursor(query.cursor)
    const after = query.cursor === undefined || !byTime ? undefined : decodeCreatedCursor(query.cursor)
    const limit = Math.floor(query.limit)
    if (query.cursor !== undefined && before === undefined && after === undefined) return Effect.fail(invalidCursor)
    if (query.target !== undefined && query.provider === undefined) return Effect.fail(targetWithoutProvider)
    const badRange = createdRangeRefusal(query)
    if (badRange !== undefined) return Effect.fail(badRange)
    if (!(limit > 0) || unstorable(query.provider, query.target)) return Effect.succeed({ items: [] })
    return run(
      "listing refunds",
      snapshot(Effect.gen(function*() {
        if (byTime) return yield* hydrate(yield* listByCreationPage(sql, dialect, columnsText, query, after, limit))
        const providers = byStatusAlone(query)
          ? (yield* providersWithStatus(sql, dialect, query.status)).map((r) => String(r.provider))
          : undefined
        return yield* hydrate(yield* listPage(sql, dialect, columnsText, query, before, limit, providers))
      }))
    ).pipe(Effect.map((rows) => {
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      if (rows.length <= limit || last === undefined) return { items: page.map((r) => r.refund) }
      return {
        items: page.map((r) => r.refund),
        nextCursor: byTime ? encodeCreatedCursor({ seq: last.row.seq, createdAt: last.refund.createdAt }) : encodeCursor(last.row.seq)
      }
    }))
  }

  const needingSync = (query: { readonly providers?: ReadonlyArray<string> | undefined; readonly limit: number }) =>
    run(
      "listing refunds to sync",
      snapshot(Effect.flatMap(
        sql`SELECT ${columns} FROM refunds WHERE ${syncWhere(sql, query.providers)} ORDER BY updated_at, seq LIMIT ${Math.max(0, Math.floor(query.limit))}`,
        hydrate
      ))
    ).pipe(Effect.map((rows) => rows.map((r) => r.refund)))

  // A lease is timed by the database's clock on PostgreSQL (gateways on several machines) and by `at` on SQLite (one machine).
  const leaseOver = (at: string) => dialect === "pg" ? sql`(alive_until IS NULL OR alive_until <= now())` : sql`(alive_until IS NULL OR alive_until <= ${at})`

  const keepAlive = (options: { readonly ids: ReadonlyArray<string>; readonly at: string; readonly forMillis: number }) =>
    options.ids.length === 0 ? Effect.void : run(
      "leasing the refunds in flight",
      tx.write(Effect.asVoid(
        dialect === "pg"
          // A group commit's outcome writes lock several of these rows in one transaction, in their own order:
          // waiting for them could deadlock. A row locked now is being written, so its refund is moving on,
          // or recovery holds it and finds the lease renewed at the last beat still standing.
          ? sql`UPDATE refunds SET alive_until = now() + ${Math.ceil(options.forMillis)} * interval '1 millisecond'
              WHERE id IN (SELECT id FROM refunds WHERE ${sql.in("id", options.ids)} AND status = 'requested' FOR UPDATE SKIP LOCKED)`
          : sql`UPDATE refunds SET alive_until = ${new Date(Date.parse(options.at) + options.forMillis).toISOString()}
              WHERE ${sql.in("id", options.ids)} AND status = 'requested'`
      ))
    )

  const leased = (options: { readonly ids: ReadonlyArray<string>; readonly at: string }) =>
    options.ids.length === 0 ? Effect.succeed([]) : run(
      "reading the leases of refunds in flight",
      snapshot(Effect.map(
        sql<{ readonly id: unknown }>`SELECT id FROM refunds WHERE ${sql.in("id", options.ids)} AND status = 'requested' AND NOT ${leaseOver(options.at)}`,
        (rows) => rows.map((r) => String(r.id))
      ))
    )

  // PostgreSQL's gateways may run on several machines, and a SQLite client of the caller's own may be in any journal
  // mode: a claimant of another boot may be alive on another machine (claimants.ts).
  const endedOf = (rows: ReadonlyArray<unknown>) => Rows.orphanedIds(rows, "anywhere")

  const orphaned = (ids: ReadonlyArray<string>) =>
    ids.length === 0 ? Effect.succeed([]) : run(
      "reading who claimed refunds in flight",
      snapshot(Effect.map(
        sql`SELECT id, claimed_by FROM refunds WHERE ${sql.in("id", ids)} AND status = 'requested' AND claimed_by IS NOT NULL`,
        endedOf
      ))
    )

  const recover = (options: { readonly olderThan: string; readonly at: string }) =>
    Effect.gen(function*() {
      const { ended, ids } = yield* run(
        "finding refunds to recover",
        snapshot(Effect.all({
          late: sql<{ readonly id: string }>`SELECT id FROM refunds WHERE status = 'requested' AND updated_at < ${options.olderThan} AND ${leaseOver(options.at)} ORDER BY seq`,
          claimants: sql`SELECT id, claimed_by FROM refunds WHERE status = 'requested' AND claimed_by IS NOT NULL AND claimed_by <> ${Claimants.self() ?? ""} ORDER BY seq`
        }).pipe(Effect.map(({ claimants, late }) => {
          const gone = new Set(endedOf(claimants))
          return { ended: gone, ids: [...new Set([...late.map((r) => String(r.id)), ...gone])] }
        })))
      )
      const moved: Array<Refund> = []
      for (const id of ids) {
        // Each refund is re-read under its lock: a live process may have moved it on since.
        const outcome = yield* run(
          "recovering a refund",
          tx.write(Effect.gen(function*() {
            // A row that does not decode fails here with a LedgerError (storage failures are SqlErrors):
            // it is left as it is, and the others are still recovered.
            const read = yield* undecodedAsLeft(selectLocked(id))
            if (Either.isLeft(read)) return Either.left(read.left)
            const current = read.right
            if (Option.isNone(current) || current.value.refund.status !== "requested") return Either.right(Option.none<Persisted>())
            // A claimant that has ended answers nothing, whatever its refund's age or last lease.
            if (!ended.has(id)) {
              if (current.value.refund.updatedAt >= options.olderThan) return Either.right(Option.none<Persisted>())
              // Leased since it was found: its process is alive, and its call's answer will settle it.
              if ((yield* sql`SELECT id FROM refunds WHERE id = ${id} AND ${leaseOver(options.at)}`).length === 0) {
                return Either.right(Option.none<Persisted>())
              }
            }
            return Either.right(Option.some(yield* persistChange(current.value, recoveryOf(current.value.refund, options.at))))
          }))
        )
        if (Either.isLeft(outcome)) {
          yield* recoverySkipped(outcome.left)
          continue
        }
        const persisted = outcome.right
        if (Option.isSome(persisted)) {
          const applied = yield* settle(persisted.value)
          if (Either.isRight(applied)) moved.push(applied.right)
        }
      }
      return moved as ReadonlyArray<Refund>
    })

  const claimForSync = (lease: SyncLease) =>
    run(
      "leasing refunds to sync",
      tx.write(Effect.gen(function*() {
        // Least recently leased first (never leased before all): a sync that changes nothing leaves
        // updated_at alone, so by updated_at alone the oldest refunds that never move (a chargeback,
        // a refund the provider answers 404 for) came back as soon as their lease ran out, and once
        // there were more of them than a lease's worth of sweeps, no newer refund was synced again.
        // One statement per provider, each walking that provider's entries of the index.
        const providers = lease.providers ?? (yield* sql.unsafe<{ readonly provider: unknown }>(providersDueText(dialect))).map((r) => String(r.provider))
        const candidates = yield* Effect.forEach([...new Set(providers)], (provider) => {
          const statement = leaseCandidates(sql, dialect, lease, provider)
          return dialect === "pg" ? withoutSorts(sql, statement) : statement
        })
        const picked = firstInLeaseOrder(candidates.flat(), lease.limit)
        const ids = picked.map((r) => String(r.id))
        if (ids.length === 0) return []
        yield* sql`UPDATE refunds SET sync_lease_until = ${lease.until}, sync_lease_owner = ${lease.owner} WHERE ${sql.in("id", ids)}`
        // A statement after the lock: its snapshot (and the events it reads along) is newer than any change to these rows.
        const raws = yield* sql`SELECT ${columns} FROM refunds WHERE ${sql.in("id", ids)} ORDER BY updated_at, seq`
        // Each refund is decoded on its own: a damaged one keeps its lease (so the next call
        // passes it by) and is named, and the others are still handed out to be synced.
        return yield* Effect.forEach(raws, (raw) => undecodedAsLeft(hydrate([raw])))
      })).pipe(
        Effect.tap((rows) => Effect.forEach(rows, (row) => (Either.isLeft(row) ? syncSkipped(row.left) : Effect.void), { discard: true })),
        Effect.map((rows) => rows.flatMap((row) => (Either.isRight(row) ? row.right.map((r) => r.refund) : [])))
      )
    )

  const releaseSync = (options: { readonly owner: string; readonly ids: ReadonlyArray<string> }) =>
    options.ids.length === 0 ? Effect.void : run(
      "releasing sync leases",
      tx.write(Effect.asVoid(
        sql`UPDATE refunds SET sync_lease_until = NULL, sync_lease_owner = NULL
            WHERE ${sql.in("id", options.ids)} AND sync_lease_owner = ${options.owner}`
      ))
    )

  const countByStatus = (statuses: ReadonlyArray<RefundStatus>) =>
    statuses.length === 0 ? Effect.succeed([]) : run(
      "counting refunds by status",
      Effect.flatMap(queryCounts(sql, dialect, statuses), (rows) => Rows.decodeCountsEither(rows))
    )

  /**
   * A refund's turn across every process on this PostgreSQL database: a transaction-scoped
   * advisory lock on a connection reserved for the turn, which the turn's own ledger reads
   * and writes run on too (as in a caller's transaction, each write in its own savepoint).
   * On one connection, N updates in flight hold N connections; with the lock on a
   * connection of its own, each would need a second one, and a full pool would wait on
   * itself. A process that dies mid-turn loses its connection and so its lock, which a
   * lease would keep until it expired. The transaction is committed whatever the turn's
   * outcome: a refusal or an update in doubt is recorded before it is reported.
   */
  const serialise = <A, E, R>(id: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | LedgerError, R> => {
    const lock = (conn: Connection) =>
      conn.execute(`${PgDeadline.waitsForLock}SELECT pg_advisory_xact_lock(${turnLockClass}, hashtext(current_schema() || ' ' || $1))`, [id], undefined)
    const storage = <X, RS>(what: string, statement: Effect.Effect<X, SqlError, RS>) =>
      Effect.mapError(statement, (error) => storageFailure(what, error))
    // The same words as SQLite's turn (internal/turns.ts) for a holder that kept the turn past `turnWaitMillis`.
    const waitForTurn = <X, RS>(statement: Effect.Effect<X, SqlError, RS>) =>
      Effect.mapError(statement, (error) =>
        Transactions.isLockWaitOver(error)
          ? ledgerError(
            `waiting for the turn of refund ${id}: another caller has held it for longer than ${turns.waitMillis} ms; ` +
              "nothing was sent for this call: try again once that one has finished"
          )
          : storageFailure(`waiting for the turn of refund ${id}`, error))
    return Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
      Option.isSome(outer)
        // A caller's transaction holds the lock until it ends.
        ? Effect.zipRight(waitForTurn(lock(outer.value[0])), effect)
        : Effect.scoped(Effect.gen(function*() {
          const conn = yield* storage("reserving a connection for the refund's turn", sql.reserve)
          yield* storage(`waiting for the turn of refund ${id}`, conn.executeUnprepared(Transactions.beginWithLockWait(turns.waitMillis), [], undefined))
          let open = true
          // Interrupted: what the turn recorded stays recorded (an aborted transaction's COMMIT rolls back).
          yield* Effect.addFinalizer(() => (open ? Effect.ignore(conn.executeUnprepared("COMMIT", [], undefined)) : Effect.void))
          yield* waitForTurn(lock(conn))
          const exit = yield* Effect.exit(Effect.provideService(effect, SqlClient.TransactionConnection, [conn, 0] as const))
          open = false
          yield* storage("recording the refund's turn", conn.executeUnprepared("COMMIT", [], undefined))
          return yield* exit
        })))
  }

  /**
   * A refund's turn on SQLite: a lease row in `refund_turns`, each statement a short
   * transaction of its own (internal/turns.ts says why not a lock held for the turn).
   */
  const turnRow = (id: string) => Effect.flatMap(sql.unsafe(Turns.statements.holder, [id]), (rows) => Turns.decodeHolder(rows[0]))
  const leasedTurn = Turns.make({
    holder: (id) => run("reading a refund's turn", turnRow(id)),
    take: (id, owner, now, until) =>
      run(
        "taking a refund's turn",
        tx.write(Effect.gen(function*() {
          yield* sql.unsafe(Turns.statements.take, [id, owner, until, now])
          const held = yield* turnRow(id)
          return Option.isSome(held) && held.value.owner === owner ? Option.none<Turns.Holder>() : held
        }))
      ),
    renew: (id, owner, until) =>
      run(
        "renewing a refund's turn",
        tx.write(Effect.zipRight(
          sql.unsafe(Turns.statements.renew, [until, id, owner]),
          Effect.map(turnRow(id), (held) => Option.isSome(held) && held.value.owner === owner)
        ))
      ),
    release: (id, owner) => run("releasing a refund's turn", Effect.asVoid(sql.unsafe(Turns.statements.release, [id, owner])))
  }, turns)

  const ready = run("checking the ledger", tx.read(Effect.provideService(Migrations.check, SqlClient.SqlClient, sql)))

  return SqlLedger.of({
    dialect,
    ready,
    claim,
    get,
    findByKey,
    findByReference,
    holderOf,
    transition,
    reclaim,
    serialise: dialect === "pg" ? serialise : leasedTurn,
    list,
    needingSync,
    recover,
    keepAlive,
    leased,
    orphaned,
    claimForSync,
    releaseSync,
    countByStatus
  })
})

/**
 * The ledger on the `SqlClient` in context, migrated first unless `migrate: false`.
 * Use it to share a client the application already has.
 *
 * @since 0.1.0
 */
export const layerFromClient = (options: Options = {}): Layer.Layer<Ledger | SqlLedger, LedgerError, SqlClient.SqlClient> => onClient(options)

const onClient = (options: Options & Pick<PgOptions, "statementTimeoutMillis">): Layer.Layer<Ledger | SqlLedger, LedgerError, SqlClient.SqlClient> =>
  Layer.effectContext(Effect.gen(function*() {
    if (options.migrate !== false) yield* Migrations.run
    const service = yield* makeWith(options)
    return Context.make(SqlLedger, service).pipe(Context.add(Ledger, service))
  }))

/**
 * The SQLite ledger on one better-sqlite3 connection, which every read, write,
 * migration and readiness check of this process goes through (see the README's "How
 * the SQLite ledger commits").
 */
const sqliteLedger = (filename: string, options: SqliteOptions): Layer.Layer<Ledger | SqlLedger, LedgerError> =>
  Layer.scopedContext(
    Effect.map(SqliteLedger.open(filename, { ...options, turns: turnOptions(options) }), (service) => Context.make(SqlLedger, service).pipe(Context.add(Ledger, service)))
  )

const decodeOrKeep = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const pgClient = (
  url: Redacted.Redacted<string>,
  options: PgOptions,
  deadlines: PgDeadline.Deadlines | undefined
): Layer.Layer<PgPool.PgPool | SqlClient.SqlClient, LedgerError> => {
  const text = Redacted.value(url)
  const raw = URL.canParse(text) ? new URL(text).password : ""
  const secrets = raw === "" ? [] : [...new Set([raw, decodeOrKeep(raw)])]
  // Driver messages rarely quote a connection string, but a secret must never reach a log.
  const scrub = (message: string) => secrets.reduce((m, secret) => m.split(secret).join("***"), message)
  return Layer.unwrapEffect(Effect.map(loadPgPool, (PgPool) =>
    PgPool.layer({ url, applicationName: options.applicationName ?? "refundkit-ledger", maxConnections: options.maxConnections, deadlines })
  )).pipe(
    Layer.catchAllCause((cause) => {
      const error = Cause.squash(cause)
      const detail = error instanceof SqlError ? causeText(error) : error instanceof Error ? error.message : String(error)
      return Layer.fail(ledgerError(scrub(`cannot connect to ${LedgerConfig.maskUrl(text)}: ${detail}; ${connectHint(error)}`)))
    })
  )
}

// A server that answered with an error (`role "x" does not exist`, a wrong password, a database that
// does not exist) was reached: sending the operator to check the network would mislead.
// Node's own errors carry a `code` too (`EPIPE`), never a `severity`.
const connectHint = (error: unknown): string => {
  const cause: unknown = error instanceof SqlError ? error.cause : error
  if (!isDatabaseError(cause)) return "check that the database is reachable"
  const refused = `PostgreSQL answered and refused the connection (SQLSTATE ${cause.code})`
  // Class 28 is an authorization failure, 3D000 a database that does not exist.
  return /^(28|3D)/.test(cause.code) ? `${refused}: check the user, password and database the URL names` : refused
}

/**
 * The ledger in a SQLite file (WAL mode; the directory is created), or in memory for
 * `":memory:"`. The process uses one connection for it, and writes issued in the same
 * event-loop turn share one commit. A write is reported only once it is on disk, as
 * with `synchronous = FULL`, but the fsync runs on libuv's thread pool: the connection
 * runs at `synchronous = NORMAL` and the ledger fsyncs the WAL file after each group
 * commit (one fsync in flight at a time, covering every commit made before it started)
 * before resuming the writes, so under load the event loop does not wait for the disk.
 * A write committed alone is fsynced on the event loop: nothing waits behind it.
 *
 * @since 0.1.0
 */
export const layerSqlite = (filename: string, options: SqliteOptions = {}): Layer.Layer<Ledger | SqlLedger, LedgerError> =>
  sqliteLedger(filename, options)

/**
 * The ledger in PostgreSQL. Give the URL as `Redacted` when it carries a password.
 * A schema other than the default can be chosen in the URL:
 * `?options=-c%20search_path%3Dmy_schema`.
 *
 * @since 0.1.0
 */
export const layerPg = (url: string | Redacted.Redacted<string>, options: PgOptions = {}): Layer.Layer<Ledger | SqlLedger, LedgerError> => {
  const refusal = pgOptionsRefusal(options)
  if (refusal !== undefined) return Layer.fail(ledgerError(`layerPg: ${refusal}`))
  const secret = Redacted.isRedacted(url) ? url : Redacted.make(url)
  const answerMillis = options.statementTimeoutMillis ?? defaultStatementTimeoutMillis
  const deadlines: PgDeadline.Deadlines = { answerMillis, lockWaitMillis: turnOptions(options).waitMillis }
  const ledger = onClient({ ...options, migrate: false }).pipe(Layer.provide(pgClient(secret, options, deadlines)))
  if (options.migrate === false) return ledger
  // The migrations run first, on a connection of their own without the statement deadline: a
  // migration may rebuild an index over every refund, which takes as long as the table is large.
  const migrate = Effect.asVoid(Effect.provide(Migrations.run, pgClient(secret, { ...options, maxConnections: 1 }, undefined)))
  return Layer.unwrapEffect(Effect.as(migrate, ledger))
}

// The bound REFUNDKIT_LEDGER_STATEMENT_TIMEOUT takes (see there). A pool of no connections made every
// operation wait for ever, and a bound of zero failed every statement.
const maxStatementMillis = Duration.toMillis(LedgerConfig.maxStatementTimeout)
const maxTurnWaitMillis = 60 * 60 * 1000

const pgOptionsRefusal = (options: PgOptions): string | undefined => {
  const { maxConnections, statementTimeoutMillis, writeTimeoutMillis } = options
  if (maxConnections !== undefined && !(Number.isInteger(maxConnections) && maxConnections >= 1)) {
    return `maxConnections must be a whole number of at least 1, got ${maxConnections}`
  }
  for (const [name, millis] of [["statementTimeoutMillis", statementTimeoutMillis], ["writeTimeoutMillis", writeTimeoutMillis]] as const) {
    if (millis !== undefined && !(millis > 0 && millis <= maxStatementMillis)) {
      return `${name} must be above 0 and at most ${maxStatementMillis} (24 days), got ${millis}`
    }
  }
  // PostgreSQL reads lock_timeout = 0 as "wait for ever"; an hour keeps a lock wait plus the statement
  // bound within Node's longest timer.
  const { turnWaitMillis } = options
  if (turnWaitMillis !== undefined && !(Number.isInteger(turnWaitMillis) && turnWaitMillis >= 1 && turnWaitMillis <= maxTurnWaitMillis)) {
    return `turnWaitMillis must be a whole number from 1 to ${maxTurnWaitMillis} (an hour), got ${turnWaitMillis}`
  }
  return undefined
}

/**
 * The ledger at a resolved location.
 *
 * @since 0.1.0
 */
export const layerLocation = (
  location: LedgerConfig.Location,
  options: SqliteOptions & PgOptions = {}
): Layer.Layer<Ledger | SqlLedger, LedgerError> =>
  location._tag === "Sqlite" ? layerSqlite(location.filename, options) : layerPg(location.url, options)

/**
 * The ledger at `url`: a SQLite file path, `:memory:` or a `postgres://` URL; the
 * driver is chosen from it.
 *
 * @since 0.1.0
 */
export const layer = (
  options: { readonly url: string | Redacted.Redacted<string> } & SqliteOptions & PgOptions
): Layer.Layer<Ledger | SqlLedger, LedgerError | ConfigurationError> =>
  Either.match(LedgerConfig.parse(options.url), {
    onLeft: (error) => Layer.fail(error),
    onRight: (location) => layerLocation(location, options)
  })

/**
 * The ledger at `REFUNDKIT_LEDGER` (default `./.refundkit/ledger.db`), or at `url` when
 * given (an app's `--ledger` flag). On PostgreSQL, `REFUNDKIT_LEDGER_STATEMENT_TIMEOUT`
 * (a duration), when set, is `statementTimeoutMillis`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: { readonly url?: string | Redacted.Redacted<string> | undefined } & SqliteOptions & PgOptions = {}
): Layer.Layer<Ledger | SqlLedger, LedgerError | ConfigurationError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const location = options.url === undefined ? yield* LedgerConfig.load : yield* LedgerConfig.parse(options.url)
      const timeout = yield* LedgerConfig.loadStatementTimeout
      const configured = Option.match(timeout, {
        onNone: () => options,
        onSome: (duration) => ({ ...options, statementTimeoutMillis: Duration.toMillis(duration) })
      })
      return layerLocation(location, configured).pipe(
        Layer.tap(() => Effect.logDebug(`refundkit ledger: ${LedgerConfig.describe(location)}`))
      )
    })
  )

/**
 * The readiness check of the ledger in context: reachable and fully migrated.
 *
 * @since 0.1.0
 */
export const ready: Effect.Effect<void, LedgerError, SqlLedger> = Effect.flatMap(SqlLedger, (ledger) => ledger.ready)
