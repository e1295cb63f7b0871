// Several OS processes on one ledger, and a process killed between claim and outcome.
// The children run the built package (dist), as a second gateway instance would.
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Schema, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { createRequire } from "node:module"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as SqlLedger from "../src/SqlLedger.js"
import * as Claimants from "../src/internal/claimants.js"
import { build, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { draft, partial } from "./support/refunds.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const packageDir = path.join(here, "..")
const childScript = path.join(here, "fixtures", "child.mjs")

beforeAll(() => {
  // Up to date in CI (turbo builds first); a no-op in about a second when nothing changed.
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  execFileSync(process.execPath, [tsc, "-b", "tsconfig.build.json"], { cwd: packageDir, stdio: "inherit" })
}, 120_000)

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

interface Spawned {
  readonly child: ChildProcess
  readonly exited: Effect.Effect<Exited>
  /** The first stdout line starting with `prefix`, printed before or after the call. */
  readonly line: (prefix: string) => Effect.Effect<string, Error>
}

/** Spawns the child script; it is killed if still running when the scope closes. */
const spawnChild = (args: ReadonlyArray<string>): Effect.Effect<Spawned, never, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [childScript, ...args], { cwd: packageDir, stdio: ["pipe", "pipe", "pipe"] })),
      (child) => Effect.sync(() => void (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")))
    )
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const done = () => child.exitCode !== null || child.signalCode !== null
    const exited = Effect.async<Exited>((resume) => {
      if (done()) return resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode, stdout, stderr }))
      child.once("close", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
    })
    const line = (prefix: string) =>
      Effect.async<string, Error>((resume) => {
        const found = () => stdout.split("\n").find((l) => l.startsWith(prefix))
        // Registered after the accumulator above, so `stdout` already holds each chunk.
        const onData = () => {
          const l = found()
          if (l !== undefined) {
            child.stdout!.off("data", onData)
            resume(Effect.succeed(l))
          }
        }
        const early = found()
        if (early !== undefined) return resume(Effect.succeed(early))
        if (done()) return resume(Effect.fail(new Error(`child exited before printing "${prefix}": ${stderr}`)))
        child.stdout!.on("data", onData)
        child.once("close", () => resume(Effect.fail(new Error(`child exited before printing "${prefix}": ${stderr}`))))
      }).pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`no "${prefix}" line in 30 s`) }))
    return { child, exited, line }
  })

const RaceResult = Schema.parseJson(Schema.Struct({ pid: Schema.Number, won: Schema.Array(Schema.String), errors: Schema.Array(Schema.String) }))

const race = (url: string) =>
  Effect.gen(function*() {
    const children = yield* Effect.all([spawnChild(["race", url, "a"]), spawnChild(["race", url, "b"])])
    // Both have loaded the package and migrated (racing each other to do so); start them together.
    yield* Effect.all(children.map((c) => c.line("ready")), { concurrency: "unbounded" })
    for (const c of children) c.child.stdin!.write("go\n")
    const results = yield* Effect.all(children.map((c) => c.exited), { concurrency: "unbounded" })
    for (const r of results) assert.strictEqual(r.code, 0, `child failed: ${r.stderr}`)
    const [a, b] = yield* Effect.all(results.map((r) => Schema.decodeUnknown(RaceResult)(r.stdout.trim().split("\n").at(-1))))
    assert.notStrictEqual(a!.pid, b!.pid)
    const raceWins = [...a!.won, ...b!.won].filter((k) => k.startsWith("race-")).sort()
    assert.deepStrictEqual(raceWins, Array.from({ length: 40 }, (_, i) => `race-${i}`).sort(), "each key won exactly once")
    const partWins = [...a!.won, ...b!.won].filter((k) => k.includes("-part-"))
    assert.strictEqual(partWins.length, 10, "ten 10.00 refunds fit in 100.00, across both processes")
    const wholeWins = [...a!.won, ...b!.won].filter((k) => k.includes("-esim-"))
    assert.strictEqual(wholeWins.length, 5, "one whole refund per ICCID, across both processes")
    assert.deepStrictEqual(
      [...a!.errors, ...b!.errors].sort(),
      [...Array.from({ length: 20 }, () => "OverRefund"), ...Array.from({ length: 15 }, () => "TargetAlreadyRefunded")]
    )

    // What the ledger holds agrees with what the processes saw.
    const ledger = yield* build(SqlLedger.layer({ url }))
    const page = yield* ledger.list({ limit: 100 })
    assert.strictEqual(page.items.length, 55)
    const iccids = page.items.flatMap((r) => r.targets.filter((t) => t.target.startsWith("iccid-")).map((t) => t.target))
    assert.deepStrictEqual(iccids.sort(), ["iccid-0", "iccid-1", "iccid-2", "iccid-3", "iccid-4"])
    const reserved = page.items.filter((r) => r.targets.some((t) => t.target === "pay-x"))
    assert.deepStrictEqual(reserved.map((r) => r.idempotencyKey).sort(), [...partWins].sort())
  })

/**
 * A process killed between its claim and its provider's answer. While it lives, recovery leaves its
 * refund alone within the grace; once it is dead (this machine can tell: claimants.ts), recovery
 * takes the refund at once, whatever the grace, and moves it to unknown without resending it.
 */
const killed = (url: string) =>
  Effect.gen(function*() {
    const { child, exited, line: lineOf } = yield* spawnChild(["hang", url, "crash-1"])
    const line = yield* lineOf("claimed ")
    const id = line.slice("claimed ".length).trim()
    const ledger = yield* build(SqlLedger.layer({ url }))
    const withinGrace = () => {
      const now = Date.now()
      return { olderThan: new Date(now - 60_000).toISOString(), at: new Date(now).toISOString() }
    }
    assert.deepStrictEqual(yield* ledger.orphaned!([id]), [], "its claimant is alive")
    assert.deepStrictEqual(yield* ledger.recover(withinGrace()), [], "within the grace a live claimant's refund is not moved")
    // Leased for ten minutes, as its process renewed it just before it died.
    yield* ledger.keepAlive!({ ids: [id], at: new Date().toISOString(), forMillis: 600_000 })
    assert.deepStrictEqual(yield* ledger.leased!({ ids: [id], at: new Date().toISOString() }), [id])

    child.kill("SIGKILL")
    const exit = yield* exited
    assert.strictEqual(exit.signal, "SIGKILL")
    assert.strictEqual((yield* ledger.get(id)).status, "requested")
    assert.deepStrictEqual(yield* ledger.orphaned!([id]), [id], "its claimant has ended")
    const moved = yield* ledger.recover(withinGrace())
    assert.deepStrictEqual(moved.map((r) => r.id), [id], "a dead claimant's refund is moved at once, its lease and grace notwithstanding")
    const after = yield* ledger.get(id)
    assert.strictEqual(after.status, "unknown")
    assert.deepStrictEqual(after.events.map((e) => [e.source, e.to]), [["submit", "requested"], ["recovery", "unknown"]])
    assert.deepStrictEqual(yield* ledger.orphaned!([id]), [], "only refunds still requested are orphaned")
    const due = yield* ledger.needingSync({ limit: 10 })
    assert.deepStrictEqual(due.map((r) => r.id), [id], "the recovered refund is queued for sync")
  })

/** Every way of claiming (alone, in a batch, guarded by an original amount, a whole target) writes who claimed. */
const claimantsWritten = (url: string) =>
  Effect.gen(function*() {
    const ledger = yield* build(SqlLedger.layer({ url }))
    yield* Effect.all([
      ...Array.from({ length: 40 }, (_, i) => ledger.claim(draft(`batch-${i}`))),
      ...Array.from({ length: 10 }, (_, i) => ledger.claim(partial(`part-${i}`, "pay-9", "1.00", "100.00"))),
      ...Array.from({ length: 5 }, (_, i) => ledger.claim(draft(`whole-${i}`, { targets: [{ target: `iccid-9${i}` }] })))
    ], { concurrency: "unbounded" })
    yield* ledger.claim(draft("alone"))
    const sql = yield* rawSql(url)
    const rows = yield* sql<{ readonly claimed_by: string | null; readonly n: number | string }>`SELECT claimed_by, count(*) AS n FROM refunds GROUP BY claimed_by`
    assert.deepStrictEqual(rows.map((r) => [r.claimed_by, Number(r.n)]), [[Claimants.self() ?? null, 56]])
  })

const Decided = Schema.parseJson(Schema.Struct({ sent: Schema.Boolean, saw: Schema.optional(Schema.String) }))

/**
 * Two processes update one refund at once, as a gateway and `refundkit update` on one ledger:
 * exactly one "sends" (its turn sees the refund still OPEN), and the other decides from what
 * the first recorded. Without a turn across processes both saw OPEN and both sent.
 */
const updateRace = (url: string) =>
  Effect.gen(function*() {
    const ledger = yield* build(SqlLedger.layer({ url }))
    const refund = draft("turn-race")
    yield* ledger.claim(refund)
    yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: new Date().toISOString(), providerStatus: "OPEN" })
    const children = yield* Effect.all([spawnChild(["update", url, refund.id, "A"]), spawnChild(["update", url, refund.id, "B"])])
    yield* Effect.all(children.map((c) => c.line("ready")), { concurrency: "unbounded" })
    for (const c of children) c.child.stdin!.write("go\n")
    const results = yield* Effect.all(children.map((c) => c.exited), { concurrency: "unbounded" })
    for (const r of results) assert.strictEqual(r.code, 0, `child failed: ${r.stderr}`)
    const [a, b] = yield* Effect.all(results.map((r) => Schema.decodeUnknown(Decided)(r.stdout.trim().split("\n").at(-1))))
    assert.strictEqual([a!, b!].filter((d) => d.sent).length, 1, `both processes sent their update: ${JSON.stringify([a, b])}`)
    const winner = a!.sent ? "A" : "B"
    assert.strictEqual((a!.sent ? b! : a!).saw, winner, "the second decided from what the first recorded")
    const after = yield* ledger.get(refund.id)
    assert.strictEqual(after.providerStatus, winner)
  })

/**
 * A process SIGKILLed while holding a refund's turn on SQLite (mid provider call) does not
 * block the refund for ever: its lease runs out and another process takes the turn.
 */
const killedInTurn = (url: string) =>
  Effect.gen(function*() {
    const lease = 1500
    const setup = yield* build(SqlLedger.layer({ url }))
    const refund = draft("turn-killed")
    yield* setup.claim(refund)
    const { child, exited, line } = yield* spawnChild(["hold", url, refund.id, String(lease)])
    yield* line("holding")
    // The lease as the dead holder wrote it: the parent reads "holding" some time after the child took the
    // turn (a busy machine delays the pipe), so a clock started on reading it runs late.
    const sql = yield* rawSql(url)
    const rows = yield* sql<{ readonly until: string }>`SELECT until FROM refund_turns WHERE refund_id = ${refund.id}`
    assert.strictEqual(rows.length, 1, "the child holds the refund's turn")
    const until = Date.parse(rows[0]!.until)
    child.kill("SIGKILL")
    assert.strictEqual((yield* exited).signal, "SIGKILL")
    const turn = (ledger: SqlLedger.SqlLedger.Service) => {
      assert.isDefined(ledger.serialise, "the ledger serialises refund turns")
      return ledger.serialise!
    }
    // The dead process's lease still stands: a short wait gives up, naming the refund.
    const impatient = yield* build(SqlLedger.layer({ url, turnWaitMillis: 200 }))
    const early = yield* Effect.flip(turn(impatient)(refund.id, impatient.get(refund.id)))
    assert.include(early.message, refund.id)
    const ledger = yield* build(SqlLedger.layer({ url }))
    const got = yield* turn(ledger)(refund.id, ledger.get(refund.id)).pipe(Effect.timeout("10 seconds"))
    assert.strictEqual(got.id, refund.id)
    assert.isAtLeast(Date.now(), until, "the turn was taken before the dead holder's lease ran out")
  })

describe("several processes on one ledger", () => {
  it.scopedLive("SQLite file: two processes updating one refund at once take turns; the second decides from what the first recorded", () =>
    Effect.flatMap(tempDir, (dir) => updateRace(path.join(dir, "turns.db"))), 60_000)

  it.scopedLive("SQLite file: a process killed holding a refund's turn frees it once its lease has run out", () =>
    Effect.flatMap(tempDir, (dir) => killedInTurn(path.join(dir, "turn-killed.db"))), 60_000)


  it.scopedLive("PostgreSQL: two processes claiming the same keys get one winner per key, and never over-refund or refund a target whole twice", () =>
    Effect.flatMap(pgSchema, race), 60_000)

  it.scopedLive("SQLite file: two processes claiming the same keys get one winner per key, and never over-refund or refund a target whole twice", () =>
    Effect.flatMap(tempDir, (dir) => race(path.join(dir, "shared.db"))), 60_000)

  it.scopedLive("PostgreSQL: a process killed after its claim leaves a refund that recovery moves to unknown at once, and not while the process lives", () =>
    Effect.flatMap(pgSchema, killed), 60_000)

  it.scopedLive("SQLite file: a process killed after its claim leaves a refund that recovery moves to unknown at once, and not while the process lives", () =>
    Effect.flatMap(tempDir, (dir) => killed(path.join(dir, "crash.db"))), 60_000)

  it.scopedLive("PostgreSQL: every claim names the process that made it", () => Effect.flatMap(pgSchema, claimantsWritten), 60_000)

  it.scopedLive("SQLite file: every claim names the process that made it", () =>
    Effect.flatMap(tempDir, (dir) => claimantsWritten(path.join(dir, "claimants.db"))), 60_000)

  it.scopedLive("SQLite file: a script whose only work is the ledger closes it cleanly before it exits", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "script.db")
      const { exited } = yield* spawnChild(["close", file, "script-1"])
      const result = yield* exited
      // The checkpoint worker was left to keep the process alive on its own: Node exited while the
      // scope was closing, so the script's `.then` never ran and the WAL was left behind.
      assert.deepStrictEqual([result.code, result.stdout], [0, "closed\n"], result.stderr)
      assert.isFalse(fs.existsSync(`${file}-wal`), "the last connection's close checkpoints and removes the WAL")
      const ledger = yield* build(SqlLedger.layer({ url: file }))
      assert.strictEqual((yield* ledger.list({ limit: 5 })).items.length, 1)
    }), 60_000)
})
