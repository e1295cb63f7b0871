// Packs every workspace package the way `pnpm publish` does (workspace:^ and catalog: rewritten)
// and checks the tarballs: their package.json, publint, and @arethetypeswrong/cli.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs"
import { basename, join } from "node:path"
import { publint } from "publint"
import { formatMessage } from "publint/utils"
import { bin, mapLimit, readCatalog, readJson, Report, run, runAsync, tail, workspacePackages } from "../lib.mjs"

const dependencyFields = ["dependencies", "peerDependencies", "optionalDependencies"]

/**
 * `pnpm pack`s every workspace package into `dir` and unpacks each tarball next to it.
 * Returns [{ name, version, tarball, unpacked (the package/ folder) }] or throws with pnpm's output.
 */
export const packAll = (dir) => {
  const packages = workspacePackages()
  const filters = packages.flatMap((p) => ["--filter", p.name])
  const packed = run("pnpm", ["-r", ...filters, "pack", "--pack-destination", dir, "--json"])
  if (packed.status !== 0) throw new Error(`pnpm pack failed:\n${tail(packed.text)}`)
  const start = packed.stdout.indexOf("[")
  const list = JSON.parse(packed.stdout.slice(start))
  return list.map((entry) => {
    const unpackDir = join(dir, basename(entry.filename, ".tgz"))
    mkdirSync(unpackDir, { recursive: true })
    const untar = run("tar", ["-xzf", entry.filename, "-C", unpackDir])
    if (untar.status !== 0) throw new Error(`could not unpack ${entry.filename}: ${untar.text}`)
    return { name: entry.name, version: entry.version, tarball: entry.filename, unpacked: join(unpackDir, "package") }
  })
}

/** Paths of every file under `dir`, relative to it. */
const listFiles = (dir, prefix = "") =>
  readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(dir, join(prefix, entry.name)) : [join(prefix, entry.name)]
  )

/** The published package.json: real ranges, our packages at their current versions. */
const checkPackedManifest = (tarball, versions, catalog) => {
  const problems = []
  const pkg = readJson(join(tarball.unpacked, "package.json"))
  const files = listFiles(tarball.unpacked)
  for (const field of dependencyFields) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (/^(workspace|catalog|link|file):/.test(range)) problems.push(`${field}["${name}"] is "${range}" in the tarball: npm cannot install it`)
      if (name.startsWith("@refundkit/") && range !== `^${versions.get(name)}`) {
        problems.push(`${field}["${name}"] is "${range}", expected "^${versions.get(name)}"`)
      }
      if (catalog[name] !== undefined && range !== catalog[name] && !name.startsWith("@refundkit/")) {
        problems.push(`${field}["${name}"] is "${range}", the catalog says "${catalog[name]}"`)
      }
    }
  }
  if (pkg.devDependencies !== undefined && Object.values(pkg.devDependencies).some((r) => /^(workspace|catalog):/.test(r))) {
    problems.push(`devDependencies still hold workspace:/catalog: ranges`)
  }
  if (!files.includes("README.md")) problems.push("README.md is not in the tarball")
  const leaked = files.filter((f) => /(^|\/)test\//.test(f) || f.endsWith(".tsbuildinfo") || f.startsWith("node_modules/"))
  if (leaked.length > 0) problems.push(`the tarball holds files users should not get: ${leaked.slice(0, 5).join(", ")}`)
  if (!files.some((f) => f.startsWith("dist/") && f.endsWith(".d.ts"))) problems.push("no .d.ts files in dist/: was the package built?")
  for (const [name, target] of Object.entries(pkg.bin ?? {})) {
    const path = join(tarball.unpacked, target)
    if (!existsSync(path)) problems.push(`bin "${name}" -> ${target} is not in the tarball`)
    else if (!readFileSync(path, "utf8").startsWith("#!/usr/bin/env node")) problems.push(`bin "${name}" -> ${target} has no "#!/usr/bin/env node" line`)
  }
  return { problems, note: `${files.length} files` }
}

/** publint on the unpacked tarball: exactly the files npm would publish. Warnings fail too. */
const runPublint = async (tarball) => {
  const { messages, pkg } = await publint({ pkgDir: tarball.unpacked, pack: false, level: "suggestion" })
  const failing = messages.filter((m) => m.type !== "suggestion")
  const suggestions = messages.filter((m) => m.type === "suggestion")
  return {
    problems: failing.map((m) => `${m.type}: ${formatMessage(m, pkg, { color: false })}`),
    note: suggestions.length === 0 ? "no messages" : `suggestions: ${suggestions.map((m) => formatMessage(m, pkg, { color: false })).join("; ")}`
  }
}

/**
 * The subpaths a wildcard export such as `"./*": { "types": "./dist/*.d.ts" }` really offers:
 * attw does not expand wildcards by itself, so core's modules would go unchecked.
 */
const wildcardEntrypoints = (tarball) => {
  const pkg = readJson(join(tarball.unpacked, "package.json"))
  const entrypoints = []
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (!subpath.includes("*") || target === null || typeof target !== "object" || typeof target.types !== "string") continue
    const [before, after] = target.types.replace(/^\.\//, "").split("*")
    for (const file of listFiles(tarball.unpacked)) {
      if (!file.startsWith(before) || !file.endsWith(after)) continue
      const stem = file.slice(before.length, file.length - after.length)
      const candidate = subpath.replace("*", stem)
      const blocked = pkg.exports[candidate] === null ||
        Object.entries(pkg.exports).some(([other, value]) => value === null && other.includes("*") && candidate.startsWith(other.split("*")[0]))
      if (!stem.includes("/") && stem !== "index" && !blocked) entrypoints.push(candidate)
    }
  }
  return entrypoints
}

/**
 * @arethetypeswrong/cli on the tarball with the `esm-only` profile: our packages are ESM only
 * (`"type": "module"`, `exports` with `types` + `default`, no `require`), so the two resolution
 * modes that cannot load them by design are not errors: `node10` (TypeScript's old resolution
 * ignores `exports`) and `node16` from CommonJS (a `require` of ESM). Everything else must be green
 * for `node16` from ESM and `bundler`, for every entry point.
 */
const runAttw = async (tarball) => {
  const extra = wildcardEntrypoints(tarball)
  const args = [tarball.tarball, "--profile", "esm-only", "--format", "ascii", "--no-color", "--no-emoji"]
  if (extra.length > 0) args.push("--include-entrypoints", ...extra)
  const result = await runAsync(bin("attw"), args)
  return {
    problems: result.status === 0 ? [] : [`attw found problems:\n${tail(result.text, 40)}`],
    note: extra.length > 0 ? `also checked ${extra.length} wildcard entry points` : ""
  }
}

/** Packs everything once, then runs the tarball checks. Returns the tarballs for later checks. */
export const checkTarballs = async (dir) => {
  const packing = new Report("pnpm pack + the published package.json")
  const catalog = readCatalog()
  let tarballs
  try {
    tarballs = packAll(dir)
  } catch (error) {
    packing.item("pnpm pack", [String(error instanceof Error ? error.message : error)])
    return { ok: packing.done(), tarballs: [] }
  }
  const versions = new Map(tarballs.map((t) => [t.name, t.version]))
  const expected = workspacePackages().map((p) => p.name)
  const missing = expected.filter((name) => !versions.has(name))
  if (missing.length > 0) packing.item("every package packed", [`not packed: ${missing.join(", ")}`])
  for (const t of tarballs) {
    const { problems, note } = checkPackedManifest(t, versions, catalog)
    packing.item(`${t.name}@${t.version}`, problems, note)
  }
  const packOk = packing.done()

  const lint = new Report("publint (on the unpacked tarballs)")
  for (const t of tarballs) {
    const { problems, note } = await runPublint(t)
    lint.item(t.name, problems, note)
  }
  const lintOk = lint.done()

  const types = new Report("@arethetypeswrong/cli --profile esm-only (on the tarballs)")
  const results = await mapLimit(tarballs, 2, runAttw)
  tarballs.forEach((t, i) => types.item(t.name, results[i].problems, results[i].note))
  const typesOk = types.done()

  return { ok: packOk && lintOk && typesOk, tarballs }
}
