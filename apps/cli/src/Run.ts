/**
 * How every command handler ends: its typed errors are printed as one or two plain
 * sentences (and as the gateway's error object with `--json`) and turned into the
 * exit code; nothing reaches `runMain` as a stack trace.
 *
 * @since 0.1.0
 */
import type * as Command from "@effect/cli/Command"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as ExitCode from "./ExitCode.js"
import * as Globals from "./Globals.js"
import * as WarningLog from "./internal/WarningLog.js"
import * as Output from "./Output.js"

/**
 * Where a handler leaves the exit code for the entry point.
 *
 * @since 0.1.0
 */
export class ExitStatus extends Context.Tag("@refundkit/cli/ExitStatus")<ExitStatus, {
  /** 130 is used when Ctrl-C stopped a command before it finished. */
  readonly set: (code: ExitCode.ExitCode | 130) => Effect.Effect<void>
}>() {}

/**
 * An error a command may end with: core's errors and the CLI's own all have a code
 * and a message; some carry the refund they concern and its recorded status.
 *
 * @since 0.1.0
 */
export type Failure = Output.Describable & { readonly status?: RefundStatus | undefined }

const advice = (failure: Failure): string | undefined =>
  failure.refundId === undefined || failure.code === "refund_not_found" ? undefined : `See the refund with: refundkit get ${failure.refundId}`

/**
 * Runs a command body with the resolved global options, prints its typed failure and
 * records the exit code. Defects are reported as an internal error (exit 1).
 *
 * @since 0.1.0
 */
export const handler = <E extends Failure, R>(
  own: Globals.Globals,
  body: (globals: Globals.Globals) => Effect.Effect<ExitCode.ExitCode, E, R>,
  options: {
    /** The exit code when Ctrl-C or SIGTERM stops the command (130 unless stopping is its normal end, as for `sandbox`). */
    readonly interrupted?: ExitCode.ExitCode | 130
    /**
     * `own`: the command installs its own logger (`serve`, the gateway's log format). Otherwise the stack's
     * warnings and errors are printed on stderr as sentences (`WarningLog`), never on stdout.
     */
    readonly logs?: "own" | undefined
  } = {}
): Effect.Effect<void, never, R | ExitStatus | Command.Command.Context<"refundkit">> =>
  Effect.gen(function*() {
    const globals = yield* Globals.resolve(own)
    const outer = yield* ExitStatus
    // A command that reports its own interruption (bulk's summary) sets 130 itself; any other one stopped by a
    // signal says so and exits 130, not 0: a script must not take a run cut short for a finished one.
    let reported = false
    const status: ExitStatus["Type"] = { set: (next) => Effect.zipRight(Effect.sync(() => void (reported = true)), outer.set(next)) }
    const interrupted = options.interrupted ?? 130
    const code = yield* body(globals).pipe(
      options.logs === "own" ? (self) => self : Effect.provide(WarningLog.layer),
      Effect.provideService(ExitStatus, status),
      Effect.onInterrupt(() =>
        reported
          ? Effect.void
          : interrupted === 0
          ? outer.set(0)
          : Effect.zipRight(
            Output.error(globals.json, {
              code: "interrupted",
              message: "interrupted (Ctrl-C or SIGTERM) before the command finished; what was recorded so far stays in the ledger (see `refundkit list`). Run the same command again to finish it."
            }),
            outer.set(interrupted)
          )
      ),
      Effect.catchAll((failure: E) =>
        Effect.as(
          Effect.zipRight(
            Output.error(globals.json, failure),
            globals.json ? Effect.void : Effect.forEach([advice(failure)].filter((a) => a !== undefined), Output.note)
          ),
          ExitCode.ofError(failure)
        )
      ),
      Effect.catchAllDefect((defect) =>
        Effect.as(
          Output.error(globals.json, {
            code: "internal_error",
            message: `refundkit failed unexpectedly: ${Cause.pretty(Cause.die(defect)).split("\n")[0]}. Please report this with the command you ran.`
          }),
          ExitCode.failure
        )
      )
    )
    yield* outer.set(code)
  })
