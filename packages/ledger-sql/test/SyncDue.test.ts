// Leasing refunds for a sync (a gateway's sync loop leases one refund before each sync) walks
// the partial index refunds_sync_due_by_provider (refunds_sync_due before migration 9) in lease
// order, from each leased provider's first entry, and stops at the limit. Without it each
// lease sorted every refund due for a sync: about 4 ms a lease with 20,000 pending refunds on
// SQLite, on the gateway's event loop, once per synced refund.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import * as PgFastPath from "../src/internal/pgFastPath.js"
import { leaseCandidates, providersDueText, withoutSorts } from "../src/internal/queries.js"
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
  it.scopedLive("on SQLite reads refunds_sync_due_by_provider in lease order, with or without providers, and sorts nothing", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "ledger.db")
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      yield* pending(ledger, 50)
      const sql = yield* rawSql(file)
      const plan = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${leaseCandidatesText}`, ["toy", at(500), 5])
      const details = plan.map((row) => row.detail).join("\n")
      assert.include(details, "SEARCH refunds USING INDEX refunds_sync_due_by_provider (provider=?)", details)
      assert.notInclude(details, "TEMP B-TREE", details)
      // A lease of any provider first finds the providers with refunds due, a probe of the index each.
      const probes = (yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${providersDueText("sqlite")}`)).map((row) => row.detail)
      assert.deepStrictEqual(probes.filter((d) => d.includes("refunds")), [
        "SEARCH refunds USING INDEX refunds_sync_due_by_provider",
        "SEARCH refunds USING INDEX refunds_sync_due_by_provider (provider>?)"
      ], probes.join("\n"))
      // Still least recently leased first, then the oldest update.
      const first = yield* ledger.claimForSync({ owner: "w", at: at(500), until: at(600), limit: 3 })
      assert.deepStrictEqual(first.map((r) => r.idempotencyKey), ["due-0", "due-1", "due-2"])
      const next = yield* ledger.claimForSync({ owner: "w", at: at(501), until: at(601), limit: 2 })
      assert.deepStrictEqual(next.map((r) => r.idempotencyKey), ["due-3", "due-4"])
    }))

  it.scopedLive("on PostgreSQL scans refunds_sync_due_by_provider in lease order, with or without providers, and sorts nothing", () =>
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
      {
        const [text, params] = leaseCandidates(sql, "pg", { at: at(5000), limit: 5 }, "toy").compile()
        const explain = (statement: string, values: ReadonlyArray<unknown> = []) =>
          Effect.map(planner.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${statement}`, values), (plan) => plan.map((row) => row["QUERY PLAN"]).join("\n"))
        const [lease, after] = yield* planner.withTransaction(Effect.all([
          withoutSorts(planner, explain(text, params)),
          // The lease's next statement, reading the leased refunds back in update order, is planned
          // as usual: with sorts ruled out, the sort it needs carried the planner's penalty, whose
          // cost set off JIT compilation of every such read, most of PostgreSQL's CPU in a bench run.
          explain(`SELECT ${PgFastPath.hydratedColumns} FROM refunds WHERE id IN ('rfd_bulk_1', 'rfd_bulk_2') ORDER BY updated_at, seq`)
        ]))
        assert.include(lease, "Index Scan using refunds_sync_due_by_provider on refunds", lease)
        // A lease of any provider first finds the providers with refunds due, a probe of the index each.
        const probes = (yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${providersDueText("pg")}`)).map((row) => row["QUERY PLAN"]).join("\n")
        assert.include(probes, "refunds_sync_due_by_provider", probes)
        assert.notInclude(probes, "Seq Scan", probes)
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

  // A gateway's sync loop leases for the providers with a status query (Exirom). Refunds due of a
  // provider without one (an Airalo refund stays `pending` for good) are never leased, so they stay
  // first in lease order: leasing walked past every one of them, once per synced refund, about
  // 30 ms a lease with 40,000 of them on SQLite, on the gateway's event loop.
  const others = (count: number) => Array.from({ length: count }, (_, n) => draft(`other-${n}`, { provider: "other", n }))
  const withOthers = (ledger: SqlLedger.SqlLedger.Service, count: number) =>
    Effect.gen(function*() {
      yield* Effect.forEach(others(count), (refund) => ledger.claim(refund), { concurrency: 32, discard: true })
      yield* Effect.forEach(others(count), (refund, n) => ledger.transition(refund.id, { to: "pending", source: "submit", at: at(n) }), {
        concurrency: 32,
        discard: true
      })
      // The leased provider's refunds, each updated after every one of the others.
      yield* claimed(ledger, 5)
      yield* Effect.forEach(due(5), (refund, n) => ledger.transition(refund.id, { to: "pending", source: "submit", at: at(count + 10 + n) }), {
        concurrency: 5,
        discard: true
      })
    })

  it.scopedLive("of one provider on SQLite, searches that provider's entries instead of walking past the others'", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "ledger.db")
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      yield* withOthers(ledger, 300)
      const sql = yield* rawSql(file)
      const plan = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${leaseCandidatesText}`, ["toy", at(5000), 1])
      const details = plan.map((row) => row.detail).join("\n")
      assert.include(details, "SEARCH refunds USING INDEX refunds_sync_due_by_provider (provider=?)", details)
      assert.notInclude(details, "TEMP B-TREE", details)
      const first = yield* ledger.claimForSync({ owner: "w", at: at(5000), until: at(6000), providers: ["toy"], limit: 2 })
      assert.deepStrictEqual(first.map((r) => r.idempotencyKey), ["due-0", "due-1"])
      // Several providers: the first in lease order across them, as one walk of every provider's would give.
      const mixed = yield* ledger.claimForSync({ owner: "w", at: at(5001), until: at(6001), providers: ["toy", "other", "toy"], limit: 3 })
      assert.deepStrictEqual(mixed.map((r) => r.idempotencyKey), ["other-0", "other-1", "other-2"])
      // Any provider: never leased first (the other 297, then toy's three), then the least recently
      // leased (due-0 and due-1), which the limit leaves out. Leased refunds come back in update order.
      const any = yield* ledger.claimForSync({ owner: "w", at: at(6001), until: at(7000), limit: 300 })
      assert.deepStrictEqual(any.slice(295).map((r) => r.idempotencyKey), ["other-298", "other-299", "due-2", "due-3", "due-4"])
    }))

  it.scopedLive("of one provider on PostgreSQL, reads only that provider's entries", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      const sql = yield* rawSql(url)
      yield* withOthers(ledger, 300)
      const lease = { owner: "w", at: at(5000), until: at(6000), providers: ["toy"], limit: 1 }
      const [text, params] = leaseCandidates(sql, "pg", lease, "toy").compile()
      const analysed = yield* sql.withTransaction(
        withoutSorts(sql, sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${text}`, params))
      )
      const plan = analysed.map((row) => row["QUERY PLAN"]).join("\n")
      assert.include(plan, "refunds_sync_due_by_provider", plan)
      // Rows the scan read and threw away: the other provider's 300 with a walk of refunds_sync_due.
      const removed = [...plan.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0)
      assert.isBelow(removed, 10, plan)
      const first = yield* ledger.claimForSync({ owner: "w", at: at(5000), until: at(6000), providers: ["toy"], limit: 2 })
      assert.deepStrictEqual(first.map((r) => r.idempotencyKey), ["due-0", "due-1"])
      const mixed = yield* ledger.claimForSync({ owner: "w", at: at(5001), until: at(6001), providers: ["toy", "other"], limit: 3 })
      assert.deepStrictEqual(mixed.map((r) => r.idempotencyKey), ["other-0", "other-1", "other-2"])
    }))
})
