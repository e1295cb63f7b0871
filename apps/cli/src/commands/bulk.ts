/**
 * `refundkit bulk <file> --provider <id>`: many refunds from a CSV or JSONL file,
 * validated in full before the first provider call, resumable after a crash.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Refunds from "@refundkit/core/Refunds"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as BulkFile from "../BulkFile.js"
import * as BulkRun from "../BulkRun.js"
import { UsageError } from "../CliError.js"
import * as Environment from "../Environment.js"
import * as Flags from "../Flags.js"
import * as ExitCode from "../ExitCode.js"
import { masked, quote } from "../Echo.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * Rows submitted at once when `--concurrency` is not given.
 *
 * @since 0.1.0
 */
export const defaultConcurrency = 8

const config = {
  ...Globals.options,
  file: Args.text({ name: "file" }).pipe(Args.withDescription("A .csv file with a header row, or a .jsonl file with one request object per line.")),
  provider: Options.text("provider").pipe(Options.withDescription("The provider every row is for.")),
  concurrency: Flags.integer("concurrency").pipe(
    Options.withDescription(`Provider calls in flight at once (default ${defaultConcurrency}); the provider's rate limit still applies.`),
    Options.withDefault(defaultConcurrency)
  ),
  dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Validate every row and stop: nothing is sent.")),
  out: Options.text("out").pipe(Options.withDescription("The results file (default <file>.results.jsonl), one JSON line per row."), Options.optional),
  retryFailed: Options.boolean("retry-failed").pipe(Options.withDescription(
    "Resend the rows an earlier run left failed without the provider processing them (it was unavailable, refused refundkit's credentials, or was not at its base URL), " +
      "each as a new refund under a key derived from the row's own (`<key>:retry-1`, then `:retry-2`...). Declines, rows the provider refused on a field rule, and rows in doubt are never resent."
  )),
  recoveryGrace: Flags.integer("recovery-grace").pipe(
    Options.withDescription(
      "Also move every refund in the ledger left in `requested` for longer than this many seconds to `unknown` before starting, " +
        "except those a live process still leases (its call is out). " +
        "Without it, only this file's own rows that a killed run left `requested` are taken as in doubt (as they are met), " +
        "so refunds a gateway or another run sharing the ledger is submitting are left alone."
    ),
    Options.optional
  )
}

/**
 * The `refundkit bulk` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("bulk", config, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      if (own.concurrency < 1 || own.concurrency > 256) {
        return yield* new UsageError({ field: "--concurrency", detail: `must be between 1 and 256, got ${own.concurrency}` })
      }
      if (Option.isSome(own.recoveryGrace) && own.recoveryGrace.value < 0) {
        return yield* new UsageError({ field: "--recovery-grace", detail: "must be 0 or more seconds" })
      }
      const format = yield* BulkFile.formatOf(own.file)
      yield* BulkFile.check(own.file)
      if (!own.dryRun && BulkFile.sameFile(own.file, Option.getOrElse(own.out, () => `${own.file}.results.jsonl`))) {
        return yield* new UsageError({ field: "--out", detail: `is the input file ${own.file}: the results would overwrite the rows before they are read`, hint: "Pass another --out." })
      }
      // A dry run only decodes rows: the registry is all it builds (no ledger is opened or created, no recovery runs).
      return yield* own.dryRun
        ? dryRun(own, globals, format).pipe(Effect.provide(Environment.providersLayer(globals)))
        : submitAll(own, globals, format).pipe(Effect.provide(Environment.layer(globals, { commitDelayMillis: BulkRun.commitDelayMillis })))
    }))
).pipe(Command.withDescription(
  "Refund every row of a CSV or JSONL file.\n\n" +
    "All rows are validated first (nothing is sent if any is invalid), then submitted with bounded concurrency, " +
    "honouring the provider's rate limit and packing rows into one call where the provider allows. Re-running the same command after a crash or Ctrl-C " +
    "finishes the job without refunding any row twice.\n\n" +
    "Example: refundkit bulk refunds.csv --provider airalo --concurrency 4 --dry-run"
))

type Own = Command.Command.ParseConfig<typeof config>

const validated = (own: Own, globals: Globals.Globals, format: BulkFile.Format) =>
  Effect.gen(function*() {
    const provider = yield* Environment.provider(own.provider)
    const validation = yield* BulkRun.validate(provider, own.file, format)
    if (validation.invalid === 0) return Option.some({ provider, validation })
    const message = `${validation.invalid} of ${validation.rows} rows in ${own.file} are invalid (listed above); nothing was sent. Fix them and run the command again.`
    if (globals.json) {
      yield* Output.json({
        error: {
          code: "invalid_request",
          message,
          invalidRows: validation.invalid,
          rows: validation.rows,
          issues: validation.reported.flatMap((r) => r.issues.map((i) => ({ path: i.path === "" ? `row ${r.row}` : `row ${r.row}.${i.path}`, message: i.message }))),
          ...(validation.invalid > validation.reported.length ? { truncated: true } : {})
        }
      })
    }
    yield* Output.note(`error: ${message}`)
    return Option.none()
  })

const dryRun = (own: Own, globals: Globals.Globals, format: BulkFile.Format) =>
  Effect.gen(function*() {
    const valid = yield* validated(own, globals, format)
    if (Option.isNone(valid)) return ExitCode.usage
    const { provider, validation } = valid.value
    if (globals.json) yield* Output.json({ dryRun: true, rows: validation.rows, invalid: 0, sha256: validation.digest })
    else yield* Output.note(`${validation.rows} rows in ${own.file} are valid for ${provider.id}; nothing was sent (--dry-run).`)
    return ExitCode.ok
  })

const submitAll = (own: Own, globals: Globals.Globals, format: BulkFile.Format) =>
  Effect.gen(function*() {
    const valid = yield* validated(own, globals, format)
    if (Option.isNone(valid)) return ExitCode.usage
    const { provider, validation } = valid.value
    const refunds = yield* Refunds.Refunds
    if (Option.isSome(own.recoveryGrace)) {
      const recovered = yield* refunds.recover(Duration.seconds(own.recoveryGrace.value))
      if (recovered.length > 0) {
        yield* Output.note(
          `${recovered.length} refund(s) left in "requested" by a process that has ended, or for more than ${own.recoveryGrace.value} s, are now "unknown": rows of this file among them are reported as in doubt and never resent.`
        )
      }
    }
    const out = Option.getOrElse(own.out, () => `${own.file}.results.jsonl`)
    let stop = false
    const onSignal = () => {
      if (stop) process.exit(130)
      stop = true
      process.stderr.write("\nStopping: no new rows are taken; calls in flight are finishing (Ctrl-C again to quit at once).\n")
    }
    const work = Effect.acquireUseRelease(
      Effect.sync(() => {
        process.on("SIGINT", onSignal)
        process.on("SIGTERM", onSignal)
      }),
      () =>
        BulkRun.execute(refunds, provider, {
          path: own.file,
          format,
          digest: validation.digest,
          total: validation.rows,
          concurrency: own.concurrency,
          out,
          stopRequested: () => stop,
          retryFailed: own.retryFailed
        }),
      () =>
        Effect.sync(() => {
          process.removeListener("SIGINT", onSignal)
          process.removeListener("SIGTERM", onSignal)
        })
    ).pipe(Effect.tap((summary) => report(summary, out, globals.json, own.provider, stop)))
    const status = yield* Run.ExitStatus
    // A daemon, so Ctrl-C (which interrupts the main fiber) cannot cut calls in flight: they finish and are recorded.
    const fiber = yield* Effect.forkDaemon(work)
    const summary = yield* Fiber.join(fiber).pipe(
      Effect.onInterrupt(() =>
        Fiber.await(fiber).pipe(Effect.flatMap(() => status.set(130)))
      )
    )
    return summary.stopped ? ExitCode.worst([summary.exitCode, ExitCode.failure]) : summary.exitCode
  })

/** `signalled`: Ctrl-C or SIGTERM stopped the run, which then exits 130 whatever its rows' outcomes. */
const report = (summary: BulkRun.Summary, out: string, json: boolean, provider: string, signalled: boolean) =>
  Effect.gen(function*() {
    const t = summary.tally
    if (json) {
      yield* Output.json({
        rows: summary.rows,
        processed: summary.processed,
        results: out,
        statuses: summary.statuses,
        outcomes: t,
        replayed: summary.replayed,
        stopped: summary.stopped,
        ...(summary.fileChanged === undefined ? {} : { fileChanged: summary.fileChanged }),
        ...(summary.resultsError === undefined ? {} : { resultsError: summary.resultsError }),
        exitCode: signalled ? 130 : summary.exitCode
      })
    } else {
      const statuses = Object.entries(summary.statuses).map(([s, n]) => `${s} ${n}`).join(", ")
      yield* Output.text(
        `${summary.processed} of ${summary.rows} rows processed (${summary.replayed} already done earlier). Statuses: ${statuses === "" ? "none" : statuses}.\n` +
          `ok ${t.ok}, declined ${t.declined}, failed ${t.failed}, in doubt ${t.inDoubt}, invalid ${t.invalid}. Results: ${out}`
      )
    }
    if (t.inDoubt > 0) {
      yield* Output.note(`${t.inDoubt} row(s) are in doubt (the provider may or may not have refunded them): they were not resent. Run \`refundkit reconcile --provider ${provider}\` or check them with the provider; ${out} lists them.`)
    }
    if (t.failed > 0) {
      yield* Output.note(
        `${t.failed} row(s) failed at the provider or the ledger; ${out} has each error. Once the cause is fixed, run the same command again with --retry-failed to resend those the provider did not process.`
      )
    }
    if (summary.resultsError !== undefined) {
      yield* Output.note(
        `error: --out: cannot write the results file ${out} (${summary.resultsError}): no new rows were taken after that; the calls in flight finished and are recorded in the ledger. ` +
          `The results file is incomplete: fix the cause (or pass another --out) and run the same command again (rows already done are replayed, not refunded twice).`
      )
    }
    if (summary.fileChanged !== undefined) yield* Output.note(`error: ${summary.fileChanged}`)
    if (summary.stopped) {
      yield* Output.note(`Stopped before the end. To finish, run the same command again: ${process.argv.slice(2).map((arg) => quote(masked(arg))).join(" ").replace(/^/, "refundkit ")} (rows already done are not refunded twice).`)
    }
  })
