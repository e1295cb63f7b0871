#!/usr/bin/env node
// The publish checks of `pnpm test` (issue #10). Run after a build (`pnpm check:packages`
// builds first; `pnpm test` has built everything by the time it gets here):
//
//   node scripts/check-packages.mjs                  every check
//   node scripts/check-packages.mjs metadata attw    only some: metadata, bundles, pack (pack + publint + attw),
//                                                    publish, changesets, install, install-cli
//
// Exits 1 when any check fails; each check prints one ok/FAIL line per package or scenario.
// KEEP_TMP=1 keeps the temporary directories (tarballs, the install test) to look at a failure.
import { checkBundles } from "./checks/bundles.mjs"
import { checkChangesets } from "./checks/changesets.mjs"
import { checkCliInstall, checkPluginInstall, cliInstallReady } from "./checks/install.mjs"
import { checkMetadata } from "./checks/metadata.mjs"
import { checkPublishDryRun } from "./checks/publish.mjs"
import { checkTarballs } from "./checks/tarballs.mjs"
import { cleanup, tempDir } from "./lib.mjs"

const all = ["metadata", "bundles", "pack", "publish", "changesets", "install", "install-cli"]
const aliases = { publint: "pack", attw: "pack" }
const requested = process.argv.slice(2).map((a) => aliases[a] ?? a)
const unknown = requested.filter((a) => !all.includes(a))
if (unknown.length > 0) {
  console.error(`unknown check(s): ${unknown.join(", ")}; choose from ${all.join(", ")}`)
  process.exit(2)
}
const selected = new Set(requested.length > 0 ? requested : all)

const started = Date.now()
const results = []
const timed = async (name, check) => {
  const t0 = Date.now()
  const ok = await check()
  results.push({ name, ok, seconds: ((Date.now() - t0) / 1000).toFixed(1) })
}

const packDir = tempDir("tarballs")
try {
  if (selected.has("metadata")) await timed("package.json and README rules", checkMetadata)
  if (selected.has("bundles")) await timed("executables are bundles an install can run", checkBundles)
  let tarballs = []
  if (selected.has("pack") || selected.has("install") || selected.has("install-cli")) {
    await timed("pack, publint, attw", async () => {
      const result = await checkTarballs(packDir)
      tarballs = result.tarballs
      return result.ok
    })
  }
  if (selected.has("publish")) await timed("publish dry run", checkPublishDryRun)
  if (selected.has("changesets")) await timed("changesets", checkChangesets)
  if (selected.has("install")) await timed("install test (core + one plugin)", () => checkPluginInstall(tarballs))
  if (selected.has("install-cli")) {
    // Explicitly asking for it runs it even before apps/cli is declared ready.
    if (cliInstallReady || requested.includes("install-cli")) await timed("install test (the CLI)", () => checkCliInstall(tarballs))
    else console.log("\n== install test (the CLI): not enabled yet (see cliInstallReady in scripts/checks/install.mjs)")
  }
} finally {
  cleanup(packDir)
}

console.log("\n== summary")
for (const r of results) console.log(`  ${r.ok ? "ok  " : "FAIL"}  ${r.name}  ${r.seconds}s`)
const failed = results.filter((r) => !r.ok)
console.log(`  ${failed.length === 0 ? "all publish checks passed" : `${failed.length} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)}s`)
process.exit(failed.length === 0 ? 0 : 1)
