/**
 * Sandbox mode: every installed plugin's sandbox started in-process, and the settings
 * that point the plugins at them.
 *
 * @since 0.1.0
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import type * as Sandbox from "@refundkit/core/Sandbox"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Installed from "./Installed.js"

/**
 * Running sandboxes: their handles, the merged `REFUNDKIT_<P>_*` settings of all of
 * them, and a ConfigProvider that reads those settings first and the one in use
 * before (the process environment by default) after (so `REFUNDKIT_API_KEYS`, `REFUNDKIT_LEDGER`, ... still apply).
 *
 * @since 0.1.0
 */
export interface Running {
  readonly handles: ReadonlyArray<Sandbox.Handle>
  readonly env: Readonly<Record<string, string>>
  readonly configProvider: ConfigProvider.ConfigProvider
}

/**
 * The running sandboxes, for whoever needs to drive them (fault injection, stats).
 *
 * @since 0.1.0
 */
export class Sandboxes extends Context.Tag("@refundkit/server/Sandboxes")<Sandboxes, Running>() {}

/**
 * Starts the sandboxes of `plugins` (default: every installed one) on ephemeral ports;
 * they stop when the scope closes.
 *
 * @since 0.1.0
 */
export const start = (
  plugins: ReadonlyArray<Installed.Plugin> = Installed.plugins
): Effect.Effect<Running, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const fallback = yield* Effect.configProviderWith(Effect.succeed)
    const handles = yield* Effect.forEach(plugins, (plugin) => plugin.sandbox, { concurrency: "unbounded" })
    const env: Record<string, string> = {}
    for (const handle of handles) Object.assign(env, handle.env)
    const configProvider = ConfigProvider.fromMap(new Map(Object.entries(env))).pipe(ConfigProvider.orElse(() => fallback))
    return { handles, env, configProvider }
  })

/**
 * {@link start} as a Layer.
 *
 * @since 0.1.0
 */
export const layer = (plugins: ReadonlyArray<Installed.Plugin> = Installed.plugins): Layer.Layer<Sandboxes, ServeError> =>
  Layer.scoped(Sandboxes, start(plugins))
