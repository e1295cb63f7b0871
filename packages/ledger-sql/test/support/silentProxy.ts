// A TCP proxy to the test PostgreSQL server whose connections can be made to go silent: bytes
// stop passing either way and nothing is closed, which is what a client sees of a server that
// vanished from the network (a failover that leaves the old server's connections without a
// reset). New connections through it pass, as they would reach the new server.
import { Effect } from "effect"
import * as Net from "node:net"
import { pgUrl } from "./databases.js"

export interface SilentProxy {
  /** `url` (a `postgres://` URL to the test server) through the proxy. */
  readonly through: (url: string) => string
  /** Silences every connection the proxy has now; later ones pass. */
  readonly silence: () => void
  /** Silences every connection, now and later: the server is gone from the network. */
  readonly silenceAll: () => void
  /** How many client connections are open through the proxy now. */
  readonly open: () => number
}

/** The proxy, closed with every connection through it when the scope ends. */
export const silentProxy = Effect.acquireRelease(
  Effect.async<{
    readonly server: Net.Server
    readonly sockets: Set<Net.Socket>
    readonly clients: Set<Net.Socket>
    readonly silenced: Set<Net.Socket>
    readonly all: { on: boolean }
  }>((resume) => {
    const target = new URL(pgUrl)
    const sockets = new Set<Net.Socket>()
    const clients = new Set<Net.Socket>()
    const silenced = new Set<Net.Socket>()
    const all = { on: false }
    const server = Net.createServer((client) => {
      if (all.on) silenced.add(client)
      clients.add(client)
      client.on("close", () => clients.delete(client))
      const upstream = Net.connect(Number(target.port || 5432), target.hostname)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
      }
      client.on("data", (chunk) => void (silenced.has(client) || upstream.write(chunk)))
      upstream.on("data", (chunk) => void (silenced.has(client) || client.write(chunk)))
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets, clients, silenced, all })))
  }),
  ({ server, sockets }) =>
    Effect.sync(() => {
      server.close()
      for (const socket of sockets) socket.destroy()
    })
).pipe(Effect.map(({ all, clients, server, sockets, silenced }): SilentProxy => ({
  through: (url) => {
    const u = new URL(url)
    u.host = `127.0.0.1:${(server.address() as Net.AddressInfo).port}`
    return u.toString()
  },
  silence: () => {
    for (const socket of sockets) silenced.add(socket)
  },
  silenceAll: () => {
    all.on = true
    for (const socket of sockets) silenced.add(socket)
  },
  open: () => clients.size
})))
