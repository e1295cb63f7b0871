#!/usr/bin/env node
// Bundles an app's executable: `node ../../scripts/bundle-bin.mjs` from apps/cli or apps/server
// turns src/bin.ts into dist/bin.js plus its chunks in dist/bin-chunks/.
//
// Why: unbundled, `refundkit providers` opened ~1,000 module files (Node resolved, read and compiled
// each: half of its 1.2 s) and loaded fast-check, the `effect` index's test-data library, because
// @effect/platform's HttpClient imports that index. The bundle is tree-shaken, so only what runs is
// there. The library entry points (dist/index.js and the rest) stay tsc's output, unbundled, so a
// program that imports a package shares one copy of `effect` with it.
//
// What stays outside (scripts/bundle-config.mjs): better-sqlite3, a native addon that finds its .node
// file relative to itself, so it is a dependency of each app; and the optional packages that bundled
// code asks for inside a `try` (pg-native, which pg loads only when asked, and we never ask).
// Dynamic imports become chunks, so `refundkit --version` still loads nothing but the entry.
import { build } from "esbuild"
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { external, optional } from "./bundle-config.mjs"

const pkg = JSON.parse(readFileSync("package.json", "utf8"))
if (!pkg.bin) {
  console.error(`bundle-bin: ${pkg.name} has no "bin" in package.json`)
  process.exit(2)
}

// Chunk names carry a content hash: without this, each build would leave the last one's chunks to be packed.
rmSync("dist/bin-chunks", { recursive: true, force: true })

const result = await build({
  entryPoints: { bin: "src/bin.ts" },
  outdir: "dist",
  chunkNames: "bin-chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // No `keepNames`: it wraps every function and class as it is created, closures in hot loops
  // included, and halved `bulk --dry-run`'s rows/s. Nothing here reads a class's own name: Effect
  // and our errors set `name` and `_tag` themselves; only clashing names get a digit appended.
  external: [...external, ...optional],
  // The CommonJS packages inside (pg, undici) call `require` for Node's built-ins; an ES module has none.
  banner: { js: `import { createRequire as __refundkitCreateRequire } from "node:module"\nconst require = __refundkitCreateRequire(import.meta.url)` },
  // Every bundled package's licence is written out in full below instead.
  legalComments: "none",
  metafile: true,
  logLevel: "warning"
})

// The bundle redistributes other packages' code, so it carries their licences: one section per
// package (name, version, licence, the licence file's text) in dist/THIRD_PARTY_LICENSES.md.
const packageRoot = (file) => {
  for (let dir = dirname(resolve(file)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) {
      const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
      if (meta.name !== undefined && meta.version !== undefined) return { dir, meta }
    }
  }
  return undefined
}
const bundled = new Map()
// What tree-shaking kept, not every module it looked at; our own packages share this repository's licence.
const kept = Object.values(result.metafile.outputs).flatMap((output) =>
  Object.entries(output.inputs).filter(([, input]) => input.bytesInOutput > 0).map(([file]) => file)
)
for (const file of new Set(kept)) {
  const found = packageRoot(file)
  if (found !== undefined && !found.meta.name.startsWith("@refundkit/")) bundled.set(`${found.meta.name}@${found.meta.version}`, found)
}
const sections = [...bundled.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, { dir, meta }]) => {
  const licenceFile = readdirSync(dir).find((name) => /^(licen[cs]e|copying)(\.|$)/i.test(name))
  const text = licenceFile === undefined ? `(no licence file in the package; its package.json says ${meta.license ?? "nothing"})` : readFileSync(join(dir, licenceFile), "utf8").trim()
  return `## ${id}\n\nLicence: ${meta.license ?? "not stated"}\n\n\`\`\`\n${text}\n\`\`\`\n`
})
writeFileSync(
  "dist/THIRD_PARTY_LICENSES.md",
  `# Third-party licences\n\n\`dist/bin.js\` of ${pkg.name} bundles code from these packages.\n\n${sections.join("\n")}`
)

const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0)
const inputs = Object.keys(result.metafile.inputs).length
console.log(`bundle-bin: ${pkg.name} dist/bin.js: ${inputs} modules of ${bundled.size} packages in ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB`)
