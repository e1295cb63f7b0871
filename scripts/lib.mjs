// Helpers shared by the publish checks (scripts/check-*.mjs): running commands, reading the
// workspace and reporting results. Plain Node, no dependencies.
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root. */
export const root = resolve(fileURLToPath(new URL("..", import.meta.url)))

/** Binaries installed at the root (publint, attw, changeset). */
export const bin = (name) => join(root, "node_modules", ".bin", name)

/**
 * Runs a command to completion and returns its exit status and output. Never throws on a
 * non-zero exit: the caller decides what a failure means.
 */
export const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeoutMs ?? 300_000
  })
  return {
    status: result.status ?? 1,
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? "",
    error: result.error,
    text: `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ? `\n${result.error.message}` : ""}`
  }
}

/** The same as `run`, but asynchronous, so two slow commands can share the machine's cores. */
export const runAsync = (command, args, options = {}) =>
  new Promise((done) => {
    const child = spawn(command, args, { cwd: options.cwd ?? root, env: { ...process.env, ...options.env } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("error", (error) => done({ status: 1, stdout, stderr, text: `${stdout}${stderr}\n${error.message}` }))
    child.on("close", (status) => done({ status: status ?? 1, stdout, stderr, text: `${stdout}${stderr}` }))
  })

/** Runs `task` over `items` with at most `limit` at a time, keeping the input order in the result. */
export const mapLimit = async (items, limit, task) => {
  const results = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index], index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** Reads a JSON file. */
export const readJson = (path) => JSON.parse(readFileSync(path, "utf8"))

/** A fresh temporary directory, removed by `cleanup` unless KEEP_TMP=1 (to look at what failed). */
export const tempDir = (prefix) => mkdtempSync(join(tmpdir(), `refundkit-${prefix}-`))

/** Removes a temporary directory made by `tempDir`, unless KEEP_TMP=1. */
export const cleanup = (dir) => {
  if (process.env.KEEP_TMP === "1") console.log(`  (kept ${dir})`)
  else rmSync(dir, { recursive: true, force: true })
}

/**
 * The `catalog:` block of pnpm-workspace.yaml as { name: range }: the one place versions are
 * pinned. A tiny reader for the flat `key: value` block, not a YAML parser.
 */
export const readCatalog = () => {
  const lines = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8").split("\n")
  const catalog = {}
  let inside = false
  for (const line of lines) {
    if (/^catalog:\s*$/.test(line)) {
      inside = true
      continue
    }
    if (inside && /^\S/.test(line)) break
    const match = inside ? /^\s+"?([^":]+)"?:\s*"?([^"#\s]+)"?/.exec(line) : null
    if (match) catalog[match[1]] = match[2]
  }
  return catalog
}

/** The workspace globs of pnpm-workspace.yaml (`packages:` entries such as `packages/*`). */
const workspaceGlobs = () => {
  const lines = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8").split("\n")
  const globs = []
  let inside = false
  for (const line of lines) {
    if (/^packages:\s*$/.test(line)) {
      inside = true
      continue
    }
    if (inside && /^\S/.test(line)) break
    const match = inside ? /^\s+-\s*"?([^"\s]+)"?/.exec(line) : null
    if (match) globs.push(match[1])
  }
  return globs
}

/**
 * Every workspace package: { name, dir (absolute), rel (from the root), pkg (package.json) }.
 * Only `<folder>/*` globs are supported, which is all pnpm-workspace.yaml uses.
 */
export const workspacePackages = () => {
  const packages = []
  for (const glob of workspaceGlobs()) {
    if (!glob.endsWith("/*")) throw new Error(`unsupported workspace glob ${glob}: extend scripts/lib.mjs`)
    const parent = join(root, glob.slice(0, -2))
    if (!existsSync(parent)) continue
    for (const entry of readdirSync(parent, { withFileTypes: true })) {
      const dir = join(parent, entry.name)
      if (!entry.isDirectory() || !existsSync(join(dir, "package.json"))) continue
      const pkg = readJson(join(dir, "package.json"))
      packages.push({ name: pkg.name, dir, rel: relative(root, dir), pkg })
    }
  }
  return packages.sort((a, b) => a.rel.localeCompare(b.rel))
}

/** Collects failures of one check and prints a clear pass/fail line per item. */
export class Report {
  constructor(title) {
    this.title = title
    this.failures = []
    console.log(`\n== ${title}`)
  }
  /** Records one item: `problems` empty means it passed. */
  item(label, problems, note = "") {
    if (problems.length === 0) {
      console.log(`  ok    ${label}${note ? `  (${note})` : ""}`)
      return
    }
    console.log(`  FAIL  ${label}`)
    for (const problem of problems) console.log(`        - ${problem.replaceAll("\n", "\n          ")}`)
    this.failures.push(...problems.map((p) => `${label}: ${p.split("\n")[0]}`))
  }
  /** Prints the summary line and returns whether everything passed. */
  done() {
    console.log(this.failures.length === 0 ? `  => ${this.title}: passed` : `  => ${this.title}: ${this.failures.length} problem(s)`)
    return this.failures.length === 0
  }
}

/** The last lines of a command's output, for a failure message. */
export const tail = (text, lines = 25) => text.trimEnd().split("\n").slice(-lines).join("\n")
