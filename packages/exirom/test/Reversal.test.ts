// A FAILED after Exirom's own SUCCEED: the refund Exirom made did not reach the cardholder and the money is back
// with the merchant (a reversal; Exirom's docs do not describe one, the sandbox simulates it). The refund moves to
// requires_action with the payment still held (it was refused as a move out of a final status and the refund kept
// saying succeeded); a person settles it, and the same FAILED again changes nothing.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ExiromSandbox from "../src/sandbox.js"
import { listener } from "./support/listener.js"
import { stack } from "./support/stack.js"

// 200.00 of payment 20001's 250.00 EUR.
const request = (key: string, amount = "200.00", callbackUrl?: string) => ({
  provider: "exirom",
  idempotencyKey: key,
  request: { transactionId: 20001, amount, reason: "customer_request", currency: "EUR", ...(callbackUrl === undefined ? {} : { callbackUrl }) },
  originalAmounts: { "20001": "250.00" }
})

describe("FAILED after Exirom's own SUCCEED", () => {
  it.scopedLive("a sync records it as requires_action, the payment still held; resolve failed keeps it held until --release-targets", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
      const { refunds } = yield* stack(sandbox.env)
      const { refund } = yield* refunds.create(request("made"))
      yield* sandbox.settle
      const made = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([made.status, made.providerStatus], ["succeeded", "SUCCEED"])
      yield* sandbox.reverse(made.providerReference!)

      const reversed = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([reversed.status, reversed.providerStatus, reversed.providerFinal], ["requires_action", "FAILED", true])
      assert.deepInclude(reversed.events.at(-1), { source: "sync", from: "succeeded", to: "requires_action", accepted: true, providerStatus: "FAILED" })
      assert.strictEqual(
        reversed.events.at(-1)!.detail,
        `exirom reported FAILED (declined (2): REJECTED_BY_ISSUER_BANK_ERROR) to a status query after it had reported SUCCEED to a status query at ${made.updatedAt}: ` +
          "the refund may have been reversed and the customer not repaid, and its targets stay held; check with exirom and settle it with refundkit resolve: " +
          "succeeded if the refund stands, or failed --release-targets if exirom confirms the reversal, which lets its targets be refunded again"
      )
      assert.deepInclude(reversed.error, { code: "provider_declined", providerCode: "2" })
      // Still 200.00 of 250.00 refunded as far as the guard counts, though Exirom would take 250.00 again.
      const over = yield* Effect.flip(refunds.create(request("second", "50.01")))
      assert.strictEqual(over._tag, "OverRefund")
      assert.deepStrictEqual(yield* refunds.syncDue({ limit: 10 }), [], "a word Exirom calls final is not asked about by sync loops")
      const info = (yield* sandbox.stats).requests["info"] ?? 0
      assert.deepStrictEqual(yield* refunds.sync(refund.id), reversed, "FAILED again, asked by hand, records nothing")
      assert.strictEqual((yield* sandbox.stats).requests["info"], info + 1)

      const failed = yield* refunds.resolve(refund.id, "failed", "operator: Exirom confirmed; the customer is repaid by bank transfer")
      assert.deepStrictEqual([failed.status, failed.holdsTarget], ["failed", true])
      assert.strictEqual((yield* Effect.flip(refunds.create(request("third", "50.01"))))._tag, "OverRefund", "failed alone keeps the payment held")
      assert.deepStrictEqual(yield* refunds.sync(refund.id), failed, "FAILED again does not drop the hold")

      const released = yield* refunds.resolve(refund.id, "failed", "operator: refund it again", { releaseTargets: true })
      assert.deepStrictEqual([released.status, released.holdsTarget], ["failed", undefined])
      assert.strictEqual(released.events.at(-1)!.detail, "operator: refund it again (targets released: exirom took this refund back after it had made it)")
      const again = yield* refunds.create(request("fourth", "250.00"))
      assert.strictEqual(again.refund.status, "pending", "the whole payment is refunded again, and Exirom takes it")
    }))

  it.scopedLive("a callback records it once; resolved succeeded, the same callback and a sync change nothing", () =>
    Effect.gen(function*() {
      const endpoint = yield* listener
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000, callbacks: { delayMillis: 0, duplicates: 1 } })
      const { refunds } = yield* stack(sandbox.env)
      const { refund } = yield* refunds.create(request("hooked", "200.00", endpoint.url))
      yield* sandbox.settle
      const applied = (callbacks: ReadonlyArray<{ headers: Record<string, string>; body: string }>) =>
        Effect.forEach(callbacks, (callback) => Effect.map(refunds.webhook("exirom", callback), (results) => [results[0]!.applied, results[0]!.reason]))
      assert.deepStrictEqual(yield* applied(yield* endpoint.waitFor(2)), [[true, undefined], [false, "duplicate callback"]])
      const made = yield* refunds.get(refund.id)
      assert.strictEqual(made.status, "succeeded")

      yield* sandbox.reverse(made.providerReference!)
      const reversals = (yield* endpoint.waitFor(4)).slice(2)
      assert.deepStrictEqual(yield* applied(reversals), [[true, undefined], [false, "duplicate callback"]])
      const reversed = yield* refunds.get(refund.id)
      assert.deepStrictEqual([reversed.status, reversed.providerStatus], ["requires_action", "FAILED"])
      assert.strictEqual(
        reversed.events.at(-1)!.detail,
        `exirom reported FAILED (declined (2): REJECTED_BY_ISSUER_BANK_ERROR) in a callback after it had reported SUCCEED in a callback at ${made.updatedAt}: ` +
          "the refund may have been reversed and the customer not repaid, and its targets stay held; check with exirom and settle it with refundkit resolve: " +
          "succeeded if the refund stands, or failed --release-targets if exirom confirms the reversal, which lets its targets be refunded again " +
          "(Exirom's callback, confirmed by its refund info: transactionStatus FAILED, declineCode 2 (REJECTED_BY_ISSUER_BANK_ERROR))"
      )
      assert.strictEqual(reversed.events.at(-1)!.callbackKey, "20001:FAILED")
      // A sync after the callback hears the same FAILED: it would make the refund failed and free the payment.
      assert.deepStrictEqual(yield* refunds.sync(refund.id), reversed)

      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: Exirom says the refund stands")
      assert.deepStrictEqual([settled.status, settled.error], ["succeeded", undefined])
      assert.deepStrictEqual(yield* applied(reversals), [[false, "duplicate callback"], [false, "duplicate callback"]])
      assert.deepStrictEqual(yield* refunds.sync(refund.id), settled)
      assert.deepStrictEqual(yield* refunds.get(refund.id), settled, "nothing recorded, not even a refused event")
    }))

  it.scopedLive("seen by a sync first, its callback repeats the word a person is to settle, and after the verdict the word it settled", () =>
    Effect.gen(function*() {
      const endpoint = yield* listener
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000, callbacks: { delayMillis: 0 } })
      const { refunds } = yield* stack(sandbox.env)
      const { refund } = yield* refunds.create(request("synced", "200.00", endpoint.url))
      yield* sandbox.settle
      yield* endpoint.waitFor(1)
      const made = yield* refunds.sync(refund.id)
      yield* sandbox.reverse(made.providerReference!)
      const [, reversal] = yield* endpoint.waitFor(2)
      const reversed = yield* refunds.sync(refund.id)
      assert.strictEqual(reversed.status, "requires_action")

      const [held] = yield* refunds.webhook("exirom", reversal!)
      assert.deepStrictEqual(
        [held!.applied, held!.reason],
        [false, `FAILED repeats what exirom said at ${reversed.updatedAt}, which holds the refund in requires_action until a person settles it with refundkit resolve`]
      )
      assert.deepStrictEqual(yield* refunds.get(refund.id), reversed)

      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: Exirom says the refund stands")
      const [late] = yield* refunds.webhook("exirom", reversal!)
      assert.deepStrictEqual([late!.applied, late!.reason], [false, `FAILED repeats what exirom said before an operator recorded succeeded at ${settled.updatedAt}`])
      assert.deepStrictEqual(yield* refunds.get(refund.id), settled, "nothing recorded, not even a refused event")
    }))
})
