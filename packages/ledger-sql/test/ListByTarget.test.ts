// Listing the refunds against one target (GET /v1/refunds?provider=…&target=…, `refundkit list
// --target`) walks the target's rows of refund_targets, keyed (provider, target, refund_seq),
// from the cursor, newest first, and looks each refund up by its seq: what it reads grows with
// that target's refunds, not with the ledger's.
import { assert, describe, it } from "@effect/vitest"
import type { ListQuery } from "@refundkit/core/Ledger"
import { Effect } from "effect"
import * as path from "node:path"
import { hydratedColumns } from "../src/internal/pgFastPath.js"
import { listPage } from "../src/internal/queries.js"
import { listStatement } from "../src/internal/sqliteLedger.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { draft } from "./support/refunds.js"

/** `count` refunds, refund i against target `tx-(i % 20)` (refund i gets seq i + 1). */
const spread = (ledger: SqlLedger.SqlLedger.Service, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => draft(`r-${i}`, { n: i, targets: [{ target: `tx-${i % 20}`, amount: "1.00" }] })),
    (refund) => ledger.claim(refund),
    { discard: true }
  )

const queries: ReadonlyArray<readonly [string, ListQuery, bigint | undefined]> = [
  ["a target", { provider: "toy", target: "tx-3", limit: 5 }, undefined],
  ["a target after a cursor", { provider: "toy", target: "tx-3", limit: 5 }, 300n],
  ["a target and a status", { provider: "toy", target: "tx-3", status: "requested", limit: 5 }, undefined]
]

describe("listing the refunds against one target", () => {
  it.scopedLive("on SQLite walks refund_targets' key from the cursor and sorts nothing", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "ledger.db")
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      yield* spread(ledger, 400)
      const sql = yield* rawSql(file)
      for (const [what, query, before] of queries) {
        const { params, text } = listStatement(query, before, query.limit)
        const plan = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params)
        const details = plan.map((row) => row.detail)
        assert.match(details[0] ?? "", /^SEARCH refund_targets USING (COVERING INDEX|PRIMARY KEY) .*\(provider=\? AND target=\?/, `${what}: ${details.join("\n")}`)
        assert.notInclude(details.join("\n"), "TEMP B-TREE", `${what}: ${details.join("\n")}`)
      }
      const page = yield* ledger.list({ provider: "toy", target: "tx-3", limit: 3 })
      assert.deepStrictEqual(page.items.map((r) => r.idempotencyKey), ["r-383", "r-363", "r-343"])
    }))

  it.scopedLive("on PostgreSQL scans refund_targets' key backwards and sorts nothing", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      yield* spread(ledger, 400)
      const sql = yield* rawSql(url)
      // Before and after the planner has statistics: a new table is planned on guesses.
      for (const analysed of [false, true]) {
        if (analysed) yield* sql`ANALYZE refunds, refund_targets`
        for (const [what, query, before] of queries) {
          const [text, params] = listPage(sql, "pg", hydratedColumns, query, before, query.limit).compile()
          const plan = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${text}`, params)
          const lines = plan.map((row) => row["QUERY PLAN"]).join("\n")
          assert.match(lines, /Index (Only )?Scan Backward using refund_targets_pkey on refund_targets/, `${what}: ${lines}`)
          assert.notInclude(lines, "Sort", `${what}: ${lines}`)
        }
      }
      const page = yield* ledger.list({ provider: "toy", target: "tx-3", limit: 3, cursor: (yield* ledger.list({ provider: "toy", target: "tx-3", limit: 2 })).nextCursor })
      assert.deepStrictEqual(page.items.map((r) => r.idempotencyKey), ["r-343", "r-323", "r-303"])
    }))
})
