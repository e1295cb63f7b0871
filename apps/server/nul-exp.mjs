import { Refund } from "@refundkit/core"
import { SqlLedger } from "@refundkit/ledger-sql"
import { Effect, Layer, Context } from "effect"
const url = process.argv[2]
const at = new Date().toISOString()
const key = "k-" + Date.now()
const request = { transactionId: "tx_1", amount: "25.00" }
const refund = { id: Refund.deriveId("exirom", key), provider: "exirom", idempotencyKey: key, fingerprint: Refund.fingerprint("exirom", request), request, status: "requested", references: {}, currency: "EUR", amount: "25.00", targets: [{ target: "tx_1", amount: "25.00" }], items: [], createdAt: at, updatedAt: at, events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }] }
const program = Effect.gen(function*() {
  const ledger = yield* SqlLedger.SqlLedger
  console.log((yield* ledger.claim(refund))._tag)
  const r = yield* Effect.either(ledger.transition(refund.id, { to: "pending", source: "submit", at: new Date().toISOString(), providerReference: "EXR\u00001", providerStatus: "ok\u0000" }))
  console.log(r._tag, r._tag === "Left" ? r.left.message : r.right.providerReference)
  const g = yield* Effect.either(ledger.get(refund.id))
  console.log(g._tag, g._tag === "Left" ? g.left.message : JSON.stringify([g.right.status, g.right.providerReference]))
})
Effect.runPromise(Effect.scoped(program.pipe(Effect.provide(SqlLedger.layer({ url }))))).catch((e) => console.error("FAIL", e))
