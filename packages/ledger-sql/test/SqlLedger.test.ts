import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { behaviour } from "./support/behaviour.js"
import { build, locations, memory, pg, pgSchema, pgUrl, rawSql, sqlite, sqliteOnClient, tempDir, withSearchPath } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"

behaviour(memory)
behaviour(sqlite)
behaviour(sqliteOnClient)
behaviour(pg)

for (const location of locations) {
  describe(`SQL ledger on ${location.name}`, () => {
    it.scopedLive("a corrupted row is a LedgerError naming the column, not a crash", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const refund = draft("corrupt-me")
        yield* ledger.claim(refund)
        const sql = yield* rawSql(url)
        yield* sql`UPDATE refunds SET provider_references = ${'{"transactionId": 42}'} WHERE id = ${refund.id}`
        const error = yield* Effect.flip(ledger.get(refund.id))
        assert.strictEqual(error._tag, "LedgerError")
        assert.include(error.message, `stored refund ${refund.id}`)
        assert.include(error.message, "column provider_references.transactionId")
        // A damaged row is not a connection problem: the message gives no advice about reaching the database.
        assert.notInclude(error.message, "reachable")
        yield* sql`UPDATE refunds SET provider_references = '{}', targets = 'not json' WHERE id = ${refund.id}`
        const again = yield* Effect.flip(ledger.list({ limit: 5 }))
        assert.include(again.message, "column targets")
        // The other operations on the damaged row fail the same way and write nothing.
        const change = yield* Effect.flip(ledger.transition(refund.id, { to: "pending", source: "sync", at: at(1) }))
        assert.strictEqual(change._tag, "LedgerError")
        const events = yield* sql<{ readonly n: unknown }>`SELECT COUNT(*) AS n FROM refund_events WHERE refund_id = ${refund.id}`
        assert.strictEqual(Number(events[0]!.n), 1)
      }))

    it.scopedLive("hand-edited money, currency and times are LedgerErrors naming the column; a negative reservation never loosens the guard", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const sql = yield* rawSql(url)
        const first = partial("guard-1", "t", "30.00", "50.00")
        yield* ledger.claim(first)
        yield* ledger.claim(partial("guard-2", "t", "20.00", "50.00", 1))
        yield* sql`UPDATE refund_targets SET amount_minor = ${"-3000"} WHERE refund_id = ${first.id}`
        const refused = yield* Effect.flip(ledger.claim(partial("guard-3", "t", "30.00", "50.00", 2)))
        assert.strictEqual(refused._tag, "LedgerError")
        assert.include(refused.message, "amount_minor")
        for (const [column, value] of [["amount", "abc"], ["currency", "EURO"], ["created_at", "garbage"]] as const) {
          const refund = draft(`edited-${column}`, { n: 9, currency: "USD", amount: "1.00" })
          yield* ledger.claim(refund)
          yield* sql`UPDATE refunds SET ${sql(column)} = ${value} WHERE id = ${refund.id}`
          const error = yield* Effect.flip(ledger.get(refund.id))
          assert.strictEqual(error._tag, "LedgerError", column)
          assert.include(error.message, `column ${column}`)
        }
      }))

    it.scopedLive("a damaged refund left in requested does not stop recovery of the others (nor the start of the process)", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const [first, damaged, last] = [draft("crashed-1"), draft("crashed-2"), draft("crashed-3")]
        for (const refund of [first, damaged, last]) yield* ledger.claim(refund)
        const sql = yield* rawSql(url)
        yield* sql`UPDATE refunds SET targets = ${'[{"target": 12345}]'} WHERE id = ${damaged.id}`
        const moved = yield* ledger.recover({ olderThan: at(50), at: at(60) })
        assert.deepStrictEqual(moved.map((r) => r.id), [first.id, last.id])
        assert.strictEqual((yield* ledger.get(last.id)).status, "unknown")
        const rows = yield* sql<{ readonly status: string }>`SELECT status FROM refunds WHERE id = ${damaged.id}`
        assert.strictEqual(rows[0]!.status, "requested")
        // A process starting on this ledger recovers it too (the gateway recovers before it serves).
        const restarted = yield* build(SqlLedger.layer({ url }))
        assert.deepStrictEqual(yield* restarted.recover({ olderThan: at(50), at: at(61) }), [])
      }))

    it.scopedLive("keeps refunds across restarts and reports ready only when migrated", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const unmigrated = yield* build(SqlLedger.layer({ url, migrate: false }))
        const notReady = yield* Effect.flip(unmigrated.ready)
        assert.strictEqual(notReady._tag, "LedgerError")
        const failed = yield* Effect.flip(unmigrated.get("rfd_00000000000000000000000000"))
        assert.strictEqual(failed._tag, "LedgerError")

        const refund = draft("durable")
        yield* Effect.scoped(Effect.gen(function*() {
          const first = yield* build(SqlLedger.layer({ url }))
          yield* first.ready
          yield* first.claim(refund)
          yield* first.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: "r-1" })
        }))
        const second = yield* build(SqlLedger.layer({ url }))
        yield* second.ready
        yield* SqlLedger.ready.pipe(Effect.provideService(SqlLedger.SqlLedger, second))
        const stored = yield* second.get(refund.id)
        assert.strictEqual(stored.status, "pending")
        assert.strictEqual(stored.events.length, 2)
        assert.strictEqual((yield* second.claim(refund))._tag, "Existing")
      }))

    it.scopedLive("a refund whose provider status is final is never leased for sync, as read by another instance", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const [charged, open] = [draft("lease-final", { n: 1, provider: "a" }), draft("lease-open", { n: 2, provider: "a" })]
        for (const refund of [charged, open]) {
          yield* ledger.claim(refund)
          yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(10), providerStatus: "NEW" })
        }
        yield* ledger.transition(charged.id, { to: "requires_action", source: "sync", at: at(20), providerStatus: "CHARGEBACK", providerFinal: true })
        // A second instance holds nothing in memory: it reads the column.
        const other = yield* build(SqlLedger.layer({ url }))
        assert.strictEqual((yield* other.get(charged.id)).providerFinal, true)
        const lease = (n: number) => other.claimForSync({ owner: "w", at: at(n), until: at(n + 1), providers: ["a"], limit: 10 })
        for (const n of [100, 200, 300]) assert.deepStrictEqual((yield* lease(n)).map((r) => r.id), [open.id], `lease at ${n}`)
        // A hand edit of the column alone moves the version on, so no cached copy outlives it.
        const sql = yield* rawSql(url)
        const version = (yield* sql<{ readonly version: number }>`SELECT version FROM refunds WHERE id = ${charged.id}`)[0]!.version
        yield* sql`UPDATE refunds SET provider_final = 0 WHERE id = ${charged.id}`
        assert.strictEqual((yield* sql<{ readonly version: number }>`SELECT version FROM refunds WHERE id = ${charged.id}`)[0]!.version, version + 1)
        assert.isUndefined((yield* ledger.get(charged.id)).providerFinal)
        assert.sameMembers((yield* lease(400)).map((r) => r.id), [open.id, charged.id])
      }))

    it.scopedLive("a failed refund's hold on its targets is read from its column by another instance; a hand edit of it moves the version on", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const closed = draft("closed", { n: 1, provider: "aerohub", targets: [{ target: "FBRF910001" }] })
        yield* ledger.claim(closed)
        yield* ledger.transition(closed.id, { to: "failed", source: "submit", at: at(2), providerStatus: "CLOSED", holdsTarget: true })
        const sql = yield* rawSql(url)
        const column = () => Effect.map(sql<{ readonly holds_target: number; readonly version: number }>`SELECT holds_target, version FROM refunds WHERE id = ${closed.id}`, (rows) => rows[0]!)
        assert.strictEqual((yield* column()).holds_target, 1)
        // A second instance holds nothing in memory: its claim reads the column under its lock.
        const other = yield* build(SqlLedger.layer({ url }))
        assert.strictEqual((yield* other.get(closed.id)).holdsTarget, true)
        const refused = yield* Effect.flip(other.claim(draft("second", { n: 3, provider: "aerohub", targets: [{ target: "FBRF910001" }] })))
        assert.deepStrictEqual(refused._tag === "TargetAlreadyRefunded" ? [refused.refundId, refused.status] : refused, [closed.id, "failed"])
        // A hand edit releasing the target moves the version on, so neither instance writes its cached hold back.
        const before = (yield* column()).version
        yield* sql`UPDATE refunds SET holds_target = 0 WHERE id = ${closed.id}`
        assert.strictEqual((yield* column()).version, before + 1)
        const noted = yield* ledger.transition(closed.id, { to: "failed", source: "operator", at: at(4), detail: "operator: a note" })
        assert.isUndefined(noted.holdsTarget)
        assert.strictEqual((yield* column()).holds_target, 0)
        assert.strictEqual((yield* other.claim(draft("third", { n: 5, provider: "aerohub", targets: [{ target: "FBRF910001" }] })))._tag, "Claimed")
      }))

    it.scopedLive("a damaged refund due for a sync is passed by; the others are still leased to be synced", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        const refunds = [draft("due-1", { n: 1 }), draft("due-2", { n: 2 }), draft("due-3", { n: 3 })]
        for (const [i, refund] of refunds.entries()) {
          yield* ledger.claim(refund)
          yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(10 + i) })
        }
        const sql = yield* rawSql(url)
        // The oldest due refund, the one a sync loop leases first.
        yield* sql`UPDATE refunds SET items = ${"not json"} WHERE id = ${refunds[0]!.id}`
        const lease = (n: number, limit: number) => ledger.claimForSync({ owner: "w", at: at(n), until: at(n + 60), limit })
        assert.deepStrictEqual((yield* lease(100, 3)).map((r) => r.id), [refunds[1]!.id, refunds[2]!.id])
        // It keeps its lease like the others, so a sync loop taking one refund at a time is not stuck on it.
        assert.deepStrictEqual(yield* lease(101, 1), [])
        assert.deepStrictEqual((yield* lease(300, 3)).map((r) => r.id), [refunds[1]!.id, refunds[2]!.id])
      }))

    it.scopedLive("a cursor the ledger did not issue is refused naming the cursor", () =>
      Effect.gen(function*() {
        const url = yield* location.fresh
        const ledger = yield* build(SqlLedger.layer({ url }))
        yield* ledger.claim(draft("one"))
        // A well-formed cursor past the 64-bit seq range is not one of ours either (it was a 503 from the database).
        for (const cursor of ["garbage", Buffer.from("s:9999999999999999999").toString("base64url")]) {
          const refused = yield* Effect.flip(ledger.list({ limit: 5, cursor }))
          assert.strictEqual(refused._tag, "InvalidRequest", cursor)
          assert.strictEqual(refused._tag === "InvalidRequest" ? refused.issues[0]?.path : "", "cursor")
        }
        assert.strictEqual((yield* ledger.list({ limit: 5 })).items.length, 1)
      }))
  })
}

describe("SQL ledger layers", () => {
  it.scopedLive(":memory: is a working SQLite ledger", () =>
    Effect.gen(function*() {
      const ledger = yield* build(SqlLedger.layer({ url: ":memory:" }))
      assert.strictEqual(ledger.dialect, "sqlite")
      yield* ledger.claim(draft("m"))
      assert.isTrue(Option.isSome(yield* ledger.findByKey("toy", "m")))
    }))

  it.scopedLive("creates the SQLite file's directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const ledger = yield* build(SqlLedger.layerSqlite(path.join(dir, "a", "b", "c.db")))
      yield* ledger.ready
    }))

  it.scopedLive("a SQLite location that cannot be created is a LedgerError, promptly", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "a-file")
      fs.writeFileSync(file, "")
      const paths = [path.join(file, "x.db"), ...(process.platform === "linux" ? ["/proc/nope/x.db"] : [])]
      for (const location of paths) {
        const exit = yield* Effect.exit(build(SqlLedger.layerSqlite(location)).pipe(Effect.timeout("10 seconds")))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) assert.include(String(exit.cause), "LedgerError")
      }
    }))

  it.scopedLive("a PostgreSQL connection failure never shows the password", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(build(SqlLedger.layerPg("postgres://postgres:Sup3rSecretPw@127.0.0.1:1/test")))
      assert.isTrue(Exit.isFailure(exit))
      const text = JSON.stringify(exit) + String(Exit.isFailure(exit) ? exit.cause : "")
      assert.include(text, "LedgerError")
      assert.include(text, "postgres://postgres:***@127.0.0.1:1/test")
      assert.include(text, "check that the database is reachable")
      assert.notInclude(text, "Sup3rSecretPw")
    }))

  it.scopedLive("a PostgreSQL server that refuses the connection is not reported as unreachable", () =>
    Effect.gen(function*() {
      for (const url of ["postgres://rk_no_such_role:Sup3rSecretPw@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/rk_no_such_database"]) {
        const error = yield* Effect.flip(build(SqlLedger.layerPg(url)))
        assert.strictEqual(error._tag, "LedgerError")
        assert.include(error.message, "PostgreSQL answered and refused the connection (SQLSTATE")
        assert.include(error.message, "check the user, password and database the URL names")
        assert.notInclude(error.message, "reachable")
        assert.notInclude(error.message, "Sup3rSecretPw")
      }
    }))

  it.scopedLive("a search_path naming a schema that does not exist says so and how to create it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(build(SqlLedger.layerPg(withSearchPath(pgUrl, "rk_test_no_such_schema"))))
      assert.strictEqual(error._tag, "LedgerError")
      assert.include(error.message, "no schema has been selected to create in")
      assert.include(error.message, "names no schema that exists: create it first, `CREATE SCHEMA <name>`")
    }))

  it.scopedLive("layerPg refuses a pool or a statement bound it cannot run with, naming the option and the rule", () =>
    Effect.gen(function*() {
      const url = "postgres://postgres@127.0.0.1:5432/test"
      const cases = [
        [{ maxConnections: -3 }, "layerPg: maxConnections must be a whole number of at least 1, got -3"],
        [{ maxConnections: 0 }, "layerPg: maxConnections must be a whole number of at least 1, got 0"],
        [{ statementTimeoutMillis: 0 }, "layerPg: statementTimeoutMillis must be above 0 and at most 2073600000 (24 days), got 0"],
        [{ statementTimeoutMillis: 8_640_000_000 }, "layerPg: statementTimeoutMillis must be above 0 and at most 2073600000 (24 days), got 8640000000"],
        [{ writeTimeoutMillis: -5 }, "layerPg: writeTimeoutMillis must be above 0 and at most 2073600000 (24 days), got -5"],
        // PostgreSQL would read a lock_timeout of 0 as no bound at all.
        [{ turnWaitMillis: 0 }, "layerPg: turnWaitMillis must be a whole number from 1 to 3600000 (an hour), got 0"],
        [{ turnWaitMillis: 86_400_000 }, "layerPg: turnWaitMillis must be a whole number from 1 to 3600000 (an hour), got 86400000"]
      ] as const
      for (const [options, message] of cases) {
        const error = yield* Effect.flip(build(SqlLedger.layerPg(url, options)).pipe(Effect.timeout("10 seconds")))
        assert.strictEqual(error._tag, "LedgerError", message)
        assert.include(error.message, message)
      }
    }))

  it.scopedLive("picks the driver from the URL", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      assert.strictEqual((yield* build(SqlLedger.layer({ url: path.join(dir, "x.db") }))).dialect, "sqlite")
      const url = yield* pgSchema
      assert.strictEqual((yield* build(SqlLedger.layer({ url: url.replace(/^postgres:/, "postgresql:") }))).dialect, "pg")
    }))
})
