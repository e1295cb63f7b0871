#!/usr/bin/env node
/**
 * `refundkit-server`: see `Main.usage`.
 *
 * @since 0.1.0
 */
import { setFlagsFromString } from "node:v8"

// V8 moves an allocation site to old-space allocation once most of its objects survive a young
// collection. The gateway's objects live as long as a request, but under load enough requests are
// in flight at each young collection for sites to be moved; from then on every request's objects
// are born in the old generation and wait for a full collection. With the heuristic off the gateway
// spent 6-12% less CPU per refund at concurrency 32 and peaked lower in every paired run (three
// bench/ab.mjs runs, see bench/README.md). V8 reads the flag at each collection, so it is
// set before the gateway loads.
setFlagsFromString("--no-allocation-site-pretenuring")

const [NodeRuntime, Main] = await Promise.all([import("@effect/platform-node/NodeRuntime"), import("./Main.js")])

// Main prints a one-line reason itself; runMain still exits non-zero on failure.
// The gateway chooses its own log format (JSON lines by default): no second, pretty copy of each line.
NodeRuntime.runMain(Main.run(process.argv.slice(2)), { disableErrorReporting: true, disablePrettyLogger: true })
