/**
 * `refundkit resolve <id> --status succeeded|failed --note ...`: an operator records the
 * outcome of a refund the provider cannot be asked about (no status query, or still
 * `unknown` after a sync), once they have checked it with the provider. With
 * `--status failed --release-targets` it lets go of the targets of a failed refund its
 * provider keeps on them (an AeroHub order closed, then reopened by AeroHub). With
 * `--status succeeded --failed-target <t>` (repeatable) it records the targets the provider
 * did not refund in a refund it otherwise made, which frees them for a new refund.
 * With `--correct`
 * it overturns a verdict recorded by hand (a typo): the other final status, in so many words.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { setterOf } from "@refundkit/core/Ledger"
import type { Refund } from "@refundkit/core/Refund"
import * as Refunds from "@refundkit/core/Refunds"
import * as RefundStatus from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import type { InvalidRequest } from "@refundkit/core/RefundError"
import { UsageError } from "../CliError.js"
import * as Environment from "../Environment.js"
import * as Flags from "../Flags.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as TargetsTaken from "../TargetsTaken.js"
import * as Run from "../Run.js"

/**
 * The `refundkit resolve` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("resolve", {
  ...Globals.options,
  id: Args.text({ name: "id" }).pipe(Args.withDescription("A refund id (rfd_...).")),
  status: Flags.choice("status", ["succeeded", "failed"] as const).pipe(
    Options.withDescription("What the provider says happened: succeeded (the money or credits went out) or failed (it never made the refund).")
  ),
  note: Options.text("note").pipe(Options.withDescription("How you know, kept in the refund's history (e.g. \"credited 4.50 USD, seen on GET /v2/balance\").")),
  releaseTargets: Options.boolean("release-targets").pipe(
    Options.withDescription(
      "With --status failed: free the targets of a failed refund its provider still keeps on them (an AeroHub order it closed), once the provider has told you it will take a new refund of them; " +
        "or of a refund its provider took back after reporting it succeeded (an Exirom FAILED or CHARGEBACK after SUCCEED), once it has confirmed the money came back."
    )
  ),
  failedTarget: Options.text("failed-target").pipe(
    Options.withDescription(
      "With --status succeeded: a target the provider did not refund (an ICCID Airalo refused, an Airpay transaction not refunded), recorded failed and freed for a new refund; " +
        "repeat it for each. The others are recorded refunded. Not every target: that is --status failed."
    ),
    Options.repeated
  ),
  correct: Options.boolean("correct").pipe(
    Options.withDescription(
      "Correct a verdict recorded by hand: move a refund an operator resolved succeeded to failed, or failed to succeeded. Not for a status the provider reported."
    )
  )
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      if (own.note.trim() === "") return yield* new UsageError({ field: "--note", detail: "must say how the outcome was checked with the provider" })
      if (own.releaseTargets && own.status !== "failed") {
        return yield* new UsageError({ field: "--release-targets", detail: "goes with --status failed: it frees the targets of a failed refund" })
      }
      if (own.failedTarget.length > 0 && own.status !== "succeeded") {
        return yield* new UsageError({
          field: "--failed-target",
          detail: "goes with --status succeeded: it names the targets the provider did not refund in a refund it otherwise made",
          hint: "If the provider refunded none of them, resolve it --status failed without --failed-target."
        })
      }
      const refunds = yield* Refunds.Refunds
      // Core lets a refund stay in its status (a provider may repeat itself), so a final refund settled again to
      // the same status used to be accepted, exit 0, with one more operator event. Core still refuses a final
      // refund moved to the other status (IllegalTransition, below) if it became final after this read. The
      // changes a final refund takes are the release of targets its provider keeps a failed refund on, and,
      // with --correct, the other final status in place of a verdict an operator recorded.
      const current = yield* refunds.get(own.id)
      const held = current.status === "failed" && current.holdsTarget === true
      if (own.correct) {
        const refused = Refunds.correctionRefusal(current, own.status)
        if (refused !== undefined) return yield* correctionRefused(current, own.status, refused)
      } else if (RefundStatus.isFinal(current.status) && !(held && own.releaseTargets)) {
        if (own.releaseTargets) {
          return yield* new UsageError({ field: "--release-targets", detail: `refund ${current.id} is ${current.status} and holds no target to release: nothing was changed` })
        }
        const setter = setterOf(current)
        return yield* new UsageError({
          field: "--status",
          detail: `refund ${current.id} is already ${current.status}, which is final: nothing was changed`,
          ...(held
            ? { hint: `It still holds its targets (${current.provider} keeps it on them); if ${current.provider} has told you it will take a new refund of them, add --release-targets.` }
            : setter !== undefined && Refunds.correctionRefusal(current, own.status) === undefined
            ? {
              hint: `An operator recorded it ${current.status} at ${setter.at}${setter.detail === undefined ? "" : ` (${setter.detail})`}; if that verdict was wrong, ` +
                `correct it in so many words: refundkit resolve ${current.id} --status ${own.status} --correct --note "..."`
            }
            : {})
        })
      }
      const refund = yield* refunds.resolve(own.id, own.status, Refunds.operatorNote(own.note), {
        releaseTargets: own.releaseTargets,
        correct: own.correct,
        ...(own.failedTarget.length === 0 ? {} : { failedTargets: own.failedTarget })
      }).pipe(
        // Settling a refund that is already final is the operator's mistake, not a ledger failure; and
        // nothing is "sent" here, which is all InvalidRequest's message knows how to say.
        Effect.mapError((error) =>
          error._tag === "IllegalTransition"
            ? new UsageError({ field: "--status", detail: `refund ${error.refundId} is already ${error.from}, which is final: nothing was changed` })
            : error._tag === "InvalidRequest"
            ? new UsageError({
              field: flagOf(error),
              detail: `${error.issues.map((issue) => issue.message).join("; ")} Nothing was changed`
            })
            : error._tag === "TargetAlreadyRefunded" || error._tag === "OverRefund"
            ? TargetsTaken.usageError(own.id, error, { field: "--correct", refused: "be corrected to succeeded", both: "Recording both as refunded", again: "correct" })
            : error
        )
      )
      yield* Output.refund(globals.json, refund)
      return ExitCode.ofRefund(refund)
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription(
  "Record a refund's outcome by hand and print the refund.\n\n" +
    "For a refund still unknown, or at a provider with no status query, once you have checked the outcome with the provider.\n\n" +
    "With --status failed --release-targets, frees the targets of a failed refund its provider still keeps on them (an AeroHub order it closed and has since reopened), " +
    "or of a refund its provider took back after reporting it succeeded (an Exirom FAILED or CHARGEBACK after SUCCEED), which --status failed alone records failed with its targets held.\n\n" +
    "With --status succeeded --failed-target <target> (repeatable), records those targets as not refunded and frees them for a new refund (one ICCID of two Airalo refused; an Airpay batch whose answer was lost, one transaction refunded).\n\n" +
    "With --correct, replaces a verdict an operator recorded (succeeded by failed, or failed by succeeded); a status the provider reported is not corrected by hand.\n\n" +
    `Example: refundkit resolve rfd_0123456789abcdefghjkmnpqrs --status succeeded --note "credited, seen on the Airalo balance"\n` +
    `Example: refundkit resolve rfd_0123456789abcdefghjkmnpqrs --status succeeded --failed-target 8910300000000000029 --note "one credited, the other refused by email"`
))

/** The flag a refusal of core's `resolve` is about: `failedTargets` is `--failed-target`'s, `correct` is `--correct`'s, anything else `--status`'s. */
const flagOf = (error: InvalidRequest): string =>
  error.issues.every((issue) => issue.path === "failedTargets")
    ? "--failed-target"
    : error.issues.some((issue) => issue.path === "correct")
    ? "--correct"
    : "--status"

// What the operator who typed --correct needs to hear before anything is written, in the CLI's words:
// core's refusal names the option rather than the flag, and has no hint.
const correctionRefused = (refund: Refund, to: "succeeded" | "failed", refusal: Refunds.CorrectionRefusal): UsageError => {
  switch (refusal.reason) {
    case "not_final":
      return new UsageError({
        field: "--correct",
        detail: `refund ${refund.id} is ${refusal.status}: there is no verdict to correct, and nothing was changed`,
        hint: `Record its outcome without --correct: refundkit resolve ${refund.id} --status ${to} --note "..."`
      })
    case "same_status":
      return new UsageError({ field: "--correct", detail: `refund ${refund.id} is already ${to}: there is nothing to correct, and nothing was changed` })
    case "set_by_provider":
      return new UsageError({
        field: "--correct",
        detail: `refund ${refund.id} is ${refusal.status}, set by ${refusal.setBy} at ${refusal.at}, not by an operator's verdict: nothing was changed`,
        hint: "Only a verdict recorded by hand is corrected by hand; a final status the provider reported stays."
      })
  }
}
