// Database restart: two gateways on one PostgreSQL ledger under load while PostgreSQL is stopped
// (`pg_ctl stop -m fast`, as a minor-version upgrade or a failover to a standby at the same address
// does), kept down 3 s and started again. The server is the test's own (privatePostgres.ts), so the
// machine's shared one is left alone. No gateway crashes or hangs, every answer during the outage is
// a refund or a named 5xx, /readyz says 503 while the database is down and 200 soon after it is
// back, and once every key is retried each is exactly one refund, in the ledger and at the provider.
import { describe, expect, it } from "vitest"
import { crashTrace, doubleRefunds, L, listAll, type Response, settleInDoubt, takeTx, useSuite } from "./harness.js"
import { startPrivatePostgres } from "./privatePostgres.js"

const { stops, sandbox } = useSuite("refundkit-rel-dbrestart-")


const CONCURRENCY = 16
const DOWN_MILLIS = 3_000
// 2xx answers before the stop, and after the start, before the load ends.
const WARM = 200
const AFTER = 200
// Generous bounds that prove "did not hang", not speed.
const REQUEST_BOUND = 20_000
const READY_AGAIN_BOUND = 15_000

// What a create may answer while the database goes away and comes back: a refund (201, or a 200
// replay), the first request with the key still running (409), the ledger away (503), or the
// provider called but its answer not recorded (504, the refund in doubt). Never a 500, and never
// a connection closed or left without an answer.
const allowed: Record<number, ReadonlyArray<string>> = {
  409: ["refund_in_progress"],
  503: ["ledger_error", "not_ready"],
  504: ["outcome_unknown"]
}

type Phase = "before" | "down" | "up"
type Answer = { phase: Phase; millis: number; response: Response } | { phase: Phase; millis: number; transport: string }
type Probe = { gateway: number; sentAt: number; answeredAt: number; status: number | string; text: string }

const describeAnswer = (a: Answer) => ("transport" in a ? `transport: ${a.transport}` : `${a.response.status} ${a.response.text.slice(0, 300)}`)
const isOk = (r: Response) => r.status === 200 || r.status === 201

describe("PostgreSQL restarted under load", () => {
  it("two gateways, PostgreSQL stopped for 3 s and started again: no crash, no 500, no hang, readiness follows, no lost or doubled refund", async () => {
    // Fails (never skips) without the PostgreSQL server binaries: CI has them.
    const pg = await startPrivatePostgres()
    stops.push(() => pg.close())
    // Leases of 4 s: a refund whose outcome could not be recorded is recovered soon after its create ends.
    const env = { REFUNDKIT_SYNC_INTERVAL: "1 second", REFUNDKIT_RECOVERY_GRACE: "3 seconds", REFUNDKIT_HEARTBEAT: "1 second" }
    const one = await L.startGateway({ sandbox: sandbox(), ledger: pg.url, env })
    stops.push(() => one.stop())
    const two = await L.startGateway({ sandbox: sandbox(), ledger: pg.url, apiKey: one.apiKey, env })
    stops.push(() => two.stop())
    const gateways = [one, two]
    const died = () => gateways.some((g) => g.proc.exitCode !== undefined)

    const before = await sandbox().stats()
    // Each provider call takes 5 ms, so the stop lands between some claims and their outcomes.
    await sandbox().faults({ fault: { _tag: "Latency", millis: 5 }, route: "refund", times: 0 })

    // Each key is sent once during the load; those without a 2xx are retried afterwards.
    const MAX_KEYS = 10_000
    const base = takeTx(MAX_KEYS)
    type Sent = { key: string; tx: number; answers: Array<Answer>; ok?: Response }
    const sent: Array<Sent> = []
    let phase: Phase = "before"
    let loadDone = false
    let okBefore = 0
    let okAfter = 0
    const client = async (worker: number) => {
      while (!loadDone && !died() && sent.length < MAX_KEYS) {
        const i = sent.length
        const s: Sent = { key: `dbrestart-${process.pid}-${i}`, tx: base + i, answers: [] }
        sent.push(s)
        const g = gateways[(i + worker) % 2]!
        const at = phase
        const sentAt = Date.now()
        try {
          const r = await L.createRefund(g, { key: s.key, transactionId: s.tx, timeoutMs: REQUEST_BOUND })
          s.answers.push({ phase: at, millis: Date.now() - sentAt, response: r })
          if (isOk(r)) {
            s.ok = r
            if (at === "before") okBefore++
            if (at === "up") okAfter++
            continue
          }
        } catch (e) {
          s.answers.push({ phase: at, millis: Date.now() - sentAt, transport: String((e as Error).message) })
        }
        // The database is away: do not spend thousands of keys on it.
        await L.sleep(100)
      }
    }

    // Both gateways' readiness, every 100 ms, from the start of the load until both are ready after
    // the restart (or the bound passed).
    const probes: Array<Probe> = []
    let probing = true
    const prober = async (gateway: number) => {
      while (probing) {
        const sentAt = Date.now()
        try {
          const r = await L.request(`${gateways[gateway]!.url}/readyz`, { timeoutMs: REQUEST_BOUND })
          probes.push({ gateway, sentAt, answeredAt: Date.now(), status: r.status, text: r.text.slice(0, 300) })
        } catch (e) {
          probes.push({ gateway, sentAt, answeredAt: Date.now(), status: "transport", text: String((e as Error).message) })
        }
        await L.sleep(100)
      }
    }

    const times = { stopped: 0, starting: 0, up: 0 }
    const driver = async () => {
      while (okBefore < WARM && !died()) await L.sleep(20)
      phase = "down"
      await pg.stop()
      times.stopped = Date.now()
      await L.sleep(DOWN_MILLIS)
      times.starting = Date.now()
      await pg.start()
      times.up = Date.now()
      phase = "up"
      const deadline = Date.now() + 20_000
      while (okAfter < AFTER && Date.now() < deadline && !died()) await L.sleep(20)
      loadDone = true
      // Readiness is watched a while longer: until both gateways said 200 after the start.
      const readyAfter = (gateway: number) => probes.some((p) => p.gateway === gateway && p.sentAt >= times.up && p.status === 200)
      while (!(readyAfter(0) && readyAfter(1)) && Date.now() < times.up + READY_AGAIN_BOUND && !died()) await L.sleep(50)
      probing = false
    }
    const started = Date.now()
    await Promise.all([driver(), ...Array.from({ length: CONCURRENCY }, (_, w) => client(w)), prober(0), prober(1)])
    await sandbox().clearFaults()

    // Both gateways are alive and never printed a crash.
    for (const g of gateways) {
      expect(g.proc.exitCode, g.proc.err().slice(-3000)).toBeUndefined()
      expect(crashTrace(g.proc.out() + g.proc.err()), (g.proc.out() + g.proc.err()).slice(-3000)).toBe(false)
    }

    // Every answer during the load was a refund or a named, documented error.
    const tally: Record<string, number> = {}
    const wrong: Array<string> = []
    const check = (s: Sent, a: Answer) => {
      if ("transport" in a) {
        wrong.push(`${s.key} (${a.phase}): transport: ${a.transport}`)
        tally.transport = (tally.transport ?? 0) + 1
        return
      }
      const r = a.response
      const code = r.json?.error?.code
      const label = `${a.phase} ${r.status}${code === undefined ? "" : ` ${code}`}`
      tally[label] = (tally[label] ?? 0) + 1
      if (isOk(r)) {
        if (typeof r.json?.id !== "string" || !r.json.id.startsWith("rfd_")) wrong.push(`${s.key}: ${r.status} without a refund id: ${r.text.slice(0, 300)}`)
      } else if (!(allowed[r.status] ?? []).includes(code)) wrong.push(`${s.key} (${a.phase}): ${r.status} ${r.text.slice(0, 300)}`)
    }
    for (const s of sent) for (const a of s.answers) check(s, a)
    console.log(
      `${sent.length} keys in ${Date.now() - started} ms; down for ${times.starting - times.stopped} ms after a ${
        times.stopped - started
      } ms warm-up, start took ${times.up - times.starting} ms; slowest answer ${Math.max(...sent.flatMap((s) => s.answers.map((a) => a.millis)))} ms; answers ${
        JSON.stringify(tally)
      }`
    )
    expect(wrong.slice(0, 20)).toEqual([])
    expect(times.up, "the load never reached the restart").toBeGreaterThan(0)
    // The outage met the load: keys sent while the database was down were refused, and both
    // gateways served again after it.
    expect(sent.filter((s) => s.answers.some((a) => a.phase === "down" && "response" in a && a.response.status === 503)).length).toBeGreaterThan(0)
    expect(okAfter).toBeGreaterThanOrEqual(AFTER)

    // Readiness: every probe wholly inside the outage answered 503 `not_ready` (there were some
    // for each gateway), and each gateway said 200 again within the bound after the start.
    for (const gateway of [0, 1]) {
      const mine = probes.filter((p) => p.gateway === gateway)
      const transport = mine.filter((p) => p.status === "transport")
      expect(transport.slice(0, 5), "a /readyz probe got no answer").toEqual([])
      const during = mine.filter((p) => p.sentAt >= times.stopped && p.answeredAt <= times.starting)
      expect(during.length, `gateway ${gateway}: no /readyz probe fell inside the outage`).toBeGreaterThan(0)
      expect(during.filter((p) => p.status !== 503 || !p.text.includes("not_ready")).slice(0, 5), `gateway ${gateway}: /readyz said other than 503 not_ready while the database was down`).toEqual([])
      const readyAgain = mine.find((p) => p.sentAt >= times.up && p.status === 200)
      expect(readyAgain, `gateway ${gateway}: /readyz not 200 within ${READY_AGAIN_BOUND} ms of the start; last: ${JSON.stringify(mine.at(-1))}`)
        .toBeDefined()
      console.log(`gateway ${gateway}: ${during.length} probes 503 during the outage, ready ${readyAgain!.answeredAt - times.up} ms after the start`)
    }

    // Every key without a 2xx is retried with its key until it gets one (409 and 5xx are retried:
    // recovery takes a refund left `requested` to `unknown` after 3 s, and that replays), and a
    // sample of those answered 2xx is re-sent: each must replay with the id it was given.
    const retry = sent.filter((s) => s.ok === undefined)
    const okSample = sent.filter((s) => s.ok !== undefined).filter((_, i) => i % 10 === 0).slice(0, 100)
    const queue = [...retry, ...okSample]
    const replays: Array<string> = []
    const retrier = async (worker: number) => {
      for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
        const first = s.ok
        const deadline = Date.now() + 30_000
        for (let attempt = 0; Date.now() < deadline && !died(); attempt++) {
          const g = gateways[(worker + attempt) % 2]!
          let r: Response
          const sentAt = Date.now()
          try {
            r = await L.createRefund(g, { key: s.key, transactionId: s.tx, timeoutMs: REQUEST_BOUND })
          } catch (e) {
            s.answers.push({ phase: "up", millis: Date.now() - sentAt, transport: String((e as Error).message) })
            await L.sleep(100)
            continue
          }
          s.answers.push({ phase: "up", millis: Date.now() - sentAt, response: r })
          if (isOk(r)) {
            if (first !== undefined && (r.status !== 200 || r.json?.id !== first.json.id)) replays.push(`${s.key}: ${r.status} ${r.json?.id}, was ${first.json.id}`)
            s.ok ??= r
            break
          }
          if (r.status === 409 || r.status >= 500) {
            await L.sleep(100)
            continue
          }
          break
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => retrier(w)))
    console.log(`${retry.length} keys retried, ${okSample.length} 2xx keys re-sent`)
    expect(replays.slice(0, 20)).toEqual([])
    for (const s of sent) for (const a of s.answers) check(s, a)
    expect(wrong.slice(0, 20)).toEqual([])
    expect(sent.filter((s) => s.ok === undefined).map((s) => `${s.key}: ${s.answers.slice(-3).map(describeAnswer).join(" | ")}`).slice(0, 20)).toEqual([])

    // Every 2xx is in the ledger under its key, with the one id every answer gave.
    const stored = new Map((await listAll(one)).map((r) => [r.id as string, r]))
    const missing: Array<string> = []
    for (const s of sent) {
      const id = s.ok!.json.id
      if (stored.get(id)?.idempotencyKey !== s.key) missing.push(`${s.key} ${id}: ${JSON.stringify(stored.get(id))?.slice(0, 200)}`)
      for (const a of s.answers) if ("response" in a && isOk(a.response) && a.response.json?.id !== id) missing.push(`${s.key}: two ids, ${id} and ${a.response.json?.id}`)
    }
    expect(missing.slice(0, 20)).toEqual([])

    // Refunds whose claim or outcome write the stop cut are left `requested`: recovery (after 3 s)
    // marks them `unknown`, and a sync settles them (the loops', then by hand for one whose loop
    // sync the stop interrupted and left leased), as in dbloss.test.ts.
    const inDoubt = await settleInDoubt(gateways, 2_000)
    expect(inDoubt.requested.slice(0, 20)).toEqual([])
    expect(inDoubt.stuck.slice(0, 20)).toEqual([])

    // The provider refunded each key's transaction exactly once, and the ledger has every one of
    // them as refunded: none lost, none doubled.
    const stats = await sandbox().stats()
    expect(doubleRefunds(stats.refundsPerTransaction)).toEqual([])
    const settled = new Map((await listAll(two)).map((r) => [r.id as string, r]))
    const disagreements: Array<string> = []
    for (const s of sent) {
      const performed = stats.refundsPerTransaction[String(s.tx)] ?? 0
      const status = settled.get(s.ok!.json.id)?.status
      if (!(status === "pending" || status === "succeeded") || performed !== 1) disagreements.push(`${s.key} tx ${s.tx}: ledger ${status}, sandbox performed ${performed}`)
    }
    expect(disagreements.slice(0, 20)).toEqual([])
    expect(stats.refundsPerformed - before.refundsPerformed).toBe(sent.length)
    expect(settled.size).toBe(sent.length)

    for (const g of gateways) expect(g.proc.exitCode).toBeUndefined()
    await Promise.all([one.stop(), two.stop()])
    await pg.close()
  })
})
