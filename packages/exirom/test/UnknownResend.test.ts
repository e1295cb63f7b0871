import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import { ConfigProvider, Context, Effect, Layer, Schedule } from "effect"
import { Exirom } from "../src/index.js"
import * as ExiromSandbox from "../src/sandbox.js"

describe("syncing an Exirom refund in doubt", () => {
  it.scopedLive("a resend Exirom refuses (unknown transaction) settles the refund failed instead of leaving it unknown for ever", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000 })
      const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(sandbox.env))))
      const refunds = Context.get(
        yield* Layer.build(Refunds.layer({ callTimeout: "3 seconds", retrySchedule: Schedule.recurs(0), maxRetryAfter: "1 second" }).pipe(
          Layer.provideMerge(Layer.provideMerge(Exirom.layerConfig.pipe(Layer.provide(config)), Providers.layer)),
          Layer.provideMerge(Ledger.layerMemory),
          Layer.provide(NodeHttpClient.layerUndici)
        )),
        Refunds.Refunds
      )
      // The first attempt hangs before Exirom looks at it: the refund is unknown.
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 8000 }, route: "refund" })
      const timedOut = yield* Effect.flip(refunds.create({ provider: "exirom", idempotencyKey: "typo-42", request: { transactionId: 42, amount: "1.00", reason: "customer_request" } }))
      assert.strictEqual(timedOut._tag, "OutcomeUnknown")
      const id = (timedOut as { refundId?: string }).refundId!
      assert.strictEqual((yield* refunds.get(id)).status, "unknown")
      // The sync resends it with the same requestId; Exirom has no such payment (404), so it never took it.
      const synced = yield* refunds.sync(id)
      assert.strictEqual(synced.status, "failed")
      assert.strictEqual(synced.error?.code, "provider_declined")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 0)
      assert.deepStrictEqual(yield* refunds.syncDue({ limit: 10 }), [], "nothing left for the sync loop to resend")
    }), 30_000)
})
