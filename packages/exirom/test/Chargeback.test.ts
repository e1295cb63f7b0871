import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ExiromSandbox from "../src/sandbox.js"
import { listener } from "./support/listener.js"
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

// A CHARGEBACK after Exirom's own SUCCEED: the cardholder disputed a refund Exirom made and won, and may have
// been repaid twice. The refund moves to requires_action for a person (it was refused as a move out of a final
// status, and `sync` ended on advice `resolve` refused); the person's verdict stands against the same word again.
describe("CHARGEBACK after Exirom's own SUCCEED", () => {
  const request = (callbackUrl?: string) => ({
    provider: "exirom",
    idempotencyKey: callbackUrl === undefined ? "made" : "made-hooked",
    request: { transactionId: 20001, amount: "200.00", reason: "customer_request", currency: "EUR", ...(callbackUrl === undefined ? {} : { callbackUrl }) },
    originalAmounts: { "20001": "250.00" }
  })

  it.scopedLive("a sync records it, the payment stays held, a verdict settles it, and a sync asking again changes nothing", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
      const { refunds } = yield* stack(sandbox.env)
      const { refund } = yield* refunds.create(request())
      yield* sandbox.settle
      const made = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([made.status, made.providerStatus], ["succeeded", "SUCCEED"])
      yield* sandbox.chargeBack(made.providerReference!)

      const charged = yield* refunds.sync(refund.id)
      assert.deepStrictEqual([charged.status, charged.providerStatus, charged.providerFinal], ["requires_action", "CHARGEBACK", true])
      assert.deepInclude(charged.events.at(-1), { source: "sync", from: "succeeded", to: "requires_action", accepted: true, providerStatus: "CHARGEBACK" })
      assert.strictEqual(
        charged.events.at(-1)!.detail,
        `exirom reported CHARGEBACK to a status query after it had reported SUCCEED to a status query at ${made.updatedAt}: ` +
          "the refund it made is charged back or disputed, and the customer may have been repaid twice; check with exirom and settle it with refundkit resolve " +
          "(Exirom reports CHARGEBACK: the cardholder may also have been repaid through a dispute; reconcile and resolve this refund by hand)"
      )
      // Still 200.00 of 250.00 refunded as far as the guard counts.
      const over = yield* Effect.flip(refunds.create({ ...request(), idempotencyKey: "second", request: { ...request().request, amount: "50.01" } }))
      assert.strictEqual(over._tag, "OverRefund")
      if (over._tag === "OverRefund") assert.strictEqual(over.remaining, "50.00")
      assert.deepStrictEqual(yield* refunds.syncDue({ limit: 10 }), [], "a word Exirom calls final is not asked about by sync loops")

      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: the dispute is Exirom's to recover; the refund stands")
      assert.deepStrictEqual([settled.status, settled.events.at(-1)!.source, settled.events.at(-1)!.from], ["succeeded", "operator", "requires_action"])
      const info = (yield* sandbox.stats).requests["info"] ?? 0
      assert.deepStrictEqual(yield* refunds.sync(refund.id), settled, "CHARGEBACK again is the word the verdict settled")
      assert.strictEqual((yield* sandbox.stats).requests["info"], info + 1, "Exirom was asked, and its answer recorded nothing")
      assert.strictEqual((yield* Effect.flip(refunds.create({ ...request(), idempotencyKey: "third", request: { ...request().request, amount: "50.01" } })))._tag, "OverRefund")
    }))

  it.scopedLive("a callback records it once, however often Exirom sends it; resolved, the same callback again changes nothing", () =>
    Effect.gen(function*() {
      const endpoint = yield* listener
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000, callbacks: { delayMillis: 0, duplicates: 1 } })
      const { refunds } = yield* stack(sandbox.env)
      const { refund } = yield* refunds.create(request(endpoint.url))
      yield* sandbox.settle
      const succeed = yield* endpoint.waitFor(2)
      const applied = (callbacks: ReadonlyArray<{ headers: Record<string, string>; body: string }>) =>
        Effect.forEach(callbacks, (callback) => Effect.map(refunds.webhook("exirom", callback), (results) => [results[0]!.applied, results[0]!.reason]))
      assert.deepStrictEqual(yield* applied(succeed), [[true, undefined], [false, "duplicate callback"]])
      const made = yield* refunds.get(refund.id)
      assert.strictEqual(made.status, "succeeded")

      const deliveries = yield* sandbox.chargeBack(made.providerReference!)
      assert.deepStrictEqual(deliveries.map((d) => d.transactionStatus), ["CHARGEBACK", "CHARGEBACK"])
      const chargebacks = (yield* endpoint.waitFor(4)).slice(2)
      assert.deepStrictEqual(yield* applied(chargebacks), [[true, undefined], [false, "duplicate callback"]])
      const charged = yield* refunds.get(refund.id)
      assert.deepStrictEqual([charged.status, charged.providerStatus, charged.providerFinal], ["requires_action", "CHARGEBACK", true])
      assert.strictEqual(
        charged.events.at(-1)!.detail,
        `exirom reported CHARGEBACK in a callback after it had reported SUCCEED in a callback at ${made.updatedAt}: ` +
          "the refund it made is charged back or disputed, and the customer may have been repaid twice; check with exirom and settle it with refundkit resolve " +
          "(Exirom's callback, confirmed by its refund info: transactionStatus CHARGEBACK. " +
          "Exirom reports CHARGEBACK: the cardholder may also have been repaid through a dispute; reconcile and resolve this refund by hand)"
      )
      assert.strictEqual(charged.events.at(-1)!.callbackKey, "20001:CHARGEBACK")
      assert.deepStrictEqual(charged.events.filter((e) => e.source === "webhook").map((e) => e.callbackKey), ["20001:SUCCEED", "20001:CHARGEBACK"])

      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: the refund stands")
      // Exirom retries a callback until it is answered 2xx: the same one again is still a duplicate.
      assert.deepStrictEqual(yield* applied(chargebacks), [[false, "duplicate callback"], [false, "duplicate callback"]])
      assert.deepStrictEqual(yield* refunds.get(refund.id), settled)
    }))

  it.scopedLive("seen by a sync first, then resolved, its callback arriving late repeats what the verdict settled", () =>
    Effect.gen(function*() {
      const endpoint = yield* listener
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000, callbacks: { delayMillis: 0 } })
      const { refunds } = yield* stack(sandbox.env)
      const { refund } = yield* refunds.create(request(endpoint.url))
      yield* sandbox.settle
      yield* endpoint.waitFor(1)
      const made = yield* refunds.sync(refund.id)
      yield* sandbox.chargeBack(made.providerReference!)
      const [succeed, chargeback] = yield* endpoint.waitFor(2)
      assert.strictEqual((yield* refunds.sync(refund.id)).status, "requires_action")
      const settled = yield* refunds.resolve(refund.id, "succeeded", "operator: the refund stands")

      // Both callbacks are confirmed with Exirom, which says CHARGEBACK for each by now.
      for (const callback of [chargeback!, succeed!]) {
        const [result] = yield* refunds.webhook("exirom", callback)
        assert.deepStrictEqual(
          [result!.applied, result!.reason],
          [false, `CHARGEBACK repeats what exirom said before an operator recorded succeeded at ${settled.updatedAt}`]
        )
      }
      assert.deepStrictEqual(yield* refunds.get(refund.id), settled, "nothing recorded, not even a refused event")
    }))
})
