// Every ledger operation on PostgreSQL either answers or fails within `statementTimeoutMillis`
// when its connection goes silent (a failover that leaves the old server's connections without
// a reset): a LedgerError naming the operation, and the connection dropped, so the same
// operation then succeeds on a new one. Before, each of these waited for as long as TCP kept
// the connection (~15 minutes). A real PostgreSQL, reached through a TCP proxy that stops
// passing bytes on the connections it has.
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Exit, Fiber, Layer, Ref } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"
import { silentProxy } from "./support/silentProxy.js"
import { holdTurn } from "./support/turns.js"

// Short for the test, long enough for a loaded machine's answers.
const bound = 1000

/**
 * `effect`'s exit, or a failure of the test when it had not ended after 20 s (the old code never
 * did). Disconnected: on the old code a transaction's BEGIN, sent uninterruptibly, would hold
 * the test's own timeout too.
 */
const ended = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
  effect.pipe(
    Effect.exit,
    Effect.disconnect,
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`${what} had not ended after 20 s`) }),
    Effect.orDie
  )

const seeded = draft("deadline-seeded")

/** A ledger through a proxy, on one connection (so a later success can only be on a new one), with `seeded` in it. */
const silentLedger = Effect.gen(function*() {
  const proxy = yield* silentProxy
  const url = proxy.through(yield* pgSchema)
  const ledger = yield* build(SqlLedger.layerPg(url, { maxConnections: 1, statementTimeoutMillis: bound }))
  yield* ledger.claim(seeded)
  return { proxy, url, ledger }
})

interface Operation {
  readonly name: string
  /** What the failure says was being done. */
  readonly doing: string
  readonly run: (ledger: SqlLedger.SqlLedger.Service, attempt: number) => Effect.Effect<unknown, unknown>
}

const lease = (n: number) => ({ owner: "worker", at: at(n), until: at(n + 60), limit: 10 })

const operations: ReadonlyArray<Operation> = [
  { name: "get", doing: "reading a refund", run: (ledger) => ledger.get(seeded.id) },
  { name: "list", doing: "listing refunds", run: (ledger) => ledger.list({ limit: 10 }) },
  { name: "list by status", doing: "listing refunds", run: (ledger) => ledger.list({ status: "requested", limit: 10 }) },
  { name: "findByKey", doing: "reading a refund by idempotency key", run: (ledger) => ledger.findByKey(seeded.provider, seeded.idempotencyKey) },
  { name: "countByStatus", doing: "counting refunds by status", run: (ledger) => ledger.countByStatus(["requested", "pending"]) },
  // Each attempt leases past the last one's lease, so the second finds the refund again.
  { name: "claimForSync", doing: "leasing refunds to sync", run: (ledger, attempt) => ledger.claimForSync(lease(attempt * 100)) },
  { name: "releaseSync", doing: "releasing sync leases", run: (ledger) => ledger.releaseSync({ owner: "worker", ids: [seeded.id] }) },
  {
    name: "a guarded claim (original amounts: the transaction path)",
    doing: "claiming an idempotency key",
    run: (ledger) => ledger.claim(partial("deadline-guarded", "pay-guarded", "5.00", "10.00"))
  },
  {
    name: "recover",
    doing: "finding refunds to recover",
    run: (ledger) => ledger.recover({ olderThan: at(1), at: at(2) })
  },
  { name: "ready", doing: "checking the ledger", run: (ledger) => ledger.ready }
]

describe("PostgreSQL: every ledger operation on a connection that goes silent ends within statementTimeoutMillis", () => {
  for (const operation of operations) {
    it.scopedLive(`${operation.name}: fails as a LedgerError naming it, then succeeds on a new connection`, () =>
      Effect.gen(function*() {
        const { ledger, proxy } = yield* silentLedger
        proxy.silence()
        const lost = yield* ended(`${operation.name} on the silent connection`, operation.run(ledger, 1))
        assert.isTrue(Exit.isFailure(lost), `${operation.name} succeeded on a silent connection: ${String(lost)}`)
        if (Exit.isFailure(lost)) {
          const text = String(lost.cause)
          assert.include(text, "LedgerError")
          assert.include(text, operation.doing)
          assert.include(text, "did not answer within 1 s")
        }
        const again = yield* ended(`${operation.name} after the silence`, operation.run(ledger, 2))
        assert.isTrue(Exit.isSuccess(again), `${operation.name} failed on a new connection: ${String(again)}`)
      }), { timeout: 60_000 })
  }

  it.scopedLive("a status change on the locked path (a refund this process does not remember) says whether it may have been written", () =>
    Effect.gen(function*() {
      const { proxy, url } = yield* silentLedger
      // Another instance, which never read the refund: its change reads it under its lock.
      const other = yield* build(SqlLedger.layerPg(url, { maxConnections: 1, statementTimeoutMillis: bound }))
      yield* other.ready
      proxy.silence()
      const change = { to: "pending" as const, source: "submit" as const, at: at(1), providerReference: "R-1" }
      const lost = yield* ended("the change on the silent connection", other.transition(seeded.id, change))
      assert.isTrue(Exit.isFailure(lost), String(lost))
      if (Exit.isFailure(lost)) {
        const text = String(lost.cause)
        assert.include(text, "recording a status change")
        // The transaction's BEGIN got no answer: nothing of it can have committed.
        assert.include(text, "nothing was written by this call")
      }
      const moved = yield* ended("the change after the silence", other.transition(seeded.id, change))
      assert.isTrue(Exit.isSuccess(moved) && moved.value.status === "pending", String(moved))
    }), { timeout: 60_000 })

  it.scopedLive("a refund's turn fails naming the refund, and the next turn runs on a new connection", () =>
    Effect.gen(function*() {
      const { ledger, proxy } = yield* silentLedger
      const turn = ledger.serialise!
      proxy.silence()
      let ran = false
      const lost = yield* ended("the turn on the silent connection", turn(seeded.id, Effect.sync(() => (ran = true))))
      assert.isTrue(Exit.isFailure(lost), String(lost))
      assert.isFalse(ran, "the turn ran without its lock")
      if (Exit.isFailure(lost)) assert.include(String(lost.cause), `waiting for the turn of refund ${seeded.id}`)
      const next = yield* ended("the turn after the silence", turn(seeded.id, ledger.get(seeded.id)))
      assert.isTrue(Exit.isSuccess(next), String(next))
    }), { timeout: 60_000 })

  it.scopedLive("after one deadline the pool's idle connections to the silent server are dropped too: the next operation does not meet one", () =>
    Effect.gen(function*() {
      const proxy = yield* silentProxy
      const url = proxy.through(yield* pgSchema)
      const ledger = yield* build(SqlLedger.layerPg(url, { maxConnections: 3, statementTimeoutMillis: bound }))
      yield* ledger.claim(seeded)
      // Three turns at once hold three connections, which then wait idle in the pool. Each turn waits
      // until all three are taken: a turn that ended first would hand its connection to the next.
      const inside = yield* Ref.make(0)
      const allInside = yield* Deferred.make<void>()
      const meet = Effect.zipRight(
        Effect.flatMap(Ref.updateAndGet(inside, (n) => n + 1), (n) => n === 3 ? Deferred.succeed(allInside, undefined) : Effect.void),
        Deferred.await(allInside)
      )
      yield* Effect.all([1, 2, 3].map((n) => ledger.serialise!(`deadline-idle-${n}`, meet)), { concurrency: "unbounded" }).pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "three turns were never held at once" })
      )
      assert.isAtLeast(proxy.open(), 3)
      proxy.silence()
      const lost = yield* ended("the first read on the silent connections", ledger.get(seeded.id))
      assert.isTrue(Exit.isFailure(lost), String(lost))
      const next = yield* ended("the read after it", ledger.get(seeded.id))
      assert.isTrue(Exit.isSuccess(next), `the read after the deadline met another silent connection: ${String(next)}`)
    }), { timeout: 60_000 })

  it.scopedLive("with the whole server gone, an operation still ends within the bound, new connections included", () =>
    Effect.gen(function*() {
      const { ledger, proxy } = yield* silentLedger
      proxy.silenceAll()
      // First on the pool's connection, then on a new one, whose handshake gets no answer either.
      for (const [attempt, says] of [[1, "did not answer within"], [2, "did not accept a new connection within"]] as const) {
        const lost = yield* ended(`reading a refund, attempt ${attempt}`, ledger.get(seeded.id))
        assert.isTrue(Exit.isFailure(lost), String(lost))
        if (Exit.isFailure(lost)) {
          assert.include(String(lost.cause), "reading a refund")
          assert.include(String(lost.cause), says)
        }
      }
    }), { timeout: 60_000 })
})

describe("REFUNDKIT_LEDGER_STATEMENT_TIMEOUT", () => {
  it.scopedLive("sets the bound of the ledger layerConfig opens", () =>
    Effect.gen(function*() {
      const proxy = yield* silentProxy
      const env = new Map([["REFUNDKIT_LEDGER", proxy.through(yield* pgSchema)], ["REFUNDKIT_LEDGER_STATEMENT_TIMEOUT", "1500 millis"]])
      const ledger = yield* build(SqlLedger.layerConfig({ maxConnections: 1 }).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))))
      yield* ledger.claim(seeded)
      proxy.silence()
      const lost = yield* ended("a read on the silent connection", ledger.get(seeded.id))
      assert.isTrue(Exit.isFailure(lost), String(lost))
      if (Exit.isFailure(lost)) assert.include(String(lost.cause), "did not answer within 1.5 s")
    }), { timeout: 60_000 })
})

describe("PostgreSQL: a statement that waits for another caller's lock is not cut by statementTimeoutMillis", () => {
  const pair = (options: SqlLedger.PgOptions) =>
    Effect.flatMap(pgSchema, (url) => Effect.all([build(SqlLedger.layerPg(url, options)), build(SqlLedger.layerPg(url, options))]))

  it.scopedLive("a turn waits past the statement bound, and gives up after turnWaitMillis naming the refund, having run nothing", () =>
    Effect.gen(function*() {
      const [one, two] = yield* pair({ statementTimeoutMillis: 500, turnWaitMillis: 2000 })
      const refund = draft("deadline-turn-busy")
      yield* one.claim(refund)
      const held = yield* holdTurn(one, refund.id)
      let ran = false
      const started = Date.now()
      const waited = yield* ended("the second turn", two.serialise!(refund.id, Effect.sync(() => (ran = true))))
      const elapsed = Date.now() - started
      assert.isFalse(ran)
      assert.isTrue(Exit.isFailure(waited), String(waited))
      // Well past the 500 ms statement bound: the lock wait has its own budget.
      assert.isAtLeast(elapsed, 1500)
      if (Exit.isFailure(waited)) {
        const text = String(waited.cause)
        assert.include(text, refund.id)
        assert.include(text, "nothing was sent")
      }
      yield* Fiber.interrupt(held)
    }), { timeout: 60_000 })

  it.scopedLive("a change waits for the refund's row lock past the statement bound, then is written", () =>
    Effect.gen(function*() {
      const [one, two] = yield* pair({ statementTimeoutMillis: 500 })
      const refund = draft("deadline-row-lock")
      yield* one.claim(refund)
      // One's turn holds the refund's row lock (its change inside the turn) for two seconds from now:
      // the change below waits on it four times the statement bound.
      const held = yield* holdTurn(one, refund.id, {
        first: one.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: "R-1" }),
        hold: Effect.sleep("2 seconds")
      })
      const moved = yield* ended(
        "the change behind the lock",
        two.transition(refund.id, { to: "succeeded", source: "webhook", at: at(2), providerStatus: "DONE" })
      )
      assert.isTrue(Exit.isSuccess(moved) && moved.value.status === "succeeded", String(moved))
      yield* Fiber.join(held)
    }), { timeout: 60_000 })

  it.scopedLive("a change behind a row lock held past turnWaitMillis fails saying so, and nothing of it is written", () =>
    Effect.gen(function*() {
      const [one, two] = yield* pair({ statementTimeoutMillis: 500, turnWaitMillis: 1500 })
      const refund = draft("deadline-row-lock-held")
      yield* one.claim(refund)
      const held = yield* holdTurn(one, refund.id, {
        first: one.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: "R-1" })
      })
      const waited = yield* ended(
        "the change behind the held lock",
        two.transition(refund.id, { to: "succeeded", source: "webhook", at: at(2), providerStatus: "DONE" })
      )
      assert.isTrue(Exit.isFailure(waited), String(waited))
      if (Exit.isFailure(waited)) {
        const text = String(waited.cause)
        assert.include(text, "recording a status change")
        assert.include(text, "another caller held a lock")
      }
      yield* Fiber.interrupt(held)
      // The turn committed its own change; the refused one left nothing.
      const after = yield* two.get(refund.id)
      assert.strictEqual(after.status, "pending")
    }), { timeout: 60_000 })
})
