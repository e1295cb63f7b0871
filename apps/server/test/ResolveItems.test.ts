// An Airalo refund is "accepted for review": pending per ICCID until Airalo decides by email. Here the
// verdict is recorded as `refundkit resolve --ledger <the gateway's ledger>` records it, through core's
// Refunds on the same ledger (the gateway's own route is Resolve.test.ts), and the gateway then answers
// the refund with its items settled.
import { assert, describe, it } from "@effect/vitest"
import { Providers, Refunds } from "@refundkit/core"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Context, Effect, Layer } from "effect"
import * as Gateway from "./support/Gateway.js"

describe("an Airalo refund resolved by an operator, read through the gateway", () => {
  it.scopedLive("its ICCIDs take the verdict, each keeping Airalo's accepted_for_review as its provider status", () =>
    Effect.gen(function*() {
      // Without Airalo's 1 call per 5 minutes: this test makes four.
      const gw = yield* Gateway.start({ airalo: { rateLimit: false } })
      const created = yield* gw.fetch("POST", "/v1/refunds", {
        body: { provider: "airalo", iccids: ["8910300000000000029", "8910300000000000037"], reason: "TRIP_CANCELLATION" },
        headers: { "idempotency-key": Gateway.key("airalo-review") }
      })
      assert.strictEqual(created.status, 201, created.text)
      assert.strictEqual(created.body.status, "pending")
      assert.deepStrictEqual(created.body.items.map((i: { status: string; providerStatus: string }) => [i.status, i.providerStatus]), [
        ["pending", "accepted_for_review"],
        ["pending", "accepted_for_review"]
      ])
      const refused = yield* gw.fetch("POST", "/v1/refunds", {
        body: Gateway.airaloRefund("8910300000000000045"),
        headers: { "idempotency-key": Gateway.key("airalo-refused") }
      })
      assert.strictEqual(refused.body.status, "pending", refused.text)

      // The operator's process: core's Refunds on the gateway's ledger file, no provider call.
      const operator = Context.get(
        yield* Layer.build(Refunds.layer().pipe(Layer.provide(Providers.layer), Layer.provide(LedgerSql.layerSqlite(gw.ledgerFile)))),
        Refunds.Refunds
      )
      yield* operator.resolve(created.body.id, "succeeded", "operator: credited, seen on GET /v2/balance")
      yield* operator.resolve(refused.body.id, "failed", "operator: Airalo refused it by email")

      const succeeded = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(succeeded.body.status, "succeeded")
      assert.deepStrictEqual(succeeded.body.items.map((i: { target: string; status: string; providerStatus: string }) => [i.target, i.status, i.providerStatus]), [
        ["8910300000000000029", "succeeded", "accepted_for_review"],
        ["8910300000000000037", "succeeded", "accepted_for_review"]
      ])
      const failed = yield* gw.fetch("GET", `/v1/refunds/${refused.body.id}`)
      assert.strictEqual(failed.body.status, "failed")
      assert.deepStrictEqual(failed.body.items.map((i: { status: string; providerStatus: string }) => [i.status, i.providerStatus]), [["failed", "accepted_for_review"]])
      const listed = yield* gw.fetch("GET", "/v1/refunds?provider=airalo&target=8910300000000000029")
      assert.strictEqual(listed.body.items[0].items[0].status, "succeeded", "a list answers the stored items too")

      // The verdicts hold the targets as before: the credited ICCID stays refunded, the refused one is free.
      const again = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.airaloRefund("8910300000000000029"), headers: { "idempotency-key": Gateway.key("again") } })
      assert.strictEqual(again.status, 409, again.text)
      assert.strictEqual(again.body.error.code, "target_already_refunded")
      const retried = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.airaloRefund("8910300000000000045"), headers: { "idempotency-key": Gateway.key("retried") } })
      assert.strictEqual(retried.status, 201, retried.text)
    }))
})
