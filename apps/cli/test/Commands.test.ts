import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { clearFaults, fault, run, start, startSandboxes, stats, tempDir } from "./support.js"

type Refund = { id: string; provider: string; status: string; providerStatus?: string; idempotencyKey: string }
type ErrorBody = { error: { code: string; message: string; issues?: Array<{ path: string; message: string }>; refundId?: string } }

let sandboxes: Awaited<ReturnType<typeof startSandboxes>>
let dir: string
const ledger = () => join(dir, "ledger.db")
// The CLI talks to sandboxes in another process, so the tests can inject faults and read counts.
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => run([...args, "--ledger", ledger()], { cwd: dir, env: { ...sandboxes.info.env, ...env } })
const exirom = (body: Record<string, unknown>) => JSON.stringify({ reason: "customer_request", ...body })

/**
 * Waits until Exirom's sandbox has settled a refund the last command created. It settles one 200 ms
 * after taking it, by the wall clock it shares with this process; nothing outside it shows the moment.
 * The refund exists (the create returned) and a timer never fires early, so however loaded the
 * machine, 500 ms from here is past it: this wait cannot end too soon, only late.
 */
const settled = () => new Promise((resolve) => setTimeout(resolve, 500))

beforeAll(async () => {
  sandboxes = await startSandboxes()
  dir = tempDir()
})
afterAll(() => sandboxes?.stop())

describe("refundkit (everything but bulk)", () => {
  it("answers --version with the package version", async () => {
    const result = await run(["--version"])
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    assert.strictEqual(result.code, 0)
    assert.strictEqual(result.stdout.trim(), pkg.version)
  })

  it("has --help with an example for every command, even with no settings at all", async () => {
    const commands = ["providers", "create", "get", "list", "sync", "update", "bulk", "reconcile", "sandbox", "serve"]
    for (const batch of [commands.slice(0, 5), commands.slice(5)]) {
      const results = await Promise.all(batch.map((command) => run([command, "--help"])))
      for (const [i, result] of results.entries()) {
        assert.strictEqual(result.code, 0, `${batch[i]} --help: ${result.stderr}`)
        assert.include(result.stdout, "Example: refundkit", batch[i])
        // On a pipe: no ANSI escapes, and the usage line is what one types.
        assert.notMatch(result.stdout, /\x1b\[/, batch[i])
        assert.include(result.stdout, `\n$ refundkit ${batch[i]} `, batch[i])
      }
    }
    // FORCE_COLOR keeps the styling on a pipe; NO_COLOR does not override it (force wins).
    const forced = await run(["list", "--help"], { env: { FORCE_COLOR: "1", NO_COLOR: "1" } })
    assert.match(forced.stdout, /\x1b\[[0-9;]*mrefundkit/)
    assert.include(forced.stdout, "\n$ refundkit list ")
  })

  it("exits 2 on usage errors and sends nothing", async () => {
    const before = await stats(sandboxes.url("exirom"))
    assert.strictEqual((await cli(["refund-everything"])).code, 2)
    assert.strictEqual((await cli(["create", "exirom"])).code, 2, "--data is required")
    const notJson = await cli(["create", "exirom", "--data", "{oops"])
    assert.strictEqual(notJson.code, 2)
    assert.include(notJson.stderr, "--data: is not valid JSON")
    // A flag's value is refused naming the flag and its rule, not as "'abc' is not a integer".
    const [limit, status] = await Promise.all([cli(["list", "--limit", "abc"]), cli(["list", "--status", "done"])])
    assert.strictEqual(limit.code, 2)
    assert.include(limit.stderr, '--limit: must be a whole number, got "abc"')
    assert.strictEqual(status.code, 2)
    assert.include(status.stderr, '--status: must be one of requested, pending, requires_action, succeeded, failed, unknown, got "done"')
    const unknown = await cli(["create", "paypal", "--json", "--data", "{}"])
    assert.strictEqual(unknown.code, 2)
    assert.strictEqual((JSON.parse(unknown.stdout) as ErrorBody).error.code, "unknown_provider")
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before.requests)
  })

  it("a flag the parser refuses is an error: line naming the flag and its rule, not \"Received unknown argument\"", async () => {
    const statuses = "one of requested, pending, requires_action, succeeded, failed, unknown"
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      // An optional flag at the end of the line, its value missing: the parser left it over as an unknown word.
      [["list", "--status"], `error: --status: needs a value (${statuses})`],
      [["resolve", "rfd_00000000000000000000000000", "--status"], "error: --status: needs a value (one of succeeded, failed)"],
      [["list", "--limit"], "error: --limit: needs a value (a whole number)"],
      [["list", "--log-level", "verbose"], "error: --log-level: must be one of all, trace, debug, info, warning, error, fatal, none, got \"verbose\""],
      [["list", "--status", "done"], `error: --status: must be ${statuses}, got "done"`],
      [["list", "--bogus"], "error: --bogus: is not an option of refundkit list; `refundkit list --help` lists what it takes"]
    ]
    const results = await Promise.all(cases.map(([args]) => run(args, { cwd: dir })))
    for (const [i, result] of results.entries()) {
      const [args, line] = cases[i]!
      assert.strictEqual(result.code, 2, args.join(" "))
      assert.strictEqual(result.stderr.trim(), line, args.join(" "))
    }
    const json = await run(["--json", "list", "--status"], { cwd: dir })
    assert.strictEqual(json.code, 2)
    assert.deepStrictEqual(JSON.parse(json.stdout), { error: { code: "usage_error", message: `--status: needs a value (${statuses})` } })
  })

  it("a flag that takes a value and is given none is refused naming it, wherever it stands, and nothing is sent", async () => {
    const before = (await stats(sandboxes.url("exirom"))).requests
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      // Before the command the parser found no command ("Invalid subcommand"); after `get` it took the flag for the id.
      [["--ledger=", "list"], "error: --ledger: needs a value"],
      [["list", "--ledger="], "error: --ledger: needs a value"],
      [["get", "--ledger="], "error: --ledger: needs a value"],
      [["bulk", "--ledger="], "error: --ledger: needs a value"],
      // A repeated option at the end was dropped, and create said "--data: a request is required".
      [["create", "--provider", "exirom", "-f"], "error: --field: needs a value (path=value)"],
      [["create", "exirom", "-f", "amount=1.00", "--field"], "error: --field: needs a value (path=value)"],
      // Followed by another flag, the parser took that flag for the value.
      [["create", "exirom", "--data", "--json"], "error: --data: needs a value"],
      [["create", "exirom", "-f", "--sandbox", "--data", "{}"], "error: --field: needs a value (path=value)"],
      [["create", "exirom", "--data", "{}", "--idempotency-key="], "error: --idempotency-key: needs a value"],
      [["list", "--status", "--json"], "error: --status: needs a value (one of requested, pending, requires_action, succeeded, failed, unknown)"],
      [["--log-level=", "list"], "error: --log-level: needs a value (one of all, trace, debug, info, warning, error, fatal, none)"]
    ]
    const results = await Promise.all(cases.map(([args]) => run(args, { cwd: dir, env: sandboxes.info.env })))
    for (const [i, result] of results.entries()) {
      const [args, line] = cases[i]!
      assert.strictEqual(result.code, 2, args.join(" "))
      assert.strictEqual(result.stderr.trim(), line, args.join(" "))
    }
    const json = await run(["create", "exirom", "--json", "-f"], { cwd: dir })
    assert.strictEqual(json.code, 2)
    assert.deepStrictEqual(JSON.parse(json.stdout), { error: { code: "usage_error", message: "--field: needs a value (path=value)" } })
    // A value that only starts with a dash is the flag's own to judge.
    const negative = await run(["list", "--limit", "-5"], { cwd: dir })
    assert.strictEqual(negative.code, 2)
    assert.include(negative.stderr, "--limit: must be between 1 and 1000, got -5")
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before)
  })

  it("an empty --ledger or REFUNDKIT_LEDGER is refused naming it, not taken for ./.refundkit/ledger.db; nothing is sent", async () => {
    const bare = tempDir()
    const before = (await stats(sandboxes.url("exirom"))).requests
    const data = exirom({ transactionId: 12345, amount: "1.00" })
    const flag = await run(["create", "exirom", "--ledger", "", "--data", data], { cwd: bare, env: sandboxes.info.env })
    assert.strictEqual(flag.code, 2, flag.stderr)
    assert.include(flag.stderr, "error: --ledger: is empty; give a SQLite file path, :memory: or a postgres:// URL")
    const inline = await run(["list", "--ledger="], { cwd: bare })
    assert.strictEqual(inline.code, 2, inline.stderr)
    assert.strictEqual(inline.stderr.trim(), "error: --ledger: needs a value")
    const variable = await run(["create", "exirom", "--data", data], { cwd: bare, env: { ...sandboxes.info.env, REFUNDKIT_LEDGER: "" } })
    assert.strictEqual(variable.code, 2, variable.stderr)
    assert.include(variable.stderr, "error: Configuration problem in REFUNDKIT_LEDGER: is empty;")
    assert.isFalse(existsSync(join(bare, ".refundkit")), "no ledger was made in the working directory")
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before)
  })

  it("names every installed provider when refusing an unknown id in a shell with no provider settings", async () => {
    // No sandbox env: every plugin is installed but unconfigured, and the error said "Installed providers: none".
    const bare = tempDir()
    for (const args of [["create", "paypal", "--data", "{}"], ["list", "--provider", "paypal"]]) {
      const result = await run([...args, "--json", "--ledger", join(bare, "ledger.db")], { cwd: bare })
      assert.strictEqual(result.code, 2, result.stderr)
      const body = JSON.parse(result.stdout) as ErrorBody
      assert.strictEqual(body.error.code, "unknown_provider")
      assert.include(body.error.message, "Installed providers: aerohub, airalo, airpay, exirom.", args.join(" "))
    }
  })

  it("lists the installed providers with their capabilities", async () => {
    const result = await cli(["providers", "--json"])
    assert.strictEqual(result.code, 0, result.stderr)
    const body = JSON.parse(result.stdout) as { providers: Array<{ id: string; capabilities: { maxTargetsPerCall: number; statusQuery: boolean } }> }
    const ids = body.providers.map((p) => p.id)
    for (const id of ["airalo", "airpay", "exirom"]) assert.include(ids, id)
    assert.isAbove(body.providers.find((p) => p.id === "airpay")!.capabilities.maxTargetsPerCall, 1)
    assert.isTrue(body.providers.find((p) => p.id === "exirom")!.capabilities.statusQuery)
    const bare = await run(["providers"], { cwd: dir })
    assert.strictEqual(bare.code, 0)
    assert.include(bare.stdout, "not configured")
    // Airalo's 5 minutes and the guard the sandbox's clock needs, in words: "1 per 305000 ms" had to be worked out.
    const text = await cli(["providers"])
    assert.include(text.stdout, "rate limit 1 call per 5m 5s", text.stdout)
    // `providers` checks a setup, so a setting every other command refuses is refused here too.
    const unitless = await cli(["providers"], { REFUNDKIT_CALL_TIMEOUT: "5" })
    assert.strictEqual(unitless.code, 2, unitless.stdout)
    assert.include(unitless.stderr, "REFUNDKIT_CALL_TIMEOUT: must be a duration with its unit")
  })

  it("creates a refund, replays it for the same key, and finds it with get and list", async () => {
    const data = exirom({ transactionId: 12345, amount: "10.00" })
    const first = await cli(["create", "exirom", "--json", "--idempotency-key", "order-1", "--data", data])
    assert.strictEqual(first.code, 0, first.stderr)
    const refund = JSON.parse(first.stdout) as Refund
    assert.match(refund.id, /^rfd_[0-9a-z]{26}$/)
    assert.strictEqual(refund.provider, "exirom")
    assert.oneOf(refund.status, ["pending", "succeeded"])
    assert.isString(refund.providerStatus)
    const performed = (await stats(sandboxes.url("exirom"))).refundsPerformed

    const again = await cli(["create", "exirom", "--json", "--idempotency-key", "order-1", "--data", data])
    assert.strictEqual(again.code, 0)
    assert.strictEqual((JSON.parse(again.stdout) as Refund).id, refund.id)
    assert.strictEqual((await stats(sandboxes.url("exirom"))).refundsPerformed, performed, "a replay refunds nothing")

    const got = await cli(["get", refund.id, "--json"])
    assert.strictEqual(got.code, 0)
    assert.strictEqual((JSON.parse(got.stdout) as Refund).idempotencyKey, "order-1")
    const listed = await cli(["list", "--provider", "exirom", "--json"])
    assert.include((JSON.parse(listed.stdout) as { items: Array<Refund> }).items.map((r) => r.id), refund.id)
    const human = await cli(["get", refund.id])
    assert.include(human.stdout, refund.id)
    // The human list is a table with a header row naming its columns.
    const table = (await cli(["list", "--provider", "exirom"])).stdout.split("\n")
    assert.match(table[0] ?? "", /^ID +PROVIDER +STATUS +PROVIDER STATUS +AMOUNT +CREATED$/)
    assert.isTrue(table.slice(1).some((line) => line.startsWith(`${refund.id}  exirom`)), table.join("\n"))

    // Field by field, typed by the provider's schema: the id becomes a number, the amount stays exact text.
    const generated = await cli(["create", "exirom", "-f", "transactionId=12345", "-f", "amount=1.00", "-f", "reason=duplicate", "-f", "metadata.order=42"])
    assert.strictEqual(generated.code, 0, generated.stderr)
    const key = /idempotency key: (cli_[0-9a-f-]{36}) \(generated/.exec(generated.stderr)?.[1]
    assert.isString(key)
    assert.include(
      generated.stderr,
      `(generated; if this command is cut short or you cannot tell whether it finished, run it again with --idempotency-key ${key}: that shows this refund's outcome and never sends it twice)`
    )
    const stored = await cli(["list", "--json", "--limit", "1"])
    const [latest] = (JSON.parse(stored.stdout) as { items: Array<Refund & { request: unknown }> }).items
    assert.strictEqual(latest!.idempotencyKey, key)
    assert.deepStrictEqual(latest!.request, { transactionId: 12345, amount: "1.00", reason: "duplicate", metadata: { order: "42" } })

    // What was refunded against transaction 12345, newest first; a target needs its provider.
    const byTarget = await cli(["list", "--provider", "exirom", "--target", "12345", "--json"])
    assert.strictEqual(byTarget.code, 0, byTarget.stderr)
    assert.deepStrictEqual((JSON.parse(byTarget.stdout) as { items: Array<Refund> }).items.map((r) => r.idempotencyKey).slice(0, 2), [key, "order-1"])
    const noProvider = await cli(["list", "--target", "12345"])
    assert.strictEqual(noProvider.code, 2)
    assert.include(noProvider.stderr, "--target: needs --provider")
  })

  it("refuses an invalid request with the gateway's error object, exit 2, nothing sent", async () => {
    const before = (await stats(sandboxes.url("exirom"))).requests
    const result = await cli(["create", "exirom", "--json", "--data", exirom({ transactionId: 12345, amount: "10.005" })])
    assert.strictEqual(result.code, 2)
    const body = JSON.parse(result.stdout) as ErrorBody
    assert.strictEqual(body.error.code, "invalid_request")
    assert.deepStrictEqual(body.error.issues?.map((i) => i.path), ["amount"])
    assert.include(result.stderr, "amount")
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before)
    // Refused before a key is generated: no "retry with this key" for a request that was never sent.
    const human = await cli(["create", "exirom", "--data", exirom({ transactionId: 12345, amount: "10.005" })])
    assert.strictEqual(human.code, 2)
    assert.include(human.stderr, "amount: must have at most 2 decimal places")
    assert.notInclude(human.stderr, "idempotency key")
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, before)
    const missing = await cli(["get", "rfd_00000000000000000000000000", "--json"])
    assert.strictEqual(missing.code, 2)
    assert.strictEqual((JSON.parse(missing.stdout) as ErrorBody).error.code, "refund_not_found")
  })

  it("serve: a missing setting is exit 2 and the CLI's configuration error, a flag the gateway refuses a usage error", async () => {
    const bare = tempDir()
    const missing = await run(["serve"], { cwd: bare })
    assert.strictEqual(missing.code, 2, missing.stderr)
    assert.strictEqual(
      missing.stderr.trim(),
      "error: Configuration problem in REFUNDKIT_API_KEYS: no API keys: set REFUNDKIT_API_KEYS to one or more comma separated keys, or run with --sandbox (REFUNDKIT_SANDBOX=1)."
    )
    const json = await run(["serve", "--json"], { cwd: bare })
    assert.strictEqual(json.code, 2, json.stderr)
    assert.strictEqual((JSON.parse(json.stdout) as ErrorBody).error.code, "configuration_error")
    // A setting the gateway reads and refuses is the same kind of problem.
    const invalid = await run(["serve", "--sandbox", "--ledger", ":memory:"], { cwd: bare, env: { REFUNDKIT_SHUTDOWN_GRACE: "5" } })
    assert.strictEqual(invalid.code, 2, invalid.stderr)
    assert.match(invalid.stderr.trim(), /^error: Configuration problem in REFUNDKIT_SHUTDOWN_GRACE: /)
    const port = await run(["serve", "--port", "70000"], { cwd: bare, env: { REFUNDKIT_API_KEYS: "k" } })
    assert.strictEqual(port.code, 2, port.stderr)
    assert.strictEqual(port.stderr.trim(), "error: --port must be a port number from 0 to 65535, got \"70000\"")
    assert.notInclude(missing.stderr + invalid.stderr + port.stderr, "refundkit-server")
  })

  it("create: the generated key's note and a refusal's error do not contradict each other", async () => {
    // Exirom says it did nothing and names its wait: the refund is recorded failed, final under its key.
    await fault(sandboxes.url("exirom"), { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 1 }, route: "refund", times: 0 })
    const refused = await cli(["create", "exirom", "--data", exirom({ transactionId: 12345, amount: "1.00" })], { REFUNDKIT_MAX_RETRIES: "0" })
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(refused.code, 1, refused.stderr)
    const note = refused.stderr.split("\n").find((line) => line.startsWith("idempotency key: ")) ?? ""
    // The note is for a run whose end was not seen; it no longer offers the key "to retry this refund".
    assert.include(note, "if this command is cut short or you cannot tell whether it finished, run it again with --idempotency-key")
    assert.notMatch(note, /retry/)
    assert.include(refused.stderr, "is recorded failed, which is final: a retry under the same idempotency key replays this answer, and a new attempt needs a new key (exirom asked to wait 1 s first).")
    assert.notInclude(refused.stderr, "Retry after")
  })

  it("create: a same-key re-run after a 502 prints that error again, with its exit code, until the refund moves on", async () => {
    // Exirom answers 502: the refund may have been made, so it is kept unknown and the create ends in doubt (exit 3).
    const data = exirom({ transactionId: 12345, amount: "1.00" })
    const create = (json: boolean) =>
      cli(["create", "exirom", ...(json ? ["--json"] : []), "--idempotency-key", "replay-502", "--data", data], { REFUNDKIT_MAX_RETRIES: "0" })
    await fault(sandboxes.url("exirom"), { fault: { _tag: "ServerError", status: 502 }, route: "refund", times: 0 })
    const first = await create(true)
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(first.code, 3, first.stderr)
    const answer = JSON.parse(first.stdout) as ErrorBody
    assert.strictEqual(answer.error.code, "provider_unavailable")
    const id = answer.error.refundId!
    const sent = (await stats(sandboxes.url("exirom"))).requests

    // The same answer, not the refund: a script reading --json gets one shape from both runs.
    const note = `Replay of idempotency key replay-502 (refund ${id}): its first run ended with the error below`
    const again = await create(true)
    assert.strictEqual(again.code, 3, again.stderr)
    assert.deepStrictEqual(JSON.parse(again.stdout), answer)
    assert.include(again.stderr, note)
    assert.include(again.stderr, `error: ${answer.error.message}`)
    const human = await create(false)
    assert.strictEqual(human.code, 3, human.stderr)
    assert.strictEqual(human.stdout, "")
    assert.deepStrictEqual(human.stderr.trim().split("\n"), [
      `${note}, and the refund is still unknown, as that left it; nothing was sent again.`,
      `error: ${answer.error.message}`,
      `See the refund with: refundkit get ${id}`
    ])
    assert.deepStrictEqual((await stats(sandboxes.url("exirom"))).requests, sent, "a replay sends nothing")

    // Once a sync has settled it, the re-run shows the refund as it is now.
    const synced = await cli(["sync", id, "--json"])
    assert.strictEqual(synced.code, 0, synced.stderr)
    const now = JSON.parse(synced.stdout) as Refund
    assert.notStrictEqual(now.status, "unknown")
    const after = await create(true)
    assert.strictEqual(after.code, 0, after.stderr)
    assert.strictEqual((JSON.parse(after.stdout) as Refund).id, id)
    assert.strictEqual((JSON.parse(after.stdout) as Refund).status, now.status)
    assert.notInclude(after.stderr, "Replay of idempotency key")
  })

  it("create: a same-key re-run after a refusal recorded failed prints that error again and exits 1", async () => {
    await fault(sandboxes.url("exirom"), { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 1 }, route: "refund", times: 0 })
    const create = () => cli(["create", "exirom", "--json", "--idempotency-key", "replay-503", "--data", exirom({ transactionId: 12345, amount: "1.00" })], { REFUNDKIT_MAX_RETRIES: "0" })
    const first = await create()
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(first.code, 1, first.stderr)
    const again = await create()
    assert.strictEqual(again.code, 1, again.stderr)
    assert.deepStrictEqual(JSON.parse(again.stdout), JSON.parse(first.stdout))
    assert.include(again.stderr, "and the refund is still failed, as that left it; nothing was sent again.")
  })

  it("shows a declined refund as failed with exit 0 after sync", async () => {
    const created = await cli(["create", "exirom", "--json", "--data", exirom({ transactionId: 30003, amount: "5.00" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    await settled()
    const synced = await cli(["sync", id, "--json"])
    assert.strictEqual(synced.code, 0, synced.stderr)
    assert.strictEqual((JSON.parse(synced.stdout) as Refund).status, "failed")
  })

  it("sync of a refund at a provider with no status query: exit 2, the provider's advice naming this refund's own resolve command", async () => {
    const created = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 1_400_001, amount: "1.00" }] })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    const synced = await cli(["sync", id, "--json"])
    assert.strictEqual(synced.code, 2, synced.stderr)
    const { error } = JSON.parse(synced.stdout) as { error: { code: string; message: string; refundId?: string } }
    assert.deepInclude(error, { code: "unsupported_operation", refundId: id })
    assert.include(error.message, `record what you find with \`refundkit resolve ${id} --status succeeded|failed --note ...\`; `)
    assert.notInclude(error.message, "<id>")
    assert.notInclude(error.message, "Refunds.resolve", "library words are not the CLI's")
  })

  it("a sync whose status answer does not parse exits 1 and leaves the refund as it was, not in doubt", async () => {
    const created = await cli(["create", "exirom", "--json", "--data", exirom({ transactionId: 12345, amount: "1.00" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const refund = JSON.parse(created.stdout) as Refund
    await fault(sandboxes.url("exirom"), { fault: { _tag: "SchemaViolation" }, route: "info", times: 1 })
    const synced = await cli(["sync", refund.id, "--json"])
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(synced.code, 1, synced.stdout + synced.stderr)
    const body = JSON.parse(synced.stdout) as ErrorBody
    assert.strictEqual(body.error.code, "unexpected_response")
    assert.notInclude(body.error.message, "kept as \"unknown\"")
    const after = await cli(["get", refund.id, "--json"])
    assert.strictEqual((JSON.parse(after.stdout) as Refund).status, refund.status)
  })

  it("exits 3 when the outcome is unknown, and 1 on a provider or ledger failure", async () => {
    const airpay = sandboxes.url("airpay")
    await fault(airpay, { fault: { _tag: "LostResponse" }, route: "refund", times: 1 })
    const lost = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 1100001, amount: "10.00" }] })])
    await clearFaults(airpay)
    assert.strictEqual(lost.code, 3, lost.stderr)
    const body = JSON.parse(lost.stdout) as ErrorBody
    assert.oneOf(body.error.code, ["outcome_unknown", "provider_unavailable"])
    const inDoubt = await cli(["get", body.error.refundId!, "--json"])
    assert.strictEqual((JSON.parse(inDoubt.stdout) as Refund).status, "unknown")

    const auth = await cli(["create", "airpay", "--json", "--data", JSON.stringify({ transactions: [{ ap_transactionid: 1100002, amount: "10.00" }] })], {
      REFUNDKIT_AIRPAY_PASSWORD: "not-the-password"
    })
    assert.strictEqual(auth.code, 1, auth.stderr)
    assert.notInclude(auth.stdout + auth.stderr, "not-the-password")

    writeFileSync(join(dir, "not-a-dir"), "")
    const ledgerDown = await run(["list", "--json", "--ledger", join(dir, "not-a-dir", "ledger.db")], { cwd: dir })
    assert.strictEqual(ledgerDown.code, 1)
    assert.strictEqual((JSON.parse(ledgerDown.stdout) as ErrorBody).error.code, "ledger_error")
  })

  it("sends a provider follow-up with update", async () => {
    const order = { refundOrderNo: "FBRF2403117777", purchaseOrderNo: "F1745553257834617777" }
    const created = await cli(["create", "aerohub", "--json", "--data", JSON.stringify({ ...order, refundStatus: "PROCESSING" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id
    const updated = await cli(["update", id, "--json", "--data", JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })])
    assert.strictEqual(updated.code, 0, updated.stderr)
    assert.strictEqual((JSON.parse(updated.stdout) as Refund).providerStatus, "REFUNDED_PENDING")
    // A provider status longer than its column's 15 characters widens the column: the amounts and times stay in line.
    assert.strictEqual((await cli(["create", "exirom", "--data", exirom({ transactionId: 12345, amount: "1.00" })])).code, 0)
    const table = (await cli(["list"])).stdout.trimEnd().split("\n")
    const createdColumn = table.map((line) => line.search(/CREATED|\d{4}-\d\d-\d\dT/))
    assert.include(table.join("\n"), "REFUNDED_PENDING")
    assert.isAbove(table.length, 2)
    assert.deepStrictEqual(new Set(createdColumn).size, 1, table.join("\n"))
    // A JSON number a double cannot carry is refused naming its field, not rounded to 250.00 and sent.
    const sent = (await stats(sandboxes.url("aerohub"))).requests
    const inexact = await cli(["update", id, "--data", `{"refundOrderNo":"${order.refundOrderNo}","purchaseOrderNo":"${order.purchaseOrderNo}",` +
      `"refundStatus":"REFUNDED","refundAmount":[{"refundCost":250.000000000000001}]}`])
    assert.strictEqual(inexact.code, 2, inexact.stdout + inexact.stderr)
    assert.include(inexact.stderr, "refundAmount.0.refundCost")
    assert.include(inexact.stderr, "250.000000000000001")
    assert.deepStrictEqual((await stats(sandboxes.url("aerohub"))).requests, sent)
  })

  it("refuses a repeated CLOSED with another rejection than recorded, naming the field, and sends nothing", async () => {
    // Each command is a process of its own: what a repeat is checked against is read back from the ledger
    // file. Every field and state (REFUNDED's money, QUOTE_COMPLETED's pricing) is covered in
    // @refundkit/aerohub's and the gateway's tests; this is the CLI's part: the exit code and the message.
    const closed = { refundOrderNo: "FBRF2403118882", purchaseOrderNo: "F1745553257834618882" }
    const update = (id: string, body: object, json = false) => cli(["update", id, ...(json ? ["--json"] : []), "--data", JSON.stringify(body)])
    const created = await cli(["create", "aerohub", "--json", "--data", JSON.stringify({ ...closed, refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA1234" })])
    assert.strictEqual(created.code, 0, created.stderr)
    const id = (JSON.parse(created.stdout) as Refund).id

    // The same rejection is a replay, sent as before.
    const replay = await update(id, { ...closed, refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA1234" })
    assert.strictEqual(replay.code, 0, replay.stderr)
    const sent = (await stats(sandboxes.url("aerohub"))).requests
    const refused = await update(id, { ...closed, refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA9999" })
    assert.strictEqual(refused.code, 2, refused.stdout + refused.stderr)
    assert.include(refused.stderr, "flightNumber")
    assert.include(refused.stderr, "flightNumber CA1234")
    assert.include(refused.stderr, "it was not sent")
    const json = await update(id, { ...closed, refundStatus: "CLOSED", rejectReason: 4 }, true)
    assert.strictEqual(json.code, 2, json.stderr)
    const error = (JSON.parse(json.stdout) as ErrorBody).error
    assert.strictEqual(error.code, "invalid_request")
    assert.deepStrictEqual(error.issues?.map((i) => i.path), ["rejectReason"])
    assert.deepStrictEqual((await stats(sandboxes.url("aerohub"))).requests, sent, "no conflicting repeat reached AeroHub")
  })

  it("get shows a refund's history, and a reference kept as JSON (AeroHub's rejection, its quote) in words", async () => {
    const order = (n: number) => ({ refundOrderNo: `FBRF240311888${n}`, purchaseOrderNo: `F174555325783461888${n}` })
    const create = async (body: object) => {
      const created = await cli(["create", "aerohub", "--json", "--data", JSON.stringify(body)])
      assert.strictEqual(created.code, 0, created.stderr)
      return JSON.parse(created.stdout) as Refund & { events: Array<{ at: string }> }
    }
    const get = async (id: string) => {
      const got = await cli(["get", id])
      assert.strictEqual(got.code, 0, got.stderr)
      return got.stdout.trimEnd().split("\n")
    }
    // Closed without a reason: the rejection is an empty object, which printed as `rejection {}`.
    const bare = await create({ ...order(3), refundStatus: "CLOSED" })
    const bareLines = await get(bare.id)
    assert.include(bareLines, "  rejection         (no details given)")
    // The history is last, one line per event: when, who, from -> to (the provider's word), why.
    assert.deepStrictEqual(bareLines.slice(-3), [
      "  history",
      `    ${bare.events[0]!.at}  submit    requested`,
      `    ${bare.events[1]!.at}  submit    requested -> failed (CLOSED)`
    ])
    const reasoned = await create({ ...order(4), refundStatus: "CLOSED", rejectReason: 1, refundDate: "2026-12-01" })
    assert.include(await get(reasoned.id), "  rejection         rejectReason=1, refundDate=2026-12-01")
    // A quote is a list: one element a line, lined up.
    const quoted = await create({
      ...order(5),
      refundStatus: "QUOTE_COMPLETED",
      refundFeePricing: [
        { amount: "10.00", isRefundVoucher: 0, refundPolicyDetail: [{ ageType: 1, refundFeePolicy: "5.00" }] },
        { amount: "3.00", isRefundVoucher: 1, voucherCurrency: "USD" }
      ]
    })
    const quotedLines = await get(quoted.id)
    const at = quotedLines.findIndex((line) => line.startsWith("  refundFeePricing "))
    assert.deepStrictEqual(quotedLines.slice(at, at + 2), [
      "  refundFeePricing  amount=10.00, isRefundVoucher=0, refundPolicyDetail=[{ageType=1, refundFeePolicy=5.00}]",
      "                    amount=3.00, isRefundVoucher=1, voucherCurrency=USD"
    ])
    // --json is the gateway's refund, as before: the references as stored, the history as events.
    const json = JSON.parse((await cli(["get", bare.id, "--json"])).stdout) as Refund & { references: Record<string, string>; events: Array<unknown> }
    assert.strictEqual(json.references["rejection"], "{}")
    assert.deepStrictEqual(json.events, bare.events)
  })

  it("get shows an exirom refund's history with the sync that settled it, the advice for one in doubt last", async () => {
    await fault(sandboxes.url("exirom"), { fault: { _tag: "ServerError", status: 502 }, route: "refund", times: 0 })
    const first = await cli(["create", "exirom", "--json", "--data", exirom({ transactionId: 12345, amount: "1.00" })], { REFUNDKIT_MAX_RETRIES: "0" })
    await clearFaults(sandboxes.url("exirom"))
    assert.strictEqual(first.code, 3, first.stderr)
    const id = (JSON.parse(first.stdout) as ErrorBody).error.refundId!
    const unknown = (await cli(["get", id])).stdout.trimEnd().split("\n")
    assert.match(unknown.at(-2)!, /^ {4}\S+ {2}submit {4}requested -> unknown: exirom is unavailable: HTTP 502: /)
    assert.match(unknown.at(-1)!, /^ {2}The provider may or may not have made this refund/)
    assert.strictEqual((await cli(["sync", id])).code, 0)
    const synced = (await cli(["get", id])).stdout.trimEnd().split("\n")
    assert.match(synced.at(-1)!, /^ {4}\S+ {2}sync {6}unknown -> pending \(NEW\)$/)
  })

  it("reconciles pending and unknown refunds, field by field, and names what needs a person", async () => {
    const created = await cli(["create", "exirom", "--json", "--data", exirom({ transactionId: 20001, amount: "20.00" })])
    const id = (JSON.parse(created.stdout) as Refund).id
    await settled()
    const result = await cli(["reconcile", "--json"])
    assert.strictEqual(result.code, 3, `the airpay refund in doubt stays unknown: ${result.stderr}`)
    const report = JSON.parse(result.stdout) as {
      results: Array<{ refundId: string; provider: string; before: string; after: string; changes: Array<{ field: string; from: string | null; to: string | null }>; needsPerson?: string }>
    }
    const mine = report.results.find((r) => r.refundId === id)!
    assert.strictEqual(mine.after, "succeeded")
    assert.deepInclude(mine.changes, { field: "status", from: mine.before, to: "succeeded" })
    const airpay = report.results.find((r) => r.provider === "airpay")!
    assert.strictEqual(airpay.after, "unknown")
    assert.include(airpay.needsPerson ?? "", "no status query")
    // AeroHub hears of a refund's progress only from refundkit update; resolve would tell it nothing.
    const aerohub = report.results.find((r) => r.provider === "aerohub")!
    assert.include(aerohub.needsPerson ?? "", "refundkit update")
    assert.notInclude(aerohub.needsPerson ?? "", "resolve")

    const human = await cli(["reconcile", "--provider", "exirom"])
    assert.strictEqual(human.code, 0, human.stderr)
    assert.include(human.stdout, "checked")
  })

  it("serves the gateway with refundkit serve", async () => {
    const child = start(["serve", "--sandbox", "--port", "0", "--ledger", ":memory:"], { cwd: dir })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ""
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString()
          const found = /listening on (http:\/\/[0-9.:]+)/.exec(out)
          if (found) resolve(found[1]!)
        })
        child.on("exit", (code) => reject(new Error(`serve exited with ${code}`)))
      })
      const health = await fetch(`${url}/healthz`)
      assert.strictEqual(health.status, 200)
      // A gateway that cannot start for another reason than its settings (the port is taken) says why, exit 1,
      // with --json as an error object on stdout too.
      const refused = await run(["serve", "--json", "--sandbox", "--port", new URL(url).port, "--ledger", ":memory:"], { cwd: dir })
      assert.strictEqual(refused.code, 1, refused.stderr)
      const body = JSON.parse(refused.stdout) as ErrorBody
      assert.strictEqual(body.error.code, "startup_error")
      assert.include(body.error.message, "could not listen (EADDRINUSE)")
      assert.include(refused.stderr, "error: could not listen (EADDRINUSE)")
    } finally {
      child.kill("SIGINT")
    }
  })
})
