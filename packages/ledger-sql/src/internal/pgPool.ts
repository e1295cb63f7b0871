/**
 * The PostgreSQL ledger's connection pool: a `pg` pool that `@effect/sql-pg` runs on
 * (`PgClient.fromPool`) and that the fast path also uses directly, for the one thing
 * `@effect/sql-pg` does not offer: named prepared statements, which `pg` parses once
 * per connection and then only binds and executes (see `pgFastPath.ts`).
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Duplex } from "node:stream"
import * as Pg from "pg"
import type * as PgDeadline from "./pgDeadline.js"
import { clientClass } from "./pgDeadlineClient.js"

/**
 * The pool the ledger's `SqlClient` runs on, when the ledger made that client itself.
 *
 * @internal
 */
export class PgPool extends Context.Tag("@refundkit/ledger-sql/internal/PgPool")<PgPool, Pg.Pool>() {}

/** @internal */
export interface Options {
  readonly url: Redacted.Redacted<string>
  readonly applicationName: string
  readonly maxConnections?: number | undefined
  /** The socket each connection uses (tests count the round trips on it). */
  readonly stream?: (() => Duplex) | undefined
  /** Every statement's deadline; none for the migrations' own pool (see `SqlLedger.layerPg`). */
  readonly deadlines?: PgDeadline.Deadlines | undefined
}

// TCP keepalive from a minute of idleness on: an idle connection whose server vanished is found
// dead (after the system's probes) and dropped by the pool instead of being handed out.
const keepAliveAfterMillis = 60_000

const connectTimeout = Duration.seconds(5)

/**
 * Keeps the set of the pool's idle clients, and returns what drops them: when one statement
 * missed its deadline, the idle connections were most likely opened to the same server that
 * stopped answering (a failover), and each would otherwise cost one more operation a whole
 * deadline before it is found out. Their sockets are destroyed, which the pool sees as an
 * idle client's error: it removes them, and the next operations open new connections.
 */
const idleClients = (pool: Pg.Pool): (() => void) => {
  const idle = new Set<Pg.PoolClient>()
  pool.on("release", (_error, client) => idle.add(client))
  pool.on("acquire", (client) => idle.delete(client))
  pool.on("remove", (client) => idle.delete(client))
  return () => {
    for (const client of idle) client.connection.stream.destroy()
    idle.clear()
  }
}

/**
 * Opens the pool and checks that it connects, as `PgClient.make` does; the scope ends
 * the pool.
 *
 * @internal
 */
export const make = (options: Options): Effect.Effect<Pg.Pool, SqlError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        // Set once the pool exists: the client class needs what drops the pool's idle clients.
        let dropIdle = () => {}
        const pool = new Pg.Pool({
          connectionString: Redacted.value(options.url),
          application_name: options.applicationName,
          ...(options.maxConnections === undefined ? {} : { max: options.maxConnections }),
          ...(options.stream === undefined ? {} : { stream: options.stream }),
          ...(options.deadlines === undefined ? {} : { Client: clientClass(options.deadlines, () => dropIdle()) }),
          keepAlive: true,
          keepAliveInitialDelayMillis: keepAliveAfterMillis
        })
        // An idle connection's error (the server restarted) surfaces on its next query instead.
        pool.on("error", () => {})
        dropIdle = idleClients(pool)
        return pool
      },
      catch: (cause) => new SqlError({ cause, message: "could not create the connection pool" })
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(Duration.seconds(1)))
  ).pipe(
    Effect.tap((pool) =>
      Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "could not connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: connectTimeout,
          onTimeout: () => new SqlError({ cause: new Error("no connection within 5 seconds"), message: "could not connect" })
        })
      )
    )
  )

/**
 * The pool, and the `SqlClient` on it.
 *
 * @internal
 */
export const layer = (options: Options): Layer.Layer<PgPool | SqlClient.SqlClient, SqlError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const pool = yield* make(options)
      const client = yield* PgClient.fromPool({ acquire: Effect.succeed(pool) })
      return Context.make(PgPool, pool).pipe(Context.add(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))
