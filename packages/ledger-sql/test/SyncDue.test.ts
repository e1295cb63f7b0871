// Leasing refunds for a sync (a gateway's sync loop leases one refund before each sync) walks
// the partial index refunds_sync_due in lease order and stops at the limit. Without it each
// lease sorted every refund due for a sync: about 4 ms a lease with 20,000 pending refunds on
// SQLite, on the gateway's event loop, once per synced refund.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { leaseCandidates } from "../src/internal/queries.js"
import { leaseCandidatesText } from "../src/internal/sqliteLedger.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

const pending = (ledger: SqlLedger.SqlLedger.Service, count: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => draft(`due-${i}`, { n: i })), (refund, i) =>
    Effect.zipRight(
      ledger.claim(refund),
      ledger.transition(refund.id, { to: "pending", source: "submit", at: at(10 + i) })
    ), { concurrency: 32, discard: true })

describe("leasing refunds for a sync", () => {
  it.scopedLive("on SQLite reads refunds_sync_due in lease order, with or without providers, and sorts nothing", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "ledger.db")
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      yield* pending(ledger, 50)
      const sql = yield* rawSql(file)
      for (const providers of [undefined, ["toy"]]) {
        const params = [...(providers === undefined ? [] : [JSON.stringify(providers)]), at(500), 5]
        const plan = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${leaseCandidatesText(providers)}`, params)
        const details = plan.map((row) => row.detail).join("\n")
        assert.include(details, "USING INDEX refunds_sync_due", details)
        assert.notInclude(details, "TEMP B-TREE", details)
      }
      // Still least recently leased first, then the oldest update.
      const first = yield* ledger.claimForSync({ owner: "w", at: at(500), until: at(600), limit: 3 })
      assert.deepStrictEqual(first.map((r) => r.idempotencyKey), ["due-0", "due-1", "due-2"])
      const next = yield* ledger.claimForSync({ owner: "w", at: at(501), until: at(601), limit: 2 })
      assert.deepStrictEqual(next.map((r) => r.idempotencyKey), ["due-3", "due-4"])
    }))

  it.scopedLive("on PostgreSQL scans refunds_sync_due in lease order, with or without providers, and sorts nothing", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      yield* pending(ledger, 1000)
      const sql = yield* rawSql(url)
      yield* sql`ANALYZE refunds`
      for (const providers of [undefined, ["toy"]]) {
        const [text, params] = leaseCandidates(sql, "pg", { owner: "w", at: at(5000), until: at(6000), providers, limit: 5 }).compile()
        const plan = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${text}`, params)
        const lines = plan.map((row) => row["QUERY PLAN"]).join("\n")
        assert.include(lines, "Index Scan using refunds_sync_due on refunds", lines)
        assert.notInclude(lines, "Sort", lines)
      }
      for (let i = 0; i < 3; i++) {
        const leased = yield* ledger.claimForSync({ owner: "w", at: at(5000 + i), until: at(6000), limit: 5 })
        assert.deepStrictEqual(leased.map((r) => r.idempotencyKey), [0, 1, 2, 3, 4].map((n) => `due-${i * 5 + n}`))
      }
    }))
})
