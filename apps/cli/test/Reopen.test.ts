// `refundkit reopen`: a final refund the provider set, contradicted by its dashboard (Airpay and Airalo have no
// status query and no callback after success), taken back to requires_action by an operator, end to end: the real
// process, the sandboxes and a SQLite file. A reopened succeeded keeps its target held, a reopened failed takes it
// back unless another refund holds it, and resolve settles it.
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Effect, Exit, Scope } from "effect"
import { join } from "node:path"
import { run, startSandboxes, tempDir } from "./support.js"

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run([...args, "--ledger", join(dir, "ledger.db")], { cwd: dir, env: { ...sandboxes.info.env, ...env, REFUNDKIT_CALL_TIMEOUT: "30 seconds" } })

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

interface Refund {
  readonly id: string
  readonly status: string
  readonly holdsTarget?: boolean
  readonly items: ReadonlyArray<{ readonly target: string; readonly status: string }>
  readonly events: ReadonlyArray<{ readonly source: string; readonly from: string | null; readonly to: string; readonly at: string; readonly detail?: string; readonly verdict?: unknown }>
}

const airpay = (id: number, amount: string) =>
  JSON.stringify({ transactions: [{ ap_transactionid: id, amount }], originalAmounts: { [String(id)]: "100.00" } })

describe("refundkit reopen", () => {
  it("a succeeded Airpay reversed in its dashboard: requires_action with the transaction held, resolve failed keeps it until --release-targets", async () => {
    const created = await cli(["create", "airpay", "--json", "--idempotency-key", "reopen-made", "--data", airpay(10265, "10.00")])
    assert.strictEqual(created.code, 0, created.stderr)
    const made = JSON.parse(created.stdout) as Refund
    assert.strictEqual(made.status, "succeeded")

    const blank = await cli(["reopen", made.id, "--note", " "])
    assert.strictEqual(blank.code, 2, "a note is required")
    assert.include(blank.stdout + blank.stderr, "--note: must say why the refund is reopened")

    const reopened = await cli(["reopen", made.id, "--json", "--note", "reversed in the Airpay dashboard: card account closed"])
    assert.strictEqual(reopened.code, 0, reopened.stderr)
    const refund = JSON.parse(reopened.stdout) as Refund
    assert.strictEqual(refund.status, "requires_action")
    const event = refund.events.at(-1)!
    assert.deepInclude(event, { source: "operator", from: "succeeded", to: "requires_action" })
    assert.match(event.detail!, /^reopens the succeeded \(.+\) airpay \(submit\) reported at .+, held in requires_action until a person settles it with refundkit resolve: operator: reversed in the Airpay dashboard: card account closed$/)
    assert.deepStrictEqual(event.verdict, { note: "operator: reversed in the Airpay dashboard: card account closed", releaseTargets: false, failedTargets: [], correct: false, reopen: true })
    // Its 10.00 still counts against the transaction's 100.00.
    const over = await cli(["create", "airpay", "--json", "--idempotency-key", "reopen-over", "--data", airpay(10265, "95.00")])
    assert.strictEqual(over.code, 2, over.stderr)
    assert.include(over.stdout, `only 90.00 INR is left to refund. Counted against it: refund ${made.id} (10.00 INR, requires_action).`)

    const again = await cli(["reopen", made.id, "--note", "reversed"])
    assert.strictEqual(again.code, 2)
    assert.include(again.stderr + again.stdout, `refund ${made.id} is requires_action, which is not final: there is nothing to reopen`)
    assert.include(again.stderr + again.stdout, `refundkit resolve ${made.id} --status succeeded|failed`)

    const failed = await cli(["resolve", made.id, "--json", "--status", "failed", "--note", "Airpay confirmed the reversal"])
    assert.strictEqual(failed.code, 0, failed.stderr)
    assert.deepInclude(JSON.parse(failed.stdout) as Refund, { status: "failed", holdsTarget: true })
    assert.strictEqual((await cli(["create", "airpay", "--json", "--idempotency-key", "reopen-over", "--data", airpay(10265, "95.00")])).code, 2, "still held")
    const released = await cli(["resolve", made.id, "--json", "--status", "failed", "--release-targets", "--note", "refund it again"])
    assert.strictEqual(released.code, 0, released.stderr)
    // The ledger lets a new refund of it go to Airpay, which answers for itself (one refund per transaction).
    const freed = await cli(["create", "airpay", "--json", "--idempotency-key", "reopen-free", "--data", airpay(10265, "95.00")])
    assert.strictEqual(freed.code, 0, freed.stderr)
    assert.strictEqual((JSON.parse(freed.stdout) as Refund).status, "failed")
    assert.include(freed.stdout, "Refund already initiated")
  })

  it("a failed Airalo refund credited after all: refused while another refund holds the eSIM, then held again; a verdict is corrected, not reopened", async () => {
    const scope = Effect.runSync(Scope.make())
    // No rate limit: this test makes three calls, and Airalo allows one per 5 minutes.
    const airalo = await Effect.runPromise(AiraloSandbox.make({ rateLimit: false }).pipe(Scope.extend(scope)))
    try {
      const rk = (args: ReadonlyArray<string>) => cli(args, airalo.env)
      // Not the company's eSIM yet: Airalo refuses the request, and the refund is failed by Airalo's own answer.
      const iccid = "8920300000000000777"
      const data = JSON.stringify({ iccids: [iccid], reason: "TRIP_CANCELLATION" })
      const first = JSON.parse((await rk(["create", "airalo", "--json", "--data", data, "--idempotency-key", "reopen-first"])).stdout) as Refund
      assert.strictEqual(first.status, "failed")

      await Effect.runPromise(airalo.own(iccid))
      const secondRun = await rk(["create", "airalo", "--json", "--data", data, "--idempotency-key", "reopen-second"])
      assert.strictEqual(secondRun.code, 0, secondRun.stderr)
      const second = JSON.parse(secondRun.stdout) as Refund
      assert.strictEqual(second.status, "pending")

      const taken = await rk(["reopen", first.id, "--note", "the Airalo dashboard shows it credited"])
      assert.strictEqual(taken.code, 2, taken.stderr)
      assert.include(taken.stderr + taken.stdout, `refund ${first.id} cannot be reopened: its target ${iccid} is held by refund ${second.id} (status pending)`)
      assert.strictEqual((JSON.parse((await rk(["get", first.id, "--json"])).stdout) as Refund).events.length, first.events.length, "nothing was recorded")

      assert.strictEqual((await rk(["resolve", second.id, "--status", "failed", "--note", "refused by email"])).code, 0)
      const reopened = await rk(["reopen", first.id, "--json", "--note", "the Airalo dashboard shows it credited"])
      assert.strictEqual(reopened.code, 0, reopened.stderr)
      assert.deepInclude(JSON.parse(reopened.stdout) as Refund, { status: "requires_action" })
      const third = await rk(["create", "airalo", "--json", "--data", data, "--idempotency-key", "reopen-third"])
      assert.strictEqual(third.code, 2, third.stderr)
      assert.include(third.stdout + third.stderr, first.id)

      const settled = await rk(["resolve", first.id, "--json", "--status", "succeeded", "--note", "credited, seen on the balance"])
      assert.strictEqual(settled.code, 0, settled.stderr)
      const byHand = await rk(["reopen", first.id, "--note", "typo"])
      assert.strictEqual(byHand.code, 2)
      assert.include(byHand.stderr + byHand.stdout, `refundkit resolve ${first.id} --status failed --correct`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
