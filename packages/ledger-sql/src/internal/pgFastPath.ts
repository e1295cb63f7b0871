/**
 * PostgreSQL's one-statement paths. Each statement is its own transaction (autocommit),
 * so it costs one round trip where the general path costs a BEGIN, a statement per
 * table and a COMMIT:
 *
 * - a claim without over-refund guards inserts the refund `ON CONFLICT DO NOTHING` and,
 *   in the same statement, its reservations and events, which select from the insert's
 *   `RETURNING` and so are written only when the refund was (data-modifying CTEs);
 * - a status change to a refund whose `version` this process knows updates the row only
 *   `WHERE version = $expected`, with its new events inserted from the update's
 *   `RETURNING`: when another writer got there first nothing is written and the caller
 *   takes the locked path;
 * - a read brings a refund's events along (`json_agg` in a subquery): one statement is
 *   one snapshot, so the refund and its events agree without a transaction.
 *
 * On the ledger's own pool, claims and version-checked changes that meet are sent as one
 * statement over all of them (`pgGroupCommit.ts`); a lone one goes as its own statement.
 *
 * A read that waited for a row lock must not take its events from a subquery: the
 * subquery sees the statement's snapshot, taken before the wait. Locked reads therefore
 * read the events in a second statement.
 *
 * The writes are named prepared statements on the ledger's own pool (`pgPool.ts`):
 * `pg` parses each once per connection and afterwards only binds and executes it, in
 * the same single round trip, because planning these CTEs cost PostgreSQL as much CPU
 * as running them. The values are always bound parameters. A connection that loses
 * its statements (a pooler between us and the server that hands out its server
 * connections per transaction and does not carry prepared statements across) fails
 * with "does not exist" or "already exists" before anything runs; the ledger then
 * sends its statements unnamed from there on, planned each time. On a `SqlClient` the
 * application made, which exposes no pool, they are unnamed from the start.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type { Reservation } from "@refundkit/core/Ledger"
import type { Refund } from "@refundkit/core/Refund"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import type * as Pg from "pg"
import * as PgDeadline from "./pgDeadline.js"
import * as PgGroupCommit from "./pgGroupCommit.js"
import * as Rows from "./rows.js"

/**
 * A refund's columns, its `version` and its events as a JSON array, for a `SELECT …
 * FROM refunds` that does not lock.
 *
 * @internal
 */
export const hydratedColumns = `${Rows.refundColumns}, version,
  (SELECT COALESCE(json_agg(e ORDER BY e.sequence), '[]') FROM refund_events e WHERE e.refund_seq = refunds.seq) AS events`

// A claim's conflict has no target: the id derives from the provider and the key, so a
// concurrent claim of the same key may collide on the primary key before the key's own
// index, and PostgreSQL raises on a conflict outside a named target. Either means "taken".

// The events of a write arrive as JSON and are inserted only for the rows the CTE
// `source` returned: no row, no events. `from` joins each row to its events' JSON.
const insertEventsFrom = (source: string, from: string) =>
  `INSERT INTO refund_events (refund_seq, ${Rows.eventColumns})
    SELECT ${source}.seq, ${source}.id, x.sequence, x.at, x.source, x.from_status, x.to_status, x.provider_status, x.accepted, x.detail, x.verdict, x.callback_key
    FROM ${from}
      AS x(sequence integer, at text, source text, from_status text, to_status text, provider_status text, accepted boolean, detail text, verdict text, callback_key text)`

const insertEvents = (source: string, parameter: string) => insertEventsFrom(source, `${source}, json_to_recordset(${parameter}::json)`)

/** A statement PostgreSQL parses and plans once per connection, under its name. */
interface Prepared {
  readonly name: string
  readonly text: string
}

// The name follows the text, so a ledger whose statement changed never executes another's.
const prepared = (key: string, text: string): Prepared => ({
  name: `refundkit_${key}_${createHash("sha256").update(text).digest("hex").slice(0, 12)}`,
  text
})

// A claim's CTEs: the refund `ON CONFLICT DO NOTHING`, and its reservations ($18) and events
// ($19) from that insert's `RETURNING`, so they are written only when the refund was.
const claimCtes = `WITH ins AS (
  INSERT INTO refunds (${Rows.insertColumns})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
  ON CONFLICT DO NOTHING
  RETURNING id, seq, version
), t AS (
  INSERT INTO refund_targets (refund_seq, refund_id, provider, target, amount_minor, currency)
    SELECT ins.seq, ins.id, x.provider, x.target, x.amount_minor, x.currency
    FROM ins, json_to_recordset($18) AS x(provider text, target text, amount_minor numeric, currency text)
), e AS (${insertEvents("ins", "$19")})`

const claimStatement = prepared("claim", `${claimCtes}
SELECT id, version FROM ins`)

// A guarded claim runs in a transaction that already holds its targets' locks
// (`lockTargetsText`), so this statement's snapshot, taken after they were granted, holds
// every claim against them that committed first. It inserts as `claimStatement` does and
// returns, beside the new row, the reservations other refunds hold on the targets: the
// CTEs all see that snapshot, so the rows this statement inserts are not among them. The
// caller rolls the transaction back when they refuse the claim.
/** @internal */
export const guardedClaimText = `${claimCtes},
held AS (
  SELECT rt.refund_seq, rt.target, rt.refund_id, rt.amount_minor::text AS amount_minor, rt.currency, r.status
  FROM refund_targets rt JOIN refunds r ON r.seq = rt.refund_seq
  WHERE rt.provider = $2 AND rt.target = ANY($20::text[]) AND (r.status <> 'failed' OR r.holds_target = 1) AND rt.released = 0
)
SELECT id, version, (SELECT COALESCE(json_agg(held ORDER BY held.refund_seq), '[]') FROM held) AS held FROM ins`

// An upsert locks the row it inserts or finds, in one statement where a plain insert and a
// `SELECT … FOR UPDATE` took two. The targets go in one order in every transaction, so two
// claims sharing targets cannot deadlock; `DO UPDATE` writes the same values (a HOT update).
// It waits behind another claim on the same targets by design (`waitsForLock`).
/** @internal */
export const lockTargetsText = `${PgDeadline.waitsForLock}INSERT INTO refund_target_locks (provider, target)
  SELECT $1::text, x.target FROM unnest($2::text[]) AS x(target) ORDER BY x.target
  ON CONFLICT (provider, target) DO UPDATE SET target = EXCLUDED.target`

const acceptCtes = `WITH u AS (
  UPDATE refunds SET status = $3, provider_status = $4, provider_reference = $5, provider_references = $6,
    items = $7, error = $8, updated_at = $9, provider_final = $10, holds_target = $11, version = version + 1
  WHERE id = $1 AND version = $2
  RETURNING id, seq, version
), e AS (${insertEvents("u", "$12")})`

const acceptStatement = prepared("accept", `${acceptCtes}
SELECT id, version FROM u`)

// A change that alters the targets its refund releases (core's `releasedTargets`: an item failed, or
// back from failed) also rewrites the flag on the refund's reservations, found by their key (the
// provider $13, its targets $14), in the same statement: $15 the targets released now. Only such a
// change takes it, alone (never in a batch), so every other change writes what it wrote before.
/** @internal */
export const acceptReleasingText = `${acceptCtes}, r AS (
  UPDATE refund_targets rt SET released = CASE WHEN rt.target = ANY($15::text[]) THEN 1 ELSE 0 END
  FROM u WHERE rt.provider = $13::text AND rt.target = ANY($14::text[]) AND rt.refund_seq = u.seq
)
SELECT id, version FROM u`

const acceptReleasingStatement = prepared("accept_release", acceptReleasingText)

// A refused change adds only its event; the version still moves on, so every cached copy
// of the old history (this process's or another's) stops matching.
const refuseStatement = prepared(
  "refuse",
  `WITH u AS (
  UPDATE refunds SET version = version + 1 WHERE id = $1 AND version = $2 RETURNING id, seq, version
), e AS (${insertEvents("u", "$3")})
SELECT id, version FROM u`
)

// A batch of claims (`pgGroupCommit.ts`): one JSON array parameter of writes, `w`, each
// carrying its refund's columns and its own events and reservations as JSON. They are
// inserted in id order, so instances claiming overlapping keys lock them alike. Nothing
// here reads `refunds` but the inserts' own conflict checks, so one cached plan serves.
const claimBatchStatement = prepared(
  "claim_batch",
  `WITH w AS (
  SELECT * FROM json_to_recordset($1::json)
    AS w(${Rows.insertColumns.split(", ").map((column) => `${column} text`).join(", ")}, reservations json, events json)
), ins AS (
  INSERT INTO refunds (${Rows.insertColumns})
  SELECT ${Rows.insertColumns} FROM w ORDER BY id
  ON CONFLICT DO NOTHING
  RETURNING id, seq, version
), t AS (
  INSERT INTO refund_targets (refund_seq, refund_id, provider, target, amount_minor, currency)
    SELECT ins.seq, ins.id, x.provider, x.target, x.amount_minor, x.currency
    FROM ins JOIN w ON w.id = ins.id, json_to_recordset(w.reservations) AS x(provider text, target text, amount_minor numeric, currency text)
), e AS (${insertEventsFrom("ins", "ins JOIN w ON w.id = ins.id, json_to_recordset(w.events)")})
SELECT id, version FROM ins`
)

// A batch of changes arrives as one array per column, so that PostgreSQL knows how many
// there are and looks each refund up by its key: given a set function's default guess of
// 100 rows, below a few tens of thousands of refunds it would rather scan the whole table
// into a hash, once per batch (sent as `json_to_recordset` rows, that read ~600 rows per
// refund in the bench). It is planned each time (sent unnamed): a plan cached while the
// table was small would go on scanning it as it grows.
/** @internal */
export const acceptBatchText = `WITH w AS (
  SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::smallint[], $12::smallint[])
    AS w(id, expected, status, provider_status, provider_reference, provider_references, items, error, updated_at, events, provider_final, holds_target)
), u AS (
  UPDATE refunds SET status = w.status, provider_status = w.provider_status, provider_reference = w.provider_reference,
    provider_references = w.provider_references, items = w.items, error = w.error, updated_at = w.updated_at,
    provider_final = w.provider_final, holds_target = w.holds_target, version = refunds.version + 1
  FROM w WHERE refunds.id = w.id AND refunds.version = w.expected
  RETURNING refunds.id, refunds.seq, refunds.version
), e AS (${insertEventsFrom("u", "u JOIN w ON w.id = u.id AND u.version = w.expected + 1, json_to_recordset(w.events::json)")})
SELECT id, version FROM u`

// Batches of one kind out at once, and writes per batch. With one out, the next gathers
// for a whole round trip: larger batches, 15-25% less of PostgreSQL's CPU per refund than
// with two, and the same refunds a second (`bench/README.md`, the thirteenth pass).
const maxInFlight = 1
const maxBatch = 64

const codeOf = (error: SqlError): unknown => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
}

const hasCode = (code: string) => (error: SqlError): boolean => codeOf(error) === code

// 26000 invalid_sql_statement_name, 42P05 duplicate_prepared_statement.
const lostStatement = (error: SqlError): boolean => hasCode("26000")(error) || hasCode("42P05")(error)

/** The version a write's one returned row reports, or none when it matched no row. */
const versionOf = (rows: ReadonlyArray<unknown>): Effect.Effect<Option.Option<number>, LedgerError> =>
  rows.length === 0 ? Effect.succeed(Option.none()) : Effect.map(Rows.decodeVersionEither(rows[0]), Option.some)

/** The result of `applyChange`: the next refund, or the refund with its refused event. */
export type Applied = Either.Either<Refund, { readonly refused: Refund }>

/** @internal */
export interface PgFastPath {
  /**
   * Claims a refund that has no over-refund guard, in one autocommitted statement: its
   * version when this call inserted it, none when the idempotency key was already taken
   * (nothing is written then).
   */
  readonly claim: (refund: Refund) => Effect.Effect<Option.Option<number>, SqlError | LedgerError>
  /**
   * Writes what `applyChange` made of `current` if the row is still at `expected`, in
   * one autocommitted statement: the new version, or none when another writer moved it
   * on (nothing is written then).
   */
  readonly write: (current: Refund, expected: number, applied: Applied) => Effect.Effect<Option.Option<number>, SqlError | LedgerError>
  /**
   * Inside the transaction in context: locks the targets, then claims as `claim` does and
   * reads what other refunds hold on the targets, for the caller to refuse (by failing, so
   * the transaction rolls back). None when the key was already taken.
   */
  readonly guardedClaim: (
    refund: Refund,
    targets: ReadonlyArray<string>
  ) => Effect.Effect<Option.Option<GuardedClaim>, SqlError | LedgerError>
  /** `write` as a statement of the transaction in context (the locked path). */
  readonly writeInTransaction: (current: Refund, expected: number, applied: Applied) => Effect.Effect<Option.Option<number>, SqlError | LedgerError>
}

/** A guarded claim's new row and the reservations other refunds hold on its targets. @internal */
export interface GuardedClaim {
  readonly version: number
  readonly held: ReadonlyMap<string, ReadonlyArray<Reservation>>
}

// One claim of a batch, as `claimBatchStatement` reads it.
const claimInput = (refund: Refund) => ({
  ...Rows.insertRow(refund),
  reservations: Rows.targetRows(refund),
  events: Rows.eventsRows(refund.events)
})

/** A change to a remembered refund, as the group commit holds it. */
interface Accept {
  readonly current: Refund
  readonly expected: number
  readonly next: Refund
}

/** The changes of a batch as `acceptBatchText`'s column arrays. */
const acceptColumns = (writes: ReadonlyArray<Accept>): Array<ReadonlyArray<string | number | null>> => {
  const rows = writes.map(({ current, expected, next }) => {
    const row = Rows.updateRow(next)
    return [
      current.id,
      expected,
      row.status,
      row.provider_status,
      row.provider_reference,
      row.provider_references,
      row.items,
      row.error,
      row.updated_at,
      Rows.eventsJson(next.events.slice(current.events.length)),
      row.provider_final,
      row.holds_target
    ]
  })
  return Array.from({ length: 12 }, (_, column) => rows.map((row) => row[column]!))
}

/**
 * A statement with its own bound (`query_timeout`, not in `pg`'s types), which the ledger's
 * client class (`pgDeadline.ts`) takes instead of the pool-wide one: past it the connection is
 * ended and the write fails, in doubt, so a connection that stopped answering cannot hold a
 * write (and the group commit behind it) for as long as TCP keeps it open.
 */
type Bounded = Pg.QueryConfig & { readonly query_timeout: number }

/** @internal */
export const make = (sql: SqlClient.SqlClient, pool: Option.Option<Pg.Pool>, writeTimeoutMillis: number): PgFastPath => {
  // Cleared for good once a connection has lost a named statement (see above).
  let named = Option.isSome(pool)
  // The code of a lost statement a batch's callback saw, until a writer's fiber has logged it.
  let lostUnlogged: string | undefined

  /** Sends statements unnamed from now on; the warning is logged once, by the next write. */
  const forgetNames = (code: unknown) => {
    if (!named) return
    named = false
    lostUnlogged = String(code)
  }

  const warnOfLoss = Effect.suspend(() => {
    if (lostUnlogged === undefined) return Effect.void
    const code = lostUnlogged
    lostUnlogged = undefined
    return Effect.logWarning(
      "refundkit ledger: a PostgreSQL connection lost a prepared statement (a pooler that does not keep them?); statements are sent unnamed from now on"
    ).pipe(Effect.annotateLogs("code", code))
  })

  const executeNamed = (on: Pg.Pool, statement: Prepared, values: ReadonlyArray<unknown>) =>
    Effect.async<ReadonlyArray<unknown>, SqlError>((resume) => {
      const query: Bounded = { name: statement.name, text: statement.text, values: [...values], query_timeout: writeTimeoutMillis }
      on.query(query, (error, result) => {
        resume(error ? Effect.fail(new SqlError({ cause: error, message: "Failed to execute statement" })) : Effect.succeed(result.rows))
      })
    })

  const execute = (statement: Prepared, values: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<unknown>, SqlError> => {
    const unnamed = Effect.suspend(() => sql.unsafe(statement.text, values))
    if (Option.isNone(pool)) return unnamed
    if (!named) return Effect.zipRight(warnOfLoss, unnamed)
    return executeNamed(pool.value, statement, values).pipe(
      Effect.catchIf(lostStatement, (error) =>
        Effect.zipRight(
          Effect.suspend(() => {
            forgetNames(codeOf(error))
            return warnOfLoss
          }),
          unnamed
        )),
      Effect.withSpan("sql.execute", {
        kind: "client",
        captureStackTrace: false,
        attributes: { "db.system.name": "postgresql", "db.operation.name": "execute", "db.query.text": statement.text }
      })
    )
  }

  const writeValues = (current: Refund, expected: number, applied: Applied): { readonly statement: Prepared; readonly values: ReadonlyArray<unknown> } => {
    const added = (next: Refund) => Rows.eventsJson(next.events.slice(current.events.length))
    if (Either.isLeft(applied)) return { statement: refuseStatement, values: [current.id, String(expected), added(applied.left.refused)] }
    const values = [current.id, String(expected), ...Rows.updateValues(applied.right), added(applied.right)]
    const release = Rows.releaseOf(current, applied.right)
    return release === undefined
      ? { statement: acceptStatement, values }
      : { statement: acceptReleasingStatement, values: [...values, release.provider, release.targets, release.released] }
  }

  const claimValues = (refund: Refund) => [...Rows.insertValues(refund), JSON.stringify(Rows.targetRows(refund)), Rows.eventsJson(refund.events)]

  const claimAlone = (refund: Refund) => Effect.flatMap(execute(claimStatement, claimValues(refund)), versionOf)

  const writeAlone = (current: Refund, expected: number, applied: Applied) => {
    const { statement, values } = writeValues(current, expected, applied)
    return Effect.flatMap(execute(statement, values), versionOf)
  }

  // Only on the ledger's own pool: batches are sent from callbacks, outside any fiber.
  const send = (on: Pg.Pool, statement: Prepared | string, values: ReadonlyArray<unknown>, done: PgGroupCommit.Sent) => {
    const query: Bounded = {
      text: typeof statement === "string" ? statement : statement.text,
      values: [...values],
      query_timeout: writeTimeoutMillis,
      ...(named && typeof statement !== "string" ? { name: statement.name } : {})
    }
    on.query(query, (error, result) => {
      // Each write then runs alone, unnamed: sent named again, the driver would prepare it anew on this connection.
      if (PgGroupCommit.isDatabaseError(error) && (error.code === "26000" || error.code === "42P05")) forgetNames(error.code)
      done(error ?? undefined, error ? [] : result.rows)
    })
  }
  const grouped = <I>(sendBatch: PgGroupCommit.Options<I>["send"]) =>
    PgGroupCommit.make<I>({ maxInFlight, maxBatch, decode: Rows.decodeWrittenEither, send: sendBatch })
  const claims = Option.map(pool, (on) =>
    grouped<Refund>((refunds, done) =>
      refunds.length === 1
        ? send(on, claimStatement, claimValues(refunds[0]!), done)
        : send(on, claimBatchStatement, [JSON.stringify(refunds.map(claimInput))], done)
    ))
  const accepts = Option.map(pool, (on) =>
    grouped<Accept>((writes, done) => {
      if (writes.length > 1) return send(on, acceptBatchText, acceptColumns(writes), done)
      const { current, expected, next } = writes[0]!
      const { statement, values } = writeValues(current, expected, Either.right(next))
      return send(on, statement, values, done)
    }))

  return {
    claim: (refund) =>
      Option.isNone(claims) ? claimAlone(refund) : claims.value.write(refund.id, refund, Effect.suspend(() => claimAlone(refund))),
    // A change that releases targets goes alone: the batch statement writes refunds and events only.
    write: (current, expected, applied) =>
      Option.isNone(accepts) || Either.isLeft(applied) || Rows.releaseOf(current, applied.right) !== undefined
        ? writeAlone(current, expected, applied)
        : accepts.value.write(current.id, { current, expected, next: applied.right }, Effect.suspend(() => writeAlone(current, expected, applied))),
    guardedClaim: (refund, targets) => {
      const unique = [...new Set(targets)]
      const locks = unique.length === 0 ? Effect.void : sql.unsafe(lockTargetsText, [refund.provider, unique])
      return Effect.zipRight(
        locks,
        Effect.flatMap(sql.unsafe(guardedClaimText, [...claimValues(refund), unique]), (rows) =>
          rows.length === 0 ? Effect.succeed(Option.none()) : Effect.map(Rows.decodeGuardedClaimEither(rows[0]), Option.some))
      )
    },
    // Inside a transaction the statement must run on the transaction's own connection, which only `sql` holds: unnamed there.
    writeInTransaction: (current, expected, applied) => {
      const { statement, values } = writeValues(current, expected, applied)
      return Effect.flatMap(sql.unsafe(statement.text, values), versionOf)
    }
  }
}

/**
 * A duplicate event sequence: events were added to the refund without its version
 * moving on (a ledger from before refusals bumped it), so the cached history is short.
 *
 * @internal
 */
export const isUniqueViolation: (error: SqlError) => boolean = hasCode("23505")
