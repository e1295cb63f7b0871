/**
 * What a command prints of the stack's own log. Effect's default logger writes every level to
 * stdout in logfmt, where a warning from the ledger (a refund's lease that could not be renewed, a
 * turn taken over) would land inside `--json` output. A command prints the warnings and errors
 * instead, on stderr, as the sentences the CLI says everything else in (`warning: ...`), and drops
 * what the gateway logs for its operators at lower levels.
 */
import * as Cause from "effect/Cause"
import * as HashMap from "effect/HashMap"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

const wordOf = (level: LogLevel.LogLevel): string => (LogLevel.greaterThanEqual(level, LogLevel.Error) ? "error" : "warning")

/**
 * One line per log entry: `warning: <message> (<annotation>: <value>, ...)`, and the first line of its
 * cause when it has one.
 */
export const sentence = (entry: {
  readonly logLevel: LogLevel.LogLevel
  readonly message: unknown
  readonly annotations: HashMap.HashMap<string, unknown>
  readonly cause: Cause.Cause<unknown>
}): string => {
  const words = (Array.isArray(entry.message) ? entry.message : [entry.message]).map(String).join(" ")
  const notes = [...HashMap.toEntries(entry.annotations)].map(([key, value]) => `${key}: ${String(value)}`)
  const why = Cause.isEmpty(entry.cause) ? "" : `: ${Cause.pretty(entry.cause).split("\n")[0]}`
  return `${wordOf(entry.logLevel)}: ${words}${why}${notes.length === 0 ? "" : ` (${notes.join(", ")})`}`
}

// On a terminal, `bulk`'s progress bar may be drawn on the current line (without a newline): a warning clears it
// first, and the bar is drawn again below at its next tick.
const clearLine = process.stderr.isTTY === true ? "\r\x1b[2K" : ""

const logger = Logger.filterLogLevel(
  Logger.withConsoleError(Logger.make((entry) => `${clearLine}${sentence(entry)}`)),
  LogLevel.greaterThanEqual(LogLevel.Warning)
)

/** The command's logger in place of Effect's default one, for the whole command and every fiber it starts. */
export const layer: Layer.Layer<never> = Logger.replace(Logger.defaultLogger, logger)
