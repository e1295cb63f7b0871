import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ExiromSandbox from "../src/sandbox.js"
import { stack } from "./support/stack.js"

describe("CHARGEBACK, final at Exirom", () => {
  it.scopedLive("the refund is requires_action and syncDue asks Exirom about it once, not on every pass", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
      const { ledger, refunds } = yield* stack(sandbox.env)
      const info = Effect.map(sandbox.stats, (s) => s.requests["info"] ?? 0)
      const { refund } = yield* refunds.create({ provider: "exirom", idempotencyKey: "cb", request: { transactionId: 30004, amount: "5.00", reason: "x" } })
      // One recorded CHARGEBACK before refundkit knew the word was final: as an older version left it.
      const { refund: older } = yield* refunds.create({ provider: "exirom", idempotencyKey: "cb-older", request: { transactionId: 30004, amount: "1.00", reason: "x" } })
      yield* ledger.transition(older.id, { to: "requires_action", source: "sync", at: new Date().toISOString(), providerStatus: "CHARGEBACK" })
      yield* sandbox.settle

      const first = yield* refunds.syncDue({ limit: 10 })
      assert.sameMembers(first.map((r) => r.refundId), [refund.id, older.id])
      for (const id of [refund.id, older.id]) {
        const synced = yield* refunds.get(id)
        assert.strictEqual(synced.status, "requires_action")
        assert.strictEqual(synced.providerStatus, "CHARGEBACK")
        assert.strictEqual(synced.providerFinal, true)
        assert.include(synced.events.at(-1)?.detail, "reconcile and resolve this refund by hand")
      }
      assert.strictEqual(yield* info, 2)
      for (let pass = 0; pass < 5; pass++) assert.deepStrictEqual(yield* refunds.syncDue({ limit: 10 }), [], `pass ${pass}`)
      assert.strictEqual(yield* info, 2, "five more passes asked Exirom nothing")
    }))
})
