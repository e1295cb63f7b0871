/**
 * What the ledger's queries share on both drivers: the keyset cursor of `list`, the
 * statuses a sync looks at, and the detail of a recovery event.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { ListQuery, SyncLease } from "@refundkit/core/Ledger"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import type { Dialect } from "./rows.js"

const needsSyncStatuses = ["pending", "unknown", "requires_action"] as const

/** Refunds whose provider calls their status final are never due for a sync (`Refund.providerFinal`). @internal */
export const notProviderFinal = "provider_final = 0"

/**
 * Which refunds are due for a sync, spelled with literals on both databases: it is also the
 * predicate of the partial index `refunds_sync_due` (migration 6), and a database uses a
 * partial index only for a query whose conditions imply the index's, which PostgreSQL cannot
 * tell of bound parameters in a generic plan.
 *
 * @internal
 */
export const syncDue = `status IN (${needsSyncStatuses.map((s) => `'${s}'`).join(", ")}) AND ${notProviderFinal}`

/**
 * The order in which refunds are leased for a sync (never leased first, then the least
 * recently leased), which `refunds_sync_due` holds: without the index every lease sorted
 * every refund due for a sync, about 4 ms per lease with 20,000 pending refunds on SQLite,
 * taken once per synced refund.
 *
 * @internal
 */
export const leaseOrder = "ORDER BY sync_lease_until NULLS FIRST, updated_at, seq"

/**
 * Runs `effect` (one statement: `leaseCandidates`) in a PostgreSQL transaction with sorts
 * ruled out of its plan, so the lease is read from `refunds_sync_due` in order whatever the
 * statistics say. While a table grows faster than autovacuum analyses it (a gateway's first
 * minutes, every bench run) the planner took the index for a few rows, fetched every due
 * refund through a bitmap and sorted them: 87 ms a lease at 20,000 pending refunds, where
 * the ordered scan takes 0.05 ms, and PostgreSQL spent half its CPU on it with two
 * gateways. Sorts are allowed again right after it: the lease's next statement sorts the
 * leased rows, and the penalty a ruled-out sort adds to the plan's cost set off JIT
 * compilation of that read on every lease.
 *
 * @internal
 */
export const withoutSorts = <A, E, R>(sql: SqlClient.SqlClient, effect: Effect.Effect<A, E, R>) =>
  Effect.zipLeft(
    Effect.zipRight(sql.unsafe("SET LOCAL enable_sort = off"), effect),
    sql.unsafe("SET LOCAL enable_sort TO DEFAULT")
  )

/** Refunds due for a sync, of some providers only where given, on `@effect/sql`. @internal */
export const syncWhere = (sql: SqlClient.SqlClient, providers: ReadonlyArray<string> | undefined) =>
  sql.and([sql.literal(syncDue), ...(providers === undefined ? [] : [sql.in("provider", providers)])])

/**
 * The refunds a sync lease takes, on `@effect/sql` (the raw SQLite connection has its own,
 * `leaseCandidatesText`). SQLite is named the index: without statistics it prefers the
 * status index and sorts. PostgreSQL locks what it picks and skips what another instance
 * is picking.
 *
 * @internal
 */
export const leaseCandidates = (sql: SqlClient.SqlClient, dialect: Dialect, lease: SyncLease) =>
  sql<{ readonly id: string }>`SELECT id FROM refunds${sql.literal(dialect === "pg" ? "" : " INDEXED BY refunds_sync_due")}
    WHERE ${syncWhere(sql, lease.providers)} AND (sync_lease_until IS NULL OR sync_lease_until <= ${lease.at})
    ${sql.literal(leaseOrder)} LIMIT ${Math.max(0, Math.floor(lease.limit))}${sql.literal(dialect === "pg" ? " FOR UPDATE SKIP LOCKED" : "")}`

/**
 * A page of `list` on `@effect/sql`, newest first, reading `columns`. One row more than asked
 * says whether there is a next page. By status it can walk `refunds_status_seq` (migration 7)
 * from the cursor and stop at the page's end; PostgreSQL takes it where its statistics say the
 * status is rare, and otherwise walks seq itself.
 *
 * @internal
 */
export const listPage = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  columns: string,
  query: ListQuery,
  before: bigint | undefined,
  limit: number
) => {
  const cursor = before === undefined ? undefined : dialect === "sqlite" ? before : before.toString()
  // By target the page walks the target's rows of `refund_targets` (keyed provider, target,
  // refund_seq) from the cursor, and looks each refund up by its seq.
  const byTarget = query.target === undefined ? undefined : sql`, (SELECT refund_seq FROM refund_targets
    WHERE provider = ${query.provider ?? ""} AND target = ${query.target}${cursor === undefined ? sql.literal("") : sql` AND refund_seq < ${cursor}`}) t`
  const where = sql.and([
    ...(byTarget !== undefined ? [sql`refunds.seq = t.refund_seq`] : cursor === undefined ? [] : [sql`seq < ${cursor}`]),
    ...(query.provider === undefined ? [] : [sql`provider = ${query.provider}`]),
    ...(query.status === undefined ? [] : [sql`status = ${query.status}`]),
    ...(query.createdFrom === undefined ? [] : [sql`created_at >= ${query.createdFrom}`]),
    ...(query.createdTo === undefined ? [] : [sql`created_at < ${query.createdTo}`])
  ])
  return sql`SELECT ${sql.literal(columns)} FROM refunds${byTarget ?? sql.literal("")} WHERE ${where} ORDER BY ${sql.literal(byTarget === undefined ? "seq" : "t.refund_seq")} DESC LIMIT ${limit + 1}`
}

/**
 * A refund recovery cannot read (a row edited by hand, damaged) is left in `requested` and
 * named in a warning, and recovery goes on with the others. Failing the whole recovery on
 * it kept the gateway from starting, and its sync loop (which recovers before every sweep)
 * from syncing anything, until someone repaired that one row.
 *
 * @internal
 */
export const recoverySkipped = (error: LedgerError): Effect.Effect<void> =>
  Effect.logWarning(`refundkit ledger: recovery left a refund in requested: ${error.detail}; once the row is repaired it is recovered`)

/** @internal */
export const encodeCursor = (seq: bigint): string => Buffer.from(`s:${seq}`).toString("base64url")

const maxSeq = 9223372036854775807n

/** @internal */
export const decodeCursor = (cursor: string): bigint | undefined => {
  const text = Buffer.from(cursor, "base64url").toString()
  if (!/^s:\d{1,19}$/.test(text)) return undefined
  const seq = BigInt(text.slice(2))
  // A seq is a signed 64-bit integer on both databases: anything larger is not a cursor of this ledger.
  return seq <= maxSeq ? seq : undefined
}

/**
 * A refund due for a sync whose row does not decode is leased like the others but not
 * handed out, and named in a warning: failing the whole lease on it stopped a gateway's
 * sync loop, which leases the oldest due refund first, from syncing any refund at all.
 *
 * @internal
 */
export const syncSkipped = (error: LedgerError): Effect.Effect<void> =>
  Effect.logWarning(`refundkit ledger: a refund due for a sync was skipped: ${error.detail}; once the row is repaired it is synced`)

/**
 * `countByStatus` on `@effect/sql`: the statuses' refunds through `refunds_status_seq`, grouped.
 *
 * @internal
 */
export const countByStatus = (sql: SqlClient.SqlClient, dialect: Dialect, statuses: ReadonlyArray<string>) =>
  sql`SELECT provider, status, ${sql.literal(dialect === "pg" ? "count(*)::int" : "count(*)")} AS n FROM refunds
    WHERE ${sql.in("status", statuses)} GROUP BY provider, status`
