// Which targets of a refund the provider refunded, end to end: the over-refund guard passes by a target
// whose item failed, and an operator names with --failed-target the targets the provider did not refund.
// The sandboxes' own tallies say what was refunded.
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Effect, Exit, Scope } from "effect"
import { join } from "node:path"
import { fault, run, startSandboxes, stats, tempDir } from "./support.js"

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
// No test here waits for a call's timeout (a lost answer ends its call at once): 2 s was too short for a
// loaded machine, where create's sign-in and call to the airpay sandbox ran past it (Resolve.test.ts's
// lost answer read a timeout so) and a lost answer's test would read a timeout.
const cli = (args: ReadonlyArray<string>) =>
  run([...args, "--ledger", join(dir, "ledger.db")], { cwd: dir, env: { ...sandboxes.info.env, REFUNDKIT_CALL_TIMEOUT: "30 seconds" } })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

interface Refund {
  readonly id: string
  readonly status: string
  readonly items: ReadonlyArray<{ readonly target: string; readonly status: string; readonly amount?: string }>
  readonly events: ReadonlyArray<{ readonly source: string; readonly detail?: string }>
}

interface AirpayStats {
  readonly refundsByTransaction: Record<string, number>
  readonly requestsByTransaction: Record<string, number>
}

const airpay = (transactions: ReadonlyArray<readonly [id: number, amount: string]>, originalAmounts?: Record<string, string>) =>
  JSON.stringify({ transactions: transactions.map(([ap_transactionid, amount]) => ({ ap_transactionid, amount })), ...(originalAmounts === undefined ? {} : { originalAmounts }) })

describe("refundkit and the targets a provider did not refund", () => {
  it("an Airpay batch resolved succeeded as core advises: its refused transaction takes a new refund, its refunded one stays held", async () => {
    // 10264 (10.00) is refunded; 150.00 is more than 10265 holds (100.00): refused.
    const created = await cli(["create", "airpay", "--json", "--idempotency-key", "ap-mix", "--data", airpay([[10264, "10.00"], [10265, "150.00"]])])
    assert.strictEqual(created.code, 0, created.stderr)
    const mixed = JSON.parse(created.stdout) as Refund
    assert.strictEqual(mixed.status, "requires_action")
    assert.deepStrictEqual(mixed.items.map((i) => [i.target, i.status]), [["10264", "succeeded"], ["10265", "failed"]])
    const resolved = await cli(["resolve", mixed.id, "--json", "--status", "succeeded", "--note", "10264 refunded, 10265 refused"])
    assert.strictEqual(resolved.code, 0, resolved.stderr)
    assert.strictEqual((JSON.parse(resolved.stdout) as Refund).status, "succeeded")

    const fix = await cli(["create", "airpay", "--json", "--idempotency-key", "ap-fix", "--data", airpay([[10265, "15.00"]], { "10265": "100.00" })])
    assert.strictEqual(fix.code, 0, fix.stdout + fix.stderr)
    assert.strictEqual((JSON.parse(fix.stdout) as Refund).status, "succeeded")
    const over = await cli(["create", "airpay", "--json", "--idempotency-key", "ap-over", "--data", airpay([[10264, "95.00"]], { "10264": "100.00" })])
    assert.strictEqual(over.code, 2, over.stderr)
    assert.include(over.stdout, "only 90.00 INR is left to refund", "the 10.00 refunded still counts")
    const tally = await stats<AirpayStats>(sandboxes.url("airpay"))
    assert.deepStrictEqual([tally.refundsByTransaction["10264"], tally.refundsByTransaction["10265"]], [1, 1], "10265 refunded once, by the follow-up")
    assert.strictEqual(tally.requestsByTransaction["10264"], 1, "nothing sent for the refused one")
  })

  it("an Airpay batch whose answer was lost: --failed-target records the transaction not refunded, which takes a new refund; the refunded one stays held", async () => {
    await fault(sandboxes.url("airpay"), { fault: { _tag: "LostResponse" }, route: "refund" })
    // The sandbox refunds 20003 (10.00) and refuses 20002 (600.00 of 499.99); the answer never arrives.
    const created = await cli(["create", "airpay", "--json", "--idempotency-key", "ap-lost", "--data", airpay([[20003, "10.00"], [20002, "600.00"]])])
    assert.strictEqual(created.code, 3, created.stderr)
    const id = (JSON.parse(created.stdout) as { error: { refundId: string } }).error.refundId
    const lost = JSON.parse((await cli(["get", id, "--json"])).stdout) as Refund
    assert.deepStrictEqual([lost.status, lost.items], ["unknown", []])

    const refusals = [
      { args: ["--status", "failed", "--failed-target", "20002"], says: "--failed-target: goes with --status succeeded" },
      { args: ["--status", "succeeded", "--failed-target", "20001"], says: `--failed-target: "20001" is not a target of refund ${id} (its targets: 20003, 20002). Nothing was changed` },
      {
        args: ["--status", "succeeded", "--failed-target", "20002", "--failed-target", "020003"],
        says: `--failed-target: names every target of refund ${id}: the provider refunded none of them, so resolve it failed. Nothing was changed`
      }
    ]
    for (const { args, says } of refusals) {
      const refused = await cli(["resolve", id, ...args, "--note", "seen in the Airpay dashboard"])
      assert.strictEqual(refused.code, 2, refused.stderr)
      assert.include(refused.stderr, says)
    }
    assert.deepStrictEqual(JSON.parse((await cli(["get", id, "--json"])).stdout), lost, "nothing was changed")

    // The provider's own spelling of the id (a leading zero) names the same transaction.
    const resolved = await cli(["resolve", id, "--json", "--status", "succeeded", "--failed-target", "020002", "--note", "20003 refunded, 20002 not"])
    assert.strictEqual(resolved.code, 0, resolved.stderr)
    const refund = JSON.parse(resolved.stdout) as Refund
    assert.strictEqual(refund.status, "succeeded")
    assert.deepStrictEqual(refund.items.map((i) => [i.target, i.status, i.amount]), [["20003", "succeeded", "10.00"], ["20002", "failed", "600.00"]])
    assert.strictEqual(refund.events.at(-1)?.detail, "operator: 20003 refunded, 20002 not (failed targets, not refunded by airpay: 20002)")
    const shown = await cli(["get", id])
    assert.include(shown.stdout, "item 20002        failed")

    const fix = await cli(["create", "airpay", "--json", "--idempotency-key", "lost-fix", "--data", airpay([[20002, "100.00"]], { "20002": "499.99" })])
    assert.strictEqual(fix.code, 0, fix.stdout + fix.stderr)
    const again = await cli(["create", "airpay", "--json", "--idempotency-key", "lost-again", "--data", airpay([[20003, "70.00"]], { "20003": "75.50" })])
    assert.strictEqual(again.code, 2, again.stderr)
    assert.include(again.stdout, "only 65.50 INR is left to refund", "the 10.00 refunded still counts")
    const tally = await stats<AirpayStats>(sandboxes.url("airpay"))
    assert.deepStrictEqual([tally.refundsByTransaction["20003"], tally.refundsByTransaction["20002"]], [1, 1], "20002 refunded once, by the follow-up")
    assert.strictEqual(tally.requestsByTransaction["20003"], 1, "20003 never sent again")
  })

  it("an Airalo request of two ICCIDs, one credited and one refused by email: --failed-target frees the refused one for a new request, the credited one stays held", async () => {
    const scope = Effect.runSync(Scope.make())
    // No rate limit: the second request's call would wait out Airalo's 5 minutes.
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
    try {
      const env = { ...sandboxes.info.env, ...airalo.env }
      const ledger = ["--ledger", join(dir, "airalo.db")]
      const [credited, refused] = [AiraloSandbox.ownedIccid(941), AiraloSandbox.ownedIccid(942)]
      const request = (iccids: ReadonlyArray<string>) => JSON.stringify({ iccids, reason: "TRIP_CANCELLATION" })
      const create = (key: string, iccids: ReadonlyArray<string>) =>
        run(["create", "airalo", "--json", "--data", request(iccids), "--idempotency-key", key, ...ledger], { cwd: dir, env })
      const created = await create("both", [credited, refused])
      assert.strictEqual(created.code, 0, created.stderr)
      const refund = JSON.parse(created.stdout) as Refund
      assert.deepStrictEqual(refund.items.map((i) => [i.target, i.status]), [[credited, "pending"], [refused, "pending"]])
      assert.strictEqual((await create("refused-again", [refused])).code, 2, "held while Airalo reviews it")

      const resolved = await run(
        ["resolve", refund.id, "--json", "--status", "succeeded", "--failed-target", refused, "--note", "one credited, the other refused by email", ...ledger],
        { cwd: dir, env }
      )
      assert.strictEqual(resolved.code, 0, resolved.stderr)
      assert.deepStrictEqual((JSON.parse(resolved.stdout) as Refund).items.map((i) => [i.target, i.status]), [[credited, "succeeded"], [refused, "failed"]])

      const again = await create("refused-again", [refused])
      assert.strictEqual(again.code, 0, again.stderr)
      assert.strictEqual((JSON.parse(again.stdout) as Refund).status, "pending")
      const blocked = await create("credited-again", [credited])
      assert.strictEqual(blocked.code, 2, blocked.stderr)
      assert.include(blocked.stdout, "target_already_refunded")
      const tally = await stats<{ refundRequestsPerIccid: Record<string, number> }>(airalo.url)
      assert.deepStrictEqual([tally.refundRequestsPerIccid[credited], tally.refundRequestsPerIccid[refused]], [1, 2])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
