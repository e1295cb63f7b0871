import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Effect, Exit, Scope } from "effect"
import { join } from "node:path"
import { fault, run, start, startSandboxes, stats, tempDir } from "./support.js"

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
// No test here waits for a call's timeout (a lost answer ends its call at once; the tests that hang a call
// set their own): 2 s was too short for a loaded machine, where create's sign-in and call to the airpay
// sandbox ran past it and a lost answer's test read a timeout.
const cli = (args: ReadonlyArray<string>) =>
  run([...args, "--ledger", join(dir, "ledger.db")], { cwd: dir, env: { ...sandboxes.info.env, REFUNDKIT_CALL_TIMEOUT: "30 seconds" } })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

describe("refundkit resolve", () => {
  it("settles a refund in doubt at a provider with no status query, after the operator checked it", async () => {
    await fault(sandboxes.url("airpay"), { fault: { _tag: "LostResponse" }, route: "refund" })
    const created = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 20003, amount: "5.00" }] })])
    assert.strictEqual(created.code, 3, created.stderr)
    const { error } = JSON.parse(created.stdout) as { error: { refundId: string; message: string } }
    const id = error.refundId
    // Airpay has no status query: the advice names the way a refund in doubt there is settled.
    assert.include(error.message, `It may have reached airpay. The refund ${id} is kept as "unknown"`)
    assert.include(error.message, "otherwise check with airpay and record what happened (refundkit resolve)")
    const before = await cli(["reconcile", "--json", "--provider", "airpay"])
    assert.strictEqual(before.code, 3, "in doubt, and sync cannot settle it")

    assert.strictEqual((await cli(["resolve", id, "--status", "succeeded", "--note", " "])).code, 2, "a note is required")
    const resolved = await cli(["resolve", id, "--json", "--status", "succeeded", "--note", "seen in the Airpay dashboard"])
    assert.strictEqual(resolved.code, 0, resolved.stderr)
    const refund = JSON.parse(resolved.stdout) as { status: string; error?: unknown; events: Array<{ source: string; detail?: string }> }
    assert.strictEqual(refund.status, "succeeded")
    assert.isUndefined(refund.error)
    assert.deepInclude(refund.events.at(-1), { source: "operator", detail: "operator: seen in the Airpay dashboard" })
    // The verdict as asked is on its event, in `get --json` as in resolve's answer; the history line words it as before.
    const verdict = { note: "operator: seen in the Airpay dashboard", releaseTargets: false, failedTargets: [], correct: false }
    const read = JSON.parse((await cli(["get", id, "--json"])).stdout) as { events: Array<{ source: string; verdict?: unknown }> }
    assert.deepStrictEqual(read.events.map((e) => e.verdict), [undefined, undefined, verdict])
    assert.deepStrictEqual(read, refund)
    const history = (await cli(["get", id])).stdout.split("\n").filter((line) => line.includes("operator  "))
    assert.strictEqual(history.length, 1, history.join("\n"))
    assert.match(history[0]!, /operator {2}unknown -> succeeded: operator: seen in the Airpay dashboard$/)

    const again = await cli(["resolve", id, "--status", "failed", "--note", "changed my mind"])
    assert.strictEqual(again.code, 2, "a final refund is not settled again")
    // An operator's resolve sends nothing: the refusal must not read as a refund request "not sent".
    assert.include(again.stderr, `--status: refund ${id} is already succeeded, which is final: nothing was changed.`)
    assert.notMatch(again.stderr, /was not sent|send it again/)
    assert.strictEqual((await cli(["reconcile", "--json", "--provider", "airpay"])).code, 0)
  })

  it("refuses to settle a refund whose first call is still out, and settles it once that call has ended in doubt", async () => {
    // The call is held by sandboxes of this test's own until resolve has been seen refusing, however
    // long a loaded machine takes to list and resolve (a fixed window missed it: 5 s under a full
    // parallel run; the 15 s call timeout that replaced it was waited out in full every run). Killing
    // their process then cuts the call after its request was sent, as a provider that goes away
    // mid-call does: its answer can no longer come, and the refund is in doubt.
    const held = await startSandboxes()
    try {
      await fault(held.url("airpay"), { fault: { _tag: "Hang", millis: 600_000 }, route: "refund" })
      // Longer than the test: only the cut ends the call.
      const env = { ...held.info.env, REFUNDKIT_CALL_TIMEOUT: "10 minutes" }
      const ledger = ["--ledger", join(dir, "ledger.db")]
      const creating = start(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 3100007, amount: "3.00" }] }), ...ledger], { cwd: dir, env })
      const created = new Promise<number | null>((resolve) => creating.on("exit", resolve))
      let id: string | undefined
      while (id === undefined) {
        assert.isNull(creating.exitCode, "create ended before its refund was seen requested")
        const listed = JSON.parse((await cli(["list", "--json", "--provider", "airpay", "--status", "requested"])).stdout) as { items: Array<{ id: string }> }
        id = listed.items[0]?.id
      }
      const refused = await cli(["resolve", id, "--status", "failed", "--note", "not in the Airpay dashboard yet"])
      assert.strictEqual(refused.code, 2, refused.stderr)
      assert.include(refused.stderr, `--status: refund ${id} is requested: its first call to airpay is still out, and its answer will settle it.`)
      assert.include(refused.stderr, "Nothing was changed")
      assert.isNull(creating.exitCode, "the call was still out when resolve refused")
      held.kill()
      assert.strictEqual(await created, 3, "the call was cut after it was sent: in doubt")
      const settled = await cli(["resolve", id, "--json", "--status", "failed", "--note", "not in the Airpay dashboard"])
      // A recorded outcome, as a decline is: not a provider or ledger failure.
      assert.strictEqual(settled.code, 0, settled.stderr)
      const refund = JSON.parse(settled.stdout) as { status: string; error?: unknown; events: Array<{ source: string; to: string }> }
      assert.strictEqual(refund.status, "failed")
      assert.isUndefined(refund.error, "the cut call that left it in doubt no longer says what happened")
      assert.deepStrictEqual(refund.events.map((e) => [e.source, e.to]), [["submit", "requested"], ["submit", "unknown"], ["operator", "failed"]])
    } finally {
      held.kill()
    }
  })

  it("a first call with no answer within REFUNDKIT_CALL_TIMEOUT leaves its refund in doubt: the client's own timeout, exit 3", async () => {
    // The timeout the test above used to wait out, on its own and short. Sandboxes of its own, so the
    // hang waits for this call and no other test's: they would hold it 30 s, and only the client's
    // 1 s bound ends it in time.
    const held = await startSandboxes()
    try {
      await fault(held.url("airpay"), { fault: { _tag: "Hang", millis: 30_000 }, route: "refund" })
      const created = await run(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 3100008, amount: "3.00" }] }), "--ledger", join(dir, "ledger.db")], {
        cwd: dir,
        env: { ...held.info.env, REFUNDKIT_CALL_TIMEOUT: "1 second" }
      })
      assert.strictEqual(created.code, 3, created.stderr)
      const { error } = JSON.parse(created.stdout) as { error: { refundId: string; message: string } }
      assert.include(error.message, "no answer within 1s")
      const got = JSON.parse((await cli(["get", error.refundId, "--json"])).stdout) as { status: string }
      assert.strictEqual(got.status, "unknown")
    } finally {
      held.kill()
    }
  })

  it("refuses to settle a final refund again to the same status: no second operator event, exit 2", async () => {
    const created = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 3100001, amount: "2.00" }] })])
    assert.strictEqual(created.code, 0, created.stderr)
    const refund = JSON.parse(created.stdout) as { id: string; status: string; events: Array<unknown> }
    assert.strictEqual(refund.status, "succeeded", created.stdout)
    const again = await cli(["resolve", refund.id, "--status", "succeeded", "--note", "seen in the Airpay dashboard"])
    assert.strictEqual(again.code, 2, again.stderr)
    assert.include(again.stderr, `--status: refund ${refund.id} is already succeeded, which is final: nothing was changed.`)
    const after = JSON.parse((await cli(["get", refund.id, "--json"])).stdout) as typeof refund
    assert.strictEqual(after.events.length, refund.events.length, "nothing was recorded")
  })

  it("will not fail a refund the provider partly made: a failed refund reserves nothing, so its refunded target could be refunded again", async () => {
    // 20002 is refunded, 424242 is no Airpay transaction: a mixed answer, requires_action.
    const created = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 20002, amount: "1.00" }, { ap_transactionid: 424242, amount: "1.00" }] })])
    const refund = JSON.parse(created.stdout) as { id: string; status: string; items: Array<{ target: string; status: string }> }
    assert.strictEqual(refund.status, "requires_action", created.stdout)
    const refused = await cli(["resolve", refund.id, "--status", "failed", "--note", "Airpay refused one of them"])
    assert.strictEqual(refused.code, 2, refused.stderr)
    assert.include(refused.stderr, `--status: refund ${refund.id} cannot be failed: the provider reported 20002 succeeded.`)
    assert.include(refused.stderr, "Nothing was changed")
    const settled = await cli(["resolve", refund.id, "--json", "--status", "succeeded", "--note", "20002 refunded, 424242 is not ours"])
    assert.strictEqual(settled.code, 0, settled.stderr)
    assert.deepStrictEqual((JSON.parse(settled.stdout) as typeof refund).items.map((i) => [i.target, i.status]), [["20002", "succeeded"], ["424242", "failed"]])
  })

  it("an Airalo refund still accepted for review can be resolved failed once Airalo refused it, freeing its ICCID for a new refund", async () => {
    const scope = Effect.runSync(Scope.make())
    // No rate limit: the second refund's call would wait out Airalo's 5 minutes.
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
    try {
      const env = { ...sandboxes.info.env, ...airalo.env }
      const ledger = ["--ledger", join(dir, "airalo-resolve.db")]
      const iccid = AiraloSandbox.ownedIccid(931)
      const data = JSON.stringify({ iccids: [iccid], reason: "TRIP_CANCELLATION" })
      const created = await run(["create", "airalo", "--json", "--data", data, "--idempotency-key", "airalo-first", ...ledger], { cwd: dir, env })
      assert.strictEqual(created.code, 0, created.stderr)
      const refund = JSON.parse(created.stdout) as { id: string; status: string; items: Array<{ target: string; status: string }> }
      assert.strictEqual(refund.status, "pending")
      assert.deepStrictEqual(refund.items.map((i) => [i.target, i.status]), [[iccid, "pending"]])
      const blocked = await run(["create", "airalo", "--json", "--data", data, "--idempotency-key", "airalo-second", ...ledger], { cwd: dir, env })
      assert.strictEqual(blocked.code, 2, blocked.stderr)
      assert.include(blocked.stdout + blocked.stderr, "target_already_refunded")

      const resolved = await run(["resolve", refund.id, "--json", "--status", "failed", "--note", "Airalo support refused it by email", ...ledger], { cwd: dir, env })
      // Failed without an error of its own, as a decline: exit 0.
      assert.strictEqual(resolved.code, 0, resolved.stderr)
      assert.strictEqual((JSON.parse(resolved.stdout) as { status: string }).status, "failed")
      const again = await run(["create", "airalo", "--json", "--data", data, "--idempotency-key", "airalo-second", ...ledger], { cwd: dir, env })
      assert.strictEqual(again.code, 0, again.stderr)
      assert.strictEqual((JSON.parse(again.stdout) as { status: string }).status, "pending")
      assert.strictEqual((await stats<{ refundRequestsPerIccid: Record<string, number> }>(airalo.url)).refundRequestsPerIccid[iccid], 2)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("an AeroHub order closed stays held after a plain resolve; --release-targets with --status failed frees it for a new refund", async () => {
    const order = { refundOrderNo: "FBRF2403117771", purchaseOrderNo: "F1745553257834617771" }
    const sent = async () => (await stats(sandboxes.url("aerohub"))).requests["update_refund"] ?? 0
    const created = await cli(["create", "aerohub", "--json", "--idempotency-key", "closed-7771", "--data", JSON.stringify({ ...order, refundStatus: "CLOSED", rejectReason: 4 })])
    assert.strictEqual(created.code, 0, created.stderr)
    const closed = JSON.parse(created.stdout) as { id: string; status: string; holdsTarget?: boolean }
    assert.deepStrictEqual([closed.status, closed.holdsTarget], ["failed", true])

    const before = await sent()
    const second = await cli(["create", "aerohub", "--json", "--idempotency-key", "closed-7771-again", "--data", JSON.stringify({ ...order, refundStatus: "CLOSED", rejectReason: 4 })])
    assert.strictEqual(second.code, 2, second.stderr)
    const { error } = JSON.parse(second.stdout) as { error: { code: string; message: string } }
    assert.strictEqual(error.code, "target_already_refunded")
    assert.include(error.message, `held by refund ${closed.id} (status failed)`)
    assert.include(error.message, `refundkit resolve ${closed.id} --status failed --release-targets`)
    assert.strictEqual(await sent(), before, "nothing reached AeroHub")

    const plain = await cli(["resolve", closed.id, "--status", "failed", "--note", "closed, seen at AeroHub"])
    assert.strictEqual(plain.code, 2, plain.stderr)
    assert.include(plain.stderr, `refund ${closed.id} is already failed, which is final: nothing was changed. It still holds its targets (aerohub keeps it on them)`)
    assert.include(plain.stderr, "add --release-targets")
    const wrong = await cli(["resolve", closed.id, "--status", "succeeded", "--release-targets", "--note", "reopened"])
    assert.strictEqual(wrong.code, 2, wrong.stderr)
    assert.include(wrong.stderr, "--release-targets: goes with --status failed")

    const released = await cli(["resolve", closed.id, "--json", "--status", "failed", "--release-targets", "--note", "AeroHub reopened the order"])
    assert.strictEqual(released.code, 0, released.stderr)
    const refund = JSON.parse(released.stdout) as { status: string; holdsTarget?: boolean; events: Array<{ source: string; detail?: string }> }
    assert.deepStrictEqual([refund.status, refund.holdsTarget], ["failed", undefined])
    assert.include(refund.events.at(-1)?.detail ?? "", "operator: AeroHub reopened the order (targets released")
    const nothingLeft = await cli(["resolve", closed.id, "--status", "failed", "--release-targets", "--note", "again"])
    assert.strictEqual(nothingLeft.code, 2, nothingLeft.stderr)
    assert.include(nothingLeft.stderr, "holds no target to release: nothing was changed")

    const third = await cli(["create", "aerohub", "--json", "--idempotency-key", "closed-7771-after", "--data", JSON.stringify({ ...order, refundStatus: "CLOSED", rejectReason: 4 })])
    assert.strictEqual(third.code, 0, third.stderr)
    assert.strictEqual(await sent(), before + 1, "sent once the operator released the order")
  })

  it("a refund resolved failed after a resend answered 404 drops its \"kept as unknown\" error, and resolve and get exit 0", async () => {
    // 99 is no Exirom payment: the first attempt meets a 500, and the retry, a resend of the same requestId,
    // is answered 404, which leaves the refund in doubt (a wrong path answers 404 too).
    await fault(sandboxes.url("exirom"), { fault: { _tag: "ServerError", status: 500 }, route: "refund", times: 1 })
    const created = await cli(["create", "exirom", "--json", "--data", JSON.stringify({ transactionId: 99, amount: "10.00", reason: "customer_request" })])
    assert.strictEqual(created.code, 3, created.stderr)
    const id = (JSON.parse(created.stdout) as { error: { refundId: string } }).error.refundId
    assert.strictEqual((JSON.parse((await cli(["get", id, "--json"])).stdout) as { error?: { code: string } }).error?.code, "outcome_unknown")

    const resolved = await cli(["resolve", id, "--json", "--status", "failed", "--note", "Exirom support: no refund with this requestId"])
    assert.strictEqual(resolved.code, 0, resolved.stderr)
    const refund = JSON.parse(resolved.stdout) as { status: string; error?: unknown }
    assert.deepStrictEqual([refund.status, refund.error], ["failed", undefined])
    const got = await cli(["get", id])
    assert.strictEqual(got.code, 0, got.stderr)
    assert.notMatch(got.stdout, /^ {2}error /m, "no error line")
    assert.notInclude(got.stdout.split("history")[0]!, "kept as")
  })
})

describe("refundkit resolve --correct", () => {
  it("an operator's typo is corrected in so many words: failed frees the eSIM, succeeded takes it back unless a refund made meanwhile holds it", async () => {
    const scope = Effect.runSync(Scope.make())
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
    try {
      const env = { ...sandboxes.info.env, ...airalo.env }
      const ledger = ["--ledger", join(dir, "airalo-correct.db")]
      const rk = (args: ReadonlyArray<string>) => run([...args, ...ledger], { cwd: dir, env })
      type Refund = { id: string; status: string; error?: unknown; items: Array<{ target: string; status: string; settledBy?: string }>; events: Array<{ source: string; from: string | null; to: string; accepted: boolean; at: string; detail?: string }> }
      const iccid = AiraloSandbox.ownedIccid(941)
      const data = JSON.stringify({ iccids: [iccid], reason: "TRIP_CANCELLATION" })
      const created = await rk(["create", "airalo", "--json", "--data", data, "--idempotency-key", "correct-first"])
      assert.strictEqual(created.code, 0, created.stderr)
      const id = (JSON.parse(created.stdout) as Refund).id
      const noVerdict = await rk(["resolve", id, "--status", "failed", "--correct", "--note", "refused"])
      assert.strictEqual(noVerdict.code, 2, noVerdict.stderr)
      assert.include(noVerdict.stderr, `--correct: refund ${id} is pending: there is no verdict to correct, and nothing was changed.`)

      const credited = await rk(["resolve", id, "--json", "--status", "succeeded", "--note", "credited, seen on the balance"])
      assert.strictEqual(credited.code, 0, credited.stderr)
      const creditedAt = (JSON.parse(credited.stdout) as Refund).events.at(-1)!.at

      // Without --correct, as before: final. The refusal says how to correct a verdict recorded by hand.
      const plain = await rk(["resolve", id, "--status", "failed", "--note", "Airalo refused it"])
      assert.strictEqual(plain.code, 2, plain.stderr)
      assert.include(plain.stderr, `--status: refund ${id} is already succeeded, which is final: nothing was changed.`)
      assert.include(plain.stderr, `An operator recorded it succeeded at ${creditedAt} (operator: credited, seen on the balance); if that verdict was wrong, correct it in so many words: refundkit resolve ${id} --status failed --correct --note "..."`)
      const same = await rk(["resolve", id, "--status", "succeeded", "--correct", "--note", "credited"])
      assert.strictEqual(same.code, 2, same.stderr)
      assert.include(same.stderr, `--correct: refund ${id} is already succeeded: there is nothing to correct, and nothing was changed.`)

      const corrected = await rk(["resolve", id, "--json", "--status", "failed", "--correct", "--note", "typo: Airalo refused it by email"])
      assert.strictEqual(corrected.code, 0, corrected.stderr)
      const failed = JSON.parse(corrected.stdout) as Refund
      assert.strictEqual(failed.status, "failed")
      assert.deepStrictEqual(failed.items.map((i) => [i.target, i.status, i.settledBy]), [[iccid, "failed", "operator"]])
      assert.deepInclude(failed.events.at(-1), {
        source: "operator",
        from: "succeeded",
        to: "failed",
        accepted: true,
        detail: `corrects the succeeded an operator recorded at ${creditedAt}: operator: typo: Airalo refused it by email`
      })
      assert.include((await rk(["get", id])).stdout, `operator  succeeded -> failed: corrects the succeeded an operator recorded at ${creditedAt}`)

      // The eSIM is free again, as after any hand-made failed, and a second refund takes it.
      const second = await rk(["create", "airalo", "--json", "--data", data, "--idempotency-key", "correct-second"])
      assert.strictEqual(second.code, 0, second.stderr)
      const secondId = (JSON.parse(second.stdout) as Refund).id
      const taken = await rk(["resolve", id, "--status", "succeeded", "--correct", "--note", "credited after all"])
      assert.strictEqual(taken.code, 2, taken.stderr)
      assert.include(taken.stderr, `--correct: refund ${id} cannot be corrected to succeeded: its target ${iccid} is held by refund ${secondId} (status pending), made while ${id} stood failed, and nothing was changed.`)
      assert.deepStrictEqual(JSON.parse((await rk(["get", id, "--json"])).stdout), failed, "nothing was recorded")

      const refused = await rk(["resolve", secondId, "--status", "failed", "--note", "Airalo refused the second: the first was credited"])
      assert.strictEqual(refused.code, 0, refused.stderr)
      const back = await rk(["resolve", id, "--json", "--status", "succeeded", "--correct", "--note", "credited after all"])
      assert.strictEqual(back.code, 0, back.stderr)
      assert.deepStrictEqual((JSON.parse(back.stdout) as Refund).items.map((i) => [i.status, i.settledBy]), [["succeeded", "operator"]])
      const third = await rk(["create", "airalo", "--json", "--data", data, "--idempotency-key", "correct-third"])
      assert.strictEqual(third.code, 2, third.stderr)
      assert.include(third.stdout, `"refundId":"${id}"`)
      assert.strictEqual((await stats<{ refundRequestsPerIccid: Record<string, number> }>(airalo.url)).refundRequestsPerIccid[iccid], 2)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("corrected to succeeded past the payment's original amount with a refund made meanwhile: refused, naming that refund and its amount", async () => {
    // 60.00 of the payment is the caller's to refund here (the sandbox's payment is 100.00, so Exirom takes both refunds below).
    const data = (key: string, amount: string) =>
      ["--idempotency-key", key, "--data", JSON.stringify({ transactionId: 1_000_777, amount, currency: "EUR", reason: "customer_request", originalAmounts: { "1000777": "60.00" } })]
    const first = await cli(["create", "exirom", "--json", ...data("over-correct-first", "40.00")])
    assert.strictEqual(first.code, 0, first.stderr)
    const id = (JSON.parse(first.stdout) as { id: string }).id
    // Exirom's first word is NEW (pending): an operator settles it failed, which frees its 40.00.
    assert.strictEqual((await cli(["resolve", id, "--status", "failed", "--note", "Exirom's dashboard: declined"])).code, 0)
    const second = await cli(["create", "exirom", "--json", ...data("over-correct-second", "30.00")])
    assert.strictEqual(second.code, 0, second.stderr)
    const secondId = (JSON.parse(second.stdout) as { id: string }).id

    const taken = await cli(["resolve", id, "--status", "succeeded", "--correct", "--note", "refunded after all"])
    assert.strictEqual(taken.code, 2, taken.stderr)
    assert.include(taken.stderr, `--correct: refund ${id} cannot be corrected to succeeded: with the refunds made against 1000777 while it stood failed it would exceed the original amount (30.00 EUR left), and nothing was changed`)
    assert.include(taken.stderr, `Check the other refunds of 1000777 with the provider (${secondId}: 30.00 EUR, pending) and resolve any the provider refused as failed, then correct ${id}.`)
    assert.strictEqual((JSON.parse((await cli(["get", id, "--json"])).stdout) as { status: string }).status, "failed", "nothing was recorded")
  })

  it("a status the provider reported is not corrected by hand", async () => {
    const created = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 3100011, amount: "2.00" }] })])
    assert.strictEqual(created.code, 0, created.stderr)
    const refund = JSON.parse(created.stdout) as { id: string; status: string; updatedAt: string }
    assert.strictEqual(refund.status, "succeeded", created.stdout)
    const refused = await cli(["resolve", refund.id, "--status", "failed", "--correct", "--note", "typo"])
    assert.strictEqual(refused.code, 2, refused.stderr)
    assert.include(refused.stderr, `--correct: refund ${refund.id} is succeeded, set by airpay (submit) at ${refund.updatedAt}, not by an operator's verdict: nothing was changed.`)
    const plain = await cli(["resolve", refund.id, "--status", "failed", "--note", "typo"])
    assert.notInclude(plain.stderr, "--correct", "no advice to correct what the provider said")
  })

  it("a chargeback after an operator's succeeded moves an Exirom refund to requires_action: sync exits 0, and a person resolves it again", async () => {
    // Exirom settles refunds of payment 30004 CHARGEBACK: the cardholder also won a dispute.
    const created = await cli(["create", "exirom", "--json", "--data", JSON.stringify({ transactionId: 30004, amount: "10.00", reason: "customer_request" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as { id: string }).id
    assert.strictEqual((await cli(["resolve", id, "--status", "succeeded", "--note", "seen refunded in the Exirom dashboard"])).code, 0)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const synced = await cli(["sync", id, "--json"])
    assert.strictEqual(synced.code, 0, synced.stderr)
    const refund = JSON.parse(synced.stdout) as { status: string; providerStatus: string; events: Array<{ source: string; from: string; to: string; detail?: string }> }
    assert.deepStrictEqual([refund.status, refund.providerStatus], ["requires_action", "CHARGEBACK"])
    assert.include(refund.events.at(-1)!.detail!, "exirom reports requires_action (CHARGEBACK) to a status query after an operator recorded succeeded")
    const settled = await cli(["resolve", id, "--status", "succeeded", "--note", "reconciled: the dispute was reversed"])
    assert.strictEqual(settled.code, 0, settled.stderr)
    // Asked again, Exirom still says CHARGEBACK: the word the verdict settled, so the refund stays settled.
    const again = await cli(["sync", id, "--json"])
    assert.strictEqual(again.code, 0, again.stderr)
    assert.strictEqual((JSON.parse(again.stdout) as typeof refund).status, "succeeded")
  })
})

type Shown = {
  id: string
  status: string
  providerStatus?: string
  providerReference?: string
  holdsTarget?: boolean
  events: Array<{ source: string; from: string; to: string; accepted: boolean; detail?: string }>
}

/**
 * A refund of 60.00 of an auto-seeded Exirom payment of 100.00 EUR (`transactionId`, which no other test
 * refunds), made and synced until Exirom reports it SUCCEED; `data` words another refund of the payment.
 */
const madeByExirom = async (transactionId: number) => {
  const data = (amount: string) => JSON.stringify({ transactionId, amount, currency: "EUR", reason: "customer_request", originalAmounts: { [transactionId]: "100.00" } })
  const created = await cli(["create", "exirom", "--json", "--data", data("60.00")])
  assert.strictEqual(created.code, 0, created.stderr)
  const id = (JSON.parse(created.stdout) as Shown).id
  await new Promise((resolve) => setTimeout(resolve, 500))
  const made = JSON.parse((await cli(["sync", id, "--json"])).stdout) as Shown
  assert.deepStrictEqual([made.status, made.providerStatus], ["succeeded", "SUCCEED"])
  return { id, made, data }
}

describe("a chargeback after Exirom's own SUCCEED", () => {
  it("sync records it and says how to settle it, resolve settles it, and a repeated sync leaves the verdict alone", async () => {
    const { id, made, data } = await madeByExirom(7_500_001)

    // The cardholder disputes the refund Exirom made, and wins.
    const charged = await fetch(`${sandboxes.url("exirom")}/__sandbox/chargeback`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refundId: made.providerReference }) })
    assert.strictEqual(charged.status, 200, await charged.clone().text())
    const synced = await cli(["sync", id, "--json"])
    assert.strictEqual(synced.code, 0, `recorded, not refused: ${synced.stderr}`)
    const refund = JSON.parse(synced.stdout) as Shown
    assert.deepStrictEqual([refund.status, refund.providerStatus], ["requires_action", "CHARGEBACK"])
    assert.deepInclude(refund.events.at(-1), { source: "sync", from: "succeeded", to: "requires_action", accepted: true })
    assert.include(refund.events.at(-1)!.detail, "exirom reported CHARGEBACK to a status query after it had reported SUCCEED to a status query at")
    assert.include(refund.events.at(-1)!.detail, "the customer may have been repaid twice; check with exirom and settle it with refundkit resolve")
    // `get` shows the same line in its history, and reconcile names the exact command.
    const shown = await cli(["get", id])
    assert.include(shown.stdout, `sync      succeeded -> requires_action (CHARGEBACK): exirom reported CHARGEBACK`)
    const report = JSON.parse((await cli(["reconcile", "--json", "--provider", "exirom"])).stdout) as { results: Array<{ refundId: string; needsPerson?: string }> }
    assert.include(report.results.find((r) => r.refundId === id)?.needsPerson, `then record the outcome with refundkit resolve ${id} --status succeeded|failed --note "..."`)
    // It still holds its 60.00 of the payment's 100.00.
    const over = await cli(["create", "exirom", "--json", "--idempotency-key", "after-chargeback", "--data", data("40.01")])
    assert.strictEqual(over.code, 2, over.stderr)
    assert.include(over.stdout, "only 40.00 EUR is left to refund")

    const resolved = await cli(["resolve", id, "--json", "--status", "succeeded", "--note", "the dispute is Exirom's to recover; the refund stands"])
    assert.strictEqual(resolved.code, 0, resolved.stderr)
    const settled = JSON.parse(resolved.stdout) as Shown
    assert.deepInclude(settled.events.at(-1), { source: "operator", from: "requires_action", to: "succeeded", detail: "operator: the dispute is Exirom's to recover; the refund stands" })

    const again = await cli(["sync", id, "--json"])
    assert.strictEqual(again.code, 0, again.stderr)
    assert.deepStrictEqual(JSON.parse(again.stdout), JSON.parse(resolved.stdout), "CHARGEBACK again records nothing: the verdict stands")
    assert.strictEqual((await cli(["create", "exirom", "--json", "--idempotency-key", "after-verdict", "--data", data("40.01")])).code, 2, "still held")
  })
})

describe("a FAILED after Exirom's own SUCCEED (a reversal)", () => {
  it("sync records it and says how to settle it, the payment stays held through resolve failed, and --release-targets frees it", async () => {
    const { id, made, data } = await madeByExirom(7_500_002)

    // The refund did not reach the card (its account closed): the money is back with the merchant.
    const reversed = await fetch(`${sandboxes.url("exirom")}/__sandbox/reversal`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refundId: made.providerReference }) })
    assert.strictEqual(reversed.status, 200, await reversed.clone().text())
    const synced = await cli(["sync", id, "--json"])
    assert.strictEqual(synced.code, 0, `recorded, not refused: ${synced.stderr}`)
    const refund = JSON.parse(synced.stdout) as Shown
    assert.deepStrictEqual([refund.status, refund.providerStatus], ["requires_action", "FAILED"])
    assert.deepInclude(refund.events.at(-1), { source: "sync", from: "succeeded", to: "requires_action", accepted: true })
    assert.include(refund.events.at(-1)!.detail, "exirom reported FAILED (declined (2): REJECTED_BY_ISSUER_BANK_ERROR) to a status query after it had reported SUCCEED to a status query at")
    assert.include(refund.events.at(-1)!.detail, "or failed --release-targets if exirom confirms the reversal, which lets its targets be refunded again")
    const report = JSON.parse((await cli(["reconcile", "--json", "--provider", "exirom"])).stdout) as { results: Array<{ refundId: string; needsPerson?: string }> }
    assert.include(report.results.find((r) => r.refundId === id)?.needsPerson, `refundkit resolve ${id} --status succeeded|failed`)
    // It still holds its 60.00 of the payment's 100.00, and the same FAILED asked again changes nothing.
    const over = await cli(["create", "exirom", "--json", "--idempotency-key", "after-reversal", "--data", data("40.01")])
    assert.strictEqual(over.code, 2, over.stderr)
    assert.include(over.stdout, "only 40.00 EUR is left to refund")
    const asked = await cli(["sync", id, "--json"])
    assert.strictEqual(asked.code, 0, asked.stderr)
    assert.deepStrictEqual(JSON.parse(asked.stdout), JSON.parse(synced.stdout))

    // failed alone: the refund did not stand, and the payment stays held (repaid some other way, say).
    const failed = await cli(["resolve", id, "--json", "--status", "failed", "--note", "Exirom confirmed the reversal"])
    assert.strictEqual(failed.code, 0, failed.stderr)
    assert.deepInclude(JSON.parse(failed.stdout) as Shown, { status: "failed", holdsTarget: true })
    assert.strictEqual((await cli(["create", "exirom", "--json", "--idempotency-key", "after-failed", "--data", data("40.01")])).code, 2, "still held")

    const released = await cli(["resolve", id, "--json", "--status", "failed", "--release-targets", "--note", "refund it again"])
    assert.strictEqual(released.code, 0, released.stderr)
    const shown = JSON.parse(released.stdout) as Shown
    assert.isUndefined(shown.holdsTarget)
    assert.strictEqual(shown.events.at(-1)!.detail, "operator: refund it again (targets released: exirom took this refund back after it had made it)")
    const again = await cli(["create", "exirom", "--json", "--idempotency-key", "after-release", "--data", data("100.00")])
    assert.strictEqual(again.code, 0, `the whole payment is refunded again, and Exirom takes it: ${again.stderr}`)
  })
})
