#!/usr/bin/env node
/**
 * `refundkit-server`: see `Main.usage`.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Main from "./Main.js"

// Main prints a one-line reason itself; runMain still exits non-zero on failure.
// The gateway chooses its own log format (JSON lines by default): no second, pretty copy of each line.
NodeRuntime.runMain(Main.run(process.argv.slice(2)), { disableErrorReporting: true, disablePrettyLogger: true })
