// `node --import ./bench/effect-ops.mjs ...`: counts the Effect operations and fibers a process runs,
// for `bench/ab.mjs --ops`. CPU per refund moves 5-10% from run to run on a shared machine; the
// number of Effect operations per refund does not, so a change to the hot path can be read off it
// exactly (each operation costs about a microsecond here, with its allocations).
//
// Effect's runtime calls its tracer's `context` once per operation, even with tracing off; this
// replaces that function of the built-in tracer with one that counts. The built-in tracer lives in
// Effect's internal module (effect@3), found the way the program being run (another checkout's
// gateway, say) finds `effect`, or from REFUNDKIT_SERVER_DIST when bench/server-unbundled.mjs runs
// a server's compiled modules: a measuring tool, never shipped. Counts go to the file named by
// REFUNDKIT_EFFECT_OPS_FILE as "<operations> <fibers>", every 100 ms. A program whose Effect is not
// that package (a bundle carries its own copy, and the plain-Node floor has none) writes
// "unavailable" instead, so that a table never shows zero operations for what was not counted.
import { renameSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"

const builtInTracer = async () => {
  try {
    const from = process.env.REFUNDKIT_SERVER_DIST === undefined ? process.argv[1] : join(process.env.REFUNDKIT_SERVER_DIST, "bin.js")
    const entry = createRequire(from).resolve("effect")
    const module = entry.replace(/dist[/\\]cjs[/\\]index\.js$/, "dist/esm/internal/tracer.js")
    return (await import(pathToFileURL(module).href)).nativeTracer
  } catch {
    return undefined
  }
}

const tracer = await builtInTracer()
const file = process.env.REFUNDKIT_EFFECT_OPS_FILE
let operations = 0
let fibers = 0
const seen = new WeakSet()
if (tracer !== undefined) {
  tracer.context = (f, fiber) => {
    operations++
    if (!seen.has(fiber)) {
      seen.add(fiber)
      fibers++
    }
    return f()
  }
}
// Written beside the file, then renamed over it: a reader never sees it half written (bench/ab.mjs once
// read a truncated count and printed a negative number of operations per refund).
if (file !== undefined) {
  const partial = `${file}.${process.pid}.tmp`
  setInterval(() => {
    writeFileSync(partial, tracer === undefined ? "unavailable" : `${operations} ${fibers}`)
    renameSync(partial, file)
  }, 100).unref()
}
