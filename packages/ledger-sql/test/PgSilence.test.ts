// A PostgreSQL connection that goes silent (a failover that leaves the old server's
// connections without a reset) under the one-statement writes: the write fails, in doubt,
// after `writeTimeoutMillis`, its connection is dropped, and the next write goes out on a
// new one. Before, the write waited for as long as TCP kept the connection, and with it
// every later claim of the process (the group commit sends one batch of a kind at a time).
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"
import { silentProxy } from "./support/silentProxy.js"

const plain = (key: string) => draft(key, { currency: "EUR", amount: "5.00", targets: [{ target: `pay-${key}`, amount: "5.00" }] })

/** `effect`'s exit, or a failure of the test when it had not ended after 20 s (the old code never did). */
const ended = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
  effect.pipe(
    Effect.exit,
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`${what} had not ended after 20 s`) }),
    Effect.orDie
  )

describe("PostgreSQL: a connection that goes silent under a one-statement write", () => {
  it.scopedLive("the claim or change fails as a LedgerError, and the next goes out on a new connection", () =>
    Effect.gen(function*() {
      const proxy = yield* silentProxy
      const url = proxy.through(yield* pgSchema)
      // One connection, so the write after the silence can only go out on a new one.
      const ledger = yield* build(SqlLedger.layerPg(url, { maxConnections: 1, writeTimeoutMillis: 500 }))
      const first = yield* ledger.claim(plain("silent-1"))
      assert.strictEqual(first._tag, "Claimed")

      proxy.silence()
      const lost = yield* ended("the claim on the silent connection", ledger.claim(plain("silent-2")))
      assert.isTrue(Exit.isFailure(lost), String(lost))
      if (Exit.isFailure(lost)) assert.include(String(lost.cause), "LedgerError")
      // The batch never reached the server: the key is free, and claimed on a new connection.
      const again = yield* ended("the claim after the silence", ledger.claim(plain("silent-2")))
      assert.isTrue(Exit.isSuccess(again) && again.value._tag === "Claimed", String(again))

      // A change to a refund the ledger remembers: the same.
      proxy.silence()
      const change = { to: "pending" as const, source: "submit" as const, at: at(1), providerReference: "R-1" }
      const failed = yield* ended("the change on the silent connection", ledger.transition(first.refund.id, change))
      assert.isTrue(Exit.isFailure(failed), String(failed))
      if (Exit.isFailure(failed)) assert.include(String(failed.cause), "LedgerError")
      const moved = yield* ended("the change after the silence", ledger.transition(first.refund.id, change))
      assert.isTrue(Exit.isSuccess(moved) && moved.value.status === "pending", String(moved))
    }), { timeout: 90_000 })
})
