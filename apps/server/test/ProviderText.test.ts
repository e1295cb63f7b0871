// A NUL character (U+0000) in what a provider says, through the gateway onto each ledger. PostgreSQL
// text cannot hold one, so core has one rule: free text (an item's message, a decline's reason) keeps
// it as U+FFFD and the answer is recorded; an identifier or status word with one is refused, and a
// callback event carrying one refuses only itself. The providers are scripted over real HTTP.
//
// Asserted through booleans wherever a value may hold a NUL: a failure message quoting one hangs
// vitest's reporter.
import { assert, describe, it } from "@effect/vitest"
import * as AirpaySandbox from "@refundkit/airpay/sandbox"
import { Ledger } from "@refundkit/core"
import type { ConfigurationError, LedgerError } from "@refundkit/core/RefundError"
import * as LedgerSql from "@refundkit/ledger-sql"
import { ScriptedServer } from "@refundkit/testkit"
import { Effect, type Layer, type Scope } from "effect"
import { createHmac } from "node:crypto"
import * as Gateway from "./support/Gateway.js"

const nul = "\u0000"

const ledgers: ReadonlyArray<{
  readonly name: string
  /** None: the gateway's own SQLite file. */
  readonly layer: Effect.Effect<Layer.Layer<Ledger.Ledger, LedgerError | ConfigurationError> | undefined, unknown, Scope.Scope>
}> = [
  { name: "memory", layer: Effect.succeed(Ledger.layerMemory) },
  { name: "SQLite", layer: Effect.succeed(undefined) },
  { name: "PostgreSQL", layer: Effect.map(Gateway.pgSchema, (url) => LedgerSql.layerPg(url)) }
]

const gateway = (ledger: (typeof ledgers)[number], env: Record<string, string>) =>
  Effect.flatMap(ledger.layer, (layer) => Gateway.start(layer === undefined ? { env } : { env, ledger: layer }))

// Airpay's envelope, unencrypted under `response` (the plugin reads both).
const airpayAnswer = (transaction: Record<string, unknown>) => ({
  body: { response: { status_code: "200", response_code: "00", status: "success", message: "success", data: { transactions: [transaction] } } }
})
const airpayScript = (...refund: ReadonlyArray<{ readonly body: unknown }>) => ({
  [`POST ${AirpaySandbox.basePath}/oauth2/`]: [{
    body: { response: { status_code: "200", response_code: "00", status: "success", message: "success", data: { access_token: "a".repeat(40), expires_in: "300", scope: null } } }
  }],
  [`POST ${AirpaySandbox.basePath}/refund/`]: refund
})

const exiromToken = { body: { token: "header.payload.signature" } }

// A callback as Exirom signs it: X-Checksum covers mid, amount, currency and transactionId only,
// over the amount as written (10.0).
const signedCallback = (refundId: string, requestId: string) => ({
  body: `{"transactionId":12345,"refundId":${JSON.stringify(refundId)},"requestId":${JSON.stringify(requestId)},"mid":"sandbox_mid",` +
    `"transactionStatus":"SUCCEED","declineCode":null,"totalAmount":10.0,"orderCurrency":"USD","processedCurrency":"USD"}`,
  checksum: createHmac("sha256", "sandbox-merchant-secret").update("sandbox_mid|10.0|USD|12345").digest("base64")
})

describe("a provider's words with a NUL character, through the gateway", () => {
  for (const ledger of ledgers) {
    it.scopedLive(`Airpay: a transaction's message keeps it as U+FFFD and the refund is recorded; a refund_id with one is refused (${ledger.name})`, () =>
      Effect.gen(function*() {
        const airpay = yield* ScriptedServer.make(airpayScript(
          airpayAnswer({ ap_transactionid: "10264", success: "true", message: `Refund${nul}initiated`, refund_id: "555" }),
          airpayAnswer({ ap_transactionid: "10265", success: "false", message: `Card${nul}closed` }),
          airpayAnswer({ ap_transactionid: "10266", success: "true", message: "Refund initiated", refund_id: `55${nul}7` })
        ))
        const gw = yield* gateway(ledger, { REFUNDKIT_AIRPAY_BASE_URL: `${airpay.url}${AirpaySandbox.basePath}` })
        const create = (ap_transactionid: number) =>
          gw.fetch("POST", "/v1/refunds", {
            body: { provider: "airpay", transactions: [{ ap_transactionid, amount: "10.00" }] },
            headers: { "idempotency-key": Gateway.key("airpay-nul") }
          })

        const accepted = yield* create(10264)
        assert.strictEqual(accepted.status, 201, accepted.text)
        assert.strictEqual(accepted.body.status, "succeeded", "recorded as Airpay said, not left in doubt")
        assert.strictEqual(accepted.body.providerReference, "555")
        assert.isTrue(accepted.body.items[0].message === "Refund\uFFFDinitiated", "the message keeps the NUL as U+FFFD")

        const refused = yield* create(10265)
        assert.strictEqual(refused.status, 201, refused.text)
        assert.strictEqual(refused.body.status, "failed", "a decline, not a refund in doubt")
        assert.strictEqual(refused.body.error.code, "provider_declined")
        assert.isTrue(refused.body.error.message.includes("Card\uFFFDclosed") && !refused.text.includes("\\u0000"), "the reason keeps it as U+FFFD")

        // A reference is an identifier: changing it would record one Airpay never gave.
        const badReference = yield* create(10266)
        assert.strictEqual(badReference.body.error.code, "unexpected_response", badReference.text)
        const stored = yield* gw.fetch("GET", `/v1/refunds/${badReference.body.error.refundId}`)
        assert.strictEqual(stored.body.status, "unknown")
        assert.include(stored.body.error.message, "field providerReference: contains a NUL character")
        assert.isUndefined(stored.body.providerReference)

        // Each answer was read back from the ledger as written.
        for (const created of [accepted, refused]) {
          const read = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
          assert.deepStrictEqual(read.body.items, created.body.items)
        }
        assert.strictEqual(airpay.calls.filter((c) => c.path.endsWith("/refund/")).length, 3)
      }), 30_000)

    it.scopedLive(`Exirom: a resend of a refund in doubt refused with one in Exirom's words settles it failed (${ledger.name})`, () =>
      Effect.gen(function*() {
        // 500s until the test syncs; then Exirom refuses the resend (it never took this requestId).
        let syncing = false
        const exirom = yield* ScriptedServer.make({
          "POST /api/v1/auth": [exiromToken],
          "POST /api/v1/refunds/card": [() => (syncing ? { status: 422, body: { message: `card account${nul}closed` } } : { status: 500, body: { message: "busy" } })]
        })
        const gw = yield* gateway(ledger, { REFUNDKIT_EXIROM_BASE_URL: `${exirom.url}/api` })
        const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key("exirom-nul") } })
        assert.strictEqual(created.body.error?.status, "unknown", created.text)
        const id: string = created.body.error.refundId
        assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body.status, "unknown")

        syncing = true
        const synced = yield* gw.fetch("POST", `/v1/refunds/${id}/sync`)
        assert.strictEqual(synced.status, 200, synced.text)
        assert.strictEqual(synced.body.status, "failed", "settled by Exirom's refusal, not kept in doubt")
        assert.strictEqual(synced.body.error.providerCode, "HTTP_422")
        assert.isTrue(synced.body.error.message.includes("card account\uFFFDclosed"), "the reason keeps it as U+FFFD")
        const read = yield* gw.fetch("GET", `/v1/refunds/${id}`)
        assert.deepStrictEqual(read.body, synced.body)
      }), 30_000)

    it.scopedLive(`Exirom: a callback whose confirmed reference has one is acknowledged as not recorded, and a later clean one applies (${ledger.name})`, () =>
      Effect.gen(function*() {
        let refundId = ""
        let clean = false
        const exirom = yield* ScriptedServer.make({
          "POST /api/v1/auth": [exiromToken],
          "POST /api/v1/refunds/card": [{ body: { refundId: "RF-1", transactionStatus: "PENDING", declineCode: null } }],
          "GET /api/v1/refunds/card/info/RF-1": [() => ({
            body: { transactionId: 12345, refundId: clean ? "RF-1" : `RF${nul}1`, requestId: refundId, transactionStatus: "SUCCEED", declineCode: null }
          })]
        })
        const gw = yield* gateway(ledger, { REFUNDKIT_EXIROM_BASE_URL: `${exirom.url}/api` })
        const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key("exirom-cb") } })
        assert.strictEqual(created.body.status, "pending", created.text)
        refundId = created.body.id

        const callback = signedCallback("RF-1", refundId)
        const send = gw.fetch("POST", "/v1/webhooks/exirom", { body: callback.body, headers: { "x-checksum": callback.checksum }, auth: false })
        // Exirom redelivers the same callback after a non-2xx, and its lookup would name the same
        // reference: acknowledged, with the event not recorded, rather than retried to no end.
        const refused = yield* send
        assert.strictEqual(refused.status, 200, refused.text)
        assert.deepStrictEqual([refused.body.received, refused.body.applied], [1, 0])
        assert.isFalse(refused.body.results[0].applied)
        assert.include(refused.body.results[0].reason, "field 0.providerReference")
        assert.include(refused.body.results[0].reason, "NUL")
        const unchanged = yield* gw.fetch("GET", `/v1/refunds/${refundId}`)
        assert.deepStrictEqual(unchanged.body, created.body)

        clean = true
        const applied = yield* send
        assert.strictEqual(applied.status, 200, applied.text)
        assert.deepStrictEqual([applied.body.applied, applied.body.results[0].refundId], [1, refundId])
        assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${refundId}`)).body.status, "succeeded")
      }), 30_000)
  }
})
