// Install tests: behave like a user outside the monorepo. Install packed tarballs with npm into
// a fresh temporary directory (plus the Effect peers at the catalog's versions from the npm
// registry), run a plain ESM script or the CLI there, and look at what landed in node_modules.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { cleanup, readCatalog, readJson, Report, root, run, tail, tempDir } from "../lib.mjs"

/**
 * The plugin the install test uses, and how to submit one refund to its sandbox. Exirom is the
 * worked example; REFUNDKIT_INSTALL_PLUGIN=airalo picks another one.
 */
const plugins = {
  exirom: {
    namespace: "Exirom",
    sandboxOptions: {},
    request: { transactionId: 20001, amount: "25.50", reason: "customer_request", currency: "EUR" },
    status: "pending"
  },
  airalo: {
    namespace: "Airalo",
    sandboxOptions: { rateLimit: false },
    request: { iccids: ["8910300000000000011"], reason: "NO_COVERAGE", notes: "No signal." },
    status: "pending"
  }
}

/**
 * Whether `pnpm test` runs the CLI install test. Set it to false only while apps/cli is being
 * rebuilt from scratch; `node scripts/check-packages.mjs install-cli` still runs it on demand.
 */
export const cliInstallReady = true

/** Packages that must never reach a user who installs core and one plugin. */
const heavy = ["better-sqlite3", "@effect/sql-sqlite-node", "@effect/sql-pg", "@refundkit/ledger-sql", "@refundkit/server", "@refundkit/cli"]

/** Every installed package, nested node_modules included: [{ name, version, path }]. */
const installedPackages = (nodeModules) => {
  if (!existsSync(nodeModules)) return []
  const found = []
  const visit = (dir, name) => {
    const manifest = join(dir, "package.json")
    if (existsSync(manifest)) found.push({ name, version: readJson(manifest).version, path: dir })
    found.push(...installedPackages(join(dir, "node_modules")))
  }
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith(".")) continue
    if (entry.name.startsWith("@")) {
      for (const scoped of readdirSync(join(nodeModules, entry.name), { withFileTypes: true })) {
        if (scoped.isDirectory()) visit(join(nodeModules, entry.name, scoped.name), `${entry.name}/${scoped.name}`)
      }
    } else visit(join(nodeModules, entry.name), entry.name)
  }
  return found
}

/** `npm install` into a fresh directory; returns the directory or throws with npm's output. */
const npmInstall = (prefix, specs, flags = []) => {
  const dir = tempDir(prefix)
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `refundkit-${prefix}`, private: true, type: "module" }, null, 2))
  const result = run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...flags, ...specs], { cwd: dir, timeoutMs: 600_000 })
  if (result.status !== 0) {
    cleanup(dir)
    throw new Error(`npm install failed:\n${tail(result.text, 30)}`)
  }
  return dir
}

/** The ESM script a user would write: sandbox -> plugin from handle.env -> core Refunds -> one refund. */
const userScript = (id, plugin) => `// Written by scripts/checks/install.mjs: run with plain node, no TypeScript.
import { NodeHttpClient } from "@effect/platform-node"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import { ${plugin.namespace} } from "@refundkit/${id}"
import * as Sandbox from "@refundkit/${id}/sandbox"
import { ConfigProvider, Context, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const sandbox = yield* Sandbox.make(${JSON.stringify(plugin.sandboxOptions)})
  const settings = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(sandbox.env))))
  const stack = Refunds.layer().pipe(
    Layer.provideMerge(Layer.provideMerge(${plugin.namespace}.layerConfig.pipe(Layer.provide(settings)), Providers.layer)),
    Layer.provideMerge(Ledger.layerMemory),
    Layer.provide(NodeHttpClient.layerUndici)
  )
  const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)
  const { refund } = yield* refunds.create({
    provider: ${JSON.stringify(id)},
    idempotencyKey: "install-test-1",
    request: ${JSON.stringify(plugin.request)}
  })
  const stats = yield* sandbox.stats
  console.log(refund)
  console.log("RESULT " + JSON.stringify({ refund, performed: stats.refundsPerformed }, (_, v) => typeof v === "bigint" ? String(v) : v))
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
`

/** The first js block after a README's "## Example" heading. */
const readmeExample = (readmePath) => {
  const readme = readFileSync(readmePath, "utf8")
  const section = readme.split(/^## Example\s*$/m)[1]
  return section === undefined ? undefined : /```js\n([\s\S]*?)```/.exec(section)?.[1]
}

/** Core + one plugin, installed with npm as a user would, then used. */
export const checkPluginInstall = async (tarballs) => {
  const id = process.env.REFUNDKIT_INSTALL_PLUGIN ?? "exirom"
  const plugin = plugins[id]
  const report = new Report(`install test: @refundkit/core + @refundkit/${id} from tarballs, with npm, outside the monorepo`)
  const core = tarballs.find((t) => t.name === "@refundkit/core")
  const packed = tarballs.find((t) => t.name === `@refundkit/${id}`)
  if (plugin === undefined || core === undefined || packed === undefined) {
    report.item("tarballs", [plugin === undefined ? `no install scenario for "${id}" (known: ${Object.keys(plugins).join(", ")})` : "core or the plugin was not packed (see the pack check)"])
    return report.done()
  }
  const catalog = readCatalog()
  const peers = ["effect", "@effect/platform", "@effect/platform-node"].map((name) => `${name}@${catalog[name]}`)

  let dir
  try {
    const t0 = Date.now()
    dir = npmInstall("install", [core.tarball, packed.tarball, ...peers])
    report.item(`npm install ${core.name} ${packed.name} ${peers.join(" ")}`, [], `${((Date.now() - t0) / 1000).toFixed(0)}s`)

    const installed = installedPackages(join(dir, "node_modules"))
    const ours = installed.filter((p) => p.name.startsWith("@refundkit/")).map((p) => p.name).sort()
    report.item(
      "node_modules holds core and this plugin only",
      JSON.stringify(ours) === JSON.stringify(["@refundkit/core", packed.name].sort()) ? [] : [`@refundkit packages installed: ${ours.join(", ")}`],
      `${installed.length} packages`
    )
    const heavyFound = installed.filter((p) => heavy.includes(p.name)).map((p) => `${p.name}@${p.version}`)
    report.item("no SQLite binary, no SQL driver, no app", heavyFound.length === 0 ? [] : [`installed: ${heavyFound.join(", ")}`])
    const effects = installed.filter((p) => p.name === "effect")
    report.item(
      "one copy of effect",
      effects.length === 1 ? [] : [`${effects.length} copies: ${effects.map((e) => `${e.version} at ${e.path}`).join(", ")}`],
      effects.map((e) => e.version).join(", ")
    )

    writeFileSync(join(dir, "refund.mjs"), userScript(id, plugin))
    const result = run("node", ["refund.mjs"], { cwd: dir, timeoutMs: 60_000 })
    const line = result.stdout.split("\n").find((l) => l.startsWith("RESULT "))
    const problems = []
    if (result.status !== 0 || line === undefined) problems.push(`node refund.mjs exited ${result.status}:\n${tail(result.text)}`)
    else {
      const { refund, performed } = JSON.parse(line.slice("RESULT ".length))
      if (refund.provider !== id) problems.push(`refund.provider is ${refund.provider}`)
      if (refund.status !== plugin.status) problems.push(`refund.status is ${refund.status}, expected ${plugin.status}`)
      if (!/^rfd_/.test(refund.id ?? "")) problems.push(`refund.id is ${refund.id}`)
      if (typeof refund.providerReference !== "string" || refund.providerReference.length === 0) problems.push("no providerReference")
      if (performed !== 1) problems.push(`the sandbox performed ${performed} refunds, expected 1`)
    }
    const summary = line === undefined ? "" : (({ refund: r }) => `${r.id} ${r.provider} ${r.status} ${r.providerStatus ?? ""} ${r.amount ?? ""} ${r.currency ?? ""} ref ${r.providerReference}`)(JSON.parse(line.slice(7)))
    report.item("node refund.mjs submits a refund to the sandbox", problems, summary)

    // The README examples are what users copy first: they must run as written.
    for (const name of ["core", id]) {
      const source = readmeExample(join(name === id ? packed.unpacked : core.unpacked, "README.md"))
      if (source === undefined) {
        report.item(`@refundkit/${name} README example`, [`no js block under "## Example" in its README`])
        continue
      }
      writeFileSync(join(dir, `readme-${name}.mjs`), source)
      const example = run("node", [`readme-${name}.mjs`], { cwd: dir, timeoutMs: 60_000 })
      report.item(`@refundkit/${name} README example runs`, example.status === 0 ? [] : [`exit ${example.status}:\n${tail(example.text)}`], example.stdout.trim().split("\n")[0] ?? "")
    }
  } catch (error) {
    report.item("install test", [String(error instanceof Error ? error.message : error)])
  } finally {
    if (dir !== undefined) cleanup(dir)
  }
  return report.done()
}

/**
 * better-sqlite3 downloads a prebuilt addon when installed (prebuild-install), or compiles one
 * (~1-4 minutes here). This machine cannot reach the prebuilt downloads, and compiling would blow
 * the CI budget, so when the installed version is the one pnpm already built for the monorepo, its
 * addon stands in for the download; otherwise it is compiled (`npm rebuild better-sqlite3`).
 */
const provideSqliteAddon = (dir) => {
  const installed = join(dir, "node_modules", "better-sqlite3")
  if (!existsSync(installed)) return { problems: ["better-sqlite3 is not installed: the CLI's default SQLite ledger cannot work"], note: "" }
  const version = readJson(join(installed, "package.json")).version
  const built = join(root, "node_modules", ".pnpm", `better-sqlite3@${version}`, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node")
  if (existsSync(built)) {
    mkdirSync(join(installed, "build", "Release"), { recursive: true })
    copyFileSync(built, join(installed, "build", "Release", "better_sqlite3.node"))
    return { problems: [], note: `${version}: the addon pnpm built for the monorepo` }
  }
  const t0 = Date.now()
  const rebuilt = run("npm", ["rebuild", "better-sqlite3", "--loglevel=error"], { cwd: dir, timeoutMs: 600_000 })
  return {
    problems: rebuilt.status === 0 ? [] : [`npm rebuild better-sqlite3 failed:\n${tail(rebuilt.text)}`],
    note: `${version}: compiled in ${((Date.now() - t0) / 1000).toFixed(0)}s`
  }
}

/** The CLI and the packages it needs (its @refundkit dependencies, transitively), from tarballs. */
export const checkCliInstall = async (tarballs) => {
  const report = new Report("install test: @refundkit/cli from tarballs, with npm, outside the monorepo")
  const byName = new Map(tarballs.map((t) => [t.name, t]))
  const needed = new Set()
  const add = (name) => {
    const t = byName.get(name)
    if (t === undefined || needed.has(name)) return
    needed.add(name)
    const pkg = readJson(join(t.unpacked, "package.json"))
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })) if (dep.startsWith("@refundkit/")) add(dep)
  }
  add("@refundkit/cli")
  if (!needed.has("@refundkit/cli")) {
    report.item("tarballs", ["@refundkit/cli was not packed (see the pack check)"])
    return report.done()
  }
  let dir
  try {
    const t0 = Date.now()
    // --ignore-scripts, then the SQLite addon: see provideSqliteAddon.
    dir = npmInstall("install-cli", [...needed].map((name) => byName.get(name).tarball), ["--ignore-scripts"])
    report.item(`npm install --ignore-scripts ${[...needed].join(" ")}`, [], `${((Date.now() - t0) / 1000).toFixed(0)}s`)
    const addon = provideSqliteAddon(dir)
    report.item("better-sqlite3's native addon", addon.problems, addon.note)
    const effects = installedPackages(join(dir, "node_modules")).filter((p) => p.name === "effect")
    report.item("one copy of effect", effects.length === 1 ? [] : [`${effects.length} copies: ${effects.map((e) => e.version).join(", ")}`])

    const data = JSON.stringify(plugins.exirom.request)
    const args = ["create", "exirom", "--data", data, "--idempotency-key", "install-test-1", "--sandbox", "--json"]
    const result = run(join(dir, "node_modules", ".bin", "refundkit"), args, { cwd: dir, timeoutMs: 120_000 })
    const problems = []
    let refund
    try {
      refund = JSON.parse(result.stdout)
    } catch {
      problems.push(`refundkit ${args.join(" ")} printed no JSON (exit ${result.status}):\n${tail(result.text)}`)
    }
    if (refund !== undefined) {
      if (refund.provider !== "exirom") problems.push(`refund.provider is ${refund.provider}`)
      if (!["pending", "succeeded"].includes(refund.status)) problems.push(`refund.status is ${refund.status}`)
    }
    const summary = refund === undefined ? "" : `${refund.id} ${refund.provider} ${refund.status} ${refund.providerStatus ?? ""} ${refund.amount} ${refund.currency} ref ${refund.providerReference}`
    report.item(`refundkit create exirom --data '${data}' --idempotency-key install-test-1 --sandbox --json`, problems, `exit ${result.status}: ${summary}`)
    const ledger = join(dir, ".refundkit", "ledger.db")
    report.item("the refund is in the default SQLite ledger (./.refundkit/ledger.db)", existsSync(ledger) ? [] : ["no ./.refundkit/ledger.db"])
  } catch (error) {
    report.item("CLI install test", [String(error instanceof Error ? error.message : error)])
  } finally {
    if (dir !== undefined) cleanup(dir)
  }
  return report.done()
}
