import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { ChildProcess } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { jsonLines, run, start, startSandboxes, tempDir } from "./support.js"

type ErrorBody = { error: { code: string; message: string; issues?: Array<{ path: string; message: string }>; remaining?: string } }
type ExiromStats = { refundsPerTransaction: Record<string, number> }

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const apiKey = "original-amounts-test-key"
const env = () => sandboxes.info.env
const performed = async (transactionId: number): Promise<number> =>
  ((await (await fetch(`${sandboxes.url("exirom")}/__sandbox/stats`)).json()) as ExiromStats).refundsPerTransaction[String(transactionId)] ?? 0

/** `refundkit serve` on a ledger file, against the sandboxes of this file's own process; its URL once it listens. */
const serve = (ledger: string): Promise<{ readonly url: string; readonly stop: () => Promise<void> }> =>
  new Promise((resolve, reject) => {
    const child: ChildProcess = start(["serve", "--port", "0", "--ledger", ledger], { cwd: dir, env: { ...env(), REFUNDKIT_API_KEYS: apiKey, REFUNDKIT_ACCESS_LOG: "false" } })
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<void>((done) => child.on("exit", () => done()))
    child.on("exit", (code) => reject(new Error(`refundkit serve exited with ${code}: ${stderr}`)))
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const url = /listening on (http:\/\/\S+)/.exec(line)?.[1]
      if (url !== undefined) resolve({ url, stop: () => (child.kill("SIGTERM"), exited) })
    })
  })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

describe("originalAmounts: the over-refund guard from the CLI, as the gateway has it", () => {
  it("a refund past the original amount is refused with exit 2 across a gateway's refund and the CLI's, and nothing is sent", async () => {
    const ledger = join(dir, "shared.db")
    // An auto-seeded Exirom payment of 100.00 EUR no other test refunds.
    const transactionId = 7_400_001
    const gateway = await serve(ledger)
    try {
      const created = await fetch(`${gateway.url}/v1/refunds`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "idempotency-key": "gateway-60" },
        body: JSON.stringify({ provider: "exirom", transactionId, amount: "60.00", currency: "EUR", reason: "customer_request", originalAmounts: { [transactionId]: "100.00" } })
      })
      assert.strictEqual(created.status, 201, await created.clone().text())
    } finally {
      await gateway.stop()
    }
    assert.strictEqual(await performed(transactionId), 1)

    // The CLI states the same original amount, as the gateway's body does: 60.00 more would be 120.00 of 100.00.
    const request = { transactionId, amount: "60.00", currency: "EUR", reason: "customer_request", originalAmounts: { [transactionId]: "100.00" } }
    const over = await run(["create", "exirom", "--json", "--ledger", ledger, "--data", JSON.stringify(request)], { cwd: dir, env: env() })
    assert.strictEqual(over.code, 2, over.stderr)
    const body = JSON.parse(over.stdout) as ErrorBody
    assert.strictEqual(body.error.code, "over_refund")
    assert.include(over.stderr, `error: Refunding 60.00 EUR against ${transactionId} would exceed its original amount: only 40.00 EUR is left to refund.`)
    // Field by field too, and the original amount given as its own field.
    const byField = await run(
      ["create", "exirom", "--ledger", ledger, "-f", `transactionId=${transactionId}`, "-f", "amount=40.01", "-f", "currency=EUR", "-f", "reason=customer_request", "-f", `originalAmounts.${transactionId}=100.00`],
      { cwd: dir, env: env() }
    )
    assert.strictEqual(byField.code, 2, byField.stderr)
    assert.include(byField.stderr, "only 40.00 EUR is left to refund")
    assert.strictEqual(await performed(transactionId), 1, "nothing was sent for a refused refund")

    // What is left goes through, and is counted: nothing is left after it.
    const rest = await run(["create", "exirom", "--json", "--ledger", ledger, "--data", JSON.stringify({ ...request, amount: "40.00" })], { cwd: dir, env: env() })
    assert.strictEqual(rest.code, 0, rest.stderr)
    assert.strictEqual(await performed(transactionId), 2)

    // A bulk row, its original amount in an originalAmounts.<target> column: refused, its row invalid, the run exit 2.
    const csv = join(dir, "over.csv")
    writeFileSync(csv, `transactionId,amount,currency,reason,originalAmounts.${transactionId}\n${transactionId},0.01,EUR,customer_request,100.00\n`)
    const out = join(dir, "over.results.jsonl")
    const bulk = await run(["bulk", csv, "--provider", "exirom", "--ledger", ledger, "--out", out], { cwd: dir, env: env() })
    assert.strictEqual(bulk.code, 2, bulk.stderr)
    const [row] = jsonLines<{ outcome: string; error?: { code: string } }>(readFileSync(out, "utf8"))
    assert.strictEqual(row?.outcome, "invalid")
    assert.strictEqual(row?.error?.code, "over_refund")
    assert.strictEqual(await performed(transactionId), 2, "nothing was sent for the bulk row")
  })

  it("a bulk file's original amounts are checked with the rows: a key naming no target of its row, or not an amount, sends nothing", async () => {
    const ledger = join(dir, "checked.db")
    const transactionId = 7_400_002
    // A JSON Lines row carries the gateway's own object; a CSV row may give it whole, as JSON in one column.
    const jsonl = join(dir, "checked.jsonl")
    writeFileSync(jsonl, [
      JSON.stringify({ transactionId, amount: "10.00", currency: "EUR", reason: "customer_request", originalAmounts: { [transactionId]: "100.00" } }),
      JSON.stringify({ transactionId, amount: "10.00", currency: "EUR", reason: "customer_request", originalAmounts: { "0074": "100.00" } })
    ].join("\n"))
    const refused = await run(["bulk", jsonl, "--provider", "exirom", "--ledger", ledger, "--json"], { cwd: dir, env: env() })
    assert.strictEqual(refused.code, 2, refused.stderr)
    const report = JSON.parse(refused.stdout) as ErrorBody
    assert.deepStrictEqual(report.error.issues?.map((i) => i.path), ["row 2.originalAmounts.0074"])
    const csv = join(dir, "checked.csv")
    writeFileSync(csv, `transactionId,amount,currency,reason,originalAmounts\n${transactionId},10.00,EUR,customer_request,"{""${transactionId}"":100}"\n`)
    const notText = await run(["bulk", csv, "--provider", "exirom", "--ledger", ledger, "--dry-run"], { cwd: dir, env: env() })
    assert.strictEqual(notText.code, 2, notText.stderr)
    assert.include(notText.stderr, `row 1 (line 2): originalAmounts.${transactionId}: Expected string, actual 100`)
    assert.strictEqual(await performed(transactionId), 0)

    // The same file with its amounts as text goes through, each row guarded.
    writeFileSync(csv, `transactionId,amount,currency,reason,originalAmounts\n${transactionId},10.00,EUR,customer_request,"{""${transactionId}"":""15.00""}"\n${transactionId},10.00,EUR,customer_request,"{""${transactionId}"":""15.00""}"\n`)
    const out = join(dir, "checked.results.jsonl")
    const sent = await run(["bulk", csv, "--provider", "exirom", "--ledger", ledger, "--out", out], { cwd: dir, env: env() })
    assert.strictEqual(sent.code, 2, sent.stderr)
    // The rows go out side by side: whichever the ledger claims first is sent, the other refused.
    const rows = jsonLines<{ outcome: string; error?: { code: string } }>(readFileSync(out, "utf8"))
    assert.sameDeepMembers(rows.map((r) => [r.outcome, r.error?.code ?? "none"]), [["ok", "none"], ["invalid", "over_refund"]])
    assert.strictEqual(await performed(transactionId), 1)
  })
})
