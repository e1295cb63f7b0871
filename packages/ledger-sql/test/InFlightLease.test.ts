// `keepAlive`: a process says its refunds' first calls are still out, and recovery anywhere on the
// ledger leaves them `requested` until that lease runs out, however long ago they were claimed.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import { Effect } from "effect"
import { memory, pg, sqlite, sqliteOnClient } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

const leaseMillis = 1500
const iso = (millis: number) => new Date(millis).toISOString()

const keepAliveOf = (ledger: Ledger.Ledger.Service) => {
  assert.isDefined(ledger.keepAlive, "the ledger leases refunds in flight")
  return ledger.keepAlive!
}

const leasedOf = (ledger: Ledger.Ledger.Service) => {
  assert.isDefined(ledger.leased, "the ledger tells which refunds are leased")
  return ledger.leased!
}

for (const harness of [memory, sqlite, sqliteOnClient, pg]) {
  describe(`in-flight leases on ${harness.name}`, () => {
    // Timed by the real clock: PostgreSQL times leases by its own `now()`, which a test cannot move.
    it.scopedLive("a leased refund is not recovered however old, and is once its lease has run out", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const live = draft("live", { n: 0 })
        const dead = draft("dead", { n: 1 })
        yield* ledger.claim(live)
        yield* ledger.claim(dead)
        const leasedAt = Date.now()
        yield* keepAliveOf(ledger)({ ids: [live.id], at: iso(leasedAt), forMillis: leaseMillis })
        assert.deepStrictEqual(yield* leasedOf(ledger)({ ids: [live.id, dead.id], at: iso(Date.now()) }), [live.id])
        // Both were claimed in 2024: by the grace alone, both are due.
        const first = yield* ledger.recover({ olderThan: iso(Date.now()), at: iso(Date.now()) })
        assert.isBelow(Date.now() - leasedAt, leaseMillis, "the first recovery ran within the lease")
        assert.deepStrictEqual(first.map((r) => r.idempotencyKey), ["dead"], "the unleased refund is recovered, the leased one is not")
        assert.strictEqual((yield* ledger.get(live.id)).status, "requested")

        yield* Effect.sleep(leaseMillis + 300)
        assert.deepStrictEqual(yield* leasedOf(ledger)({ ids: [live.id, dead.id], at: iso(Date.now()) }), [], "the lease has run out")
        const second = yield* ledger.recover({ olderThan: iso(Date.now()), at: iso(Date.now()) })
        assert.deepStrictEqual(second.map((r) => [r.idempotencyKey, r.status]), [["live", "unknown"]])
      }), 30_000)

    it.scopedLive("a lease renews only refunds still requested, and names none it does not know", () =>
      Effect.gen(function*() {
        const ledger = yield* harness.fresh
        const answered = draft("answered")
        yield* ledger.claim(answered)
        yield* ledger.transition(answered.id, { to: "pending", source: "submit", at: at(1), providerStatus: "OPEN" })
        yield* keepAliveOf(ledger)({ ids: [answered.id, "rfd_unknown_to_this_ledger"], at: iso(Date.now()), forMillis: 60_000 })
        yield* keepAliveOf(ledger)({ ids: [], at: iso(Date.now()), forMillis: 60_000 })
        const after = yield* ledger.get(answered.id)
        assert.strictEqual(after.status, "pending")
        assert.strictEqual(after.updatedAt, at(1), "a lease is not an update of the refund")
      }))
  })
}

describe("in-flight leases on PostgreSQL", () => {
  // Gateways on several machines share a PostgreSQL ledger, and their clocks disagree: a recovering
  // process whose clock runs ten minutes ahead of the owner's must not see its lease as expired.
  it.scopedLive("are timed by the database's clock, not by the recovering process's", () =>
    Effect.gen(function*() {
      const ledger = yield* pg.fresh
      const refund = draft("skewed")
      yield* ledger.claim(refund)
      yield* keepAliveOf(ledger)({ ids: [refund.id], at: iso(Date.now()), forMillis: 60_000 })
      const ahead = Date.now() + 10 * 60_000
      assert.deepStrictEqual(yield* ledger.recover({ olderThan: iso(ahead - 120_000), at: iso(ahead) }), [])
      assert.deepStrictEqual(yield* leasedOf(ledger)({ ids: [refund.id], at: iso(ahead) }), [refund.id])
      assert.strictEqual((yield* ledger.get(refund.id)).status, "requested")
    }))
})
