/**
 * The PostgreSQL ledger's deadline on every statement: what a deadline is and how a missed
 * one is told. The `pg` client class that enforces it is in `pgDeadlineClient.ts`, loaded
 * only with the ledger's pool, so that this module (which every ledger's error handling
 * reads) does not load `pg`.
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
