// Changesets: the pending changesets are valid and cover every changed package, and the
// release rules hold (independent versions; a core release never forces a major on plugins).
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { bin, cleanup, readJson, Report, root, run, tail, tempDir, workspacePackages } from "../lib.mjs"

/**
 * The files of a package that reach its users: a change to anything else (tests, tsconfig,
 * vitest config) needs no changeset.
 */
const publishedChange = (pathInPackage) => /^(src\/|README\.md$|package\.json$|CHANGELOG\.md$)/.test(pathInPackage)

const git = (args, cwd = root) => run("git", args, { cwd })

/** `main` when the clone has it (CI clones main), else `origin/main`; undefined when neither exists. */
const baseRef = () => {
  for (const ref of ["main", "origin/main"]) {
    if (git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).status === 0) return ref
  }
  return undefined
}

/** Runs `changeset status --output` in `cwd` and returns the parsed release plan. */
const releasePlan = (cwd, extraArgs = []) => {
  const outDir = tempDir("changeset-status")
  const out = join(outDir, "status.json")
  try {
    const result = run(bin("changeset"), ["status", `--output=${out}`, ...extraArgs], { cwd })
    if (result.status !== 0 || !existsSync(out)) return { error: `changeset status exited ${result.status}:\n${tail(result.text)}` }
    return { plan: readJson(out) }
  } finally {
    rmSync(outDir, { recursive: true, force: true })
  }
}

/**
 * Part 1: `changeset status` on the working copy. It only fails by itself when packages changed
 * and there is no changeset at all, so we also require that every package whose published files
 * changed since the merge base with `main` is named by a pending changeset. On a clean clone of
 * main the diff is empty and only the validity of the pending changesets is checked.
 */
const checkStatus = (report) => {
  const base = baseRef()
  if (base === undefined) {
    report.item("base branch", ["neither `main` nor `origin/main` exists: fetch main (git fetch origin main:main) so changes can be compared"])
    return
  }
  // With only origin/main (a detached CI checkout), --since limits the plan to this branch's changesets.
  const { plan, error } = releasePlan(root, base === "main" ? [] : [`--since=${base}`])
  if (error !== undefined) {
    report.item("changeset status", [error])
    return
  }
  const bumps = plan.releases.map((r) => `${r.name} ${r.oldVersion} -> ${r.newVersion} (${r.type})`)
  report.item("changeset status", [], `${plan.changesets.length} pending changeset(s)`)
  for (const line of bumps) console.log(`          ${line}`)

  const mergeBase = git(["merge-base", base, "HEAD"])
  if (mergeBase.status !== 0) {
    report.item(`merge base with ${base}`, [tail(mergeBase.text)])
    return
  }
  const changed = git(["diff", "--name-only", mergeBase.stdout.trim()])
  const untracked = git(["ls-files", "--others", "--exclude-standard"])
  const files = [...changed.stdout.split("\n"), ...untracked.stdout.split("\n")].filter((f) => f.length > 0)
  const named = new Set(plan.changesets.flatMap((c) => c.releases.map((r) => r.name)))
  const uncovered = []
  for (const p of workspacePackages()) {
    const touched = files.filter((f) => f.startsWith(`${p.rel}/`) && publishedChange(f.slice(p.rel.length + 1)))
    if (touched.length > 0 && !named.has(p.name)) uncovered.push(`${p.name}: ${touched.length} changed file(s) (e.g. ${touched[0]}) and no changeset names it; run \`pnpm changeset\``)
  }
  report.item(`every changed package has a changeset (since ${base})`, uncovered, `${files.length} changed file(s)`)
}

/**
 * A throwaway repository holding only what changesets reads (the workspace layout, the
 * package.json files and .changeset/config.json), without the pending changesets.
 */
const makeScratchRepo = () => {
  const dir = tempDir("changesets")
  for (const file of ["package.json", "pnpm-workspace.yaml", ".changeset/config.json"]) {
    mkdirSync(join(dir, file, ".."), { recursive: true })
    cpSync(join(root, file), join(dir, file))
  }
  for (const p of workspacePackages()) {
    mkdirSync(join(dir, p.rel), { recursive: true })
    cpSync(join(p.dir, "package.json"), join(dir, p.rel, "package.json"))
  }
  const id = ["-c", "user.name=check", "-c", "user.email=check@example.invalid", "-c", "commit.gpgsign=false"]
  for (const args of [["init", "-q", "-b", "main"], ["add", "-A"], [...id, "commit", "-q", "-m", "scratch"]]) {
    const result = git(args, dir)
    if (result.status !== 0) throw new Error(`git ${args.join(" ")} failed in the scratch repository: ${result.text}`)
  }
  return dir
}

/** Plans a release of one changeset in the scratch repository; returns { name: type } of every bump. */
const bumpsFor = (dir, releases) => {
  const frontmatter = Object.entries(releases).map(([name, type]) => `"${name}": ${type}`).join("\n")
  const file = join(dir, ".changeset", "scenario.md")
  writeFileSync(file, `---\n${frontmatter}\n---\n\nA scenario of scripts/checks/changesets.mjs.\n`)
  const { plan, error } = releasePlan(dir)
  rmSync(file, { force: true })
  if (error !== undefined) throw new Error(error)
  return Object.fromEntries(plan.releases.map((r) => [r.name, r.type]))
}

const show = (bumps) => Object.entries(bumps).map(([n, t]) => `${n.replace("@refundkit/", "")}:${t}`).sort().join(" ") || "nothing"

/** Compares two bump maps; returns a problem or nothing. */
const same = (actual, expected) => {
  const a = show(actual)
  const e = show(expected)
  return a === e ? [] : [`expected ${e}\n  got      ${a}`]
}

/**
 * Part 2: the release rules, proven on scratch changesets. Plugins list core under
 * `dependencies` (`workspace:^`), so:
 * - a plugin's patch or minor bumps that plugin only, plus a patch of the apps that depend on it
 *   when the new version leaves their `^` range (a 0.x minor does);
 * - a core patch stays inside every `^0.x.y` range: core alone;
 * - a core minor (0.x) leaves `^0.x.y`, so every dependent gets a patch with the new range, never
 *   a major. With core as a *peer* dependency changesets would make that a major of every
 *   plugin; the last scenario proves it, so the day changesets changes this rule we notice.
 */
const checkRules = (report) => {
  const packages = workspacePackages()
  const plugins = packages.filter((p) => p.rel.startsWith("packages/") && p.pkg.exports?.["./sandbox"] !== undefined)
  if (plugins.length === 0) {
    report.item("release rules", ["no plugin found (a package under packages/ with a ./sandbox export)"])
    return
  }
  const plugin = plugins.find((p) => p.name === "@refundkit/airalo") ?? plugins[0]
  const dependentsOf = (name) =>
    packages.filter((p) => p.pkg.dependencies?.[name] !== undefined || p.pkg.peerDependencies?.[name] !== undefined).map((p) => p.name)
  const patchOf = (names) => Object.fromEntries(names.map((n) => [n, "patch"]))
  const core = "@refundkit/core"

  let dir
  try {
    dir = makeScratchRepo()
    const scenarios = [
      [`${plugin.name} patch: that plugin only`, { [plugin.name]: "patch" }, { [plugin.name]: "patch" }],
      [`${plugin.name} minor: that plugin, and a patch of what depends on it`, { [plugin.name]: "minor" }, { ...patchOf(dependentsOf(plugin.name)), [plugin.name]: "minor" }],
      [`${core} patch: core only`, { [core]: "patch" }, { [core]: "patch" }],
      [`${core} minor: core, and a patch (not a major) of every dependent`, { [core]: "minor" }, { ...patchOf(dependentsOf(core)), [core]: "minor" }]
    ]
    for (const [label, releases, expected] of scenarios) {
      const bumps = bumpsFor(dir, releases)
      report.item(label, same(bumps, expected), show(bumps))
    }

    // The STYLE.md trap, shown on a copy: move core to peerDependencies of one plugin.
    const manifest = join(dir, plugin.rel, "package.json")
    const pkg = JSON.parse(readFileSync(manifest, "utf8"))
    delete pkg.dependencies[core]
    pkg.peerDependencies = { ...pkg.peerDependencies, [core]: "workspace:^" }
    writeFileSync(manifest, JSON.stringify(pkg, null, 2))
    const trapped = bumpsFor(dir, { [core]: "minor" })
    report.item(
      `(why core is not a peer) ${core} minor with core as a peer of ${plugin.name}: a major of the plugin`,
      trapped[plugin.name] === "major" ? [] : [`expected ${plugin.name}:major (changesets' peer rule), got ${show(trapped)}; revisit CONTRIBUTING.md's release rules`],
      `${plugin.name.replace("@refundkit/", "")}:${trapped[plugin.name]}`
    )
  } catch (error) {
    report.item("release rules", [String(error instanceof Error ? error.message : error)])
  } finally {
    if (dir !== undefined) cleanup(dir)
  }
}

/** Both parts. */
export const checkChangesets = async () => {
  const report = new Report("changesets")
  const config = readJson(join(root, ".changeset", "config.json"))
  const configProblems = []
  if (config.fixed?.length > 0 || config.linked?.length > 0) configProblems.push(`"fixed"/"linked" groups make versions move together; refundkit versions every package on its own`)
  if (config.access !== "public") configProblems.push(`"access" must be "public"`)
  if (config.baseBranch !== "main") configProblems.push(`"baseBranch" must be "main"`)
  report.item(".changeset/config.json", configProblems, "independent versions")
  checkStatus(report)
  checkRules(report)
  return report.done()
}
