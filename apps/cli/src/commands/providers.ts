/**
 * `refundkit providers`: the installed providers and what each can do.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Providers from "@refundkit/core/Providers"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * The `refundkit providers` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("providers", { ...Globals.options }, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      const all = yield* Effect.flatMap(Providers.Providers, (registry) => registry.all)
      const setup = yield* Environment.Setup
      if (globals.json) {
        yield* Output.json({
          providers: all.map((p) => ({ id: p.id, displayName: p.displayName, capabilities: p.capabilities, requestSchema: p.requestJsonSchema })),
          notConfigured: [...setup.notConfigured].map(([id, reason]) => ({ id, reason }))
        })
        return ExitCode.ok
      }
      for (const p of all) {
        const c = p.capabilities
        const facts = [
          `settles in ${c.settlement}`,
          c.partialRefunds ? "partial refunds" : "full refunds only",
          c.maxTargetsPerCall > 1 ? `up to ${c.maxTargetsPerCall} targets per call` : "one target per call",
          c.statusQuery ? "status query" : "no status query",
          c.webhooks ? "webhooks" : "no webhooks",
          c.idempotentSubmit ? "idempotent submit" : "submit not idempotent at the provider",
          ...(c.updates ? ["follow-up updates"] : []),
          ...(c.rateLimit === undefined ? [] : [`rate limit ${c.rateLimit.requests} call${c.rateLimit.requests === 1 ? "" : "s"} per ${Duration.format(c.rateLimit.perMillis)}`])
        ]
        yield* Output.text(`${p.id.padEnd(10)} ${p.displayName}\n           ${facts.join(", ")}`)
      }
      for (const [id, reason] of setup.notConfigured) {
        yield* Output.text(`${id.padEnd(10)} installed, not configured: ${reason}\n           Set REFUNDKIT_${id.toUpperCase()}_* or run with --sandbox.`)
      }
      return ExitCode.ok
    }).pipe(Effect.provide(Environment.providersLayer(globals))))
).pipe(Command.withDescription("List the installed providers and their capabilities.\n\nExample: refundkit providers --sandbox"))
