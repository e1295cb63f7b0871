import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Ledger } from "@refundkit/core"
import { Effect, Exit, Scope } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { jsonLines, run, start, startSandboxes, stats, tempDir } from "./support.js"

// `refundkit bulk` at Airalo (one ICCID per row, rate limited, no status API): Bulk.test.ts's other
// half, a file of its own so that vitest runs it beside the rest (its rate-limit windows are mostly
// waiting), under the same describe so every test keeps its name.

type Row = {
  row: number
  idempotencyKey: string
  refundId?: string
  status?: string
  outcome: string
  replayed?: boolean
  retry?: number
  error?: { code: string; message: string }
}

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string

// A `bulk` run of Airalo rows (one ICCID each, all TRIP_CANCELLATION, so they pack) in a child process the test can kill.
const airaloBulk = (name: string, iccids: ReadonlyArray<string>, airalo: { readonly env: Record<string, string> }) => {
  writeFileSync(join(dir, `${name}.csv`), `iccids.0,reason\n${iccids.map((iccid) => `${iccid},TRIP_CANCELLATION`).join("\n")}\n`)
  const env = { ...sandboxes.info.env, ...airalo.env }
  const args = ["bulk", `${name}.csv`, "--provider", "airalo", "--json", "--ledger", join(dir, `${name}.db`)]
  const child = start(args, { cwd: dir, env })
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { env, args, exited, kill: () => child.kill("SIGKILL") }
}

/** How many refunds a running `bulk` has marked not sent in its SQLite ledger `file` (0 before it made the file). */
const markedNotSent = (file: string): Promise<number> =>
  Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      // Read-only, on a connection of the test's own: the ledger is in WAL mode, so this never blocks its writer.
      const sql = yield* SqliteClient.make({ filename: file, readonly: true, disableWAL: true })
      const [row] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM refunds WHERE json_extract(error, '$.code') = ${Ledger.notSentCode}`
      return row?.n ?? 0
    })).pipe(Effect.provide(Reactivity.layer), Effect.catchAllCause(() => Effect.succeed(0)))
  )

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

describe("refundkit bulk", () => {
  it("refuses a second row refunding the same Airalo ICCID (target_already_refunded, nothing sent for it, exit 2), and again after the file is re-exported", async () => {
    const scope = Effect.runSync(Scope.make())
    // No rate limit: the re-run's call would wait out Airalo's 5 minutes.
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
    type AiraloStats = { refundRequestsPerIccid: Record<string, number>; duplicateIccids: Array<string> }
    try {
      const [twice, once] = [AiraloSandbox.ownedIccid(901), AiraloSandbox.ownedIccid(902)]
      writeFileSync(join(dir, "airalo-twice.csv"), `iccids.0,reason\n${twice},TRIP_CANCELLATION\n${once},TRIP_CANCELLATION\n${twice},TRIP_CANCELLATION\n`)
      const env = { ...sandboxes.info.env, ...airalo.env }
      const ledger = join(dir, "airalo-twice.db")
      const result = await run(["bulk", "airalo-twice.csv", "--provider", "airalo", "--json", "--ledger", ledger], { cwd: dir, env })
      assert.strictEqual(result.code, 2, result.stderr)
      assert.deepInclude(JSON.parse(result.stdout), { outcomes: { ok: 2, declined: 0, failed: 0, inDoubt: 0, invalid: 1 } })
      const rows = jsonLines<Row>(readFileSync(join(dir, "airalo-twice.csv.results.jsonl"), "utf8")).sort((a, b) => a.row - b.row)
      const holder = rows.find((r) => r.row !== 2 && r.outcome === "ok")!
      const refused = rows.find((r) => r.outcome === "invalid")!
      assert.strictEqual(refused.error?.code, "target_already_refunded")
      assert.include(refused.error?.message, holder.refundId!)
      // Nothing was recorded for the refused row: no refund id or status of its own.
      assert.isUndefined(refused.refundId)
      assert.isUndefined(refused.status)
      assert.deepStrictEqual((await stats<AiraloStats>(airalo.url)).refundRequestsPerIccid, { [once]: 1, [twice]: 1 })

      // The file re-exported with a row added at the top: every row gets a new derived key, and still no eSIM is sent again.
      const fresh = AiraloSandbox.ownedIccid(903)
      writeFileSync(join(dir, "airalo-again.csv"), `iccids.0,reason\n${fresh},TRIP_CANCELLATION\n${twice},TRIP_CANCELLATION\n${once},TRIP_CANCELLATION\n`)
      const again = await run(["bulk", "airalo-again.csv", "--provider", "airalo", "--json", "--ledger", ledger], { cwd: dir, env })
      assert.strictEqual(again.code, 2, again.stderr)
      assert.deepInclude(JSON.parse(again.stdout), { outcomes: { ok: 1, declined: 0, failed: 0, inDoubt: 0, invalid: 2 } })
      const after = await stats<AiraloStats>(airalo.url)
      assert.deepStrictEqual(after.duplicateIccids, [], "no eSIM asked for twice")
      assert.deepStrictEqual(after.refundRequestsPerIccid, { [once]: 1, [twice]: 1, [fresh]: 1 })
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("a re-exported Airalo file whose eSIMs are all refunded is refused at once: no row waits for a turn of the rate limit", async () => {
    const scope = Effect.runSync(Scope.make())
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
    try {
      const iccids = Array.from({ length: 7 }, (_, i) => AiraloSandbox.ownedIccid(910 + i))
      const ledger = join(dir, "airalo-reexport.db")
      writeFileSync(join(dir, "airalo-first.csv"), `iccids.0,reason\n${iccids.map((i) => `${i},TRIP_CANCELLATION`).join("\n")}\n`)
      const first = await run(["bulk", "airalo-first.csv", "--provider", "airalo", "--json", "--ledger", ledger], { cwd: dir, env: { ...sandboxes.info.env, ...airalo.env } })
      assert.strictEqual(first.code, 0, first.stderr)
      // Re-exported newest first, under Airalo's 1 call per 5 minutes: two packed calls' worth of rows,
      // so a run that took a turn per call before its claims were refused would wait 5 minutes for the second.
      writeFileSync(join(dir, "airalo-reexport.csv"), `iccids.0,reason\n${[...iccids].reverse().map((i) => `${i},TRIP_CANCELLATION`).join("\n")}\n`)
      const started = Date.now()
      const again = await run(["bulk", "airalo-reexport.csv", "--provider", "airalo", "--json", "--ledger", ledger], {
        cwd: dir,
        env: { ...sandboxes.info.env, ...airalo.env, REFUNDKIT_AIRALO_RATE_LIMIT: "1/5m" }
      })
      assert.strictEqual(again.code, 2, again.stderr)
      assert.deepInclude(JSON.parse(again.stdout), { outcomes: { ok: 0, declined: 0, failed: 0, inDoubt: 0, invalid: 7 } })
      assert.isBelow(Date.now() - started, 30_000)
      const rows = jsonLines<Row>(readFileSync(join(dir, "airalo-reexport.csv.results.jsonl"), "utf8"))
      assert.isTrue(rows.every((r) => r.error?.code === "target_already_refunded"))
      assert.deepStrictEqual((await stats<{ duplicateIccids: Array<string> }>(airalo.url)).duplicateIccids, [])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)

  it("waits for the provider's rate limit instead of failing, packing Airalo ICCIDs that share a reason", async () => {
    // Airalo's own sandbox, started here with a short window so the limit shows within a test.
    const scope = Effect.runSync(Scope.make())
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: { requests: 1, perMillis: 1500 } }).pipe(Scope.extend(scope)))
    try {
      const lines = ["iccids.0,reason"]
      for (let i = 1; i <= 12; i++) lines.push(`${AiraloSandbox.ownedIccid(700 + i)},TRIP_CANCELLATION`)
      writeFileSync(join(dir, "airalo.csv"), `${lines.join("\n")}\n`)
      const result = await run(["bulk", "airalo.csv", "--provider", "airalo", "--json", "--ledger", join(dir, "airalo.db")], {
        cwd: dir,
        env: { ...sandboxes.info.env, ...airalo.env }
      })
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepInclude(JSON.parse(result.stdout), { outcomes: { ok: 12, declined: 0, failed: 0, inDoubt: 0, invalid: 0 } })
      // 12 rows in 3 accepted calls of up to 5 ICCIDs; none asked for twice (a call refused by the limiter is retried, never doubled).
      const after = (await stats(airalo.url)) as { requests: Record<string, number>; refundsPerformed: number; duplicateIccids: Array<string>; iccidsRequested: number }
      assert.strictEqual(after.refundsPerformed, 3)
      assert.strictEqual(after.iccidsRequested, 12)
      assert.deepStrictEqual(after.duplicateIccids, [])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })


  it("a second row naming an ICCID an earlier row of the file is sending is refused at once, not after a rate-limit window", async () => {
    const scope = Effect.runSync(Scope.make())
    // A window far longer than the test: a row that waited for the next one would time it out.
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: { requests: 1, perMillis: 600_000 } }).pipe(Scope.extend(scope)))
    try {
      const [a, b] = [AiraloSandbox.ownedIccid(801), AiraloSandbox.ownedIccid(802)]
      writeFileSync(join(dir, "airalo-twice.csv"), `iccids.0,reason\n${a},TRIP_CANCELLATION\n${b},TRIP_CANCELLATION\n${a},TRIP_CANCELLATION\n`)
      const result = await run(["bulk", "airalo-twice.csv", "--provider", "airalo", "--json", "--ledger", join(dir, "airalo-twice.db")], {
        cwd: dir,
        env: { ...sandboxes.info.env, ...airalo.env }
      })
      assert.strictEqual(result.code, 2, result.stderr)
      const rows = jsonLines<Row>(readFileSync(join(dir, "airalo-twice.csv.results.jsonl"), "utf8")).sort((x, y) => x.row - y.row)
      assert.deepStrictEqual(rows.map((r) => [r.outcome, r.error?.code]), [["ok", undefined], ["ok", undefined], ["invalid", "target_already_refunded"]])
      assert.include(rows[2]!.error!.message, rows[0]!.refundId!)
      const after = (await stats(airalo.url)) as { refundsPerformed: number; duplicateIccids: Array<string> }
      assert.strictEqual(after.refundsPerformed, 1, "rows 1 and 2 in one call")
      assert.deepStrictEqual(after.duplicateIccids, [])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("a packed Airalo call refused as a whole, then SIGKILL while its rows wait for calls of their own: no row left in doubt", async () => {
    // Airalo has no status API: a row in doubt there is one someone checks by hand, and these were provably never accepted.
    const scope = Effect.runSync(Scope.make())
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: { requests: 1, perMillis: 4000 } }).pipe(Scope.extend(scope)))
    type AiraloStats = { refundsPerformed: number; rejected: number; refundRequestsPerIccid: Record<string, number>; duplicateIccids: Array<string> }
    try {
      // One eSIM of another company makes Airalo refuse the packed call of all five; each row then waits its own turn.
      const foreign = AiraloSandbox.foreignIccid(1)
      const iccids = [AiraloSandbox.ownedIccid(901), AiraloSandbox.ownedIccid(902), foreign, AiraloSandbox.ownedIccid(903), AiraloSandbox.ownedIccid(904)]
      const { args, env, exited, kill } = airaloBulk("airalo-refused", iccids, airalo)
      // Killed once the refusal is in and every row is marked not sent, while the first row still waits
      // the 4 s for its own call. Up to 60 s for the child to start (a loaded machine starts Node slowly).
      const ledgerFile = join(dir, "airalo-refused.db")
      for (let i = 0; i < 3000 && (await markedNotSent(ledgerFile)) < iccids.length; i++) await new Promise((r) => setTimeout(r, 20))
      kill()
      await exited
      const killed = await stats<AiraloStats>(airalo.url)
      assert.strictEqual(killed.rejected, 1, "the kill landed after the packed call's refusal")
      assert.strictEqual(killed.refundsPerformed, 0, "and before any row was sent on its own")

      const resumed = await run(args, { cwd: dir, env })
      assert.strictEqual(resumed.code, 1, `failed rows, none in doubt (exit 3): ${resumed.stderr}`)
      const results = jsonLines<Row>(readFileSync(join(dir, "airalo-refused.csv.results.jsonl"), "utf8"))
      assert.deepStrictEqual(results.filter((r) => r.outcome === "in_doubt").map((r) => r.row), [], "no row Airalo provably did not accept is in doubt")
      assert.deepStrictEqual(results.map((r) => [r.outcome, r.error?.code]), iccids.map(() => ["failed", "not_sent"]))
      assert.strictEqual((await stats<AiraloStats>(airalo.url)).refundsPerformed, 0, "the re-run resends nothing without --retry-failed")

      // Failed without being processed, so --retry-failed sends them: the others go through, the foreign eSIM is declined.
      const retried = await run([...args, "--retry-failed"], { cwd: dir, env })
      assert.strictEqual(retried.code, 0, retried.stderr)
      const last = jsonLines<Row>(readFileSync(join(dir, "airalo-refused.csv.results.jsonl"), "utf8"))
      assert.deepStrictEqual(last.map((r) => r.outcome), ["ok", "ok", "declined", "ok", "ok"])
      const after = await stats<AiraloStats>(airalo.url)
      assert.deepStrictEqual(after.duplicateIccids, [], "no eSIM asked for twice")
      assert.sameMembers(Object.keys(after.refundRequestsPerIccid), iccids.filter((iccid) => iccid !== foreign))
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 120_000)

  it("claims a row only when its call's turn of the rate limit comes: after SIGKILL, no row that was never sent is left in doubt", async () => {
    // Airalo has no status API: a row in doubt there is one someone checks by hand.
    const scope = Effect.runSync(Scope.make())
    // A window long enough that a loaded machine's polling still sees the first call before the second can start.
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: { requests: 1, perMillis: 4000 } }).pipe(Scope.extend(scope)))
    type AiraloStats = { refundRequestsPerIccid: Record<string, number>; duplicateIccids: Array<string> }
    try {
      const iccids = Array.from({ length: 20 }, (_, i) => AiraloSandbox.ownedIccid(800 + i))
      const { args, env, exited, kill } = airaloBulk("airalo-kill", iccids, airalo)
      // Killed once the first call of 5 ICCIDs is in; the other 15 rows wait for the limit's next windows.
      // Up to 60 s for the child to start and make its first call (a loaded machine starts Node slowly).
      for (let i = 0; i < 6000 && (await stats<AiraloStats>(airalo.url)).refundsPerformed === 0; i++) await new Promise((r) => setTimeout(r, 10))
      kill()
      await exited
      const sent = new Set(Object.keys((await stats<AiraloStats>(airalo.url)).refundRequestsPerIccid))
      assert.strictEqual(sent.size, 5, "the kill landed after exactly one call")

      const resumed = await run(args, { cwd: dir, env })
      assert.oneOf(resumed.code, [0, 3], resumed.stderr)
      const results = jsonLines<Row>(readFileSync(join(dir, "airalo-kill.csv.results.jsonl"), "utf8"))
      assert.strictEqual(results.length, 20)
      const inDoubt = results.filter((r) => r.outcome === "in_doubt")
      // Only the killed call's own rows can be in doubt (its answer may not have been recorded); the rows that
      // were waiting their turn were never claimed, so the re-run sends them.
      assert.isTrue(inDoubt.every((r) => sent.has(iccids[r.row - 1]!)), `rows in doubt that were never sent: ${inDoubt.filter((r) => !sent.has(iccids[r.row - 1]!)).map((r) => r.row)}`)
      assert.strictEqual(results.filter((r) => r.outcome === "ok").length + inDoubt.length, 20)
      const after = await stats<AiraloStats>(airalo.url)
      assert.deepStrictEqual(after.duplicateIccids, [], "no eSIM asked for twice")
      assert.sameMembers(Object.keys(after.refundRequestsPerIccid), iccids)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
