// package.json and README rules every published package follows (issue #10). publint and attw
// check what tools can see in a tarball; this checks the house rules they cannot know:
// where Effect goes, `workspace:^` for our own packages, `catalog:` for pinned versions.
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { readCatalog, Report, workspacePackages } from "../lib.mjs"

const dependencyFields = ["dependencies", "peerDependencies", "optionalDependencies", "devDependencies"]
const isEffect = (name) => name === "effect" || name.startsWith("@effect/")
/** The Effect packages whose Tags and fibers must be one instance in a user's app. */
const sharedEffect = ["effect", "@effect/platform", "@effect/platform-node"]

/** A plugin is a library with a `./sandbox` export (see CONTRIBUTING.md, "Writing a new provider plugin"). */
export const isPlugin = (p) => p.rel.startsWith("packages/") && p.pkg.exports?.["./sandbox"] !== undefined
export const isApp = (p) => p.rel.startsWith("apps/")

const checkPackage = (p, catalog) => {
  const { pkg, rel } = p
  const problems = []
  const expect = (ok, message) => {
    if (!ok) problems.push(message)
  }

  expect(pkg.private !== true, `"private": true, but every package under packages/ and apps/ is published`)
  expect(pkg.type === "module", `"type" must be "module" (the build is ESM)`)
  expect(typeof pkg.description === "string" && pkg.description.length > 0, `"description" is missing`)
  expect(typeof pkg.license === "string", `"license" is missing`)
  expect(pkg.repository?.directory === rel, `"repository.directory" must be "${rel}" (npm links to the folder)`)
  expect(pkg.sideEffects !== undefined, `"sideEffects" is missing (false for a library, or the files that have them)`)
  expect(pkg.engines?.node === ">=20", `"engines.node" must be ">=20", got ${JSON.stringify(pkg.engines?.node)}`)
  expect(pkg.publishConfig?.access === "public", `"publishConfig.access" must be "public" (scoped packages are private by default)`)

  const files = Array.isArray(pkg.files) ? pkg.files : []
  for (const f of ["dist", "README.md", "CHANGELOG.md"]) expect(files.includes(f), `"files" must list "${f}"`)
  expect(!files.some((f) => /^test\b/.test(f)), `"files" must not publish tests`)

  const exportsMap = pkg.exports
  if (typeof exportsMap !== "object" || exportsMap === null || exportsMap["."] === undefined) {
    problems.push(`"exports" must be an object with a "." entry`)
  } else {
    for (const [subpath, target] of Object.entries(exportsMap)) {
      if (target === null) continue
      if (typeof target === "string") {
        expect(subpath === "./package.json", `exports["${subpath}"] must be { types, default }, not a bare path`)
        continue
      }
      const conditions = Object.keys(target)
      expect(conditions[0] === "types", `exports["${subpath}"]: "types" must come first (got ${conditions.join(", ")})`)
      expect(conditions.at(-1) === "default", `exports["${subpath}"]: "default" must come last`)
      expect(!conditions.includes("require"), `exports["${subpath}"]: ESM only, no "require" condition`)
      expect(/\.d\.ts$/.test(target.types ?? ""), `exports["${subpath}"].types must point at a .d.ts file`)
      expect(/^\.\/dist\//.test(target.default ?? ""), `exports["${subpath}"].default must point into ./dist`)
    }
  }
  for (const [name, target] of Object.entries(pkg.bin ?? {})) {
    expect(/^\.\/dist\/.+\.js$/.test(target), `bin "${name}" must point at a built file in ./dist`)
  }

  // Versions: our packages through workspace:^ (pnpm writes the real ^range when packing),
  // everything pinned in the catalog through catalog:.
  for (const field of dependencyFields) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (name.startsWith("@refundkit/")) {
        expect(range === "workspace:^", `${field}["${name}"] must be "workspace:^", got "${range}"`)
      } else if (catalog[name] !== undefined) {
        expect(range === "catalog:", `${field}["${name}"] must be "catalog:" (pinned in pnpm-workspace.yaml), got "${range}"`)
      }
    }
  }

  // Where Effect goes: peers of libraries (one instance in the user's app), dependencies of apps.
  const deps = Object.keys(pkg.dependencies ?? {})
  const peers = Object.keys(pkg.peerDependencies ?? {})
  if (isApp(p)) {
    expect(deps.includes("effect"), `an app depends on "effect" directly (dependencies)`)
    expect(!peers.some(isEffect), `an app has no Effect peer dependencies: ${peers.filter(isEffect).join(", ")}`)
  } else {
    expect(peers.includes("effect"), `a library has "effect" as a peer dependency`)
    for (const name of sharedEffect) {
      expect(!deps.includes(name), `"${name}" must be a peer dependency of a library, not a dependency (one instance per app)`)
      if (peers.includes(name)) expect(pkg.devDependencies?.[name] !== undefined, `peer "${name}" is also needed in devDependencies to build and test`)
    }
  }
  if (isPlugin(p)) {
    expect(
      deps.length === 1 && deps[0] === "@refundkit/core",
      `a plugin's only dependency is @refundkit/core (installing one plugin pulls in core and Effect only); got ${deps.join(", ") || "none"}`
    )
    expect(
      peers.includes("@effect/platform") && pkg.peerDependenciesMeta?.["@effect/platform-node"]?.optional === true,
      `a plugin has @effect/platform as a peer and @effect/platform-node as an optional peer (only its sandbox needs it)`
    )
  }

  // README: an install line naming the package and a runnable example.
  const readmePath = join(p.dir, "README.md")
  if (!existsSync(readmePath)) {
    problems.push(`README.md is missing (install + a runnable example)`)
  } else {
    const readme = readFileSync(readmePath, "utf8")
    const installLine = readme.split("\n").find((line) => /\b(npm i|npm install|pnpm add|npx)\b/.test(line) && line.includes(pkg.name))
    expect(installLine !== undefined, `README.md needs an install command naming ${pkg.name} (npm i ${pkg.name} ...)`)
    const blocks = [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], body: m[2] }))
    const imports = blocks.some((b) => /^(js|ts|mjs)$/.test(b.lang) && b.body.includes(`from "${pkg.name}`))
    const runsBin = Object.keys(pkg.bin ?? {}).some((name) => blocks.some((b) => /^(sh|bash|console)?$/.test(b.lang) && new RegExp(`^\\$?\\s*${name}\\s`, "m").test(b.body)))
    expect(imports || runsBin, `README.md needs a runnable example: a js/ts block importing "${pkg.name}"${pkg.bin ? " or a shell block running its command" : ""}`)
  }
  return problems
}

/** Checks every workspace package's package.json and README. */
export const checkMetadata = async () => {
  const report = new Report("package.json and README rules")
  const catalog = readCatalog()
  for (const p of workspacePackages()) report.item(`${p.name} (${p.rel})`, checkPackage(p, catalog))
  return report.done()
}
