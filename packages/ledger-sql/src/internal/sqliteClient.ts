/**
 * An `@effect/sql` client over the SQLite ledger's own better-sqlite3 connection, so
 * the migrations and the readiness check (written on `@effect/sql`) run on the one
 * connection the ledger writes through. A second connection would not see a
 * `:memory:` database at all, and could wait on the ledger's lock from the same thread.
 *
 * Nothing on the hot path uses it: statements are prepared afresh each time, which
 * also keeps a "no such table" from being remembered across a migration.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import type BetterSqlite3 from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

const execute = (db: BetterSqlite3.Database, sql: string, params: ReadonlyArray<unknown>, raw: boolean) =>
  Effect.try({
    try: (): ReadonlyArray<unknown> => {
      const statement = db.prepare(sql)
      if (statement.reader) return raw ? statement.raw(true).all(...params) : statement.all(...params)
      statement.run(...params)
      return []
    },
    catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
  })

/** @internal */
export const make = (db: BetterSqlite3.Database): Effect.Effect<SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const connection: Connection = {
      execute: (sql, params, transformRows) =>
        Effect.map(execute(db, sql, params, false), (rows) => (transformRows ? transformRows(rows as ReadonlyArray<object>) : rows)),
      executeRaw: (sql, params) => execute(db, sql, params, false),
      executeValues: (sql, params) => execute(db, sql, params, true) as Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError>,
      executeUnprepared: (sql, params, transformRows) =>
        Effect.map(execute(db, sql, params, false), (rows) => (transformRows ? transformRows(rows as ReadonlyArray<object>) : rows)),
      executeStream: () => Stream.dieMessage("executeStream is not supported by the ledger's SQLite connection")
    }
    // One transaction at a time, as @effect/sql's own SQLite client does.
    const semaphore = yield* Effect.makeSemaphore(1)
    const acquirer = semaphore.withPermits(1)(Effect.succeed(connection))
    const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
      Effect.as(
        Effect.zipRight(restore(semaphore.take(1)), Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, semaphore.release(1)))),
        connection
      )
    )
    return yield* SqlClient.make({
      acquirer,
      transactionAcquirer,
      compiler: Statement.makeCompilerSqlite(),
      spanAttributes: [["db.system.name", "sqlite"]]
    })
  }).pipe(Effect.provide(Reactivity.layer))
