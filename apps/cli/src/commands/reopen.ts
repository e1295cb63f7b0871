/**
 * `refundkit reopen <id> --note ...`: an operator takes a final refund whose status the provider set
 * back to `requires_action`, when the provider's dashboard contradicts it and the provider will not say
 * so itself (Airpay, Airalo and AeroHub have no status query and no callback after success): a reversal
 * or a chargeback of a `succeeded`, or a `failed` the dashboard shows refunded after all. The refund
 * holds its targets again until it is settled with `refundkit resolve`.
 *
 * @since 0.6.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { Refund } from "@refundkit/core/Refund"
import * as Refunds from "@refundkit/core/Refunds"
import * as Effect from "effect/Effect"
import { UsageError } from "../CliError.js"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as TargetsTaken from "../TargetsTaken.js"
import * as Run from "../Run.js"

/**
 * The `refundkit reopen` command, its options and its handler.
 *
 * @since 0.6.0
 */
export const command = Command.make("reopen", {
  ...Globals.options,
  id: Args.text({ name: "id" }).pipe(Args.withDescription("A refund id (rfd_...).")),
  note: Options.text("note").pipe(
    Options.withDescription("Why, kept in the refund's history (e.g. \"reversed in the Airpay dashboard on 6 Dec: card account closed\").")
  )
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      if (own.note.trim() === "") return yield* new UsageError({ field: "--note", detail: "must say why the refund is reopened: what the provider's dashboard shows, and when" })
      const refunds = yield* Refunds.Refunds
      // Read first to word a refusal with the command to run instead; core decides again in the refund's turn.
      const current = yield* refunds.get(own.id)
      const refused = Refunds.reopenRefusal(current)
      if (refused !== undefined) return yield* reopenRefused(current, refused)
      const refund = yield* refunds.reopen(own.id, Refunds.operatorNote(own.note)).pipe(
        Effect.mapError((error) =>
          // Settled or reopened by someone else since the read above.
          error._tag === "InvalidRequest" || error._tag === "IllegalTransition"
            ? new UsageError({
              field: error._tag === "InvalidRequest" && error.issues.every((issue) => issue.path === "note") ? "--note" : "<id>",
              detail: `${error._tag === "InvalidRequest" ? error.issues.map((issue) => issue.message).join("; ") : error.message}. Nothing was changed`
            })
            : error._tag === "TargetAlreadyRefunded" || error._tag === "OverRefund"
            ? TargetsTaken.usageError(own.id, error, { field: "<id>", refused: "be reopened", both: "Holding both", again: "reopen" })
            : error
        )
      )
      yield* Output.refund(globals.json, refund)
      return ExitCode.ofRefund(refund)
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription(
  "Reopen a final refund the provider set, for a person to settle.\n\n" +
    "For a reversal or chargeback of a succeeded refund, or a failed refund the provider shows refunded after all, seen only in the provider's dashboard " +
    "(Airpay, Airalo and AeroHub have no status query and no callback after success). Prints the refund, which moves to requires_action and holds its targets until " +
    "refundkit resolve settles it: --status failed keeps them held unless --release-targets, --status succeeded records it refunded.\n\n" +
    "A status an operator recorded is corrected with refundkit resolve --correct, not reopened.\n\n" +
    `Example: refundkit reopen rfd_0123456789abcdefghjkmnpqrs --note "reversed in the Airpay dashboard on 6 Dec: card account closed"`
))

// What the operator needs to hear before anything is written, with the command to run instead.
const reopenRefused = (refund: Refund, refusal: Refunds.ReopenRefusal): UsageError => {
  switch (refusal.reason) {
    case "not_final":
      return new UsageError({
        field: "<id>",
        detail: `refund ${refund.id} is ${refusal.status}, which is not final: there is nothing to reopen, and nothing was changed`,
        hint: `Record its outcome: refundkit resolve ${refund.id} --status succeeded|failed --note "..."`
      })
    case "set_by_operator": {
      const other = refusal.status === "succeeded" ? "failed" : "succeeded"
      return new UsageError({
        field: "<id>",
        detail: `refund ${refund.id} is ${refusal.status} by an operator's verdict recorded at ${refusal.at}, not by ${refund.provider}: nothing was changed`,
        hint: `A verdict recorded by hand is corrected, not reopened: refundkit resolve ${refund.id} --status ${other} --correct --note "..."`
      })
    }
  }
}
