// What a command says when work it does beside its own fails: the lease on a refund in flight that the ledger
// could not renew is a warning on stderr, in the CLI's words, and stdout stays the one JSON document `--json`
// promises. Effect's default logger printed such warnings on stdout; the command's build silenced the lease's.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { clearFaults, fault, run, start, startSandboxes, tempDir } from "./support.js"

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
beforeAll(async () => {
  sandboxes = await startSandboxes()
})
afterAll(() => sandboxes?.stop())

const adminUrl = process.env["REFUNDKIT_TEST_PG_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

describe("warnings", () => {
  it.scopedLive("a lease the ledger cannot renew while the call is out: a warning on stderr, the refund's JSON alone on stdout", () =>
    Effect.gen(function*() {
      const admin = yield* PgClient.make({ url: Redacted.make(adminUrl), maxConnections: 2 }).pipe(Effect.provide(Reactivity.layer))
      const schema = `rk_cli_warn_${process.pid}_${Date.now().toString(36)}`
      yield* Effect.acquireRelease(admin.unsafe(`CREATE SCHEMA ${schema}`), () => Effect.orDie(admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)))
      const ledger = new URL(adminUrl)
      ledger.searchParams.set("options", `-c search_path=${schema}`)

      const exirom = sandboxes.url("exirom")
      yield* Effect.promise(() => fault(exirom, { fault: { _tag: "Latency", millis: 4_000 }, route: "refund", times: 1 }))
      yield* Effect.addFinalizer(() => Effect.promise(() => clearFaults(exirom)))
      const child = start(
        ["create", "exirom", "--json", "--ledger", ledger.toString(), "--data", JSON.stringify({ transactionId: 1_000_501, amount: "2.00", currency: "EUR", reason: "customer_request" })],
        // Beats every 100 ms; a statement PostgreSQL holds for a second fails (its connection is dropped). A second
        // leaves the command's own statements room on a loaded machine.
        { env: { ...sandboxes.info.env, REFUNDKIT_HEARTBEAT: "100 millis", REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: "1 second" } }
      )
      let stdout = ""
      let stderr = ""
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
      const exited = Effect.async<number | null>((resume) => void child.on("close", (code) => resume(Effect.succeed(code))))

      // Once the refund is claimed and its call is out, nothing but the lease writes to the ledger until the answer.
      // (Until the command has migrated the schema there is no table to count in.)
      const requested = admin.unsafe<{ readonly n: string }>(`SELECT count(*)::text AS n FROM ${schema}.refunds WHERE status = 'requested'`).pipe(
        Effect.map((rows) => rows[0]?.n === "1"),
        Effect.orElseSucceed(() => false)
      )
      yield* Effect.repeat(Effect.zipLeft(requested, Effect.sleep("20 millis")), { until: (claimed) => claimed, times: 1_500 })
      // A table lock no lease write gets past for 2.5 s, more than two statement timeouts, released well before the answer.
      yield* admin.withTransaction(Effect.zipRight(admin.unsafe(`LOCK TABLE ${schema}.refunds IN ACCESS EXCLUSIVE MODE`), Effect.sleep("2500 millis")))

      const code = yield* exited
      assert.strictEqual(code, 0, stderr)
      const refund = JSON.parse(stdout) as { readonly status: string; readonly provider: string }
      assert.deepStrictEqual([refund.provider, refund.status], ["exirom", "pending"])
      assert.match(stderr, /^warning: refundkit: the refunds in flight could not be leased \(.+\); recovery in another process may make them unknown once its grace has passed$/m)
      assert.notInclude(stderr, "level=", "no logfmt")
      assert.notInclude(stdout, "level=", "no logfmt")
    }), 60_000)

  it.scopedLive("recovery at a command's start is not announced: the refund a killed command left is unknown, and stderr stays the command's own", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const ledger = join(dir, "ledger.db")
      const exirom = sandboxes.url("exirom")
      yield* Effect.promise(() => fault(exirom, { fault: { _tag: "Latency", millis: 5_000 }, route: "refund", times: 1 }))
      yield* Effect.addFinalizer(() => Effect.promise(() => clearFaults(exirom)))
      const child = start(
        ["create", "exirom", "--json", "--ledger", ledger, "--data", JSON.stringify({ transactionId: 1_000_502, amount: "2.00", currency: "EUR", reason: "customer_request" })],
        { env: sandboxes.info.env }
      )
      const exited = Effect.async<void>((resume) => void child.on("close", () => resume(Effect.void)))
      // Killed once its call is out (the sandbox counts it), with its refund claimed and requested.
      const sent = Effect.promise(() => fetch(`${exirom}/__sandbox/stats`).then((r) => r.json() as Promise<{ requests: Record<string, number> }>))
      const before = (yield* sent).requests["refund"] ?? 0
      yield* Effect.repeat(Effect.zipLeft(sent, Effect.sleep("20 millis")), { until: (s) => existsSync(ledger) && (s.requests["refund"] ?? 0) > before, times: 1_500 })
      child.kill("SIGKILL")
      yield* exited

      const listed = yield* Effect.promise(() => run(["list", "--json", "--ledger", ledger], { env: sandboxes.info.env }))
      assert.strictEqual(listed.code, 0, listed.stderr)
      const page = JSON.parse(listed.stdout) as { readonly items: ReadonlyArray<{ readonly status: string }> }
      assert.deepStrictEqual(page.items.map((r) => r.status), ["unknown"], "its process is gone, so recovery took it at once")
      assert.strictEqual(listed.stderr, "", "the gateway's recovery summary is not the command's to say")
    }), 60_000)
})
