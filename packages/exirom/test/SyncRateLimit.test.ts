import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import { ConfigProvider, Context, Effect, Layer, Schedule } from "effect"
import { Exirom } from "../src/index.js"
import * as ExiromSandbox from "../src/sandbox.js"

describe("status queries and the rate limit", () => {
  it.scopedLive("syncs take their turn of REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE like submits", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000 })
      const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...sandbox.env, REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE: "3" }))))
      const refunds = Context.get(
        yield* Layer.build(Refunds.layer({ callTimeout: "10 seconds", retrySchedule: Schedule.recurs(0), maxRetryAfter: "1 second", maxRateLimitWait: "200 millis" }).pipe(
          Layer.provideMerge(Layer.provideMerge(Exirom.layerConfig.pipe(Layer.provide(config)), Providers.layer)),
          Layer.provideMerge(Ledger.layerMemory),
          Layer.provide(NodeHttpClient.layerUndici)
        )),
        Refunds.Refunds
      )
      for (let i = 0; i < 3; i++) {
        yield* refunds.create({ provider: "exirom", idempotencyKey: `rl-${i}`, request: { transactionId: 2_000_000 + i, amount: "1.00", reason: "customer_request" } })
      }
      // The minute's 3 calls are spent: a sweep must not send 3 more.
      const results = yield* refunds.syncDue({ limit: 50 })
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["info"] ?? 0, 0, `info lookups beyond the limit: ${JSON.stringify(stats.requests)}`)
      assert.isTrue(results.every((r) => r.error?.code === "provider_unavailable"))
    }), 20_000)
})
