import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { join } from "node:path"
import { clearFaults, fault, run, startSandboxes, stats, tempDir } from "./support.js"

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const cli = (args: ReadonlyArray<string>) =>
  run([...args, "--ledger", join(dir, "ledger.db")], { cwd: dir, env: { ...sandboxes.info.env, REFUNDKIT_CALL_TIMEOUT: "5 seconds" } })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

/** The `refundkit update <id> --data '<json>'` a message tells the operator to run, as arguments. */
const adviced = (message: string): ReadonlyArray<string> => {
  const found = /refundkit update (rfd_[a-z0-9]+) --data '([^']*)'/.exec(message)
  assert.isNotNull(found, `the message names no update to send: ${message}`)
  return ["update", found![1]!, "--data", found![2]!]
}

describe("an AeroHub first update in doubt, walked by an operator who does what the messages say", () => {
  it("reaches REFUNDED: the in-doubt error and resolve's refusals name the update to send; a new create for the refunded order says it is finished", async () => {
    const aerohub = sandboxes.url("aerohub")
    const order = { refundOrderNo: "FBRF2403119001", purchaseOrderNo: "F1745553257834619001" }
    await fault(aerohub, { fault: { _tag: "LostResponse" }, route: "update_refund", times: 10 })
    const created = await cli(["create", "aerohub", "--json", "--idempotency-key", "ah-1", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })])
    await clearFaults(aerohub)
    assert.strictEqual(created.code, 3, created.stderr)
    const { error } = JSON.parse(created.stdout) as { error: { refundId: string; message: string } }
    const id = error.refundId
    // The advice is the same update again, not a verdict by hand.
    assert.notInclude(error.message, "refundkit resolve")
    assert.include(error.message, `POST /v1/refunds/${id}/events`)
    const resend = adviced(error.message)
    assert.deepStrictEqual(JSON.parse(resend[3]!), { ...order, refundStatus: "PROCESSING" })

    // The auditor's operator resolves it succeeded anyway: refused, and told which update to send.
    const resolved = await cli(["resolve", id, "--status", "succeeded", "--note", "portal shows PROCESSING"])
    assert.strictEqual(resolved.code, 2, resolved.stderr)
    assert.include(resolved.stderr, `--status: refund ${id} is not resolved succeeded by hand`)
    assert.deepStrictEqual(adviced(resolved.stderr), resend)
    // The order is not held by a refund that claims to be finished meanwhile.
    const blocked = await cli(["create", "aerohub", "--idempotency-key", "ah-1b", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })])
    assert.strictEqual(blocked.code, 2, blocked.stderr)
    assert.include(blocked.stderr, `is held by refund ${id} (status unknown)`)
    assert.include(blocked.stderr, "settle it as its error says")

    const settled = await cli([...resend, "--json"])
    assert.strictEqual(settled.code, 0, settled.stderr)
    assert.deepStrictEqual(pick(JSON.parse(settled.stdout)), ["pending", "PROCESSING"])

    // Each refused "succeeded" names the next step to send; the operator sends it, filling in the amount refunded.
    for (const step of ["REFUNDED_PENDING", "REFUNDED"]) {
      const refused = await cli(["resolve", id, "--status", "succeeded", "--note", "reimbursed"])
      assert.strictEqual(refused.code, 2, refused.stderr)
      const next = adviced(refused.stderr)
      assert.strictEqual((JSON.parse(next[3]!) as { refundStatus: string }).refundStatus, step)
      const sent = await cli([...next.slice(0, 3), next[3]!.replace("<the amount refunded>", "250.00"), "--json"])
      assert.strictEqual(sent.code, 0, sent.stderr)
      assert.deepStrictEqual(pick(JSON.parse(sent.stdout)), [step === "REFUNDED" ? "succeeded" : "pending", step])
    }
    const atAeroHub = (await stats<{ orders: Record<string, { status?: string }> }>(aerohub)).orders[order.refundOrderNo]
    assert.strictEqual(atAeroHub?.status, "REFUNDED")

    const again = await cli(["create", "aerohub", "--idempotency-key", "ah-1c", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })])
    assert.strictEqual(again.code, 2, again.stderr)
    assert.include(again.stderr, `${order.refundOrderNo} is already refunded by refund ${id} (status succeeded, which is final).`)
    assert.include(again.stderr, `${id} is finished: ${order.refundOrderNo} is refunded, and there is nothing more to refund`)
    assert.notInclude(again.stderr, "--status failed", "no verdict a final refund refuses")
  })
})

const pick = (refund: { readonly status: string; readonly providerStatus?: string }) => [refund.status, refund.providerStatus]
