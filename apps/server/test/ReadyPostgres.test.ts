// /readyz on a PostgreSQL ledger whose connections stop answering, as a failover can leave
// them (the old server gone without a reset): the probe answers 503 not_ready instead of
// waiting with the connection. A real PostgreSQL, reached through a TCP proxy that stops
// passing bytes.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Effect, Redacted } from "effect"
import * as Net from "node:net"
import * as Gateway from "./support/Gateway.js"

const pgUrl = process.env.REFUNDKIT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** A fresh PostgreSQL schema, dropped with the scope. */
const pgSchema = Effect.gen(function*() {
  const admin = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
  const schema = `rk_ready_pg_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* Effect.acquireRelease(admin.unsafe(`CREATE SCHEMA ${schema}`), () => Effect.orDie(admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)))
  return schema
})

/**
 * A TCP proxy to the test database. `silence()` stops it passing bytes either way, on the
 * connections it has and on new ones, without closing any: what a client sees of a server
 * that vanished from the network. The scope closes it and every connection through it.
 */
const proxy = Effect.acquireRelease(
  Effect.async<{ readonly server: Net.Server; readonly sockets: Set<Net.Socket>; readonly state: { silent: boolean } }>((resume) => {
    const target = new URL(pgUrl)
    const sockets = new Set<Net.Socket>()
    const state = { silent: false }
    const server = Net.createServer((client) => {
      const upstream = Net.connect(Number(target.port || 5432), target.hostname)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
      }
      client.on("data", (chunk) => void (state.silent || upstream.write(chunk)))
      upstream.on("data", (chunk) => void (state.silent || client.write(chunk)))
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets, state })))
  }),
  ({ server, sockets }) =>
    Effect.sync(() => {
      server.close()
      for (const socket of sockets) socket.destroy()
    })
)

describe("/readyz on a PostgreSQL ledger whose connections stop answering", () => {
  it.scopedLive("answers 503 not_ready, not a probe left waiting", () =>
    Effect.gen(function*() {
      const schema = yield* pgSchema
      const through = yield* proxy
      const address = through.server.address() as Net.AddressInfo
      const url = new URL(pgUrl)
      url.host = `127.0.0.1:${address.port}`
      url.searchParams.set("options", `-c search_path=${schema}`)
      const gw = yield* Gateway.start({ ledger: LedgerSql.layerPg(url.toString()) })
      assert.strictEqual((yield* gw.fetch("GET", "/readyz", { auth: false })).status, 200)

      through.state.silent = true
      const ready = yield* gw.fetch("GET", "/readyz", { auth: false }).pipe(Effect.timeout("15 seconds"), Effect.option)
      assert.isTrue(ready._tag === "Some", "/readyz had not answered after 15 s")
      if (ready._tag === "Some") {
        assert.strictEqual(ready.value.status, 503, ready.value.text)
        assert.strictEqual(ready.value.body.error.code, "not_ready")
      }
    }), { timeout: 60_000 })
})
