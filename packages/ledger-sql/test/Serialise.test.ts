// A refund's turn on PostgreSQL (`serialise`): one holder at a time across ledgers sharing
// the database, what a turn records is kept whatever the turn's outcome, and a turn's own
// reads and writes need no second connection.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import { Effect, Fiber } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

const turnOf = (ledger: Ledger.Ledger.Service) => {
  const serialise = ledger.serialise
  assert.isDefined(serialise, "a PostgreSQL ledger serialises refund turns")
  return serialise!
}

describe("PostgreSQL refund turns (serialise)", () => {
  it.scopedLive("a second ledger's turn on the same refund waits, then reads what the first recorded", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const one = yield* build(SqlLedger.layerPg(url))
      const two = yield* build(SqlLedger.layerPg(url))
      const refund = draft("turn-order")
      yield* one.claim(refund)
      const first = yield* Effect.fork(turnOf(one)(
        refund.id,
        Effect.zipRight(Effect.sleep("300 millis"), one.transition(refund.id, { to: "pending", source: "operator", at: at(1), providerStatus: "FIRST" }))
      ))
      yield* Effect.sleep("100 millis")
      const seen = yield* turnOf(two)(refund.id, two.get(refund.id))
      assert.strictEqual(seen.providerStatus, "FIRST", "the second turn ran before the first had finished")
      yield* Fiber.join(first)
    }))

  it.scopedLive("turns on different refunds do not wait for each other", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const one = yield* build(SqlLedger.layerPg(url))
      const two = yield* build(SqlLedger.layerPg(url))
      yield* one.claim(draft("turn-a"))
      yield* one.claim(draft("turn-b"))
      const held = yield* Effect.fork(turnOf(one)(draft("turn-a").id, Effect.sleep("2 seconds")))
      yield* Effect.sleep("100 millis")
      const other = yield* turnOf(two)(draft("turn-b").id, two.get(draft("turn-b").id)).pipe(Effect.timeout("1 second"), Effect.either)
      assert.isTrue(other._tag === "Right", "a turn on another refund waited")
      yield* Fiber.interrupt(held)
    }))

  it.scopedLive("a turn that fails keeps what it recorded; on a pool of one connection it needs no other", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url, { maxConnections: 1 }))
      const reader = yield* build(SqlLedger.layerPg(url))
      const refund = draft("turn-fails")
      yield* ledger.claim(refund)
      const failed = yield* turnOf(ledger)(
        refund.id,
        Effect.gen(function*() {
          const current = yield* ledger.get(refund.id)
          yield* ledger.transition(current.id, { to: "pending", source: "operator", at: at(1), providerStatus: "IN_DOUBT", detail: "may have been applied" })
          return yield* Effect.fail("the caller's error" as const)
        })
      ).pipe(Effect.timeout("5 seconds"), Effect.flip)
      assert.strictEqual(failed, "the caller's error")
      const after = yield* reader.get(refund.id)
      assert.strictEqual(after.providerStatus, "IN_DOUBT")
      assert.strictEqual(after.events.at(-1)?.detail, "may have been applied")
    }))
})
