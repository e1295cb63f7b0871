/**
 * The PostgreSQL ledger's deadline on every statement: a `pg` client class for the ledger's
 * pool whose every query either answers or fails within a bound, however it was sent
 * (`@effect/sql-pg`'s queries and transactions, the fast path's named statements, the
 * pool's own checks).
 *
 * Why in the driver: a connection that goes silent (a failover that leaves the old server's
 * connections without a reset, a partitioned network) answers nothing, and TCP keeps it for
 * ~15 minutes of retransmissions. A timeout around the Effect cannot help: interrupting a
 * query makes `@effect/sql-pg` send a cancel and then return the connection to the pool
 * *without* an error, and `@effect/sql` sends BEGIN, COMMIT and ROLLBACK uninterruptibly. And
 * `pg`'s own `query_timeout` alone answers the caller but leaves the query active on the
 * connection, which the pool then hands out again, to wait behind it. Here the connection is
 * ended when its deadline passes, before the caller hears of it: whoever releases it then,
 * the pool finds it ending and drops it, and the next statement goes out on a new one.
 *
 * A statement that is meant to wait for another caller's lock (a refund's turn, a row or a
 * target locked `FOR UPDATE`) starts with {@link waitsForLock} and gets the lock budget on
 * top of the bound.
 *
 * @internal
 */
import * as Pg from "pg"

/**
 * What the deadlines are, in milliseconds.
 *
 * @internal
 */
export interface Deadlines {
  /** How long any statement (and a new connection's handshake) may go without an answer. */
  readonly answerMillis: number
  /** What a statement marked {@link waitsForLock} may wait for the lock, on top of `answerMillis`. */
  readonly lockWaitMillis: number
}

/**
 * The prefix of a statement that waits for another caller's lock by design. A comment, so
 * PostgreSQL (and a pooler in between) ignores it.
 *
 * @internal
 */
export const waitsForLock = "/* refundkit: waits for a lock */ "

/**
 * Why a statement failed: its connection gave no answer within `millis` and was dropped
 * (`phase: "statement"`), or a new connection was not accepted within it (`"connect"`).
 * `inDoubt` when the statement could have committed a write (a COMMIT, or a write outside a
 * transaction): it may or may not have reached the server.
 *
 * @internal
 */
export class StatementDeadline extends Error {
  readonly millis: number
  readonly inDoubt: boolean
  readonly phase: "statement" | "connect"
  constructor(millis: number, inDoubt: boolean, phase: "statement" | "connect" = "statement") {
    super(
      phase === "statement"
        ? `PostgreSQL did not answer within ${seconds(millis)}`
        : `PostgreSQL did not accept a new connection within ${seconds(millis)}`
    )
    this.name = "StatementDeadline"
    this.millis = millis
    this.inDoubt = inDoubt
    this.phase = phase
  }
}

/** `30 s`, `1.5 s`, `500 ms`. @internal */
export const seconds = (millis: number): string => (millis < 1000 ? `${millis} ms` : `${Number((millis / 1000).toFixed(1))} s`)

/** The statement's deadline failure, when that is why it failed. @internal */
export const deadlineOf = (cause: unknown): StatementDeadline | undefined => (cause instanceof StatementDeadline ? cause : undefined)

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
