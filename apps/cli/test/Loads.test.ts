import { assert, describe, it } from "@effect/vitest"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { run, tempDir } from "./support.js"

// What the executable loads, not how long it takes (the bench times it): a command that
// calls no provider and opens no PostgreSQL ledger must not load undici, `pg` or `ws`,
// which cost it ~75, ~40 and ~15 ms of its start. A module hook records every file the
// process loads as ESM; the bundle's chunks name the packages they hold in path comments.

const heavy = { undici: "/node_modules/.pnpm/undici@", pg: "/node_modules/.pnpm/pg@", ws: "/node_modules/.pnpm/ws@" } as const

const hooks = `import { appendFileSync } from "node:fs"
let file
export async function initialize(data) { file = data.file }
export async function load(url, context, next) {
  if (url.startsWith("file:")) appendFileSync(file, url + "\\n")
  return next(url, context)
}
`

/** Runs `refundkit <args>` and returns the packages of {@link heavy} that the files it loaded hold. */
const heavyLoaded = async (args: ReadonlyArray<string>, exitCode = 0) => {
  const dir = tempDir()
  writeFileSync(join(dir, "hooks.mjs"), hooks)
  writeFileSync(
    join(dir, "register.mjs"),
    `import { register } from "node:module"\nregister(new URL("./hooks.mjs", import.meta.url), { data: { file: ${JSON.stringify(join(dir, "loads.txt"))} } })\n`
  )
  writeFileSync(join(dir, "loads.txt"), "")
  const result = await run(args.map((arg) => arg.replace("$DIR", dir)), { env: { NODE_OPTIONS: `--import=${join(dir, "register.mjs")}` } })
  assert.strictEqual(result.code, exitCode, result.stderr)
  const files = readFileSync(join(dir, "loads.txt"), "utf8").split("\n").filter((line) => line !== "").map((url) => fileURLToPath(url))
  assert.isTrue(files.some((file) => file.includes("bin-chunks")), `the hook saw the bundle's chunks load: ${files.join(", ")}`)
  const texts = files.map((file) => readFileSync(file, "utf8"))
  return Object.entries(heavy).filter(([, marker]) => texts.some((text) => text.includes(marker))).map(([name]) => name)
}

describe("what a command loads", () => {
  it("providers, list and get load neither undici, pg nor ws", async () => {
    assert.deepStrictEqual(await heavyLoaded(["providers"]), [])
    assert.deepStrictEqual(await heavyLoaded(["list", "--ledger", "$DIR/ledger.db"]), [])
    // Not found (exit 2), after the ledger was opened and read.
    assert.deepStrictEqual(await heavyLoaded(["get", "rfd_00000000000000000000000000", "--ledger", "$DIR/ledger.db"], 2), [])
  })

  it("a refund sent to a sandbox loads undici and ws, and still not pg (the control: the hook sees them when they load)", async () => {
    const loaded = await heavyLoaded([
      "create",
      "exirom",
      "--sandbox",
      "--ledger",
      "$DIR/ledger.db",
      "--idempotency-key",
      "loads-1",
      "--data",
      JSON.stringify({ transactionId: 4_200_001, amount: "1.00", reason: "customer_request" })
    ])
    assert.deepStrictEqual(loaded, ["undici", "ws"])
  })
})
