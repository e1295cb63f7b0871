/**
 * Where the ledger lives, from one setting: `REFUNDKIT_LEDGER` is a SQLite file path
 * (the default, `./.refundkit/ledger.db`), `:memory:` (a SQLite database that lives as
 * long as the process), or a `postgres://` / `postgresql://` URL.
 *
 * The whole value is handled as a secret (`Redacted`) because a PostgreSQL URL may
 * carry a password; {@link describe} prints it with the password masked.
 *
 * @since 0.1.0
 */
import { ConfigurationError } from "@refundkit/core/RefundError"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/**
 * The environment variable the ledger reads.
 *
 * @since 0.1.0
 */
export const key = "REFUNDKIT_LEDGER"

/**
 * The SQLite file used when nothing is configured, relative to the working directory.
 *
 * @since 0.1.0
 */
export const defaultPath = "./.refundkit/ledger.db"

/**
 * A resolved ledger location.
 *
 * @since 0.1.0
 */
export type Location =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }

/**
 * Reads a location from a path, `:memory:` or a PostgreSQL URL. Any other
 * `scheme://` is refused rather than taken for a file name, and so is an empty value.
 *
 * @since 0.1.0
 */
export const parse = (value: string | Redacted.Redacted<string>): Either.Either<Location, ConfigurationError> => {
  const text = (Redacted.isRedacted(value) ? Redacted.value(value) : value).trim()
  // Only an unset setting means the default file. An empty one is most often a URL that did not
  // arrive (`REFUNDKIT_LEDGER=$DATABASE_URL` with it unset, `--ledger ''`): taken for the default,
  // each process would run on a SQLite file of its own and claim the same keys twice.
  if (text === "") {
    return Either.left(new ConfigurationError({ key, detail: `is empty; give a SQLite file path, :memory: or a postgres:// URL (when it is not set at all, the ledger is ${defaultPath})` }))
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase()
  if (scheme === undefined) {
    // `postgres:/db`, `postgresql:host/db`: a PostgreSQL URL mistyped, not a file name. Taken for
    // one, each instance would run on a SQLite file of its own and claim the same keys twice.
    if (/^postgres(ql)?:/i.test(text)) {
      return Either.left(new ConfigurationError({ key, detail: "a PostgreSQL URL starts with postgres:// or postgresql://" }))
    }
    return Either.right({ _tag: "Sqlite", filename: text })
  }
  if (scheme !== "postgres" && scheme !== "postgresql") {
    return Either.left(
      new ConfigurationError({
        key,
        detail: `unsupported ledger URL scheme "${scheme}://"; use a SQLite file path, :memory: or a postgres:// URL`
      })
    )
  }
  if (!URL.canParse(text)) {
    // The value is not echoed: it may hold a password.
    return Either.left(new ConfigurationError({ key, detail: "the PostgreSQL URL cannot be parsed" }))
  }
  return Either.right({ _tag: "Postgres", url: Redacted.make(text) })
}

/**
 * A location for logs and error messages: the PostgreSQL password is masked.
 *
 * @since 0.1.0
 */
export const describe = (location: Location): string => {
  if (location._tag === "Sqlite") return location.filename === ":memory:" ? "SQLite in memory" : `SQLite file ${location.filename}`
  return `PostgreSQL ${maskUrl(Redacted.value(location.url))}`
}

/**
 * A URL with its password replaced by `***`.
 *
 * @since 0.1.0
 */
export const maskUrl = (url: string): string => {
  if (!URL.canParse(url)) return "(unparseable URL)"
  const parsed = new URL(url)
  if (parsed.password !== "") parsed.password = "***"
  for (const name of [...parsed.searchParams.keys()]) {
    if (name.toLowerCase() === "password") parsed.searchParams.set(name, "***")
  }
  return parsed.toString()
}

const raw: Config.Config<Redacted.Redacted<string>> = Config.redacted(key).pipe(Config.withDefault(Redacted.make(defaultPath)))

/**
 * `REFUNDKIT_LEDGER`, defaulting to {@link defaultPath}.
 *
 * @since 0.1.0
 */
export const config: Config.Config<Location> = Config.mapOrFail(raw, (value) =>
  Either.mapLeft(parse(value), (error) => ConfigError.InvalidData([key], error.detail)))

/**
 * {@link config} read from the environment, with a problem reported as core's
 * `ConfigurationError`.
 *
 * @since 0.1.0
 */
export const load: Effect.Effect<Location, ConfigurationError> = raw.pipe(
  Effect.mapError((error) => new ConfigurationError({ key, detail: `cannot be read: ${String(error)}` })),
  Effect.flatMap(parse)
)

/**
 * The environment variable that sets a PostgreSQL ledger's `statementTimeoutMillis`, as a
 * duration (`"30 seconds"`, `"500 millis"`): how long any statement may go without the
 * server's answer.
 *
 * @since 0.2.0
 */
export const statementTimeoutKey = "REFUNDKIT_LEDGER_STATEMENT_TIMEOUT"

/**
 * The longest `REFUNDKIT_LEDGER_STATEMENT_TIMEOUT` taken: Node's timers hold at most 2^31 - 1 ms
 * (about 24.8 days) and fire at once past it, and a statement waiting for a lock gets
 * `turnWaitMillis` on top. `100 days` used to bound every statement at 1 ms.
 *
 * @since 0.2.0
 */
export const maxStatementTimeout: Duration.Duration = Duration.days(24)

/**
 * `REFUNDKIT_LEDGER_STATEMENT_TIMEOUT`, when set: a positive duration of at most
 * {@link maxStatementTimeout}.
 *
 * @since 0.2.0
 */
export const statementTimeout: Config.Config<Option.Option<Duration.Duration>> = Config.option(
  Config.duration(statementTimeoutKey).pipe(
    Config.mapOrFail((d) =>
      Duration.greaterThan(d, Duration.zero)
        ? Duration.lessThanOrEqualTo(d, maxStatementTimeout)
          ? Either.right(d)
          : Either.left(ConfigError.InvalidData([], "must be at most 24 days (Node's timers hold no longer), such as \"30 seconds\""))
        : Either.left(ConfigError.InvalidData([], "must be a positive duration such as \"30 seconds\""))
    )
  )
)

/**
 * {@link statementTimeout} read from the environment, with a problem reported as core's
 * `ConfigurationError`.
 *
 * @since 0.2.0
 */
export const loadStatementTimeout: Effect.Effect<Option.Option<Duration.Duration>, ConfigurationError> = statementTimeout.pipe(
  // One sentence naming the setting and the rule, as core words every other setting; `String(error)`
  // printed Effect's nesting and a bare "Expected a duration" without the unit it wants.
  Effect.mapError(ConfigurationError.fromConfigError)
)
