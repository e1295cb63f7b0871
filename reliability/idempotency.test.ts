// 100 concurrent identical POST /v1/refunds with one Idempotency-Key: exactly one provider
// refund, one refund id in every answer, no 5xx. On one gateway (SQLite) and across two
// gateway processes sharing one PostgreSQL ledger.
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { type Gateway, L, type Response, takeTx, useSuite } from "./harness.js"

const CLIENTS = 100

const { dir, stops, sandbox } = useSuite("refundkit-rel-idem-")

/**
 * 100 clients send the same request at once; a client that gets 409 refund_in_progress
 * retries (bounded) until it gets the stored refund. Returns every answer seen.
 */
const storm = async (gateways: ReadonlyArray<Gateway>, key: string, transactionId: number) => {
  const agents = gateways.map(() => L.makeAgent(CLIENTS))
  const seen: Array<Response & { attempt: number }> = []
  const finals: Array<Response> = []
  await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    const g = client % gateways.length
    for (let attempt = 0; attempt < 100; attempt++) {
      const r = await L.createRefund(gateways[g]!, { key, transactionId, agent: agents[g] })
      seen.push({ ...r, attempt })
      if (r.status === 409 && r.json?.error?.code === "refund_in_progress") {
        await L.sleep(50 + (client % 10) * 10)
        continue
      }
      finals.push(r)
      return
    }
  }))
  for (const a of agents) a.destroy()
  return { seen, finals }
}

const check = async (gateways: ReadonlyArray<Gateway>, label: string) => {
  const transactionId = takeTx(1)
  const key = `idem-${label}-${Date.now()}`
  const before = await sandbox().stats()
  // Every refund call takes 300 ms at the provider, so the first is still in flight when the rest arrive.
  await sandbox().faults({ fault: { _tag: "Latency", millis: 300 }, route: "refund", times: 0 })
  let result
  try {
    result = await storm(gateways, key, transactionId)
  } finally {
    await sandbox().clearFaults()
  }
  const after = await sandbox().stats()
  const statuses: Record<number, number> = {}
  for (const r of result.seen) statuses[r.status] = (statuses[r.status] ?? 0) + 1
  console.log(`${label}: ${result.seen.length} answers ${JSON.stringify(statuses)}`)

  expect(result.seen.filter((r) => r.status >= 500).map((r) => `${r.status} ${r.text}`)).toEqual([])
  for (const r of result.seen) {
    expect([200, 201, 409], `unexpected ${r.status}: ${r.text}`).toContain(r.status)
    if (r.status === 409) expect(r.json?.error?.code).toBe("refund_in_progress")
  }
  expect(result.finals).toHaveLength(CLIENTS)
  const ids = new Set(result.finals.map((r) => r.json?.id))
  expect([...ids]).toHaveLength(1)
  expect([...ids][0]).toMatch(/^rfd_/)
  expect(result.finals.filter((r) => r.status === 201)).toHaveLength(1)
  for (const r of result.finals.filter((r) => r.status === 200)) expect(r.headers["idempotent-replayed"]).toBe("true")
  // Exactly one refund at the provider.
  expect(after.refundsPerformed - before.refundsPerformed).toBe(1)
  expect(after.refundsPerTransaction[String(transactionId)]).toBe(1)
  // And the stored refund is the one every client was given.
  const stored = await L.request(`${gateways[0]!.url}/v1/refunds/${[...ids][0]}`, { headers: { authorization: `Bearer ${gateways[0]!.apiKey}` } })
  expect(stored.status).toBe(200)
  expect(stored.json.idempotencyKey).toBe(key)
}

describe("one Idempotency-Key, 100 concurrent identical creates", () => {
  it("one gateway on SQLite: exactly one provider refund, one refund id, no 5xx", async () => {
    const gateway = await L.startGateway({ sandbox: sandbox(), ledger: join(dir, "ledger.db") })
    stops.push(() => gateway.stop())
    await check([gateway], "sqlite")
    await gateway.stop()
  })

  it.skipIf(!L.pgAvailable())("two gateways on one PostgreSQL: exactly one provider refund, one refund id, no 5xx", async () => {
    const schema = L.pgSchema(`refundkit_rel_idem_${process.pid}`)
    stops.push(() => schema.drop())
    const one = await L.startGateway({ sandbox: sandbox(), ledger: schema.url })
    stops.push(() => one.stop())
    const two = await L.startGateway({ sandbox: sandbox(), ledger: schema.url, apiKey: one.apiKey })
    stops.push(() => two.stop())
    await check([one, two], "postgres-x2")
    await Promise.all([one.stop(), two.stop()])
  })
})
