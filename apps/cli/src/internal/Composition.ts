/**
 * The heavy part of the environment, loaded only by commands that need it so `--help`
 * and `--version` stay fast: the gateway's shared pieces (`Installed`, `Sandboxes`,
 * `Stack` from `@refundkit/server`) put together for one CLI invocation.
 */
import type * as Providers from "@refundkit/core/Providers"
import { ConfigurationError } from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import type * as Sandbox from "@refundkit/core/Sandbox"
import * as LedgerSql from "@refundkit/ledger-sql"
// The modules themselves, not the package's barrel: the barrel loads the whole HTTP server
// (about 20 MB of code) that no CLI command but `serve` needs.
import * as Installed from "@refundkit/server/Installed"
import * as Sandboxes from "@refundkit/server/Sandboxes"
import * as Stack from "@refundkit/server/Stack"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { type LedgerOptions, Setup, type StartupError, wantsSandbox } from "../Environment.js"
import type { Globals } from "../Globals.js"

/** Every installed plugin's sandbox on an ephemeral port, for the life of the scope. */
export const startSandboxes: Effect.Effect<ReadonlyArray<Sandbox.Handle>, ConfigurationError, Scope.Scope> = Sandboxes.start().pipe(
  Effect.map((running) => running.handles),
  Effect.mapError((error) => new ConfigurationError({ detail: `a sandbox could not start: ${error.message}` }))
)

const startupError = (error: Stack.StackError): StartupError =>
  ConfigError.isConfigError(error) ? ConfigurationError.fromConfigError(error) : error

/**
 * The settings a plugin lacks when that is all that is wrong with them; undefined for
 * a plugin whose settings are present but invalid (which stops the command).
 * Some plugins wrap their Config error in core's ConfigurationError, so both are read.
 */
const missingSettings = (error: ConfigError.ConfigError | ConfigurationError): string | undefined => {
  if (ConfigError.isConfigError(error)) {
    return ConfigError.isMissingDataOnly(error) ? `missing ${keysIn(String(error)) ?? "its settings"}` : undefined
  }
  const text = error.detail
  return text.includes("Missing data") && !text.includes("Invalid data") ? `missing ${keysIn(text) ?? "its settings"}` : undefined
}

const keysIn = (text: string): string | undefined => {
  const keys = [...new Set([...text.matchAll(/Missing data at ([A-Za-z0-9_.]+)/g)].map((m) => m[1]!))]
  return keys.length === 0 ? undefined : keys.join(", ")
}

type Built<WithLedger extends boolean> = WithLedger extends true ? Refunds.Refunds | Providers.Providers | Setup : Providers.Providers | Setup

const build = <WithLedger extends boolean>(globals: Globals, withLedger: WithLedger, ledger: LedgerOptions = {}): Layer.Layer<Built<WithLedger>, StartupError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const running = (yield* wantsSandbox(globals))
      ? Option.some(yield* Sandboxes.start().pipe(Effect.mapError((error) => new ConfigurationError({ detail: `a sandbox could not start: ${error.message}` }))))
      : Option.none()
    const notConfigured = new Map<string, string>()
    const plugins = Installed.plugins.map((plugin): Installed.Plugin => ({
      ...plugin,
      layerConfig: plugin.layerConfig.pipe(
        Layer.catchAll((error) => {
          const missing = missingSettings(error)
          return missing === undefined ? Layer.fail(error) : Layer.effectDiscard(Effect.sync(() => void notConfigured.set(plugin.id, missing)))
        })
      )
    }))
    const layer = withLedger
      ? Stack.layer({
        plugins,
        quietStart: true,
        ledger: Option.match(globals.ledger, {
          onNone: () => LedgerSql.layerConfig(ledger),
          // The location came from the flag, so a refusal names the flag, not the variable it stands in for.
          onSome: (url) =>
            LedgerSql.layerConfig({ url, ...ledger }).pipe(Layer.mapError((error) =>
              error._tag === "ConfigurationError" && error.key === LedgerSql.LedgerConfig.key ? new ConfigurationError({ key: "--ledger", detail: error.detail }) : error
            ))
        })
      })
      // `providers` is how a setup is checked: a gateway setting the other commands would refuse is refused here too.
      : Layer.merge(Stack.providersLayer(plugins), Layer.effectDiscard(Refunds.optionsConfigWith()))
    // Not silenced: the fibers the stack starts (the in-flight leases) log to the command's stderr when their work fails.
    const context = yield* Layer.build(layer).pipe(
      Effect.mapError(startupError),
      Option.isSome(running) ? Effect.withConfigProvider(running.value.configProvider) : (self) => self
    )
    const setup = Layer.succeed(Setup, { notConfigured, sandboxes: Option.match(running, { onNone: () => [], onSome: (r) => r.handles }) })
    return Layer.merge(Layer.succeedContext(context), setup) as Layer.Layer<Built<WithLedger>>
  }))

/** The registry only (no ledger): for `refundkit providers`. */
export const providersLayer = (globals: Globals): Layer.Layer<Providers.Providers | Setup, StartupError> => build(globals, false)

/** Registry, ledger and Refunds, with the stack's crash recovery on start. */
export const layer = (globals: Globals, ledger: LedgerOptions = {}): Layer.Layer<Refunds.Refunds | Providers.Providers | Setup, StartupError> =>
  build(globals, true, ledger)
