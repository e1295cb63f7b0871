// A real PgBouncer in transaction pooling mode in front of the local PostgreSQL: each
// transaction (or autocommitted statement) may run on a different server connection,
// and prepared statements are not carried across (Debian's PgBouncer 1.18 cannot;
// 1.21 added max_prepared_statements). `.ci/run` installs it; without the binary the
// tests that need it are skipped and say so.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Pg from "pg"
import * as SqlLedger from "../../src/SqlLedger.js"
import { build, type Harness, pgUrl } from "./databases.js"

/** Where the `pgbouncer` binary is, if anywhere. */
export const binary: string | undefined = [process.env.REFUNDKIT_TEST_PGBOUNCER, "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find(
  (candidate): candidate is string => candidate !== undefined && candidate !== "" && fs.existsSync(candidate)
)

export interface Running {
  readonly port: number
  /** PgBouncer's own log, for a failed test's message. */
  readonly log: () => string
  /**
   * Closes every server connection PgBouncer holds to `database` and waits until they are gone (its
   * console's RECONNECT and WAIT_CLOSE): the next transaction runs on a new one, which has prepared
   * nothing, as after a server connection's lifetime or idle timeout ran out.
   */
  readonly closeServers: (database: string) => Effect.Effect<void, unknown>
}

const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const accepts = (port: number) =>
  Effect.async<void, Error>((resume) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.void)
    })
    socket.once("error", (error) => resume(Effect.fail(error)))
  })

/** Starts PgBouncer on a free port for the scope; it runs as `postgres` when the tests run as root (it refuses root). */
export const start = (program: string): Effect.Effect<Running, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const upstream = new URL(pgUrl)
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "rk-pgbouncer-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const port = yield* freePort
    const user = decodeURIComponent(upstream.username || "postgres")
    const logFile = path.join(dir, "pgbouncer.log")
    fs.writeFileSync(path.join(dir, "userlist.txt"), `"${user}" ""\n`)
    fs.writeFileSync(
      path.join(dir, "pgbouncer.ini"),
      [
        "[databases]",
        `* = host=${upstream.hostname} port=${upstream.port || "5432"}`,
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        "unix_socket_dir =",
        "auth_type = trust",
        `auth_file = ${path.join(dir, "userlist.txt")}`,
        "pool_mode = transaction",
        "default_pool_size = 8",
        // Each transaction takes the next server connection in turn rather than the last one freed, as
        // a busy pooler hands them out: a statement prepared on one is bound on another at once. Left
        // LIFO, a quiet pooler could keep giving each client the same one, and the loss went unseen.
        "server_round_robin = 1",
        "max_client_conn = 500",
        // The console (database `pgbouncer`), for closeServers.
        `admin_users = ${user}`,
        `logfile = ${logFile}`,
        `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
        ""
      ].join("\n")
    )
    // PgBouncer started as root drops to the user given with -u, which must be able to write its log.
    const asRoot = process.getuid?.() === 0
    if (asRoot) {
      fs.chmodSync(dir, 0o777)
      for (const file of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, file), 0o644)
    }
    const child = yield* Effect.acquireRelease(
      Effect.sync((): ChildProcess =>
        spawn(program, [...(asRoot ? ["-u", "postgres"] : []), path.join(dir, "pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] })
      ),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGINT")
        })
    )
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    const log = () => `${stderr}${fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : ""}`
    yield* accepts(port).pipe(
      Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds"))),
      Effect.mapError((error) => new Error(`PgBouncer did not start listening: ${error.message}\n${log()}`))
    )
    const closeServers = (database: string) =>
      Effect.acquireUseRelease(
        Effect.tryPromise(async () => {
          const adminConsole = new Pg.Client({ host: "127.0.0.1", port, user, database: "pgbouncer" })
          await adminConsole.connect()
          return adminConsole
        }),
        // The console speaks the simple query protocol only: no parameters.
        (adminConsole) => Effect.tryPromise(async () => {
          await adminConsole.query(`RECONNECT ${database}`)
          await adminConsole.query(`WAIT_CLOSE ${database}`)
        }),
        (adminConsole) => Effect.promise(() => adminConsole.end())
      )
    return { port, log, closeServers }
  })

/**
 * A fresh ledger on PostgreSQL through `bouncer`, in a database of its own (PgBouncer refuses the
 * `options` startup parameter that chooses a schema per ledger elsewhere), dropped afterwards.
 */
export const fresh = (bouncer: () => Running) =>
  Effect.gen(function*() {
    const admin = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
    const database = `rk_bouncer_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
    yield* Effect.acquireRelease(
      admin.unsafe(`CREATE DATABASE ${database}`),
      // FORCE: PgBouncer still holds server connections to it.
      () => Effect.orDie(admin.unsafe(`DROP DATABASE ${database} WITH (FORCE)`))
    )
    const through = new URL(pgUrl)
    through.host = `127.0.0.1:${bouncer().port}`
    through.pathname = `/${database}`
    through.search = ""
    const ledger = yield* build(SqlLedger.layerPg(through.toString()))
    return { ledger, database }
  })

/** Ledgers on PostgreSQL through `bouncer`, each `fresh`. */
export const harness = (bouncer: () => Running): Harness => ({
  name: "PostgreSQL through PgBouncer (transaction pooling)",
  fresh: Effect.map(fresh(bouncer), ({ ledger }) => ledger)
})
