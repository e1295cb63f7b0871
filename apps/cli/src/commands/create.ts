/**
 * `refundkit create <provider> --data ...`: submit one refund.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Refunds from "@refundkit/core/Refunds"
import { InvalidRequest } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { randomUUID } from "node:crypto"
import * as BulkFile from "../BulkFile.js"
import { UsageError } from "../CliError.js"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Input from "../Input.js"
import * as Output from "../Output.js"
import * as Replay from "../Replay.js"
import * as Run from "../Run.js"

/**
 * The `refundkit create` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("create", {
  ...Globals.options,
  provider: Args.text({ name: "provider" }).pipe(Args.withDescription("The provider id, as `refundkit providers` lists it.")),
  data: Options.text("data").pipe(
    Options.withDescription(
      "The provider's request in its own field names: a JSON object, or @file.json (@- for stdin). " +
        "As in the gateway's body, it may carry originalAmounts, each target's original amount ({\"12345\": \"100.00\"}), for the over-refund guard."
    ),
    Options.optional
  ),
  // Repeated text, not a key/value map: a map keeps only the last of two values for one field, silently.
  field: Options.text("field").pipe(
    Options.withAlias("f"),
    // The placeholder says what a value looks like; `<text>` did not, and a missing one is refused by it.
    Options.withPseudoName("path=value"),
    Options.withDescription(
      "One request field as path=value (dotted paths such as transactions.0.amount), typed by the provider's schema as bulk CSV cells are; " +
        "originalAmounts.<target>=<amount> for a target's original amount."
    ),
    Options.repeated
  ),
  idempotencyKey: Options.text("idempotency-key").pipe(
    Options.withDescription("Makes a repeat of this command return the same refund instead of refunding twice; generated and printed when absent."),
    Options.optional
  )
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      if (Option.isNone(own.data) && own.field.length === 0) {
        return yield* new UsageError({ field: "--data", detail: "a request is required", hint: "Pass --data '<json>', --data @file.json, or one --field path=value per field." })
      }
      const base = Option.isSome(own.data) ? yield* Input.data(own.data.value) : {}
      const refunds = yield* Refunds.Refunds
      const provider = yield* Environment.provider(own.provider)
      const fields: Array<readonly [string, string]> = []
      for (const pair of own.field) {
        const at = pair.indexOf("=")
        if (at <= 0 || at === pair.length - 1) {
          return yield* new UsageError({ field: "--field", detail: `expects path=value, got "${pair}"`, hint: "For example -f amount=10.00." })
        }
        fields.push([pair.slice(0, at).trim(), pair.slice(at + 1)])
      }
      const built = BulkFile.fromFields(base, fields, provider.requestJsonSchema)
      if (built.issues.length > 0) return yield* new InvalidRequest({ provider: provider.id, issues: built.issues })
      const { originalAmounts, request } = built
      // Checked before a generated key is printed: a key offered for a re-run must belong to a
      // request that is being sent, not to one refused here.
      const prepared = yield* provider.prepare(request)
      if (originalAmounts !== undefined) yield* Refunds.withOriginalAmounts(provider.id, prepared, originalAmounts)
      const generated = Option.isNone(own.idempotencyKey)
      const idempotencyKey = Option.getOrElse(own.idempotencyKey, () => `cli_${randomUUID()}`)
      if (generated && !globals.json) {
        // For a run whose end was not seen, not for one that ended refused: the key only ever finds
        // this refund, so a re-run under it never sends it twice, nor sends it again after a refusal.
        yield* Output.note(
          `idempotency key: ${idempotencyKey} (generated; if this command is cut short or you cannot tell whether it finished, ` +
            `run it again with --idempotency-key ${idempotencyKey}: that shows this refund's outcome and never sends it twice)`
        )
      }
      const created = yield* refunds.create({ provider: own.provider, request, idempotencyKey, originalAmounts })
      if (created.replayed) {
        const answered = Replay.errorOf(created.refund)
        if (answered !== undefined) {
          // Said with --json too: it goes to stderr, beside the error line, and stdout keeps the first run's shape.
          yield* Output.note(Replay.note(idempotencyKey, created.refund))
          return yield* answered
        }
        if (!globals.json) yield* Output.note(`This idempotency key was used before: showing the refund it created; nothing was sent again.`)
      }
      yield* Output.refund(globals.json, created.refund)
      return ExitCode.ofRefund(created.refund)
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription(
  "Submit one refund to a provider and print it.\n\n" +
    `Example: refundkit create exirom --data '{"transactionId":12345,"amount":"10.00","reason":"customer_request"}' --idempotency-key order-42\n` +
    "Or field by field: refundkit create exirom -f transactionId=12345 -f amount=10.00 -f reason=customer_request\n" +
    "With the over-refund guard (the gateway's originalAmounts: each target's original amount): " +
    "refundkit create exirom -f transactionId=12345 -f amount=60.00 -f currency=USD -f reason=customer_request -f originalAmounts.12345=100.00"
))
