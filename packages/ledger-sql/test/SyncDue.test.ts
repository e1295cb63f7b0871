// Leasing refunds for a sync (a gateway's sync loop leases one refund before each sync) walks
// the partial index refunds_sync_due in lease order and stops at the limit. Without it each
// lease sorted every refund due for a sync: about 4 ms a lease with 20,000 pending refunds on
// SQLite, on the gateway's event loop, once per synced refund.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import * as PgFastPath from "../src/internal/pgFastPath.js"
import { leaseCandidates, withoutSorts } from "../src/internal/queries.js"
import { leaseCandidatesText } from "../src/internal/sqliteLedger.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

const due = (count: number) => Array.from({ length: count }, (_, n) => draft(`due-${n}`, { n }))

/** Refunds `due-0` … claimed. */
const claimed = (ledger: SqlLedger.SqlLedger.Service, count: number) =>
  Effect.forEach(due(count), (refund) => ledger.claim(refund), { concurrency: 32, discard: true })

/** Those refunds pending, each updated a second after the one before. */
const madePending = (ledger: SqlLedger.SqlLedger.Service, count: number) =>
  Effect.forEach(due(count), (refund, n) => ledger.transition(refund.id, { to: "pending", source: "submit", at: at(10 + n) }), {
    concurrency: 32,
    discard: true
  })

const pending = (ledger: SqlLedger.SqlLedger.Service, count: number) => Effect.zipRight(claimed(ledger, count), madePending(ledger, count))

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
      const sql = yield* rawSql(url)
      // Planned with costs that make the ordered index scan look dear, as the statistics of a
      // ledger growing faster than autovacuum analyses it did (a new gateway's first minutes):
      // the planner then fetched every due refund through a bitmap and sorted them, 87 ms a
      // lease at 20,000, where the ordered scan takes 0.05 ms.
      yield* pending(ledger, 15)
      yield* sql`INSERT INTO refunds (id, provider, idempotency_key, fingerprint, request, status, created_at, updated_at)
        SELECT 'rfd_bulk_' || g, 'toy', 'bulk-' || g, md5(g::text), json_build_object('transactionId', g, 'amount', '1.00')::text,
          'pending', ${at(100)}, ${at(100)} FROM generate_series(1, 20000) g`
      const skewed = new URL(url)
      skewed.searchParams.set("options", `${skewed.searchParams.get("options")} -c random_page_cost=1000`)
      const planner = yield* rawSql(skewed.toString())
      for (const providers of [undefined, ["toy"]]) {
        const [text, params] = leaseCandidates(sql, "pg", { owner: "w", at: at(5000), until: at(6000), providers, limit: 5 }).compile()
        const explain = (statement: string, values: ReadonlyArray<unknown> = []) =>
          Effect.map(planner.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${statement}`, values), (plan) => plan.map((row) => row["QUERY PLAN"]).join("\n"))
        const [lease, after] = yield* planner.withTransaction(Effect.all([
          withoutSorts(planner, explain(text, params)),
          // The lease's next statement, reading the leased refunds back in update order, is planned
          // as usual: with sorts ruled out, the sort it needs carried the planner's penalty, whose
          // cost set off JIT compilation of every such read, most of PostgreSQL's CPU in a bench run.
          explain(`SELECT ${PgFastPath.hydratedColumns} FROM refunds WHERE id IN ('rfd_bulk_1', 'rfd_bulk_2') ORDER BY updated_at, seq`)
        ]))
        assert.include(lease, "Index Scan using refunds_sync_due on refunds", lease)
        assert.notInclude(lease, "Sort", lease)
        const cost = Number(/cost=[\d.]+\.\.([\d.]+)/.exec(after)?.[1])
        assert.isBelow(cost, 1e6, after)
        assert.notInclude(after, "JIT", after)
      }
      for (let i = 0; i < 3; i++) {
        const leased = yield* ledger.claimForSync({ owner: "w", at: at(5000 + i), until: at(6000), limit: 5 })
        assert.deepStrictEqual(leased.map((r) => r.idempotencyKey), [0, 1, 2, 3, 4].map((n) => `due-${i * 5 + n}`))
      }
    }))
})
