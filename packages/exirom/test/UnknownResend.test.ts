import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as ExiromSandbox from "../src/sandbox.js"
import { stack } from "./support/stack.js"
import { proxy } from "./support/proxy.js"

/** The plugin against `baseUrl` (the sandbox, or a proxy in front of it), behind core's Refunds and an in-memory ledger. */
const stackFor = (sandbox: ExiromSandbox.ExiromSandbox, options: { readonly baseUrl?: string; readonly callTimeout: Duration.DurationInput; readonly retries: number }) =>
  Effect.gen(function*() {
    const retrySchedule = Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(options.retries)))
    const env = { ...sandbox.env, REFUNDKIT_EXIROM_BASE_URL: options.baseUrl ?? sandbox.baseUrl }
    return (yield* stack(env, { callTimeout: options.callTimeout, retrySchedule, maxRetryAfter: "1 second" })).refunds
  })

// A refund of 1.00 against `transactionId` whose first attempt hangs before Exirom looks at it: left unknown.
const timedOut = (transactionId: number, idempotencyKey: string) =>
  Effect.gen(function*() {
    const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000 })
    const refunds = yield* stackFor(sandbox, { callTimeout: "3 seconds", retries: 0 })
    yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 8000 }, route: "refund" })
    const error = yield* Effect.flip(refunds.create({ provider: "exirom", idempotencyKey, request: { transactionId, amount: "1.00", reason: "customer_request" } }))
    assert.strictEqual(error._tag, "OutcomeUnknown")
    return { sandbox, refunds, id: (error as { refundId?: string }).refundId! }
  })

describe("a resend of an Exirom refund that may have taken effect", () => {
  it.scopedLive("a retry after a lost answer that a proxy answers 404 leaves the refund unknown, not failed; a sync past the proxy settles it", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000 })
      const front = yield* proxy(sandbox.url)
      const refunds = yield* stackFor(sandbox, { baseUrl: `${front.url}/api`, callTimeout: "3 seconds", retries: 2 })
      // The first attempt refunds at Exirom and its answer is lost; the retry never reaches Exirom: the proxy answers 404.
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "refund", times: 1 })
      front.notFound = (seen) => seen.method === "POST" && seen.path.endsWith("/v1/refunds/card") && seen.refundPosts === 2
      const inDoubt = yield* Effect.flip(refunds.create({
        provider: "exirom",
        idempotencyKey: "behind-a-proxy",
        request: { transactionId: 20001, amount: "200.00", reason: "customer_request", currency: "EUR" }
      }))
      assert.strictEqual(inDoubt._tag, "OutcomeUnknown", inDoubt.message)
      assert.include(inDoubt.message, "HTTP 404")
      const id = (inDoubt as { refundId?: string }).refundId!
      const stored = yield* refunds.get(id)
      assert.strictEqual(stored.status, "unknown", "a 404 on the retry does not prove the first attempt was never taken")
      assert.strictEqual(stored.error?.code, "outcome_unknown")
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 1, "Exirom did refund the first attempt")
      assert.strictEqual(stats.requests["refund"], 1, "the retry never reached Exirom")

      // With the path healthy again, the sync resends the same requestId and gets Exirom's original answer.
      front.notFound = () => false
      const synced = yield* refunds.sync(id)
      assert.strictEqual(synced.status, "pending")
      assert.isString(synced.providerReference)
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1, "the resend replayed, it did not refund again")
    }), 30_000)

  it.scopedLive("a sync's resend answered 404 keeps the refund in doubt (a wrong path answers 404 too); an operator settles it", () =>
    Effect.gen(function*() {
      const { id, refunds, sandbox } = yield* timedOut(42, "typo-42")
      assert.strictEqual((yield* refunds.get(id)).status, "unknown")
      // Exirom has no payment 42 and answers the resend 404; so would a proxy, whatever Exirom holds.
      const refused = yield* Effect.flip(refunds.sync(id))
      assert.strictEqual(refused._tag, "OutcomeUnknown", refused.message)
      assert.include(refused.message, `ask Exirom whether it holds requestId ${id}`)
      assert.strictEqual((yield* refunds.get(id)).status, "unknown", "not failed: failed would free the payment for another refund")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 0)
      const resolved = yield* refunds.resolve(id, "failed", "Exirom support: no refund with this requestId")
      assert.strictEqual(resolved.status, "failed")
    }), 30_000)

  it.scopedLive("a sync's resend refused 422 still settles the refund failed: Exirom refuses the same payload the same way", () =>
    Effect.gen(function*() {
      // 30002 is PROCESSING: not refundable, which Exirom answers 422.
      const { id, refunds } = yield* timedOut(30002, "processing")
      const synced = yield* refunds.sync(id)
      assert.strictEqual(synced.status, "failed")
      assert.strictEqual(synced.error?.providerCode, "HTTP_422")
      assert.deepStrictEqual(yield* refunds.syncDue({ limit: 10 }), [], "nothing left for the sync loop to resend")
    }), 30_000)
})
