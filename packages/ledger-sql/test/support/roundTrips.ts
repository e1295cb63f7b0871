// A PostgreSQL ledger whose round trips to the server are counted on the wire: each
// simple query ('Q') and each extended-protocol batch (ended by 'Sync', 'S') is one
// request the client waits for. Counting at the socket sees every statement the
// ledger sends, BEGIN and COMMIT included, whichever API sent it.
import { Effect, Layer, Redacted, type Scope } from "effect"
import * as net from "node:net"
import * as PgPool from "../../src/internal/pgPool.js"
import type * as SqlLedger from "../../src/SqlLedger.js"
import { layerFromClient } from "../../src/SqlLedger.js"
import { build } from "./databases.js"

const query = 0x51 // 'Q'
const sync = 0x53 // 'S'

export interface Counted {
  readonly ledger: SqlLedger.SqlLedger.Service
  /** Round trips since the last call (or since the ledger was built). */
  readonly trips: Effect.Effect<number>
}

/** A ledger on `url` (migrated) whose pool's sockets count round trips. */
export const countedLedger = (url: string, maxConnections = 1): Effect.Effect<Counted, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    let count = 0
    const stream = () => {
      const socket = new net.Socket()
      // Installed on connect, before the driver's own listener sends anything: Node resets a
      // socket's `write` when it connects.
      socket.once("connect", () => {
        const write = socket.write.bind(socket) as (chunk: unknown, ...rest: Array<unknown>) => boolean
        const counting = (chunk: unknown, ...rest: Array<unknown>): boolean => {
          if (Buffer.isBuffer(chunk) && (chunk[0] === query || chunk[0] === sync)) count++
          return write(chunk, ...rest)
        }
        socket.write = counting as typeof socket.write
      })
      return socket
    }
    // The pool the PostgreSQL layer makes, so the fast path's named statements are counted too.
    const pool = PgPool.layer({ url: Redacted.make(url), applicationName: "refundkit-test", maxConnections, stream })
    const ledger = yield* build(layerFromClient().pipe(Layer.provide(pool)))
    count = 0
    return {
      ledger,
      trips: Effect.sync(() => {
        const n = count
        count = 0
        return n
      })
    }
  })
