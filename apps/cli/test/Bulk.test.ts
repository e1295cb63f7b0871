import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Ledger, Refund } from "@refundkit/core"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { clearFaults, fault, jsonLines, run, start, startSandboxes, stats, tempDir } from "./support.js"

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
type AirpayStats = { requests: Record<string, number>; refundsPerformed: number; refundsByTransaction: Record<string, number> }

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const cli = (args: ReadonlyArray<string>, ledger: string, env: Record<string, string> = {}) =>
  run([...args, "--ledger", join(dir, ledger)], { cwd: dir, env: { ...sandboxes.info.env, ...env } })

// One row per Airpay transaction: `transactions.0.*` columns build the provider's array; 10.50 stays a string.
const airpayCsv = (name: string, from: number, count: number): string => {
  const lines = ["transactions.0.ap_transactionid,transactions.0.amount,currency"]
  for (let i = 0; i < count; i++) lines.push(`${from + i},10.50,INR`)
  const path = join(dir, name)
  writeFileSync(path, `${lines.join("\n")}\n`)
  return path
}

// A `bulk` run of Airalo rows (one ICCID each, all TRIP_CANCELLATION, so they pack) in a child process the test can kill.
const airaloBulk = (name: string, iccids: ReadonlyArray<string>, airalo: { readonly env: Record<string, string> }) => {
  writeFileSync(join(dir, `${name}.csv`), `iccids.0,reason\n${iccids.map((iccid) => `${iccid},TRIP_CANCELLATION`).join("\n")}\n`)
  const env = { ...sandboxes.info.env, ...airalo.env }
  const args = ["bulk", `${name}.csv`, "--provider", "airalo", "--json", "--ledger", join(dir, `${name}.db`)]
  const child = start(args, { cwd: dir, env })
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { env, args, exited, kill: () => child.kill("SIGKILL") }
}

/**
 * The slow limit a kill must land within is not needed once the kill is in: the sandbox and the processes
 * started afterwards move to a quick one, so the rest of the test does not wait out 4 s windows.
 */
const quickerAfterKill = async (airalo: AiraloSandbox.AiraloSandbox, env: Record<string, string>) => {
  await Effect.runPromise(airalo.setRateLimit({ requests: 1, perMillis: 250 }))
  return { ...env, REFUNDKIT_AIRALO_RATE_LIMIT: "1/250ms" }
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
  it("validates 10,000 rows before sending anything and reports every invalid row (dry run, exit 2)", async () => {
    const lines = ["transactionId,amount,reason,metadata.order"]
    const bad = new Map<number, string>()
    for (let row = 1; row <= 10_000; row++) {
      if (row % 1000 === 0) {
        bad.set(row, "amount")
        lines.push(`${2_000_000 + row},10.005,customer_request,o-${row}`)
      } else if (row === 4321) {
        bad.set(row, "transactionId")
        lines.push(`not-a-number,10.00,customer_request,o-${row}`)
      } else {
        lines.push(`${2_000_000 + row},10.00,customer_request,"o-${row}"`)
      }
    }
    writeFileSync(join(dir, "big.csv"), `${lines.join("\r\n")}\r\n`)
    const before = await stats(sandboxes.url("exirom"))
    const result = await cli(["bulk", "big.csv", "--provider", "exirom", "--dry-run", "--json"], "dry.db")
    assert.strictEqual(result.code, 2, result.stderr)
    const body = JSON.parse(result.stdout) as { error: { code: string; invalidRows: number; rows: number; issues: Array<{ path: string; message: string }> } }
    assert.strictEqual(body.error.code, "invalid_request")
    assert.strictEqual(body.error.rows, 10_000)
    assert.strictEqual(body.error.invalidRows, bad.size)
    assert.deepStrictEqual(body.error.issues.map((i) => i.path), [...bad].sort(([a], [b]) => a - b).map(([row, field]) => `row ${row}.${field}`))
    for (const row of bad.keys()) assert.include(result.stderr, `row ${row} (line ${row + 1}):`)
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before.requests, "nothing was sent")
  })

  it("dry-runs 60,000 rows without a ledger: counts, the first 1,000 invalid rows in the report, every one on stderr", async () => {
    const work = tempDir()
    // Enough invalid rows (1,500) to pass the report's cap of 1,000; the benchmark's memory section streams a million.
    const rows = 60_000
    const lines = ["transactionId,amount,reason"]
    const bad: Array<number> = []
    for (let row = 1; row <= rows; row++) {
      if (row % 40 === 0) {
        bad.push(row)
        lines.push(`${4_000_000 + row},1.005,customer_request`)
      } else lines.push(`${4_000_000 + row},1.00,customer_request`)
    }
    writeFileSync(join(work, "large.csv"), `${lines.join("\n")}\n`)
    const before = await stats(sandboxes.url("exirom"))
    // No --ledger: a dry run must not create the default ledger (./.refundkit/ledger.db) in the working directory.
    const result = await run(["bulk", "large.csv", "--provider", "exirom", "--dry-run", "--json"], { cwd: work, env: sandboxes.info.env })
    assert.strictEqual(result.code, 2, result.stderr.slice(0, 2000))
    const body = JSON.parse(result.stdout) as { error: { code: string; rows: number; invalidRows: number; truncated?: boolean; issues: Array<{ path: string; message: string }> } }
    assert.strictEqual(body.error.code, "invalid_request")
    assert.strictEqual(body.error.rows, rows)
    assert.strictEqual(body.error.invalidRows, bad.length)
    assert.isTrue(body.error.truncated)
    assert.deepStrictEqual(body.error.issues.map((i) => i.path), bad.slice(0, 1000).map((row) => `row ${row}.amount`))
    assert.include(body.error.issues[0]!.message, "decimal")
    const named = result.stderr.split("\n").filter((line) => line.startsWith("row "))
    assert.strictEqual(named.length, bad.length)
    assert.include(result.stderr, `row ${bad.at(-1)} (line ${bad.at(-1)! + 1}): amount:`)
    assert.isFalse(existsSync(join(work, ".refundkit")), "a dry run opens no ledger")
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before.requests, "nothing was sent")

    writeFileSync(join(work, "large-ok.csv"), `${lines.map((line) => line.replace(",1.005,", ",1.00,")).join("\n")}\n`)
    const ok = await run(["bulk", "large-ok.csv", "--provider", "exirom", "--dry-run", "--json"], { cwd: work, env: sandboxes.info.env })
    assert.strictEqual(ok.code, 0, ok.stderr.slice(0, 2000))
    const report = JSON.parse(ok.stdout) as Record<string, unknown>
    assert.deepStrictEqual(Object.keys(report).sort(), ["dryRun", "invalid", "rows", "sha256"])
    assert.deepInclude(report, { dryRun: true, rows, invalid: 0 })
    assert.match(String(report["sha256"]), /^[0-9a-f]{64}$/)
    assert.isFalse(existsSync(join(work, ".refundkit")))
  }, 120_000)

  it("reads JSONL with per-row idempotency keys; an invalid file is refused without --dry-run too", async () => {
    const rows = Array.from({ length: 20 }, (_, i) => JSON.stringify({ transactionId: 3_000_000 + i, amount: "1.00", reason: "duplicate", idempotency_key: `jl-${i}` }))
    writeFileSync(join(dir, "ok.jsonl"), `${rows.join("\n")}\n`)
    const dry = await cli(["bulk", "ok.jsonl", "--provider", "exirom", "--dry-run", "--json"], "jsonl.db")
    assert.strictEqual(dry.code, 0, dry.stderr)
    assert.deepInclude(JSON.parse(dry.stdout), { dryRun: true, rows: 20, invalid: 0 })

    const result = await cli(["bulk", "ok.jsonl", "--provider", "exirom", "--out", "ok.results.jsonl"], "jsonl.db")
    assert.strictEqual(result.code, 0, result.stderr)
    const results = jsonLines<Row>(readFileSync(join(dir, "ok.results.jsonl"), "utf8"))
    assert.deepStrictEqual(results.map((r) => r.idempotencyKey).sort(), Array.from({ length: 20 }, (_, i) => `jl-${i}`).sort())
    assert.include(result.stdout, "20 of 20 rows processed")

    writeFileSync(join(dir, "bad.jsonl"), `${rows[0]}\n{"transactionId": 3000100, "amount": "1"\n[1,2]\n`)
    const before = await stats(sandboxes.url("exirom"))
    const refused = await cli(["bulk", "bad.jsonl", "--provider", "exirom"], "jsonl.db")
    assert.strictEqual(refused.code, 2)
    assert.include(refused.stderr, "row 2 (line 2): is not valid JSON")
    assert.include(refused.stderr, "row 3 (line 3): must be a JSON object")
    assert.isFalse(existsSync(join(dir, "bad.jsonl.results.jsonl")))
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before.requests)
  })

  it("packs Airpay rows into few provider calls, each row its own outcome; a re-run refunds nothing again", async () => {
    const airpay = sandboxes.url("airpay")
    const file = airpayCsv("airpay.csv", 1_200_001, 120)
    const before = (await stats(airpay)) as AirpayStats
    const result = await cli(["bulk", file, "--provider", "airpay", "--json"], "airpay.db")
    assert.strictEqual(result.code, 0, result.stderr)
    const after = (await stats(airpay)) as AirpayStats
    const calls = (after.requests["refund"] ?? 0) - (before.requests["refund"] ?? 0)
    assert.isAtLeast(calls, 1)
    assert.isBelow(calls, 120 / 10, `120 rows took ${calls} refund calls`)
    assert.strictEqual(after.refundsPerformed - before.refundsPerformed, 120)
    const results = jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8"))
    assert.strictEqual(results.length, 120)
    assert.deepStrictEqual(new Set(results.map((r) => r.row)).size, 120)
    assert.isTrue(results.every((r) => r.status === "succeeded" && r.outcome === "ok" && r.refundId?.startsWith("rfd_")))
    assert.strictEqual(new Set(results.map((r) => r.refundId)).size, 120, "each row is its own refund")
    const summary = JSON.parse(result.stdout) as { statuses: Record<string, number>; exitCode: number }
    assert.deepStrictEqual(summary.statuses, { succeeded: 120 })

    const again = await cli(["bulk", file, "--provider", "airpay", "--json"], "airpay.db")
    assert.strictEqual(again.code, 0, again.stderr)
    assert.strictEqual(((await stats(airpay)) as AirpayStats).refundsPerformed, after.refundsPerformed)
    assert.isTrue(jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8")).every((r) => r.replayed === true))
  })

  it("survives SIGKILL half way: the re-run finishes the job, no row refunded twice, rows in doubt reported and not resent", async () => {
    const airpay = sandboxes.url("airpay")
    const rows = 300
    const file = airpayCsv("kill.csv", 1_300_001, rows)
    const out = join(dir, "kill.results.jsonl")
    // Small calls and a slow provider, so the kill lands in the middle of the run.
    const env = { ...sandboxes.info.env, REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL: "5" }
    await fault(airpay, { fault: { _tag: "Latency", millis: 150 }, route: "refund", times: 0 })
    const args = ["bulk", file, "--provider", "airpay", "--concurrency", "2", "--out", out, "--ledger", join(dir, "kill.db")]
    const child = start(args, { cwd: dir, env })
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const done = existsSync(out) ? readFileSync(out, "utf8").split("\n").length - 1 : 0
        if (done >= 60) {
          clearInterval(timer)
          child.kill("SIGKILL")
          resolve()
        }
      }, 20)
      child.on("exit", (code) => {
        clearInterval(timer)
        reject(new Error(`bulk ended by itself (${code}) before it could be killed`))
      })
    })
    const killed = jsonLines<Row>(readFileSync(out, "utf8")).length
    assert.isBelow(killed, rows)
    await clearFaults(airpay)

    const resumed = await run([...args, "--json"], { cwd: dir, env })
    assert.oneOf(resumed.code, [0, 3], resumed.stderr)
    const results = jsonLines<Row>(readFileSync(out, "utf8"))
    assert.strictEqual(results.length, rows)
    assert.deepStrictEqual([...new Set(results.map((r) => r.row))].sort((a, b) => a - b), Array.from({ length: rows }, (_, i) => i + 1))
    const ok = results.filter((r) => r.outcome === "ok")
    const inDoubt = results.filter((r) => r.outcome === "in_doubt")
    assert.strictEqual(ok.length + inDoubt.length, rows, "no row failed or was declined")
    assert.strictEqual(resumed.code, inDoubt.length > 0 ? 3 : 0)
    for (const r of inDoubt) assert.oneOf(r.status, ["unknown", "requested"])

    const after = (await stats(airpay)) as AirpayStats
    const mine = Object.entries(after.refundsByTransaction).filter(([id]) => Number(id) >= 1_300_001 && Number(id) < 1_300_001 + rows)
    assert.isTrue(mine.every(([, n]) => n === 1), "no transaction refunded twice")
    assert.isAtLeast(mine.length, ok.length)
    assert.isAtMost(mine.length, ok.length + inDoubt.length)

    // A third run changes nothing at the provider: rows in doubt are reported again, never resent.
    const third = await run([...args, "--json"], { cwd: dir, env })
    assert.strictEqual(third.code, resumed.code)
    const final = (await stats(airpay)) as AirpayStats
    assert.strictEqual(final.refundsPerformed, after.refundsPerformed)
  })

  it("a run leaves alone the refunds another run sharing the ledger is submitting: only its own file's killed rows are recovered", async () => {
    const exirom = sandboxes.url("exirom")
    const csv = (name: string, from: number, count: number) => {
      const path = join(dir, name)
      writeFileSync(path, `transactionId,amount,reason\n${Array.from({ length: count }, (_, i) => `${from + i},1.00,customer_request`).join("\n")}\n`)
      return path
    }
    const ledger = "shared.db"
    // Slow enough that the second run, a process start away on a loaded machine, meets the first one's calls out.
    await fault(exirom, { fault: { _tag: "Latency", millis: 6_000 }, route: "refund", times: 20 })
    const sentBefore = (await stats(exirom)).requests["refund"] ?? 0
    const first = start(["bulk", csv("first.csv", 7_100_001, 20), "--provider", "exirom", "--concurrency", "20", "--json", "--ledger", join(dir, ledger)], {
      cwd: dir,
      env: sandboxes.info.env
    })
    const exited = new Promise<number | null>((resolve) => first.on("exit", resolve))
    // Wait until all 20 of the first run's calls are out (asked of the sandbox: a CLI per poll is seconds on a loaded machine).
    const deadline = Date.now() + 30_000
    while (((await stats(exirom)).requests["refund"] ?? 0) - sentBefore < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const second = await cli(["bulk", csv("second.csv", 7_100_101, 2), "--provider", "exirom", "--json"], ledger)
    assert.strictEqual(second.code, 0, second.stderr)
    assert.notInclude(second.stderr, "unknown")
    assert.strictEqual(await exited, 0)
    const listed = JSON.parse((await cli(["list", "--json", "--limit", "100"], ledger)).stdout) as {
      items: Array<{ status: string; events: Array<{ source: string }> }>
    }
    assert.strictEqual(listed.items.length, 22)
    assert.deepStrictEqual(listed.items.filter((r) => r.events.some((e) => e.source === "recovery")), [], "no live refund was taken for an abandoned one")
    assert.isTrue(listed.items.every((r) => r.status === "pending"))
    await clearFaults(exirom)
  })

  it("stops on Ctrl-C: no new rows, calls in flight finish, and the same command resumes with nothing in doubt", async () => {
    const airpay = sandboxes.url("airpay")
    const rows = 200
    const file = airpayCsv("interrupt.csv", 1_400_001, rows)
    const out = join(dir, "interrupt.results.jsonl")
    const env = { ...sandboxes.info.env, REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL: "5" }
    await fault(airpay, { fault: { _tag: "Latency", millis: 150 }, route: "refund", times: 0 })
    const args = ["bulk", file, "--provider", "airpay", "--concurrency", "2", "--out", out, "--ledger", join(dir, "interrupt.db")]
    const child = start([...args, "--json"], { cwd: dir, env })
    let stderr = ""
    let stdout = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (existsSync(out) && readFileSync(out, "utf8").split("\n").length > 30) {
          clearInterval(timer)
          child.kill("SIGINT")
          resolve()
        }
      }, 20)
    })
    assert.strictEqual(await exited, 130, stderr)
    // The summary says what the process exits with.
    assert.deepInclude(JSON.parse(stdout.trim().split("\n").at(-1)!), { stopped: true, exitCode: 130 })
    await clearFaults(airpay)
    const partial = jsonLines<Row>(readFileSync(out, "utf8"))
    assert.isBelow(partial.length, rows)
    assert.isTrue(partial.every((r) => r.outcome === "ok"), "calls in flight were allowed to finish")
    assert.include(stderr, "run the same command again")

    const resumed = await run([...args, "--json"], { cwd: dir, env })
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    const results = jsonLines<Row>(readFileSync(out, "utf8"))
    assert.strictEqual(results.length, rows)
    assert.isTrue(results.every((r) => r.outcome === "ok"))
    const mine = Object.entries(((await stats(airpay)) as AirpayStats).refundsByTransaction).filter(([id]) => Number(id) >= 1_400_001 && Number(id) < 1_400_001 + rows)
    assert.strictEqual(mine.length, rows)
    assert.isTrue(mine.every(([, n]) => n === 1))
  })

  it("--retry-failed resends only rows the provider did not process, each under its next derived key, once per run", async () => {
    const exirom = sandboxes.url("exirom")
    // Rows 1 and 2 meet a 503 (failed, not processed), row 3 asks for more than its 100.00 payment (declined), row 4 succeeds.
    const lines = ["transactionId,amount,reason", "3100001,1.00,customer_request", "3100002,1.00,customer_request", "3100003,150.00,customer_request", "3100004,1.00,customer_request"]
    const file = join(dir, "retry.csv")
    writeFileSync(file, `${lines.join("\n")}\n`)
    const env = { REFUNDKIT_MAX_RETRIES: "0" }
    const bulk = async (extra: ReadonlyArray<string>, code: number) => {
      const before = await stats(exirom)
      const result = await cli(["bulk", file, "--provider", "exirom", "--concurrency", "1", "--json", ...extra], "retry.db", env)
      assert.strictEqual(result.code, code, result.stderr)
      const after = await stats(exirom)
      const rows = jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8")).sort((a, b) => a.row - b.row)
      return { rows, calls: (after.requests["refund"] ?? 0) - (before.requests["refund"] ?? 0), refunded: after.refundsPerformed - before.refundsPerformed, stderr: result.stderr }
    }

    await fault(exirom, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 2 })
    const first = await bulk([], 1)
    await clearFaults(exirom)
    assert.deepStrictEqual(first.rows.map((r) => r.outcome), ["failed", "failed", "declined", "ok"])
    assert.deepStrictEqual(first.rows.map((r) => r.error?.code), ["provider_unavailable", "provider_unavailable", "provider_declined", undefined])
    assert.strictEqual(first.refunded, 1)
    assert.include(first.stderr, "--retry-failed")
    const key = (row: number) => first.rows[row - 1]!.idempotencyKey

    // Without the flag a re-run replays every row, failures included, and sends nothing.
    const replay = await bulk([], 1)
    assert.strictEqual(replay.calls, 0)
    assert.isTrue(replay.rows.every((r) => r.replayed === true && r.retry === undefined))

    // With it, the two failed rows go again (the first meets another 503); the decline and the success are replayed.
    await fault(exirom, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 1 })
    const second = await bulk(["--retry-failed"], 1)
    await clearFaults(exirom)
    assert.strictEqual(second.calls, 2)
    assert.strictEqual(second.refunded, 1)
    assert.deepStrictEqual(second.rows.map((r) => [r.idempotencyKey, r.retry, r.replayed, r.outcome]), [
      [`${key(1)}:retry-1`, 1, undefined, "failed"],
      [`${key(2)}:retry-1`, 1, false, "ok"],
      [key(3), undefined, true, "declined"],
      [key(4), undefined, true, "ok"]
    ])
    assert.notStrictEqual(second.rows[1]!.refundId, first.rows[1]!.refundId, "a resend is a refund of its own")

    // The next run walks each row's chain: row 1's first resend failed, so its second goes; row 2's resend is replayed.
    const third = await bulk(["--retry-failed"], 0)
    assert.strictEqual(third.calls, 1)
    assert.strictEqual(third.refunded, 1)
    assert.deepStrictEqual(third.rows.map((r) => [r.idempotencyKey, r.retry, r.replayed, r.outcome]), [
      [`${key(1)}:retry-2`, 2, false, "ok"],
      [`${key(2)}:retry-1`, 1, true, "ok"],
      [key(3), undefined, true, "declined"],
      [key(4), undefined, true, "ok"]
    ])

    // And once everything is done, a run with the flag sends nothing at all.
    const fourth = await bulk(["--retry-failed"], 0)
    assert.strictEqual(fourth.calls, 0)
    assert.isTrue(fourth.rows.every((r) => r.replayed === true))
  })

  it("a row refunded with its answer lost, then refused by 503s on retry, is in doubt: --retry-failed leaves it, reconcile settles it", async () => {
    const exirom = sandboxes.url("exirom")
    const file = join(dir, "lost-then-503.csv")
    writeFileSync(file, "transactionId,amount,reason\n3100021,1.00,customer_request\n")
    const env = { REFUNDKIT_MAX_RETRIES: "2" }
    const rowOf = () => jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8"))[0]!
    const before = await stats(exirom)
    // Exirom refunds the first attempt but the answer never arrives; both retries meet a 503.
    await fault(exirom, [
      { fault: { _tag: "LostResponse" }, route: "refund", times: 1 },
      { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 2 }
    ])
    const first = await cli(["bulk", file, "--provider", "exirom", "--json"], "lost-then-503.db", env)
    await clearFaults(exirom)
    const sent = await stats(exirom)
    assert.strictEqual((sent.requests["refund"] ?? 0) - (before.requests["refund"] ?? 0), 3)
    assert.strictEqual(sent.refundsPerformed - before.refundsPerformed, 1)
    assert.strictEqual(first.code, 3, first.stderr)
    const row = rowOf()
    assert.deepStrictEqual([row.outcome, row.status, row.error?.code], ["in_doubt", "unknown", "outcome_unknown"])
    assert.include(row.error?.message ?? "", "an earlier attempt may have been processed")

    // Not a failure the provider provably did not process, so nothing is resent under a new key.
    const retried = await cli(["bulk", file, "--provider", "exirom", "--json", "--retry-failed"], "lost-then-503.db", env)
    assert.strictEqual(retried.code, 3, retried.stderr)
    assert.deepStrictEqual([rowOf().replayed, rowOf().retry, rowOf().idempotencyKey], [true, undefined, row.idempotencyKey])
    const replayed = await stats(exirom)
    assert.strictEqual(replayed.requests["refund"], sent.requests["refund"])

    // Reconcile asks Exirom again with the same requestId and learns of the one refund it made.
    const reconciled = await cli(["reconcile", "--provider", "exirom", "--json"], "lost-then-503.db", env)
    assert.strictEqual(reconciled.code, 0, reconciled.stderr)
    const shown = await cli(["get", row.refundId!, "--json"], "lost-then-503.db", env)
    assert.notStrictEqual(JSON.parse(shown.stdout).status, "unknown")
    assert.notStrictEqual(JSON.parse(shown.stdout).status, "failed")
    const after = await stats(exirom)
    assert.strictEqual(after.refundsPerformed - before.refundsPerformed, 1)
  })

  it("--retry-failed resends a row failed unsent, but not one the provider refused on a field rule: resent, it would be refused again", async () => {
    const exirom = sandboxes.url("exirom")
    const rows = [
      { transactionId: 3_100_111, amount: "1.00", reason: "duplicate", idempotency_key: "field-refused" },
      { transactionId: 3_100_112, amount: "1.00", reason: "duplicate", idempotency_key: "unavailable" }
    ]
    writeFileSync(join(dir, "refused-fields.jsonl"), rows.map((row) => JSON.stringify(row)).join("\n") + "\n")
    const env = { REFUNDKIT_MAX_RETRIES: "0" }
    await fault(exirom, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 2 })
    const failed = await cli(["bulk", "refused-fields.jsonl", "--provider", "exirom", "--concurrency", "1", "--json"], "refused-fields.db", env)
    await clearFaults(exirom)
    assert.strictEqual(failed.code, 1, failed.stderr)
    // What Airalo's 422 with a field map leaves (Exirom's sandbox has no rule the plugin does not check first).
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const ledger = Context.get(yield* Layer.build(LedgerSql.layerSqlite(join(dir, "refused-fields.db"))), Ledger.Ledger)
      yield* ledger.transition(Refund.deriveId("exirom", "field-refused"), {
        to: "failed",
        source: "submit",
        at: new Date().toISOString(),
        error: { code: "invalid_request", message: "The refund request is invalid: reason: The selected reason is invalid." }
      })
    })))

    const before = await stats(exirom)
    const again = await cli(["bulk", "refused-fields.jsonl", "--provider", "exirom", "--concurrency", "1", "--json", "--retry-failed"], "refused-fields.db", env)
    assert.strictEqual(again.code, 1, again.stderr)
    const after = await stats(exirom)
    assert.strictEqual((after.requests["refund"] ?? 0) - (before.requests["refund"] ?? 0), 1, "only the unsent row went again")
    const results = jsonLines<Row>(readFileSync(join(dir, "refused-fields.jsonl.results.jsonl"), "utf8")).sort((a, b) => a.row - b.row)
    assert.deepStrictEqual(results.map((r) => [r.idempotencyKey, r.replayed, r.outcome, r.error?.code]), [
      ["field-refused", true, "failed", "invalid_request"],
      ["unavailable:retry-1", false, "ok", undefined]
    ])
  })

  it("a JSON Lines row with a number no double holds is refused naming what was written, as create --data is", async () => {
    writeFileSync(join(dir, "inexact.jsonl"), `{"transactionId":9007199254740993,"amount":"1.00","reason":"r"}\n{"transactionId":"9007199254740993","amount":"1.00","reason":"r"}\n`)
    const refused = await cli(["bulk", "inexact.jsonl", "--provider", "exirom", "--dry-run"], "inexact.db")
    assert.strictEqual(refused.code, 2, refused.stderr)
    assert.include(refused.stderr, "row 1 (line 1): transactionId: the JSON number 9007199254740993 has more digits than a JSON number carries exactly (it would be read as 9007199254740992); send it as a string")
    assert.include(refused.stderr, `row 2 (line 2): transactionId "9007199254740993" is larger than 9007199254740991, the largest integer refundkit sends exactly`)
  })

  it("a key given to two rows is refused on the second, naming both rows, and nothing is sent", async () => {
    const exirom = sandboxes.url("exirom")
    writeFileSync(join(dir, "repeated-key.csv"), "idempotency_key,transactionId,amount,reason\nk1,9000001,1.00,r\nk1,9000002,2.00,r\nk1,9000001,1.00,r\n,9000003,1.00,r\n")
    const before = await stats(exirom)
    for (const extra of [["--dry-run"], []]) {
      const refused = await cli(["bulk", "repeated-key.csv", "--provider", "exirom", ...extra], "repeated-key.db")
      assert.strictEqual(refused.code, 2, refused.stderr)
      assert.include(refused.stderr, "row 2 (line 3): idempotency_key: repeats row 1's key: each row needs its own (rows sharing a key are one refund)")
      assert.include(refused.stderr, "row 3 (line 4): idempotency_key: repeats row 1's key")
      assert.include(refused.stderr, "2 of 4 rows in repeated-key.csv are invalid")
    }
    assert.strictEqual((await stats(exirom)).requests["refund"] ?? 0, before.requests["refund"] ?? 0, "nothing was sent")
  })

  it("--retry-failed leaves a row whose own key leaves no room for the suffix, and says why", async () => {
    const exirom = sandboxes.url("exirom")
    const long = `k${"x".repeat(249)}`
    writeFileSync(join(dir, "long-key.jsonl"), `${JSON.stringify({ transactionId: 3_100_101, amount: "1.00", reason: "duplicate", idempotency_key: long })}\n`)
    const env = { REFUNDKIT_MAX_RETRIES: "0" }
    await fault(exirom, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 1 })
    const failed = await cli(["bulk", "long-key.jsonl", "--provider", "exirom", "--json"], "long-key.db", env)
    await clearFaults(exirom)
    assert.strictEqual(failed.code, 1, failed.stderr)

    const before = await stats(exirom)
    const again = await cli(["bulk", "long-key.jsonl", "--provider", "exirom", "--json", "--retry-failed"], "long-key.db", env)
    assert.strictEqual(again.code, 1, again.stderr)
    assert.strictEqual((await stats(exirom)).requests["refund"], before.requests["refund"])
    const [row] = jsonLines<Row>(readFileSync(join(dir, "long-key.jsonl.results.jsonl"), "utf8"))
    assert.strictEqual(row!.idempotencyKey, long)
    assert.strictEqual(row!.outcome, "failed")
    assert.include(row!.error!.message, `no room for ":retry-1" within 255 characters`)
  })

  it("--retry-failed resends packed rows too: the rows of a refused Airpay call go again together", async () => {
    const airpay = sandboxes.url("airpay")
    const file = airpayCsv("airpay-retry.csv", 1_900_001, 12)
    const env = { REFUNDKIT_MAX_RETRIES: "0" }
    await fault(airpay, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 0 })
    const failed = await cli(["bulk", file, "--provider", "airpay", "--json"], "airpay-retry.db", env)
    await clearFaults(airpay)
    assert.strictEqual(failed.code, 1, failed.stderr)
    assert.isTrue(jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8")).every((r) => r.outcome === "failed"))

    const before = (await stats(airpay)) as AirpayStats
    const retried = await cli(["bulk", file, "--provider", "airpay", "--json", "--retry-failed"], "airpay-retry.db", env)
    assert.strictEqual(retried.code, 0, retried.stderr)
    const after = (await stats(airpay)) as AirpayStats
    assert.strictEqual(after.refundsPerformed - before.refundsPerformed, 12)
    assert.isBelow((after.requests["refund"] ?? 0) - (before.requests["refund"] ?? 0), 12, "the resends are packed as the first sends were")
    const rows = jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8"))
    assert.strictEqual(rows.length, 12)
    assert.isTrue(rows.every((r) => r.outcome === "ok" && r.retry === 1 && r.idempotencyKey.endsWith(":retry-1")))
  })

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
      const { args, env: killedEnv, exited, kill } = airaloBulk("airalo-refused", iccids, airalo)
      // Killed once the refusal is in and every row is marked not sent, while the first row still waits
      // the 4 s for its own call. Up to 60 s for the child to start (a loaded machine starts Node slowly).
      const ledgerFile = join(dir, "airalo-refused.db")
      for (let i = 0; i < 3000 && (await markedNotSent(ledgerFile)) < iccids.length; i++) await new Promise((r) => setTimeout(r, 20))
      kill()
      await exited
      const killed = await stats<AiraloStats>(airalo.url)
      assert.strictEqual(killed.rejected, 1, "the kill landed after the packed call's refusal")
      assert.strictEqual(killed.refundsPerformed, 0, "and before any row was sent on its own")
      const env = await quickerAfterKill(airalo, killedEnv)

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
      const { args, env: killedEnv, exited, kill } = airaloBulk("airalo-kill", iccids, airalo)
      // Killed once the first call of 5 ICCIDs is in; the other 15 rows wait for the limit's next windows.
      // Up to 60 s for the child to start and make its first call (a loaded machine starts Node slowly).
      for (let i = 0; i < 6000 && (await stats<AiraloStats>(airalo.url)).refundsPerformed === 0; i++) await new Promise((r) => setTimeout(r, 10))
      kill()
      await exited
      const sent = new Set(Object.keys((await stats<AiraloStats>(airalo.url)).refundRequestsPerIccid))
      assert.strictEqual(sent.size, 5, "the kill landed after exactly one call")
      const env = await quickerAfterKill(airalo, killedEnv)

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
