/**
 * How a refund maps to table rows and back. Every row read from the database is
 * decoded with Schema: a database edited by hand or by a broken migration yields a
 * `LedgerError` naming the column, never a half-built refund.
 *
 * @internal
 */
import type { Reservation, StatusCount } from "@refundkit/core/Ledger"
import { releasedChange, reservationOf } from "@refundkit/core/Ledger"
import type { Refund, RefundEvent } from "@refundkit/core/Refund"
import { EventSource, OperatorVerdict, RefundId, RefundItem, RefundTarget } from "@refundkit/core/Refund"
import { ErrorInfo, LedgerError } from "@refundkit/core/RefundError"
import { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Claimants from "./claimants.js"

/** @internal */
export type Dialect = "sqlite" | "pg"

/** The columns every refund query selects, in one place so reads and decoding agree. */
export const refundColumns =
  "seq, id, provider, idempotency_key, fingerprint, request, status, provider_status, provider_final, holds_target, provider_reference, provider_references, currency, amount, targets, items, error, created_at, updated_at"

/** @internal */
export const eventColumns = "refund_id, sequence, at, source, from_status, to_status, provider_status, accepted, detail, verdict, callback_key"

// PostgreSQL returns BIGINT and NUMERIC as strings, SQLite returns INTEGER as a number.
const Seq = Schema.Union(Schema.BigInt, Schema.BigIntFromNumber)

// PostgreSQL has a boolean type, SQLite stores 0 / 1.
const Flag = Schema.Union(
  Schema.Boolean,
  Schema.transform(Schema.Literal(0, 1), Schema.Boolean, { strict: true, decode: (n) => n === 1, encode: (b) => (b ? 1 : 0) })
)

const Text = Schema.String
const OptionalText = Schema.NullOr(Schema.String)

// What the ledger itself writes, so a hand edit to anything else is a LedgerError naming
// the column rather than a value served (or summed) as if it were money or a time.
const Timestamp = Schema.String.pipe(
  Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, { message: () => "must be an ISO 8601 UTC timestamp" })
)
const Amount = Schema.String.pipe(Schema.pattern(/^\d+(\.\d+)?$/, { message: () => "must be a non-negative decimal string" }))
const CurrencyCode = Schema.String.pipe(Schema.pattern(/^[A-Z]{3}$/, { message: () => "must be a three-letter currency code" }))
// Minor units as the ledger stores them: digits only (no sign, no 0x, no spaces), which
// BigInt would otherwise read as something else.
const MinorUnits = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d+$/, { message: () => "must be a non-negative whole number of minor units" })),
  Schema.BigInt
)

const RefundRow = Schema.Struct({
  seq: Seq,
  id: RefundId,
  provider: Text,
  idempotency_key: Text,
  fingerprint: Text,
  request: Schema.parseJson(),
  status: RefundStatus,
  provider_status: OptionalText,
  provider_final: Flag,
  holds_target: Flag,
  provider_reference: OptionalText,
  provider_references: Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.String })),
  currency: Schema.NullOr(CurrencyCode),
  amount: Schema.NullOr(Amount),
  targets: Schema.parseJson(Schema.Array(RefundTarget)),
  items: Schema.parseJson(Schema.Array(RefundItem)),
  error: Schema.NullOr(Schema.parseJson(ErrorInfo)),
  created_at: Timestamp,
  updated_at: Timestamp
})

/** @internal */
export type RefundRow = typeof RefundRow.Type

const EventRow = Schema.Struct({
  refund_id: Text,
  sequence: Schema.Int,
  at: Text,
  source: EventSource,
  from_status: Schema.NullOr(RefundStatus),
  to_status: RefundStatus,
  provider_status: OptionalText,
  accepted: Flag,
  detail: OptionalText,
  // An operator's verdict (migration 16); NULL on other events and on verdicts recorded before the column.
  verdict: Schema.NullOr(Schema.parseJson(OperatorVerdict)),
  // A provider's callback's key (migration 17); NULL on other events and on callbacks recorded before the column.
  callback_key: OptionalText
})

/** @internal */
export type EventRow = typeof EventRow.Type

// No amount or no currency: a reservation the guard cannot count (core's `Reservation`).
const ReservationRow = Schema.Struct({ refund_id: Text, amount_minor: Schema.NullOr(MinorUnits), currency: Schema.NullOr(CurrencyCode), status: RefundStatus })

const corrupt = (what: string, error: ParseResult.ParseError): LedgerError => {
  const [first] = ParseResult.ArrayFormatter.formatErrorSync(error)
  const column = first === undefined || first.path.length === 0 ? "row" : `column ${first.path.map(String).join(".")}`
  return new LedgerError({ detail: `${what} is corrupt in the database: ${column}: ${first?.message ?? "does not match the ledger schema"}` })
}

const rowName = (row: unknown): string => {
  const id = typeof row === "object" && row !== null && "id" in row ? row.id : undefined
  return typeof id === "string" ? `stored refund ${id}` : "a stored refund"
}

// The schemas are synchronous, so rows are decoded to an Either: the same checks, without an
// Effect pipeline per row on the ledger's hottest reads.
const refundRowDecoder = Schema.decodeUnknownEither(RefundRow)
const eventRowDecoder = Schema.decodeUnknownEither(EventRow)
const reservationRowDecoder = Schema.decodeUnknownEither(ReservationRow)

/** The synchronous decoder, for the SQLite ledger's synchronous operations. @internal */
export const decodeRefundRowEither = (row: unknown): Either.Either<RefundRow, LedgerError> =>
  Either.mapLeft(refundRowDecoder(row), (error) => corrupt(rowName(row), error))

/** @internal */
export const decodeEventRowEither = (row: unknown): Either.Either<EventRow, LedgerError> =>
  Either.mapLeft(eventRowDecoder(row), (error) => {
    const id = typeof row === "object" && row !== null && "refund_id" in row && typeof row.refund_id === "string" ? row.refund_id : "?"
    return corrupt(`an event of stored refund ${id}`, error)
  })

/** @internal */
export const decodeReservedEither = (rows: ReadonlyArray<unknown>): Either.Either<ReadonlyArray<Reservation>, LedgerError> => {
  const reservations: Array<Reservation> = []
  for (const row of rows) {
    const decoded = reservationRowDecoder(row)
    if (Either.isLeft(decoded)) return Either.left(corrupt("a refund reservation", decoded.left))
    const { amount_minor, currency, refund_id, status } = decoded.right
    reservations.push({ refundId: refund_id, amount: amount_minor ?? undefined, currency: currency ?? undefined, status })
  }
  return Either.right(reservations)
}

// The row's `version`, read beside the refund columns where a status change or a cache needs it.
const VersionRow = Schema.Struct({ version: Schema.Int })
const versionRowDecoder = Schema.decodeUnknownEither(VersionRow)

/** @internal */
export const decodeVersionEither = (row: unknown): Either.Either<number, LedgerError> =>
  Either.match(versionRowDecoder(row), {
    onLeft: (error) => Either.left(corrupt(rowName(row), error)),
    onRight: (decoded) => Either.right(decoded.version)
  })

// What a batched write returns for each refund it wrote (`pgGroupCommit.ts`).
const WrittenRow = Schema.Struct({ id: Schema.String, version: Schema.Int })
const writtenRowDecoder = Schema.decodeUnknownEither(WrittenRow)

/** @internal */
export const decodeWrittenEither = (row: unknown): Either.Either<{ readonly id: string; readonly version: number }, LedgerError> =>
  Either.mapLeft(writtenRowDecoder(row), (error) => corrupt(rowName(row), error))

// The `seq` and `version` a claim's INSERT returns: its events and reservations are keyed by the seq.
const ClaimedRow = Schema.Struct({ seq: Seq, version: Schema.Int })
const claimedRowDecoder = Schema.decodeUnknownEither(ClaimedRow)

/** @internal */
export const decodeClaimedEither = (row: unknown): Either.Either<{ readonly seq: bigint; readonly version: number }, LedgerError> =>
  Either.mapLeft(claimedRowDecoder(row), (error) => corrupt(rowName(row), error))

// Who claimed a refund still `requested` (migration 14), for recovery to ask whether that process has ended.
const ClaimantRow = Schema.Struct({ id: Text, claimed_by: Schema.NullOr(Schema.String) })
const claimantRowDecoder = Schema.decodeUnknownEither(ClaimantRow)

/**
 * The ids of the refunds among `rows` (id, claimed_by) whose claimant has ended, as far as a ledger
 * of this `reach` can tell (`Claimants.hasEnded`). A row that does not decode (edited by hand) is
 * passed by: with no claimant it is known to have lost, its refund is recovered by grace and lease,
 * as before the column. @internal
 */
export const orphanedIds = (rows: ReadonlyArray<unknown>, reach: Claimants.Reach): ReadonlyArray<string> =>
  Claimants.endedAmong(
    rows.flatMap((row) => Either.match(claimantRowDecoder(row), { onLeft: () => [], onRight: (r) => [{ id: r.id, claimedBy: r.claimed_by }] })),
    reach
  ).map((r) => r.id)

// A line of countByStatus (the statement casts PostgreSQL's bigint count to an integer).
const CountRow = Schema.Struct({ provider: Text, status: RefundStatus, n: Schema.NonNegativeInt })
const countRowDecoder = Schema.decodeUnknownEither(CountRow)

/** @internal */
export const decodeCountsEither = (rows: ReadonlyArray<unknown>): Either.Either<ReadonlyArray<StatusCount>, LedgerError> => {
  const counts: Array<StatusCount> = []
  for (const row of rows) {
    const decoded = countRowDecoder(row)
    if (Either.isLeft(decoded)) return Either.left(corrupt("a count of refunds by status", decoded.left))
    counts.push({ provider: decoded.right.provider, status: decoded.right.status, count: decoded.right.n })
  }
  return Either.right(counts)
}

// A guarded claim's row on PostgreSQL (`pgFastPath.ts`): its version, and the reservations
// others hold on its targets as one JSON array of reservation rows, each naming its target.
const GuardedClaimRow = Schema.Struct({ version: Schema.Int, held: Schema.Array(Schema.Unknown) })
const guardedClaimRowDecoder = Schema.decodeUnknownEither(GuardedClaimRow)
const heldTargetDecoder = Schema.decodeUnknownEither(Schema.Struct({ target: Text }))

/** The version a guarded claim wrote, and the reservations held by others, by target. @internal */
export const decodeGuardedClaimEither = (
  raw: unknown
): Either.Either<{ readonly version: number; readonly held: ReadonlyMap<string, ReadonlyArray<Reservation>> }, LedgerError> => {
  const decoded = guardedClaimRowDecoder(raw)
  if (Either.isLeft(decoded)) return Either.left(corrupt(rowName(raw), decoded.left))
  const held = new Map<string, Array<Reservation>>()
  for (const row of decoded.right.held) {
    const target = heldTargetDecoder(row)
    if (Either.isLeft(target)) return Either.left(corrupt("a refund reservation", target.left))
    const reservation = decodeReservedEither([row])
    if (Either.isLeft(reservation)) return Either.left(reservation.left)
    held.set(target.right.target, [...(held.get(target.right.target) ?? []), ...reservation.right])
  }
  return Either.right({ version: decoded.right.version, held })
}

// On PostgreSQL a read brings a refund's events along as one JSON array of event rows
// (`json_agg`), each then decoded like a row of `refund_events`.
const EventsColumn = Schema.Struct({ events: Schema.Array(Schema.Unknown) })
const eventsColumnDecoder = Schema.decodeUnknownEither(EventsColumn)

/** A refund as stored at `version`. @internal */
export interface Versioned {
  readonly row: RefundRow
  readonly version: number
  readonly refund: Refund
}

/** A refund row with its `version` and an `events` column holding its event rows. @internal */
export const decodeHydratedEither = (raw: unknown): Either.Either<Versioned, LedgerError> => {
  const row = decodeRefundRowEither(raw)
  if (Either.isLeft(row)) return Either.left(row.left)
  const version = decodeVersionEither(raw)
  if (Either.isLeft(version)) return Either.left(version.left)
  const column = eventsColumnDecoder(raw)
  if (Either.isLeft(column)) return Either.left(corrupt(rowName(raw), column.left))
  const events: Array<RefundEvent> = []
  for (const item of column.right.events) {
    const event = decodeEventRowEither(item)
    if (Either.isLeft(event)) return Either.left(event.left)
    events.push(toEvent(event.right))
  }
  return Either.right({ row: row.right, version: version.right, refund: toRefund(row.right, events) })
}

/** @internal */
export const decodeRefundRow = (row: unknown): Effect.Effect<RefundRow, LedgerError> => decodeRefundRowEither(row)

/** @internal */
export const decodeEventRow = (row: unknown): Effect.Effect<EventRow, LedgerError> => decodeEventRowEither(row)

/** @internal */
export const decodeReserved = (rows: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<Reservation>, LedgerError> => decodeReservedEither(rows)

/** @internal */
export const toEvent = (row: EventRow): RefundEvent => ({
  sequence: row.sequence,
  at: row.at,
  source: row.source,
  from: row.from_status,
  to: row.to_status,
  accepted: row.accepted,
  ...(row.provider_status === null ? {} : { providerStatus: row.provider_status }),
  ...(row.detail === null ? {} : { detail: row.detail }),
  ...(row.verdict === null ? {} : { verdict: row.verdict }),
  ...(row.callback_key === null ? {} : { callbackKey: row.callback_key })
})

/** @internal */
export const toRefund = (row: RefundRow, events: ReadonlyArray<RefundEvent>): Refund => ({
  id: row.id,
  provider: row.provider,
  idempotencyKey: row.idempotency_key,
  fingerprint: row.fingerprint,
  request: row.request,
  status: row.status,
  ...(row.provider_status === null ? {} : { providerStatus: row.provider_status }),
  ...(row.provider_final ? { providerFinal: true } : {}),
  ...(row.holds_target ? { holdsTarget: true } : {}),
  ...(row.provider_reference === null ? {} : { providerReference: row.provider_reference }),
  references: row.provider_references,
  ...(row.currency === null ? {} : { currency: row.currency }),
  ...(row.amount === null ? {} : { amount: row.amount }),
  targets: row.targets,
  items: row.items,
  ...(row.error === null ? {} : { error: row.error }),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  events
})

/** JSON columns hold the canonical JSON of the value; `undefined` has no JSON, so it is stored as `null`. */
const json = (value: unknown): string => JSON.stringify(value) ?? "null"

/** The columns written when a refund is first recorded, with the process claiming it (`claimants.ts`). @internal */
export const insertRow = (refund: Refund) => ({
  id: refund.id,
  provider: refund.provider,
  idempotency_key: refund.idempotencyKey,
  fingerprint: refund.fingerprint,
  request: json(refund.request),
  status: refund.status,
  provider_status: refund.providerStatus ?? null,
  provider_reference: refund.providerReference ?? null,
  provider_references: json(refund.references),
  currency: refund.currency ?? null,
  amount: refund.amount ?? null,
  targets: json(refund.targets),
  items: json(refund.items),
  error: refund.error === undefined ? null : json(refund.error),
  created_at: refund.createdAt,
  updated_at: refund.updatedAt,
  claimed_by: Claimants.self() ?? null
})

/**
 * The columns a status change may rewrite. A claim writes no `provider_final` or `holds_target`
 * (the columns' default, 0): a refund is claimed `requested`, before any provider has said anything.
 * @internal
 */
export const updateRow = (refund: Refund) => ({
  status: refund.status,
  provider_status: refund.providerStatus ?? null,
  provider_reference: refund.providerReference ?? null,
  provider_references: json(refund.references),
  items: json(refund.items),
  error: refund.error === undefined ? null : json(refund.error),
  updated_at: refund.updatedAt,
  provider_final: refund.providerFinal === true ? 1 : 0,
  holds_target: refund.holdsTarget === true ? 1 : 0
})

/**
 * An event's verdict as the `verdict` column holds it: JSON text of its four fields, and `reopen` on an
 * operator's reopen only (rows written before it read the same), whatever else the object carries, so every
 * ledger reads back the same; NULL for an event without one.
 */
const verdictText = (event: RefundEvent): string | null =>
  event.verdict === undefined
    ? null
    : JSON.stringify({
      note: event.verdict.note,
      releaseTargets: event.verdict.releaseTargets,
      failedTargets: event.verdict.failedTargets,
      correct: event.verdict.correct,
      ...(event.verdict.reopen === true ? { reopen: true } : {})
    })

/** @internal */
export const eventRow = (dialect: Dialect, refundId: string, event: RefundEvent) => ({
  refund_id: refundId,
  sequence: event.sequence,
  at: event.at,
  source: event.source,
  from_status: event.from,
  to_status: event.to,
  provider_status: event.providerStatus ?? null,
  // better-sqlite3 cannot bind booleans.
  accepted: dialect === "sqlite" ? (event.accepted ? 1 : 0) : event.accepted,
  detail: event.detail ?? null,
  verdict: verdictText(event),
  callback_key: event.callbackKey ?? null
})

/**
 * The rows of `refund_targets` a refund reserves: one per target it names, with its amount
 * in minor units, or NULL where the guard cannot count it (no currency, or a whole
 * refund), so a later guarded refund against the target is refused rather than let past
 * it. Whether the refund is failed is read from its row when reservations are summed.
 * @internal
 */
export const targetRows = (refund: Refund) =>
  [...new Set(refund.targets.map((t) => t.target))].map((target) => {
    const reservation = reservationOf(refund, target)
    return {
      refund_id: refund.id,
      provider: refund.provider,
      target,
      amount_minor: reservation?.amount === undefined ? null : reservation.amount.toString(),
      currency: refund.currency ?? null
    }
  })

/**
 * What a status change writes to `refund_targets.released` (migration 15), when it alters the
 * targets the refund releases (core's `releasedChange`): the refund's provider and targets, each
 * once (the reservation rows' keys), and those released now. `undefined` for every change that
 * leaves them as they were (any refund none of whose items failed): it writes nothing there.
 * @internal
 */
export const releaseOf = (
  before: Refund,
  after: Refund
): { readonly provider: string; readonly targets: ReadonlyArray<string>; readonly released: ReadonlyArray<string> } | undefined => {
  const released = releasedChange(before, after)
  return released === undefined ? undefined : { provider: after.provider, targets: [...new Set(after.targets.map((t) => t.target))], released }
}

/** Events as the rows PostgreSQL's `json_to_recordset` expands into `refund_events` rows (each takes the refund's id and seq from the row written). @internal */
export const eventsRows = (events: ReadonlyArray<RefundEvent>) =>
  events.map((event) => {
    const { refund_id: _, ...row } = eventRow("pg", "", event)
    return row
  })

/** `eventsRows` as one JSON parameter. @internal */
export const eventsJson = (events: ReadonlyArray<RefundEvent>): string => JSON.stringify(eventsRows(events))

/** The columns of `insertRow`, in the order of `insertValues`. @internal */
export const insertColumns =
  "id, provider, idempotency_key, fingerprint, request, status, provider_status, provider_reference, provider_references, currency, amount, targets, items, error, created_at, updated_at, claimed_by"

/** `insertRow` as positional parameters, for statements prepared once. @internal */
export const insertValues = (refund: Refund): ReadonlyArray<string | null> => {
  const row = insertRow(refund)
  return [
    row.id,
    row.provider,
    row.idempotency_key,
    row.fingerprint,
    row.request,
    row.status,
    row.provider_status,
    row.provider_reference,
    row.provider_references,
    row.currency,
    row.amount,
    row.targets,
    row.items,
    row.error,
    row.created_at,
    row.updated_at,
    row.claimed_by
  ]
}

/** The assignments of `updateRow`, in the order of `updateValues`. @internal */
export const updateAssignments =
  "status = ?, provider_status = ?, provider_reference = ?, provider_references = ?, items = ?, error = ?, updated_at = ?, provider_final = ?, holds_target = ?"

/** `updateRow` as positional parameters. @internal */
export const updateValues = (refund: Refund): ReadonlyArray<string | number | null> => {
  const row = updateRow(refund)
  return [row.status, row.provider_status, row.provider_reference, row.provider_references, row.items, row.error, row.updated_at, row.provider_final, row.holds_target]
}

/** `eventRow` for SQLite as positional parameters, in the order of `eventColumns`. @internal */
export const eventValues = (refundId: string, event: RefundEvent): ReadonlyArray<string | number | null> => [
  refundId,
  event.sequence,
  event.at,
  event.source,
  event.from,
  event.to,
  event.providerStatus ?? null,
  event.accepted ? 1 : 0,
  event.detail ?? null,
  verdictText(event),
  event.callbackKey ?? null
]
