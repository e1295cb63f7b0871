/**
 * `refundkit serve`: the gateway, with the same settings as `refundkit-server`.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ExitCode from "../ExitCode.js"
import * as Flags from "../Flags.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

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
      // The gateway prints its own banner and its own one-line reason when it cannot start; with --json a
      // script also gets that reason as an error object on stdout, as every other command gives it.
      return yield* Main.run(argv).pipe(
        Effect.as(ExitCode.ok),
        Effect.catchAll((error) => {
          const usage = error instanceof Main.UsageError
          const configuration = !usage && (ConfigError.isConfigError(error) || error._tag === "ConfigurationError")
          const code = usage ? "usage_error" : configuration ? "configuration_error" : "startup_error"
          const object = { error: { code, message: usage ? error.message : Server.explain(error) } }
          return Effect.as(globals.json ? Output.json(object) : Effect.void, usage ? ExitCode.usage : ExitCode.failure)
        })
      )
    }), { interrupted: ExitCode.ok })
).pipe(Command.withDescription(
  "Run the refundkit gateway until Ctrl-C.\n\n" +
    "It takes the same settings as refundkit-server; outside --sandbox it needs REFUNDKIT_API_KEYS.\n\n" +
    "Example: refundkit serve --sandbox --port 8787"
))
