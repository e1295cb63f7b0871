#!/usr/bin/env node
/**
 * The `refundkit` executable. `--version` is answered before anything heavy is
 * loaded (start-up time matters to scripts that call the CLI in a loop); everything
 * else loads the command tree and runs it.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { setFlagsFromString } from "node:v8"

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version
const args = process.argv.slice(2)

if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`${version}\n`)
} else {
  // V8 moves an allocation site to old-space allocation once most of its objects survive a
  // young collection. A streaming pass (bulk, dry run) sometimes trips that early on, after which
  // every row is born in the old generation and the heap swings 35 -> 150 MiB between full
  // collections: a 1M-row dry run then peaked at ~240 MiB instead of ~150 MiB, in about one run in
  // five. The CLI's data is short-lived by design, so the heuristic only ever costs it. V8 reads
  // the flag at each collection, so setting it this early takes effect.
  setFlagsFromString("--no-allocation-site-pretenuring")
  // Module by module: the `effect` index would load every module of the library (~20 MiB) for three of them.
  const [Effect, Exit, Cause, NodeRuntime, NodeContext, Cli, Run] = await Promise.all([
    import("effect/Effect"),
    import("effect/Exit"),
    import("effect/Cause"),
    import("@effect/platform-node/NodeRuntime"),
    import("@effect/platform-node/NodeContext"),
    import("./Cli.js"),
    import("./Run.js")
  ])
  let code = 0
  const status = { set: (next: number) => Effect.sync(() => void (code = next)) }
  NodeRuntime.runMain(
    Cli.run(process.argv, version).pipe(
      Effect.provideService(Run.ExitStatus, status),
      Effect.provide(NodeContext.layer),
      // No tracer is ever installed, yet with tracing on every provider call still builds an HTTP client span
      // (and every `withSpan` in the stack a span), per bulk row.
      Effect.withTracerEnabled(false)
    ),
    {
      disableErrorReporting: false,
      // `serve` installs the gateway's own log format; a second, pretty logger would print every line twice.
      disablePrettyLogger: true,
      teardown: (exit, onExit) => onExit(Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? Math.max(code, 1) : code)
    }
  )
}
