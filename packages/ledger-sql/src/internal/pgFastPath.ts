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
 * A read that waited for a row lock must not take its events from a subquery: the
 * subquery sees the statement's snapshot, taken before the wait. Locked reads therefore
 * read the events in a second statement.
 *
 * The two writes are prepared once per connection (`PREPARE` / `EXECUTE`): planning
 * these CTEs cost PostgreSQL as much CPU as running them.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Refund } from "@refundkit/core/Refund"
import type { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import * as Rows from "./rows.js"

/**
 * A refund's columns, its `version` and its events as a JSON array, for a `SELECT …
 * FROM refunds` that does not lock.
 *
 * @internal
 */
export const hydratedColumns = `${Rows.refundColumns}, version,
  (SELECT COALESCE(json_agg(e ORDER BY e.sequence), '[]') FROM refund_events e WHERE e.refund_id = refunds.id) AS events`

// A claim's conflict has no target: the id derives from the provider and the key, so a
// concurrent claim of the same key may collide on the primary key before the key's own
// index, and PostgreSQL raises on a conflict outside a named target. Either means "taken".

// The events of a write arrive as one JSON parameter and are inserted only for the row
// the CTE `source` returned: no row, no events.
const insertEvents = (source: string, parameter: string) =>
  `INSERT INTO refund_events (${Rows.eventColumns})
    SELECT ${source}.id, x.sequence, x.at, x.source, x.from_status, x.to_status, x.provider_status, x.accepted, x.detail
    FROM ${source}, json_to_recordset(${parameter}::json)
      AS x(sequence integer, at text, source text, from_status text, to_status text, provider_status text, accepted boolean, detail text)`

/** A statement PostgreSQL parses and plans once per connection: `PREPARE name (types) AS text`. */
interface Prepared {
  readonly name: string
  readonly types: string
  readonly text: string
}

// The name follows the text, so a ledger whose statement changed never executes another's.
const prepared = (key: string, types: ReadonlyArray<string>, text: string): Prepared => ({
  name: `refundkit_${key}_${createHash("sha256").update(types.join(",")).update(text).digest("hex").slice(0, 12)}`,
  types: types.join(", "),
  text
})

const text16 = Array.from({ length: 16 }, () => "text")

const claimStatement = prepared(
  "claim",
  [...text16, "json", "json"],
  `WITH ins AS (
  INSERT INTO refunds (${Rows.insertColumns})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
  ON CONFLICT DO NOTHING
  RETURNING id, version
), t AS (
  INSERT INTO refund_targets (refund_id, provider, target, amount_minor, currency)
    SELECT ins.id, x.provider, x.target, x.amount_minor, x.currency
    FROM ins, json_to_recordset($17) AS x(provider text, target text, amount_minor numeric, currency text)
), e AS (${insertEvents("ins", "$18")})
SELECT version FROM ins`
)

const acceptStatement = prepared(
  "accept",
  ["text", "integer", "text", "text", "text", "text", "text", "text", "text", "json"],
  `WITH u AS (
  UPDATE refunds SET status = $3, provider_status = $4, provider_reference = $5, provider_references = $6,
    items = $7, error = $8, updated_at = $9, version = version + 1
  WHERE id = $1 AND version = $2
  RETURNING id, version
), e AS (${insertEvents("u", "$10")})
SELECT version FROM u`
)

// A refused change adds only its event; the version still moves on, so every cached copy
// of the old history (this process's or another's) stops matching.
const refuseStatement = prepared(
  "refuse",
  ["text", "integer", "json"],
  `WITH u AS (
  UPDATE refunds SET version = version + 1 WHERE id = $1 AND version = $2 RETURNING id, version
), e AS (${insertEvents("u", "$3")})
SELECT version FROM u`
)

const codeOf = (error: SqlError): unknown => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
}

const hasCode = (code: string) => (error: SqlError): boolean => codeOf(error) === code

/**
 * A value as a string literal of the `E''` form, which reads the same whatever
 * `standard_conforming_strings` says; the client encoding is UTF-8, where no multi-byte
 * character contains a quote or a backslash byte.
 */
const literal = (value: string | null): string =>
  value === null ? "NULL" : `E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`

/** The rows of the last statement of a simple query (one result, or one per statement). */
const lastRows = (rows: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
  const last = rows.at(-1)
  return Array.isArray(rows[0]) && Array.isArray(last) ? last : rows
}

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
  /** `write` as a statement of the transaction in context (the locked path). */
  readonly writeInTransaction: (current: Refund, expected: number, applied: Applied) => Effect.Effect<Option.Option<number>, SqlError | LedgerError>
}

/** @internal */
export const make = (sql: SqlClient.SqlClient): PgFastPath => {
  /**
   * Runs a prepared statement on a connection of the pool, preparing it there first
   * when the connection has not seen it (`26000`). Parsing and planning these CTEs
   * costs PostgreSQL about as much CPU as executing them, and `@effect/sql-pg` offers no
   * named statements, so they are prepared in SQL. `EXECUTE` takes no bind
   * parameters: the values go as escaped literals, which is also why the span carries
   * the statement's text, never the `EXECUTE` line.
   */
  const execute = (statement: Prepared, values: ReadonlyArray<string | null>): Effect.Effect<ReadonlyArray<unknown>, SqlError> => {
    // A NUL cannot be in a query's text; the bound statement fails on it as any write would.
    if (values.some((value) => value !== null && value.includes("\u0000"))) return sql.unsafe(statement.text, values)
    const call = `EXECUTE ${statement.name}(${values.map(literal).join(", ")})`
    return Effect.scoped(Effect.flatMap(sql.reserve, (connection) =>
      connection.executeUnprepared(call, [], undefined).pipe(
        Effect.catchIf(hasCode("26000"), () =>
          connection.executeUnprepared(`PREPARE ${statement.name} (${statement.types}) AS ${statement.text}; ${call}`, [], undefined).pipe(
            Effect.map(lastRows),
            // Prepared already, yet unknown a moment ago: a pooler between us and the server
            // hands out its connections per statement. The bound statement needs none.
            Effect.catchIf(hasCode("42P05"), () => sql.unsafe(statement.text, values))
          ))
      ))).pipe(
        Effect.withSpan("sql.execute", {
          kind: "client",
          captureStackTrace: false,
          attributes: { "db.system.name": "postgresql", "db.operation.name": "execute", "db.query.text": statement.text }
        })
      )
  }

  const writeValues = (current: Refund, expected: number, applied: Applied) => {
    const added = (next: Refund) => Rows.eventsJson(next.events.slice(current.events.length))
    return Either.isRight(applied)
      ? { statement: acceptStatement, values: [current.id, String(expected), ...Rows.updateValues(applied.right), added(applied.right)] }
      : { statement: refuseStatement, values: [current.id, String(expected), added(applied.left.refused)] }
  }

  return {
    claim: (refund) =>
      Effect.flatMap(
        execute(claimStatement, [...Rows.insertValues(refund), JSON.stringify(Rows.targetRows(refund)), Rows.eventsJson(refund.events)]),
        versionOf
      ),
    write: (current, expected, applied) => {
      const { statement, values } = writeValues(current, expected, applied)
      return Effect.flatMap(execute(statement, values), versionOf)
    },
    // A failed EXECUTE would abort the transaction, so inside one the statement is bound as usual.
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
