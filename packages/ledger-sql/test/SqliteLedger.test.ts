// How the SQLite ledger commits: group commit, per-write savepoints, the version-checked
// refund cache and non-blocking waits for another connection's lock. Real SQLite files;
// the database is observed (WAL frames) and disturbed (locks, a schema add-on) from a
// second connection, never by replacing the ledger's own code.
import { assert, describe, it } from "@effect/vitest"
import type { Ledger } from "@refundkit/core"
import Database from "better-sqlite3"
import * as Provider from "@refundkit/core/Provider"
import * as Providers from "@refundkit/core/Providers"
import * as Refunds from "@refundkit/core/Refunds"
import { Context, Effect, Either, Exit, Fiber, Layer, Schedule, Schema, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as SqliteLedger from "../src/internal/sqliteLedger.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, tempDir } from "./support/databases.js"
import { at, draft, partial } from "./support/refunds.js"
import { eventually } from "@refundkit/testkit/Waiting"
import { isPending, quiet } from "./support/waiting.js"

const ledgerFile = Effect.map(tempDir, (dir) => path.join(dir, "ledger.db"))

/** A second connection to the ledger's file, closed with the scope. */
const raw = (file: string) =>
  Effect.acquireRelease(Effect.sync(() => new Database(file)), (db) => Effect.sync(() => db.close()))

/**
 * Committed transactions in the WAL file: frames whose "database size after commit"
 * is set and whose salts match the WAL header (older frames of a restarted WAL do not).
 */
const commitsInWal = (file: string): number => {
  const wal = fs.readFileSync(`${file}-wal`)
  if (wal.length < 32) return 0
  const pageSize = wal.readUInt32BE(8)
  const salt1 = wal.readUInt32BE(16)
  const salt2 = wal.readUInt32BE(20)
  let commits = 0
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) {
    if (wal.readUInt32BE(offset + 8) !== salt1 || wal.readUInt32BE(offset + 12) !== salt2) break
    if (wal.readUInt32BE(offset + 4) !== 0) commits++
  }
  return commits
}

const eventsOf = (refund: { readonly events: ReadonlyArray<{ readonly sequence: number; readonly from: string | null; readonly to: string; readonly accepted: boolean }> }) =>
  refund.events.map((e) => [e.sequence, e.from, e.to, e.accepted])

describe("SQLite ledger commits", () => {
  it.scopedLive("claims issued in one turn share one COMMIT; an over-refund and a key conflict fail alone", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      yield* ledger.claim(partial("first", "pay-1", "60.00", "100.00"))
      const before = commitsInWal(file)
      const claims = [
        ...Array.from({ length: 10 }, (_, i) => partial(`ok-${i}`, `pay-ok-${i}`, "5.00", "100.00", i)),
        partial("too-much", "pay-1", "50.00", "100.00"), // 60.00 of 100.00 is taken
        { ...partial("first", "pay-1", "60.00", "100.00"), fingerprint: "another request" } // the key is taken
      ]
      const results = yield* Effect.all(claims.map((r) => Effect.either(ledger.claim(r))), { concurrency: "unbounded" })
      assert.strictEqual(commitsInWal(file) - before, 1, "one fsynced COMMIT for the whole turn")
      for (const result of results.slice(0, 10)) assert.isTrue(Either.isRight(result) && result.right._tag === "Claimed")
      const over = results[10]!
      assert.isTrue(Either.isLeft(over) && over.left._tag === "OverRefund")
      const conflict = results[11]!
      assert.isTrue(Either.isRight(conflict) && conflict.right._tag === "Existing" && conflict.right.refund.fingerprint !== "another request")
      // The refused claim left nothing behind: not its row, not its reservation.
      assert.isTrue((yield* ledger.findByKey("toy", "too-much"))._tag === "None")
      assert.strictEqual((yield* ledger.claim(partial("forty", "pay-1", "40.00", "100.00")))._tag, "Claimed")
      assert.strictEqual((yield* ledger.list({ limit: 100 })).items.length, 12)
    }))

  it.scopedLive("a change that fails an item flags its reservations, found by their key; a change without one updates no reservation", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      const batch = draft("batch", { currency: "INR", amount: "160.00", targets: [{ target: "10264", amount: "10.00" }, { target: "10265", amount: "150.00" }] })
      const plain = draft("plain", { n: 2, currency: "INR", amount: "1.00", targets: [{ target: "10266", amount: "1.00" }] })
      yield* ledger.claim(batch)
      yield* ledger.claim(plain)
      const db = yield* raw(file)
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${SqliteLedger.releaseTargetsText}`).all("[]", "toy", "[]", batch.id) as ReadonlyArray<{ readonly detail: string }>)
        .map((row) => row.detail)
      assert.include(plan[0], "SEARCH refund_targets USING PRIMARY KEY (provider=? AND target=? AND refund_seq=?)")
      // Every row an UPDATE of refund_targets touches, whoever sends it.
      db.exec(`CREATE TABLE target_updates (target TEXT NOT NULL);
        CREATE TRIGGER target_updated AFTER UPDATE ON refund_targets BEGIN INSERT INTO target_updates VALUES (NEW.target); END`)
      const updated = () => (db.prepare("SELECT target FROM target_updates").all() as Array<{ target: string }>).map((r) => r.target).sort()

      yield* ledger.transition(plain.id, { to: "pending", source: "submit", at: at(1), items: [{ target: "10266", status: "pending" }] })
      yield* ledger.transition(plain.id, { to: "succeeded", source: "sync", at: at(2), items: [{ target: "10266", status: "succeeded" }] })
      assert.deepStrictEqual(updated(), [], "a refund none of whose items failed writes no reservation")
      yield* ledger.transition(batch.id, {
        to: "requires_action",
        source: "submit",
        at: at(3),
        items: [{ target: "10264", status: "succeeded" }, { target: "10265", status: "failed" }]
      })
      yield* ledger.transition(batch.id, { to: "succeeded", source: "operator", at: at(4), settleItems: true })
      assert.deepStrictEqual(updated(), ["10264", "10265"], "one statement, when the answer failed an item; none for the verdict that left it so")
      assert.deepStrictEqual((db.prepare("SELECT target, released FROM refund_targets ORDER BY target").all() as Array<{ target: string; released: number }>).map((r) => [r.target, r.released]), [
        ["10264", 0],
        ["10265", 1],
        ["10266", 0]
      ])
    }))

  it.scopedLive("a refund changed through another connection is read again, not taken from the cache", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const a = yield* build(SqlLedger.layerSqlite(file))
      const b = yield* build(SqlLedger.layerSqlite(file))
      const refund = draft("shared")
      yield* a.claim(refund)
      yield* a.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerStatus: "QUEUED" })
      // b is another connection, as another process would be.
      yield* b.transition(refund.id, { to: "requires_action", source: "webhook", at: at(2), providerStatus: "NEEDS_INFO" })
      const done = yield* a.transition(refund.id, { to: "succeeded", source: "sync", at: at(3), providerStatus: "DONE" })
      assert.deepStrictEqual(eventsOf(done), [
        [1, null, "requested", true],
        [2, "requested", "pending", true],
        [3, "pending", "requires_action", true],
        [4, "requires_action", "succeeded", true]
      ])
      assert.deepStrictEqual(yield* b.get(refund.id), done)
      // A hand edit that does not touch `version` still moves it on (migration 2), so the
      // cached copy is not trusted over it.
      const db = yield* raw(file)
      db.prepare("UPDATE refunds SET provider_status = 'EDITED' WHERE id = ?").run(refund.id)
      assert.strictEqual((yield* a.get(refund.id)).providerStatus, "EDITED")
      const again = yield* a.transition(refund.id, { to: "succeeded", source: "sync", at: at(4) })
      assert.strictEqual(again.providerStatus, "EDITED")
      assert.strictEqual(again.events.length, 5)
    }))

  it.scopedLive("a refused change then an accepted one get consecutive events, seen alike by every connection", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const a = yield* build(SqlLedger.layerSqlite(file))
      const b = yield* build(SqlLedger.layerSqlite(file))
      const refund = draft("refused-then-accepted")
      yield* a.claim(refund)
      yield* a.transition(refund.id, { to: "pending", source: "submit", at: at(1) })
      yield* b.get(refund.id) // b now holds the refund at this version
      const refusal = yield* Effect.flip(a.transition(refund.id, { to: "requested", source: "sync", at: at(2), detail: "stale" }))
      assert.strictEqual(refusal._tag, "IllegalTransition")
      // b must see a's refused event before writing its own.
      const accepted = yield* b.transition(refund.id, { to: "succeeded", source: "webhook", at: at(3) })
      const expected = [
        [1, null, "requested", true],
        [2, "requested", "pending", true],
        [3, "pending", "requested", false],
        [4, "pending", "succeeded", true]
      ]
      assert.deepStrictEqual(eventsOf(accepted), expected)
      assert.deepStrictEqual(eventsOf(yield* a.get(refund.id)), expected)
      const fresh = yield* build(SqlLedger.layerSqlite(file))
      assert.deepStrictEqual(yield* fresh.get(refund.id), accepted)
      // The same on one connection, refusal and acceptance in one turn.
      const other = draft("one-turn")
      yield* a.claim(other)
      yield* a.transition(other.id, { to: "pending", source: "submit", at: at(1) })
      const [refused, ok] = yield* Effect.all([
        Effect.either(a.transition(other.id, { to: "requested", source: "sync", at: at(2) })),
        a.transition(other.id, { to: "succeeded", source: "webhook", at: at(3) })
      ], { concurrency: "unbounded" })
      assert.isTrue(Either.isLeft(refused))
      assert.deepStrictEqual(eventsOf(ok), [
        [1, null, "requested", true],
        [2, "requested", "pending", true],
        [3, "pending", "requested", false],
        [4, "pending", "succeeded", true]
      ])
      assert.deepStrictEqual(yield* fresh.get(other.id), ok)
    }))

  it.scopedLive("a COMMIT that fails fails every write of its batch, and none of them is kept", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      const moved = draft("moved")
      yield* ledger.claim(moved)
      yield* ledger.transition(moved.id, { to: "pending", source: "submit", at: at(1) })
      // A deferred foreign key is only checked at COMMIT: an event whose detail says
      // "poison" makes the whole transaction's COMMIT fail.
      const db = yield* raw(file)
      db.exec(`CREATE TABLE poison (refund_id TEXT REFERENCES refunds (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TRIGGER poison AFTER INSERT ON refund_events WHEN NEW.detail LIKE '%poison%'
        BEGIN INSERT INTO poison VALUES ('rfd_nobody'); END`)
      const claims = Array.from({ length: 5 }, (_, i) => draft(`batch-${i}`, { n: i }))
      const results: ReadonlyArray<Either.Either<unknown, { readonly _tag: string; readonly message: string }>> = yield* Effect.all([
        ...claims.map((r) => Effect.either(ledger.claim(r))),
        Effect.either(ledger.transition(moved.id, { to: "succeeded", source: "sync", at: at(2) })),
        Effect.either(ledger.transition(moved.id, { to: "pending", source: "sync", at: at(3), detail: "poison" }))
      ], { concurrency: "unbounded" })
      for (const result of results) {
        assert.isTrue(Either.isLeft(result) && result.left._tag === "LedgerError", JSON.stringify(result))
        if (Either.isLeft(result)) assert.include(result.left.message, "FOREIGN KEY")
      }
      db.exec("DROP TRIGGER poison")
      // Nothing of the batch was written, and nothing of it was cached.
      for (const r of claims) assert.isTrue((yield* ledger.findByKey("toy", r.idempotencyKey))._tag === "None")
      const stored = yield* ledger.get(moved.id)
      assert.strictEqual(stored.status, "pending")
      assert.strictEqual(stored.events.length, 2)
      for (const r of claims) assert.strictEqual((yield* ledger.claim(r))._tag, "Claimed")
      const done = yield* ledger.transition(moved.id, { to: "succeeded", source: "sync", at: at(4) })
      assert.deepStrictEqual(done.events.map((e) => e.sequence), [1, 2, 3])
    }))

  it.scopedLive("another connection's write lock is waited for without blocking the event loop", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const ledger = yield* build(SqlLedger.layerSqlite(file))
      const db = yield* raw(file)
      db.prepare("BEGIN IMMEDIATE").run()
      let ticks = 0
      const timer = setInterval(() => ticks++, 5)
      // The lock is released from a timer on this very thread: a blocking busy wait
      // could never see it released.
      setTimeout(() => db.prepare("COMMIT").run(), 300)
      const claimed = yield* ledger.claim(draft("waited"))
      clearInterval(timer)
      assert.strictEqual(claimed._tag, "Claimed")
      assert.isAbove(ticks, 10, "timers kept running while the claim waited")
    }))

  it.scopedLive("an answer the ledger cannot record (locked past its busy timeout) leaves the refund in doubt, named: not a ledger outage", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const db = yield* raw(file)
      // The provider refunds, and meanwhile another process holds the write lock past the busy timeout.
      const toy = Provider.make({
        id: "toy",
        displayName: "Toy",
        capabilities: { partialRefunds: true, maxTargetsPerCall: 1, statusQuery: false, webhooks: false, idempotentSubmit: false, updates: false, settlement: "money" },
        requestSchema: Schema.Struct({ target: Schema.String }),
        describe: (request) => ({ targets: [{ target: request.target }] }),
        submit: () => Effect.sync(() => db.prepare("BEGIN IMMEDIATE").run()).pipe(Effect.as({ status: "succeeded" as const, providerStatus: "DONE" }))
      })
      const context = yield* Layer.build(
        Refunds.layer({ callTimeout: "5 seconds", retrySchedule: Schedule.recurs(0), maxRetryAfter: "1 second" }).pipe(
          Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(toy)), Providers.layer)),
          Layer.provideMerge(SqlLedger.layerSqlite(file, { busyTimeoutMillis: 100 }))
        )
      )
      const refunds = Context.get(context, Refunds.Refunds)
      const error = yield* Effect.flip(refunds.create({ provider: "toy", request: { target: "t1" }, idempotencyKey: "unrecorded" }))
      db.prepare("ROLLBACK").run()
      assert.strictEqual(error._tag, "OutcomeUnknown")
      if (error._tag === "OutcomeUnknown") {
        assert.isString(error.refundId)
        assert.include(error.detail, "could not be recorded")
        assert.strictEqual((yield* refunds.get(error.refundId!)).status, "requested", "recovery makes it unknown later; it is never failed")
      }
    }))

  it.scopedLive("a lock held longer than busyTimeoutMillis is a LedgerError", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const ledger: Ledger.Ledger.Service = yield* build(SqlLedger.layerSqlite(file, { busyTimeoutMillis: 100 }))
      const db = yield* raw(file)
      db.prepare("BEGIN IMMEDIATE").run()
      const exit = yield* Effect.exit(ledger.claim(draft("gives-up")))
      db.prepare("ROLLBACK").run()
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "locked")
      assert.strictEqual((yield* ledger.claim(draft("gives-up")))._tag, "Claimed")
    }))
})

/**
 * An fsync that waits to be released (or failed) by the test, counting its calls.
 * `releaseOnClose` (after opening the ledger) lets a failing test close its ledger,
 * which waits for the fsync in flight.
 */
const heldFsync = () => {
  const calls: Array<{ readonly fd: number; readonly done: (error: NodeJS.ErrnoException | null) => void }> = []
  let released = 0
  let closing = false
  const fsync = (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => {
    if (closing) return void setImmediate(() => done(null))
    calls.push({ fd, done: (error) => (released++, done(error)) })
  }
  const releaseOnClose = Effect.addFinalizer(() =>
    Effect.sync(() => {
      closing = true
      for (const call of calls.slice(released)) call.done(null)
    })
  )
  return { calls, fsync, releaseOnClose }
}

const refundsIn = (db: Database.Database) => (db.prepare("SELECT COUNT(*) AS n FROM refunds").get() as { n: number }).n

describe("SQLite ledger durability (synchronous = NORMAL, the WAL fsynced off the event loop)", () => {
  it.scopedLive("the connection runs in WAL mode at NORMAL; what a write reported is read by a separate connection", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const connection = yield* SqliteLedger.connect(file, {})
      assert.strictEqual(connection.db.pragma("journal_mode", { simple: true }), "wal")
      assert.strictEqual(connection.db.pragma("synchronous", { simple: true }), 1, "NORMAL")
      assert.isDefined(connection.walSync)
      // A group commit's per-write savepoints keep their undo log in memory, not in files in /var/tmp.
      assert.strictEqual(connection.db.pragma("temp_store", { simple: true }), 2, "MEMORY")
      // In memory there is no WAL to sync: the connection stays at FULL and reports at COMMIT.
      const memory = yield* SqliteLedger.connect(":memory:", {})
      assert.strictEqual(memory.db.pragma("synchronous", { simple: true }), 2, "FULL")
      assert.isUndefined(memory.walSync)

      const ledger = yield* build(SqlLedger.layerSqlite(file))
      const refund = draft("seen-elsewhere")
      yield* ledger.claim(refund)
      yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerReference: "P-1" })
      const other = yield* raw(file)
      const row = other.prepare("SELECT status, provider_reference FROM refunds WHERE id = ?").get(refund.id)
      assert.deepStrictEqual(row, { status: "pending", provider_reference: "P-1" })
    }))

  it.scopedLive("a write completes only after the fsync covering its COMMIT; writes issued meanwhile are held, then committed together", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const { calls, fsync, releaseOnClose } = heldFsync()
      const ledger = yield* SqliteLedger.open(file, { fsync, fsyncSync: null })
      yield* releaseOnClose
      assert.strictEqual(calls.length, 0, "opening and migrating synced on their own (at FULL)")
      const other = yield* raw(file)

      const first = draft("first")
      const a = yield* Effect.fork(ledger.claim(first))
      yield* eventually(() => calls.length === 1, "the first batch asked for an fsync")
      // The descriptor is the WAL file SQLite writes.
      assert.strictEqual(fs.fstatSync(calls[0]!.fd).ino, fs.statSync(`${file}-wal`).ino)
      // Committed (another connection sees it), not reported.
      assert.strictEqual(refundsIn(other), 1)
      assert.isTrue(yield* isPending(a))
      // A read of it waits for the same fsync.
      const read = yield* Effect.fork(ledger.get(first.id))
      yield* quiet(read)

      // More writes while that fsync is in flight: B and C issued together, then D in a later turn. They
      // would wait for the next fsync anyway, so they are held and committed together once it completes.
      const bc = yield* Effect.fork(Effect.all([ledger.claim(draft("b")), ledger.claim(draft("c"))], { concurrency: "unbounded" }))
      yield* quiet(bc)
      const d = yield* Effect.fork(ledger.claim(draft("d")))
      yield* quiet(d)
      assert.strictEqual(refundsIn(other), 1, "held, not committed, while the fsync is in flight")
      assert.strictEqual(calls.length, 1, "one fsync in flight at a time")
      for (const fiber of [a, read, bc, d]) assert.isTrue(yield* isPending(fiber as Fiber.RuntimeFiber<unknown, unknown>))

      calls[0]!.done(null)
      assert.strictEqual((yield* Fiber.join(a))._tag, "Claimed")
      assert.strictEqual((yield* Fiber.join(read)).id, first.id)
      // The held writes commit in the next turn and wait for the next fsync, which covers all of them.
      yield* eventually(() => calls.length === 2, "the second fsync started")
      assert.strictEqual(refundsIn(other), 4, "B, C and D committed")
      assert.isTrue(yield* isPending(bc))
      assert.isTrue(yield* isPending(d))
      // A read now sees D, which only the fsync in flight covers: it waits for it.
      const readD = yield* Effect.fork(ledger.get(draft("d").id))
      yield* quiet(readD)
      assert.isTrue(yield* isPending(readD))
      calls[1]!.done(null)
      assert.strictEqual((yield* Fiber.join(readD)).idempotencyKey, "d")
      const [b, c] = yield* Fiber.join(bc)
      assert.deepStrictEqual([b._tag, c._tag, (yield* Fiber.join(d))._tag], ["Claimed", "Claimed", "Claimed"])
      assert.strictEqual(calls.length, 2, "two fsyncs for four writes in three turns")

      // With nothing waiting for an fsync, a read answers at once.
      assert.strictEqual((yield* ledger.get(first.id)).id, first.id)
      assert.strictEqual(calls.length, 2)
    }))

  it.scopedLive("a write whose fiber is interrupted while it waits is never committed; one in an uninterruptible region is", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const { calls, fsync, releaseOnClose } = heldFsync()
      const ledger = yield* SqliteLedger.open(file, { fsync, fsyncSync: null })
      yield* releaseOnClose
      const other = yield* raw(file)
      // An fsync in flight holds the writes issued meanwhile in the queue.
      const first = yield* Effect.fork(ledger.claim(draft("first")))
      yield* eventually(() => calls.length === 1, "the first batch asked for an fsync")
      const dropped = yield* Effect.fork(ledger.claim(draft("dropped")))
      const kept = yield* Effect.fork(Effect.uninterruptible(ledger.claim(draft("kept"))))
      const alongside = yield* Effect.fork(ledger.claim(draft("alongside")))
      yield* quiet(dropped, kept, alongside)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(dropped)), "an interruptible wait ends at once")
      // The uninterruptible one cannot be interrupted while it waits: asked to, it still finishes its write.
      yield* Fiber.interruptFork(kept)
      yield* quiet(kept)
      assert.isTrue(yield* isPending(kept))
      calls[0]!.done(null)
      assert.strictEqual((yield* Fiber.join(first))._tag, "Claimed")
      yield* eventually(() => calls.length === 2, "the held writes were committed")
      const keys = (other.prepare("SELECT idempotency_key AS k FROM refunds ORDER BY seq").all() as Array<{ k: string }>).map((r) => r.k)
      assert.deepStrictEqual(keys, ["first", "kept", "alongside"])
      calls[1]!.done(null)
      assert.strictEqual((yield* Fiber.join(alongside))._tag, "Claimed")
      const keptExit = yield* Fiber.await(kept)
      assert.isTrue(Exit.isInterrupted(keptExit), "interrupted once its write was done")
      assert.strictEqual((yield* ledger.get(draft("kept").id)).idempotencyKey, "kept")
      assert.isTrue((yield* ledger.findByKey("toy", "dropped"))._tag === "None")
    }))

  it.scopedLive("a failed fsync fails every write it covers with a LedgerError; the ledger then refuses to go on", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const other = yield* raw(file)
      const first = draft("lost-1")
      const second = draft("lost-2")
      yield* Effect.scoped(Effect.gen(function*() {
        const { calls, fsync, releaseOnClose } = heldFsync()
        const ledger = yield* SqliteLedger.open(file, { fsync, fsyncSync: null })
        yield* releaseOnClose
        const a = yield* Effect.fork(Effect.flip(ledger.claim(first)))
        yield* eventually(() => calls.length === 1, "the first batch asked for an fsync")
        // Issued while the fsync is in flight: held, never committed once that fsync fails.
        const b = yield* Effect.fork(Effect.flip(ledger.claim(second)))
        yield* quiet(b)
        assert.strictEqual(refundsIn(other), 1)

        calls[0]!.done(Object.assign(new Error("EIO: i/o error, fsync"), { errno: -5, code: "EIO", syscall: "fsync" }))
        const lost = yield* Fiber.join(a)
        assert.strictEqual(lost._tag, "LedgerError")
        assert.include(lost.message, "EIO")
        assert.include(lost.message, "may not be on disk")
        const held = yield* Fiber.join(b)
        assert.strictEqual(held._tag, "LedgerError")
        assert.include(held.message, "EIO")
        assert.include(held.message, "restart")
        assert.strictEqual(calls.length, 1, "no fsync is tried after a failed one")
        // Nothing more is written, read or reported ready until the process restarts.
        const refusals = [
          yield* Effect.flip(ledger.claim(draft("after"))),
          yield* Effect.flip(ledger.get(first.id)),
          yield* Effect.flip(ledger.ready)
        ]
        for (const error of refusals) {
          assert.strictEqual(error._tag, "LedgerError")
          assert.include(error.message, "restart")
        }
        assert.strictEqual(refundsIn(other), 1, "the refused claims never ran")
      }))
      // The claim whose fsync failed was committed: a restarted ledger finds it in `requested`, and
      // recovery moves it to `unknown` as it would after a crash (no provider was called).
      const restarted = yield* build(SqlLedger.layerSqlite(file))
      const recovered = yield* restarted.recover({ olderThan: at(10), at: at(20) })
      assert.deepStrictEqual(recovered.map((r) => [r.id, r.status]), [[first.id, "unknown"]])
    }))

  it.scopedLive("closing waits for the fsync in flight before closing the WAL's descriptor", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const { calls, fsync } = heldFsync()
      const scope = yield* Scope.make()
      // No checkpoint worker: stopping it takes real time, and closing would still be waiting for it
      // below whether or not it waits for the fsync.
      const ledger = yield* Scope.extend(SqliteLedger.open(file, { fsync, fsyncSync: null, checkpointInWorker: false }), scope)
      const claim = yield* Effect.fork(ledger.claim(draft("closing")))
      yield* eventually(() => calls.length === 1, "the batch asked for an fsync")
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* quiet(closing)
      assert.isTrue(yield* isPending(closing), "still waiting for the fsync")
      assert.doesNotThrow(() => fs.fstatSync(calls[0]!.fd), "the descriptor is still open")
      calls[0]!.done(null)
      yield* Fiber.join(closing)
      assert.strictEqual((yield* Fiber.join(claim))._tag, "Claimed")
    }))

  it.scopedLive("a write committed alone is fsynced at once on the event loop; writes committed together go through the thread pool", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const pooled: Array<number> = []
      const inline: Array<number> = []
      const ledger = yield* SqliteLedger.open(file, {
        fsync: (fd, done) => (pooled.push(fd), fs.fsync(fd, done)),
        fsyncSync: (fd) => (inline.push(fd), fs.fsyncSync(fd))
      })
      const walInode = fs.statSync(`${file}-wal`).ino

      assert.strictEqual((yield* ledger.claim(draft("alone"))).refund.idempotencyKey, "alone")
      assert.strictEqual(inline.length, 1, "the lone claim was synced on the loop")
      assert.strictEqual(fs.fstatSync(inline[0]!).ino, walInode)
      assert.strictEqual(pooled.length, 0)

      // Three claims in one turn commit together: their fsync goes to the thread pool.
      const together = yield* Effect.all([ledger.claim(draft("t1")), ledger.claim(draft("t2")), ledger.claim(draft("t3"))], {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(together.map((c) => c._tag), ["Claimed", "Claimed", "Claimed"])
      assert.strictEqual(pooled.length, 1, "one pooled fsync for the batch of three")
      assert.strictEqual(inline.length, 1)
      assert.strictEqual(fs.fstatSync(pooled[0]!).ino, walInode)

      // A lone status change is synced on the loop again, and what it reported is on the file.
      yield* ledger.transition(draft("alone").id, { to: "succeeded", source: "submit", at: at(1), providerReference: "P-9" })
      assert.strictEqual(inline.length, 2)
      const other = yield* raw(file)
      assert.deepStrictEqual(other.prepare("SELECT status FROM refunds WHERE id = ?").get(draft("alone").id), { status: "succeeded" })
    }))

  it.scopedLive("a failed fsync of a lone commit fails that write with a LedgerError and stops the ledger", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const pooled: Array<number> = []
      const ledger = yield* SqliteLedger.open(file, {
        fsync: (fd, done) => (pooled.push(fd), fs.fsync(fd, done)),
        fsyncSync: () => {
          throw Object.assign(new Error("EIO: i/o error, fsync"), { errno: -5, code: "EIO", syscall: "fsync" })
        }
      })
      const lost = yield* Effect.flip(ledger.claim(draft("lost-alone")))
      assert.strictEqual(lost._tag, "LedgerError")
      assert.include(lost.message, "EIO")
      assert.include(lost.message, "may not be on disk")
      const refusals = [yield* Effect.flip(ledger.claim(draft("after-alone"))), yield* Effect.flip(ledger.ready)]
      for (const error of refusals) {
        assert.strictEqual(error._tag, "LedgerError")
        assert.include(error.message, "restart")
      }
      assert.strictEqual(pooled.length, 0, "no fsync is tried after a failed one")
      assert.strictEqual(refundsIn(yield* raw(file)), 1, "only the claim whose fsync failed was committed")
    }))
})

describe("SQLite ledger commit delay (commitDelayMillis, for bulk runs)", () => {
  it.scopedLive("writes issued in different turns within the delay share one COMMIT, reported only once it is durable", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const { calls, fsync, releaseOnClose } = heldFsync()
      // A second is far more than the two writes below need to be issued in, however loaded the machine.
      const ledger = yield* SqliteLedger.open(file, { fsync, fsyncSync: null, commitDelayMillis: 1000 })
      yield* releaseOnClose
      const other = yield* raw(file)
      const before = commitsInWal(file)

      const first = yield* Effect.fork(ledger.claim(draft("first")))
      yield* quiet(first)
      const second = yield* Effect.fork(ledger.claim(draft("second")))
      yield* quiet(second)
      assert.strictEqual(refundsIn(other), 0, "nothing is committed while the first write's delay runs")
      assert.strictEqual(calls.length, 0)

      yield* eventually(() => calls.length === 1, "the delayed batch asked for an fsync")
      assert.strictEqual(refundsIn(other), 2)
      assert.strictEqual(commitsInWal(file) - before, 1, "one COMMIT for writes from two turns")
      assert.isTrue(yield* isPending(first), "committed, not reported before its fsync")
      assert.isTrue(yield* isPending(second))
      calls[0]!.done(null)
      assert.deepStrictEqual([(yield* Fiber.join(first))._tag, (yield* Fiber.join(second))._tag], ["Claimed", "Claimed"])

      // A write that waited for an fsync in flight has waited long enough: it commits as soon as that fsync ends.
      const third = yield* Effect.fork(ledger.claim(draft("third")))
      yield* eventually(() => calls.length === 2, "the third write's batch asked for an fsync")
      const fourth = yield* Effect.fork(ledger.claim(draft("fourth")))
      yield* quiet(fourth)
      // The fourth write's delay timer was set as it was queued, before this one of the same length:
      // Node fires them in that order, so by now the writer has met the fourth's delay.
      yield* Effect.sleep("1000 millis")
      yield* quiet(fourth)
      assert.strictEqual(refundsIn(other), 3, "held while the fsync is in flight, past its own delay")
      calls[1]!.done(null)
      assert.strictEqual((yield* Fiber.join(third))._tag, "Claimed")
      // Committed in the event-loop turn the fsync ended in, well before a second delay would end.
      yield* quiet(fourth)
      assert.strictEqual(refundsIn(other), 4, "the held write committed without a second delay")
      yield* eventually(() => calls.length === 3, "the held write's batch asked for an fsync")
      calls[2]!.done(null)
      assert.strictEqual((yield* Fiber.join(fourth))._tag, "Claimed")
    }))

  it.scopedLive("the public SQLite layer takes the delay", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const delayed = yield* build(SqlLedger.layerSqlite(file, { commitDelayMillis: 200 }))
      const other = yield* raw(file)
      const claim = yield* Effect.fork(delayed.claim(draft("delayed")))
      yield* quiet(claim)
      assert.strictEqual(refundsIn(other), 0, "the layer's writes wait for the delay")
      assert.strictEqual((yield* Fiber.join(claim))._tag, "Claimed")
      assert.strictEqual(refundsIn(other), 1)
    }))
})

describe("SQLite ledger checkpoints (a worker thread, not the writer's COMMIT)", () => {
  const openWith = (file: string, options: SqliteLedger.OpenOptions = {}) => SqliteLedger.openConnected(file, options)

  const claimMany = (ledger: Ledger.Ledger["Type"], prefix: string, count: number) =>
    Effect.forEach(Array.from({ length: count / 50 }, (_, i) => i), (batch) =>
      Effect.all(Array.from({ length: 50 }, (_, j) => ledger.claim(draft(`${prefix}-${batch * 50 + j}`))), { concurrency: "unbounded" }))

  it.scopedLive("the worker copies the WAL into the database while the writer keeps only a backstop", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const { connection, ledger } = yield* openWith(file)
      const checkpointer = connection.checkpointer
      assert.isDefined(checkpointer)
      if (checkpointer === undefined) return
      assert.strictEqual(connection.db.pragma("wal_autocheckpoint", { simple: true }), 10_000, "the writer's own checkpoint is a backstop")
      const before = fs.statSync(file).size
      yield* ledger.list({ limit: 10 })
      assert.strictEqual((yield* ledger.claim(draft("ckpt-first")))._tag, "Claimed")
      assert.isUndefined(checkpointer.worker(), "no thread until there is a checkpoint to make")

      // One request per 200 committed writes, and none while one is outstanding: a worker still
      // starting up (slow on a loaded machine) may get only the first.
      yield* claimMany(ledger, "ckpt", 450)
      yield* eventually(() => checkpointer.completed() >= 1, "the worker completed a checkpoint", "20 seconds")
      // Pages reached the database file: only a checkpoint writes there.
      assert.isAbove(fs.statSync(file).size, before)
      assert.isTrue(checkpointer.running())
      // Everything is still there, read through another connection.
      assert.strictEqual(refundsIn(yield* raw(file)), 451)
    }))

  it.scopedLive("when the worker stops, the writer checkpoints by itself again; closing ends the worker", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const scope = yield* Scope.make()
      const { connection, ledger } = yield* Scope.extend(openWith(file), scope)
      const checkpointer = connection.checkpointer
      if (checkpointer === undefined) return assert.fail("no checkpointer on a file in WAL mode")
      yield* claimMany(ledger, "before-worker", 200)
      const worker = checkpointer.worker()
      if (worker === undefined) return assert.fail("no worker after 200 writes")
      yield* Effect.promise(() => worker.terminate())
      yield* eventually(() => !checkpointer.running(), "the writer noticed the worker stopped", "10 seconds")
      assert.strictEqual(connection.db.pragma("wal_autocheckpoint", { simple: true }), 1000, "SQLite's default threshold is back")
      assert.strictEqual((yield* ledger.claim(draft("after-worker")))._tag, "Claimed")
      yield* Scope.close(scope, Exit.void)

      const second = yield* Scope.make()
      const reopened = yield* Scope.extend(openWith(file), second)
      yield* claimMany(reopened.ledger, "reopened", 200)
      const restarted = reopened.connection.checkpointer?.worker()
      assert.isDefined(restarted)
      assert.notStrictEqual(restarted?.threadId, -1, "running")
      yield* Scope.close(second, Exit.void)
      assert.strictEqual(restarted?.threadId, -1, "closing the ledger waited for the worker to exit")

      // A short session (reads and a few writes) closes at once: there is no thread to wait for.
      const third = yield* Scope.make()
      const short = yield* Scope.extend(openWith(file), third)
      assert.strictEqual((yield* short.ledger.list({ limit: 500 })).items.length, 401)
      assert.strictEqual((yield* short.ledger.claim(draft("short")))._tag, "Claimed")
      assert.isUndefined(short.connection.checkpointer?.worker())
      yield* Scope.close(third, Exit.void)
      assert.strictEqual(refundsIn(yield* raw(file)), 402)
    }))

  it.scopedLive("without a worker (or in memory) SQLite's automatic checkpoint stays as it is", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const { connection } = yield* openWith(file, { checkpointInWorker: false })
      assert.isUndefined(connection.checkpointer)
      assert.strictEqual(connection.db.pragma("wal_autocheckpoint", { simple: true }), 1000)
      const memory = yield* openWith(":memory:")
      assert.isUndefined(memory.connection.checkpointer)
    }))
})
