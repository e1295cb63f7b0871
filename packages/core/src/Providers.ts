/**
 * The registry of installed provider plugins. Each plugin's Layer registers its
 * provider here; apps compose the plugin Layers they install on top of
 * {@link layer}.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Provider } from "./Provider.js"
import { ConfigurationError, UnknownProvider } from "./RefundError.js"

/**
 * @since 0.1.0
 */
export class Providers extends Context.Tag("@refundkit/core/Providers")<Providers, Providers.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Providers {
  /**
   * @since 0.1.0
   */
  export interface Service {
    readonly get: (id: string) => Effect.Effect<Provider, UnknownProvider>
    readonly all: Effect.Effect<ReadonlyArray<Provider>>
    readonly register: (provider: Provider) => Effect.Effect<void, ConfigurationError>
  }
}

/**
 * An empty registry. Plugin Layers placed above it with `Layer.provideMerge` fill it.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<Providers.Service> = Effect.sync(() => {
  const providers = new Map<string, Provider>()
  return Providers.of({
    get: (id) =>
      Effect.suspend(() => {
        const provider = providers.get(id)
        return provider === undefined
          ? Effect.fail(new UnknownProvider({ provider: id, installed: [...providers.keys()].sort() }))
          : Effect.succeed(provider)
      }),
    all: Effect.sync(() => [...providers.values()].sort((a, b) => a.id.localeCompare(b.id))),
    register: (provider) =>
      Effect.suspend(() => {
        if (providers.has(provider.id)) {
          return Effect.fail(new ConfigurationError({ detail: `provider ${provider.id} is installed twice` }))
        }
        providers.set(provider.id, provider)
        return Effect.void
      })
  })
})

/**
 * @since 0.1.0
 */
export const layer: Layer.Layer<Providers> = Layer.effect(Providers, make)

/**
 * Registers a provider in the registry; what a plugin's Layer does.
 *
 * @since 0.1.0
 */
export const register = (provider: Provider): Effect.Effect<void, ConfigurationError, Providers> =>
  Effect.flatMap(Providers, (registry) => registry.register(provider))

/**
 * A Layer that registers the provider built by `make`: the shape of every plugin's `layer`.
 *
 * @since 0.1.0
 */
export const plugin = <E, R>(make: Effect.Effect<Provider, E, R>): Layer.Layer<never, E | ConfigurationError, R | Providers> =>
  Layer.effectDiscard(Effect.flatMap(make, register))

// Named per setting, not as Effect's nesting: `(Invalid data at REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE: "...")`.
const misconfigured = (displayName: string, error: ConfigError.ConfigError): ConfigurationError => {
  const named = ConfigurationError.fromConfigError(error)
  return new ConfigurationError({ ...(named.key === undefined ? {} : { key: named.key }), detail: `${displayName} settings: ${named.detail}` })
}

/**
 * A plugin's Layer with its settings read by `config` (the shape of every plugin's
 * `layerConfig`). Settings that are only missing stay a `ConfigError`, so an app can
 * tell "not configured" (skip the plugin) from "misconfigured"; anything else, such as
 * a malformed value, is a `ConfigurationError` naming the setting.
 *
 * @since 0.1.0
 */
export const pluginConfig = <C, E, R>(
  displayName: string,
  config: Config.Config<C>,
  make: (settings: C) => Effect.Effect<Provider, E, R>
): Layer.Layer<never, E | ConfigError.ConfigError | ConfigurationError, R | Providers> =>
  plugin(
    Effect.flatMap(
      Effect.mapError(config, (error): ConfigError.ConfigError | ConfigurationError =>
        ConfigError.isMissingDataOnly(error) ? error : misconfigured(displayName, error)),
      make
    )
  )

/**
 * A registry holding exactly these plugins: `Providers.fromPlugins(Exirom.layerConfig, Airalo.layerConfig)`.
 *
 * @since 0.1.0
 */
export const fromPlugins = <const Plugins extends ReadonlyArray<Layer.Layer<never, unknown, unknown>>>(
  ...plugins: Plugins
): Layer.Layer<
  Providers,
  Plugins[number] extends Layer.Layer<never, infer E, unknown> ? E : never,
  Exclude<Plugins[number] extends Layer.Layer<never, unknown, infer R> ? R : never, Providers>
> => Layer.provideMerge(Layer.mergeAll(Layer.empty, ...plugins), layer) as never
