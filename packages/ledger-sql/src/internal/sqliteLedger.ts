/**
 * The SQLite ledger on its raw better-sqlite3 connection. Each operation is one
 * synchronous block of prepared statements inside one Effect step, instead of an
 * Effect program per statement; writes go through the group-commit writer, and a
 * status change to a refund this process already holds uses the cached refund once
 * the row's version and last event say nobody else wrote it.
 *
 * The rules are the same as on `@effect/sql` (see `SqlLedger.make`): a claim inserts
 * against the unique (provider, idempotency_key) and sums the over-refund guard under
 * the write lock, changes go through core's `applyChange`, refused changes are recorded.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { ledgerError } from "@refundkit/core/Ledger"
import type { Change, Claim, ListQuery, Page } from "@refundkit/core/Ledger"
import {
  applyChange,
  byCreation,
  createdRangeRefusal,
  holdsTargets,
  invalidCursor,
  reclaimRefusal,
  recoveryOf,
  refusalOf,
  repeatedCallback,
  targetGuards,
  targetWithoutProvider
} from "@refundkit/core/Ledger"
import type { Refund, RefundEvent } from "@refundkit/core/Refund"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import type { GuardError } from "@refundkit/core/Ledger"
import type { DuplicateCallback, IllegalTransition, InvalidRequest } from "@refundkit/core/RefundError"
import { LedgerError, RefundNotFound } from "@refundkit/core/RefundError"
import BetterSqlite3 from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Migrations from "../Migrations.js"
import type { SqlLedger, SyncLease } from "../SqlLedger.js"
import * as Checkpointer from "./checkpointer.js"
import * as Claimants from "./claimants.js"
import {
  byStatusAlone,
  type CreatedAfter,
  createdConditions,
  decodeCreatedCursor,
  decodeCursor,
  encodeCreatedCursor,
  encodeCursor,
  firstInLeaseOrder,
  type LeaseCandidate,
  leaseOrder,
  providersDueText,
  providersWithStatusText,
  recoverySkipped,
  syncDue,
  syncSkipped
} from "./queries.js"
import * as Rows from "./rows.js"
import * as RefundCache from "./sqliteCache.js"
import * as SqliteConnection from "./sqliteClient.js"
import { type Busy, busyAgain, failure, retryBusy } from "./sqliteErrors.js"
import * as Writer from "./sqliteWriter.js"
import * as Turns from "./turns.js"
import * as WalSync from "./walSync.js"

/** @internal */
export interface Options {
  /** How long an operation keeps retrying while another process holds the lock. */
  readonly busyTimeoutMillis: number
  /** Refunds remembered for status changes without a re-read (default 10,000). */
  readonly cacheSize?: number | undefined
  /** Most writes per group commit (default 256). */
  readonly maxBatch?: number | undefined
  /** Syncs the WAL after commits when the connection does not (see `open`). */
  readonly walSync?: WalSync.WalSync | undefined
  /** Checkpoints the WAL off the event loop; told how many writes each COMMIT held. */
  readonly checkpointer?: Checkpointer.Checkpointer | undefined
  /** How long a batch's first write waits for others to share its COMMIT (default 0). */
  readonly commitDelayMillis?: number | undefined
  /** A refund's turn: its lease and how long a caller waits for it (`Turns.defaults`). */
  readonly turns?: Turns.Options | undefined
}

type Row = Record<string, unknown>

const selected = `${Rows.refundColumns}, version`
const lastEvent = "(SELECT MAX(sequence) FROM refund_events WHERE refund_seq = refunds.seq) AS last_sequence"
// Events and reservations are keyed by the refund's seq (Migrations.ts): a write names the
// refund by id and the statement finds its seq; no refund, no seq, and NOT NULL refuses it.
const seqOfId = "(SELECT seq FROM refunds WHERE id = ?)"

/**
 * A change that alters the targets a refund releases (core's `releasedTargets`) rewrites the flag on
 * its reservations, found by their key; parameters: the released targets (JSON), the provider, every
 * target of the refund (JSON), its id. No other change runs it.
 *
 * @internal
 */
export const releaseTargetsText = `UPDATE refund_targets SET released = (target IN (SELECT value FROM json_each(?)))
    WHERE provider = ? AND target IN (SELECT value FROM json_each(?)) AND refund_seq = ${seqOfId}`

const sql = {
  byId: `SELECT ${selected} FROM refunds WHERE id = ?`,
  eventsOf: `SELECT ${Rows.eventColumns} FROM refund_events WHERE refund_seq = ${seqOfId} ORDER BY sequence`,
  // One statement for any number of ids: the ids travel as one JSON array.
  eventsOfMany:
    `SELECT ${Rows.eventColumns} FROM refund_events
      WHERE refund_seq IN (SELECT seq FROM refunds WHERE id IN (SELECT value FROM json_each(?))) ORDER BY refund_seq, sequence`,
  stampById: `SELECT id, version, ${lastEvent} FROM refunds WHERE id = ?`,
  stampByKey: `SELECT id, version, ${lastEvent} FROM refunds WHERE provider = ? AND idempotency_key = ?`,
  stampByReference: `SELECT id, version, ${lastEvent} FROM refunds WHERE provider = ? AND provider_reference = ? ORDER BY seq LIMIT 1`,
  insert: `INSERT INTO refunds (${Rows.insertColumns}) VALUES (${Array.from({ length: 17 }, () => "?").join(", ")})
    ON CONFLICT (provider, idempotency_key) DO NOTHING`,
  reserved: `SELECT t.refund_id, t.amount_minor, t.currency, r.status FROM refund_targets t JOIN refunds r ON r.seq = t.refund_seq
    WHERE t.provider = ? AND t.target = ? AND (r.status <> 'failed' OR r.holds_target = 1) AND t.released = 0 ORDER BY t.refund_seq`,
  releaseTargets: releaseTargetsText,
  // A claim knows the seq it just inserted (the rowid); later events look it up by id.
  reserve: `INSERT INTO refund_targets (refund_seq, refund_id, provider, target, amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?)`,
  insertClaimEvent: `INSERT INTO refund_events (refund_seq, ${Rows.eventColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  insertEvent: `INSERT INTO refund_events (refund_seq, ${Rows.eventColumns}) VALUES (${seqOfId}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  update: `UPDATE refunds SET ${Rows.updateAssignments}, version = version + 1 WHERE id = ?`,
  // A refused change adds only an event; the bump still tells other processes' caches.
  bump: "UPDATE refunds SET version = version + 1 WHERE id = ?",
  toRecover: "SELECT id FROM refunds WHERE status = 'requested' AND updated_at < ? AND (alive_until IS NULL OR alive_until <= ?) ORDER BY seq",
  // Every process but this one that claimed a refund still `requested`: recovery asks which have ended (claimants.ts).
  claimants: "SELECT id, claimed_by FROM refunds WHERE status = 'requested' AND claimed_by IS NOT NULL AND claimed_by <> ? ORDER BY seq",
  claimantsOf: "SELECT id, claimed_by FROM refunds WHERE id IN (SELECT value FROM json_each(?)) AND status = 'requested' AND claimed_by IS NOT NULL",
  // A lease holds while now is before its end, as a sync lease does.
  leasedNow: "SELECT id FROM refunds WHERE id IN (SELECT value FROM json_each(?)) AND status = 'requested' AND alive_until > ?",
  keepAlive: "UPDATE refunds SET alive_until = ? WHERE id IN (SELECT value FROM json_each(?)) AND status = 'requested'",
  lease: "UPDATE refunds SET sync_lease_until = ?, sync_lease_owner = ? WHERE id IN (SELECT value FROM json_each(?))",
  leased: `SELECT ${selected} FROM refunds WHERE id IN (SELECT value FROM json_each(?)) ORDER BY updated_at, seq`,
  release: `UPDATE refunds SET sync_lease_until = NULL, sync_lease_owner = NULL
    WHERE id IN (SELECT value FROM json_each(?)) AND sync_lease_owner = ?`
} as const

const syncWhere = (providers: ReadonlyArray<string> | undefined) =>
  `${syncDue}${providers === undefined ? "" : " AND provider IN (SELECT value FROM json_each(?))"}`

/**
 * The refunds of one provider a sync lease may take, in lease order; parameters: the provider,
 * the lease's `at`, the limit. Named to the index, which SQLite passes over for the status index
 * when it has no statistics, and then sorts every due refund per lease. A lease of several
 * providers runs one per provider (`firstInLeaseOrder`), one of any provider one per provider
 * with refunds due (`providersDueText`): a walk of one index for `provider IN (...)` passed over
 * every refund due of the others.
 *
 * @internal
 */
export const leaseCandidatesText = `SELECT id, sync_lease_until, updated_at, seq FROM refunds INDEXED BY refunds_sync_due_by_provider
    WHERE ${syncDue} AND provider = ? AND (sync_lease_until IS NULL OR sync_lease_until <= ?) ${leaseOrder} LIMIT ?`

/**
 * A page of `list`, newest first: the statement and its parameters. One row more than asked
 * says whether there is a next page. By status and provider it walks `refunds_status_provider_seq`
 * (migration 10) from the cursor and stops at the page's end; by status alone, given the
 * providers with refunds of that status (`providersWithStatusText`, in queries.ts), it takes one such walk per
 * provider and keeps the newest. A list with a creation bound is `listByCreationStatement`'s.
 *
 * @internal
 */
export const listStatement = (
  query: ListQuery,
  before: bigint | undefined,
  limit: number,
  providers?: ReadonlyArray<string>
): { readonly text: string; readonly params: ReadonlyArray<unknown> } => {
  if (byStatusAlone(query) && providers !== undefined && providers.length > 0) {
    const branches = providers.map((provider, i) => {
      const one = listStatement({ ...query, provider }, before, limit)
      return { text: `SELECT * FROM (${one.text}) b${i}`, params: one.params }
    })
    return { text: `${branches.map((b) => b.text).join(" UNION ALL ")} ORDER BY seq DESC LIMIT ?`, params: [...branches.flatMap((b) => b.params), limit + 1] }
  }
  const where: Array<string> = []
  const params: Array<unknown> = []
  const filter = (clause: string, value: unknown) => {
    if (value === undefined) return
    where.push(clause)
    params.push(value)
  }
  // By target the page walks the target's rows of `refund_targets` (keyed provider, target,
  // refund_seq) from the cursor, and looks each refund up by its seq.
  const byTarget = query.target === undefined
    ? undefined
    : {
      from: `, (SELECT refund_seq FROM refund_targets WHERE provider = ? AND target = ?${before === undefined ? "" : " AND refund_seq < ?"}) t`,
      params: before === undefined ? [query.provider ?? "", query.target] : [query.provider ?? "", query.target, before]
    }
  if (byTarget === undefined) filter("seq < ?", before)
  else where.push("refunds.seq = t.refund_seq")
  filter("provider = ?", query.provider)
  filter("status = ?", query.status)
  const text = `SELECT ${selected} FROM refunds${byTarget?.from ?? ""}${where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`} ORDER BY ${byTarget === undefined ? "seq" : "t.refund_seq"} DESC LIMIT ?`
  return { text, params: [...(byTarget?.params ?? []), ...params, limit + 1] }
}

/**
 * A page of a list by creation time, newest first by (created_at, seq): the statement and its
 * parameters, as `listByCreationPage` (queries.ts) writes it on `@effect/sql`. It walks
 * `refunds_created_seq` (migration 11) from the cursor, named to it, or by target reads that
 * target's refunds and sorts them.
 *
 * @internal
 */
export const listByCreationStatement = (
  query: ListQuery,
  after: CreatedAfter | undefined,
  limit: number
): { readonly text: string; readonly params: ReadonlyArray<unknown> } => {
  const where: Array<string> = query.target === undefined ? [] : ["refunds.seq = t.refund_seq"]
  const params: Array<unknown> = query.target === undefined ? [] : [query.provider ?? "", query.target]
  for (const c of createdConditions(query, after)) {
    if (c._tag === "Bound") {
      where.push(`created_at ${c.op} ?`)
      params.push(c.value)
    } else {
      where.push("(created_at < ? OR seq < ?)")
      params.push(c.after.createdAt, c.after.seq)
    }
  }
  if (query.provider !== undefined) {
    where.push("provider = ?")
    params.push(query.provider)
  }
  if (query.status !== undefined) {
    where.push("status = ?")
    params.push(query.status)
  }
  const from = query.target === undefined
    ? " INDEXED BY refunds_created_seq"
    : ", (SELECT refund_seq FROM refund_targets WHERE provider = ? AND target = ?) t"
  return {
    text: `SELECT ${selected} FROM refunds${from}${where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`} ORDER BY created_at DESC, seq DESC LIMIT ?`,
    params: [...params, limit + 1]
  }
}

/**
 * `countByStatus` for `statuses` statuses (their parameters), read through `refunds_status_provider_seq`.
 *
 * @internal
 */
export const countStatement = (statuses: number): string =>
  `SELECT provider, status, count(*) AS n FROM refunds WHERE status IN (${Array.from({ length: statuses }, () => "?").join(", ")}) GROUP BY provider, status`

/** The version a row says it is at; one that is not an integer matches no cached entry. */
const versionOf = (row: Row): number => (typeof row.version === "number" && Number.isSafeInteger(row.version) ? row.version : Number.NaN)

const lastSequenceOf = (row: Row): number =>
  row.last_sequence === null ? 0 : typeof row.last_sequence === "number" ? row.last_sequence : Number.NaN

/** @internal */
export const make = (
  db: BetterSqlite3.Database,
  client: SqlClient.SqlClient,
  options: Options
): Effect.Effect<SqlLedger.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const cache = RefundCache.make(options.cacheSize ?? 10_000)
    const writer = yield* Writer.make(db, cache, {
      maxBatch: options.maxBatch ?? 256,
      walSync: options.walSync,
      onCommit: options.checkpointer?.committed,
      commitDelayMillis: options.commitDelayMillis
    })

    // Prepared once per text. A statement that fails to prepare (no such table before
    // migrating) is not kept, so it is tried again after a migration.
    const statements = new Map<string, BetterSqlite3.Statement>()
    const prepare = (text: string): BetterSqlite3.Statement => {
      let statement = statements.get(text)
      if (statement === undefined) {
        statement = db.prepare(text)
        statements.set(text, statement)
      }
      return statement
    }

    /** A refund row and its events, decoded, as an entry for the cache. */
    const toEntries = (rows: ReadonlyArray<Row>, eventRows: ReadonlyArray<unknown>): Either.Either<Array<RefundCache.Entry>, LedgerError> => {
      const events = new Map<string, Array<RefundEvent>>()
      for (const raw of eventRows) {
        const event = Rows.decodeEventRowEither(raw)
        if (Either.isLeft(event)) return Either.left(event.left)
        const list = events.get(event.right.refund_id)
        if (list === undefined) events.set(event.right.refund_id, [Rows.toEvent(event.right)])
        else list.push(Rows.toEvent(event.right))
      }
      const entries: Array<RefundCache.Entry> = []
      for (const raw of rows) {
        const row = Rows.decodeRefundRowEither(raw)
        if (Either.isLeft(row)) return Either.left(row.left)
        const refund = Rows.toRefund(row.right, events.get(row.right.id) ?? [])
        entries.push({ refund, version: versionOf(raw), lastSequence: RefundCache.lastSequence(refund) })
      }
      return Either.right(entries)
    }

    const seqOf = (raw: Row): bigint => {
      const seq = raw.seq
      return typeof seq === "bigint" ? seq : BigInt(typeof seq === "number" ? seq : 0)
    }

    /** Reads and decodes refund rows with their events; the caller provides the snapshot. */
    const hydrate = (rows: ReadonlyArray<Row>) =>
      rows.length === 0
        ? Either.right([])
        : toEntries(rows, prepare(sql.eventsOfMany).all(JSON.stringify(rows.map((r) => r.id))))

    const load = (id: string): Either.Either<RefundCache.Entry | undefined, LedgerError> => {
      const raw = prepare(sql.byId).get(id) as Row | undefined
      if (raw === undefined) return Either.right(undefined)
      return Either.map(toEntries([raw], prepare(sql.eventsOf).all(id)), (entries) => entries[0])
    }

    /**
     * The refund a stamp row (id, version, last event) names: the cached one when it is
     * exactly what the database holds, otherwise read and decoded again.
     */
    const fresh = (
      stamp: Row,
      lookup: (id: string) => RefundCache.Entry | undefined,
      reload: (id: string) => Either.Either<RefundCache.Entry | undefined, LedgerError>
    ): Either.Either<RefundCache.Entry | undefined, LedgerError> => {
      const id = String(stamp.id)
      const entry = lookup(id)
      if (entry !== undefined && entry.version === versionOf(stamp) && entry.lastSequence === lastSequenceOf(stamp)) {
        return Either.right(entry)
      }
      return reload(id)
    }

    // --- reads: one snapshot each, outside the writer (which never leaves a transaction open)

    const beginRead = db.prepare("BEGIN")
    const commitRead = db.prepare("COMMIT")
    const rollbackRead = db.prepare("ROLLBACK")
    const snapshot = <A>(f: () => A): A => {
      beginRead.run()
      try {
        const result = f()
        commitRead.run()
        return result
      } catch (cause) {
        if (db.inTransaction) rollbackRead.run()
        throw cause
      }
    }

    const remember = (entries: ReadonlyArray<RefundCache.Entry>) => {
      for (const entry of entries) cache.set(entry)
    }

    const loadAndRemember = (id: string) =>
      snapshot(() => {
        const loaded = load(id)
        if (Either.isRight(loaded) && loaded.right !== undefined) cache.set(loaded.right)
        return loaded
      })

    const read = <A, E>(what: string, f: () => Either.Either<A, E>): Effect.Effect<A, E | LedgerError> =>
      retryBusy(what, options.busyTimeoutMillis)(Effect.suspend((): Effect.Effect<A, E | Busy | LedgerError> => {
        const stopped = writer.refusal(what)
        if (stopped !== undefined) return Effect.fail(stopped)
        let result: Either.Either<A, E>
        try {
          result = f()
        } catch (cause) {
          return Effect.fail(failure(what, cause))
        }
        // A read sees this process's commits as soon as they are made; it reports them only
        // once they are durable, as a write would (a webhook found to be a duplicate must not
        // be acknowledged on the strength of an event a power cut could still take back).
        const durable = writer.durable(what)
        return durable === Effect.void ? result : Effect.zipLeft(result, durable)
      }))

    // A busy write is tried again as `retryBusy` would, from the writer as it settles the write.
    const write = <A, E>(what: string, body: (scratch: Writer.Scratch) => Writer.Outcome<A, E>): Effect.Effect<A, Exclude<E, Busy> | LedgerError> =>
      writer.write(what, body, (first) => busyAgain(what, options.busyTimeoutMillis)(writer.write(what, body), first)) as Effect.Effect<
        A,
        Exclude<E, Busy> | LedgerError
      >

    /** Inside a write: the refund as this transaction sees it. */
    const current = (scratch: Writer.Scratch, stamp: Row | undefined) => {
      if (stamp === undefined) return Either.right(undefined)
      return fresh(stamp, scratch.lookup, (id) => {
        const loaded = load(id)
        if (Either.isRight(loaded) && loaded.right !== undefined) scratch.remember(loaded.right)
        return loaded
      })
    }

    const findOne = (what: string, stampQuery: string, params: ReadonlyArray<unknown>) =>
      read(what, () => {
        const stamp = prepare(stampQuery).get(...params) as Row | undefined
        if (stamp === undefined) return Either.right(Option.none<Refund>())
        return Either.map(fresh(stamp, cache.get, loadAndRemember), (entry) => Option.map(Option.fromNullable(entry), (e) => e.refund))
      })

    /** `seq`: the refund's, where the caller has it; otherwise it is looked up by id. */
    const insertEvents = (refundId: string, events: ReadonlyArray<RefundEvent>, seq?: number | bigint) => {
      if (events.length === 0) return
      const statement = prepare(seq === undefined ? sql.insertEvent : sql.insertClaimEvent)
      for (const event of events) statement.run(seq ?? refundId, ...Rows.eventValues(refundId, event))
    }

    const claim = (refund: Refund): Effect.Effect<Claim, GuardError | LedgerError> =>
      write<Claim, GuardError | LedgerError>("claiming an idempotency key", (scratch) => {
        const inserted = prepare(sql.insert).run(...Rows.insertValues(refund))
        if (inserted.changes === 0) {
          const stamp = prepare(sql.stampByKey).get(refund.provider, refund.idempotencyKey) as Row | undefined
          const existing = current(scratch, stamp)
          if (Either.isLeft(existing)) return Writer.undone(existing.left)
          if (existing.right === undefined) {
            return Writer.undone(new LedgerError({ detail: `the idempotency key of ${refund.id} conflicted but no refund holds it` }))
          }
          return Writer.done<Claim>({ _tag: "Existing", refund: existing.right.refund })
        }
        for (const guard of targetGuards(refund)) {
          const reserved = Rows.decodeReservedEither(prepare(sql.reserved).all(refund.provider, guard.target))
          if (Either.isLeft(reserved)) return Writer.undone(reserved.left)
          const refused = refusalOf(guard, reserved.right)
          if (refused !== undefined) return Writer.undone(refused)
        }
        // `seq` is the table's INTEGER PRIMARY KEY, so the rowid the insert reports is the refund's seq.
        const seq = inserted.lastInsertRowid
        for (const row of Rows.targetRows(refund)) {
          prepare(sql.reserve).run(seq, row.refund_id, row.provider, row.target, row.amount_minor, row.currency)
        }
        insertEvents(refund.id, refund.events, seq)
        scratch.remember({ refund, version: 1, lastSequence: RefundCache.lastSequence(refund) })
        return Writer.done<Claim>({ _tag: "Claimed", refund })
      })

    /**
     * Writes an accepted change, or records the refusal (an event, and a version bump
     * so no cache trusts the old history); both are kept when the batch commits.
     */
    const persistChange = (scratch: Writer.Scratch, entry: RefundCache.Entry, change: Change) => {
      const refund = entry.refund
      const result = applyChange(refund, change)
      const next = Either.isRight(result) ? result.right : result.left.refused
      if (Either.isRight(result)) {
        prepare(sql.update).run(...Rows.updateValues(next), refund.id)
        const release = Rows.releaseOf(refund, next)
        if (release !== undefined) {
          prepare(sql.releaseTargets).run(JSON.stringify(release.released), release.provider, JSON.stringify(release.targets), refund.id)
        }
      } else prepare(sql.bump).run(refund.id)
      insertEvents(refund.id, next.events.slice(refund.events.length))
      scratch.remember({ refund: next, version: entry.version + 1, lastSequence: RefundCache.lastSequence(next) })
      return result
    }

    const transition = (id: string, change: Change): Effect.Effect<Refund, IllegalTransition | DuplicateCallback | RefundNotFound | LedgerError> =>
      write<Refund, IllegalTransition | DuplicateCallback | RefundNotFound | LedgerError>("recording a status change", (scratch) => {
        const found = current(scratch, prepare(sql.stampById).get(id) as Row | undefined)
        if (Either.isLeft(found)) return Writer.undone(found.left)
        if (found.right === undefined) return Writer.undone(new RefundNotFound({ refundId: id }))
        // Under the write lock: a repeat of a callback this refund records writes nothing, and is reported once
        // the batch that found it is durable, as the event it found is by then.
        const repeated = repeatedCallback(found.right.refund, change)
        if (repeated !== undefined) return Writer.undone(repeated)
        const result = persistChange(scratch, found.right, change)
        // The refused event is committed before the refusal is reported.
        return Either.isRight(result) ? Writer.done(result.right) : Writer.kept(result.left.error)
      })

    // Under the write lock, which every claim takes too: the reservations read here are those a claim of
    // the refund would read now (core's `reclaim`). A refusal writes nothing.
    const reclaim = (id: string, change: Change): Effect.Effect<Refund, GuardError | IllegalTransition | RefundNotFound | LedgerError> =>
      write<Refund, GuardError | IllegalTransition | RefundNotFound | LedgerError>("recording a status change", (scratch) => {
        const found = current(scratch, prepare(sql.stampById).get(id) as Row | undefined)
        if (Either.isLeft(found)) return Writer.undone(found.left)
        if (found.right === undefined) return Writer.undone(new RefundNotFound({ refundId: id }))
        const before = found.right.refund
        const applied = applyChange(before, change)
        if (Either.isRight(applied) && !holdsTargets(before) && holdsTargets(applied.right)) {
          let unreadable: LedgerError | undefined
          const refused = reclaimRefusal(before, applied.right, (target) => {
            const reserved = Rows.decodeReservedEither(prepare(sql.reserved).all(before.provider, target))
            if (Either.isRight(reserved)) return reserved.right
            unreadable = reserved.left
            return []
          })
          if (unreadable !== undefined) return Writer.undone(unreadable)
          if (refused !== undefined) return Writer.undone(refused)
        }
        const result = persistChange(scratch, found.right, change)
        return Either.isRight(result) ? Writer.done(result.right) : Writer.kept(result.left.error)
      })

    const get = (id: string): Effect.Effect<Refund, RefundNotFound | LedgerError> =>
      Effect.flatMap(
        findOne("reading a refund", sql.stampById, [id]),
        Option.match({ onNone: () => Effect.fail(new RefundNotFound({ refundId: id })), onSome: Effect.succeed })
      )

    const list = (query: ListQuery): Effect.Effect<Page, LedgerError | InvalidRequest> => {
      const byTime = byCreation(query)
      const before = query.cursor === undefined || byTime ? undefined : decodeCursor(query.cursor)
      const after = query.cursor === undefined || !byTime ? undefined : decodeCreatedCursor(query.cursor)
      const limit = Math.floor(query.limit)
      if (query.cursor !== undefined && before === undefined && after === undefined) return Effect.fail(invalidCursor)
      if (query.target !== undefined && query.provider === undefined) return Effect.fail(targetWithoutProvider)
      const badRange = createdRangeRefusal(query)
      if (badRange !== undefined) return Effect.fail(badRange)
      if (!(limit > 0)) return Effect.succeed({ items: [] })
      return read("listing refunds", () =>
        snapshot(() => {
          const providers = byStatusAlone(query) && !byTime
            ? (prepare(providersWithStatusText).all(query.status, query.status) as ReadonlyArray<Row>).map((r) => String(r.provider))
            : undefined
          const { params, text } = byTime ? listByCreationStatement(query, after, limit) : listStatement(query, before, limit, providers)
          const rows = prepare(text).all(...params) as ReadonlyArray<Row>
          return Either.map(hydrate(rows), (entries) => {
            remember(entries)
            const page = entries.slice(0, limit).map((e) => e.refund)
            const last = rows[page.length - 1]
            const lastRefund = page.at(-1)
            if (rows.length <= limit || last === undefined || lastRefund === undefined) return { items: page }
            return { items: page, nextCursor: byTime ? encodeCreatedCursor({ seq: seqOf(last), createdAt: lastRefund.createdAt }) : encodeCursor(seqOf(last)) }
          })
        }))
    }

    const needingSync = (query: { readonly providers?: ReadonlyArray<string> | undefined; readonly limit: number }) =>
      read("listing refunds to sync", () =>
        snapshot(() => {
          const text = `SELECT ${selected} FROM refunds WHERE ${syncWhere(query.providers)} ORDER BY updated_at, seq LIMIT ?`
          const params = query.providers === undefined ? [] : [JSON.stringify(query.providers)]
          const rows = prepare(text).all(...params, Math.max(0, Math.floor(query.limit))) as ReadonlyArray<Row>
          return Either.map(hydrate(rows), (entries) => {
            remember(entries)
            return entries.map((e) => e.refund)
          })
        }))

    // A file in WAL mode is only ever opened on one machine (WAL needs that machine's shared memory), so there a
    // claimant of another boot has ended; one in another mode (WAL refused: a network file system) may be shared.
    const reach: Claimants.Reach = db.pragma("journal_mode", { simple: true }) === "wal" ? "machine" : "anywhere"
    const endedOf = (rows: ReadonlyArray<unknown>) => Rows.orphanedIds(rows, reach)

    const orphaned = (ids: ReadonlyArray<string>) =>
      ids.length === 0 ? Effect.succeed([]) : read("reading who claimed refunds in flight", () =>
        Either.right(endedOf(prepare(sql.claimantsOf).all(JSON.stringify(ids)))))

    const recover = (options: { readonly olderThan: string; readonly at: string }) =>
      Effect.gen(function*() {
        const { ids, ended } = yield* read("finding refunds to recover", () => {
          const late = (prepare(sql.toRecover).all(options.olderThan, options.at) as ReadonlyArray<Row>).map((r) => String(r.id))
          const gone = new Set(endedOf(prepare(sql.claimants).all(Claimants.self() ?? "")))
          return Either.right({ ids: [...new Set([...late, ...gone])], ended: gone })
        })
        // Each refund is re-read under the write lock: a live process may have moved it on since.
        // Issued together, they share group commits.
        const moved = yield* Effect.forEach(ids, (id) =>
          write<Either.Either<Option.Option<Refund>, LedgerError>, never>("recovering a refund", (scratch) => {
            const found = current(scratch, prepare(sql.stampById).get(id) as Row | undefined)
            // A row that does not decode is left as it is (nothing can be decided from it), but
            // it must not stop the recovery of the others, nor the start of the process.
            if (Either.isLeft(found)) return Writer.done(Either.left(found.left))
            const entry = found.right
            // Leased since it was found: its process is alive, and its call's answer will settle it.
            // A claimant that has ended answers nothing, whatever its refund's age or last lease.
            if (
              entry === undefined || entry.refund.status !== "requested" ||
              (!ended.has(id) && (entry.refund.updatedAt >= options.olderThan || prepare(sql.leasedNow).get(JSON.stringify([id]), options.at) !== undefined))
            ) {
              return Writer.done(Either.right(Option.none<Refund>()))
            }
            return Writer.done(
              Either.right(Either.getRight(persistChange(scratch, entry, recoveryOf(entry.refund, options.at))))
            )
          }), { concurrency: 64 })
        for (const result of moved) if (Either.isLeft(result)) yield* recoverySkipped(result.left)
        return moved.flatMap((r) => (Either.isRight(r) && Option.isSome(r.right) ? [r.right.value] : []))
      })

    const keepAlive = (options: { readonly ids: ReadonlyArray<string>; readonly at: string; readonly forMillis: number }) =>
      options.ids.length === 0 ? Effect.void : write("leasing the refunds in flight", () => {
        prepare(sql.keepAlive).run(new Date(Date.parse(options.at) + options.forMillis).toISOString(), JSON.stringify(options.ids))
        return Writer.done(undefined)
      })

    const leased = (options: { readonly ids: ReadonlyArray<string>; readonly at: string }) =>
      options.ids.length === 0 ? Effect.succeed([]) : read("reading the leases of refunds in flight", () =>
        Either.right((prepare(sql.leasedNow).all(JSON.stringify(options.ids), options.at) as ReadonlyArray<Row>).map((r) => String(r.id))))

    const claimForSync = (lease: SyncLease) =>
      write("leasing refunds to sync", (scratch) => {
        // Least recently leased first, as SqlLedger's claimForSync (see there).
        const limit = Math.max(0, Math.floor(lease.limit))
        const providers = lease.providers ?? (prepare(providersDueText("sqlite")).all() as ReadonlyArray<Row>).map((r) => String(r.provider))
        const candidates = [...new Set(providers)].flatMap((provider) =>
          prepare(leaseCandidatesText).all(provider, lease.at, limit) as ReadonlyArray<Row & LeaseCandidate>
        )
        const picked = firstInLeaseOrder(candidates, limit)
        if (picked.length === 0) return Writer.done({ leased: [], damaged: [] })
        const ids = JSON.stringify(picked.map((r) => r.id))
        // Leases are not part of a refund: the rows' versions, and the cache, stay valid.
        prepare(sql.lease).run(lease.until, lease.owner, ids)
        const rows = prepare(sql.leased).all(ids) as ReadonlyArray<Row>
        const eventRows = prepare(sql.eventsOfMany).all(ids) as ReadonlyArray<Row>
        const leased: Array<Refund> = []
        const damaged: Array<LedgerError> = []
        // Each refund is decoded on its own: a damaged one keeps its lease (so the next call
        // passes it by) and is named, and the others are still handed out to be synced.
        for (const row of rows) {
          const entry = toEntries([row], eventRows.filter((e) => e.refund_id === row.id))
          if (Either.isLeft(entry)) {
            damaged.push(entry.left)
            continue
          }
          for (const e of entry.right) {
            scratch.remember(e)
            leased.push(e.refund)
          }
        }
        return Writer.done({ leased, damaged })
      }).pipe(
        Effect.tap(({ damaged }) => Effect.forEach(damaged, syncSkipped, { discard: true })),
        Effect.map(({ leased }): ReadonlyArray<Refund> => leased)
      )

    const releaseSync = (options: { readonly owner: string; readonly ids: ReadonlyArray<string> }) =>
      options.ids.length === 0 ? Effect.void : write("releasing sync leases", () => {
        prepare(sql.release).run(JSON.stringify(options.ids), options.owner)
        return Writer.done(undefined)
      })

    const countByStatus = (statuses: ReadonlyArray<RefundStatus>) =>
      statuses.length === 0 ? Effect.succeed([]) : read("counting refunds by status", () =>
        Rows.decodeCountsEither(
          prepare(countStatement(statuses.length)).all(...statuses)
        ))

    // A refund's turn: lease rows, each a short write of its own (internal/turns.ts says why not a lock).
    const serialise = Turns.make({
      holder: (id) => read("reading a refund's turn", () => Turns.decodeHolder(prepare(Turns.statements.holder).get(id))),
      take: (id, owner, now, until) =>
        write("taking a refund's turn", () => {
          if (prepare(Turns.statements.take).run(id, owner, until, now).changes > 0) return Writer.done(Option.none<Turns.Holder>())
          const held = Turns.decodeHolder(prepare(Turns.statements.holder).get(id))
          return Either.isLeft(held) ? Writer.undone(held.left) : Writer.done(held.right)
        }),
      renew: (id, owner, until) =>
        write("renewing a refund's turn", () => Writer.done(prepare(Turns.statements.renew).run(until, id, owner).changes > 0)),
      release: (id, owner) =>
        write("releasing a refund's turn", () => {
          prepare(Turns.statements.release).run(id, owner)
          return Writer.done(undefined)
        })
    }, options.turns ?? Turns.defaults)

    const ready = Effect.suspend(() => {
      // A ledger that stopped after a failed fsync is not ready: the process must restart.
      const stopped = writer.refusal("checking the ledger")
      return stopped !== undefined ? Effect.fail(stopped) : Migrations.check
    }).pipe(
      Effect.provideService(SqlClient.SqlClient, client),
      Effect.catchAllDefect((defect) => Effect.fail(ledgerError(`checking the ledger: ${defect instanceof Error ? defect.message : String(defect)}`)))
    )

    return {
      dialect: "sqlite",
      ready,
      claim,
      get,
      findByKey: (provider: string, key: string) => findOne("reading a refund by idempotency key", sql.stampByKey, [provider, key]),
      findByReference: (provider: string, reference: string) =>
        findOne("reading a refund by provider reference", sql.stampByReference, [provider, reference]),
      holderOf: (provider: string, target: string) =>
        read("reading the refunds against a target", () =>
          Either.map(Rows.decodeReservedEither(prepare(sql.reserved).all(provider, target)), (held) => Option.fromNullable(held[0]))),
      transition,
      reclaim,
      serialise,
      list,
      needingSync,
      recover,
      keepAlive,
      leased,
      orphaned,
      claimForSync,
      releaseSync,
      countByStatus
    } satisfies SqlLedger.Service
  })

/** @internal */
export interface OpenOptions {
  readonly busyTimeoutMillis?: number | undefined
  readonly migrate?: boolean | undefined
  /** The fsync of the WAL after commits (default `fs.fsync`): tests hold or fail it. */
  readonly fsync?: WalSync.Fsync | undefined
  /**
   * The fsync of a commit made alone, on the event loop (default `fs.fsyncSync`); `null`
   * sends every fsync through `fsync`.
   */
  readonly fsyncSync?: WalSync.FsyncSync | null | undefined
  /** Checkpoint the WAL from a worker thread (default `true`); `false` leaves it to SQLite's automatic checkpoint. */
  readonly checkpointInWorker?: boolean | undefined
  /** How long a batch's first write waits for others to share its COMMIT (default 0). */
  readonly commitDelayMillis?: number | undefined
  /** A refund's turn: its lease and how long a caller waits for it (`Turns.defaults`). */
  readonly turns?: Turns.Options | undefined
}

/**
 * Creates a directory and its missing parents one level at a time. Node's own
 * `mkdirSync(dir, { recursive: true })` loops forever where `mkdir` answers ENOENT for
 * a parent that exists (under /proc, for instance); one level at a time fails instead.
 */
const makeDirectory = (directory: string): void => {
  const missing: Array<string> = []
  for (let current = directory; !NodeFs.existsSync(current); current = NodePath.dirname(current)) {
    missing.unshift(current)
    if (NodePath.dirname(current) === current) break
  }
  for (const dir of missing) NodeFs.mkdirSync(dir)
}

const ensureDirectory = (filename: string) =>
  filename === ":memory:" || filename === "" || filename.startsWith("file:")
    ? Effect.void
    : Effect.try({
      try: () => makeDirectory(NodePath.dirname(NodePath.resolve(filename))),
      catch: (cause) => ledgerError(`cannot create the directory of the SQLite ledger ${filename}: ${cause instanceof Error ? cause.message : String(cause)}`)
    })

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const writable = (path: string): string | undefined => {
  try {
    NodeFs.accessSync(path, NodeFs.constants.R_OK | NodeFs.constants.W_OK)
    return undefined
  } catch (cause) {
    return (cause as NodeJS.ErrnoException).code ?? messageOf(cause)
  }
}

/**
 * Refuses a ledger this process cannot write before SQLite opens it. SQLite opens a
 * read-only file read-only without a word, and a migrated ledger then read, created its
 * `-wal` and `-shm` with the file's read-only mode and failed on the WAL (or on the first
 * write), naming neither the file nor the reason; the `-shm` left behind kept the ledger
 * failing ("attempt to write a readonly database") after the file was made writable. A
 * directory SQLite cannot create them in fails the same way.
 */
const ensureWritable = (filename: string) =>
  Effect.suspend(() => {
    if (filename === ":memory:" || filename === "" || filename.startsWith("file:")) return Effect.void
    const file = NodePath.resolve(filename)
    const refuse = (what: string, code: string, advice: string) =>
      Effect.fail(ledgerError(`the SQLite ledger ${filename} cannot be written: ${what} is not writable by this process (${code}); ${advice}`))
    const companions = [`${file}-wal`, `${file}-shm`]
    for (const path of [file, ...companions]) {
      const code = NodeFs.existsSync(path) ? writable(path) : undefined
      if (code !== undefined) return refuse(path, code, "refundkit records every refund in it: make it writable by this user, or use another ledger")
    }
    const directory = NodePath.dirname(file)
    const code = companions.every((path) => NodeFs.existsSync(path)) ? undefined : writable(directory)
    return code === undefined ? Effect.void : refuse(
      `its directory ${directory}`,
      code,
      `SQLite keeps the ledger's write-ahead log beside it (${NodePath.basename(file)}-wal and -shm): make the directory writable by this user, or use another ledger`
    )
  })

/**
 * The `-wal` file of the connection's main database, as SQLite resolved its name (a
 * relative path, a URI). SQLite creates the file when the connection first reads the
 * database in WAL mode (switching to WAL writes the database header, not the WAL), so
 * one read makes sure it exists before we open it.
 */
const walFileOf = (db: BetterSqlite3.Database): string => {
  const main = (db.pragma("database_list") as ReadonlyArray<{ readonly name: string; readonly file: string }>).find((d) => d.name === "main")
  if (main === undefined || main.file === "") throw new Error("the database has no file, yet runs in WAL mode")
  db.prepare("SELECT COUNT(*) FROM sqlite_master").get()
  return `${main.file}-wal`
}

/** The ledger's connection, ready for `make`. @internal */
export interface Connection {
  readonly db: BetterSqlite3.Database
  readonly client: SqlClient.SqlClient
  readonly busyTimeoutMillis: number
  /** Present when the connection runs at `synchronous = NORMAL` and commits must wait for it. */
  readonly walSync: WalSync.WalSync | undefined
  /** Present when a worker thread checkpoints the WAL (a file in WAL mode). */
  readonly checkpointer: Checkpointer.Checkpointer | undefined
}

/**
 * Opens the SQLite ledger's connection: WAL mode, foreign keys, migrations, then the
 * durability of commits.
 *
 * A claim reported as written must survive a power cut, or a retried request could
 * refund twice at a provider without idempotency. In WAL mode the connection runs at
 * `synchronous = NORMAL` and the writer fsyncs the WAL (on the thread pool, or at once
 * for a lone commit) before reporting a commit (`WalSync` says why that is as durable
 * as FULL). Until that fsync is in place (the migrations, which report themselves
 * applied) and whenever the database is not in WAL mode (`:memory:`, a temporary
 * database), it stays at FULL.
 * Nothing else writes outside the writer: reads and the readiness check only read, a
 * worker thread checkpoints the WAL (`Checkpointer`), and closing the connection
 * checkpoints with syncs of its own.
 *
 * @internal
 */
export const connect = (filename: string, options: OpenOptions): Effect.Effect<Connection, LedgerError, Scope.Scope> =>
  Effect.gen(function*() {
    const cannotOpen = (cause: unknown) => ledgerError(`cannot open the SQLite ledger ${filename}: ${messageOf(cause)}`)
    yield* ensureDirectory(filename)
    yield* ensureWritable(filename)
    const busy = Math.max(0, Math.floor(options.busyTimeoutMillis ?? 5000))
    const db = yield* Effect.acquireRelease(
      Effect.try({ try: () => new BetterSqlite3(filename, { timeout: busy }), catch: cannotOpen }),
      (db) => Effect.sync(() => db.close())
    )
    const journalMode = yield* Effect.try({
      try: () => {
        const mode: unknown = db.pragma("journal_mode = WAL", { simple: true })
        db.pragma("synchronous = FULL")
        db.pragma("foreign_keys = ON")
        // Each write of a group commit runs in its own SAVEPOINT, whose undo log (the
        // statement journal: a copy of every page the write touches) outgrows its 64 KiB
        // in memory in any batch of a few writes and then goes to a file in /var/tmp,
        // created, written page by page and deleted per batch: a third of the gateway's
        // pwrite calls under load. In memory it holds one write's pages at a time: SQLite
        // empties it as each savepoint is released.
        db.pragma("temp_store = MEMORY")
        return mode
      },
      catch: cannotOpen
    })
    const client = yield* SqliteConnection.make(db)
    if (options.migrate !== false) yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, client)
    const walFile = journalMode === "wal" ? yield* Effect.try({ try: () => walFileOf(db), catch: cannotOpen }) : undefined
    // From here on a busy database fails at once and the operation is retried on a
    // schedule: better-sqlite3 would otherwise sleep on the event loop's thread.
    yield* Effect.try({ try: () => db.pragma("busy_timeout = 0"), catch: cannotOpen })
    // Opened after the database, so closed before it; the writer (made in `make`, later)
    // is closed first of all, once its last fsync has completed.
    const fsyncSync = options.fsyncSync === null ? undefined : options.fsyncSync ?? NodeFs.fsyncSync
    const walSync = walFile === undefined ? undefined : yield* WalSync.open(walFile, options.fsync ?? NodeFs.fsync, fsyncSync)
    if (walSync !== undefined) yield* Effect.try({ try: () => db.pragma("synchronous = NORMAL"), catch: cannotOpen })
    const checkpointer = walFile === undefined || options.checkpointInWorker === false
      ? undefined
      : yield* Checkpointer.start(db, walFile.slice(0, -"-wal".length))
    return { db, client, busyTimeoutMillis: busy, walSync, checkpointer }
  })

/**
 * The SQLite ledger on its own connection, with that connection (see `connect`).
 *
 * @internal
 */
export const openConnected = (
  filename: string,
  options: OpenOptions
): Effect.Effect<{ readonly connection: Connection; readonly ledger: SqlLedger.Service }, LedgerError, Scope.Scope> =>
  Effect.flatMap(connect(filename, options), (connection) =>
    Effect.map(
      make(connection.db, connection.client, {
        busyTimeoutMillis: connection.busyTimeoutMillis,
        walSync: connection.walSync,
        checkpointer: connection.checkpointer,
        commitDelayMillis: options.commitDelayMillis,
        turns: options.turns
      }),
      (ledger) => ({ connection, ledger })
    ))

/**
 * The SQLite ledger on its own connection (see `connect`).
 *
 * @internal
 */
export const open = (filename: string, options: OpenOptions): Effect.Effect<SqlLedger.Service, LedgerError, Scope.Scope> =>
  Effect.map(openConnected(filename, options), (opened) => opened.ledger)
