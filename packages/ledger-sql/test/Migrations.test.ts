import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { applyChange } from "@refundkit/core/Ledger"
import { Effect, Either, Option } from "effect"
import type { Refund } from "@refundkit/core/Refund"
import * as Claimants from "../src/internal/claimants.js"
import * as Rows from "../src/internal/rows.js"
import * as Migrations from "../src/Migrations.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, locations, rawSql } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"

const on = (sql: SqlClient.SqlClient) => <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.provideService(effect, SqlClient.SqlClient, sql)

/** A refund's row as ledgers before migration 14 (`claimed_by`) took it. */
const rowBefore14 = (refund: Refund) => {
  const { claimed_by: _, ...row } = Rows.insertRow(refund)
  return row
}

/** An event's row as ledgers before migration 17 (`callback_key`) took it. */
const eventBefore17 = (dialect: "sqlite" | "pg", refundId: string, event: Refund["events"][number]) => {
  const { callback_key: _, ...row } = Rows.eventRow(dialect, refundId, event)
  return row
}

/** An event's row as ledgers before migration 16 (`verdict`) took it. */
const eventBefore16 = (dialect: "sqlite" | "pg", refundId: string, event: Refund["events"][number]) => {
  const { verdict: _, ...row } = eventBefore17(dialect, refundId, event)
  return row
}

/** Applies the migrations before `id` only: a ledger as an older build left it. */
const migratedBelow = (sql: SqlClient.SqlClient, id: number) =>
  on(sql)(Migrator.make({})({
    loader: Migrator.fromRecord(Object.fromEntries(Object.entries(Migrations.migrations).filter(([key]) => Number.parseInt(key, 10) < id))),
    table: Migrations.table
  }))

const columnsOf = (sql: SqlClient.SqlClient, table: string) =>
  sql.onDialectOrElse({
    pg: () =>
      Effect.map(
        sql<{ readonly name: string }>`SELECT column_name AS name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = ${table}`,
        (rows) => rows.map((r) => r.name).sort()
      ),
    orElse: () => Effect.map(sql<{ readonly name: string }>`SELECT name FROM pragma_table_info(${table})`, (rows) => rows.map((r) => r.name).sort())
  })

describe("Migrations", () => {
  it.scopedLive("SQLite and PostgreSQL get the same logical schema", () =>
    Effect.gen(function*() {
      const schemas = []
      for (const location of locations) {
        const sql = yield* rawSql(yield* location.fresh)
        yield* on(sql)(Migrations.run)
        schemas.push({
          refunds: yield* columnsOf(sql, "refunds"),
          refund_events: yield* columnsOf(sql, "refund_events"),
          refund_targets: yield* columnsOf(sql, "refund_targets")
        })
      }
      assert.deepStrictEqual(schemas[0], schemas[1])
      assert.includeMembers(schemas[0]!.refunds, ["seq", "id", "provider", "idempotency_key", "fingerprint", "request", "status", "amount", "currency"])
    }))

  for (const location of locations) {
    describe(location.name, () => {
      it.scopedLive("applies each migration once, and readiness follows", () =>
        Effect.gen(function*() {
          const sql = yield* rawSql(yield* location.fresh)
          const before = yield* Effect.flip(on(sql)(Migrations.check))
          assert.strictEqual(before._tag, "LedgerError")
          assert.deepStrictEqual(yield* on(sql)(Migrations.run), [[1, "create_ledger"], [2, "version_on_update"], [3, "keyed_by_refund_seq"], [4, "every_target_reserved"], [5, "provider_final"], [6, "sync_due_index"], [7, "status_seq_index"], [8, "refund_turns"], [9, "sync_due_by_provider"], [10, "status_provider_seq_index"], [11, "created_seq_index"], [12, "alive_until"], [13, "failed_holds_target"], [14, "claimed_by"], [15, "released_targets"], [16, "event_verdict"], [17, "event_callback_key"]])
          assert.deepStrictEqual(yield* on(sql)(Migrations.run), [])
          yield* on(sql)(Migrations.check)
          assert.strictEqual(Migrations.latest, 17)
          // A newer build migrated past this one (a rolling upgrade): this process refuses to start, not "ready" with failing writes.
          yield* sql`INSERT INTO ${sql(Migrations.table)} (migration_id, name) VALUES (${Migrations.latest + 1}, ${"from_the_future"})`
          for (const step of [Migrations.check, Migrations.run]) {
            const newer = yield* Effect.flip(on(sql)(step))
            assert.strictEqual(newer._tag, "LedgerError")
            assert.include(newer.message, "newer than this build knows")
            assert.notInclude(newer.message, "reachable")
          }
        }))

      it.scopedLive("several processes starting at once migrate exactly once", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const clients = yield* Effect.all(Array.from({ length: 5 }, () => rawSql(url)))
          // These connections share one thread, unlike processes: a busy handler sleeping in one
          // would stall the one holding the lock. Like the ledger's own connection, they retry instead.
          if (location.name === "SQLite") yield* Effect.forEach(clients, (sql) => sql.unsafe("PRAGMA busy_timeout = 0"), { discard: true })
          const applied = yield* Effect.all(clients.map((sql) => on(sql)(Migrations.run)), { concurrency: "unbounded" })
          assert.deepStrictEqual(applied.map((a) => a.length).sort(), [0, 0, 0, 0, 17], "one process applies every migration")
        }))

      it.scopedLive("a ledger from before migration 3 keeps every event and reservation", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 3)
          // Rows as the ledger of migration 2 wrote them: events and reservations under the refund's id.
          const moved = Either.getOrThrow(applyChange(partial("before-3", "pay-9", "6.00", "10.00"), { to: "pending", source: "sync", at: at(1) }))
          const dialect = location.name === "SQLite" ? "sqlite" : "pg"
          yield* sql`INSERT INTO refunds ${sql.insert(rowBefore14(moved))}`
          yield* sql`INSERT INTO refund_events ${sql.insert(moved.events.map((e) => eventBefore16(dialect, moved.id, e)))}`
          yield* sql`INSERT INTO refund_targets ${sql.insert(Rows.targetRows(moved))}`

          const ledger = yield* build(SqlLedger.layer({ url }))
          assert.deepStrictEqual(yield* ledger.get(moved.id), moved)
          // The reservation still counts: 6.00 of 10.00 is taken, so 5.00 more is refused and 4.00 fits.
          const over = yield* Effect.flip(ledger.claim(partial("after-3", "pay-9", "5.00", "10.00", 2)))
          assert.strictEqual(over._tag, "OverRefund")
          yield* ledger.claim(partial("fits", "pay-9", "4.00", "10.00", 2))
          const done = yield* ledger.transition(moved.id, { to: "succeeded", source: "webhook", at: at(3) })
          assert.deepStrictEqual(done.events.map((e) => e.sequence), [1, 2, 3])
          assert.deepStrictEqual(yield* ledger.get(moved.id), done)
        }))

      it.scopedLive("a ledger from before migration 4: refunds it held no reservation for still block a guarded refund", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 4)
          // As migration 3's ledger wrote them: a reservation only for an amount with a currency.
          const noCurrency = draft("no-currency", { amount: "80.00", targets: [{ target: "pay-1", amount: "80.00" }] })
          const whole = draft("whole", { currency: "USD", n: 1, targets: [{ target: "pay-2" }, { target: "pay-2" }] })
          const counted = partial("counted", "pay-3", "60.00", "100.00", 2)
          for (const refund of [noCurrency, whole, counted]) yield* sql`INSERT INTO refunds ${sql.insert(rowBefore14(refund))}`
          const seqs = yield* sql<{ readonly seq: number | string }>`SELECT seq FROM refunds WHERE id = ${counted.id}`
          yield* sql`INSERT INTO refund_targets ${sql.insert([{ refund_seq: seqs[0]!.seq, refund_id: counted.id, provider: "toy", target: "pay-3", amount_minor: "6000", currency: "USD" }])}`

          const ledger = yield* build(SqlLedger.layer({ url }))
          const blocked = yield* Effect.flip(ledger.claim(partial("after-1", "pay-1", "20.00", "100.00", 3)))
          assert.deepStrictEqual(blocked._tag === "OverRefund" ? blocked.blockedBy : blocked, { refundId: noCurrency.id, reason: "states no currency" })
          const spent = yield* Effect.flip(ledger.claim(partial("after-2", "pay-2", "0.01", "100.00", 3)))
          assert.deepStrictEqual(spent._tag === "OverRefund" ? spent.blockedBy : spent, { refundId: whole.id, reason: "states no amount (a whole refund)" })
          const over = yield* Effect.flip(ledger.claim(partial("after-3", "pay-3", "40.01", "100.00", 3)))
          assert.deepStrictEqual(over._tag === "OverRefund" ? [over.remaining, over.blockedBy] : over, ["40.00", undefined])
          assert.strictEqual((yield* ledger.claim(partial("fits", "pay-3", "40.00", "100.00", 3)))._tag, "Claimed")
        }))

      it.scopedLive("a ledger from before migration 5: its refunds read back as they were, and stay due for sync", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 5)
          const behind = yield* Effect.flip(on(sql)(Migrations.check))
          assert.include(behind.message, `migration 4, ${Migrations.latest} is required`)
          // A chargeback as a ledger before migration 5 recorded it: requires_action, no flag.
          const refund = draft("charged-before")
          yield* sql`INSERT INTO refunds ${sql.insert(rowBefore14({ ...refund, status: "requires_action", providerStatus: "CHARGEBACK" }))}`
          const ledger = yield* build(SqlLedger.layer({ url }))
          const read = yield* ledger.get(refund.id)
          assert.strictEqual(read.providerStatus, "CHARGEBACK")
          assert.isUndefined(read.providerFinal)
          assert.deepStrictEqual((yield* ledger.needingSync({ limit: 5 })).map((r) => r.id), [refund.id])
          // The first sync that hears the word again records it final.
          yield* ledger.transition(refund.id, { to: "requires_action", source: "sync", at: at(5), providerStatus: "CHARGEBACK", providerFinal: true })
          assert.deepStrictEqual(yield* ledger.needingSync({ limit: 5 }), [])
        }))

      it.scopedLive("a ledger from before migration 13: its failed refunds read back as they were and hold nothing, until their provider's word is recorded again", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 13)
          // A CLOSED order as a ledger before migration 13 recorded it: failed, its reservation there, no hold.
          const refund = draft("closed-before", { provider: "aerohub", targets: [{ target: "FBRF920001" }] })
          const closed = Either.getOrThrow(applyChange(refund, { to: "failed", source: "submit", at: at(1), providerStatus: "CLOSED" }))
          yield* sql`INSERT INTO refunds ${sql.insert(rowBefore14(closed))}`
          const seqs = yield* sql<{ readonly seq: number | string }>`SELECT seq FROM refunds WHERE id = ${closed.id}`
          yield* sql`INSERT INTO refund_targets ${sql.insert(Rows.targetRows(closed).map((t) => ({ refund_seq: seqs[0]!.seq, ...t })))}`
          const ledger = yield* build(SqlLedger.layer({ url }))
          const read = yield* ledger.get(closed.id)
          assert.strictEqual(read.status, "failed")
          assert.isUndefined(read.holdsTarget)
          assert.isTrue(Option.isNone(yield* ledger.holderOf!("aerohub", "FBRF920001")))
          // Its provider's word recorded again with the hold (AeroHub: the same CLOSED update, repeated) holds the order.
          yield* ledger.transition(closed.id, { to: "failed", source: "operator", at: at(2), providerStatus: "CLOSED", holdsTarget: true })
          const refused = yield* Effect.flip(ledger.claim(draft("second", { n: 3, provider: "aerohub", targets: [{ target: "FBRF920001" }] })))
          assert.strictEqual(refused._tag, "TargetAlreadyRefunded")
        }))

      it.scopedLive("a ledger from before migration 14: its requested refunds name no claimant and are recovered by grace and lease, as before", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 14)
          const before = draft("claimed-before", { n: 1 })
          yield* sql`INSERT INTO refunds ${sql.insert(rowBefore14(before))}`
          const ledger = yield* build(SqlLedger.layer({ url }))
          const after = draft("claimed-after", { n: 2 })
          yield* ledger.claim(after)
          const claimants = yield* sql<{ readonly id: string; readonly claimed_by: string | null }>`SELECT id, claimed_by FROM refunds ORDER BY seq`
          assert.deepStrictEqual(claimants.map((r) => [r.id, r.claimed_by]), [[before.id, null], [after.id, Claimants.self() ?? null]])
          assert.deepStrictEqual(yield* ledger.orphaned!([before.id, after.id]), [], "neither claimant is known to have ended")
          assert.deepStrictEqual(yield* ledger.recover({ olderThan: at(0), at: at(9) }), [], "within the grace")
          const moved = yield* ledger.recover({ olderThan: at(3), at: at(9) })
          assert.deepStrictEqual(moved.map((r) => r.id), [before.id, after.id])
        }))

      it.scopedLive("a ledger from before migration 15: a target whose item its refund records failed is released, every other stays held", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 15)
          const guarded = (key: string, target: string, amount: string, n: number) =>
            draft(key, { n, currency: "INR", amount, targets: [{ target, amount, originalAmount: "100.00" }] })
          const batch = (key: string, n: number) =>
            draft(key, { n, currency: "INR", amount: "160.00", targets: [{ target: `${key}-ok`, amount: "10.00" }, { target: `${key}-refused`, amount: "150.00" }] })
          const answered = (refund: Refund, status: Refund["status"], refused: Refund["status"]) =>
            Either.getOrThrow(applyChange(refund, {
              to: status,
              source: "submit",
              at: at(1),
              items: [{ target: `${refund.idempotencyKey}-ok`, status: "succeeded" }, { target: `${refund.idempotencyKey}-refused`, status: refused }]
            }))
          // As ledgers before migration 15 left them: a mixed answer, one resolved succeeded, one whose refused
          // target also has an item not failed, a failed refund its provider keeps (the flag set by hand here).
          const mixed = answered(batch("mixed", 1), "requires_action", "failed")
          const resolved = Either.getOrThrow(applyChange(answered(batch("resolved", 2), "requires_action", "failed"), { to: "succeeded", source: "operator", at: at(2), settleItems: true }))
          const twice = Either.getOrThrow(applyChange(batch("twice", 3), {
            to: "pending",
            source: "submit",
            at: at(1),
            items: [{ target: "twice-ok", status: "succeeded" }, { target: "twice-refused", status: "failed" }, { target: "twice-refused", status: "pending" }]
          }))
          const kept = Either.getOrThrow(applyChange(batch("kept", 4), {
            to: "failed",
            source: "submit",
            at: at(1),
            holdsTarget: true,
            items: [{ target: "kept-ok", status: "failed" }, { target: "kept-refused", status: "failed" }]
          }))
          for (const refund of [mixed, resolved, twice, kept]) {
            yield* sql`INSERT INTO refunds ${sql.insert(Rows.insertRow(refund))}`
            const seqs = yield* sql<{ readonly seq: number | string }>`SELECT seq FROM refunds WHERE id = ${refund.id}`
            yield* sql`INSERT INTO refund_targets ${sql.insert(Rows.targetRows(refund).map((t) => ({ refund_seq: seqs[0]!.seq, ...t })))}`
          }
          yield* sql`UPDATE refunds SET holds_target = 1 WHERE id = ${kept.id}`

          const ledger = yield* build(SqlLedger.layer({ url }))
          const flags = yield* sql<{ readonly target: string; readonly released: number | string }>`SELECT target, released FROM refund_targets ORDER BY target`
          assert.deepStrictEqual(flags.map((r) => [r.target, Number(r.released)]), [
            ["kept-ok", 0],
            ["kept-refused", 0],
            ["mixed-ok", 0],
            ["mixed-refused", 1],
            ["resolved-ok", 0],
            ["resolved-refused", 1],
            ["twice-ok", 0],
            ["twice-refused", 0]
          ])
          for (const key of ["mixed", "resolved"]) {
            assert.strictEqual((yield* ledger.claim(guarded(`${key}-fix`, `${key}-refused`, "15.00", 10)))._tag, "Claimed", key)
            const over = yield* Effect.flip(ledger.claim(guarded(`${key}-over`, `${key}-ok`, "95.00", 11)))
            assert.deepStrictEqual(over._tag === "OverRefund" ? over.remaining : over, "90.00", key)
          }
          for (const target of ["twice-refused", "kept-refused"]) {
            assert.strictEqual((yield* Effect.flip(ledger.claim(guarded(`${target}-fix`, target, "15.00", 12))))._tag, "OverRefund", target)
          }
          // Its next change keeps the flag in step: the provider correcting itself holds the target again.
          yield* ledger.transition(mixed.id, { to: "pending", source: "sync", at: at(20), items: [{ target: "mixed-ok", status: "succeeded" }, { target: "mixed-refused", status: "pending" }] })
          assert.strictEqual((yield* Effect.flip(ledger.claim(guarded("mixed-fix-2", "mixed-refused", "1.00", 21))))._tag, "OverRefund")
        }))

      it.scopedLive("a ledger from before migration 16: its verdicts read back as recorded, without a verdict record; verdicts since carry one", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 16)
          const dialect = location.name === "SQLite" ? "sqlite" : "pg"
          // As ledgers before migration 16 wrote it: an operator's verdict in words alone.
          const unknown = Either.getOrThrow(applyChange(draft("before-16"), { to: "unknown", source: "recovery", at: at(1) }))
          const settled = Either.getOrThrow(applyChange(unknown, { to: "failed", source: "operator", at: at(2), detail: "operator: not at the provider" }))
          yield* sql`INSERT INTO refunds ${sql.insert(Rows.insertRow(settled))}`
          const seqs = yield* sql<{ readonly seq: number | string }>`SELECT seq FROM refunds WHERE id = ${settled.id}`
          yield* sql`INSERT INTO refund_events ${sql.insert(settled.events.map((e) => ({ refund_seq: seqs[0]!.seq, ...eventBefore16(dialect, settled.id, e) })))}`

          const ledger = yield* build(SqlLedger.layer({ url }))
          assert.deepStrictEqual(yield* ledger.get(settled.id), settled)
          assert.isUndefined((yield* ledger.get(settled.id)).events.at(-1)!.verdict)
          const verdict = { note: "operator: credited after all", releaseTargets: false, failedTargets: [], correct: true }
          const corrected = yield* ledger.transition(settled.id, { to: "succeeded", source: "operator", at: at(3), corrects: true, detail: verdict.note, verdict })
          assert.deepStrictEqual(corrected.events.map((e) => e.verdict), [undefined, undefined, undefined, verdict])
          assert.deepStrictEqual(yield* (yield* build(SqlLedger.layer({ url }))).get(settled.id), corrected)
        }))

      it.scopedLive("a ledger from before migration 17: its callbacks, known by their words, are still duplicates; callbacks since carry their key, once per refund", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const sql = yield* rawSql(url)
          yield* migratedBelow(sql, 17)
          const dialect = location.name === "SQLite" ? "sqlite" : "pg"
          // As core recorded callbacks before: the key in the words alone, the whole detail, or the end of a
          // refusal's (or of a reopening's) words.
          const pending = Either.getOrThrow(applyChange(draft("before-17"), { to: "pending", source: "submit", at: at(1), providerStatus: "PENDING" }))
          const done = Either.getOrThrow(applyChange(pending, { to: "succeeded", source: "webhook", at: at(2), providerStatus: "DONE", detail: "webhook R1:DONE" }))
          const late = applyChange(done, { to: "pending", source: "webhook", at: at(3), providerStatus: "PENDING", detail: "webhook R1:PENDING" })
          const before = Either.isLeft(late) ? late.left.refused : done
          assert.strictEqual(before.events.at(-1)!.detail, "refused: succeeded -> pending is not a legal transition (webhook R1:PENDING)")
          yield* sql`INSERT INTO refunds ${sql.insert(Rows.insertRow(before))}`
          const seqs = yield* sql<{ readonly seq: number | string }>`SELECT seq FROM refunds WHERE id = ${before.id}`
          yield* sql`INSERT INTO refund_events ${sql.insert(before.events.map((e) => ({ refund_seq: seqs[0]!.seq, ...eventBefore17(dialect, before.id, e) })))}`

          const ledger = yield* build(SqlLedger.layer({ url }))
          assert.deepStrictEqual(yield* ledger.get(before.id), before)
          const callback = (status: string, n: number) =>
            ledger.transition(before.id, { to: "succeeded", source: "webhook", at: at(n), providerStatus: status, callbackKey: `R1:${status}`, detail: `the provider says ${status}` })
          assert.strictEqual((yield* Effect.flip(callback("DONE", 4)))._tag, "DuplicateCallback")
          assert.strictEqual((yield* Effect.flip(callback("PENDING", 5)))._tag, "DuplicateCallback")
          assert.deepStrictEqual(yield* ledger.get(before.id), before, "nothing recorded")

          const settled = yield* callback("SETTLED", 6)
          assert.deepStrictEqual(settled.events.map((e) => e.callbackKey), [undefined, undefined, undefined, undefined, "R1:SETTLED"])
          assert.deepStrictEqual(yield* (yield* build(SqlLedger.layer({ url }))).get(before.id), settled)
          assert.strictEqual((yield* Effect.flip(callback("SETTLED", 7)))._tag, "DuplicateCallback")
          // The storage's own guarantee, whatever a ledger's code does: one event per callback key and refund.
          const twice = { ...settled.events.at(-1)!, sequence: 6 }
          const refused = yield* Effect.flip(sql`INSERT INTO refund_events ${sql.insert({ refund_seq: seqs[0]!.seq, ...Rows.eventRow(dialect, before.id, twice) })}`)
          assert.match(String(refused.cause), /unique/i)
        }))

      it.scopedLive("the event history is append-only", () =>
        Effect.gen(function*() {
          const url = yield* location.fresh
          const ledger = yield* build(SqlLedger.layer({ url }))
          const refund = draft("history")
          yield* ledger.claim(refund)
          const sql = yield* rawSql(url)
          const update = yield* Effect.flip(sql`UPDATE refund_events SET detail = 'rewritten' WHERE refund_id = ${refund.id}`)
          assert.include(String(update.cause), "append-only")
          const remove = yield* Effect.flip(sql`DELETE FROM refund_events WHERE refund_id = ${refund.id}`)
          assert.include(String(remove.cause), "append-only")
          assert.deepStrictEqual(yield* ledger.get(refund.id), refund)
        }))
    })
  }
})
