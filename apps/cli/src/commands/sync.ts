/**
 * `refundkit sync <id>`: ask the provider for a refund's current status and record it.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import type { UnsupportedOperation } from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import * as Effect from "effect/Effect"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * The `refundkit sync` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("sync", {
  ...Globals.options,
  id: Args.text({ name: "id" }).pipe(Args.withDescription("A refund id (rfd_...)."))
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      const refund = yield* Effect.flatMap(Refunds.Refunds, (refunds) => refunds.sync(own.id)).pipe(
        Effect.mapError((error) => (error._tag === "UnsupportedOperation" ? forThisRefund(error, own.id) : error))
      )
      yield* Output.refund(globals.json, refund)
      return ExitCode.ofRefund(refund)
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription("Ask the provider for a refund's status, record it and print the refund.\n\nExample: refundkit sync rfd_0123456789abcdefghjkmnpqrs"))

// A plugin's advice for a provider without a status query is written for any caller (`refundkit resolve ...
// (or Refunds.resolve)`): here it is said in the CLI's words, naming the refund.
const forThisRefund = (error: UnsupportedOperation, id: string): Output.Describable => ({
  code: error.code,
  refundId: id,
  message: error.message.replaceAll(" (or Refunds.resolve)", "")
})
