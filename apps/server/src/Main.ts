/**
 * The `refundkit-server` program: flags, settings, logging, the gateway, and a
 * one-line message instead of a stack trace when it cannot start.
 *
 * @since 0.1.0
 */
import { ConfigurationError } from "@refundkit/core/RefundError"
import * as LedgerSql from "@refundkit/ledger-sql"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import { parseArgs } from "node:util"
import * as LogFormat from "./LogFormat.js"
import * as Server from "./Server.js"
import * as ServerConfig from "./ServerConfig.js"

/**
 * `refundkit-server --help`.
 *
 * @since 0.1.0
 */
export const usage = `Usage: refundkit-server [--sandbox] [--port <n>] [--host <addr>] [--ledger <path|:memory:|postgres://...>]

  --sandbox        start every installed provider's sandbox in-process and point the plugins at them
                   (prints a generated API key); also REFUNDKIT_SANDBOX=1
  --port <n>       port to listen on (default 8787; also PORT / REFUNDKIT_PORT; 0 picks a free one)
  --host <addr>    address to listen on (default 127.0.0.1; also REFUNDKIT_HOST)
  --ledger <url>   the ledger (default ./.refundkit/ledger.db; also REFUNDKIT_LEDGER)
  -h, --help       this text

Outside sandbox mode REFUNDKIT_API_KEYS (comma separated) is required, and each provider
reads its REFUNDKIT_<PROVIDER>_* settings. See the README for every setting.`

/**
 * The flags, parsed.
 *
 * @since 0.1.0
 */
export interface Flags {
  readonly help: boolean
  readonly sandbox: boolean
  readonly port?: number | undefined
  readonly host?: string | undefined
  readonly ledger?: string | undefined
}

/**
 * A usage mistake on the command line.
 *
 * @since 0.1.0
 */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

/**
 * Parses the bin's flags.
 *
 * @since 0.1.0
 */
export const parseFlags = (argv: ReadonlyArray<string>): Effect.Effect<Flags, UsageError> =>
  Effect.try({
    try: () =>
      parseArgs({
        args: [...argv],
        options: {
          help: { type: "boolean", short: "h" },
          sandbox: { type: "boolean" },
          port: { type: "string" },
          host: { type: "string" },
          ledger: { type: "string" }
        },
        strict: true,
        allowPositionals: false
      }).values,
    catch: (error) => new UsageError(error instanceof Error ? error.message : String(error))
  }).pipe(
    Effect.flatMap((values) => {
      const port = values.port === undefined ? undefined : Number(values.port)
      return port !== undefined && !(values.port !== "" && Number.isInteger(port) && port >= 0 && port <= 65535)
        ? Effect.fail(new UsageError(`--port must be a port number from 0 to 65535, got ${JSON.stringify(values.port)}`))
        : Effect.succeed({ help: values.help === true, sandbox: values.sandbox === true, port, host: values.host, ledger: values.ledger })
    })
  )

/**
 * Logs as JSON lines (or logfmt / pretty, `REFUNDKIT_LOG_FORMAT`) at
 * `REFUNDKIT_LOG_LEVEL` (default INFO; OFF, FATAL, ERROR, WARN, INFO, DEBUG, TRACE, ALL).
 *
 * @since 0.1.0
 */
export const loggerLayer = Layer.unwrapEffect(
  Effect.gen(function*() {
    const format = yield* ServerConfig.logFormat
    const level = yield* ServerConfig.logLevel
    const logger = format === "pretty" ? Logger.pretty : Logger.replace(Logger.defaultLogger, LogFormat.make(format))
    return Layer.merge(logger, Logger.minimumLogLevel(level))
  })
)

// A value the ledger refuses is named as the flag it came from: REFUNDKIT_LEDGER may be unset, or hold another value.
// The ledger's other settings (REFUNDKIT_LEDGER_STATEMENT_TIMEOUT) still come from the environment.
const ledgerFromFlag = (url: string) =>
  LedgerSql.layerConfig({ url }).pipe(Layer.mapError((error) =>
    error._tag === "ConfigurationError" && error.key === LedgerSql.LedgerConfig.key ? new ConfigurationError({ key: "--ledger", detail: error.detail }) : error
  ))

/**
 * The gateway until interrupted, as {@link run} runs it, but leaving why it could not start to
 * the caller: `refundkit serve` says it in the CLI's words and exit codes.
 *
 * @since 0.6.0
 */
export const serve = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const flags = yield* parseFlags(argv)
    if (flags.help) return yield* Console.log(usage)
    const config = yield* ServerConfig.config
    const options: Server.Options = {
      ...config,
      sandbox: flags.sandbox || config.sandbox,
      ...(flags.port === undefined ? {} : { port: flags.port }),
      ...(flags.host === undefined ? {} : { host: flags.host }),
      ...(flags.ledger === undefined ? {} : { stack: { ledger: ledgerFromFlag(flags.ledger) } })
    }
    const announce = Layer.effectDiscard(Effect.flatMap(Server.Started, (info) => Console.log(Server.banner(info))))
    return yield* Layer.launch(announce.pipe(Layer.provide(Server.layer(options))))
  }).pipe(Effect.provide(loggerLayer))

/**
 * Runs the gateway until interrupted (SIGINT/SIGTERM under `NodeRuntime.runMain`),
 * printing the banner once it listens, and one line on stderr when it cannot start.
 *
 * @since 0.1.0
 */
export const run = (argv: ReadonlyArray<string>) =>
  serve(argv).pipe(
    Effect.tapError((error) =>
      Console.error(`refundkit-server: ${error instanceof UsageError ? `${error.message}\n\n${usage}` : Server.explain(error)}`)
    )
  )
