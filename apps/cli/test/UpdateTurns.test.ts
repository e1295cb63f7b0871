// Two `refundkit update` processes on one SQLite ledger file, racing conflicting final
// updates to one AeroHub refund order: they take the refund's turn one after the other, so
// exactly one reaches AeroHub and the other is checked against what the first recorded.
// Before, each process checked its update against the same recorded REFUNDED_PENDING and both
// were sent (the sandbox counted two UpdateRefund calls), then recorded in whichever order
// their answers came.
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { join } from "node:path"
import { clearFaults, fault, run, start, startSandboxes, stats, tempDir } from "./support.js"

type Refund = { id: string; status: string; providerStatus?: string }

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const ledger = () => join(dir, "ledger.db")
const args = (rest: ReadonlyArray<string>) => [...rest, "--ledger", ledger()]
const env = () => sandboxes.info.env
const cli = (rest: ReadonlyArray<string>) => run(args(rest), { cwd: dir, env: env() })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

const updatesReceived = async () => (await stats(sandboxes.url("aerohub"))).requests["update_refund"] ?? 0

/** Runs a started process to its end. */
const finished = (child: ReturnType<typeof start>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

describe("refundkit update from two processes on one SQLite ledger", () => {
  it("sends one of two conflicting final updates; the other is refused from what the first recorded, not sent", async () => {
    const order = { refundOrderNo: "FBRF2403119991", purchaseOrderNo: "F1745553257834619991" }
    const created = await cli(["create", "aerohub", "--json", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    const pending = await cli(["update", id, "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })])
    assert.strictEqual(pending.code, 0, pending.stderr)

    const before = await updatesReceived()
    // AeroHub takes 4 s to answer the first update: the first process is in its call (its turn)
    // while the second starts, reads the ledger and decides.
    await fault(sandboxes.url("aerohub"), { fault: { _tag: "Latency", millis: 4_000 }, route: "update_refund", times: 1 })
    try {
      const refunded = start(args(["update", id, "--json", "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] })]), { cwd: dir, env: env() })
      const first = finished(refunded)
      // The sandbox counts a request when it arrives, before the latency.
      for (let waited = 0; (await updatesReceived()) === before; waited += 50) {
        assert.isBelow(waited, 30_000, "the first update never reached AeroHub")
        await new Promise((r) => setTimeout(r, 50))
      }
      const second = await cli(["update", id, "--json", "--data", JSON.stringify({ ...order, refundStatus: "CLOSED", rejectReason: 4 })])
      const one = await first
      assert.strictEqual(await updatesReceived(), before + 1, "both final updates reached AeroHub")
      assert.strictEqual(one.code, 0, one.stderr)
      assert.strictEqual((JSON.parse(one.stdout) as Refund).providerStatus, "REFUNDED")
      assert.strictEqual(second.code, 2, second.stdout + second.stderr)
      assert.include(second.stdout + second.stderr, "final state")
    } finally {
      await clearFaults(sandboxes.url("aerohub"))
    }
    const stored = await cli(["get", id, "--json"])
    assert.strictEqual((JSON.parse(stored.stdout) as Refund).providerStatus, "REFUNDED")
  })
})
