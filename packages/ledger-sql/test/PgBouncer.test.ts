// The PostgreSQL ledger behind a real PgBouncer in transaction pooling mode, the way several
// gateway instances are often deployed: the shared behaviour, and the named statements the
// ledger prepares once per connection being lost between server connections.
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit, Logger, LogLevel, Scope } from "effect"
import { behaviour } from "./support/behaviour.js"
import * as PgBouncer from "./support/pgbouncer.js"
import { at, draft } from "./support/refunds.js"

const program = PgBouncer.binary

if (program === undefined) {
  describe("PgBouncer", () => {
    it.skip("needs a pgbouncer binary (.ci/run installs Debian's; or set REFUNDKIT_TEST_PGBOUNCER)", () => {})
  })
} else {
  let scope: Scope.CloseableScope | undefined
  let running: PgBouncer.Running | undefined
  const bouncer = (): PgBouncer.Running => {
    if (running === undefined) throw new Error("PgBouncer is not running")
    return running
  }
  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make())
    running = await Effect.runPromise(Scope.extend(PgBouncer.start(program), scope))
  }, 30_000)
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  behaviour(PgBouncer.harness(bouncer))

  describe("through PgBouncer", () => {
    it.scopedLive("prepared statements lost between server connections: one warning, then every write still lands once", () => {
      const warnings: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) warnings.push(String(message))
        })
      )
      const lost = () => warnings.filter((w) => w.includes("lost a prepared statement"))
      const explain = () => `warnings: ${JSON.stringify(warnings)}\n${bouncer().log().slice(-2000)}`
      return Effect.gen(function*() {
        const { database, ledger } = yield* PgBouncer.fresh(bouncer)
        // Both statements a burst of claims can start with, prepared by name: a claim alone, then ten
        // at once, sent as a batch. One statement at a time, they run on the pool's one connection and
        // the one server connection PgBouncer has opened for this database, which keeps them: nothing
        // is lost yet. (A burst alone goes the same way, its claims and changes in lockstep on those
        // two, so it lost nothing; the one warning came, or not, from the reads and claims after it.)
        const warm = Array.from({ length: 11 }, (_, i) => draft(`bouncer-warm-${i}`, { n: i }))
        yield* ledger.claim(warm[0]!)
        yield* Effect.all(warm.slice(1).map((refund) => ledger.claim(refund)), { concurrency: "unbounded" })
        assert.deepStrictEqual(lost(), [], explain())
        // PgBouncer closes that server connection: the burst's first statement, bound by name on a
        // new one, is lost whatever the timing, with the claims batched into it waiting on it.
        yield* bouncer().closeServers(database)
        const keys = Array.from({ length: 300 }, (_, i) => `bouncer-${i}`)
        const moved = yield* Effect.all(
          keys.map((key, i) =>
            Effect.flatMap(ledger.claim(draft(key, { n: i })), (claimed) =>
              ledger.transition(claimed.refund.id, { to: i % 3 === 0 ? "failed" : "succeeded", source: "submit", at: at(1000 + i) }))
          ),
          { concurrency: 50 }
        )
        assert.strictEqual(moved.length, 300)
        assert.strictEqual(lost().length, 1, explain())
        for (const [i, key] of keys.entries()) {
          const stored = yield* ledger.get(draft(key).id)
          assert.strictEqual(stored.status, i % 3 === 0 ? "failed" : "succeeded", key)
          assert.deepStrictEqual(stored.events.map((e) => e.to), ["requested", stored.status], key)
        }
        // Claiming again finds each one: nothing was written twice.
        const again = yield* Effect.all(keys.map((key, i) => ledger.claim(draft(key, { n: i }))), { concurrency: 50 })
        assert.isTrue(again.every((c) => c._tag === "Existing"))
        const page = yield* ledger.list({ limit: 1000 })
        assert.strictEqual(page.items.length, 300 + warm.length)
        // Named statements stopped at the first loss: whatever PgBouncer does after, no second warning.
        assert.strictEqual(lost().length, 1, explain())
      }).pipe(Effect.provide(capture))
    }, 60_000)
  })
}
