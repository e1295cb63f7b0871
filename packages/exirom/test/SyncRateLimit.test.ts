import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as ExiromSandbox from "../src/sandbox.js"
import { stack } from "./support/stack.js"
import { listener } from "./support/listener.js"

/** Core's Refunds over the plugin with REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE at `perMinute`; a call held back longer than 200 ms is refused. */
const limitedStack = (sandbox: ExiromSandbox.ExiromSandbox, perMinute: number, callTimeout: Duration.DurationInput = "10 seconds") =>
  Effect.gen(function*() {
    const env = { ...sandbox.env, REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE: String(perMinute) }
    return (yield* stack(env, { callTimeout, retrySchedule: Schedule.recurs(0), maxRetryAfter: "1 second", maxRateLimitWait: "200 millis" })).refunds
  })

describe("status queries and the rate limit", () => {
  it.scopedLive("syncs take their turn of REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE like submits", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000 })
      const refunds = yield* limitedStack(sandbox, 3)
      for (let i = 0; i < 3; i++) {
        yield* refunds.create({ provider: "exirom", idempotencyKey: `rl-${i}`, request: { transactionId: 2_000_000 + i, amount: "1.00", reason: "customer_request" } })
      }
      // The minute's 3 calls are spent: a sweep must not send 3 more.
      const results = yield* refunds.syncDue({ limit: 50 })
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["info"] ?? 0, 0, `info lookups beyond the limit: ${JSON.stringify(stats.requests)}`)
      assert.isTrue(results.every((r) => r.error?.code === "provider_unavailable"))
    }), 20_000)

  it.scopedLive("a callback's lookup at Exirom takes its turn too; a forged callback takes none", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0 } })
      const endpoint = yield* listener
      const refunds = yield* limitedStack(sandbox, 2)
      const { refund } = yield* refunds.create({
        provider: "exirom",
        idempotencyKey: "rl-webhook",
        request: { transactionId: 2_100_000, amount: "1.00", reason: "customer_request", callbackUrl: endpoint.url }
      })
      yield* sandbox.settle
      const [callback] = yield* endpoint.waitFor(1)
      // A forged callback is refused before any call: it must not spend the turn the genuine one needs.
      const forged = yield* Effect.flip(refunds.webhook("exirom", { ...callback!, headers: { ...callback!.headers, "x-checksum": "forged" } }))
      assert.strictEqual(forged._tag, "ProviderAuthFailed")
      const applied = yield* refunds.webhook("exirom", callback!)
      assert.isTrue(applied[0]!.applied)
      assert.strictEqual((yield* refunds.get(refund.id)).status, "succeeded")
      // The minute's 2 calls are spent (the submit and that lookup): the next callback's lookup is held back, not sent.
      const held = yield* Effect.flip(refunds.webhook("exirom", callback!))
      assert.strictEqual(held._tag, "ProviderUnavailable")
      assert.strictEqual(held._tag === "ProviderUnavailable" && held.maybeProcessed, false)
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["info"], 1, `lookups beyond the limit: ${JSON.stringify(stats.requests)}`)
    }), 20_000)

  it.scopedLive("a callback whose lookup at Exirom hangs is answered within the call timeout, as not processed", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0 } })
      const endpoint = yield* listener
      const refunds = yield* limitedStack(sandbox, 100, "500 millis")
      const { refund } = yield* refunds.create({
        provider: "exirom",
        idempotencyKey: "hung-lookup",
        request: { transactionId: 2_200_000, amount: "1.00", reason: "customer_request", callbackUrl: endpoint.url }
      })
      yield* sandbox.settle
      const [callback] = yield* endpoint.waitFor(1)
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 10_000 }, route: "info" })
      const started = Date.now()
      // Without a bound the gateway's request would wait as long as Exirom does; Exirom redelivers a callback it got no 2xx for.
      const hung = yield* Effect.flip(refunds.webhook("exirom", callback!)).pipe(Effect.timeout("5 seconds"))
      assert.isBelow(Date.now() - started, 4_000)
      assert.strictEqual(hung._tag, "ProviderUnavailable")
      assert.strictEqual(hung._tag === "ProviderUnavailable" && hung.maybeProcessed, false)
      assert.strictEqual((yield* refunds.get(refund.id)).status, "pending", "nothing recorded from a lookup that never answered")
    }), 20_000)
})
