/**
 * The two passes of `refundkit bulk`. The first decodes every row with the provider's
 * schema and reports every invalid row before anything is sent. The second submits
 * the rows with bounded concurrency through core's `Refunds.createMany` (which honours
 * the provider's rate limit and packs rows into one call where the provider takes
 * several targets), writes one result line per row and tallies the outcomes.
 *
 * @since 0.1.0
 */
import type { Provider } from "@refundkit/core/Provider"
import { deriveId, type Refund } from "@refundkit/core/Refund"
import type { FieldIssue } from "@refundkit/core/RefundError"
import type * as Refunds from "@refundkit/core/Refunds"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
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

const describeIssues = (issues: ReadonlyArray<FieldIssue>) => issues.map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)).join("; ")

/**
 * Pass one: every row decoded with the provider's schema, invalid ones printed on
 * stderr as they are found; memory stays constant whatever the file's size.
 *
 * @since 0.1.0
 */
export const validate = (provider: Provider, path: string, format: BulkFile.Format): Effect.Effect<Validation, UsageError> =>
  Effect.gen(function*() {
    const pass = BulkFile.read(path, format, provider.requestJsonSchema)
    let rows = 0
    let invalid = 0
    const reported: Array<InvalidRow> = []
    yield* pass.rows.pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.gen(function*() {
          for (const row of chunk) {
            rows++
            const issues = row.request === undefined
              ? row.issues
              : yield* provider.prepare(row.request).pipe(Effect.match({ onFailure: (e) => e.issues, onSuccess: () => noIssues }))
            if (issues.length === 0) continue
            invalid++
            if (reported.length < maxReportedRows) reported.push({ row: row.row, line: row.line, issues })
            yield* Output.note(`row ${row.row} (line ${row.line}): ${describeIssues(issues)}`)
          }
        })
      )
    )
    return { rows, invalid, reported, digest: yield* pass.digest }
  })

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

const invalidCodes = new Set(["invalid_request", "unknown_provider", "idempotency_key_reused", "over_refund"])

const resultOf = (row: BulkFile.Row, key: string, providerId: string, result: Either.Either<Refunds.Created, Refunds.CreateError>): Result => {
  const base = { row: row.row, line: row.line, idempotencyKey: key }
  if (Either.isRight(result)) {
    const refund = result.right.refund
    return {
      ...base,
      refundId: refund.id,
      status: refund.status,
      providerStatus: refund.providerStatus,
      providerReference: refund.providerReference,
      replayed: result.right.replayed,
      outcome: outcomeOfRefund(refund),
      error: refund.error === undefined ? undefined : { code: refund.error.code, message: refund.error.message }
    }
  }
  const error = result.left
  const status = "status" in error && error.status !== undefined
    ? error.status
    : error._tag === "OutcomeUnknown" || error._tag === "UnexpectedResponse"
    ? "unknown"
    : error._tag === "RefundInProgress"
    ? "requested"
    : undefined
  const outcome: Outcome = invalidCodes.has(error.code) ? "invalid" : status === "unknown" || status === "requested" ? "in_doubt" : "failed"
  const refundId = "refundId" in error && typeof error.refundId === "string" ? error.refundId : status === undefined ? undefined : deriveId(providerId, key)
  return { ...base, refundId, status, outcome, error: { code: error.code, message: error.message } }
}

/**
 * How many provider calls' worth of rows one `createMany` gets where a call takes
 * several rows: enough for core to pack alike rows that alternate in the file.
 *
 * @since 0.1.0
 */
export const packWindow = 4

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
  readonly exitCode: ExitCode.ExitCode
}

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
  readonly concurrency: number
  readonly out: string
  /** Set when Ctrl-C asked to stop: no new rows are taken, calls in flight finish. */
  readonly stopRequested: () => boolean
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
    yield* Progress.report(tally, options.total)
    // Where a call takes several rows, core packs alike rows even when they alternate in the file, within one
    // createMany: hand it a few calls' worth at a time (Airalo's calls are minutes apart, so packing matters).
    const perCall = Math.max(1, provider.capabilities.maxTargetsPerCall)
    const callsPerBatch = perCall > 1 ? Math.min(packWindow, options.concurrency) : 1
    const batchRows = perCall * callsPerBatch
    const batches = Math.max(1, Math.ceil(options.concurrency / callsPerBatch))
    const record = (result: Result) =>
      Effect.sync(() => {
        writeSync(fd, `${JSON.stringify(result)}\n`)
        processed++
        tally[result.outcome === "in_doubt" ? "inDoubt" : result.outcome]++
        if (result.status !== undefined) statuses[result.status] = (statuses[result.status] ?? 0) + 1
        if (result.replayed === true) replayed++
      })
    const submit = (rows: ReadonlyArray<BulkFile.Row>) =>
      Effect.gen(function*() {
        const valid = rows.filter((row) => row.request !== undefined)
        for (const row of rows) {
          if (row.request === undefined) {
            yield* record({ row: row.row, line: row.line, idempotencyKey: BulkFile.keyOf(row, options.digest), outcome: "invalid", error: { code: "invalid_request", message: describeIssues(row.issues) } })
          }
        }
        if (valid.length === 0) return
        const inputs = valid.map((row) => ({ provider: provider.id, request: row.request, idempotencyKey: BulkFile.keyOf(row, options.digest) }))
        const results = yield* refunds.createMany(inputs, { concurrency: callsPerBatch })
        yield* Effect.forEach(valid, (row, i) => record(resultOf(row, inputs[i]!.idempotencyKey, provider.id, results[i]!)), { discard: true })
      })
    // One row per call: each row is its own unit in a sliding window of `concurrency`, so a slow
    // call never holds back the rows behind it, and no batching machinery runs per row.
    const submitOne = (row: BulkFile.Row) => {
      const key = BulkFile.keyOf(row, options.digest)
      if (row.request === undefined) {
        return record({ row: row.row, line: row.line, idempotencyKey: key, outcome: "invalid", error: { code: "invalid_request", message: describeIssues(row.issues) } })
      }
      return Effect.flatMap(
        Effect.either(refunds.create({ provider: provider.id, request: row.request, idempotencyKey: key })),
        (result) => record(resultOf(row, key, provider.id, result))
      )
    }
    const pass = BulkFile.read(options.path, options.format, provider.requestJsonSchema)
    // Rows arrive a read buffer at a time; the stop check must see them one by one, as they are taken.
    const taken = pass.rows.pipe(Stream.rechunk(1), Stream.takeWhile(() => !options.stopRequested()))
    yield* perCall === 1
      ? taken.pipe(Stream.mapEffect(submitOne, { concurrency: options.concurrency, unordered: true }), Stream.runDrain)
      : taken.pipe(
        Stream.grouped(batchRows),
        Stream.mapEffect((chunk) => submit(Chunk.toReadonlyArray(chunk)), { concurrency: batches, unordered: true }),
        Stream.runDrain
      )
    // The keys were derived from the bytes validated; a file edited mid-run would get different keys next time.
    if (processed === options.total && (yield* pass.digest) !== options.digest) {
      yield* Output.note(`warning: ${options.path} changed while it was being processed; do not edit it before a re-run (its rows' keys come from its content).`)
    }
    return {
      rows: options.total,
      processed,
      tally: { ...tally },
      statuses,
      replayed,
      stopped: options.stopRequested() && processed < options.total,
      exitCode: exitCodeOf(tally)
    }
  }))
