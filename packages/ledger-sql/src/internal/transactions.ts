/**
 * Transactions with the isolation each ledger operation needs, on each database.
 *
 * `@effect/sql` opens every transaction with a plain `BEGIN`. On SQLite that is a
 * deferred transaction: two writers can both read, then one fails to upgrade its
 * lock, or worse, both decide from the same read. The ledger's writes therefore open
 * `BEGIN IMMEDIATE`, which takes the database's write lock before the first read, so a
 * claim's idempotency check and over-refund sum and its insert see one state, across
 * processes too. On PostgreSQL writes run at READ COMMITTED and take explicit row locks;
 * reads of a refund and its events run in one REPEATABLE READ snapshot.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Dialect } from "./rows.js"

/** @internal */
export interface Transactions {
  /** A consistent snapshot for reads that span several statements. */
  readonly read: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
  /** Serialised with every other writer of the same rows (SQLite: of the whole file). */
  readonly write: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
}

const codeOf = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined
}

/**
 * Failures that say "another writer got there first; try again": SQLite's busy and
 * locked codes, PostgreSQL's serialization failure and deadlock.
 *
 * @internal
 */
export const isTransient = (error: SqlError): boolean => {
  const code = codeOf(error)
  return code !== undefined && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED") || code === "40001" || code === "40P01")
}

/** @internal */
export const retryTransient = Schedule.exponential("10 millis", 2).pipe(
  Schedule.jittered,
  Schedule.upTo("10 seconds"),
  Schedule.intersect(Schedule.recurs(12))
)

/**
 * PostgreSQL's `BEGIN` for a transaction whose lock waits give up after `lockWaitMillis`
 * (`SET LOCAL lock_timeout`, sent with it in one round trip): the server then fails the
 * waiting statement with `lock_not_available` (55P03), and the connection stays usable.
 *
 * @internal
 */
export const beginWithLockWait = (lockWaitMillis: number | undefined): string =>
  lockWaitMillis === undefined ? "BEGIN" : `BEGIN; SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockWaitMillis))}`

/**
 * A lock wait that ran out (`lock_timeout`): another transaction held the lock that long.
 *
 * @internal
 */
export const isLockWaitOver = (error: SqlError): boolean => codeOf(error) === "55P03"

/** @internal */
export const make = (sql: SqlClient.SqlClient, dialect: Dialect, options: { readonly lockWaitMillis?: number | undefined } = {}): Transactions => {
  const acquire = Effect.flatMap(Scope.make(), (scope) =>
    Effect.map(Scope.extend(sql.reserve, scope), (conn) => [scope, conn] as const))

  // SQLite's client caches prepared statements by text; preparing BEGIN and COMMIT afresh for every
  // transaction showed in profiles. PostgreSQL keeps the simple protocol for them.
  const run = (conn: Connection, statement: string) =>
    dialect === "sqlite" ? conn.execute(statement, [], undefined) : conn.executeUnprepared(statement, [], undefined)

  const withBegin = (begin: string) =>
    SqlClient.makeWithTransaction<SqlClient.TransactionConnection, Connection>({
      transactionTag: SqlClient.TransactionConnection,
      spanAttributes: [["db.system.name", dialect === "pg" ? "postgresql" : "sqlite"]],
      acquireConnection: acquire,
      // A busy database makes BEGIN itself fail; retry it here, because a failed
      // BEGIN is followed by a ROLLBACK that must find nothing to roll back.
      begin: (conn) =>
        run(conn, begin).pipe(
          Effect.retry({ schedule: retryTransient, while: isTransient }),
          Effect.asVoid
        ),
      savepoint: (conn, id) => Effect.asVoid(conn.executeUnprepared(`SAVEPOINT effect_sql_${id}`, [], undefined)),
      commit: (conn) => Effect.asVoid(run(conn, "COMMIT")),
      rollback: (conn) =>
        conn.executeUnprepared("ROLLBACK", [], undefined).pipe(
          Effect.asVoid,
          // After a BEGIN that never succeeded SQLite has no transaction to roll back.
          Effect.catchIf((error) => String(error.cause).includes("no transaction is active"), () => Effect.void)
        ),
      rollbackSavepoint: (conn, id) => Effect.asVoid(conn.executeUnprepared(`ROLLBACK TO SAVEPOINT effect_sql_${id}`, [], undefined))
    })

  return dialect === "sqlite"
    ? { read: withBegin("BEGIN"), write: withBegin("BEGIN IMMEDIATE") }
    : { read: withBegin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"), write: withBegin(beginWithLockWait(options.lockWaitMillis)) }
}
