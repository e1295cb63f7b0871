import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { Exirom } from "../../src/index.js"

/**
 * The plugin configured from `env` (a sandbox's, with any overrides), behind core's Refunds
 * (with `options`) and an in-memory ledger, for the life of the scope.
 */
export const stack = (
  env: Readonly<Record<string, string>>,
  options?: Refunds.Options
): Effect.Effect<{ readonly refunds: Refunds.Refunds["Type"]; readonly ledger: Ledger.Ledger["Type"] }, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    const context = yield* Layer.build(Refunds.layer(options).pipe(
      Layer.provideMerge(Layer.provideMerge(Exirom.layerConfig.pipe(Layer.provide(config)), Providers.layer)),
      Layer.provideMerge(Ledger.layerMemory),
      Layer.provide(NodeHttpClient.layerUndici)
    ))
    return { refunds: Context.get(context, Refunds.Refunds), ledger: Context.get(context, Ledger.Ledger) }
  })
