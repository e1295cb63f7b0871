/**
 * `refundkit update <id> --data ...`: a provider follow-up on an existing refund.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Refunds from "@refundkit/core/Refunds"
import * as Effect from "effect/Effect"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Input from "../Input.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * The `refundkit update` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("update", {
  ...Globals.options,
  id: Args.text({ name: "id" }).pipe(Args.withDescription("A refund id (rfd_...).")),
  data: Options.text("data").pipe(Options.withDescription("The follow-up in the provider's own field names: a JSON object, or @file.json (@- for stdin)."))
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      const input = yield* Input.data(own.data)
      const refund = yield* Effect.flatMap(Refunds.Refunds, (refunds) => refunds.update(own.id, input))
      yield* Output.refund(globals.json, refund)
      return ExitCode.ofRefund(refund)
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription(
  "Send a provider follow-up on a refund and print the refund.\n\n" +
    "A follow-up is, for example, an AeroHub progress update.\n\n" +
    `Example: refundkit update rfd_0123456789abcdefghjkmnpqrs --data @progress.json`
))
