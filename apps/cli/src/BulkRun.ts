/**
 * The two passes of `refundkit bulk`. The first decodes every row with the provider's
 * schema and reports every invalid row before anything is sent. The second submits
 * the rows with bounded concurrency through core's `Refunds.createMany` (which honours
 * the provider's rate limit and packs rows into one call where the provider takes
 * several targets), writes one result line per row and tallies the outcomes.
 *
 * @since 0.1.0
 */
import { notSentCode } from "@refundkit/core/Ledger"
import type { Provider } from "@refundkit/core/Provider"
import { deriveId, type Refund } from "@refundkit/core/Refund"
import { describeIssues, type FieldIssue, OutcomeUnknown } from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { closeSync, openSync, writeSync } from "node:fs"
import * as BulkFile from "./BulkFile.js"
import { UsageError } from "./CliError.js"
import * as ExitCode from "./ExitCode.js"
import * as Output from "./Output.js"
import * as Progress from "./Progress.js"

/**
 * The most invalid rows kept for the `--json` report; all of them are printed on stderr.
 *
 * @since 0.1.0
 */
export const maxReportedRows = 1000

/**
 * An invalid row and what is wrong with it.
 *
 * @since 0.1.0
 */
export interface InvalidRow {
  readonly row: number
  readonly line: number
  readonly issues: ReadonlyArray<FieldIssue>
}

/**
 * What the validation pass found.
 *
 * @since 0.1.0
 */
export interface Validation {
  readonly rows: number
  readonly invalid: number
  /** The first {@link maxReportedRows} invalid rows. */
  readonly reported: ReadonlyArray<InvalidRow>
  readonly digest: string
}

const noIssues: ReadonlyArray<FieldIssue> = []


// A row's original amounts are checked against its own targets here, so a file with a row whose guard
// could not stand sends nothing, as for any other invalid row.
const validOrIssues = (provider: Provider, request: Record<string, unknown>, originals: BulkFile.Row["originalAmounts"]): Effect.Effect<ReadonlyArray<FieldIssue>> => {
  const prepared = Effect.flatMap(provider.prepare(request), (p) => (originals === undefined ? Effect.void : Refunds.withOriginalAmounts(provider.id, p, originals)))
  return Effect.match(prepared, {
    onFailure: (e) => e.issues,
    onSuccess: () => noIssues
  })
}

/**
 * Pass one: every row decoded with the provider's schema, invalid ones printed on
 * stderr as they are found. Memory stays flat whatever the file's size: rows are read
 * a few at a time, and only counts, the first {@link maxReportedRows} invalid rows and
 * the rows' own idempotency keys (an `idempotency_key` column; none when refundkit
 * derives them) are kept. A key given to two rows is refused on the second: the rows
 * would be one refund, and the second, met while the first's call is out, would be
 * taken for a row a killed run left behind.
 *
 * @since 0.1.0
 */
export const validate = (provider: Provider, path: string, format: BulkFile.Format): Effect.Effect<Validation, UsageError> =>
  Effect.scoped(Effect.gen(function*() {
    const pass = BulkFile.read(path, format, provider.requestJsonSchema)
    const pull = yield* pass.pull
    let rows = 0
    let invalid = 0
    const reported: Array<InvalidRow> = []
    const ownKeys = new Map<string, number>()
    for (let batch = yield* pull; batch.length > 0; batch = yield* pull) {
      for (const row of batch) {
        rows++
        const found = row.request === undefined ? row.issues : yield* validOrIssues(provider, row.request, row.originalAmounts)
        const keyedBefore = row.idempotencyKey === undefined ? undefined : ownKeys.get(row.idempotencyKey)
        if (row.idempotencyKey !== undefined && keyedBefore === undefined) ownKeys.set(row.idempotencyKey, row.row)
        const issues = keyedBefore === undefined
          ? found
          : [...found, { path: "idempotency_key", message: `repeats row ${keyedBefore}'s key: each row needs its own (rows sharing a key are one refund)` }]
        if (issues.length === 0) continue
        invalid++
        if (reported.length < maxReportedRows) reported.push({ row: row.row, line: row.line, issues })
        yield* Output.note(`row ${row.row} (line ${row.line}): ${describeIssues(issues)}`)
      }
    }
    return { rows, invalid, reported, digest: yield* pass.digest }
  }))

/**
 * How a row ended, for the tallies and the exit code: `ok` (succeeded, pending or
 * requires action), `declined` (the provider said no: a recorded refund), `failed`
 * (a provider or ledger failure), `in_doubt` (unknown: never resent), `invalid`.
 *
 * @since 0.1.0
 */
export type Outcome = "ok" | "declined" | "failed" | "in_doubt" | "invalid"

/**
 * One line of the results file.
 *
 * @since 0.1.0
 */
export interface Result {
  readonly row: number
  readonly line: number
  readonly idempotencyKey: string
  readonly refundId?: string | undefined
  readonly status?: string | undefined
  readonly providerStatus?: string | undefined
  readonly providerReference?: string | undefined
  readonly replayed?: boolean | undefined
  /** Set when `--retry-failed` resent the row: which resend, under `idempotencyKey` (see {@link retryKeyOf}). */
  readonly retry?: number | undefined
  readonly outcome: Outcome
  readonly error?: { readonly code: string; readonly message: string } | undefined
}

const outcomeOfRefund = (refund: Refund): Outcome => {
  switch (refund.status) {
    case "succeeded":
    case "pending":
    case "requires_action":
      return "ok"
    case "failed":
      return refund.error === undefined || refund.error.code === "provider_declined" ? "declined" : "failed"
    default:
      return "in_doubt"
  }
}

const invalidCodes = new Set(["invalid_request", "unknown_provider", "idempotency_key_reused", "over_refund", "target_already_refunded"])

/**
 * The most times `--retry-failed` resends one row, over all runs: each resend is a new
 * refund under its own key, so a row the provider keeps refusing stops here.
 *
 * @since 0.1.0
 */
export const maxRetries = 20

/**
 * The key of a row's `attempt`th resend by `--retry-failed`: derived from the row's own
 * key, so every re-run finds the same chain of refunds and never sends a resend twice.
 *
 * @since 0.1.0
 */
export const retryKeyOf = (key: string, attempt: number): string => (attempt === 0 ? key : `${key}:retry-${attempt}`)

// Failures a resend can get past once their cause is fixed: the provider was unavailable,
// refused refundkit's credentials or is not where its base URL says, or the row was never sent.
// A refusal of the request's own fields (`invalid_request`, Airalo's 422) or of the operation
// is the provider's answer to the row, as a decline is: resent, it is refused again.
const resendable = new Set(["provider_unavailable", "provider_auth_failed", "configuration_error", notSentCode])

/**
 * Whether an earlier run left the row failed without the provider processing it, for a
 * cause a resend can get past (see `resendable`): only such a row may be resent. A decline
 * is the provider's answer, and a row in doubt may have been refunded.
 */
const failedUnprocessed = (result: Either.Either<Refunds.Created, Refunds.CreateError>): boolean =>
  Either.isRight(result) && result.right.replayed && outcomeOfRefund(result.right.refund) === "failed" &&
  resendable.has(result.right.refund.error?.code ?? "")

// Built field by field rather than spread from a base object: one of these is made per row.
const resultOf = (
  row: BulkFile.Row,
  key: string,
  providerId: string,
  result: Either.Either<Refunds.Created, Refunds.CreateError>,
  retry: number
): Result => {
  if (Either.isRight(result)) {
    const refund = result.right.refund
    return {
      row: row.row,
      line: row.line,
      idempotencyKey: key,
      refundId: refund.id,
      status: refund.status,
      providerStatus: refund.providerStatus,
      providerReference: refund.providerReference,
      replayed: result.right.replayed,
      retry: retry === 0 ? undefined : retry,
      outcome: outcomeOfRefund(refund),
      error: refund.error === undefined ? undefined : { code: refund.error.code, message: refund.error.message }
    }
  }
  const error = result.left
  // Its refund id and status are the other refund's, which holds the target; this row recorded nothing.
  const held = error._tag === "TargetAlreadyRefunded"
  const status = held
    ? undefined
    : "status" in error && error.status !== undefined
    ? error.status
    : error._tag === "OutcomeUnknown" || error._tag === "UnexpectedResponse"
    ? "unknown"
    : error._tag === "RefundInProgress"
    ? "requested"
    : undefined
  const outcome: Outcome = invalidCodes.has(error.code) ? "invalid" : status === "unknown" || status === "requested" ? "in_doubt" : "failed"
  const refundId = held
    ? undefined
    : "refundId" in error && typeof error.refundId === "string"
    ? error.refundId
    : status === undefined
    ? undefined
    : deriveId(providerId, key)
  return {
    row: row.row,
    line: row.line,
    idempotencyKey: key,
    refundId,
    status,
    retry: retry === 0 ? undefined : retry,
    outcome,
    error: { code: error.code, message: error.message }
  }
}

/**
 * How many provider calls' worth of rows one `createMany` gets where a call takes
 * several rows: enough for core to pack alike rows that alternate in the file.
 *
 * @since 0.1.0
 */
export const packWindow = 4

type Verdict = { readonly _tag: "Resend" } | { readonly _tag: "Keep"; readonly note?: string | undefined }
const resend: Verdict = { _tag: "Resend" }
const keep: Verdict = { _tag: "Keep" }

/**
 * What the execution pass did.
 *
 * @since 0.1.0
 */
export interface Summary {
  readonly rows: number
  readonly processed: number
  readonly tally: Progress.Tally
  readonly statuses: Readonly<Record<string, number>>
  readonly replayed: number
  readonly stopped: boolean
  /** Set when the file was not the one validated by the time the run read it (see {@link execute}). */
  readonly fileChanged?: string | undefined
  /** Set when the results file could not be written: the run stopped taking rows, its calls in flight finished. */
  readonly resultsError?: string | undefined
  readonly exitCode: ExitCode.ExitCode
}

/**
 * How long, in milliseconds, the ledger lets each write of a bulk run wait for others
 * to share its commit. Rows are held twice as many as the calls in flight, so the
 * calls do not wait on it, while fewer and larger commits cost the run less CPU per
 * row: measured with `bench/bulk-ab.mjs`, see bench/README.md's ninth pass.
 *
 * @since 0.1.0
 */
export const commitDelayMillis = 5

/**
 * Settings of the execution pass.
 *
 * @since 0.1.0
 */
export interface ExecuteOptions {
  readonly path: string
  readonly format: BulkFile.Format
  readonly digest: string
  readonly total: number
  /** Provider calls in flight at most. */
  readonly concurrency: number
  readonly out: string
  /** Set when Ctrl-C asked to stop: no new rows are taken, calls in flight finish. */
  readonly stopRequested: () => boolean
  /** Resend rows an earlier run left failed without the provider processing them (see {@link retryKeyOf}). */
  readonly retryFailed: boolean
}

/**
 * The exit code for a tally: any row in doubt gives 3, then any failure 1, then any
 * invalid row 2, else 0.
 *
 * @since 0.1.0
 */
export const exitCodeOf = (tally: Progress.Tally): ExitCode.ExitCode =>
  tally.inDoubt > 0 ? ExitCode.inDoubt : tally.failed > 0 ? ExitCode.failure : tally.invalid > 0 ? ExitCode.usage : ExitCode.ok

/**
 * Rows handed out one at a time to several workers, read a batch at a time. Only one
 * worker reads from the file at once; the others keep taking rows already read.
 */
const rowTaker = (pull: Effect.Effect<ReadonlyArray<BulkFile.Row>, UsageError>) =>
  Effect.map(Effect.makeSemaphore(1), (reading): Effect.Effect<BulkFile.Row | undefined, UsageError> => {
    let buffer: ReadonlyArray<BulkFile.Row> = []
    let index = 0
    let ended = false
    const refill = reading.withPermits(1)(Effect.suspend(() => {
      // Another worker may have refilled, or reached the end, while this one waited.
      if (index < buffer.length) return Effect.succeed(buffer[index++])
      if (ended) return Effect.succeed(undefined)
      return Effect.map(pull, (batch) => {
        buffer = batch
        index = 0
        ended = batch.length === 0
        return ended ? undefined : buffer[index++]
      })
    }))
    return Effect.suspend(() => (index < buffer.length ? Effect.succeed(buffer[index++]) : ended ? Effect.succeed(undefined) : refill))
  })

/**
 * Pass two: submits every row and writes the results file.
 *
 * @since 0.1.0
 */
export const execute = (refunds: Refunds.Refunds.Service, provider: Provider, options: ExecuteOptions): Effect.Effect<Summary, UsageError> =>
  Effect.scoped(Effect.gen(function*() {
    const fd = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openSync(options.out, "w"),
        catch: (error) =>
          new UsageError({ field: "--out", detail: `cannot write the results file ${options.out} (${error instanceof Error ? error.message : String(error)})` })
      }),
      (fd) => Effect.sync(() => closeSync(fd))
    )
    const tally = Progress.emptyTally()
    const statuses: Record<string, number> = {}
    let processed = 0
    let replayed = 0
    // A results file that cannot be written (disk full, file too large) stops the run like Ctrl-C does: no new
    // rows, the calls in flight finish and are recorded in the ledger, so none is left `requested` (in doubt).
    let resultsError: string | undefined
    yield* Progress.report(tally, options.total)
    // Where a call takes several rows, core packs alike rows even when they alternate in the file, within one
    // createMany: hand it a few calls' worth at a time (Airalo's calls are minutes apart, so packing matters).
    const perCall = Math.max(1, provider.capabilities.maxTargetsPerCall)
    const callsPerBatch = perCall > 1 ? Math.min(packWindow, options.concurrency) : 1
    const batchRows = perCall * callsPerBatch
    // One-target rows: twice as many rows in hand as calls allowed, so that while `concurrency` calls
    // wait on the provider the other rows decode, claim and record, and the provider's pipe stays full.
    const workers = perCall > 1 ? Math.max(1, Math.ceil(options.concurrency / callsPerBatch)) : options.concurrency * 2
    const createOne = yield* refunds.pipeline({ calls: options.concurrency })
    const record = (result: Result): void => {
      if (resultsError === undefined) {
        try {
          writeSync(fd, `${JSON.stringify(result)}\n`)
        } catch (error) {
          resultsError = error instanceof Error ? error.message : String(error)
        }
      }
      processed++
      tally[result.outcome === "in_doubt" ? "inDoubt" : result.outcome]++
      if (result.status !== undefined) statuses[result.status] = (statuses[result.status] ?? 0) + 1
      if (result.replayed === true) replayed++
    }
    const recordInvalid = (row: BulkFile.Row, key: string) =>
      record({ row: row.row, line: row.line, idempotencyKey: key, outcome: "invalid", error: { code: "invalid_request", message: describeIssues(row.issues) } })
    // `--retry-failed`: a row an earlier run left failed without the provider processing it goes again under
    // its next key; every other result is recorded, with a note where a resend was due but cannot happen.
    const verdict = (key: string, attempt: number, result: Either.Either<Refunds.Created, Refunds.CreateError>): Verdict => {
      if (!options.retryFailed || !failedUnprocessed(result)) return keep
      if (attempt >= maxRetries) return { _tag: "Keep", note: `not resent: resent ${maxRetries} times already` }
      if (retryKeyOf(key, attempt + 1).length > 255) {
        return { _tag: "Keep", note: `not resent: its idempotency key leaves no room for ":retry-${attempt + 1}" within 255 characters` }
      }
      return resend
    }
    const recordAttempt = (row: BulkFile.Row, key: string, attempt: number, result: Either.Either<Refunds.Created, Refunds.CreateError>, note: string | undefined) => {
      const line = resultOf(row, retryKeyOf(key, attempt), provider.id, result, attempt)
      record(note === undefined || line.error === undefined ? line : { ...line, error: { code: line.error.code, message: `${line.error.message} (${note})` } })
    }
    // A row whose key holds a refund still `requested` was claimed by an earlier run of this file that
    // was killed with its call in flight (the key is this file's own): that refund is in doubt. Only
    // such rows are recovered, whatever their age; refunds other processes sharing the ledger are
    // submitting right now are left alone, and so is a row a live run of this same file leases.
    // `recoverOne` waits for such a row up to five heartbeats unless the ledger knows its run has ended:
    // said once, when it first waits, so that the run does not seem to hang.
    let waitSaid = false
    const sayWait = Effect.suspend(() => {
      if (waitSaid) return Effect.void
      waitSaid = true
      return Output.note(
        "Some rows' refunds are still \"requested\": a run of this file killed moments ago left them, or one still sending it holds them. " +
          "Each is waited for up to five heartbeats (REFUNDKIT_HEARTBEAT, 15 seconds by default): until its answer comes, or its run's lease runs out and it is taken as in doubt."
      )
    })
    const abandoned = (result: Either.Either<Refunds.Created, Refunds.CreateError>): Effect.Effect<Either.Either<Refunds.Created, Refunds.CreateError>> => {
      if (Either.isRight(result) || result.left._tag !== "RefundInProgress") return Effect.succeed(result)
      const refundId = result.left.refundId
      return refunds.recoverOne(refundId, "left in requested by a killed run of the same bulk file; not resent", { onWait: sayWait }).pipe(
        Effect.map((refund): Either.Either<Refunds.Created, Refunds.CreateError> =>
          refund.status === "unknown"
            ? Either.left(new OutcomeUnknown({
              provider: provider.id,
              refundId,
              detail: "an earlier run of this file was killed while this row's call was in flight, so it is not resent; settle it with `refundkit reconcile` or with the provider"
            }))
            : refund.status === "requested"
            ? result
            : Either.right({ refund, replayed: true })
        ),
        Effect.orElseSucceed(() => result)
      )
    }
    // Without `--retry-failed`, a row an earlier `--retry-failed` run resent is shown as its latest resend (found
    // by its derived id, nothing is sent): reporting the first, failed attempt would call a refunded row failed.
    const latest = (key: string, attempt: number, result: Either.Either<Refunds.Created, Refunds.CreateError>): Effect.Effect<{
      readonly attempt: number
      readonly result: Either.Either<Refunds.Created, Refunds.CreateError>
    }> =>
      options.retryFailed || !failedUnprocessed(result) || attempt >= maxRetries
        ? Effect.succeed({ attempt, result })
        : refunds.get(deriveId(provider.id, retryKeyOf(key, attempt + 1))).pipe(
          Effect.flatMap((refund) => latest(key, attempt + 1, Either.right({ refund, replayed: true }))),
          Effect.orElseSucceed(() => ({ attempt, result }))
        )
    type Pending = { readonly row: BulkFile.Row; readonly key: string; readonly request: Record<string, unknown>; readonly attempt: number }
    const sendMany = (pending: ReadonlyArray<Pending>): Effect.Effect<void> =>
      Effect.flatMap(
        refunds.createMany(pending.map((p) => ({ provider: provider.id, request: p.request, idempotencyKey: retryKeyOf(p.key, p.attempt), originalAmounts: p.row.originalAmounts })), {
          concurrency: callsPerBatch
        }).pipe(Effect.flatMap((results) => Effect.forEach(results, abandoned))),
        (results) =>
          Effect.flatMap(Effect.forEach(pending, (p, i) => latest(p.key, p.attempt, results[i]!)), (settled) => {
            const again: Array<Pending> = []
            for (let i = 0; i < pending.length; i++) {
              const p = pending[i]!
              const { attempt, result } = settled[i]!
              const next = verdict(p.key, attempt, result)
              if (next._tag === "Resend") again.push({ ...p, attempt: attempt + 1 })
              else recordAttempt(p.row, p.key, attempt, result, next.note)
            }
            return again.length === 0 ? Effect.void : sendMany(again)
          })
      )
    const submitMany = (rows: ReadonlyArray<BulkFile.Row>): Effect.Effect<void> => {
      const pending: Array<Pending> = []
      for (const row of rows) {
        const key = BulkFile.keyOf(row, options.digest)
        if (row.request === undefined) recordInvalid(row, key)
        else pending.push({ row, key, request: row.request, attempt: 0 })
      }
      return pending.length === 0 ? Effect.void : sendMany(pending)
    }
    const submitOne = (row: BulkFile.Row): Effect.Effect<void> => {
      const key = BulkFile.keyOf(row, options.digest)
      const request = row.request
      if (request === undefined) return Effect.sync(() => recordInvalid(row, key))
      const send = (attempt: number): Effect.Effect<void> =>
        Effect.flatMap(
          Effect.flatMap(Effect.flatMap(Effect.either(createOne({ provider: provider.id, request, idempotencyKey: retryKeyOf(key, attempt), originalAmounts: row.originalAmounts })), abandoned), (result) =>
            latest(key, attempt, result)),
          (settled) => {
            const next = verdict(key, settled.attempt, settled.result)
            if (next._tag === "Resend") return send(settled.attempt + 1)
            recordAttempt(row, key, settled.attempt, settled.result, next.note)
            return Effect.void
          }
        )
      return send(0)
    }
    const pass = BulkFile.read(options.path, options.format, provider.requestJsonSchema)
    const take = yield* rowTaker(yield* pass.pull)
    // Each worker takes the next row as soon as its call ends, so a slow call never holds back the rows
    // behind it. The stop check comes before every take: after Ctrl-C no worker starts a new row. Rows past the
    // count validated are never taken: the file grew after the validation pass, and they were not validated.
    let taken = 0
    const stopping = () => options.stopRequested() || resultsError !== undefined
    // (Two workers may both wait for the reader when one row is left: the second then gets a row past the count.)
    let extra = 0
    const next = Effect.suspend(() =>
      stopping() || taken >= options.total ? Effect.succeed(undefined) : Effect.map(take, (row) => {
        if (row === undefined) return undefined
        if (taken >= options.total) {
          extra++
          return undefined
        }
        taken++
        return row
      })
    )
    const worker = perCall === 1
      ? Effect.gen(function*() {
        for (let row = yield* next; row !== undefined; row = yield* next) yield* submitOne(row)
      })
      : Effect.gen(function*() {
        while (true) {
          const rows: Array<BulkFile.Row> = []
          while (rows.length < batchRows) {
            const row = yield* next
            if (row === undefined) break
            rows.push(row)
          }
          if (rows.length === 0) return
          yield* submitMany(rows)
        }
      })
    yield* Effect.all(Array.from({ length: workers }, () => worker), { concurrency: "unbounded", discard: true })
    // The keys were derived from the bytes validated; a file that changed mid-run (still being written, cut
    // short, edited) gets other keys next time, so a re-run of it would refund its rows again. Read it to the
    // end to compare, unless the run was stopped before the end.
    let fileChanged: string | undefined
    if (!stopping()) {
      for (let row = yield* take; row !== undefined; row = yield* take) extra++
      const digest = yield* pass.digest
      if (extra > 0 || taken < options.total || digest !== options.digest) {
        fileChanged = `${options.path} changed while it was being processed (${options.total} rows validated, ${taken + extra} rows read now). ` +
          `Its rows were submitted under keys derived from the content validated: running this command again on the changed file would refund them again. ` +
          `Put the rows not yet done (see the results file) in a new file with an idempotency_key column.`
      }
    }
    const failedRun = fileChanged !== undefined || resultsError !== undefined
    return {
      rows: options.total,
      processed,
      tally: { ...tally },
      statuses,
      replayed,
      stopped: stopping() && processed < options.total,
      fileChanged,
      resultsError,
      exitCode: failedRun ? ExitCode.worst([exitCodeOf(tally), ExitCode.failure]) : exitCodeOf(tally)
    }
  }))
