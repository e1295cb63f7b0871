/**
 * The `pg` client class behind the deadlines of `pgDeadline.ts`: every query it sends
 * either answers or fails within a bound, however it was sent (`@effect/sql-pg`'s
 * queries and transactions, the fast path's named statements, the pool's own checks).
 * When a deadline passes, the connection is ended before the caller hears of it.
 *
 * @internal
 */
import * as Pg from "pg"
import { type Deadlines, StatementDeadline, waitsForLock } from "./pgDeadline.js"

const firstKeyword = (text: string): string =>
  text.replace(/^(\s|\/\*[\s\S]*?\*\/|--[^\n]*\n)*/, "").match(/^[A-Za-z]+/)?.[0]?.toUpperCase() ?? ""

// Statements that write nothing by themselves: outside a transaction they cannot leave a write in doubt.
const writesNothing = new Set(["SELECT", "BEGIN", "START", "SHOW", "SET", "ROLLBACK", "SAVEPOINT", "RELEASE", "VALUES", "TABLE"])

type Callback = (error: Error | null | undefined, result?: unknown) => void

interface QueryConfig {
  readonly text: string
  readonly values?: ReadonlyArray<unknown> | undefined
  readonly callback?: Callback | undefined
  readonly query_timeout?: number | undefined
}

const isQueryConfig = (config: unknown): config is QueryConfig =>
  typeof config === "object" && config !== null && "text" in config && typeof config.text === "string" &&
  !("submit" in config && typeof config.submit === "function")

const isCallback = (value: unknown): value is Callback => typeof value === "function"

/** `pg`'s `Client.prototype.query` with its overloads erased: the override below forwards whichever form it got. */
const baseQuery = Pg.Client.prototype.query as unknown as (this: Pg.Client, config: unknown, values?: unknown, callback?: unknown) => unknown

const baseConnect = Pg.Client.prototype.connect as unknown as (this: Pg.Client, callback?: unknown) => unknown

/**
 * The handshake under `pg`'s own `connectionTimeoutMillis` (which destroys the socket), with
 * its failure named as the deadline when that is what ended it.
 */
function boundedConnect(deadlines: Deadlines) {
  return function(this: Pg.Client, callback?: unknown): unknown {
    if (!isCallback(callback)) return baseConnect.call(this, callback)
    const started = Date.now()
    return baseConnect.call(this, (error: Error | null | undefined) =>
      callback(error && Date.now() - started >= deadlines.answerMillis ? new StatementDeadline(deadlines.answerMillis, false, "connect") : error))
  }
}

/**
 * A client whose connection is already being ended by a deadline. A ROLLBACK on it answers at
 * once: the server rolls back a transaction whose connection is gone, and `@effect/sql`, which
 * rolls back after the statement failed, would otherwise report the closed client instead.
 */
const dropped = new WeakSet<Pg.Client>()

const emptyResult = { command: "ROLLBACK", rowCount: 0, rows: [], fields: [] }

function boundedQuery(deadlines: Deadlines, onDeadline: () => void) {
  return function(this: Pg.Client, config: unknown, values?: unknown, callback?: unknown): unknown {
    // Cursors and streams (which the ledger does not use) go as `pg` has them.
    if (typeof config !== "string" && !isQueryConfig(config)) return baseQuery.call(this, config, values, callback)
    const given: QueryConfig = typeof config === "string" ? { text: config } : config
    const answer = isCallback(values) ? values : isCallback(callback) ? callback : given.callback
    const { callback: _callback, query_timeout: explicit, ...rest } = given
    const query = Array.isArray(values) ? { ...rest, values } : rest
    const keyword = firstKeyword(query.text)
    if (dropped.has(this) && keyword === "ROLLBACK") {
      if (answer === undefined) return Promise.resolve(emptyResult)
      process.nextTick(() => answer(null, emptyResult))
      return undefined
    }
    const millis = explicit ?? (query.text.startsWith(waitsForLock) ? deadlines.lockWaitMillis + deadlines.answerMillis : deadlines.answerMillis)
    const inDoubt = keyword === "COMMIT" || (this.getTransactionStatus() !== "T" && !writesNothing.has(keyword))
    const send = (done: Callback) => {
      let late = false
      const timer = setTimeout(() => {
        late = true
        dropped.add(this)
        // Ending a client with a query out destroys its socket; the query then fails with
        // "Connection terminated", which `done` reports as the deadline.
        void this.end().catch(() => {})
        onDeadline()
      }, millis)
      baseQuery.call(this, query, (error: Error | null | undefined, result?: unknown) => {
        clearTimeout(timer)
        if (late) done(new StatementDeadline(millis, inDoubt))
        else done(error, result)
      })
    }
    if (answer !== undefined) {
      send(answer)
      return undefined
    }
    return new Promise((resolve, reject) => send((error, result) => (error ? reject(error) : resolve(result))))
  }
}

/**
 * A `pg` client class for a pool, with {@link Deadlines}. The connection handshake is bounded
 * here rather than by the pool's `connectionTimeoutMillis`, which would also bound the wait
 * for a free connection: a pool full of refund turns (each holding its connection for a
 * provider call) makes that wait legitimately long. `onDeadline` runs when a statement's
 * deadline has passed and its connection is being ended.
 *
 * @internal
 */
export const clientClass = (deadlines: Deadlines, onDeadline: () => void): new(config?: string | Pg.ClientConfig) => Pg.Client => {
  class DeadlineClient extends Pg.Client {
    constructor(config?: string | Pg.ClientConfig) {
      super({
        ...(typeof config === "string" ? { connectionString: config } : config),
        connectionTimeoutMillis: deadlines.answerMillis
      })
    }
  }
  Object.defineProperty(DeadlineClient.prototype, "query", { value: boundedQuery(deadlines, onDeadline), writable: true, configurable: true })
  Object.defineProperty(DeadlineClient.prototype, "connect", { value: boundedConnect(deadlines), writable: true, configurable: true })
  return DeadlineClient
}
