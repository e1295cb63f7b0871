// Listing refunds by status (the gateway's GET /v1/refunds?status=…, `refundkit list --status`,
// `refundkit reconcile` paging through pending and unknown) walks refunds_status_provider_seq
// (migration 10) from the cursor, newest first, one provider at a time, and stops at the page's
// end. Before migration 7, SQLite read every refund of the status through refunds_status_updated
// and sorted them by seq, for each page: at 50,000 refunds a page of succeeded ones took 63 ms of
// the gateway's event loop, and reconcile's 86 pages through 8,600 pending ones 840 ms. Before
// migration 10, a list of one provider's refunds of a status walked past every refund of that
// status of the other providers (109 ms a page at 200,000 refunds).
import { assert, describe, it } from "@effect/vitest"
import type { ListQuery } from "@refundkit/core/Ledger"
import { Effect } from "effect"
import * as path from "node:path"
import { hydratedColumns } from "../src/internal/pgFastPath.js"
import { countByStatus, encodeCursor, listPage, providersWithStatus, providersWithStatusText } from "../src/internal/queries.js"
import { countStatement, listStatement } from "../src/internal/sqliteLedger.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

/**
 * `count` refunds claimed one after another (refund i gets seq i + 1), every `rare`th left
 * requested, the others pending and each third of those succeeded.
 */
const mixed = (ledger: SqlLedger.SqlLedger.Service, count: number, rare: number) =>
  Effect.gen(function*() {
    const refunds = Array.from({ length: count }, (_, i) => draft(`r-${i}`, { n: i, provider: i % 2 === 0 ? "toy" : "other" }))
    yield* Effect.forEach(refunds, (refund) => ledger.claim(refund), { discard: true })
    yield* Effect.forEach(refunds, (refund, i) =>
      i % rare === 0 ? Effect.void : Effect.gen(function*() {
        yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(10_000 + i) })
        if (i % 3 === 0) yield* ledger.transition(refund.id, { to: "succeeded", source: "sync", at: at(20_000 + i) })
      }), { concurrency: 32, discard: true })
  })

const queries: ReadonlyArray<readonly [string, ListQuery, bigint | undefined]> = [
  ["a status", { status: "requested", limit: 5 }, undefined],
  ["a status after a cursor", { status: "pending", limit: 5 }, 40n],
  ["a status and a provider", { status: "requested", provider: "toy", limit: 5 }, undefined]
]

describe("listing refunds by status", () => {
  it.scopedLive("on SQLite walks refunds_status_provider_seq from the cursor, one provider at a time", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "ledger.db")
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      yield* mixed(ledger, 60, 10)
      const sql = yield* rawSql(file)
      for (const [what, query, before] of queries) {
        const providers = query.provider === undefined
          ? (yield* sql.unsafe<{ readonly provider: string }>(providersWithStatusText, [query.status, query.status])).map((r) => r.provider)
          : undefined
        if (providers !== undefined) {
          const distinct = yield* sql.unsafe<{ readonly provider: string }>("SELECT DISTINCT provider FROM refunds WHERE status = ? ORDER BY provider", [query.status])
          assert.deepStrictEqual(providers, distinct.map((r) => r.provider), what)
        }
        const { params, text } = listStatement(query, before, query.limit, providers)
        const plan = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params)
        const details = plan.map((row) => row.detail).join("\n")
        // Each walk names its provider in the index's key: none passes over another provider's refunds.
        const walks = plan.map((row) => row.detail).filter((d) => d.includes("refunds_status_provider_seq"))
        assert.lengthOf(walks, providers?.length ?? 1, `${what}: ${details}`)
        for (const walk of walks) assert.include(walk, "(status=? AND provider=?", `${what}: ${details}`)
        // Nothing else reads refunds: a branch's sort for the merge holds at most a page of its walk.
        assert.notMatch(details, /SCAN refunds|SEARCH refunds USING (?!INDEX refunds_status_provider_seq)/, `${what}: ${details}`)
      }
      // Counting the refunds that should stay few (a gateway's metrics, every scrape) reads them from the index too.
      const watched = ["requested", "unknown", "requires_action"]
      const counted = yield* sql.unsafe<{ readonly detail: string }>(`EXPLAIN QUERY PLAN ${countStatement(watched.length)}`, watched)
      assert.match(counted.map((row) => row.detail).join("\n"), /USING (COVERING )?INDEX refunds_status_provider_seq \(status=\?\)/)
      // Still newest first, page after page.
      const first = yield* ledger.list({ status: "requested", limit: 4 })
      assert.deepStrictEqual(first.items.map((r) => r.idempotencyKey), ["r-50", "r-40", "r-30", "r-20"])
      const next = yield* ledger.list({ status: "requested", limit: 4, cursor: first.nextCursor })
      assert.deepStrictEqual(next.items.map((r) => r.idempotencyKey), ["r-10", "r-0"])
      assert.isUndefined(next.nextCursor)
    }))

  it.scopedLive("on PostgreSQL reads refunds_status_provider_seq one provider at a time, never the whole status", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      // Every 49th refund left requested (odd, so both providers have some): 2% of them, as a
      // status the index is there for, against two thirds pending and a third succeeded.
      yield* mixed(ledger, 1000, 49)
      const sql = yield* rawSql(url)
      yield* sql`ANALYZE refunds`
      const explain = (query: ListQuery, before: bigint | undefined) =>
        Effect.gen(function*() {
          const providers = query.provider === undefined ? (yield* providersWithStatus(sql, "pg", query.status!)).map((r) => String(r.provider)) : undefined
          const [text, params] = listPage(sql, "pg", hydratedColumns, query, before, query.limit, providers).compile()
          const plan = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${text}`, params)
          return { providers, lines: plan.map((row) => row["QUERY PLAN"]) }
        })
      // A rare status's page, where walking anything but its provider's entries would pass over
      // dozens of other refunds for each one it keeps: the planner's next best plan costs 30% more
      // or above in every physical layout of the table seen (with and without pruned updates).
      const rare: ReadonlyArray<readonly [string, ListQuery, bigint | undefined]> = [
        ["a status", { status: "requested", limit: 5 }, undefined],
        ["a status after a cursor", { status: "requested", limit: 5 }, 600n],
        ["a status and a provider", { status: "requested", provider: "toy", limit: 5 }, undefined],
        ["a status and a provider after a cursor", { status: "requested", provider: "other", limit: 5 }, 600n]
      ]
      for (const [what, query, before] of rare) {
        const { lines: plan, providers } = yield* explain(query, before)
        const lines = plan.join("\n")
        if (providers !== undefined) assert.deepStrictEqual(providers, ["other", "toy"], what)
        // One read of refunds_status_provider_seq per provider, each naming it in its condition: a
        // Merge Append of backward walks, or for a few rows a bitmap of that provider's alone.
        const reads = plan.filter((l) => /(Index Scan Backward using|Bitmap Index Scan on) refunds_status_provider_seq/.test(l))
        assert.lengthOf(reads, providers?.length ?? 1, `${what}: ${lines}`)
        const conditions = plan.filter((l) => l.includes("Index Cond: ((status ="))
        for (const condition of conditions) assert.include(condition, "(provider =", `${what}: ${lines}`)
        if (before !== undefined) for (const condition of conditions) assert.include(condition, `(seq < '${before}'::bigint)`, `${what}: ${lines}`)
        assert.notInclude(lines, "Seq Scan", `${what}: ${lines}`)
      }
      // A page of the status two thirds of the refunds are in, after a cursor near the first: walking
      // refunds_seq_key from the cursor and skipping the other provider's and status's refunds reads
      // about three rows for each it keeps, and costs the planner within a few percent of the walks
      // above, so which one it takes follows the heap's layout (how many updated rows another
      // session's snapshot kept from being pruned). Either reads from the cursor down, never the status.
      const { lines: common } = yield* explain({ status: "pending", limit: 5 }, 40n)
      const commonLines = common.join("\n")
      const walks = common.filter((l) => l.includes("Index Cond:") && !l.includes("refund_seq"))
      assert.isNotEmpty(walks, commonLines)
      for (const walk of walks) assert.include(walk, "seq < '40'::bigint", commonLines)
      assert.notInclude(commonLines, "Seq Scan", commonLines)
      const [counts, countParams] = countByStatus(sql, "pg", ["requested", "unknown", "requires_action"]).compile()
      const counted = (yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${counts}`, countParams)).map((row) => row["QUERY PLAN"]).join("\n")
      assert.match(counted, /(Index (Only )?Scan|Bitmap Index Scan) on refunds_status_provider_seq|Index (Only )?Scan using refunds_status_provider_seq on refunds/, counted)
      assert.notInclude(counted, "Seq Scan", counted)
      const page = yield* ledger.list({ status: "requested", limit: 3, cursor: encodeCursor(600n) })
      assert.deepStrictEqual(page.items.map((r) => r.idempotencyKey), ["r-588", "r-539", "r-490"])
    }))
})
