#!/usr/bin/env node
// The gateway as `bin.ts` starts it, but from the compiled modules in REFUNDKIT_SERVER_DIST
// (`apps/server/dist` of this or another checkout) instead of the bundle beside them, so that
// `effect` is the package in node_modules. `bench/ab.mjs --ops` runs this: a bundle carries its
// own copy of Effect, which bench/effect-ops.mjs cannot reach to count operations.
import { createRequire } from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { setFlagsFromString } from "node:v8"

const dist = process.env.REFUNDKIT_SERVER_DIST
if (dist === undefined) {
  process.stderr.write("server-unbundled: set REFUNDKIT_SERVER_DIST to a server's dist/ folder\n")
  process.exit(2)
}
setFlagsFromString("--no-allocation-site-pretenuring")
// require.resolve finds the CommonJS build; the server's modules import the ES one, and a runtime
// from the other build would run every fiber out of the counter's sight.
const nodeRuntime = createRequire(join(dist, "bin.js"))
  .resolve("@effect/platform-node/NodeRuntime")
  .replace(/dist[/\\]cjs[/\\]/, "dist/esm/")
const [NodeRuntime, Main] = await Promise.all([
  import(pathToFileURL(nodeRuntime).href),
  import(pathToFileURL(join(dist, "Main.js")).href)
])
NodeRuntime.runMain(Main.run(process.argv.slice(2)), { disableErrorReporting: true, disablePrettyLogger: true })
