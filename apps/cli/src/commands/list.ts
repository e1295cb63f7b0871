/**
 * `refundkit list`: refunds in the ledger, newest first.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Providers from "@refundkit/core/Providers"
import type { Refund } from "@refundkit/core/Refund"
import type { InvalidRequest } from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import * as RefundStatus from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { UsageError } from "../CliError.js"
import * as Environment from "../Environment.js"
import * as Flags from "../Flags.js"
import { masked, quote } from "../Echo.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/** The flag of each list filter the ledger may refuse. */
const flagOf: Readonly<Record<string, string>> = { cursor: "--cursor", createdFrom: "--created-from", createdTo: "--created-to" }

/**
 * The `refundkit list` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("list", {
  ...Globals.options,
  provider: Options.text("provider").pipe(Options.withDescription("Only this provider's refunds."), Options.optional),
  status: Flags.choice("status", RefundStatus.all).pipe(Options.withDescription("Only refunds in this status."), Options.optional),
  target: Options.text("target").pipe(
    Options.withDescription("Only refunds against this target, the provider's own id (Exirom's transactionId, an Airalo ICCID, Airpay's ap_transactionid, AeroHub's refundOrderNo); needs --provider."),
    Options.optional
  ),
  createdFrom: Flags.timestamp("created-from").pipe(
    Options.withDescription(
      "Only refunds created at or after this instant: 2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00, or a date (2026-12-06, midnight UTC). Listed by creation time, newest first."
    ),
    Options.optional
  ),
  createdTo: Flags.timestamp("created-to").pipe(
    Options.withDescription("Only refunds created before this instant (same forms as --created-from)."),
    Options.optional
  ),
  limit: Flags.integer("limit").pipe(
    Options.withDescription("At most this many refunds (1 to 1000; default 20); with --all, the size of each page read (default 1000)."),
    Options.optional
  ),
  cursor: Options.text("cursor").pipe(Options.withDescription("Continue after a previous page (its nextCursor)."), Options.optional),
  all: Options.boolean("all").pipe(
    Options.withDescription(
      "Every matching refund: reads page after page to the end, printing as it goes, in constant memory (with --json, one refund per line: JSON Lines)."
    )
  )
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      const limit = Option.getOrElse(own.limit, () => (own.all ? 1000 : 20))
      if (limit < 1 || limit > 1000) {
        return yield* new UsageError({ field: "--limit", detail: `must be between 1 and 1000, got ${limit}` })
      }
      if (Option.isSome(own.target) && Option.isNone(own.provider)) {
        return yield* new UsageError({ field: "--target", detail: "needs --provider: a target is that provider's own id (a transactionId, an ICCID)" })
      }
      if (Option.isSome(own.target) && own.target.value === "") {
        return yield* new UsageError({ field: "--target", detail: "must not be empty" })
      }
      if (Option.isSome(own.createdFrom) && Option.isSome(own.createdTo) && own.createdFrom.value > own.createdTo.value) {
        return yield* new UsageError({
          field: "--created-from",
          detail: `must not be after --created-to (${own.createdFrom.value} is after ${own.createdTo.value})`
        })
      }
      // An id no plugin here has (a typo) is refused rather than matching nothing; an installed plugin that is
      // not configured in this shell still lists its refunds.
      if (Option.isSome(own.provider)) {
        const id = own.provider.value
        const setup = yield* Environment.Setup
        yield* Effect.flatMap(Providers.Providers, (registry) => registry.get(id)).pipe(
          Effect.catchTag("UnknownProvider", (error) => (setup.notConfigured.has(id) ? Effect.void : Effect.fail(Environment.unknownProvider(error, setup))))
        )
      }
      const pageAfter = (cursor: string | undefined) =>
        Effect.flatMap(Refunds.Refunds, (refunds) =>
          refunds.list({
            limit,
            provider: Option.getOrUndefined(own.provider),
            status: Option.getOrUndefined(own.status),
            target: Option.getOrUndefined(own.target),
            createdFrom: Option.getOrUndefined(own.createdFrom),
            createdTo: Option.getOrUndefined(own.createdTo),
            cursor
          }).pipe(
            // The ledger refuses a foreign cursor (one of a list by creation time given to one without
            // --created-from/--created-to, or the other way round) as an InvalidRequest, whose message speaks of
            // a refund request "not sent"; here it is a flag.
            Effect.catchTag("InvalidRequest", (error): Effect.Effect<never, UsageError | InvalidRequest> => {
              const flag = error.issues.every((issue) => issue.path === error.issues[0]?.path) ? flagOf[error.issues[0]?.path ?? ""] : undefined
              return flag === undefined
                ? Effect.fail(error)
                : Effect.fail(new UsageError({ field: flag, detail: error.issues.map((issue) => issue.message).join("; ") }))
            })
          ))
      // Columns as wide as the widest cell printed so far: a provider's long status word or a large amount
      // would push the rest of its row out of line. With --all a later page may widen them, never narrow them.
      const widths = [30, 8, 15, 15, 14]
      const cellsOf = (r: Refund) =>
        [r.id, r.provider, r.status, r.providerStatus ?? "", r.amount === undefined ? "" : `${r.amount}${r.currency === undefined ? "" : ` ${r.currency}`}`, r.createdAt]
      const row = (cells: ReadonlyArray<string>) => cells.map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]!) : cell)).join("  ").trimEnd()
      const printRows = (items: ReadonlyArray<Refund>, withHeader: boolean) =>
        Effect.gen(function*() {
          const rows = items.map(cellsOf)
          for (const cells of rows) widths.forEach((width, i) => (widths[i] = Math.max(width, cells[i]!.length)))
          if (withHeader && items.length > 0) yield* Output.text(row(["ID", "PROVIDER", "STATUS", "PROVIDER STATUS", "AMOUNT", "CREATED"]))
          for (const cells of rows) yield* Output.text(row(cells))
        })

      if (own.all) {
        // Page after page from the cursor, each printed before the next is read: an export of any size.
        let cursor = Option.getOrUndefined(own.cursor)
        let listed = 0
        do {
          const page = yield* pageAfter(cursor)
          if (globals.json) for (const r of page.items) yield* Output.json(Output.refundJson(r))
          else yield* printRows(page.items, listed === 0)
          listed += page.items.length
          cursor = page.nextCursor
        } while (cursor !== undefined)
        if (listed === 0 && !globals.json) yield* Output.note("No refunds match.")
        return ExitCode.ok
      }

      const page = yield* pageAfter(Option.getOrUndefined(own.cursor))
      if (globals.json) {
        yield* Output.json({ items: page.items.map(Output.refundJson), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) })
        return ExitCode.ok
      }
      if (page.items.length === 0) yield* Output.note("No refunds match.")
      yield* printRows(page.items, true)
      if (page.nextCursor !== undefined) {
        // The next page is the same list's: a cursor of a list by creation time continues no other.
        // So is the ledger's: the next page of another ledger (the default one, say) is no page of this list.
        const filters = ([["--ledger", globals.ledger], ["--provider", own.provider], ["--status", own.status], ["--target", own.target], ["--created-from", own.createdFrom], ["--created-to", own.createdTo]] as const)
          .flatMap(([flag, value]) => (Option.isSome(value) ? [`${flag} ${quote(masked(String(value.value)))}`] : []))
        yield* Output.note(`More: refundkit list ${[...filters, `--limit ${limit}`].join(" ")} --cursor ${page.nextCursor}`)
      }
      return ExitCode.ok
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription("List refunds in the ledger, newest first.\n\nExample: refundkit list --provider airalo --status unknown --limit 50\nExample: refundkit list --provider exirom --target 123456   (what was refunded against one transaction)\nExample: refundkit list --created-from 2026-12-05T14:00:00Z --created-to 2026-12-05T15:00:00Z   (created in that hour, newest first)\nExample: refundkit list --all --json --created-from 2026-12-05 --created-to 2026-12-06 > refunds.jsonl   (a day's refunds, one per line)"))
