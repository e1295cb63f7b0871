import { assert, describe, it } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Deferred, Effect, Fiber, Redacted } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql } from "./support/databases.js"
import { draft, partial } from "./support/refunds.js"
import { eventually } from "@refundkit/testkit/Waiting"

describe("PostgreSQL list cursor", () => {
  it.scopedLive("a guarded claim that waited on its target's lock is not placed behind a cursor already handed out", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      const other = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
      yield* ledger.claim(draft("d-first", { n: 1 }))
      yield* ledger.claim(partial("warm", "pay-9", "1.00", "1000.00", 1)) // creates the lock row for pay-9
      // Another claim on pay-9 holds its lock until the first page is read: the guarded claim below waits on it.
      const locked = yield* Deferred.make<number>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(other.withTransaction(Effect.gen(function*() {
        yield* other`SELECT 1 FROM refund_target_locks WHERE target = 'pay-9' FOR UPDATE`
        const [backend] = yield* other<{ pid: number }>`SELECT pg_backend_pid() AS pid`
        yield* Deferred.succeed(locked, backend!.pid)
        yield* Deferred.await(release)
      })))
      const holderPid = yield* Deferred.await(locked)
      const waiting = yield* Effect.fork(ledger.claim(partial("a-waits", "pay-9", "1.00", "1000.00", 2)))
      const watcher = yield* rawSql(url)
      yield* eventually(
        watcher<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${holderPid} = ANY(pg_blocking_pids(pid))`.pipe(
          Effect.map(([row]) => row!.n > 0)
        ),
        "the guarded claim waits on the target's lock"
      )
      yield* ledger.claim(draft("b-later", { n: 3 }))
      // A walk of two pages of two, while the guarded claim waits.
      const page1 = yield* ledger.list({ limit: 2 })
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(waiting)
      const page2 = yield* ledger.list({ limit: 2, cursor: page1.nextCursor })
      const walked = [...page1.items, ...page2.items].map((r) => r.idempotencyKey)
      const all = (yield* ledger.list({ limit: 100 })).items.map((r) => r.idempotencyKey)
      const last = all.indexOf(walked.at(-1)!)
      const skipped = all.slice(0, last + 1).filter((key) => !walked.includes(key) && all.indexOf(key) > all.indexOf(walked[0]!))
      assert.deepStrictEqual(skipped, [], `walked ${walked.join(", ")}; newest first now: ${all.join(", ")}`)
    }), { timeout: 20_000 })
})
