// Crash: SIGKILL the gateway under load and restart it on the same ledger: every request
// that got a 2xx is in the ledger, and clients retrying with their keys get replays, not
// second refunds. The same for `refundkit bulk`: killed mid-run, re-run, no double refund,
// every row accounted for.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { auth, crashTrace, doubleRefunds, L, takeTx, useSuite } from "./harness.js"

const { dir, stops, sandbox } = useSuite("refundkit-rel-crash-")


describe("crash recovery", () => {
  it("gateway SIGKILLed under load: every 2xx is in the ledger after restart, retries replay, no double refund", async () => {
    const ledger = join(dir, "gateway.db")
    const apiKey = `rk-crash-${process.pid}`
    // The recovery grace (2 minutes) and leases (four heartbeats of 15 s) as shipped: the restart must not need them.
    const env = { REFUNDKIT_SYNC_INTERVAL: "off" }
    const first = await L.startGateway({ sandbox: sandbox(), ledger, apiKey, env })
    stops.push(() => first.stop())
    const WORKERS = 16
    const PER_WORKER = 400
    const base = takeTx(WORKERS * PER_WORKER)
    type Sent = { key: string; tx: number; status?: number; id?: string; told?: string }
    const sent: Array<Sent> = []
    // Each call takes 20 ms at the provider, so some are always in flight when the kill lands.
    await sandbox().faults({ fault: { _tag: "Latency", millis: 20 }, route: "refund", times: 0 })
    const agent = L.makeAgent(WORKERS)
    let killed = false
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      for (let i = 0; i < PER_WORKER && !killed; i++) {
        const s: Sent = { key: `crash-${process.pid}-${w}-${i}`, tx: base + w * PER_WORKER + i }
        sent.push(s)
        try {
          const r = await L.createRefund(first, { key: s.key, transactionId: s.tx, agent, timeoutMs: 10_000 })
          s.status = r.status
          s.id = r.json?.id
          s.told = r.json?.status
        } catch {
          // the connection died with the gateway: the outcome is unknown to this client
        }
      }
    })
    // Kill once a good number of refunds went through.
    const deadline = Date.now() + 60_000
    while (sent.filter((s) => s.status !== undefined).length < 300 && Date.now() < deadline) await L.sleep(20)
    first.proc.kill("SIGKILL")
    killed = true
    await first.proc.exited
    await Promise.all(workers)
    agent.destroy()
    await sandbox().clearFaults()
    expect(first.proc.signal).toBe("SIGKILL")

    const ok = sent.filter((s) => s.status !== undefined && s.status >= 200 && s.status < 300)
    const unanswered = sent.filter((s) => s.status === undefined)
    console.log(`before the kill: ${sent.length} sent, ${ok.length} 2xx, ${unanswered.length} without an answer, statuses ${JSON.stringify(sent.reduce((m: Record<string, number>, s) => ((m[String(s.status)] = (m[String(s.status)] ?? 0) + 1), m), {}))}`)
    expect(ok.length).toBeGreaterThanOrEqual(300)
    expect(sent.filter((s) => s.status !== undefined && s.status >= 500)).toEqual([])

    // Restarted at once, well within the grace and the dead gateway's last leases: its start still takes
    // every refund the kill left `requested`, since this machine can tell that their claimant has ended.
    const second = await L.startGateway({ sandbox: sandbox(), ledger, apiKey, env })
    stops.push(() => second.stop())
    const stillRequested = await L.request(`${second.url}/v1/refunds?status=requested&limit=100`, { headers: auth(second) })
    expect(stillRequested.status).toBe(200)
    expect(stillRequested.json?.items ?? null).toEqual([])
    // Every 2xx is in the ledger, with the id the client was given and the outcome it was told
    // (or a later one: pending may settle), never back in doubt (`requested`, or `unknown` after recovery).
    const missing: Array<string> = []
    const later: Record<string, ReadonlyArray<string>> = { pending: ["pending", "succeeded", "failed"], succeeded: ["succeeded"], failed: ["failed"] }
    for (const s of ok) {
      const r = await L.request(`${second.url}/v1/refunds/${s.id}`, { headers: auth(second) })
      if (r.status !== 200 || r.json?.id !== s.id || r.json?.idempotencyKey !== s.key) missing.push(`${s.key} ${s.id}: ${r.status} ${r.text.slice(0, 200)}`)
      else if (!(later[s.told ?? ""] ?? [s.told]).includes(r.json?.status)) missing.push(`${s.key} ${s.id}: the client was told ${s.told}, the ledger says ${r.json?.status}`)
    }
    expect(missing.slice(0, 20)).toEqual([])

    // Every client retries every request it sent, with its key: 2xx ones replay.
    const retryAgent = L.makeAgent(16)
    const retried = new Map<string, { status: number; id?: string; replayed?: unknown; code?: string }>()
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < sent.length) {
        const s = sent[next++]!
        const r = await L.createRefund(second, { key: s.key, transactionId: s.tx, agent: retryAgent })
        retried.set(s.key, { status: r.status, id: r.json?.id ?? r.json?.error?.refundId, replayed: r.headers["idempotent-replayed"], code: r.json?.error?.code })
      }
    }))
    retryAgent.destroy()
    const retryStatuses: Record<string, number> = {}
    for (const r of retried.values()) retryStatuses[`${r.status}${r.code ? ` ${r.code}` : ""}`] = (retryStatuses[`${r.status}${r.code ? ` ${r.code}` : ""}`] ?? 0) + 1
    console.log(`retries after restart: ${JSON.stringify(retryStatuses)}`)
    for (const s of ok) {
      const r = retried.get(s.key)!
      expect(r.status, `${s.key}`).toBe(200)
      expect(r.replayed).toBe("true")
      expect(r.id).toBe(s.id)
    }
    for (const r of retried.values()) expect([200, 201], JSON.stringify(r)).toContain(r.status)

    // Refunds the crash left in doubt (`requested` at the kill, `unknown` after recovery) are
    // resolved by sync (Exirom: the same requestId again, which cannot refund twice).
    let synced = 0
    for (const s of sent) {
      const id = retried.get(s.key)!.id
      expect(id, `${s.key}: ${JSON.stringify(retried.get(s.key))}`).toMatch(/^rfd_/)
      const r = await L.request(`${second.url}/v1/refunds/${id}`, { headers: auth(second) })
      if (r.json?.status === "unknown" || r.json?.status === "requested") {
        const sync = await L.request(`${second.url}/v1/refunds/${id}/sync`, { method: "POST", headers: auth(second) })
        expect(sync.status, sync.text).toBe(200)
        synced++
      }
    }
    console.log(`synced ${synced} refunds left in doubt by the crash`)
    const stats = await sandbox().stats()
    expect(doubleRefunds(stats.refundsPerTransaction)).toEqual([])
    // The provider refunded exactly the transactions the ledger has as refunded (pending/succeeded).
    const disagreements: Array<string> = []
    for (const s of sent) {
      const performed = stats.refundsPerTransaction[String(s.tx)] ?? 0
      const r = await L.request(`${second.url}/v1/refunds/${retried.get(s.key)!.id}`, { headers: auth(second) })
      const status = r.json?.status
      const refunded = status === "pending" || status === "succeeded"
      if (refunded !== (performed === 1)) disagreements.push(`${s.key} tx ${s.tx}: ledger ${status}, sandbox performed ${performed}`)
    }
    expect(disagreements.slice(0, 20)).toEqual([])
    await second.stop()
  })

  it("refundkit bulk SIGKILLed mid-run and re-run: every row accounted for, no double refund", async () => {
    const ROWS = 600
    const first = takeTx(ROWS)
    const file = join(dir, "bulk.csv")
    await L.writeLines(file, "transactionId,amount,reason", ROWS, (i) => `${first + i},1.00,customer_request`)
    const ledger = join(dir, "bulk.db")
    const before = await sandbox().stats()
    await sandbox().faults({ fault: { _tag: "Latency", millis: 20 }, route: "refund", times: 0 })
    const args = ["bulk", file, "--provider", "exirom", "--concurrency", "16", "--json", "--ledger", ledger]
    // The heartbeat as shipped (15 s): the re-run takes the killed run's rows at once, without waiting five heartbeats for them.
    const env = sandbox().env
    const run1 = L.spawnProcess(process.execPath, [L.CLI, ...args], { env })
    stops.push(() => void run1.kill("SIGKILL"))
    // Kill it with about a third of the rows sent.
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline && run1.exitCode === undefined) {
      const s = await sandbox().stats()
      if ((s.requests.refund ?? 0) - (before.requests.refund ?? 0) >= ROWS / 3) break
      await L.sleep(25)
    }
    run1.kill("SIGKILL")
    await run1.exited
    expect(run1.signal, `the first run ended before it could be killed: ${run1.err().slice(-1000)}`).toBe("SIGKILL")
    const mid = await sandbox().stats()
    const performedBeforeRerun = mid.refundsPerformed - before.refundsPerformed
    console.log(`killed after ${performedBeforeRerun} provider refunds`)
    expect(performedBeforeRerun).toBeGreaterThan(0)
    expect(performedBeforeRerun).toBeLessThan(ROWS)

    const rerunStarted = Date.now()
    const run2 = await L.cli(args, { env, timeoutMs: 180_000 })
    const rerunSeconds = (Date.now() - rerunStarted) / 1000
    await sandbox().clearFaults()
    expect(crashTrace(run2.stderr + run2.stdout), run2.stderr.slice(-2000)).toBe(false)
    expect([0, 3], run2.stderr.slice(-2000)).toContain(run2.code)
    // Nothing is waited for, so no wait is said: the killed run's claimant has ended.
    expect(run2.stderr.split("\n").filter((line) => line.includes("are still \"requested\"")), run2.stderr.slice(-2000)).toEqual([])
    console.log(`re-run took ${rerunSeconds.toFixed(1)} s`)
    const report = JSON.parse(run2.stdout)
    console.log(`re-run: exit ${run2.code}, ${JSON.stringify({ processed: report.processed, replayed: report.replayed, statuses: report.statuses, outcomes: report.outcomes })}`)
    expect(report.processed).toBe(ROWS)
    const results = readFileSync(`${file}.results.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(results).toHaveLength(ROWS)
    expect(new Set(results.map((r) => r.row)).size).toBe(ROWS)
    expect(report.replayed).toBeGreaterThan(0)

    // Rows the kill left in doubt are resolved by reconcile.
    for (let round = 0; round < 5; round++) {
      await L.sleep(400)
      const rec = await L.cli(["reconcile", "--provider", "exirom", "--json", "--ledger", ledger], { env: sandbox().env, timeoutMs: 120_000 })
      expect(crashTrace(rec.stderr + rec.stdout)).toBe(false)
      if (JSON.parse(rec.stdout).checked === 0) break
    }
    const after = await sandbox().stats()
    expect(doubleRefunds(after.refundsPerTransaction)).toEqual([])
    const refunds = await L.listLedger(ledger, sandbox().env)
    expect(refunds).toHaveLength(ROWS)
    const notDone = refunds.filter((r) => r.status !== "succeeded")
    expect(notDone.map((r) => `${r.id} ${r.status}`).slice(0, 20)).toEqual([])
    for (let i = 0; i < ROWS; i++) expect(after.refundsPerTransaction[String(first + i)], `tx ${first + i}`).toBe(1)
    expect(after.refundsPerformed - before.refundsPerformed).toBe(ROWS)
  })
})
