// An operator's verdict as it was asked for (core's `RefundEvent.verdict`, the events' `verdict` column since
// migration 16): what one ledger instance writes, another on the same database reads back exactly, on SQLite (the
// raw connection and an application's `@effect/sql` client) and PostgreSQL; a stored verdict that does not match is
// a LedgerError naming the column, as any other damaged column is.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import type { OperatorVerdict, Refund } from "@refundkit/core/Refund"
import { Effect, Layer } from "effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, locations, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

// Two targets, so that a verdict can name one as not refunded.
const pair = (key: string, n: number): Refund =>
  draft(key, { n, provider: "airalo", targets: [{ target: iccid(n, 1) }, { target: iccid(n, 2) }] })

const iccid = (n: number, i: number) => `89103000000000${String(n).padStart(3, "0")}${i}`

// A note in the words core adds to a detail (a release, a correction), with quotes, a backslash and more than ASCII:
// the column holds it as written.
const note = `operator: "corrects the succeeded an operator recorded at ${at(1)}": ünïcode ✓ \\ (targets released: none)`

const verdicts = (refund: Refund): ReadonlyArray<readonly [number, boolean, OperatorVerdict | undefined]> =>
  refund.events.map((e) => [e.sequence, e.accepted, e.verdict] as const)

/** A verdict, a verdict the ledger refuses (kept with what it asked), and a correction taking the targets back. */
const written = (ledger: Ledger.Ledger.Service, n: number) =>
  Effect.gen(function*() {
    const refund = pair(`verdict-${n}`, n)
    yield* ledger.claim(refund)
    yield* ledger.transition(refund.id, { to: "unknown", source: "recovery", at: at(n + 1) })
    const failed: OperatorVerdict = { note, releaseTargets: true, failedTargets: [], correct: false }
    yield* ledger.transition(refund.id, { to: "failed", source: "operator", at: at(n + 2), settleItems: true, holdsTarget: false, detail: note, verdict: failed })
    const again: OperatorVerdict = { note: "operator: again", releaseTargets: false, failedTargets: [], correct: false }
    const refused = yield* Effect.flip(ledger.transition(refund.id, { to: "succeeded", source: "operator", at: at(n + 3), detail: again.note, verdict: again }))
    assert.strictEqual(refused._tag, "IllegalTransition")
    const correction: OperatorVerdict = { note: "operator: one credited", releaseTargets: false, failedTargets: [iccid(n, 2)], correct: true }
    const corrected = yield* ledger.reclaim!(refund.id, {
      to: "succeeded",
      source: "operator",
      at: at(n + 4),
      settleItems: true,
      failedTargets: correction.failedTargets,
      corrects: true,
      detail: correction.note,
      verdict: correction
    })
    assert.deepStrictEqual(verdicts(corrected), [[1, true, undefined], [2, true, undefined], [3, true, failed], [4, false, again], [5, true, correction]])
    return corrected
  })

/** Writes through one ledger, reads through a fresh one on the same database: nothing answered from a cache. */
const roundTrip = (writer: Ledger.Ledger.Service, reader: Effect.Effect<Ledger.Ledger.Service, unknown, Scope.Scope>, n: number) =>
  Effect.gen(function*() {
    const corrected = yield* written(writer, n)
    const read = yield* (yield* reader).get(corrected.id)
    assert.deepStrictEqual(read, corrected)
    assert.deepStrictEqual(verdicts(read), verdicts(corrected))
    return corrected
  })

describe("an operator's verdict on its event", () => {
  for (const location of locations) {
    it.scopedLive(`reads back exactly as written, on ${location.name}`, () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const refund = yield* roundTrip(yield* build(SqlLedger.layer({ url })), build(SqlLedger.layer({ url })), 0)
        // JSON text, its four fields: the column is what a reader of the database sees too.
        const sql = yield* rawSql(url)
        const rows = yield* sql<{ readonly sequence: number; readonly verdict: string | null }>`SELECT sequence, verdict FROM refund_events
          WHERE refund_id = ${refund.id} ORDER BY sequence`
        assert.deepStrictEqual(rows.map((r) => [Number(r.sequence), r.verdict === null ? null : JSON.parse(r.verdict)]), verdicts(refund).map(([s, , v]) => [s, v ?? null]))
      }))
  }

  it.scopedLive("reads back exactly as written, through an application's SQLite client (the generic path)", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "ledger.db")
      const client = yield* SqliteClient.make({ filename: file }).pipe(Effect.provide(Reactivity.layer))
      const writer = yield* build(SqlLedger.layerFromClient().pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, client))))
      yield* roundTrip(writer, build(SqlLedger.layer({ url: file })), 10)
    }))

  it.scopedLive("reads back exactly as written, on PostgreSQL's batched writes", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const writer = yield* build(SqlLedger.layerPg(url))
      // Several refunds' verdicts at once: changes that meet share one statement (pgGroupCommit.ts).
      const all = yield* Effect.all(Array.from({ length: 6 }, (_, i) => written(writer, 20 + i * 10)), { concurrency: "unbounded" })
      const reader = yield* build(SqlLedger.layerPg(url))
      for (const refund of all) assert.deepStrictEqual(yield* reader.get(refund.id), refund)
    }))

  for (const location of locations) {
    it.scopedLive(`a stored verdict that does not match is a LedgerError naming the column, on ${location.name}`, () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const sql = yield* rawSql(url)
        const accepted = location.name === "SQLite" ? 1 : true
        const cases: ReadonlyArray<readonly [string, string]> = [
          ['{"note": 7, "releaseTargets": false, "failedTargets": [], "correct": false}', "column verdict.note"],
          ['{"note": "operator: x", "releaseTargets": false, "failedTargets": []}', "column verdict.correct"],
          ['{"note": "operator: x", "releaseTargets": "no", "failedTargets": [], "correct": false}', "column verdict.releaseTargets"],
          ['{"note": "operator: x", "releaseTargets": false, "failedTargets": [], "correct": false, "reopen": "yes"}', "column verdict.reopen"],
          ["not json", "column verdict"]
        ]
        for (const [i, [text, column]] of cases.entries()) {
          const refund = draft(`damaged-${i}`, { n: i })
          yield* ledger.claim(refund)
          // The history is append-only: a damaged verdict arrives as a new row (a hand edit, another tool).
          yield* sql`INSERT INTO refund_events (refund_seq, refund_id, sequence, at, source, from_status, to_status, accepted, detail, verdict)
            VALUES ((SELECT seq FROM refunds WHERE id = ${refund.id}), ${refund.id}, 2, ${at(1)}, 'operator', 'requested', 'requested', ${accepted}, 'x', ${text})`
          const error = yield* Effect.flip((yield* build(SqlLedger.layer({ url }))).get(refund.id))
          assert.strictEqual(error._tag, "LedgerError", text)
          assert.include(error.message, `an event of stored refund ${refund.id}`, text)
          assert.include(error.message, column, text)
        }
      }))
  }
})
