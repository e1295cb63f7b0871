/**
 * What the commands run against: the provider registry, the ledger and core's
 * Refunds service, configured from `REFUNDKIT_*`, `--ledger` and `--sandbox`. The
 * plugins and SQL drivers behind it are loaded on first use, so `--help` stays fast.
 *
 * @since 0.1.0
 */
import * as Providers from "@refundkit/core/Providers"
import { ConfigurationError, type LedgerError, UnknownProvider } from "@refundkit/core/RefundError"
import type * as Refunds from "@refundkit/core/Refunds"
import type * as Sandbox from "@refundkit/core/Sandbox"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Globals } from "./Globals.js"

/**
 * How this invocation was set up: plugins that are installed but could not be
 * configured (and why), and the sandboxes started in-process.
 *
 * @since 0.1.0
 */
export class Setup extends Context.Tag("@refundkit/cli/Setup")<Setup, {
  readonly notConfigured: ReadonlyMap<string, string>
  readonly sandboxes: ReadonlyArray<Sandbox.Handle>
}>() {}

/**
 * Why the environment could not be built.
 *
 * @since 0.1.0
 */
export type StartupError = ConfigurationError | LedgerError

/**
 * Whether sandboxes are wanted: `--sandbox` or `REFUNDKIT_SANDBOX=1`.
 *
 * @since 0.1.0
 */
export const wantsSandbox = (globals: Globals): Effect.Effect<boolean, ConfigurationError> =>
  globals.sandbox ? Effect.succeed(true) : Config.boolean("REFUNDKIT_SANDBOX").pipe(
    Config.withDefault(false),
    // Refused, as the gateway does: read as "off", a typo (True, ture) would send real refunds to the providers set up.
    Effect.mapError(() => new ConfigurationError({ key: "REFUNDKIT_SANDBOX", detail: "must be true or false (also 1/0, yes/no, on/off), in lower case" }))
  )

/**
 * The environment lines of running sandboxes, merged.
 *
 * @since 0.1.0
 */
export const sandboxEnv = (handles: ReadonlyArray<Sandbox.Handle>): Record<string, string> => Object.assign({}, ...handles.map((handle) => handle.env))

const composition = Effect.promise(() => import("./internal/Composition.js"))

/**
 * Starts every installed plugin's sandbox on an ephemeral port, for the life of the scope.
 *
 * @since 0.1.0
 */
export const startSandboxes: Effect.Effect<ReadonlyArray<Sandbox.Handle>, ConfigurationError, Scope.Scope> = Effect.flatMap(composition, (c) => c.startSandboxes)

/**
 * The registry only (no ledger): for `refundkit providers`.
 *
 * @since 0.1.0
 */
export const providersLayer = (globals: Globals): Layer.Layer<Providers.Providers | Setup, StartupError> =>
  Layer.unwrapEffect(Effect.map(composition, (c) => c.providersLayer(globals)))

/**
 * How a command wants its ledger opened, beyond where it is.
 *
 * @since 0.1.0
 */
export interface LedgerOptions {
  /** See `@refundkit/ledger-sql`'s `SqliteOptions.commitDelayMillis` (SQLite only). */
  readonly commitDelayMillis?: number | undefined
}

/**
 * Registry, ledger and Refunds.
 *
 * @since 0.1.0
 */
export const layer = (globals: Globals, ledger: LedgerOptions = {}): Layer.Layer<Refunds.Refunds | Providers.Providers | Setup, StartupError> =>
  Layer.unwrapEffect(Effect.map(composition, (c) => c.layer(globals, ledger)))

/**
 * An unknown id's error listing every installed plugin: the registry holds only the configured
 * ones, and "Installed providers: none" in a shell without settings sent users looking for a
 * broken install.
 *
 * @since 0.1.0
 */
export const unknownProvider = (error: UnknownProvider, setup: Context.Tag.Service<Setup>): UnknownProvider =>
  new UnknownProvider({ provider: error.provider, installed: [...new Set([...error.installed, ...setup.notConfigured.keys()])].sort() })

/**
 * The provider for an id, explaining an installed-but-unconfigured one.
 *
 * @since 0.1.0
 */
export const provider = (id: string) =>
  Effect.gen(function*() {
    const registry = yield* Providers.Providers
    const setup = yield* Setup
    return yield* registry.get(id).pipe(
      Effect.catchTag("UnknownProvider", (error): Effect.Effect<never, UnknownProvider | ConfigurationError> => {
        const why = setup.notConfigured.get(id)
        return why === undefined
          ? Effect.fail(unknownProvider(error, setup))
          : Effect.fail(new ConfigurationError({ key: `REFUNDKIT_${id.toUpperCase()}_*`, detail: `${id} is installed but not configured (${why}); set its settings or use --sandbox` }))
      })
    )
  })
