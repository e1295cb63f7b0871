/**
 * The refund stack the server and the CLI share: the registry of installed plugins
 * (configured from `REFUNDKIT_<P>_*`), the ledger (`REFUNDKIT_LEDGER`), core's
 * Refunds service (`REFUNDKIT_CALL_TIMEOUT`, `REFUNDKIT_MAX_RETRIES`), and crash
 * recovery on start.
 *
 * @since 0.1.0
 */
import type { Ledger } from "@refundkit/core/Ledger"
import * as Providers from "@refundkit/core/Providers"
import { ConfigurationError, type LedgerError } from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import * as LedgerSql from "@refundkit/ledger-sql"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Installed from "./Installed.js"
import * as ProviderClient from "./ProviderClient.js"

/**
 * What the stack provides.
 *
 * @since 0.1.0
 */
export type Services = Refunds.Refunds | Providers.Providers | Ledger

/**
 * Why the stack could not start.
 *
 * @since 0.1.0
 */
export type StackError = ConfigError.ConfigError | ConfigurationError | LedgerError

/**
 * @since 0.1.0
 */
export interface Options {
  /** The plugins to install (default: every one in {@link Installed.plugins}). */
  readonly plugins?: ReadonlyArray<Installed.Plugin> | undefined
  /** Replaces the ledger at `REFUNDKIT_LEDGER` (tests, embedding). */
  readonly ledger?: Layer.Layer<Ledger, LedgerError | ConfigurationError> | undefined
  /** Replaces the options read from `REFUNDKIT_CALL_TIMEOUT` / `REFUNDKIT_MAX_RETRIES` / `REFUNDKIT_MAX_RATE_LIMIT_WAIT`. */
  readonly refunds?: Refunds.Options | undefined
  /**
   * How long a call may wait for a provider's rate limit when `REFUNDKIT_MAX_RATE_LIMIT_WAIT`
   * is unset. The gateway bounds it (an HTTP client should not hang for Airalo's 5 minutes);
   * the CLI's bulk run leaves it unbounded so rows wait instead of failing.
   */
  readonly defaultRateLimitWait?: Duration.DurationInput | undefined
  /**
   * Refunds left in `requested` for longer than this are moved to `unknown` on start
   * (`REFUNDKIT_RECOVERY_GRACE`, default 2 minutes), except those whose lease a live process
   * still renews (`Refunds.Options.heartbeat`): a call that times out on every attempt lasts
   * about 2.5 minutes with the defaults, and its refund stays `requested` until its answer.
   */
  readonly recoveryGrace?: Duration.DurationInput | undefined
  /**
   * Leaves the start's own announcement unsaid: how many refunds recovery moved to `unknown`. The CLI says
   * what concerns its command itself (a bulk run reports its rows in doubt), while the warnings of work that
   * goes on (a lease that could not be renewed) still reach its log.
   */
  readonly quietStart?: boolean | undefined
}

/**
 * `REFUNDKIT_RECOVERY_GRACE`.
 *
 * @since 0.1.0
 */
export const recoveryGraceConfig: Config.Config<Duration.Duration> = Config.duration("REFUNDKIT_RECOVERY_GRACE").pipe(
  Config.withDefault(Duration.minutes(2))
)

const isMissing = (error: ConfigError.ConfigError | ConfigurationError): boolean =>
  ConfigError.isConfigError(error) && ConfigError.isMissingDataOnly(error)

const missingKeys = (error: ConfigError.ConfigError): ReadonlyArray<string> =>
  ConfigError.reduceWithContext(error, undefined, {
    andCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
    orCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
    invalidDataCase: () => [],
    missingDataCase: (_, path) => [path.join("_")],
    sourceUnavailableCase: () => [],
    unsupportedCase: () => []
  })

/**
 * The registry of the installed plugins. `REFUNDKIT_PROVIDERS` (comma separated ids)
 * names the ones to enable, each of which must be fully configured; without it every
 * installed plugin whose settings are present is enabled, and one with settings
 * missing is skipped with a warning naming them (so a gateway for one provider does
 * not need the others' credentials). Invalid settings always stop the start.
 *
 * @since 0.1.0
 */
export const providersLayer = (
  plugins: ReadonlyArray<Installed.Plugin> = Installed.plugins
): Layer.Layer<Providers.Providers, ConfigError.ConfigError | ConfigurationError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const wanted = yield* Config.option(Config.string("REFUNDKIT_PROVIDERS"))
      const ids = Option.map(wanted, (text) => text.split(",").map((s) => s.trim()).filter((s) => s !== ""))
      if (Option.isSome(ids)) {
        const unknown = ids.value.filter((id) => !plugins.some((p) => p.id === id))
        if (unknown.length > 0) {
          return Layer.fail(
            new ConfigurationError({
              key: "REFUNDKIT_PROVIDERS",
              detail: `${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not installed; installed: ${plugins.map((p) => p.id).join(", ")}`
            })
          )
        }
      }
      const layers = plugins.flatMap((plugin) => {
        if (Option.isSome(ids)) {
          // Named in REFUNDKIT_PROVIDERS, so its settings are required; said as the skip warning says it, not as
          // Effect's ConfigError (which printed each missing secret as "<redacted>").
          return ids.value.includes(plugin.id)
            ? [plugin.layerConfig.pipe(
              Layer.catchAll((error) =>
                isMissing(error) && ConfigError.isConfigError(error)
                  ? Layer.fail(
                    new ConfigurationError({
                      key: "REFUNDKIT_PROVIDERS",
                      detail: `${plugin.id} is enabled but not configured (missing ${missingKeys(error).join(", ")}); set them, or leave ${plugin.id} out`
                    })
                  )
                  : Layer.fail(error)
              )
            )]
            : []
        }
        return [
          plugin.layerConfig.pipe(
            Layer.catchAll((error) =>
              isMissing(error) && ConfigError.isConfigError(error)
                ? Layer.effectDiscard(
                  Effect.logWarning(`provider ${plugin.id} is not configured (missing ${missingKeys(error).join(", ")}); it is not enabled`)
                )
                : Layer.fail(error)
            )
          )
        ]
      })
      return Layer.provideMerge(Layer.mergeAll(Layer.empty, ...layers), Providers.layer).pipe(Layer.provide(ProviderClient.layer()))
    })
  )

/**
 * The whole stack, from configuration. Provide a ConfigProvider (e.g. the sandboxes')
 * to it to change where the settings come from.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Services, StackError> => {
  const ledger = options.ledger ?? LedgerSql.layerConfig()
  const refunds = (options.refunds === undefined
    ? Refunds.layerConfigWith({ maxRateLimitWait: options.defaultRateLimitWait })
    : Refunds.layer(options.refunds)).pipe(
    Layer.provideMerge(Layer.merge(providersLayer(options.plugins), ledger))
  )
  const recovery = Layer.effectDiscard(
    Effect.gen(function*() {
      const grace = options.recoveryGrace === undefined ? yield* recoveryGraceConfig : Duration.decode(options.recoveryGrace)
      const refundsService = yield* Refunds.Refunds
      const moved = yield* refundsService.recover(grace)
      if (moved.length > 0 && options.quietStart !== true) {
        yield* Effect.logWarning(`recovery: ${moved.length} refund(s) left in requested by an interrupted process are now unknown`).pipe(
          Effect.annotateLogs("refundIds", moved.map((r) => r.id).join(","))
        )
      }
    })
  )
  return recovery.pipe(Layer.provideMerge(refunds))
}
