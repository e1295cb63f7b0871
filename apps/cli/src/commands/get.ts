/**
 * `refundkit get <id>`: one refund as recorded in the ledger.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Refunds from "@refundkit/core/Refunds"
import * as Effect from "effect/Effect"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * The `refundkit get` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("get", {
  ...Globals.options,
  id: Args.text({ name: "id" }).pipe(Args.withDescription("A refund id (rfd_...)."))
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      const refund = yield* Effect.flatMap(Refunds.Refunds, (refunds) => refunds.get(own.id))
      yield* Output.refund(globals.json, refund)
      return ExitCode.ok
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription("Show one refund as the ledger records it.\n\nNo provider is called; `sync` asks the provider.\n\nExample: refundkit get rfd_0123456789abcdefghjkmnpqrs"))
