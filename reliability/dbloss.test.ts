// Database loss: two gateways on one PostgreSQL ledger under steady load while their
// PostgreSQL backends are terminated again and again (as a server restart, a failover or an
// idle-connection killer does). No gateway crashes, every answer is a documented one, every
// 2xx is in the ledger, nothing is refunded twice, the provider and the ledger agree once
// recovery and sync have settled, and both gateways serve again without a restart.
import { describe, expect, it } from "vitest"
import { crashTrace, doubleRefunds, L, listAll, type Response, seedOr, settleInDoubt, takeTx, useSuite } from "./harness.js"

const { stops, sandbox } = useSuite("refundkit-rel-dbloss-")


const REQUESTS = 2_000
const CONCURRENCY = 32
const ROUNDS = 12
const seed = seedOr(7)

// What a create may answer while the database comes and goes: a refund (201, or a 200 replay),
// the first request with the key still running (409), the ledger away (503), or the provider
// called but its answer not recorded (504, the refund in doubt). Never a 500, and never a
// connection closed without an answer.
const allowed: Record<number, ReadonlyArray<string>> = {
  409: ["refund_in_progress"],
  503: ["ledger_error", "not_ready"],
  504: ["outcome_unknown"]
}

describe("PostgreSQL connections terminated under load", () => {
  it.skipIf(!L.pgAvailable())(`two gateways, backends killed repeatedly: no crash, no 500, no lost or doubled refund (seed ${seed})`, async () => {
    const tag = `refundkit_rel_dbloss_${process.pid}`
    const schema = L.pgSchema(tag)
    stops.push(() => schema.drop())
    // The application name marks this test's connections: only they are terminated (other
    // tests and tools share the server).
    const url = `${schema.url}&application_name=${tag}`
    // Sync every second, and recover a refund left `requested` after 3 s: refunds whose
    // outcome could not be written settle within the test.
    // Leases of 4 s: a refund whose outcome could not be recorded is recovered soon after its create ends.
    const env = { REFUNDKIT_SYNC_INTERVAL: "1 second", REFUNDKIT_RECOVERY_GRACE: "3 seconds", REFUNDKIT_HEARTBEAT: "1 second" }
    const one = await L.startGateway({ sandbox: sandbox(), ledger: url, env })
    stops.push(() => one.stop())
    const two = await L.startGateway({ sandbox: sandbox(), ledger: url, apiKey: one.apiKey, env })
    stops.push(() => two.stop())
    const gateways = [one, two]
    const ours = `datname = current_database() AND application_name = '${tag}' AND pid <> pg_backend_pid()`

    const before = await sandbox().stats()
    // Each provider call takes 5 ms, so kills land between a claim and its outcome too.
    await sandbox().faults({ fault: { _tag: "Latency", millis: 5 }, route: "refund", times: 0 })

    const base = takeTx(REQUESTS)
    type Sent = { key: string; tx: number; gateway: number; answers: Array<Response | string>; ok?: Response }
    const sent: Array<Sent> = Array.from({ length: REQUESTS }, (_, i) => ({ key: `dbloss-${process.pid}-${i}`, tx: base + i, gateway: i % 2, answers: [] }))
    let loadDone = false
    let next = 0
    // Keys answered with a 2xx, or given up on.
    let completed = 0
    const random = L.prng(seed)
    // A gateway that died ends the load at once (its crash is reported below).
    const died = () => gateways.some((g) => g.proc.exitCode !== undefined)
    const client = async () => {
      while (next < sent.length && !died()) {
        const s = sent[next++]!
        // Retried with the same key on 409, 5xx and transport errors, for at most 30 s (recovery
        // takes a refund left `requested` to `unknown` after 3 s, and that replays).
        const deadline = Date.now() + 30_000
        for (let attempt = 0; Date.now() < deadline && !died(); attempt++) {
          // Alternate gateways on retries too: the other one may hold a connection that works.
          const g = gateways[(s.gateway + attempt) % 2]!
          let r: Response
          try {
            // A connection per request: a kept-alive one the gateway closed as idle just as it was
            // reused would fail in transit, which could not be told from a gateway hanging up.
            r = await L.createRefund(g, { key: s.key, transactionId: s.tx, timeoutMs: 20_000 })
          } catch (e) {
            s.answers.push(`transport: ${String((e as Error).message)}`)
            await L.sleep(50)
            continue
          }
          s.answers.push(r)
          if (r.status === 200 || r.status === 201) {
            completed += 1
            s.ok = r
            break
          }
          if (r.status === 409 || r.status >= 500) {
            await L.sleep(50 + Math.floor(Math.random() * 100))
            continue
          }
          break
        }
        if (s.ok === undefined) completed += 1
      }
    }

    // ROUNDS rounds of termination, spread over the load by progress (not time, so a slow machine
    // gets as many): each waits (up to 1 s, inside PostgreSQL) until one of this test's backends is
    // running a claim or an outcome write, then terminates all of them, idle or busy, and says how
    // many were writing.
    const writing = (like: string) => `count(*) FILTER (WHERE state = 'active' AND query LIKE '${like}')`
    const claimsActive = writing("%INSERT INTO refunds %")
    const outcomesActive = writing("%UPDATE refunds SET status%")
    const round = `DO $$
DECLARE claims int; outcomes int; killed int; started timestamptz := clock_timestamp();
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT ${claimsActive}, ${outcomesActive} INTO claims, outcomes FROM pg_stat_activity WHERE ${ours};
    EXIT WHEN claims + outcomes > 0 OR clock_timestamp() - started > interval '1 second';
    PERFORM pg_sleep(0.001);
  END LOOP;
  PERFORM pg_stat_clear_snapshot();
  SELECT ${claimsActive}, ${outcomesActive}, count(pg_terminate_backend(pid)) INTO claims, outcomes, killed FROM pg_stat_activity WHERE ${ours};
  RAISE NOTICE 'killed % % %', claims, outcomes, killed;
END $$`
    const killed = { rounds: 0, backends: 0, claims: 0, outcomes: 0 }
    const killer = (async () => {
      for (let k = 1; k <= ROUNDS; k++) {
        while (!loadDone && completed < (k * REQUESTS) / (ROUNDS + 2)) await L.sleep(20)
        if (loadDone) return
        const r = await L.run("psql", [L.PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", round])
        const m = /killed (\d+) (\d+) (\d+)/.exec(r.stderr)
        if (r.code !== 0 || m === null) throw new Error(`psql: ${r.code} ${r.stderr}`)
        killed.rounds += 1
        killed.claims += Number(m[1])
        killed.outcomes += Number(m[2])
        killed.backends += Number(m[3])
        // A few rounds strike twice, while the pools reconnect.
        if (random() < 0.3) {
          await L.sleep(Math.floor(random() * 100))
          const again = await L.run("psql", [L.PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-t", "-A", "-c", `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE ${ours}`])
          if (again.code !== 0) throw new Error(`psql: ${again.code} ${again.stderr}`)
          killed.backends += Number(again.stdout.trim())
        }
      }
    })()
    const started = Date.now()
    await Promise.all(Array.from({ length: CONCURRENCY }, client))
    loadDone = true
    await killer
    await sandbox().clearFaults()

    // Both gateways are alive and never printed a crash.
    for (const g of gateways) {
      expect(g.proc.exitCode, g.proc.err().slice(-3000)).toBeUndefined()
      expect(crashTrace(g.proc.out() + g.proc.err()), (g.proc.out() + g.proc.err()).slice(-3000)).toBe(false)
    }
    const tally: Record<string, number> = {}
    const wrong: Array<string> = []
    for (const s of sent) {
      for (const a of s.answers) {
        if (typeof a === "string") {
          tally[a] = (tally[a] ?? 0) + 1
          wrong.push(`${s.key}: ${a}`)
          continue
        }
        const code = a.json?.error?.code
        const label = `${a.status}${code === undefined ? "" : ` ${code}`}`
        tally[label] = (tally[label] ?? 0) + 1
        if (a.status === 200 || a.status === 201) {
          if (typeof a.json?.id !== "string" || !a.json.id.startsWith("rfd_")) wrong.push(`${s.key}: ${a.status} without a refund id: ${a.text.slice(0, 300)}`)
        } else if (!(allowed[a.status] ?? []).includes(code)) wrong.push(`${s.key}: ${a.status} ${a.text.slice(0, 300)}`)
      }
    }
    console.log(
      `${REQUESTS} creates in ${Date.now() - started} ms; ${killed.rounds} rounds terminated ${killed.backends} backends, ${killed.claims} of them in a claim and ${killed.outcomes} in an outcome write; answers ${JSON.stringify(tally)}`
    )
    expect(wrong.slice(0, 20)).toEqual([])
    expect(killed.rounds).toBe(ROUNDS)
    expect(killed.backends).toBeGreaterThan(0)
    // A client gives up after 30 s of retries; the database is back long before that.
    expect(sent.filter((s) => s.ok === undefined).map((s) => `${s.key}: ${s.answers.slice(-3).map((a) => (typeof a === "string" ? a : `${a.status} ${a.text.slice(0, 200)}`)).join(" | ")}`).slice(0, 20)).toEqual([])

    // Both gateways are ready again without a restart.
    for (const g of gateways) {
      let ready: Response | undefined
      for (let i = 0; i < 100; i++) {
        ready = await L.request(`${g.url}/readyz`)
        if (ready.status === 200) break
        await L.sleep(100)
      }
      expect(ready?.status, ready?.text).toBe(200)
    }

    // Every 2xx is in the ledger under its key, with the id the client was given.
    const stored = new Map((await listAll(one)).map((r) => [r.id as string, r]))
    const missing: Array<string> = []
    for (const s of sent) {
      if (s.ok === undefined) continue
      const id = s.ok.json.id
      const r = stored.get(id)
      if (r?.idempotencyKey !== s.key) missing.push(`${s.key} ${id}: ${JSON.stringify(r)?.slice(0, 200)}`)
      for (const a of s.answers) {
        if (typeof a !== "string" && (a.status === 200 || a.status === 201) && a.json?.id !== id) missing.push(`${s.key}: two ids, ${id} and ${a.json?.id}`)
      }
    }
    expect(missing.slice(0, 20)).toEqual([])

    // Recovery (after 3 s, on each sweep) moves every refund the kills left `requested` (its claim or
    // its outcome write failed) to `unknown`, and syncs settle them (Exirom's sync resends with the
    // same requestId, which cannot refund twice).
    const inDoubt = await settleInDoubt(gateways, 3_000)
    expect(inDoubt.requested.slice(0, 20)).toEqual([])
    expect(inDoubt.stuck.slice(0, 20)).toEqual([])

    // The provider refunded exactly the transactions the ledger has as refunded, each once.
    const stats = await sandbox().stats()
    expect(doubleRefunds(stats.refundsPerTransaction)).toEqual([])
    const settled = new Map((await listAll(two)).map((r) => [r.id as string, r]))
    const disagreements: Array<string> = []
    let refunded = 0
    for (const s of sent) {
      const performed = stats.refundsPerTransaction[String(s.tx)] ?? 0
      const status = settled.get(s.ok?.json.id)?.status
      const done = status === "pending" || status === "succeeded"
      if (done) refunded++
      if (done !== (performed === 1)) disagreements.push(`${s.key} tx ${s.tx}: ledger ${status}, sandbox performed ${performed}`)
    }
    expect(disagreements.slice(0, 20)).toEqual([])
    expect(stats.refundsPerformed - before.refundsPerformed).toBe(refunded)
    expect(refunded).toBe(REQUESTS)

    // Both serve new refunds on the connections they have now.
    const fresh = takeTx(20)
    for (let i = 0; i < 20; i++) {
      const g = gateways[i % 2]!
      const r = await L.createRefund(g, { key: `dbloss-after-${process.pid}-${i}`, transactionId: fresh + i })
      expect(r.status, r.text).toBe(201)
    }
    for (const g of gateways) expect(g.proc.exitCode).toBeUndefined()
    await Promise.all([one.stop(), two.stop()])
  })
})
