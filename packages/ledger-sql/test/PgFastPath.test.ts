// PostgreSQL's one-statement paths (internal/pgFastPath.ts): a claim without guards and
// a change to a refund the ledger remembers are each one round trip, and whenever the
// remembered refund is not what the database holds (another instance, a hand edit, an
// older ledger's refusal) the change is made under the row lock from the stored refund.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import type { Refund } from "@refundkit/core"
import { Context, Effect, Either, Layer, Option, Redacted } from "effect"
import * as PgFastPath from "../src/internal/pgFastPath.js"
import * as PgPool from "../src/internal/pgPool.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"
import { countedLedger } from "./support/roundTrips.js"

/** A refund reserving against a target, as a provider plugin hands it over without an original amount. */
const plain = (key: string, target = `pay-${key}`) => draft(key, { currency: "EUR", amount: "5.00", targets: [{ target, amount: "5.00" }] })

const sequences = (refund: Refund.Refund) => refund.events.map((e) => e.sequence)

/** What the tables hold for a refund, read beside the ledger. */
const stored = (url: string, id: string) =>
  Effect.gen(function*() {
    const sql = yield* rawSql(url)
    const events = yield* sql<{ readonly sequence: number; readonly accepted: boolean }>`
      SELECT sequence, accepted FROM refund_events WHERE refund_id = ${id} ORDER BY sequence`
    const targets = yield* sql<{ readonly target: string }>`SELECT target FROM refund_targets WHERE refund_id = ${id}`
    const rows = yield* sql<{ readonly version: number; readonly status: string }>`SELECT version, status FROM refunds WHERE id = ${id}`
    return { events, targets, version: rows[0]?.version, status: rows[0]?.status }
  })

describe("PostgreSQL ledger fast paths", () => {
  it.scopedLive("a claim without guards is one round trip; a taken key is Existing and nothing is written twice", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      // The first statement on a connection prepares it there.
      yield* ledger.claim(plain("warm-up"))
      yield* trips

      const refund = plain("one")
      assert.strictEqual((yield* ledger.claim(refund))._tag, "Claimed")
      assert.strictEqual(yield* trips, 1)
      const again = yield* ledger.claim({ ...refund, fingerprint: "another request", events: [{ ...refund.events[0]!, at: at(9) }] })
      assert.strictEqual(again._tag, "Existing")
      assert.deepStrictEqual(again.refund, refund)
      assert.strictEqual(yield* trips, 2, "the taken key, then the refund holding it")

      const tables = yield* stored(url, refund.id)
      assert.deepStrictEqual(tables.events.map((e) => e.sequence), [1])
      assert.deepStrictEqual(tables.targets.map((t) => t.target), ["pay-one"])
      assert.strictEqual(tables.version, 1)
      assert.deepStrictEqual(yield* ledger.get(refund.id), refund)
    }))

  it.scopedLive("concurrent claims of one key by two ledger instances: one refund, one event, one reservation", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const one = yield* build(SqlLedger.layerPg(url))
      const two = yield* build(SqlLedger.layerPg(url))
      const claims = yield* Effect.all(
        Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? one : two).claim({ ...plain("shared"), fingerprint: `f-${i}` })),
        { concurrency: "unbounded" }
      )
      const winners = claims.filter((c) => c._tag === "Claimed")
      assert.strictEqual(winners.length, 1)
      for (const c of claims) assert.deepStrictEqual(c.refund, winners[0]!.refund)
      const tables = yield* stored(url, winners[0]!.refund.id)
      assert.deepStrictEqual(tables.events.map((e) => e.sequence), [1])
      assert.strictEqual(tables.targets.length, 1)
    }))

  it.scopedLive("a change to a refund the ledger wrote is one round trip, with consecutive sequences", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      yield* ledger.transition((yield* ledger.claim(plain("warm-up"))).refund.id, { to: "pending", source: "submit", at: at(1) })
      const refund = plain("moving")
      yield* ledger.claim(refund)
      yield* trips

      const pending = yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: "R-1", providerStatus: "QUEUED" })
      const done = yield* ledger.transition(refund.id, { to: "succeeded", source: "webhook", at: at(2), providerStatus: "DONE", detail: "callback" })
      assert.strictEqual(yield* trips, 2)
      assert.deepStrictEqual(sequences(pending), [1, 2])
      assert.deepStrictEqual(sequences(done), [1, 2, 3])
      assert.deepStrictEqual(yield* ledger.get(refund.id), done)
      const tables = yield* stored(url, refund.id)
      assert.deepStrictEqual(tables.events.map((e) => e.sequence), [1, 2, 3])
      assert.strictEqual(tables.version, 3)
    }))

  it.scopedLive("a refused change records its refused event in one round trip and fails with IllegalTransition", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      const warm = (yield* ledger.claim(plain("warm-up"))).refund.id
      yield* ledger.transition(warm, { to: "failed", source: "submit", at: at(1) })
      yield* Effect.flip(ledger.transition(warm, { to: "pending", source: "sync", at: at(2) }))
      const refund = plain("refused")
      yield* ledger.claim(refund)
      yield* ledger.transition(refund.id, { to: "succeeded", source: "submit", at: at(1) })
      yield* trips

      const refusal = yield* Effect.flip(ledger.transition(refund.id, { to: "failed", source: "sync", at: at(2), detail: "late FAILED" }))
      assert.strictEqual(refusal._tag, "IllegalTransition")
      assert.strictEqual(yield* trips, 1)
      // The refusal moved the version on and is remembered: the next change builds on it.
      const second = yield* Effect.flip(ledger.transition(refund.id, { to: "pending", source: "sync", at: at(3) }))
      assert.strictEqual(second._tag, "IllegalTransition")
      assert.strictEqual(yield* trips, 1)

      const after = yield* ledger.get(refund.id)
      assert.strictEqual(after.status, "succeeded")
      assert.strictEqual(after.updatedAt, at(1))
      assert.deepStrictEqual(after.events.map((e) => [e.sequence, e.from, e.to, e.accepted]), [
        [1, null, "requested", true],
        [2, "requested", "succeeded", true],
        [3, "succeeded", "failed", false],
        [4, "succeeded", "pending", false]
      ])
      assert.strictEqual(after.events[2]!.detail, "refused: succeeded -> failed is not a legal transition (late FAILED)")
      assert.strictEqual((yield* stored(url, refund.id)).version, 4)
    }))

  it.scopedLive("another instance's change makes the remembered refund stale: the change falls back to the lock and loses nothing", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger: first, trips } = yield* countedLedger(url)
      const second = yield* build(SqlLedger.layerPg(url))
      const refund = plain("shared")
      yield* first.claim(refund)
      yield* first.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerStatus: "FIRST" })
      yield* second.transition(refund.id, { to: "pending", source: "sync", at: at(2), providerStatus: "SECOND", references: { batch: "b-7" } })
      yield* trips

      const moved = yield* first.transition(refund.id, { to: "pending", source: "sync", at: at(3), items: [{ target: "pay-shared", status: "pending" }] })
      assert.isAbove(yield* trips, 1, "the version-checked write matched nothing, so the locked path ran")
      assert.deepStrictEqual(sequences(moved), [1, 2, 3, 4])
      assert.strictEqual(moved.events[2]!.providerStatus, "SECOND")
      assert.deepStrictEqual(moved.references, { batch: "b-7" })
      assert.strictEqual(moved.providerStatus, "SECOND")
      assert.deepStrictEqual(yield* second.get(refund.id), moved)
      // Remembered again after the locked path: the next change is one round trip.
      const done = yield* first.transition(refund.id, { to: "succeeded", source: "webhook", at: at(4) })
      assert.strictEqual(yield* trips, 1)
      assert.deepStrictEqual(sequences(done), [1, 2, 3, 4, 5])
      assert.deepStrictEqual(yield* second.get(refund.id), done)
    }))

  it.scopedLive("two instances changing one refund concurrently: every change kept, sequences consecutive", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const one = yield* build(SqlLedger.layerPg(url))
      const two = yield* build(SqlLedger.layerPg(url))
      const refund = plain("contended")
      yield* one.claim(refund)
      // Both instances remember the refund before the race.
      yield* one.transition(refund.id, { to: "pending", source: "submit", at: at(1) })
      yield* two.get(refund.id)
      const results = yield* Effect.all(
        Array.from({ length: 40 }, (_, i) =>
          Effect.either((i % 2 === 0 ? one : two).transition(refund.id, { to: "pending", source: "sync", at: at(2 + i), providerStatus: `P${i}` }))),
        { concurrency: "unbounded" }
      )
      assert.isTrue(results.every(Either.isRight))
      const final = yield* one.get(refund.id)
      assert.deepStrictEqual(sequences(final), Array.from({ length: 42 }, (_, i) => i + 1))
      assert.sameMembers(final.events.slice(2).map((e) => e.providerStatus), Array.from({ length: 40 }, (_, i) => `P${i}`))
      assert.deepStrictEqual(yield* two.get(refund.id), final)
      assert.strictEqual((yield* stored(url, refund.id)).version, 42)
    }))

  it.scopedLive("an UPDATE made outside the ledger invalidates the remembered refund", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      const refund = plain("edited")
      yield* ledger.claim(refund)
      yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1) })
      const sql = yield* rawSql(url)
      // An operator's fix that leaves `version` alone: the trigger of migration 2 moves it on.
      yield* sql`UPDATE refunds SET status = 'succeeded', provider_status = 'FIXED BY HAND' WHERE id = ${refund.id}`

      // From the remembered `pending` this would be legal; from the stored `succeeded` it is not.
      const refusal = yield* Effect.flip(ledger.transition(refund.id, { to: "failed", source: "sync", at: at(2) }))
      assert.strictEqual(refusal._tag, "IllegalTransition")
      const after = yield* ledger.get(refund.id)
      assert.strictEqual(after.status, "succeeded")
      assert.strictEqual(after.providerStatus, "FIXED BY HAND")
      assert.deepStrictEqual(after.events.map((e) => [e.sequence, e.from, e.to, e.accepted]).at(-1), [3, "succeeded", "failed", false])
    }))

  it.scopedLive("inside a transaction the caller opened, the ledger's writes join it and nothing is remembered", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const sql = yield* PgClient.make({ url: Redacted.make(url) }).pipe(Effect.provide(Reactivity.layer))
      const ledger = yield* build(SqlLedger.layerFromClient().pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, sql))))
      const other = yield* build(SqlLedger.layerPg(url))
      const rolledBack = plain("rolled-back")
      const kept = plain("kept")
      yield* ledger.claim(kept)
      const aborted = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
        yield* ledger.claim(rolledBack)
        yield* ledger.transition(kept.id, { to: "pending", source: "submit", at: at(1) })
        return yield* Effect.fail("changed my mind")
      })))
      assert.strictEqual(aborted, "changed my mind")
      assert.isTrue(Option.isNone(yield* ledger.findByKey("toy", "rolled-back")))
      // The rolled-back `pending` was never remembered: once another instance has moved the
      // refund to version 2, this change is decided from the stored `succeeded`.
      yield* other.transition(kept.id, { to: "succeeded", source: "webhook", at: at(2) })
      const refusal = yield* Effect.flip(ledger.transition(kept.id, { to: "failed", source: "sync", at: at(3) }))
      assert.strictEqual(refusal._tag, "IllegalTransition")
      const after = yield* other.get(kept.id)
      assert.deepStrictEqual(after.events.map((e) => [e.sequence, e.to, e.accepted]), [[1, "requested", true], [2, "succeeded", true], [3, "failed", false]])
      assert.strictEqual((yield* ledger.claim(rolledBack))._tag, "Claimed")
    }))

  it.scopedLive("events added without a version bump (an older ledger's refusal) are caught by their sequence", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      const refund = plain("old-writer")
      yield* ledger.claim(refund)
      yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1) })
      const sql = yield* rawSql(url)
      yield* sql`INSERT INTO refund_events (refund_seq, refund_id, sequence, at, source, from_status, to_status, accepted, detail)
        VALUES ((SELECT seq FROM refunds WHERE id = ${refund.id}), ${refund.id}, 3, ${at(2)}, 'sync', 'pending', 'requested', false, 'refused by an older ledger')`

      const done = yield* ledger.transition(refund.id, { to: "succeeded", source: "webhook", at: at(3) })
      assert.deepStrictEqual(sequences(done), [1, 2, 3, 4])
      assert.strictEqual(done.events[2]!.detail, "refused by an older ledger")
      assert.deepStrictEqual(yield* ledger.get(refund.id), done)
    }))

  it.scopedLive("claims and changes that meet leave together: one round trip for many refunds, each written whole", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      yield* ledger.claim(plain("warm-up"))
      const taken = plain("taken")
      yield* ledger.claim(taken)
      yield* trips

      const refunds = Array.from({ length: 20 }, (_, i) => plain(`together-${i}`))
      const claims = yield* Effect.all(refunds.map((refund) => ledger.claim(refund)), { concurrency: "unbounded" })
      assert.deepStrictEqual(claims.map((c) => c._tag), refunds.map(() => "Claimed"))
      assert.strictEqual(yield* trips, 1)

      const moved = yield* Effect.all(
        refunds.map((refund, i) => ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: `R-${i}` })),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(yield* trips, 1)
      for (const [i, refund] of refunds.entries()) {
        assert.deepStrictEqual(yield* ledger.get(refund.id), moved[i])
        const tables = yield* stored(url, refund.id)
        assert.deepStrictEqual(tables.events.map((e) => e.sequence), [1, 2])
        assert.deepStrictEqual(tables.targets.map((t) => t.target), [`pay-together-${i}`])
        assert.strictEqual(tables.version, 2)
        assert.strictEqual(tables.status, "pending")
      }
      yield* trips

      // A taken key in a batch is Existing, and nothing of it is written again.
      const mixed = yield* Effect.all([ledger.claim(plain("fresh")), ledger.claim({ ...taken, fingerprint: "another request" })], { concurrency: "unbounded" })
      assert.deepStrictEqual(mixed.map((c) => c._tag), ["Claimed", "Existing"])
      assert.deepStrictEqual(mixed[1]!.refund, taken)
      assert.deepStrictEqual((yield* stored(url, taken.id)).events.map((e) => e.sequence), [1])
    }))

  it.scopedLive("a provider-final status travels through a change alone and through a batch of changes", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      const refunds = Array.from({ length: 6 }, (_, i) => plain(`final-${i}`))
      yield* Effect.all(refunds.map((refund) => ledger.claim(refund)), { concurrency: "unbounded" })
      yield* trips
      const chargeback = (refund: Refund.Refund, final: boolean) =>
        ledger.transition(refund.id, { to: "requires_action", source: "sync", at: at(2), providerStatus: final ? "CHARGEBACK" : "DISPUTE", providerFinal: final })
      yield* Effect.all(refunds.slice(0, 4).map((refund, i) => chargeback(refund, i % 2 === 0)), { concurrency: "unbounded" })
      assert.strictEqual(yield* trips, 1, "one batch")
      yield* chargeback(refunds[4]!, true)
      yield* chargeback(refunds[5]!, false)
      // Read by an instance that remembers nothing: what the columns hold.
      const other = yield* build(SqlLedger.layerPg(url))
      const due = (yield* other.needingSync({ limit: 10 })).map((r) => r.idempotencyKey).sort()
      assert.deepStrictEqual(due, ["final-1", "final-3", "final-5"])
      assert.deepStrictEqual((yield* other.get(refunds[0]!.id)).providerFinal, true)
    }))

  it.scopedLive("the same key claimed twice, or one refund changed six times, in one turn: one winner, every change kept", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger } = yield* countedLedger(url)
      const refund = plain("twice")
      const claims = yield* Effect.all([ledger.claim(refund), ledger.claim({ ...refund, fingerprint: "second" }), ledger.claim(plain("other"))], {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(claims.map((c) => c._tag), ["Claimed", "Existing", "Claimed"])
      assert.deepStrictEqual(claims[1]!.refund, refund)

      const changes = yield* Effect.all(
        Array.from({ length: 6 }, (_, i) => ledger.transition(refund.id, { to: "pending", source: "sync", at: at(1 + i), providerStatus: `P${i}` })),
        { concurrency: "unbounded" }
      )
      const final = yield* ledger.get(refund.id)
      assert.deepStrictEqual(sequences(final), [1, 2, 3, 4, 5, 6, 7])
      assert.sameMembers(final.events.slice(1).map((e) => e.providerStatus), changes.map((_, i) => `P${i}`))
      assert.strictEqual((yield* stored(url, refund.id)).version, 7)
    }))

  it.scopedLive("a batch PostgreSQL refuses is sent again write by write: only the refused write takes the locked path", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      const refunds = Array.from({ length: 5 }, (_, i) => plain(`refused-batch-${i}`))
      for (const refund of refunds) {
        yield* ledger.claim(refund)
        yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1) })
      }
      // An older ledger's refusal: an event with no version bump, so the remembered history
      // is short and that refund's event collides on its sequence, failing the whole statement.
      const sql = yield* rawSql(url)
      const stale = refunds[2]!
      yield* sql`INSERT INTO refund_events (refund_seq, refund_id, sequence, at, source, from_status, to_status, accepted, detail)
        VALUES ((SELECT seq FROM refunds WHERE id = ${stale.id}), ${stale.id}, 3, ${at(2)}, 'sync', 'pending', 'requested', false, 'refused by an older ledger')`
      yield* trips

      const done = yield* Effect.all(refunds.map((refund) => ledger.transition(refund.id, { to: "succeeded", source: "webhook", at: at(3) })), {
        concurrency: "unbounded"
      })
      // The refused batch, each write again alone, and the locked path (BEGIN, the locked read
      // and its events, the write, COMMIT) for the stale refund only; 26 if every write took it.
      assert.strictEqual(yield* trips, 1 + refunds.length + 5)
      assert.deepStrictEqual(done.map(sequences), refunds.map((refund) => (refund === stale ? [1, 2, 3, 4] : [1, 2, 3])))
      for (const [i, refund] of refunds.entries()) assert.deepStrictEqual(yield* ledger.get(refund.id), done[i])
    }))

  it.scopedLive("a batch of changes looks each refund up by its key, not by scanning the table", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      const refunds = Array.from({ length: 3000 }, (_, i) => plain(`many-${i}`))
      yield* Effect.all(refunds.map((refund) => ledger.claim(refund)), { concurrency: 64, discard: true })
      const sql = yield* rawSql(url)
      const five = refunds.slice(0, 5)
      const column = (value: string | number | null) => five.map(() => value)
      const plan = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${PgFastPath.acceptBatchText}`, [
        five.map((refund) => refund.id),
        column(1),
        column("pending"),
        column(null),
        column(null),
        column("{}"),
        column("[]"),
        column(null),
        column(at(1)),
        column("[]"),
        column(0),
        column(0)
      ])
      const text = plan.map((row) => row["QUERY PLAN"]).join("\n")
      // With a set function's default guess of 100 rows, PostgreSQL scans the table into a hash instead.
      assert.include(text, "Index Scan using refunds_pkey on refunds")
      assert.notInclude(text, "Seq Scan on refunds")
    }))

  it.scopedLive("a change that fails an item writes its reservations' flag in the same statement, alone; every other change writes as before", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      const batch = (key: string) =>
        draft(key, { currency: "INR", amount: "160.00", targets: [{ target: `${key}-ok`, amount: "10.00" }, { target: `${key}-refused`, amount: "150.00" }] })
      const refunds = ["a", "b", "c", "d"].map(batch)
      for (const refund of refunds) yield* ledger.claim(refund)
      yield* trips
      const answer = (refund: Refund.Refund, refused: "failed" | "pending") =>
        ledger.transition(refund.id, {
          to: refused === "failed" ? "requires_action" : "pending",
          source: "submit",
          at: at(1),
          items: [{ target: `${refund.idempotencyKey}-ok`, status: "succeeded" }, { target: `${refund.idempotencyKey}-refused`, status: refused }]
        })
      yield* Effect.all([answer(refunds[0]!, "failed"), answer(refunds[1]!, "pending"), answer(refunds[2]!, "failed"), answer(refunds[3]!, "pending")], {
        concurrency: "unbounded"
      })
      assert.strictEqual(yield* trips, 3, "the two without a failed item in one batch, each with one alone")
      const sql = yield* rawSql(url)
      const released = yield* sql<{ readonly target: string }>`SELECT target FROM refund_targets WHERE released = 1 ORDER BY target`
      assert.deepStrictEqual(released.map((r) => r.target), ["a-refused", "c-refused"])

      // Resolved succeeded (the released targets unchanged), or a plain pending refund moving on: one batch, as before.
      yield* Effect.all([
        ledger.transition(refunds[0]!.id, { to: "succeeded", source: "operator", at: at(2), settleItems: true }),
        ledger.transition(refunds[1]!.id, { to: "succeeded", source: "sync", at: at(2) })
      ], { concurrency: "unbounded" })
      assert.strictEqual(yield* trips, 1)
      // The provider corrects itself: one statement, the flag cleared.
      yield* answer(refunds[2]!, "pending")
      assert.strictEqual(yield* trips, 1)
      const after = yield* sql<{ readonly target: string }>`SELECT target FROM refund_targets WHERE released = 1 ORDER BY target`
      assert.deepStrictEqual(after.map((r) => r.target), ["a-refused"])

      // Its reservations are found by their key, not by a scan.
      const plan = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN ${PgFastPath.acceptReleasingText}`, [
        refunds[3]!.id, 1, "pending", null, null, "{}", "[]", null, at(3), 0, 0, "[]", "toy", ["d-ok", "d-refused"], ["d-refused"]
      ])
      const text = plan.map((row) => row["QUERY PLAN"]).join("\n")
      assert.include(text, "refund_targets_pkey")
      assert.notInclude(text, "Seq Scan on refund_targets")
    }))

  it.scopedLive("reads bring a refund's events along in one round trip and need no transaction", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const { ledger, trips } = yield* countedLedger(url)
      const refund = plain("read")
      yield* ledger.claim(refund)
      const moved = yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: "R-9" })
      yield* trips
      assert.deepStrictEqual(yield* ledger.get(refund.id), moved)
      assert.strictEqual(yield* trips, 1)
      assert.deepStrictEqual(yield* ledger.findByReference("toy", "R-9"), Either.right(moved).pipe(Either.getRight))
      assert.strictEqual(yield* trips, 1)
      assert.deepStrictEqual((yield* ledger.list({ limit: 10 })).items, [moved])
      assert.strictEqual(yield* trips, 1)
      assert.deepStrictEqual((yield* ledger.needingSync({ limit: 10 })).map((r) => r.id), [refund.id])
      assert.strictEqual(yield* trips, 1)
    }))

  it.scopedLive("writes are named statements, prepared once per connection; a connection that lost them (a pooler) gets them unnamed", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      // One connection, so the session looked at below is the ledger's own.
      const pool = PgPool.layer({ url: Redacted.make(url), applicationName: "refundkit-test", maxConnections: 1 })
      const context = yield* Layer.build(SqlLedger.layerFromClient().pipe(Layer.provideMerge(pool)))
      const ledger = Context.get(context, SqlLedger.SqlLedger)
      const sql = Context.get(context, SqlClient.SqlClient)
      const prepared = Effect.map(
        sql<{ readonly name: string }>`SELECT name FROM pg_prepared_statements ORDER BY name`,
        (rows) => rows.map((row) => row.name.replace(/_[0-9a-f]{12}$/, ""))
      )

      const first = plain("named")
      yield* ledger.claim(first)
      yield* ledger.transition(first.id, { to: "pending", source: "submit", at: at(1) })
      assert.deepStrictEqual(yield* prepared, ["refundkit_accept", "refundkit_claim"])

      // What a pooler that hands out server connections per transaction looks like to the
      // driver: the session it now talks to has none of the statements it prepared.
      yield* sql`DEALLOCATE ALL`
      const second = plain("after-deallocate")
      assert.strictEqual((yield* ledger.claim(second))._tag, "Claimed")
      assert.strictEqual((yield* ledger.transition(second.id, { to: "succeeded", source: "submit", at: at(2) })).status, "succeeded")
      assert.deepStrictEqual(yield* prepared, [], "nothing is prepared again: the statements go unnamed from now on")
      const tables = yield* stored(url, second.id)
      assert.deepStrictEqual(tables.events.map((e) => e.sequence), [1, 2])
      assert.strictEqual(tables.status, "succeeded")
      assert.strictEqual(tables.version, 2)
      assert.strictEqual((yield* stored(url, first.id)).status, "pending")
    }))

  it.scopedLive("text with quotes, backslashes and any script is written and read back exactly", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url))
      const nasty = "it's a \\ back'slash \\' ); DROP TABLE refunds; -- $1 E'\\x41' ünïcode 𝄞 \u2028"
      const refund = draft(`key ${nasty}`, { request: { note: nasty, nested: [nasty, { "k'ey\\": nasty }] } })
      assert.strictEqual((yield* ledger.claim(refund))._tag, "Claimed")
      const moved = yield* ledger.transition(refund.id, {
        to: "pending",
        source: "submit",
        at: at(1),
        providerStatus: nasty,
        providerReference: nasty,
        references: { [nasty]: nasty },
        detail: nasty
      })
      const read = yield* ledger.get(refund.id)
      assert.deepStrictEqual(read, moved)
      assert.strictEqual(read.events[1]!.detail, nasty)
      assert.deepStrictEqual(read.request, refund.request)
      // PostgreSQL text cannot hold NUL: a detail keeps it as U+FFFD (core's applyChange), so the write goes through.
      const nul = yield* ledger.transition(refund.id, { to: "pending", source: "sync", at: at(2), detail: "a\u0000b" })
      assert.strictEqual(nul.events[2]!.detail, "a\uFFFDb")
      assert.deepStrictEqual(yield* ledger.get(refund.id), nul)
      assert.deepStrictEqual(sequences(yield* ledger.transition(refund.id, { to: "succeeded", source: "sync", at: at(3) })), [1, 2, 3, 4])
    }))
})
