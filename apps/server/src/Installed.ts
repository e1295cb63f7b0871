/**
 * The provider plugins this gateway ships with: the only place that names providers.
 * The server, the CLI and the sandbox mode all read this list.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { AeroHub } from "@refundkit/aerohub"
import * as AeroHubSandbox from "@refundkit/aerohub/sandbox"
import type { ServeError } from "@effect/platform/HttpServerError"
import { Airalo } from "@refundkit/airalo"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Airpay } from "@refundkit/airpay"
import * as AirpaySandbox from "@refundkit/airpay/sandbox"
import type { Providers } from "@refundkit/core/Providers"
import type { ConfigurationError } from "@refundkit/core/RefundError"
import type * as Sandbox from "@refundkit/core/Sandbox"
import { Exirom } from "@refundkit/exirom"
import * as ExiromSandbox from "@refundkit/exirom/sandbox"
import type * as ConfigError from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/**
 * One installed plugin: its id, its Layer configured from `REFUNDKIT_<P>_*`, and its
 * sandbox (whose `env` points that Layer at it).
 *
 * @since 0.1.0
 */
export interface Plugin {
  readonly id: string
  readonly layerConfig: Layer.Layer<never, ConfigError.ConfigError | ConfigurationError, Providers | HttpClient.HttpClient>
  readonly sandbox: Effect.Effect<Sandbox.Handle, ServeError, Scope.Scope>
  /** A request body its sandbox accepts, for the examples printed in sandbox mode. */
  readonly example?: Readonly<Record<string, unknown>> | undefined
}

/**
 * Every installed plugin, in a stable order.
 *
 * @since 0.1.0
 */
export const plugins: ReadonlyArray<Plugin> = [
  {
    id: Exirom.id,
    layerConfig: Exirom.layerConfig,
    sandbox: ExiromSandbox.make(),
    example: { provider: Exirom.id, transactionId: 12345, amount: "10.00", currency: "USD", reason: "customer_request" }
  },
  { id: Airalo.id, layerConfig: Airalo.layerConfig, sandbox: AiraloSandbox.make() },
  { id: Airpay.id, layerConfig: Airpay.layerConfig, sandbox: AirpaySandbox.make() },
  { id: AeroHub.id, layerConfig: AeroHub.layerConfig, sandbox: AeroHubSandbox.make() }
]

/**
 * The ids of {@link plugins}.
 *
 * @since 0.1.0
 */
export const ids: ReadonlyArray<string> = plugins.map((plugin) => plugin.id)
