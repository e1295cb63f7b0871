// The apps' executables are bundles (scripts/bundle-bin.mjs). This reads each one back and
// checks what an install of the package needs of it: every file it imports is in the package,
// everything it loads by name is Node's own or a declared dependency, and the licences of the
// code it carries are beside it. An executable that is tsc's output again (importing `effect`
// and our packages by name) fails here, as does a bundle that needs a package nobody installs.
import { builtinModules } from "node:module"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { external, optional } from "../bundle-config.mjs"
import { Report, workspacePackages } from "../lib.mjs"

const builtins = new Set(builtinModules)
const isBuiltin = (spec) => spec.startsWith("node:") || builtins.has(spec)
const packageName = (spec) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/")

// Module syntax as esbuild prints it: declarations at the start of a line (`import ... from "x"`,
// `} from "x"` closing a long list, `export ... from "x"`, `import "x"`), and `import("x")` and
// `require("x")` calls with double quotes. esbuild keeps some JSDoc, whose `import('x')` types use
// single quotes, and comment lines are skipped anyway; long lines (the docs page's script, held as
// one string) are data, not code that loads anything.
const declaration = /^(?:import\b|export\b|\})[^"\n]*?(?:from\s*)?"([^"]+)";?\s*$/
const call = /\b(import|require)\("([^"]+)"\)/g
const longestCodeLine = 20_000

/** Every specifier a bundle file loads: `{ spec, kind }` with kind "import" or "require". */
const specifiers = (text) => {
  const found = []
  for (const line of text.split("\n")) {
    const trimmed = line.trimStart()
    if (line.length > longestCodeLine || trimmed.startsWith("*") || trimmed.startsWith("//") || trimmed.startsWith("/*")) continue
    const match = declaration.exec(line)
    if (match !== null) found.push({ spec: match[1], kind: "import" })
    for (const m of line.matchAll(call)) found.push({ spec: m[2], kind: m[1] })
  }
  return found
}

/** The problems of one app's bundle; none when it is fine. */
export const bundleProblems = (p) => {
  const problems = []
  const entries = Object.values(p.pkg.bin ?? {})
  if (entries.length === 0) return problems
  const dependencies = new Set(Object.keys(p.pkg.dependencies ?? {}))
  const chunksDir = join(p.dir, "dist", "bin-chunks")
  const files = [...entries.map((entry) => resolve(p.dir, entry))]
  if (existsSync(chunksDir)) {
    for (const name of readdirSync(chunksDir)) if (name.endsWith(".js")) files.push(resolve(chunksDir, name))
  } else {
    problems.push(`dist/bin-chunks/ is missing: ${entries.join(", ")} is not the bundle scripts/bundle-bin.mjs makes`)
  }

  const loads = new Map()
  for (const file of files) {
    const rel = file.slice(p.dir.length + 1)
    if (!existsSync(file)) {
      problems.push(`${rel} is missing (run the package's build)`)
      continue
    }
    loads.set(file, [])
    for (const { spec, kind } of specifiers(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) {
        const target = resolve(dirname(file), spec)
        if (!existsSync(target)) problems.push(`${rel} loads ${spec}, which is not in the package`)
        else loads.get(file).push(target)
        continue
      }
      if (isBuiltin(spec)) continue
      const name = packageName(spec)
      if (kind === "require" && optional.includes(name)) continue
      if (!external.includes(name)) problems.push(`${rel} loads "${spec}" by name: bundle it, or list it in scripts/bundle-config.mjs`)
      else if (!dependencies.has(name)) problems.push(`${rel} loads "${name}", which is not in its "dependencies": an install would not have it`)
    }
  }

  // A chunk no executable reaches is left from another build: the bundle script empties the
  // directory, but a turbo cache restore only adds files, and the package would ship them.
  const reached = new Set()
  const visit = (file) => {
    if (reached.has(file)) return
    reached.add(file)
    for (const next of loads.get(file) ?? []) visit(next)
  }
  for (const entry of entries) visit(resolve(p.dir, entry))
  const strays = [...loads.keys()].filter((file) => !reached.has(file)).map((file) => file.slice(p.dir.length + 1))
  if (strays.length > 0) {
    problems.push(`${strays.join(", ")}: no executable loads ${strays.length === 1 ? "it" : "them"} (left from an earlier build; remove dist/ and build again)`)
  }

  const licences = join(p.dir, "dist", "THIRD_PARTY_LICENSES.md")
  if (!existsSync(licences)) problems.push("dist/THIRD_PARTY_LICENSES.md is missing: the bundle carries other packages' code")
  else if (!/^## effect@/m.test(readFileSync(licences, "utf8"))) problems.push("dist/THIRD_PARTY_LICENSES.md has no section for effect, which every bundle carries")
  return problems
}

/** Checks the bundle of every workspace package that has a `bin`. */
export const checkBundles = async () => {
  const report = new Report("executables are bundles an install can run")
  for (const p of workspacePackages().filter((p) => p.pkg.bin !== undefined)) {
    const problems = bundleProblems(p)
    const chunks = join(p.dir, "dist", "bin-chunks")
    report.item(`${p.name} (${Object.values(p.pkg.bin).join(", ")})`, problems, existsSync(chunks) ? `${readdirSync(chunks).length} chunk files` : "")
  }
  return report.done()
}
