/**
 * What the ledger's queries share on both drivers: the keyset cursor of `list`, the
 * statuses a sync looks at, and the detail of a recovery event.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Row } from "@effect/sql/SqlConnection"
import type * as Statement from "@effect/sql/Statement"
import type { ListQuery, SyncLease } from "@refundkit/core/Ledger"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import type { Dialect } from "./rows.js"

const needsSyncStatuses = ["pending", "unknown", "requires_action"] as const

/** Refunds whose provider calls their status final are never due for a sync (`Refund.providerFinal`). @internal */
export const notProviderFinal = "provider_final = 0"

/**
 * Which refunds are due for a sync, spelled with literals on both databases: it is also the
 * predicate of the partial index `refunds_sync_due_by_provider` (migration 9; `refunds_sync_due`,
 * migration 6, before it), and a database uses a
 * partial index only for a query whose conditions imply the index's, which PostgreSQL cannot
 * tell of bound parameters in a generic plan.
 *
 * @internal
 */
export const syncDue = `status IN (${needsSyncStatuses.map((s) => `'${s}'`).join(", ")}) AND ${notProviderFinal}`

/**
 * The order in which refunds are leased for a sync (never leased first, then the least
 * recently leased), which `refunds_sync_due_by_provider` holds per provider: without it every lease sorted
 * every refund due for a sync, about 4 ms per lease with 20,000 pending refunds on SQLite,
 * taken once per synced refund.
 *
 * @internal
 */
export const leaseOrder = "ORDER BY sync_lease_until NULLS FIRST, updated_at, seq"

/**
 * Runs `effect` (one statement: `leaseCandidates`) in a PostgreSQL transaction with sorts
 * ruled out of its plan, so the lease is read from `refunds_sync_due_by_provider` in order whatever the
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
 * The refunds of one provider a sync lease takes, on `@effect/sql` (the raw SQLite connection
 * has its own, `leaseCandidatesText`): `refunds_sync_due_by_provider` (migration 9) from that
 * provider's first entry, in lease order. SQLite is named the index: without statistics it
 * prefers the status index and sorts. PostgreSQL locks what it picks and skips what another
 * instance is picking. A lease of several providers takes one of these per provider and keeps
 * the first in lease order (`firstInLeaseOrder`), and one of any provider first finds which
 * providers have refunds due (`providersDue`): a walk of one index in lease order for
 * `provider IN (...)` passed over every refund due of the others, once per synced refund.
 *
 * @internal
 */
export const leaseCandidates = (sql: SqlClient.SqlClient, dialect: Dialect, lease: Pick<SyncLease, "at" | "limit">, provider: string) =>
  sql<LeaseCandidate>`SELECT id, sync_lease_until, updated_at, seq FROM refunds${sql.literal(dialect === "pg" ? "" : " INDEXED BY refunds_sync_due_by_provider")}
    WHERE ${sql.literal(syncDue)} AND provider = ${provider} AND (sync_lease_until IS NULL OR sync_lease_until <= ${lease.at})
    ${sql.literal(leaseOrder)} LIMIT ${Math.max(0, Math.floor(lease.limit))}${sql.literal(dialect === "pg" ? " FOR UPDATE SKIP LOCKED" : "")}`

/**
 * The providers with refunds due for a sync, one index probe each (a loose index scan of
 * `refunds_sync_due_by_provider`), for a lease that names none. SQLite is named the index.
 *
 * @internal
 */
export const providersDueText = (dialect: Dialect): string =>
  distinctProviders(syncDue, dialect === "pg" ? "" : " INDEXED BY refunds_sync_due_by_provider")

/**
 * The providers of the refunds `where` selects, found by a loose index scan: each probe reads
 * the smallest provider past the last one from an index that has provider right after
 * `where`'s equalities, so the cost is one probe per provider, not one step per refund.
 */
const distinctProviders = (where: string, indexedBy = ""): string =>
  `WITH RECURSIVE p (provider) AS (
      SELECT MIN(provider) FROM refunds${indexedBy} WHERE ${where}
      UNION ALL
      SELECT (SELECT MIN(provider) FROM refunds${indexedBy} WHERE ${where} AND provider > p.provider) FROM p WHERE p.provider IS NOT NULL
    ) SELECT provider FROM p WHERE provider IS NOT NULL`

/**
 * Whether a list is by status alone (no provider, no target): such a page takes one walk of
 * `refunds_status_provider_seq` per provider with refunds of that status (`providersWithStatus`).
 *
 * @internal
 */
export const byStatusAlone = (query: ListQuery): query is ListQuery & { readonly status: RefundStatus } =>
  query.status !== undefined && query.provider === undefined && query.target === undefined

/** A refund a lease may take, with what orders it (`leaseOrder`). @internal */
export interface LeaseCandidate {
  readonly id: unknown
  readonly sync_lease_until: unknown
  readonly updated_at: unknown
  readonly seq: unknown
}

const orderOfSeq = (seq: unknown): bigint => {
  try {
    return BigInt(String(seq))
  } catch {
    return 0n
  }
}

/**
 * The first `limit` of the candidates of several providers' leases, in lease order (never
 * leased first, then the least recently leased, the oldest update, the lowest seq), as one
 * statement over every provider would have picked them.
 *
 * @internal
 */
export const firstInLeaseOrder = <A extends LeaseCandidate>(candidates: ReadonlyArray<A>, limit: number): ReadonlyArray<A> => {
  const text = (value: unknown) => (value === null || value === undefined ? undefined : String(value))
  const compare = (a: A, b: A): number => {
    const leaseA = text(a.sync_lease_until)
    const leaseB = text(b.sync_lease_until)
    if (leaseA !== leaseB) return leaseA === undefined ? -1 : leaseB === undefined ? 1 : leaseA < leaseB ? -1 : 1
    const updatedA = String(a.updated_at)
    const updatedB = String(b.updated_at)
    if (updatedA !== updatedB) return updatedA < updatedB ? -1 : 1
    const seqA = orderOfSeq(a.seq)
    const seqB = orderOfSeq(b.seq)
    return seqA === seqB ? 0 : seqA < seqB ? -1 : 1
  }
  return [...candidates].sort(compare).slice(0, Math.max(0, Math.floor(limit)))
}

/**
 * A page of `list` on `@effect/sql`, newest first, reading `columns`. One row more than asked
 * says whether there is a next page. By status and provider it walks `refunds_status_provider_seq`
 * (migration 10) from the cursor and stops at the page's end; by status alone, given the
 * providers with refunds of that status (`providersWithStatus`), it takes one such walk per
 * provider and keeps the newest. A list with a creation bound is `listByCreationPage`'s.
 *
 * @internal
 */
export const listPage = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  columns: string,
  query: ListQuery,
  before: bigint | undefined,
  limit: number,
  providers?: ReadonlyArray<string>
): Statement.Statement<Row> => {
  if (byStatusAlone(query) && providers !== undefined && providers.length > 0) {
    const branches = providers.map((provider, i) => sql`SELECT * FROM (${listPage(sql, dialect, columns, { ...query, provider }, before, limit)}) ${sql.literal(`b${i}`)}`)
    return sql`${sql.join(" UNION ALL ", false)(branches)} ORDER BY seq DESC LIMIT ${limit + 1}`
  }
  const cursor = before === undefined ? undefined : dialect === "sqlite" ? before : before.toString()
  // By target the page walks the target's rows of `refund_targets` (keyed provider, target,
  // refund_seq) from the cursor, and looks each refund up by its seq.
  const byTarget = query.target === undefined ? undefined : sql`, (SELECT refund_seq FROM refund_targets
    WHERE provider = ${query.provider ?? ""} AND target = ${query.target}${cursor === undefined ? sql.literal("") : sql` AND refund_seq < ${cursor}`}) t`
  const where = sql.and([
    ...(byTarget !== undefined ? [sql`refunds.seq = t.refund_seq`] : cursor === undefined ? [] : [sql`seq < ${cursor}`]),
    ...(query.provider === undefined ? [] : [sql`provider = ${query.provider}`]),
    ...(query.status === undefined ? [] : [sql`status = ${query.status}`])
  ])
  return sql`SELECT ${sql.literal(columns)} FROM refunds${byTarget ?? sql.literal("")} WHERE ${where} ORDER BY ${sql.literal(byTarget === undefined ? "seq" : "t.refund_seq")} DESC LIMIT ${limit + 1}`
}

/**
 * Where a list by creation time (`Ledger.byCreation`) goes on from: after the last refund handed
 * out, by its creation time, then its seq.
 *
 * @internal
 */
export interface CreatedAfter {
  readonly createdAt: string
  readonly seq: bigint
}

/**
 * One condition of a page of a list by creation time: a bound on created_at, or (from a cursor)
 * the keyset after the last refund handed out.
 *
 * @internal
 */
export type CreatedCondition =
  | { readonly _tag: "Bound"; readonly op: ">=" | "<=" | "<"; readonly value: string }
  | { readonly _tag: "After"; readonly after: CreatedAfter }

/**
 * The conditions of a page of a list by creation time, for `refunds_created_seq` (created_at, seq)
 * (migration 11): its creation bounds and, from a cursor, the keyset after it, with one upper bound
 * on created_at (the cursor's when it is inside the range), so the index is entered at the cursor,
 * not at the range's end and walked past the pages already read.
 *
 * @internal
 */
export const createdConditions = (query: ListQuery, after: CreatedAfter | undefined): ReadonlyArray<CreatedCondition> => [
  ...(query.createdFrom === undefined ? [] : [{ _tag: "Bound", op: ">=", value: query.createdFrom } as const]),
  ...(after !== undefined && (query.createdTo === undefined || after.createdAt < query.createdTo)
    ? [{ _tag: "Bound", op: "<=", value: after.createdAt } as const, { _tag: "After", after } as const]
    // A cursor at or past createdTo is behind every refund of the range: the range alone bounds the page.
    : query.createdTo === undefined
    ? []
    : [{ _tag: "Bound", op: "<", value: query.createdTo } as const])
]

/**
 * A page of a list by creation time on `@effect/sql`, newest first by (created_at, seq), reading
 * `columns`; one row more than asked says whether there is a next page. It walks
 * `refunds_created_seq` from the cursor (SQLite is named the index: without statistics it takes
 * the status index for a status and sorts every refund of it) and filters provider and status on
 * the way, so what it reads grows with the refunds created in the range, never with those
 * created after it. By target it reads that target's refunds (a few) and sorts them.
 *
 * @internal
 */
export const listByCreationPage = (
  sql: SqlClient.SqlClient,
  dialect: Dialect,
  columns: string,
  query: ListQuery,
  after: CreatedAfter | undefined,
  limit: number
): Statement.Statement<Row> => {
  const range = createdConditions(query, after).map((c) =>
    c._tag === "Bound"
      ? sql`created_at ${sql.literal(c.op)} ${c.value}`
      : sql`(created_at < ${c.after.createdAt} OR seq < ${dialect === "pg" ? c.after.seq.toString() : c.after.seq})`
  )
  const byTarget = query.target === undefined
    ? undefined
    : sql`, (SELECT refund_seq FROM refund_targets WHERE provider = ${query.provider ?? ""} AND target = ${query.target}) t`
  const where = sql.and([
    ...(byTarget === undefined ? [] : [sql`refunds.seq = t.refund_seq`]),
    ...range,
    ...(query.provider === undefined ? [] : [sql`provider = ${query.provider}`]),
    ...(query.status === undefined ? [] : [sql`status = ${query.status}`])
  ])
  const table = byTarget ?? sql.literal(dialect === "sqlite" ? " INDEXED BY refunds_created_seq" : "")
  return sql`SELECT ${sql.literal(columns)} FROM refunds${table} WHERE ${where} ORDER BY created_at DESC, seq DESC LIMIT ${limit + 1}`
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

/** The cursor of a list by creation time: the last refund's creation time and seq. @internal */
export const encodeCreatedCursor = (after: CreatedAfter): string => Buffer.from(`c:${after.seq}:${after.createdAt}`).toString("base64url")

/** @internal */
export const decodeCreatedCursor = (cursor: string): CreatedAfter | undefined => {
  const match = /^c:(\d{1,19}):(.+)$/s.exec(Buffer.from(cursor, "base64url").toString())
  if (match === null) return undefined
  const seq = BigInt(match[1]!)
  return seq <= maxSeq ? { seq, createdAt: match[2]! } : undefined
}

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
 * `countByStatus` on `@effect/sql`: the statuses' refunds through `refunds_status_provider_seq`, grouped.
 *
 * @internal
 */
export const countByStatus = (sql: SqlClient.SqlClient, dialect: Dialect, statuses: ReadonlyArray<string>) =>
  sql`SELECT provider, status, ${sql.literal(dialect === "pg" ? "count(*)::int" : "count(*)")} AS n FROM refunds
    WHERE ${sql.in("status", statuses)} GROUP BY provider, status`

/**
 * The providers with refunds in `status`, one probe of `refunds_status_provider_seq` each (a
 * loose index scan): a list by status alone walks each one's entries.
 *
 * @internal
 */
export const providersWithStatus = (sql: SqlClient.SqlClient, dialect: Dialect, status: string) =>
  dialect === "pg"
    ? sql.unsafe<{ readonly provider: unknown }>(distinctProviders("status = $1"), [status])
    : sql.unsafe<{ readonly provider: unknown }>(providersWithStatusText, [status, status])

/**
 * `providersWithStatus` as SQLite text; its parameters: the status, twice.
 *
 * @internal
 */
export const providersWithStatusText = distinctProviders("status = ?")
