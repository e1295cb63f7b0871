import { assert, describe, it } from "@effect/vitest"
import { run } from "./support.js"

// The option lines of a page: from its OPTIONS header to the next blank line.
const section = (page: string, title: string) => {
  const lines = page.split("\n")
  const start = lines.indexOf(title)
  assert.isAtLeast(start, 0, `no ${title} section in:\n${page}`)
  const end = lines.indexOf("", start)
  return lines.slice(start + 1, end === -1 ? undefined : end)
}

// The text under one entry: its label line, then the indented lines of its description.
const entry = (lines: ReadonlyArray<string>, label: string) => {
  const at = lines.indexOf(`  ${label}`)
  assert.isAtLeast(at, 0, `no entry "${label}" in:\n${lines.join("\n")}`)
  const rest = lines.slice(at + 1)
  const end = rest.findIndex((line) => !line.startsWith("      "))
  return rest.slice(0, end === -1 ? undefined : end).map((line) => line.trim()).join(" ")
}

describe("refundkit --help", () => {
  it("lists each option of list once, with its placeholder, its description and no boilerplate, within 60 lines", async () => {
    const result = await run(["list", "--help"])
    assert.strictEqual(result.code, 0, result.stderr)
    const page = result.stdout
    for (const noise of ["A user-defined piece of text.", "A true or false value.", "This setting is optional.", "An integer."]) {
      assert.notInclude(page, noise)
    }
    const options = section(page, "OPTIONS")
    const expected: ReadonlyArray<readonly [string, string]> = [
      ["--json", "Print machine-readable JSON on stdout"],
      ["--ledger <text>", "The ledger: a SQLite file (default ./.refundkit/ledger.db)"],
      ["--sandbox", "Start every installed provider's sandbox"],
      ["--provider <text>", "Only this provider's refunds."],
      ["--status <requested|pending|requires_action|succeeded|failed|unknown>", "Only refunds in this status."],
      ["--target <text>", "Only refunds against this target"],
      ["--created-from <timestamp>", "Only refunds created at or after this instant: 2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00, or a date"],
      ["--created-to <timestamp>", "Only refunds created before this instant"],
      ["--limit <integer>", "At most this many refunds (1 to 1000; default 20)"],
      ["--cursor <text>", "Continue after a previous page (its nextCursor)."],
      ["--all", "Every matching refund"]
    ]
    for (const [label, description] of expected) assert.include(entry(options, label), description, label)
    // One label line per option and nothing else at that indentation: no option is listed twice.
    assert.deepStrictEqual(options.filter((line) => !line.startsWith("      ")), expected.map(([label]) => `  ${label}`))
    assert.notInclude(options.join("\n"), "[required]", "every option of list is optional")
    // Wrapped for an 80-column terminal on a pipe; the page was 107 lines with three paragraphs per option. The
    // budget is one line per option, its description wrapped (up to 3 lines here), and the usage, description and
    // four examples: 50 lines today.
    for (const line of options) assert.isAtMost(line.length, 80, line)
    assert.isAtMost(page.trimEnd().split("\n").length, 60, page)
  })

  it("shows the same page when --log-level comes first (the library runs the rest of the line again without it)", async () => {
    const [plain, spaced, joined] = await Promise.all([
      run(["list", "--help"]),
      run(["--log-level", "debug", "list", "--help"]),
      run(["list", "--log-level=info", "--help"])
    ])
    assert.strictEqual(spaced.code, 0, spaced.stderr)
    assert.strictEqual(spaced.stdout, plain.stdout)
    assert.strictEqual(joined.stdout, plain.stdout)
  })

  it("marks the options a command requires, and a repeatable one", async () => {
    const [resolve, create, bulk] = await Promise.all([run(["resolve", "--help"]), run(["create", "--help"]), run(["bulk", "--help"])])
    const resolveOptions = section(resolve.stdout, "OPTIONS")
    assert.match(entry(resolveOptions, "--status <succeeded|failed>"), /^What the provider says happened: .* \[required\]$/)
    assert.match(entry(resolveOptions, "--note <text>"), /\[required\]$/)
    assert.notInclude(entry(resolveOptions, "--json"), "[required]")
    assert.match(entry(section(bulk.stdout, "OPTIONS"), "--provider <text>"), /^The provider every row is for\. \[required\]$/)
    assert.include(entry(section(bulk.stdout, "ARGUMENTS"), "<file>"), "A .csv file with a header row")
    // -f may be given any number of times, none included: repeatable, not required.
    const field = entry(section(create.stdout, "OPTIONS"), "-f, --field <path=value>")
    assert.match(field, /^One request field as path=value .* \[repeatable\]$/)
    assert.notInclude(field, "[required]")
  })

  it("shows an option that may be repeated or left out as optional in the usage line", async () => {
    const create = await run(["create", "--help"])
    assert.strictEqual(create.code, 0, create.stderr)
    // The usage said `--field <text>...`, which reads as required where every optional option is in brackets.
    const usage = section(create.stdout, "USAGE").join(" ").replace(/\s+/g, " ")
    assert.include(usage, " [--data <text>] [--field <path=value>]... [--idempotency-key <text>] <provider>")
    assert.notMatch(usage, /(^|[^[])--field/)
  })

  it("wraps a description's prose to the page and keeps each example command on one line to copy", async () => {
    const [bulk, create] = await Promise.all([run(["bulk", "--help"]), run(["create", "--help"])])
    const description = section(bulk.stdout, "DESCRIPTION")
    assert.strictEqual(description[0], "Refund every row of a CSV or JSONL file.")
    const page = bulk.stdout.split("\n")
    const start = page.indexOf("DESCRIPTION")
    const body = page.slice(start + 1, page.indexOf("ARGUMENTS"))
    for (const line of body) assert.isAtMost(line.length, 80, line)
    assert.include(body.join(" "), "Re-running the same command after a crash or Ctrl-C finishes the job without refunding any row twice.")
    assert.include(body, "Example: refundkit bulk refunds.csv --provider airalo --concurrency 4 --dry-run")
    // Longer than the page, and still one line.
    assert.include(create.stdout.split("\n"), `Example: refundkit create exirom --data '{"transactionId":12345,"amount":"10.00","reason":"customer_request"}' --idempotency-key order-42`)
  })

  it("lists the commands one per line with what each does, and the built-in options, on the program's page", async () => {
    const [help, bare] = await Promise.all([run(["--help"]), run([])])
    assert.strictEqual(help.code, 0, help.stderr)
    assert.strictEqual(bare.code, 0, bare.stderr)
    // `refundkit` alone shows the same page as `refundkit --help`.
    assert.strictEqual(bare.stdout, help.stdout)
    assert.include(help.stdout, "\n$ refundkit [--json] [--ledger <text>] [--sandbox] <command>\n")
    // The title once, with the version: "refundkit", a blank line, then "refundkit 0.1.0" said it twice.
    assert.match(help.stdout, /^refundkit \d+\.\d+\.\d+\n\nUSAGE\n/)
    const commands = section(help.stdout, "COMMANDS")
    assert.include(commands, "  list       List refunds in the ledger, newest first.")
    assert.include(commands, "  providers  List the installed providers and their capabilities.")
    const names = commands.filter((line) => !line.startsWith("   ")).map((line) => line.trim().split(" ")[0])
    assert.deepStrictEqual(names, ["providers", "create", "get", "list", "sync", "update", "bulk", "reconcile", "resolve", "reopen", "sandbox", "serve"])
    // Each command's summary is its description's first paragraph, a line or two: bulk's used to run to six.
    assert.isAtMost(commands.length, names.length + 2, commands.join("\n"))
    const builtIns = section(help.stdout, "BUILT-IN OPTIONS (any command)")
    assert.include(entry(builtIns, "--completions <sh|bash|fish|zsh>"), "completion script")
    for (const label of ["-h, --help", "--version", "--wizard"]) entry(builtIns, label)
    assert.isAtMost(help.stdout.trimEnd().split("\n").length, 70)
  })

  it("refuses --wizard where stdin is no terminal, at once, naming the flag", async () => {
    // From a pipe that stays open the wizard used to wait for ever; from /dev/null it said "Invalid subcommand".
    for (const openStdin of [true, false]) {
      const wizard = await run(["--wizard"], { openStdin })
      assert.strictEqual(wizard.code, 2, wizard.stderr)
      assert.include(wizard.stderr, "error: --wizard: asks its questions at a terminal, and stdin is not one.")
    }
    const json = await run(["list", "--wizard", "--json"], { openStdin: true })
    assert.strictEqual(json.code, 2)
    assert.strictEqual(JSON.parse(json.stdout).error.code, "usage_error")
  })
})
