// What an operator's audit found: refunds that need a person were left out of `refundkit reconcile`
// (requires_action: a mixed Airpay answer, an Exirom chargeback), and an AeroHub update in doubt exited 1
// as if the provider had failed, where every other in-doubt outcome exits 3.
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as ExiromSandbox from "@refundkit/exirom/sandbox"
import { Effect, Exit, Scope } from "effect"
import { join } from "node:path"
import { clearFaults, fault, run, startSandboxes, stats, tempDir } from "./support.js"

type Refund = { id: string; status: string; providerStatus?: string; providerFinal?: boolean; error?: { code: string } }
type Report = {
  checked: number
  changed: number
  needsPerson: number
  errors: number
  results: Array<{ refundId: string; provider: string; before: string; after: string; needsPerson?: string }>
}

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const cli = (args: ReadonlyArray<string>, ledger: string) => run([...args, "--ledger", join(dir, ledger)], { cwd: dir, env: sandboxes.info.env })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

describe("refundkit reconcile", () => {
  it("lists every refund in requires_action under need a person, with why, and asks no provider about a final word", async () => {
    const ledger = "reconcile.db"
    // 20002 is refunded and 424242 is no Airpay transaction: a mixed answer Airpay calls final.
    const mixed = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 20002, amount: "1.00" }, { ap_transactionid: 424242, amount: "1.00" }] })], ledger)
    assert.strictEqual(mixed.code, 0, mixed.stderr)
    const airpay = JSON.parse(mixed.stdout) as Refund
    assert.strictEqual(airpay.status, "requires_action")
    // Exirom settles refunds of payment 30004 CHARGEBACK (the cardholder also won a dispute), which it calls final.
    const created = await cli(["create", "exirom", "--json", "--data", JSON.stringify({ transactionId: 30004, amount: "5.00", reason: "customer_request" })], ledger)
    assert.strictEqual(created.code, 0, created.stderr)
    const exiromId = (JSON.parse(created.stdout) as Refund).id
    await new Promise((resolve) => setTimeout(resolve, 500))
    const charged = JSON.parse((await cli(["sync", exiromId, "--json"], ledger)).stdout) as Refund
    assert.deepStrictEqual([charged.status, charged.providerStatus, charged.providerFinal], ["requires_action", "CHARGEBACK", true])

    const asked = (await stats(sandboxes.url("exirom"))).requests["info"] ?? 0
    const result = await cli(["reconcile", "--json"], ledger)
    assert.strictEqual(result.code, 0, `stable exit codes: a person is needed, nothing failed or is in doubt: ${result.stderr}`)
    const report = JSON.parse(result.stdout) as Report
    assert.deepStrictEqual([report.checked, report.changed, report.needsPerson, report.errors], [2, 0, 2, 0])
    const byId = new Map(report.results.map((r) => [r.refundId, r]))
    assert.deepInclude(byId.get(airpay.id), { provider: "airpay", before: "requires_action", after: "requires_action" })
    assert.include(byId.get(airpay.id)!.needsPerson, "requires action: airpay answered per target: 20002 succeeded (accepted)")
    assert.include(byId.get(airpay.id)!.needsPerson, "424242 failed (refused)")
    assert.include(byId.get(airpay.id)!.needsPerson, `refundkit resolve ${airpay.id} --status succeeded|failed`)
    assert.include(byId.get(exiromId)!.needsPerson, "requires action: Exirom reports CHARGEBACK: the cardholder may also have been repaid through a dispute")
    assert.strictEqual((await stats(sandboxes.url("exirom"))).requests["info"] ?? 0, asked, "a word Exirom calls final is not asked about again")

    const human = await cli(["reconcile"], ledger)
    assert.strictEqual(human.code, 0, human.stderr)
    assert.include(human.stdout, `${exiromId}  exirom    requires_action (unchanged)\n    needs a person: requires action: Exirom reports CHARGEBACK`)
    assert.include(human.stdout, "2 refund(s) checked: 0 changed, 2 need a person.")

    // Settled by a person, it leaves the report.
    assert.strictEqual((await cli(["resolve", airpay.id, "--status", "succeeded", "--note", "20002 refunded, 424242 is not ours"], ledger)).code, 0)
    const after = JSON.parse((await cli(["reconcile", "--json", "--provider", "airpay"], ledger)).stdout) as Report
    assert.strictEqual(after.checked, 0)
  })

  it("syncs a requires_action refund the provider can still tell about, and reports it once", async () => {
    // An Exirom that keeps refunds NEW until told to settle them.
    const scope = Effect.runSync(Scope.make())
    const exirom = await Effect.runPromise(ExiromSandbox.make({ settleAfterMillis: 600_000 }).pipe(Scope.extend(scope)))
    try {
      const env = { ...sandboxes.info.env, ...exirom.env }
      const rk = (args: ReadonlyArray<string>) => run([...args, "--ledger", join(dir, "reconcile-sync.db")], { cwd: dir, env })
      const created = await rk(["create", "exirom", "--json", "--data", JSON.stringify({ transactionId: 12345, amount: "1.00", reason: "customer_request" })])
      const id = (JSON.parse(created.stdout) as Refund).id
      assert.strictEqual((await rk(["resolve", id, "--status", "failed", "--note", "not in the Exirom dashboard"])).code, 0)
      // Exirom still has it NEW: its word contradicts the operator's failed, and the refund needs a person; not a final word.
      const synced = JSON.parse((await rk(["sync", id, "--json"])).stdout) as Refund
      assert.deepStrictEqual([synced.status, synced.providerStatus, synced.providerFinal], ["requires_action", "NEW", undefined])
      // And one a sync will move to requires_action while reconcile walks the pending refunds: 30004 settles CHARGEBACK.
      const charged = await rk(["create", "exirom", "--json", "--data", JSON.stringify({ transactionId: 30004, amount: "1.00", reason: "customer_request" })])
      const chargedId = (JSON.parse(charged.stdout) as Refund).id

      const asked = async () => (await stats(exirom.url)).requests["info"] ?? 0
      const before = await asked()
      const open = await rk(["reconcile", "--json"])
      assert.strictEqual(open.code, 0, open.stderr)
      const first = JSON.parse(open.stdout) as Report
      assert.strictEqual(await asked(), before + 2, "asked Exirom about both, the requires_action one included")
      // Exirom's NEW is its word now: the refund waits for it again.
      assert.deepInclude(first.results.find((r) => r.refundId === id), { before: "requires_action", after: "pending" })

      await Effect.runPromise(exirom.settle)
      const settled = await rk(["reconcile", "--json"])
      assert.strictEqual(settled.code, 0, settled.stderr)
      const second = JSON.parse(settled.stdout) as Report
      assert.deepStrictEqual(second.results.map((r) => r.refundId).sort(), [id, chargedId].sort(), "each reported once")
      assert.deepStrictEqual([second.checked, second.changed, second.needsPerson], [2, 2, 1])
      assert.deepInclude(second.results.find((r) => r.refundId === id), { before: "pending", after: "succeeded" })
      const chargeback = second.results.find((r) => r.refundId === chargedId)!
      assert.deepInclude(chargeback, { before: "pending", after: "requires_action" })
      assert.include(chargeback.needsPerson, "requires action: Exirom reports CHARGEBACK")
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})

describe("refundkit update in doubt", () => {
  it("an AeroHub update whose answers were all lost exits 3 (in doubt) with the advice to send it again; the same update then settles it", async () => {
    const ledger = "update.db"
    const order = { refundOrderNo: "FBRF2403117401", purchaseOrderNo: "F1745553257834617401" }
    const created = await cli(["create", "aerohub", "--json", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })], ledger)
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    await fault(sandboxes.url("aerohub"), { fault: { _tag: "LostResponse" }, route: "update_refund", times: 10 })
    try {
      const lost = await cli(["update", id, "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })], ledger)
      assert.strictEqual(lost.code, 3, lost.stderr)
      // AeroHub's own advice (its inDoubtAdvice) is the exact command: the same update again.
      assert.include(lost.stderr, "the update may have been applied")
      assert.include(lost.stderr, "AeroHub takes a repeated update and changes nothing, so send the same update again")
      assert.include(lost.stderr, `refundkit update ${id} --data`)
      const json = await cli(["update", id, "--json", "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })], ledger)
      assert.strictEqual(json.code, 3, json.stderr)
      assert.deepInclude((JSON.parse(json.stdout) as { error: object }).error, { code: "provider_unavailable", refundId: id })
    } finally {
      await clearFaults(sandboxes.url("aerohub"))
    }
    const got = JSON.parse((await cli(["get", id, "--json"], ledger)).stdout) as Refund
    assert.deepStrictEqual([got.status, got.providerStatus], ["pending", "PROCESSING"], "the refund cannot say which it is")
    const again = await cli(["update", id, "--json", "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })], ledger)
    assert.strictEqual(again.code, 0, again.stderr)
    assert.strictEqual((JSON.parse(again.stdout) as Refund).providerStatus, "REFUNDED_PENDING")
    // A provider refusing outright (a 503 with Retry-After: nothing applied) is still a plain failure.
    await fault(sandboxes.url("aerohub"), { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 1 }, route: "update_refund", times: 10 })
    try {
      const unavailable = await cli(["update", id, "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] })], ledger)
      assert.strictEqual(unavailable.code, 1, unavailable.stderr)
    } finally {
      await clearFaults(sandboxes.url("aerohub"))
    }
  })

  it("an AeroHub update after the first that times out exits 3 with AeroHub's advice, the exact command to send it again, which settles it", async () => {
    const ledger = "update-timeout.db"
    // A call timeout of 1 s, and AeroHub holding the update 3 s: no answer in time.
    const rk = (args: ReadonlyArray<string>) => run([...args, "--ledger", join(dir, ledger)], { cwd: dir, env: { ...sandboxes.info.env, REFUNDKIT_CALL_TIMEOUT: "1 second" } })
    const order = { refundOrderNo: "FBRF2403117402", purchaseOrderNo: "F1745553257834617402" }
    const created = await rk(["create", "aerohub", "--json", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    const next = JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })
    await fault(sandboxes.url("aerohub"), { fault: { _tag: "Hang", millis: 3_000 }, route: "update_refund" })
    let late: Awaited<ReturnType<typeof rk>>
    try {
      late = await rk(["update", id, "--data", next])
    } finally {
      await clearFaults(sandboxes.url("aerohub"))
    }
    assert.strictEqual(late.code, 3, late.stderr)
    const command = `refundkit update ${id} --data '${next}'`
    assert.include(
      late.stderr,
      `error: The outcome at aerohub is unknown: no answer within 1s; the update may have been applied. AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${command} (on the gateway: POST /v1/refunds/${id}/events with that body).`
    )
    assert.notInclude(late.stderr, "refundkit resolve", "core's generic advice, a verdict by hand, is not given")
    assert.notInclude(late.stderr, "kept as", "the refund is pending, not unknown")
    // `refundkit get` shows the same words on the refund, which is still pending at PROCESSING.
    const got = await rk(["get", id, "--json"])
    const inDoubt = JSON.parse(got.stdout) as Refund & { error?: { code: string; message: string } }
    assert.deepStrictEqual([inDoubt.status, inDoubt.providerStatus, inDoubt.error?.code], ["pending", "PROCESSING", "outcome_unknown"])
    assert.include(inDoubt.error?.message, command)

    // The command as the advice spells it, run as a shell would split it: AeroHub's answer settles the doubt.
    const words = /^refundkit (update) (\S+) (--data) '([^']*)'$/.exec(command)!.slice(1)
    const again = await rk([...words, "--json"])
    assert.strictEqual(again.code, 0, again.stderr)
    const settled = JSON.parse(again.stdout) as Refund
    assert.deepStrictEqual([settled.status, settled.providerStatus, settled.error], ["pending", "REFUNDED_PENDING", undefined])
  })

  it("an AeroHub update whose answer it cannot read (AeroHub applied it) exits 3 naming the field and the exact command to send it again, which is applied once", async () => {
    const ledger = "update-unread.db"
    const aerohub = sandboxes.url("aerohub")
    const order = { refundOrderNo: "FBRF2403117403", purchaseOrderNo: "F1745553257834617403" }
    const created = await cli(["create", "aerohub", "--json", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })], ledger)
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    const next = JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })
    // AeroHub takes the update and answers `{"success": true, "message": "Successful"}`, without the `code` the plugin reads.
    await fault(aerohub, { fault: { _tag: "SchemaViolation", afterProcessing: true }, route: "update_refund" })
    let unread: Awaited<ReturnType<typeof cli>>
    try {
      unread = await cli(["update", id, "--json", "--data", next], ledger)
    } finally {
      await clearFaults(aerohub)
    }
    assert.strictEqual(unread.code, 3, `in doubt, not a plain failure: ${unread.stderr}`)
    const command = `refundkit update ${id} --data '${next}'`
    assert.include(
      unread.stderr,
      `error: aerohub sent a response refundkit does not understand (field code: is missing); the update may have been applied. ` +
        `AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${command} (on the gateway: POST /v1/refunds/${id}/events with that body).`
    )
    assert.notInclude(unread.stderr, "Nothing in it was recorded", "AeroHub may have applied it")
    assert.deepInclude((JSON.parse(unread.stdout) as { error: object }).error, { code: "unexpected_response", refundId: id })

    // `refundkit get` shows the same words on the refund, which is still pending at PROCESSING.
    const got = await cli(["get", id, "--json"], ledger)
    const inDoubt = JSON.parse(got.stdout) as Refund & { error?: { code: string; message: string } }
    assert.deepStrictEqual([inDoubt.status, inDoubt.providerStatus, inDoubt.error?.code], ["pending", "PROCESSING", "unexpected_response"])
    assert.include(inDoubt.error?.message, "field code: is missing")
    assert.include(inDoubt.error?.message, command)
    const shown = await cli(["get", id], ledger)
    assert.include(shown.stdout, "may have been applied by aerohub (an answer refundkit does not understand, field code: is missing)")

    // The command as the advice spells it, run as a shell would split it: AeroHub takes it as a repeat, and its answer settles the doubt.
    const words = /^refundkit (update) (\S+) (--data) '([^']*)'$/.exec(command)!.slice(1)
    const again = await cli([...words, "--json"], ledger)
    assert.strictEqual(again.code, 0, again.stderr)
    const settled = JSON.parse(again.stdout) as Refund
    assert.deepStrictEqual([settled.status, settled.providerStatus, settled.error], ["pending", "REFUNDED_PENDING", undefined])
    const held = (await stats<{ orders: Record<string, { status: string; transitions: Array<string>; repeats: number }> }>(aerohub)).orders[order.refundOrderNo]
    assert.deepStrictEqual(held, { status: "REFUNDED_PENDING", transitions: ["NEW -> PROCESSING", "PROCESSING -> REFUNDED_PENDING"], repeats: 1 }, "applied once, its repeat taken as one")
  })
})
