/**
 * `refundkit serve`: the gateway, with the same settings as `refundkit-server`.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { ConfigurationError } from "@refundkit/core/RefundError"
import type { Main, Server } from "@refundkit/server"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ExitCode from "../ExitCode.js"
import * as Flags from "../Flags.js"
import * as Globals from "../Globals.js"
import type * as Output from "../Output.js"
import * as Run from "../Run.js"

type StartFailure = Effect.Effect.Error<ReturnType<typeof Main.serve>>

/**
 * Why the gateway did not start, as every other command says it: a setting missing or wrong is a
 * configuration problem naming it (exit 2, "missing settings" in the CLI's exit codes), a flag the
 * gateway refuses a usage error (exit 2), anything else (the port taken, the ledger unreachable) a
 * failure (exit 1). `refundkit-server` prints its own line and exits 1 for all of them, as its README says.
 */
const failureOf = (
  error: StartFailure,
  explain: typeof Server.explain,
  isUsage: (error: StartFailure) => error is Main.UsageError
): Output.Describable => {
  if (isUsage(error)) return { code: "usage_error", message: error.message }
  if (ConfigError.isConfigError(error)) return ConfigurationError.fromConfigError(error)
  switch (error._tag) {
    case "ConfigurationError":
    case "LedgerError":
      return error
    case "StartupError":
      return error.setting === undefined ? { code: "startup_error", message: error.message } : new ConfigurationError({ key: error.setting, detail: error.message })
    default:
      return { code: "startup_error", message: explain(error) }
  }
}

/**
 * The `refundkit serve` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("serve", {
  ...Globals.options,
  port: Flags.integer("port").pipe(Options.withDescription("Port to listen on (default 8787; also PORT / REFUNDKIT_PORT; 0 picks a free one)."), Options.optional),
  host: Options.text("host").pipe(Options.withDescription("Address to listen on (default 127.0.0.1; also REFUNDKIT_HOST)."), Options.optional)
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      // The gateway (HttpApi, OpenAPI) is loaded only for this command.
      const { Main, Server } = yield* Effect.promise(() => import("@refundkit/server"))
      const argv = [
        ...(globals.sandbox ? ["--sandbox"] : []),
        ...Option.match(own.port, { onNone: () => [], onSome: (port) => ["--port", String(port)] }),
        ...Option.match(own.host, { onNone: () => [], onSome: (host) => ["--host", host] }),
        ...Option.match(globals.ledger, { onNone: () => [], onSome: (ledger) => ["--ledger", ledger] })
      ]
      // The gateway prints its own banner; why it could not start is said as every command says an error
      // (`error: ...` on stderr, the error object on stdout with --json), with the CLI's exit codes.
      return yield* Main.serve(argv).pipe(
        Effect.as(ExitCode.ok),
        Effect.mapError((error) => failureOf(error, Server.explain, (e): e is InstanceType<typeof Main.UsageError> => e instanceof Main.UsageError))
      )
    }), { interrupted: ExitCode.ok, logs: "own" })
).pipe(Command.withDescription(
  "Run the refundkit gateway until Ctrl-C.\n\n" +
    "It takes the same settings as refundkit-server; outside --sandbox it needs REFUNDKIT_API_KEYS.\n\n" +
    "Example: refundkit serve --sandbox --port 8787"
))
