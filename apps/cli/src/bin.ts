#!/usr/bin/env node
/**
 * The `refundkit` executable. `--version` is answered before anything heavy is
 * loaded (start-up time matters to scripts that call the CLI in a loop); everything
 * else loads the command tree and runs it.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version
const args = process.argv.slice(2)

if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`${version}\n`)
} else {
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
