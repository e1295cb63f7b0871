// Recovery while a submit is still out. A live `refundkit bulk` leases the refunds whose calls it has
// out, and another operator's run (`--recovery-grace 0` on the shared ledger) leaves them alone. A
// refund whose lease lapsed (its process stalled past four heartbeats) can still be taken: it is moved
// to `unknown` by that run, `reconcile`
// resends them with their requestIds and Exirom performs them, and then the first run's own last
// attempts meet 503s. The ledger must keep what the sync learnt (a late "not processed" does not
// make a refund Exirom made `failed`), so `bulk --retry-failed` resends nothing and no card is
// refunded twice.
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { crashTrace, doubleRefunds, L, takeTx, useSuite } from "./harness.js"

const { dir, sandbox } = useSuite("refundkit-rel-recovery-")

const waitUntil = async (predicate: () => Promise<boolean>, ms: number): Promise<void> => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await predicate()) return
    await L.sleep(20)
  }
  throw new Error(`not reached within ${ms} ms`)
}

/**
 * A `bulk` run of ten Exirom rows on its own ledger whose every call is slow and whose four attempts per
 * row all meet 503s with `Retry-After` (not processed), and, once it is on its second attempts, another
 * operator's `bulk --recovery-grace 0` of one AeroHub row on the same ledger.
 */
const liveRunAndOther = async (name: string, options: { latencyMillis: number; env: Record<string, string>; otherEnv: Record<string, string>; orderNo: number }) => {
  const ROWS = 10
  const first = takeTx(ROWS)
  const ledger = join(dir, `${name}.db`)
  const mine = join(dir, `${name}.csv`)
  writeFileSync(mine, `transactionId,amount,reason\n${Array.from({ length: ROWS }, (_, i) => `${first + i},10.00,customer_request`).join("\n")}\n`)
  const other = join(dir, `${name}-other.csv`)
  writeFileSync(other, `refundOrderNo,purchaseOrderNo,refundStatus\nFBRF88000000${options.orderNo},F880000000000${options.orderNo},PROCESSING\n`)
  const refundCalls = async () => (await sandbox().stats()).requests["refund"] ?? 0
  const before = await refundCalls()
  await sandbox().faults([
    { fault: { _tag: "Latency", millis: options.latencyMillis }, route: "refund", times: 0 },
    { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 4 * ROWS }
  ])
  const firstRun = L.cli(["bulk", mine, "--provider", "exirom", "--ledger", ledger, "--concurrency", String(ROWS), "--json"], { env: options.env, timeoutMs: 120_000 })
  await waitUntil(async () => (await refundCalls()) - before >= 2 * ROWS, 60_000)
  const otherRun = await L.cli(["bulk", other, "--provider", "aerohub", "--ledger", ledger, "--recovery-grace", "0"], { env: options.otherEnv, timeoutMs: 60_000 })
  expect(otherRun.code, otherRun.stderr).toBe(0)
  return { ROWS, first, ledger, mine, firstRun, otherRun, refundCalls, before }
}

describe("recovery while a submit is still retrying", () => {
  it("a refund recovered and synced mid-submit is never recorded failed by that submit's late 503s, nor refunded twice", async () => {
    // A heartbeat longer than the run: none of its refunds is leased, as when a process stalls past its
    // leases. The other run's own short heartbeat lets its recovery take refunds a few seconds old.
    const env = { ...sandbox().env, REFUNDKIT_HEARTBEAT: "1 hour" }
    const otherEnv = { ...sandbox().env, REFUNDKIT_HEARTBEAT: "100 millis" }
    const { ROWS, before, first, firstRun, ledger, mine, otherRun, refundCalls } = await liveRunAndOther("shared", { latencyMillis: 2_500, env, otherEnv, orderNo: 1 })
    expect(otherRun.stderr).toContain(`${ROWS} refund(s) left in "requested"`)
    // Once the first run's last attempts are out, someone reconciles: Exirom performs the resent refunds.
    await waitUntil(async () => (await refundCalls()) - before >= 4 * ROWS, 60_000)
    const reconcile = await L.cli(["reconcile", "--provider", "exirom", "--ledger", ledger, "--json"], { env, timeoutMs: 60_000 })
    expect(crashTrace(reconcile.stderr), reconcile.stderr).toBe(false)
    const firstDone = await firstRun
    expect(crashTrace(firstDone.stderr), firstDone.stderr).toBe(false)
    await sandbox().clearFaults()

    const performed = (await sandbox().stats()).refundsPerTransaction
    const rows = (await L.listLedger(ledger, env)).filter((r) => r.provider === "exirom")
    expect(rows).toHaveLength(ROWS)
    const wrong = rows.filter((r) => r.status === "failed" && (performed[String(r.request.transactionId)] ?? 0) > 0)
    expect(wrong.map((r) => `${r.id}: ${r.events.map((e: { source: string; from: string; to: string }) => `${e.source}:${e.from}->${e.to}`).join(", ")}`)).toEqual([])

    const retry = await L.cli(["bulk", mine, "--provider", "exirom", "--ledger", ledger, "--retry-failed", "--json"], { env, timeoutMs: 120_000 })
    expect(crashTrace(retry.stderr), retry.stderr).toBe(false)
    const after = (await sandbox().stats()).refundsPerTransaction
    expect(doubleRefunds(after)).toEqual([])
    for (let i = 0; i < ROWS; i++) expect(after[String(first + i)] ?? 0, `transaction ${first + i}`).toBeLessThanOrEqual(1)
  }, 180_000)

  it("a live run's refunds are leased: another run's recovery leaves them requested, and the first run's own answers settle them", async () => {
    // Every attempt a 503 that says Exirom did nothing (Retry-After): each row ends `failed`, unsent.
    const env = { ...sandbox().env, REFUNDKIT_HEARTBEAT: "200 millis" }
    const { ROWS, first, firstRun, ledger, mine, otherRun } = await liveRunAndOther("leased", { latencyMillis: 1_500, env, otherEnv: env, orderNo: 2 })
    expect(otherRun.stderr).not.toContain("left in \"requested\"")
    // The same file run again meanwhile (an operator who took the first run for hung): its rows are the
    // first run's refunds, leased, so it reports them in progress and takes none of them for abandoned.
    const againOut = join(dir, "leased-again.jsonl")
    const again = await L.cli(["bulk", mine, "--provider", "exirom", "--ledger", ledger, "--out", againOut, "--json"], { env, timeoutMs: 60_000 })
    expect(again.code, again.stderr).toBe(3)
    const againRows = readFileSync(againOut, "utf8").trim().split("\n").map((line) => JSON.parse(line))
    expect(againRows.map((r) => r.error?.code)).toEqual(Array.from({ length: ROWS }, () => "refund_in_progress"))
    // It waited for the live run's rows, and said so once: a run that seems to hang is killed.
    expect(again.stderr.split("\n").filter((line) => line.includes("are still \"requested\"")), again.stderr).toHaveLength(1)
    const firstDone = await firstRun
    expect(crashTrace(firstDone.stderr), firstDone.stderr).toBe(false)
    await sandbox().clearFaults()

    const rows = (await L.listLedger(ledger, env)).filter((r) => r.provider === "exirom")
    expect(rows).toHaveLength(ROWS)
    const history = (r: (typeof rows)[number]) => r.events.map((e: { source: string; from: string; to: string }) => `${e.source}:${e.from}->${e.to}`).join(", ")
    expect(rows.filter((r) => r.status !== "failed" || r.events.some((e: { source: string }) => e.source === "recovery")).map((r) => `${r.id} ${r.status}: ${history(r)}`)).toEqual([])
    const performed = (await sandbox().stats()).refundsPerTransaction
    for (let i = 0; i < ROWS; i++) expect(performed[String(first + i)] ?? 0, `transaction ${first + i}`).toBe(0)
  }, 120_000)
})
