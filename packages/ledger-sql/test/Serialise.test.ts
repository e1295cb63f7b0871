// A refund's turn (`serialise`): one holder at a time across ledgers sharing the database
// (on PostgreSQL an advisory lock, on SQLite a renewed lease row), what a turn records is kept
// whatever the turn's outcome, and an interrupted turn frees the refund. Two ledgers on one
// database here are two connections, as two processes have; Processes.test.ts runs real ones.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import { Effect, Fiber, Layer, type Scope } from "effect"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"
import { holdTurn } from "./support/turns.js"

const turnOf = (ledger: Ledger.Ledger.Service) => {
  const serialise = ledger.serialise
  assert.isDefined(serialise, "the ledger serialises refund turns")
  return serialise!
}

/**
 * A first turn on refund `id` that records `providerStatus` `millis` after it was taken, and a
 * second turn started once it was: the provider status the second one reads.
 */
const secondTurnReads = (one: Ledger.Ledger.Service, two: Ledger.Ledger.Service, id: string, millis: number, providerStatus: string) =>
  Effect.gen(function*() {
    // `millis` is how long the second turn has to run ahead of the first if it did not wait for it.
    const first = yield* holdTurn(one, id, { hold: Effect.zipRight(Effect.sleep(millis), one.transition(id, { to: "pending", source: "operator", at: at(1), providerStatus })) })
    const seen = yield* turnOf(two)(id, two.get(id))
    yield* Fiber.join(first)
    return seen.providerStatus
  })

type Turns = Pick<SqlLedger.Options, "turnLeaseMillis" | "turnWaitMillis">

interface Kind {
  readonly name: string
  /** Two ledgers on one fresh database, each on connections of its own. */
  readonly pair: (turns?: Turns) => Effect.Effect<readonly [SqlLedger.SqlLedger.Service, SqlLedger.SqlLedger.Service], unknown, Scope.Scope>
}

const pgKind: Kind = {
  name: "PostgreSQL",
  pair: () => Effect.flatMap(pgSchema, (url) => Effect.all([build(SqlLedger.layerPg(url)), build(SqlLedger.layerPg(url))]))
}

const sqliteKind: Kind = {
  name: "SQLite file",
  pair: (turns = {}) =>
    Effect.flatMap(tempDir, (dir) => {
      const file = path.join(dir, "turns.db")
      return Effect.all([build(SqlLedger.layerSqlite(file, turns)), build(SqlLedger.layerSqlite(file, turns))])
    })
}

const onClient = (file: string, turns: Turns) =>
  Effect.flatMap(SqliteClient.make({ filename: file }).pipe(Effect.provide(Reactivity.layer)), (client) =>
    build(SqlLedger.layerFromClient(turns).pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, client)))))

const sqliteClientKind: Kind = {
  name: "SQLite file through layerFromClient",
  pair: (turns = {}) =>
    Effect.flatMap(tempDir, (dir) => {
      const file = path.join(dir, "turns.db")
      // One after the other: both would migrate the new file at once.
      return Effect.flatMap(onClient(file, turns), (one) => Effect.map(onClient(file, turns), (two) => [one, two] as const))
    })
}

for (const kind of [pgKind, sqliteKind, sqliteClientKind]) {
  describe(`refund turns (serialise): ${kind.name}`, () => {
    it.scopedLive("a second ledger's turn on the same refund waits, then reads what the first recorded", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair()
        const refund = draft("turn-order")
        yield* one.claim(refund)
        assert.strictEqual(yield* secondTurnReads(one, two, refund.id, 300, "FIRST"), "FIRST", "the second turn ran before the first had finished")
      }))

    it.scopedLive("turns on different refunds do not wait for each other", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair()
        yield* one.claim(draft("turn-a"))
        yield* one.claim(draft("turn-b"))
        const held = yield* holdTurn(one, draft("turn-a").id)
        // Turn a is held for good: a turn on b that waited for it would never end.
        const other = yield* turnOf(two)(draft("turn-b").id, two.get(draft("turn-b").id)).pipe(Effect.timeout("10 seconds"), Effect.either)
        assert.isTrue(other._tag === "Right", "a turn on another refund waited")
        yield* Fiber.interrupt(held)
      }))

    it.scopedLive("a turn that fails keeps what it recorded and frees the refund", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair()
        const refund = draft("turn-fails")
        yield* one.claim(refund)
        const failed = yield* turnOf(one)(
          refund.id,
          Effect.gen(function*() {
            const current = yield* one.get(refund.id)
            yield* one.transition(current.id, { to: "pending", source: "operator", at: at(1), providerStatus: "IN_DOUBT", detail: "may have been applied" })
            return yield* Effect.fail("the caller's error" as const)
          })
        ).pipe(Effect.timeout("5 seconds"), Effect.flip)
        assert.strictEqual(failed, "the caller's error")
        const after = yield* turnOf(two)(refund.id, two.get(refund.id)).pipe(Effect.timeout("1 second"))
        assert.strictEqual(after.providerStatus, "IN_DOUBT")
        assert.strictEqual(after.events.at(-1)?.detail, "may have been applied")
      }))

  })
}

for (const kind of [sqliteKind, sqliteClientKind]) {
  describe(`SQLite refund turns, leased: ${kind.name}`, () => {
    it.scopedLive("an interrupted turn frees the refund at once", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair()
        const refund = draft("turn-interrupted")
        yield* one.claim(refund)
        const held = yield* holdTurn(one, refund.id)
        yield* Fiber.interrupt(held)
        // Well within the default 30 s lease: the turn was released, not left to expire.
        const next = yield* turnOf(two)(refund.id, two.get(refund.id)).pipe(Effect.timeout("10 seconds"), Effect.either)
        assert.isTrue(next._tag === "Right", "the interrupted turn still held the refund")
      }))
    it.scopedLive("a turn running longer than its lease keeps it: the holder renews it", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair({ turnLeaseMillis: 300 })
        const refund = draft("turn-long")
        yield* one.claim(refund)
        assert.strictEqual(yield* secondTurnReads(one, two, refund.id, 1500, "LONG"), "LONG", "the second turn took over a live holder's turn")
      }))

    it.scopedLive("a caller that waits past turnWaitMillis fails with a LedgerError naming the refund, and runs nothing", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair({ turnWaitMillis: 400 })
        const refund = draft("turn-busy")
        yield* one.claim(refund)
        const held = yield* holdTurn(one, refund.id)
        let ran = false
        const started = Date.now()
        const error = yield* turnOf(two)(refund.id, Effect.sync(() => (ran = true))).pipe(Effect.flip)
        assert.isFalse(ran)
        assert.isAtLeast(Date.now() - started, 350)
        assert.strictEqual(error._tag, "LedgerError")
        assert.include(error.message, refund.id)
        assert.include(error.message, "nothing was sent")
        yield* Fiber.interrupt(held)
      }))

    it.scopedLive("a held turn holds no lock: other writers on the file go on", () =>
      Effect.gen(function*() {
        const [one, two] = yield* kind.pair()
        const refund = draft("turn-held")
        yield* one.claim(refund)
        const held = yield* holdTurn(one, refund.id)
        // The other connection claims and moves refunds on, the held one included.
        const other = draft("turn-meanwhile")
        const written = yield* Effect.all([
          two.claim(other),
          two.transition(refund.id, { to: "pending", source: "webhook", at: at(1), providerStatus: "CALLBACK" })
        ]).pipe(Effect.timeout("10 seconds"), Effect.either)
        assert.isTrue(written._tag === "Right", `a write waited behind a held turn: ${JSON.stringify(written)}`)
        yield* Fiber.interrupt(held)
      }))
  })
}

describe("PostgreSQL refund turns", () => {
  it.scopedLive("on a pool of one connection a turn's own reads and writes need no other", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const ledger = yield* build(SqlLedger.layerPg(url, { maxConnections: 1 }))
      const refund = draft("turn-pool")
      yield* ledger.claim(refund)
      const done = yield* turnOf(ledger)(
        refund.id,
        Effect.zipRight(ledger.get(refund.id), ledger.transition(refund.id, { to: "pending", source: "operator", at: at(1), providerStatus: "ONE" }))
      ).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(done.providerStatus, "ONE")
    }))
})
