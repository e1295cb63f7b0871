// Real databases for the tests: a SQLite file in a fresh temp directory, and a fresh
// schema in the local PostgreSQL server, dropped when the test's scope closes.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Ledger } from "@refundkit/core"
import { Context, Effect, Layer, Redacted, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as SqlLedger from "../../src/SqlLedger.js"

export const pgUrl = process.env.REFUNDKIT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** The URL of `pgUrl` with its search_path set to one schema. */
export const withSearchPath = (url: string, schema: string): string => {
  const u = new URL(url)
  u.searchParams.set("options", `-c search_path=${schema}`)
  return u.toString()
}

const randomName = () => `rk_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

/** A temp directory removed at the end of the scope. */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "rk-ledger-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A fresh, empty PostgreSQL schema; returns a URL whose connections use it. */
export const pgSchema: Effect.Effect<string, unknown, Scope.Scope> = Effect.gen(function*() {
  const admin = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
  const schema = randomName()
  yield* Effect.acquireRelease(
    admin.unsafe(`CREATE SCHEMA ${schema}`),
    () => Effect.orDie(admin.unsafe(`DROP SCHEMA ${schema} CASCADE`))
  )
  return withSearchPath(pgUrl, schema)
})

/** Builds a layer into the current scope and returns the SQL ledger from it. */
export const build = <E>(layer: Layer.Layer<Ledger.Ledger | SqlLedger.SqlLedger, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, SqlLedger.SqlLedger))

/** A ledger implementation under test: a fresh, empty ledger per call. */
export interface Harness {
  readonly name: string
  readonly fresh: Effect.Effect<Ledger.Ledger.Service, unknown, Scope.Scope>
}

export const memory: Harness = { name: "memory (core)", fresh: Ledger.makeMemory }

export const sqlite: Harness = {
  name: "SQLite file",
  fresh: Effect.flatMap(tempDir, (dir) => build(SqlLedger.layerSqlite(path.join(dir, "nested", "ledger.db"))))
}

/** The SQLite ledger on an `@effect/sql` client the application provides (the generic path, not the raw connection). */
export const sqliteOnClient: Harness = {
  name: "SQLite file through layerFromClient",
  fresh: Effect.gen(function*() {
    const dir = yield* tempDir
    const client = yield* SqliteClient.make({ filename: path.join(dir, "ledger.db") }).pipe(Effect.provide(Reactivity.layer))
    return yield* build(SqlLedger.layerFromClient().pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, client))))
  })
}

export const pg: Harness = {
  name: "PostgreSQL",
  fresh: Effect.flatMap(pgSchema, (url) => build(SqlLedger.layerPg(url)))
}

/** A second, raw connection to a ledger's database, to look at or damage its tables. */
export const rawSql = (url: string): Effect.Effect<SqlClient.SqlClient, unknown, Scope.Scope> =>
  url.startsWith("postgres")
    ? PgClient.make({ url: Redacted.make(url), maxConnections: 2 }).pipe(Effect.provide(Reactivity.layer))
    : SqliteClient.make({ filename: url }).pipe(Effect.provide(Reactivity.layer))

/** A location for a fresh ledger of each SQL kind. */
export const locations: ReadonlyArray<{ readonly name: string; readonly fresh: Effect.Effect<string, unknown, Scope.Scope> }> = [
  { name: "SQLite", fresh: Effect.map(tempDir, (dir) => path.join(dir, "ledger.db")) },
  { name: "PostgreSQL", fresh: pgSchema }
]
