/**
 * The gateway's settings: an interface, defaults, and `config` reading them from the
 * environment with Effect `Config` (the bin's flags override it).
 *
 * @since 0.1.0
 */
import * as Settings from "@refundkit/core/Settings"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { type AccessLog, defaultBodyLimitBytes } from "./RequestMiddleware.js"
import * as SyncLoop from "./SyncLoop.js"

/**
 * @since 0.1.0
 */
export interface ServerConfig {
  /** 0 picks a free port. */
  readonly port: number
  readonly host: string
  /** Keys accepted in `Authorization: Bearer <key>`; required outside sandbox mode. */
  readonly apiKeys: ReadonlyArray<Redacted.Redacted<string>>
  /** Start every installed provider's sandbox in-process and point the plugins at them. */
  readonly sandbox: boolean
  readonly bodyLimitBytes: number
  /** The background sync loop; `undefined` turns it off. */
  readonly sync: SyncLoop.Options | undefined
  /** How long in-flight requests may take to finish after SIGTERM before their connections are closed. */
  readonly shutdownGrace: Duration.Duration
  /**
   * One log line per request, in the general log's format (`true`: JSON); `false` turns it off.
   * From the environment it is on when `REFUNDKIT_ACCESS_LOG` is and `REFUNDKIT_LOG_LEVEL` lets INFO lines through.
   */
  readonly accessLog: AccessLog
}

/**
 * Port 8787 on 127.0.0.1, no keys, no sandbox, 1 MiB bodies, the default sync loop,
 * 10 s shutdown grace, access log on.
 *
 * @since 0.1.0
 */
export const defaults: ServerConfig = {
  port: 8787,
  host: "127.0.0.1",
  apiKeys: [],
  sandbox: false,
  bodyLimitBytes: defaultBodyLimitBytes,
  sync: SyncLoop.defaultOptions,
  shutdownGrace: Duration.seconds(10),
  accessLog: true
}

// REFUNDKIT_PORT, else the platform's PORT, else the default; only the one in use is validated, and
// its error names it alone (falling back with orElse reported a bad PORT as "missing REFUNDKIT_PORT, or ...").
const port = Config.all({
  own: Config.option(Config.string("REFUNDKIT_PORT")),
  platform: Config.option(Config.string("PORT"))
}).pipe(
  Config.mapOrFail(({ own, platform }): Either.Either<number, ConfigError.ConfigError> => {
    const [name, text] = Option.isSome(own) ? ["REFUNDKIT_PORT", own.value] : Option.isSome(platform) ? ["PORT", platform.value] : [undefined, ""]
    if (name === undefined) return Either.right(defaults.port)
    return /^\d{1,5}$/.test(text) && Number(text) <= 65535
      ? Either.right(Number(text))
      : Either.left(ConfigError.InvalidData([name], `must be a port number from 0 to 65535, got ${JSON.stringify(text)}`))
  })
)

/**
 * Comma separated keys, blanks dropped.
 *
 * @since 0.1.0
 */
export const parseKeys = (text: string): ReadonlyArray<Redacted.Redacted<string>> =>
  text.split(",").map((key) => key.trim()).filter((key) => key !== "").map((key) => Redacted.make(key))

// A header carries bytes, and clients disagree on how they encode other characters (curl sends
// UTF-8, fetch Latin-1; Node reads Latin-1): such a key would be accepted here and refused there.
const printableAscii = /^[\x20-\x7e]*$/

const apiKeys = Config.redacted("REFUNDKIT_API_KEYS").pipe(
  Config.mapOrFail((keys) => {
    const parsed = parseKeys(Redacted.value(keys))
    const odd = parsed.findIndex((key) => !printableAscii.test(Redacted.value(key)))
    return odd === -1
      ? Either.right(parsed)
      : Either.left(ConfigError.InvalidData(["REFUNDKIT_API_KEYS"], `key ${odd + 1} has a character outside printable ASCII, which an Authorization header cannot carry reliably`))
  }),
  Config.withDefault<ReadonlyArray<Redacted.Redacted<string>>>([])
)

const sync = Config.all({
  interval: Config.string("REFUNDKIT_SYNC_INTERVAL").pipe(Config.withDefault("10 seconds")),
  batchSize: Settings.wholeNumber("REFUNDKIT_SYNC_BATCH", { min: 1, max: Number.MAX_SAFE_INTEGER }, "must be a positive number of refunds").pipe(
    Config.withDefault(SyncLoop.defaultOptions.batchSize)
  ),
  recoveryGrace: Config.duration("REFUNDKIT_RECOVERY_GRACE").pipe(Config.withDefault(Duration.decode(SyncLoop.defaultOptions.recoveryGrace)))
}).pipe(
  Config.mapOrFail(({ batchSize, interval, recoveryGrace }): Either.Either<SyncLoop.Options | undefined, ConfigError.ConfigError> => {
    const text = interval.trim().toLowerCase()
    if (text === "off" || text === "0") return Either.right(undefined)
    const parsed = Duration.decodeUnknown(interval)
    // "0" is off, so every spelling of zero is: a zero interval would sweep the ledger back to back.
    if (Option.isSome(parsed) && Duration.isZero(parsed.value)) return Either.right(undefined)
    return Option.isSome(parsed)
      ? Either.right({ ...SyncLoop.defaultOptions, interval: parsed.value, batchSize, recoveryGrace })
      : Either.left(ConfigError.InvalidData(["REFUNDKIT_SYNC_INTERVAL"], `must be a duration such as "10 seconds", or "off"; got ${JSON.stringify(interval)}`))
  })
)

/**
 * `REFUNDKIT_LOG_LEVEL`: the least severe level logged (default INFO).
 *
 * @since 0.1.0
 */
export const logLevel: Config.Config<LogLevel.LogLevel> = Config.logLevel("REFUNDKIT_LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))

/**
 * `REFUNDKIT_LOG_FORMAT`: `json` (default), `logfmt` or `pretty`.
 *
 * @since 0.1.0
 */
export const logFormat: Config.Config<"json" | "logfmt" | "pretty"> = Config.literal("json", "logfmt", "pretty")("REFUNDKIT_LOG_FORMAT").pipe(
  Config.withDefault("json" as const)
)

// Access lines are INFO lines: an operator who asked for WARN and up, or for no log, gets none,
// and they come in the format the rest of the log is in.
const accessLog = Config.all({
  on: Config.boolean("REFUNDKIT_ACCESS_LOG").pipe(Config.withDefault(true)),
  level: logLevel,
  format: logFormat
}).pipe(Config.map(({ format, level, on }): AccessLog => on && LogLevel.lessThanEqual(level, LogLevel.Info) ? format : false))

/**
 * `REFUNDKIT_PORT` (or `PORT`), `REFUNDKIT_HOST`, `REFUNDKIT_API_KEYS` (comma
 * separated), `REFUNDKIT_SANDBOX`, `REFUNDKIT_BODY_LIMIT` (bytes),
 * `REFUNDKIT_SYNC_INTERVAL` ("off" to disable), `REFUNDKIT_SYNC_BATCH`,
 * `REFUNDKIT_RECOVERY_GRACE`, `REFUNDKIT_SHUTDOWN_GRACE`, `REFUNDKIT_ACCESS_LOG` (with
 * `REFUNDKIT_LOG_LEVEL` and `REFUNDKIT_LOG_FORMAT`).
 *
 * @since 0.1.0
 */
export const config: Config.Config<ServerConfig> = Config.all({
  port,
  host: Config.nonEmptyString("REFUNDKIT_HOST").pipe(Config.withDefault(defaults.host)),
  apiKeys,
  sandbox: Config.boolean("REFUNDKIT_SANDBOX").pipe(Config.withDefault(false)),
  bodyLimitBytes: Settings.wholeNumber("REFUNDKIT_BODY_LIMIT", { min: 1, max: Number.MAX_SAFE_INTEGER }, "must be a positive number of bytes").pipe(
    Config.withDefault(defaults.bodyLimitBytes)
  ),
  sync,
  shutdownGrace: Config.duration("REFUNDKIT_SHUTDOWN_GRACE").pipe(Config.withDefault(defaults.shutdownGrace)),
  accessLog
})
