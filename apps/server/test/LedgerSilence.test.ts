// The gateway on a PostgreSQL ledger whose connections stop answering, as a failover can leave
// them (the old server gone without a reset): a request that reads the ledger answers 503
// ledger_error naming what it was doing, within the ledger's statement bound, instead of
// waiting with the connection for as long as TCP keeps it; the next request goes out on a new
// connection. A real PostgreSQL, reached through a TCP proxy that stops passing bytes.
import { assert, describe, it } from "@effect/vitest"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Effect } from "effect"
import { silentProxy } from "../../../packages/ledger-sql/test/support/silentProxy.js"
import * as Gateway from "./support/Gateway.js"

describe("the gateway on a PostgreSQL ledger whose connections stop answering", () => {
  it.scopedLive("GET /v1/refunds/:id answers 503 ledger_error within the bound, then 200 on a new connection", () =>
    Effect.gen(function*() {
      const proxy = yield* silentProxy
      const ledger = LedgerSql.layerPg(proxy.through(yield* Gateway.pgSchema), { statementTimeoutMillis: 1000 })
      const gw = yield* Gateway.start({ ledger })
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.status, 201, created.text)
      const id = created.body.id as string
      assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).status, 200)

      proxy.silence()
      const lost = yield* gw.fetch("GET", `/v1/refunds/${id}`).pipe(Effect.timeout("15 seconds"), Effect.option)
      assert.isTrue(lost._tag === "Some", "GET /v1/refunds/:id had not answered after 15 s")
      if (lost._tag === "Some") {
        assert.strictEqual(lost.value.status, 503, lost.value.text)
        assert.strictEqual(lost.value.body.error.code, "ledger_error")
        assert.include(lost.value.body.error.message, "reading a refund")
        assert.include(lost.value.body.error.message, "did not answer within 1 s")
      }
      const again = yield* gw.fetch("GET", `/v1/refunds/${id}`).pipe(Effect.timeout("15 seconds"), Effect.option)
      assert.isTrue(again._tag === "Some" && again.value.status === 200, JSON.stringify(again))
    }), { timeout: 60_000 })
})
