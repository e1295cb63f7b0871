// Fault storm at a provider whose submit is NOT idempotent: Airalo has no idempotency key, and a
// repeated request for an eSIM opens a second refund review (its sandbox accepts it again and counts
// it in `duplicateIccids`). Exirom's storm cannot show a core that resends a call which may have
// reached the provider: Exirom's requestId makes the resend harmless. Here the same resend refunds
// twice, so the count catches it.
//
// Airalo has no status API either: a row in doubt stays `unknown` until someone checks the provider
// (`refundkit resolve`); no re-run, `--retry-failed` or `reconcile` may send it again.
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { crashTrace, L, seedOr, stormRules } from "./harness.js"

const ROWS = 1_000
const SEED = seedOr(20_261_206)
const CALL_TIMEOUT = "2 seconds"
const HANG_MS = 3_000

type AiraloStats = {
  requests: Record<string, number>
  refundsPerformed: number
  refundRequestsPerIccid: Record<string, number>
  duplicateIccids: Array<string>
}

const scope = Effect.runSync(Scope.make())
let airalo: AiraloSandbox.AiraloSandbox
const dir = L.tempDir("refundkit-rel-nonidem-")

beforeAll(async () => {
  // No rate limit: Airalo's documented 1 call per 5 minutes would make a storm take days.
  airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  L.removeDir(dir)
})

const control = async (path: string, method = "GET", body?: unknown) => {
  const r = await L.request(`${airalo.url}${path}`, { method, body })
  if (r.status !== 200) throw new Error(`sandbox ${method} ${path}: ${r.status} ${r.text}`)
  return r.json
}
const stats = (): Promise<AiraloStats> => control("/__sandbox/stats")
const faults = (rules: unknown) => control("/__sandbox/faults", "POST", rules)
const clearFaults = () => control("/__sandbox/faults", "DELETE")

/** Rows of eSIMs the sandbox company owns, unique to this run; two reasons so calls pack 5 or fewer. */
let nextIccid = 1_000_000 + Math.floor(Math.random() * 900) * 10_000
const esimFile = async (name: string, rows: number) => {
  const iccids = Array.from({ length: rows }, () => AiraloSandbox.ownedIccid(nextIccid++))
  const file = join(dir, `${name}.csv`)
  await L.writeLines(file, "iccids.0,reason", rows, (i) => `${iccids[i]},${i % 7 === 0 ? "NO_COVERAGE" : "TRIP_CANCELLATION"}`)
  return { file, iccids }
}

const bulk = (file: string, ledger: string, extra: Array<string> = []) =>
  L.cli(["bulk", file, "--provider", "airalo", "--concurrency", "32", "--json", "--ledger", ledger, ...extra], {
    env: { ...airalo.env, REFUNDKIT_CALL_TIMEOUT: CALL_TIMEOUT },
    timeoutMs: 240_000
  })

const results = (file: string): Array<{ row: number; outcome: string; status: string; retry?: number; replayed?: boolean }> =>
  readFileSync(`${file}.results.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))

const ledgerByIccid = async (ledger: string) => {
  const refunds = (await L.listLedger(ledger, airalo.env)).filter((r) => r.provider === "airalo")
  return new Map<string, { id: string; status: string }>(refunds.map((r) => [String(r.targets[0].target), r]))
}

const expectNoCrash = (run: { stdout: string; stderr: string; signal: string | null }) => {
  expect(run.signal).toBeNull()
  expect(crashTrace(run.stderr + run.stdout), run.stderr.slice(-3000)).toBe(false)
  expect(run.stdout + run.stderr).not.toContain("internal_error")
}

/**
 * Every eSIM's ledger status against the number of refund requests Airalo accepted for it: a row that
 * succeeded (Airalo's 202: `pending` review) was asked for once, a failed row never (else a refund was
 * lost), a row in doubt at most once.
 */
const disagreements = (iccids: ReadonlyArray<string>, byIccid: Map<string, { status: string }>, asked: Record<string, number>) => {
  const found: Array<string> = []
  for (const iccid of iccids) {
    const refund = byIccid.get(iccid)
    const n = asked[iccid] ?? 0
    if (refund === undefined) found.push(`${iccid}: no refund in the ledger (Airalo asked ${n} times)`)
    else if (n > 1) found.push(`${iccid}: DOUBLE REFUND: Airalo asked ${n} times (ledger ${refund.status})`)
    else if ((refund.status === "pending" || refund.status === "succeeded") && n !== 1) found.push(`${iccid}: ledger ${refund.status}, Airalo asked ${n} times`)
    else if (refund.status === "failed" && n !== 0) found.push(`${iccid}: LOST REFUND: ledger failed, Airalo asked ${n} times`)
    else if (!["pending", "succeeded", "failed", "unknown"].includes(refund.status)) found.push(`${iccid}: ledger ${refund.status}`)
  }
  return found
}

describe("fault storm at a provider without idempotent submits (Airalo)", () => {
  it(`${ROWS} rows under 20% 5xx, 5% resets, 5% hangs, 5% lost responses (seed ${SEED}): nothing that may have reached Airalo is sent again`, async () => {
    const { file, iccids } = await esimFile("storm", ROWS)
    const ledger = join(dir, "storm.db")
    const before = await stats()

    await control("/__sandbox/seed", "POST", { seed: SEED })
    // The Exirom storm's mix. Only a 503 with Retry-After proves Airalo did not process the call, so only it may be retried.
    await faults(stormRules(HANG_MS))
    let run
    try {
      run = await bulk(file, ledger)
    } finally {
      await clearFaults()
    }
    const during = await stats()
    const calls = (during.requests["refund"] ?? 0) - (before.requests["refund"] ?? 0)
    console.log(`bulk exit ${run.code}, refund calls ${calls}, ${run.millis.toFixed(0)} ms: ${run.stdout.slice(0, 600)}`)
    expectNoCrash(run)
    expect([0, 1, 3], run.stderr.slice(-2000)).toContain(run.code)
    const report = JSON.parse(run.stdout)
    expect(report.rows).toBe(ROWS)
    expect(report.processed).toBe(ROWS)
    const first = results(file)
    expect(first).toHaveLength(ROWS)
    expect(new Set(first.map((r) => r.row)).size).toBe(ROWS)

    // The storm really happened, and its faults both reached Airalo (lost answers) and did not (500s,
    // resets, hangs before the app): rows in doubt of both kinds exist, and the core cannot tell them apart.
    expect(calls).toBeGreaterThan(ROWS / 5)
    const byIccid = await ledgerByIccid(ledger)
    const asked = during.refundRequestsPerIccid
    const unknown = iccids.filter((iccid) => byIccid.get(iccid)?.status === "unknown")
    const unknownAsked = unknown.filter((iccid) => (asked[iccid] ?? 0) === 1).length
    console.log(`in doubt: ${unknown.length} (${unknownAsked} of them reached Airalo); ledger ${JSON.stringify(tally(byIccid))}`)
    expect(unknownAsked).toBeGreaterThan(0)
    expect(unknown.length - unknownAsked).toBeGreaterThan(0)

    expect(during.duplicateIccids).toEqual([])
    expect(disagreements(iccids, byIccid, asked).slice(0, 20)).toEqual([])

    // A plain re-run replays every row; --retry-failed resends only the rows that failed (every attempt met
    // a 503, so Airalo has never seen them), never a row in doubt; reconcile has no status to ask for.
    const rerun = await bulk(file, ledger)
    expectNoCrash(rerun)
    expect(results(file).every((r) => r.replayed === true)).toBe(true)
    const failed = iccids.filter((iccid) => byIccid.get(iccid)?.status === "failed")
    const retry = await bulk(file, ledger, ["--retry-failed"])
    expectNoCrash(retry)
    expect(results(file).filter((r) => r.retry === 1)).toHaveLength(failed.length)
    const reconcile = await L.cli(["reconcile", "--provider", "airalo", "--json", "--ledger", ledger], { env: airalo.env, timeoutMs: 60_000 })
    expectNoCrash(reconcile)

    const after = await stats()
    expect(after.duplicateIccids).toEqual([])
    const final = await ledgerByIccid(ledger)
    expect(disagreements(iccids, final, after.refundRequestsPerIccid).slice(0, 20)).toEqual([])
    // Only the resent failed rows reached Airalo after the storm.
    const newlyAsked = iccids.filter((iccid) => (after.refundRequestsPerIccid[iccid] ?? 0) > (asked[iccid] ?? 0))
    expect(newlyAsked.sort()).toEqual(failed.sort())
    expect(iccids.filter((iccid) => final.get(iccid)?.status === "unknown")).toEqual(unknown)
  })

  it("every answer lost: every row ends in doubt with exactly one request at Airalo, and nothing re-sends it", async () => {
    const rows = 23
    const { file, iccids } = await esimFile("all-lost", rows)
    const ledger = join(dir, "all-lost.db")
    await faults({ fault: { _tag: "LostResponse" }, route: "refund", times: 0 })
    let run
    try {
      run = await bulk(file, ledger)
      expectNoCrash(run)
      expect(run.code, run.stderr.slice(-2000)).toBe(3)
      const again = await bulk(file, ledger, ["--retry-failed"])
      expectNoCrash(again)
    } finally {
      await clearFaults()
    }
    const asked = (await stats()).refundRequestsPerIccid
    for (const iccid of iccids) expect(asked[iccid], iccid).toBe(1)
    const byIccid = await ledgerByIccid(ledger)
    expect(iccids.map((iccid) => byIccid.get(iccid)?.status)).toEqual(iccids.map(() => "unknown"))
    expect(results(file).every((r) => r.outcome === "in_doubt")).toBe(true)
  })
})

const tally = (byIccid: Map<string, { status: string }>) => {
  const counts: Record<string, number> = {}
  for (const r of byIccid.values()) counts[r.status] = (counts[r.status] ?? 0) + 1
  return counts
}
