/**
 * The durable ledger: core's `Ledger` on `@effect/sql`, backed by a SQLite file (the
 * embedded default) or PostgreSQL (several gateway or CLI processes sharing one ledger).
 *
 * Every rule that decides what a refund may become is core's (`applyChange`,
 * `guardedTargets`, `reservedAgainst`, `overRefund`); this module only makes those
 * decisions atomic on a database:
 *
 * - a claim is `INSERT … ON CONFLICT (provider, idempotency_key) DO NOTHING RETURNING`
 *   against a unique constraint: exactly one concurrent claimant gets a row back;
 * - the over-refund sum and the claim's reservations are read and written in the same
 *   transaction, under SQLite's write lock (`BEGIN IMMEDIATE`) or, on PostgreSQL, a
 *   `FOR UPDATE` lock on one row per (provider, target);
 * - a status change reads the refund under the same locks (`FOR UPDATE` on PostgreSQL),
 *   applies the transition table and writes the row and its event together.
 *
 * `layerSqlite` does the same on one raw better-sqlite3 connection, synchronously and
 * with group commit (`internal/sqliteLedger.ts`); `make` and `layerFromClient` run on
 * any `SqlClient`.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type { Change, Claim, ListQuery, Page } from "@refundkit/core/Ledger"
import { applyChange, guardedTargets, invalidCursor, Ledger, ledgerError, overRefund, reservedAgainst } from "@refundkit/core/Ledger"
import type { Refund, RefundEvent } from "@refundkit/core/Refund"
import type { ConfigurationError, IllegalTransition, OverRefund } from "@refundkit/core/RefundError"
import { type InvalidRequest, LedgerError, RefundNotFound } from "@refundkit/core/RefundError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { decodeCursor, encodeCursor, needsSyncStatuses, recoveryDetail } from "./internal/queries.js"
import * as Rows from "./internal/rows.js"
import * as SqliteLedger from "./internal/sqliteLedger.js"
import * as Transactions from "./internal/transactions.js"
import * as LedgerConfig from "./LedgerConfig.js"
import * as Migrations from "./Migrations.js"

/**
 * A lease on refunds for one sync worker: refunds another worker holds an unexpired
 * lease on are skipped.
 *
 * @since 0.1.0
 */
export interface SyncLease {
  /** Who takes the lease: an instance id, so a worker can release only its own leases. */
  readonly owner: string
  /** Now, as an ISO 8601 timestamp; leases that end at or before it are free. */
  readonly at: string
  /** When the lease ends, as an ISO 8601 timestamp. */
  readonly until: string
  readonly providers?: ReadonlyArray<string> | undefined
  readonly limit: number
}

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
     * Like `needingSync`, but each returned refund is leased to `owner` until `until`,
     * so several instances sharing a PostgreSQL ledger never sync the same refund at
     * once. Rows another transaction is leasing right now are skipped, not waited for.
     */
    readonly claimForSync: (lease: SyncLease) => Effect.Effect<ReadonlyArray<Refund>, LedgerError>
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
}

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
}

const causeText = (error: SqlError): string => {
  const cause: unknown = error.cause
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message
}

const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * Builds the ledger on the `SqlClient` in context. The schema must already be
 * migrated (see `Migrations.run`); the layers below do both.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<SqlLedger.Service, LedgerError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const dialect = yield* sql.onDialectOrElse({
    sqlite: () => Effect.succeed<Rows.Dialect>("sqlite"),
    pg: () => Effect.succeed<Rows.Dialect>("pg"),
    orElse: () => Effect.fail(new LedgerError({ detail: "the ledger supports SQLite and PostgreSQL only" }))
  })
  const tx = Transactions.make(sql, dialect)
  const columns = sql.literal(Rows.refundColumns)
  const forUpdate = sql.literal(dialect === "pg" ? " FOR UPDATE" : "")

  /**
   * Runs one ledger operation: whole transactions are retried when another writer
   * made them fail (busy, deadlock), and storage failures become `LedgerError`.
   */
  const run = <A, E>(what: string, effect: Effect.Effect<A, E | SqlError>): Effect.Effect<A, Exclude<E, SqlError> | LedgerError> =>
    effect.pipe(
      Effect.retry({ schedule: Transactions.retryTransient, while: (e) => e instanceof SqlError && Transactions.isTransient(e) }),
      Effect.catchIf((e): e is SqlError => e instanceof SqlError, (e) => Effect.fail(ledgerError(`${what}: ${causeText(e)}`))),
      // @effect/sql turns a failed COMMIT or ROLLBACK into a defect; it is still a storage failure.
      Effect.catchSomeDefect((defect) =>
        defect instanceof SqlError ? Option.some(Effect.fail(ledgerError(`${what}: ${causeText(defect)}`))) : Option.none()
      )
    ) as Effect.Effect<A, Exclude<E, SqlError> | LedgerError>

  const eventsOf = (ids: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const byRefund = new Map<string, Array<RefundEvent>>()
      for (const chunk of chunks(ids, 500)) {
        const rows = yield* sql`SELECT ${sql.literal(Rows.eventColumns)} FROM refund_events WHERE ${sql.in("refund_id", chunk)} ORDER BY refund_id, sequence`
        for (const raw of rows) {
          const row = yield* Rows.decodeEventRow(raw)
          const list = byRefund.get(row.refund_id) ?? []
          list.push(Rows.toEvent(row))
          byRefund.set(row.refund_id, list)
        }
      }
      return byRefund
    })

  /** Decodes refund rows and attaches their events, keeping the rows' order. */
  const hydrate = (raws: ReadonlyArray<unknown>) =>
    Effect.gen(function*() {
      const rows = yield* Effect.forEach(raws, Rows.decodeRefundRow)
      const events = yield* eventsOf(rows.map((r) => r.id))
      return rows.map((row) => ({ row, refund: Rows.toRefund(row, events.get(row.id) ?? []) }))
    })

  const first = (raws: ReadonlyArray<unknown>) =>
    Effect.map(hydrate(raws.slice(0, 1)), (list) => Option.map(Option.fromNullable(list[0]), (x) => x.refund))

  const selectById = (id: string, lock: boolean) =>
    Effect.flatMap(sql`SELECT ${columns} FROM refunds WHERE id = ${id}${lock ? forUpdate : sql.literal("")}`, first)

  const insertEvents = (refundId: string, events: ReadonlyArray<RefundEvent>) =>
    events.length === 0
      ? Effect.void
      : Effect.asVoid(sql`INSERT INTO refund_events ${sql.insert(events.map((e) => Rows.eventRow(dialect, refundId, e)))}`)

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
      sql`SELECT t.amount_minor FROM refund_targets t JOIN refunds r ON r.id = t.refund_id
          WHERE t.provider = ${provider} AND t.target = ${target} AND r.status <> 'failed'`,
      Rows.decodeReserved
    )

  const reserve = (refund: Refund) => {
    if (refund.currency === undefined) return Effect.void
    const rows = [...new Set(refund.targets.map((t) => t.target))].flatMap((target) => {
      // Whether the refund is failed is read from its row at sum time, so record the amount as if it were not.
      const amount = reservedAgainst({ ...refund, status: "requested" }, target)
      return amount === 0n ? [] : [{ refund_id: refund.id, provider: refund.provider, target, amount_minor: amount.toString(), currency: refund.currency! }]
    })
    return rows.length === 0 ? Effect.void : Effect.asVoid(sql`INSERT INTO refund_targets ${sql.insert(rows)}`)
  }

  const claim = (refund: Refund): Effect.Effect<Claim, OverRefund | LedgerError> =>
    run(
      "claiming an idempotency key",
      tx.write(Effect.gen(function*() {
        const inserted = yield* sql`INSERT INTO refunds ${sql.insert(Rows.insertRow(refund))}
          ON CONFLICT (provider, idempotency_key) DO NOTHING RETURNING id`
        if (inserted.length === 0) {
          const existing = yield* Effect.flatMap(
            sql`SELECT ${columns} FROM refunds WHERE provider = ${refund.provider} AND idempotency_key = ${refund.idempotencyKey}`,
            first
          )
          if (Option.isNone(existing)) {
            return yield* new LedgerError({ detail: `the idempotency key of ${refund.id} conflicted but no refund holds it` })
          }
          return { _tag: "Existing", refund: existing.value } satisfies Claim
        }
        const guards = guardedTargets(refund)
        yield* lockTargets(refund.provider, guards.map((g) => g.target))
        for (const guard of guards) {
          const reserved = yield* reservedFor(refund.provider, guard.target)
          if (reserved + guard.amount > guard.original) return yield* overRefund(guard, reserved)
        }
        yield* reserve(refund)
        yield* insertEvents(refund.id, refund.events)
        return { _tag: "Claimed", refund } satisfies Claim
      }))
    )

  const get = (id: string): Effect.Effect<Refund, RefundNotFound | LedgerError> =>
    run("reading a refund", tx.read(selectById(id, false))).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.fail(new RefundNotFound({ refundId: id })), onSome: Effect.succeed }))
    )

  const findByKey = (provider: string, key: string) =>
    run(
      "reading a refund by idempotency key",
      tx.read(Effect.flatMap(sql`SELECT ${columns} FROM refunds WHERE provider = ${provider} AND idempotency_key = ${key}`, first))
    )

  const findByReference = (provider: string, reference: string) =>
    run(
      "reading a refund by provider reference",
      tx.read(Effect.flatMap(
        sql`SELECT ${columns} FROM refunds WHERE provider = ${provider} AND provider_reference = ${reference} ORDER BY seq LIMIT 1`,
        first
      ))
    )

  /** Writes an accepted change, or records the refusal; returns which, after the transaction commits. */
  const persistChange = (current: Refund, change: Change) => {
    const result = applyChange(current, change)
    return Either.match(result, {
      onLeft: ({ refused }) => Effect.as(insertEvents(current.id, refused.events.slice(current.events.length)), result),
      onRight: (next) =>
        sql`UPDATE refunds SET ${sql.update(Rows.updateRow(next))}, version = version + 1 WHERE id = ${current.id}`.pipe(
          Effect.zipRight(insertEvents(current.id, next.events.slice(current.events.length))),
          Effect.as(result)
        )
    })
  }

  const transition = (id: string, change: Change): Effect.Effect<Refund, IllegalTransition | RefundNotFound | LedgerError> =>
    run(
      "recording a status change",
      tx.write(Effect.gen(function*() {
        const current = yield* selectById(id, true)
        if (Option.isNone(current)) return yield* new RefundNotFound({ refundId: id })
        return yield* persistChange(current.value, change)
      }))
    ).pipe(
      // The refused event is committed before the refusal is reported.
      Effect.flatMap(Either.match({ onLeft: ({ error }) => Effect.fail(error), onRight: Effect.succeed }))
    )

  const list = (query: ListQuery): Effect.Effect<Page, LedgerError | InvalidRequest> => {
    const before = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
    const limit = Math.floor(query.limit)
    if (query.cursor !== undefined && before === undefined) return Effect.fail(invalidCursor)
    if (!(limit > 0)) return Effect.succeed({ items: [] })
    const where = sql.and([
      ...(before === undefined ? [] : [sql`seq < ${dialect === "sqlite" ? before : before.toString()}`]),
      ...(query.provider === undefined ? [] : [sql`provider = ${query.provider}`]),
      ...(query.status === undefined ? [] : [sql`status = ${query.status}`]),
      ...(query.createdFrom === undefined ? [] : [sql`created_at >= ${query.createdFrom}`]),
      ...(query.createdTo === undefined ? [] : [sql`created_at < ${query.createdTo}`])
    ])
    return run(
      "listing refunds",
      tx.read(Effect.flatMap(
        // One row more than asked says whether there is a next page.
        sql`SELECT ${columns} FROM refunds WHERE ${where} ORDER BY seq DESC LIMIT ${limit + 1}`,
        hydrate
      ))
    ).pipe(Effect.map((rows) => {
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return rows.length > limit && last !== undefined
        ? { items: page.map((r) => r.refund), nextCursor: encodeCursor(last.row.seq) }
        : { items: page.map((r) => r.refund) }
    }))
  }

  const syncWhere = (providers: ReadonlyArray<string> | undefined) =>
    sql.and([
      sql.in("status", needsSyncStatuses),
      ...(providers === undefined ? [] : [sql.in("provider", providers)])
    ])

  const needingSync = (query: { readonly providers?: ReadonlyArray<string> | undefined; readonly limit: number }) =>
    run(
      "listing refunds to sync",
      tx.read(Effect.flatMap(
        sql`SELECT ${columns} FROM refunds WHERE ${syncWhere(query.providers)} ORDER BY updated_at, seq LIMIT ${Math.max(0, Math.floor(query.limit))}`,
        hydrate
      ))
    ).pipe(Effect.map((rows) => rows.map((r) => r.refund)))

  const recover = (options: { readonly olderThan: string; readonly at: string }) =>
    Effect.gen(function*() {
      const ids = yield* run(
        "finding refunds to recover",
        tx.read(sql<{ readonly id: string }>`SELECT id FROM refunds WHERE status = 'requested' AND updated_at < ${options.olderThan} ORDER BY seq`)
      )
      const moved: Array<Refund> = []
      for (const { id } of ids) {
        // Each refund is re-read under its lock: a live process may have moved it on since.
        const next = yield* run(
          "recovering a refund",
          tx.write(Effect.gen(function*() {
            const current = yield* selectById(String(id), true)
            if (Option.isNone(current) || current.value.status !== "requested" || current.value.updatedAt >= options.olderThan) {
              return Option.none<Refund>()
            }
            const result = yield* persistChange(current.value, { to: "unknown", source: "recovery", at: options.at, detail: recoveryDetail })
            return Either.getRight(result)
          }))
        )
        if (Option.isSome(next)) moved.push(next.value)
      }
      return moved as ReadonlyArray<Refund>
    })

  const claimForSync = (lease: SyncLease) =>
    run(
      "leasing refunds to sync",
      tx.write(Effect.gen(function*() {
        const picked = yield* sql<{ readonly id: string }>`SELECT id FROM refunds
          WHERE ${syncWhere(lease.providers)} AND (sync_lease_until IS NULL OR sync_lease_until <= ${lease.at})
          ORDER BY updated_at, seq LIMIT ${Math.max(0, Math.floor(lease.limit))}${
          sql.literal(dialect === "pg" ? " FOR UPDATE SKIP LOCKED" : "")
        }`
        const ids = picked.map((r) => String(r.id))
        if (ids.length === 0) return []
        yield* sql`UPDATE refunds SET sync_lease_until = ${lease.until}, sync_lease_owner = ${lease.owner} WHERE ${sql.in("id", ids)}`
        const rows = yield* hydrate(yield* sql`SELECT ${columns} FROM refunds WHERE ${sql.in("id", ids)} ORDER BY updated_at, seq`)
        return rows.map((r) => r.refund)
      }))
    )

  const releaseSync = (options: { readonly owner: string; readonly ids: ReadonlyArray<string> }) =>
    options.ids.length === 0 ? Effect.void : run(
      "releasing sync leases",
      tx.write(Effect.asVoid(
        sql`UPDATE refunds SET sync_lease_until = NULL, sync_lease_owner = NULL
            WHERE ${sql.in("id", options.ids)} AND sync_lease_owner = ${options.owner}`
      ))
    )

  const ready = run("checking the ledger", tx.read(Effect.provideService(Migrations.check, SqlClient.SqlClient, sql)))

  return SqlLedger.of({
    dialect,
    ready,
    claim,
    get,
    findByKey,
    findByReference,
    transition,
    list,
    needingSync,
    recover,
    claimForSync,
    releaseSync
  })
})

/**
 * The ledger on the `SqlClient` in context, migrated first unless `migrate: false`.
 * Use it to share a client the application already has.
 *
 * @since 0.1.0
 */
export const layerFromClient = (options: Options = {}): Layer.Layer<Ledger | SqlLedger, LedgerError, SqlClient.SqlClient> =>
  Layer.effectContext(Effect.gen(function*() {
    if (options.migrate !== false) yield* Migrations.run
    const service = yield* make
    return Context.make(SqlLedger, service).pipe(Context.add(Ledger, service))
  }))

/**
 * The SQLite ledger on one better-sqlite3 connection, which every read, write,
 * migration and readiness check of this process goes through (see the README's "How
 * the SQLite ledger commits").
 */
const sqliteLedger = (filename: string, options: SqliteOptions): Layer.Layer<Ledger | SqlLedger, LedgerError> =>
  Layer.scopedContext(
    Effect.map(SqliteLedger.open(filename, options), (service) => Context.make(SqlLedger, service).pipe(Context.add(Ledger, service)))
  )

const decodeOrKeep = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const pgClient = (url: Redacted.Redacted<string>, options: PgOptions): Layer.Layer<SqlClient.SqlClient, LedgerError> => {
  const text = Redacted.value(url)
  const raw = URL.canParse(text) ? new URL(text).password : ""
  const secrets = raw === "" ? [] : [...new Set([raw, decodeOrKeep(raw)])]
  // Driver messages rarely quote a connection string, but a secret must never reach a log.
  const scrub = (message: string) => secrets.reduce((m, secret) => m.split(secret).join("***"), message)
  return Layer.scoped(
    SqlClient.SqlClient,
    PgClient.make({
      url,
      applicationName: options.applicationName ?? "refundkit-ledger",
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections })
    }).pipe(
      Effect.map((client): SqlClient.SqlClient => client),
      Effect.provide(Reactivity.layer),
      Effect.mapError((error) => ledgerError(scrub(`cannot connect to ${LedgerConfig.maskUrl(text)}: ${causeText(error)}`))),
      Effect.catchAllDefect((defect) =>
        Effect.fail(ledgerError(scrub(`cannot connect to ${LedgerConfig.maskUrl(text)}: ${defect instanceof Error ? defect.message : String(defect)}`)))
      )
    )
  )
}

/**
 * The ledger in a SQLite file (WAL mode; the directory is created), or in memory for
 * `":memory:"`. The process uses one connection for it, and writes issued in the same
 * event-loop turn share one commit. A write is reported only once it is on disk, as
 * with `synchronous = FULL`, but the fsync runs on libuv's thread pool: the connection
 * runs at `synchronous = NORMAL` and the ledger fsyncs the WAL file after each group
 * commit (one fsync in flight at a time, covering every commit made before it started)
 * before resuming the writes, so the event loop never waits for the disk.
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
export const layerPg = (url: string | Redacted.Redacted<string>, options: PgOptions = {}): Layer.Layer<Ledger | SqlLedger, LedgerError> =>
  layerFromClient(options).pipe(Layer.provide(pgClient(Redacted.isRedacted(url) ? url : Redacted.make(url), options)))

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
 * The ledger at `REFUNDKIT_LEDGER` (default `./.refundkit/ledger.db`).
 *
 * @since 0.1.0
 */
export const layerConfig = (options: SqliteOptions & PgOptions = {}): Layer.Layer<Ledger | SqlLedger, LedgerError | ConfigurationError> =>
  Layer.unwrapEffect(
    Effect.map(LedgerConfig.load, (location) =>
      layerLocation(location, options).pipe(
        Layer.tap(() => Effect.logDebug(`refundkit ledger: ${LedgerConfig.describe(location)}`))
      ))
  )

/**
 * The readiness check of the ledger in context: reachable and fully migrated.
 *
 * @since 0.1.0
 */
export const ready: Effect.Effect<void, LedgerError, SqlLedger> = Effect.flatMap(SqlLedger, (ledger) => ledger.ready)
