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
      return Effect.gen(function*() {
        const ledger = yield* PgBouncer.harness(bouncer).fresh
        // 300 claims and their status changes at once: the pool's connections are handed
        // whatever server connection PgBouncer has free, so a statement prepared on one is
        // soon bound on another.
        const keys = Array.from({ length: 300 }, (_, i) => `bouncer-${i}`)
        const moved = yield* Effect.all(
          keys.map((key, i) =>
            Effect.flatMap(ledger.claim(draft(key, { n: i })), (claimed) =>
              ledger.transition(claimed.refund.id, { to: i % 3 === 0 ? "failed" : "succeeded", source: "submit", at: at(1000 + i) }))
          ),
          { concurrency: 50 }
        )
        assert.strictEqual(moved.length, 300)
        for (const [i, key] of keys.entries()) {
          const stored = yield* ledger.get(draft(key).id)
          assert.strictEqual(stored.status, i % 3 === 0 ? "failed" : "succeeded", key)
          assert.deepStrictEqual(stored.events.map((e) => e.to), ["requested", stored.status], key)
        }
        // Claiming again finds each one: nothing was written twice.
        const again = yield* Effect.all(keys.map((key, i) => ledger.claim(draft(key, { n: i }))), { concurrency: 50 })
        assert.isTrue(again.every((c) => c._tag === "Existing"))
        const page = yield* ledger.list({ limit: 1000 })
        assert.strictEqual(page.items.length, 300)
        const lost = warnings.filter((w) => w.includes("lost a prepared statement"))
        assert.strictEqual(lost.length, 1, `warnings: ${JSON.stringify(warnings)}\n${bouncer().log().slice(-2000)}`)
      }).pipe(Effect.provide(capture))
    }, 60_000)
  })
}
