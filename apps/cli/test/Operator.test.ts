import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { randomBytes } from "node:crypto"
import { createRequire } from "node:module"
import { join } from "node:path"
import { clearFaults, fault, jsonLines, run, start, startSandboxes, tempDir } from "./support.js"

// The PostgreSQL driver the ledger uses, to give the test a schema of its own.
const pg = createRequire(createRequire(import.meta.url).resolve("@refundkit/ledger-sql"))("pg") as {
  readonly Client: new(options: { readonly connectionString: string }) => {
    connect(): Promise<unknown>
    query(text: string): Promise<unknown>
    end(): Promise<void>
  }
}

type Row = { row: number; idempotencyKey: string; status?: string; outcome: string; replayed?: boolean; retry?: number }
type ExiromStats = { refundsPerTransaction: Record<string, number> }

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const env = () => sandboxes.info.env
const exiromCsv = (name: string, from: number, count: number): string => {
  const path = join(dir, name)
  writeFileSync(path, `transactionId,amount,reason\n${Array.from({ length: count }, (_, i) => `${from + i},1.00,customer_request`).join("\n")}\n`)
  return path
}
const exiromStats = async (): Promise<ExiromStats> => (await (await fetch(`${sandboxes.url("exirom")}/__sandbox/stats`)).json()) as ExiromStats
const performed = (stats: ExiromStats, from: number, count: number) =>
  Object.entries(stats.refundsPerTransaction).filter(([id]) => Number(id) >= from && Number(id) < from + count)
const exited = (child: ReturnType<typeof start>) => {
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })))
}
const until = async (ready: () => boolean) => {
  const deadline = Date.now() + 60_000
  while (!ready()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((r) => setTimeout(r, 5))
  }
}

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

describe("refundkit as an operator runs it", () => {
  it("bulk: a file that grows while it is read is reported, its new rows are not sent, and the run does not exit 0", async () => {
    const from = 9_100_001
    const file = exiromCsv("grow.csv", from, 3000)
    const out = join(dir, "grow.results.jsonl")
    const child = start(["bulk", file, "--provider", "exirom", "--out", out, "--ledger", join(dir, "grow.db"), "--json"], { cwd: dir, env: env() })
    const done = exited(child)
    await until(() => existsSync(out))
    // An export still being written: rows arrive after the validation pass counted 3,000.
    appendFileSync(file, Array.from({ length: 200 }, (_, i) => `${from + 3000 + i},1.00,customer_request\n`).join(""))
    const result = await done
    assert.strictEqual(result.code, 1, result.stderr)
    assert.include(result.stderr, "changed while it was being processed")
    assert.strictEqual(jsonLines<Row>(readFileSync(out, "utf8")).length, 3000)
    assert.deepStrictEqual(performed(await exiromStats(), from + 3000, 200), [], "rows never validated were not sent")
  })

  it("bulk: a results file that cannot be written stops the run cleanly: no crash, no refund left requested, the re-run finishes", async () => {
    const from = 9_200_001
    const file = exiromCsv("full.csv", from, 60)
    const ledger = join(dir, "full.db")
    await fault(sandboxes.url("exirom"), { fault: { _tag: "Latency", millis: 100 }, route: "refund", times: 0 })
    const full = await run(["bulk", file, "--provider", "exirom", "--concurrency", "4", "--out", "/dev/full", "--ledger", ledger], { cwd: dir, env: env() })
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(full.code, 1, full.stderr)
    assert.notInclude(full.stderr, "Please report")
    assert.include(full.stderr, "--out: cannot write the results file /dev/full")
    const requested = await run(["list", "--status", "requested", "--json", "--ledger", ledger], { cwd: dir, env: env() })
    assert.deepStrictEqual((JSON.parse(requested.stdout) as { items: Array<unknown> }).items, [], "calls in flight finished and were recorded")
    const again = await run(["bulk", file, "--provider", "exirom", "--ledger", ledger], { cwd: dir, env: env() })
    assert.strictEqual(again.code, 0, again.stderr)
    assert.isTrue(performed(await exiromStats(), from, 60).every(([, n]) => n === 1))
  })

  it("bulk: --out naming the input file is refused before anything is read or sent", async () => {
    const file = exiromCsv("self.csv", 9_300_001, 20)
    const size = statSync(file).size
    const result = await run(["bulk", file, "--provider", "exirom", "--out", file, "--ledger", join(dir, "self.db")], { cwd: dir, env: env() })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.include(result.stderr, "--out")
    assert.strictEqual(statSync(file).size, size)
  })

  it("bulk: a plain re-run after --retry-failed resent a row shows its resend, not the failed first attempt", async () => {
    const exirom = sandboxes.url("exirom")
    const file = exiromCsv("chain.csv", 9_400_001, 2)
    const args = ["bulk", file, "--provider", "exirom", "--ledger", join(dir, "chain.db")]
    await fault(exirom, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 0 })
    assert.strictEqual((await run(args, { cwd: dir, env: env() })).code, 1)
    await clearFaults(exirom)
    assert.strictEqual((await run([...args, "--retry-failed"], { cwd: dir, env: env() })).code, 0)
    const plain = await run(args, { cwd: dir, env: env() })
    assert.strictEqual(plain.code, 0, plain.stderr)
    const results = jsonLines<Row>(readFileSync(`${file}.results.jsonl`, "utf8"))
    assert.deepStrictEqual(results.map((r) => [r.outcome, r.retry, r.replayed]), [["ok", 1, true], ["ok", 1, true]])
  })

  it("bulk: Ctrl-C during the validation pass exits 130, not 0", async () => {
    const path = join(dir, "slow.csv")
    // Every row invalid, so the validation pass prints as it goes (a sign it has started) and takes a while.
    writeFileSync(path, `transactionId,amount,reason\n${"0,1.00,customer_request\n".repeat(300_000)}`)
    const child = start(["bulk", path, "--provider", "exirom", "--ledger", join(dir, "slow.db")], { cwd: dir, env: env() })
    const done = exited(child)
    let seen = ""
    child.stderr!.on("data", (d: Buffer) => (seen += d.toString()))
    await until(() => seen.includes("row 1 (line 2)"))
    child.kill("SIGINT")
    const result = await done
    assert.strictEqual(result.code, 130, result.stderr.slice(-500))
  })

  it("create: Ctrl-C while the provider call is out exits 130 with a sentence, not 0 with nothing", async () => {
    await fault(sandboxes.url("exirom"), { fault: { _tag: "Latency", millis: 5_000 }, route: "refund", times: 1 })
    const child = start(["create", "exirom", "--json", "--ledger", join(dir, "create.db"), "--idempotency-key", "ctrl-c", "--data", '{"transactionId":9500001,"amount":"1.00","reason":"customer_request"}'], {
      cwd: dir,
      env: env()
    })
    const done = exited(child)
    const before = (await (await fetch(`${sandboxes.url("exirom")}/__sandbox/stats`)).json()) as { requests: Record<string, number> }
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const now = (await (await fetch(`${sandboxes.url("exirom")}/__sandbox/stats`)).json()) as { requests: Record<string, number> }
      if ((now.requests["refund"] ?? 0) > (before.requests["refund"] ?? 0)) break
      await new Promise((r) => setTimeout(r, 20))
    }
    child.kill("SIGINT")
    const result = await done
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(result.code, 130, result.stderr)
    assert.strictEqual((JSON.parse(result.stdout) as { error: { code: string } }).error.code, "interrupted")
  })

  it("create: the same --field twice is refused, not the last one silently kept", async () => {
    const result = await run(["create", "exirom", "--ledger", join(dir, "fields.db"), "-f", "transactionId=9600001", "-f", "amount=1.00", "-f", "amount=9.00", "-f", "reason=customer_request", "--json"], {
      cwd: dir,
      env: env()
    })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.deepStrictEqual((JSON.parse(result.stdout) as { error: { issues: Array<{ path: string }> } }).error.issues.map((i) => i.path), ["amount"])
  })

  it("list: an unknown provider is an error, not an empty page", async () => {
    const result = await run(["list", "--provider", "nope", "--json", "--ledger", join(dir, "list.db")], { cwd: dir, env: env() })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.strictEqual((JSON.parse(result.stdout) as { error: { code: string } }).error.code, "unknown_provider")
    // An installed plugin with no settings in this shell still lists its refunds.
    const unconfigured = await run(["list", "--provider", "exirom", "--json", "--ledger", join(dir, "list.db")], { cwd: dir })
    assert.strictEqual(unconfigured.code, 0, unconfigured.stderr)
  })

  it("list: a --cursor the ledger did not give is refused as that flag, not as a refund request 'not sent'", async () => {
    const result = await run(["list", "--cursor", "garbage", "--json", "--ledger", join(dir, "list.db")], { cwd: dir })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.include(result.stderr, "error: --cursor: is not a cursor of this list: pass the nextCursor of its previous page, asked with the same creation bounds (or none).")
    assert.notMatch(result.stderr, /refund request|was not sent|send it again/)
    assert.strictEqual((JSON.parse(result.stdout) as { error: { code: string } }).error.code, "usage_error")
  })

  it("a flag the parser refuses still gives --json its error object on stdout", async () => {
    for (const args of [["list", "--status", "bogus", "--json"], ["list", "--limit", "abc", "--json"], ["get", "--json"]]) {
      const result = await run(args, { cwd: dir })
      assert.strictEqual(result.code, 2, result.stderr)
      assert.strictEqual((JSON.parse(result.stdout) as { error: { code: string } }).error.code, "usage_error", args.join(" "))
    }
  })

  it("an invalid REFUNDKIT_SANDBOX is refused, not read as off: nothing reaches the providers configured", async () => {
    const before = (await exiromStats()).refundsPerTransaction["9700001"] ?? 0
    const result = await run(["create", "exirom", "--json", "--ledger", ":memory:", "--idempotency-key", "sandbox-typo", "--data", '{"transactionId":9700001,"amount":"1.00","reason":"customer_request"}'], {
      cwd: dir,
      env: { ...env(), REFUNDKIT_SANDBOX: "True" }
    })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.include(result.stderr, "REFUNDKIT_SANDBOX")
    assert.strictEqual((await exiromStats()).refundsPerTransaction["9700001"] ?? 0, before)
  })

  it("a setting Effect cannot read is named with its rule, not as Effect's '(Invalid data at ...)'", async () => {
    const result = await run(["list", "--ledger", join(dir, "list.db")], { cwd: dir, env: { REFUNDKIT_CALL_TIMEOUT: "5" } })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.strictEqual(result.stderr.trim(), `error: Configuration problem in REFUNDKIT_CALL_TIMEOUT: must be a duration with its unit, such as "30 seconds" or "500 millis", got "5".`)
  })

  it("a --ledger the ledger refuses is named as the flag, not as REFUNDKIT_LEDGER", async () => {
    const result = await run(["list", "--ledger", "mysql://db.example/refunds"], { cwd: dir, env: env() })
    assert.strictEqual(result.code, 2, result.stderr)
    assert.include(result.stderr, "in --ledger:")
    assert.notInclude(result.stderr, "REFUNDKIT_LEDGER")
  })

  for (const inline of [false, true]) it(`bulk: the command echoed after Ctrl-C does not print the ledger URL's password (${inline ? "--ledger=<url>" : "--ledger <url>"})`, async () => {
    // The local server trusts 127.0.0.1, so a password in the URL is carried but not needed; a schema of its own.
    const url = new URL(process.env["REFUNDKIT_TEST_PG_URL"] ?? "postgres://postgres@127.0.0.1:5432/test")
    const password = "pw-7f3c9e-never-printed"
    url.password = password
    const schema = `cli_${randomBytes(6).toString("hex")}`
    const admin = new pg.Client({ connectionString: url.toString() })
    await admin.connect()
    await admin.query(`CREATE SCHEMA ${schema}`)
    url.searchParams.set("options", `-c search_path=${schema}`)
    const file = exiromCsv(`pg-${inline}.csv`, 9_800_001 + Math.floor(Math.random() * 1000) * 200, 200)
    const out = join(dir, `pg-${inline}.results.jsonl`)
    await fault(sandboxes.url("exirom"), { fault: { _tag: "Latency", millis: 200 }, route: "refund", times: 0 })
    const child = start(["bulk", file, "--provider", "exirom", "--concurrency", "2", "--out", out, ...(inline ? [`--ledger=${url.toString()}`] : ["--ledger", url.toString()])], { cwd: dir, env: env() })
    const done = exited(child)
    await until(() => existsSync(out) && readFileSync(out, "utf8").split("\n").length > 5)
    child.kill("SIGINT")
    const result = await done
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(result.code, 130, result.stderr)
    assert.include(result.stderr, "run the same command again")
    assert.notInclude(result.stderr + result.stdout, password)
    assert.include(result.stderr, "postgres://postgres:***@")
    await admin.query(`DROP SCHEMA ${schema} CASCADE`).finally(() => admin.end())
  })
})
