// /readyz on a PostgreSQL ledger whose connections stop answering, as a failover can leave
// them (the old server gone without a reset): the probe answers 503 not_ready instead of
// waiting with the connection. A real PostgreSQL, reached through a TCP proxy that stops
// passing bytes.
import { assert, describe, it } from "@effect/vitest"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Effect } from "effect"
import { silentProxy } from "../../../packages/ledger-sql/test/support/silentProxy.js"
import * as Gateway from "./support/Gateway.js"

describe("/readyz on a PostgreSQL ledger whose connections stop answering", () => {
  it.scopedLive("answers 503 not_ready, not a probe left waiting", () =>
    Effect.gen(function*() {
      const proxy = yield* silentProxy
      const gw = yield* Gateway.start({ ledger: LedgerSql.layerPg(proxy.through(yield* Gateway.pgSchema)) })
      assert.strictEqual((yield* gw.fetch("GET", "/readyz", { auth: false })).status, 200)

      proxy.silenceAll()
      const ready = yield* gw.fetch("GET", "/readyz", { auth: false }).pipe(Effect.timeout("15 seconds"), Effect.option)
      assert.isTrue(ready._tag === "Some", "/readyz had not answered after 15 s")
      if (ready._tag === "Some") {
        assert.strictEqual(ready.value.status, 503, ready.value.text)
        assert.strictEqual(ready.value.body.error.code, "not_ready")
      }
    }), { timeout: 60_000 })
})
