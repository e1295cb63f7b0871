/**
 * The ledger's schema and its migrations, one logical schema on SQLite and PostgreSQL:
 *
 * - `refunds`: one row per refund. `seq` is a monotonically increasing number that
 *   orders the ledger (keyset pagination, newest first); `(provider, idempotency_key)`
 *   is unique, which is what makes a claim atomic. JSON columns are stored as text, so
 *   the request reads back exactly as it was written.
 * - `refund_events`: the append-only history (a trigger refuses UPDATE and DELETE).
 * - `refund_targets`: what each refund reserves against each target, in minor units;
 *   the over-refund guard sums it for refunds that are not `failed`. Since migration 4
 *   every target a refund names has a row: one without a currency or an amount has NULL
 *   there, and a guarded refund against its target is refused rather than let past it.
 *   Events are keyed by the refund's `seq` (since migration 3) and carry its id as a plain
 *   column: keyed by the id, a hash of the key, every claim and outcome wrote into a
 *   random leaf, and the writes of one group commit shared few pages; keyed by `seq`, new
 *   rows go to the right edge (bench/README.md, the tenth pass). Reservations were keyed
 *   so too until migration 4 re-keyed them by (provider, target, seq), the guard's read.
 * - `refunds.provider_final` (since migration 5): 1 when the provider calls the refund's
 *   status word final while the refund still needs a person (`Refund.providerFinal`); sync
 *   selection (`needingSync`, `claimForSync`) passes such refunds by.
 * - `refunds.alive_until` (since migration 12): until when the process that claimed a `requested`
 *   refund says its first call is still out (`keepAlive`); recovery leaves the refund alone until
 *   then. ISO text by the processes' clock on SQLite (one machine's), `timestamptz` by the server's
 *   `now()` on PostgreSQL, whose gateways may run on machines whose clocks disagree.
 * - `refunds.claimed_by` (since migration 14): the process that claimed the refund (`claimants.ts`),
 *   so that recovery can take a `requested` refund at once when that process has ended, rather than
 *   wait for its grace and lease; NULL where the process could not be named (off Linux), and on
 *   refunds claimed before the migration.
 * - `refunds.holds_target` (since migration 13): 1 on a `failed` refund its provider keeps
 *   on its targets (`Refund.holdsTarget`); the guard counts its reservations as it counts
 *   those of a refund that has not failed.
 * - `refund_targets.released` (since migration 15): 1 on a target whose items its refund
 *   records `failed` (core's `releasedTargets`); the guard passes that reservation by.
 * - `refund_events.verdict` (since migration 16): on an operator's verdict, the verdict as it was
 *   asked for (core's `RefundEvent.verdict`), JSON text as the other JSON columns; NULL on every
 *   other event, and on verdicts recorded before the migration.
 * - `refund_events.callback_key` (since migration 17): on a provider's callback, the key its plugin
 *   gave it (core's `RefundEvent.callbackKey`); NULL on every other event, and on callbacks recorded
 *   before the migration. Unique per refund where it is set (`refund_events_callback_key`).
 * - `refund_turns` (SQLite only, since migration 8): who holds a refund's turn
 *   (`serialise`) and until when; PostgreSQL takes an advisory lock instead.
 * - `refund_target_locks` (PostgreSQL only): one row per (provider, target) that a claim
 *   locks `FOR UPDATE` while it checks and writes reservations. SQLite needs no such row:
 *   its claims hold the database's write lock.
 *
 * Timestamps are ISO 8601 text compared byte-wise (`COLLATE "C"` on PostgreSQL), which
 * is the order the in-memory ledger uses.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { LedgerError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import type { Dialect } from "./internal/rows.js"
import * as Transactions from "./internal/transactions.js"

/**
 * The table that records applied migrations. Not `effect_sql_migrations`, so an
 * application sharing the database can run its own migrator beside ours.
 *
 * @since 0.1.0
 */
export const table = "refundkit_ledger_migrations"

const statuses = "('requested', 'pending', 'requires_action', 'succeeded', 'failed', 'unknown')"
const sources = "('submit', 'sync', 'webhook', 'operator', 'recovery')"

const sqlite1: ReadonlyArray<string> = [
  `CREATE TABLE refunds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ${statuses}),
    provider_status TEXT,
    provider_reference TEXT,
    provider_references TEXT NOT NULL DEFAULT '{}',
    currency TEXT,
    amount TEXT,
    targets TEXT NOT NULL DEFAULT '[]',
    items TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    sync_lease_until TEXT,
    sync_lease_owner TEXT,
    UNIQUE (provider, idempotency_key)
  )`,
  `CREATE INDEX refunds_provider_reference ON refunds (provider, provider_reference)`,
  `CREATE INDEX refunds_status_updated ON refunds (status, updated_at, seq)`,
  `CREATE INDEX refunds_provider_seq ON refunds (provider, seq)`,
  `CREATE TABLE refund_events (
    refund_id TEXT NOT NULL REFERENCES refunds (id),
    sequence INTEGER NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ${sources}),
    from_status TEXT CHECK (from_status IS NULL OR from_status IN ${statuses}),
    to_status TEXT NOT NULL CHECK (to_status IN ${statuses}),
    provider_status TEXT,
    accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    detail TEXT,
    PRIMARY KEY (refund_id, sequence)
  )`,
  `CREATE TRIGGER refund_events_no_update BEFORE UPDATE ON refund_events
    BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END`,
  `CREATE TRIGGER refund_events_no_delete BEFORE DELETE ON refund_events
    BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END`,
  `CREATE TABLE refund_targets (
    refund_id TEXT NOT NULL REFERENCES refunds (id),
    provider TEXT NOT NULL,
    target TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (refund_id, target)
  )`,
  `CREATE INDEX refund_targets_provider_target ON refund_targets (provider, target)`
]

const pg1: ReadonlyArray<string> = [
  `CREATE TABLE refunds (
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ${statuses}),
    provider_status TEXT,
    provider_reference TEXT,
    provider_references TEXT NOT NULL DEFAULT '{}',
    currency TEXT,
    amount TEXT,
    targets TEXT NOT NULL DEFAULT '[]',
    items TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    sync_lease_until TEXT COLLATE "C",
    sync_lease_owner TEXT,
    UNIQUE (provider, idempotency_key)
  )`,
  `CREATE INDEX refunds_provider_reference ON refunds (provider, provider_reference)`,
  `CREATE INDEX refunds_status_updated ON refunds (status, updated_at, seq)`,
  `CREATE INDEX refunds_provider_seq ON refunds (provider, seq)`,
  `CREATE TABLE refund_events (
    refund_id TEXT NOT NULL REFERENCES refunds (id),
    sequence INTEGER NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ${sources}),
    from_status TEXT CHECK (from_status IS NULL OR from_status IN ${statuses}),
    to_status TEXT NOT NULL CHECK (to_status IN ${statuses}),
    provider_status TEXT,
    accepted BOOLEAN NOT NULL,
    detail TEXT,
    PRIMARY KEY (refund_id, sequence)
  )`,
  `CREATE FUNCTION refund_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'refund_events is append-only'; END
  $$`,
  `CREATE TRIGGER refund_events_append_only BEFORE UPDATE OR DELETE ON refund_events
    FOR EACH ROW EXECUTE FUNCTION refund_events_append_only()`,
  `CREATE TABLE refund_targets (
    refund_id TEXT NOT NULL REFERENCES refunds (id),
    provider TEXT NOT NULL,
    target TEXT NOT NULL,
    amount_minor NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (refund_id, target)
  )`,
  `CREATE INDEX refund_targets_provider_target ON refund_targets (provider, target)`,
  `CREATE TABLE refund_target_locks (
    provider TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (provider, target)
  )`
]

// Content columns of a refund: an UPDATE of any of them that leaves `version` alone (a
// hand edit, a tool, an older ledger) still moves the version on, so no process's
// cached copy of the refund is taken for the stored one. Sync leases are not content.
const contentColumns =
  "id, provider, idempotency_key, fingerprint, request, status, provider_status, provider_reference, provider_references, currency, amount, targets, items, error, created_at, updated_at"

const sqlite2: ReadonlyArray<string> = [
  `CREATE TRIGGER refunds_version_on_update AFTER UPDATE OF ${contentColumns} ON refunds
    WHEN NEW.version IS OLD.version
    BEGIN UPDATE refunds SET version = OLD.version + 1 WHERE seq = NEW.seq; END`
]

const pg2: ReadonlyArray<string> = [
  `CREATE FUNCTION refunds_version_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.version IS NOT DISTINCT FROM OLD.version THEN NEW.version := OLD.version + 1; END IF;
      RETURN NEW;
    END
  $$`,
  `CREATE TRIGGER refunds_version_on_update BEFORE UPDATE OF ${contentColumns} ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_version_on_update()`
]

const eventColumns = "refund_id, sequence, at, source, from_status, to_status, provider_status, accepted, detail"
const targetColumns = "refund_id, provider, target, amount_minor, currency"

// SQLite cannot change a table's primary key: each table is rebuilt and its rows copied.
// A row whose refund is missing would get a NULL seq and fail the migration (the whole
// transaction) rather than be left behind. The columns are spelled out again rather than
// shared with migration 1, whose text must never change once applied.
const sqlite3: ReadonlyArray<string> = [
  `CREATE TABLE refund_events_keyed (
    refund_seq INTEGER NOT NULL REFERENCES refunds (seq),
    refund_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ${sources}),
    from_status TEXT CHECK (from_status IS NULL OR from_status IN ${statuses}),
    to_status TEXT NOT NULL CHECK (to_status IN ${statuses}),
    provider_status TEXT,
    accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    detail TEXT,
    PRIMARY KEY (refund_seq, sequence)
  ) WITHOUT ROWID`,
  `INSERT INTO refund_events_keyed (refund_seq, ${eventColumns})
    SELECT r.seq, ${eventColumns.split(", ").map((c) => `e.${c}`).join(", ")}
    FROM refund_events e LEFT JOIN refunds r ON r.id = e.refund_id`,
  `DROP TABLE refund_events`,
  `ALTER TABLE refund_events_keyed RENAME TO refund_events`,
  `CREATE TRIGGER refund_events_no_update BEFORE UPDATE ON refund_events
    BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END`,
  `CREATE TRIGGER refund_events_no_delete BEFORE DELETE ON refund_events
    BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END`,
  `CREATE TABLE refund_targets_keyed (
    refund_seq INTEGER NOT NULL REFERENCES refunds (seq),
    refund_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    target TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (refund_seq, target)
  ) WITHOUT ROWID`,
  `INSERT INTO refund_targets_keyed (refund_seq, ${targetColumns})
    SELECT r.seq, ${targetColumns.split(", ").map((c) => `t.${c}`).join(", ")}
    FROM refund_targets t LEFT JOIN refunds r ON r.id = t.refund_id`,
  `DROP TABLE refund_targets`,
  `ALTER TABLE refund_targets_keyed RENAME TO refund_targets`,
  `CREATE INDEX refund_targets_provider_target ON refund_targets (provider, target)`
]

// The append-only trigger is lifted for the one UPDATE that fills the new column.
const pg3: ReadonlyArray<string> = [
  `DROP TRIGGER refund_events_append_only ON refund_events`,
  ...["refund_events", "refund_targets"].flatMap((table) => [
    `ALTER TABLE ${table} ADD COLUMN refund_seq BIGINT`,
    `UPDATE ${table} x SET refund_seq = r.seq FROM refunds r WHERE r.id = x.refund_id`,
    `ALTER TABLE ${table} ALTER COLUMN refund_seq SET NOT NULL`,
    `ALTER TABLE ${table} DROP CONSTRAINT ${table}_pkey`,
    `ALTER TABLE ${table} ADD PRIMARY KEY (refund_seq, ${table === "refund_events" ? "sequence" : "target"})`,
    `ALTER TABLE ${table} DROP CONSTRAINT ${table}_refund_id_fkey`,
    `ALTER TABLE ${table} ADD FOREIGN KEY (refund_seq) REFERENCES refunds (seq)`
  ]),
  `CREATE TRIGGER refund_events_append_only BEFORE UPDATE OR DELETE ON refund_events
    FOR EACH ROW EXECUTE FUNCTION refund_events_append_only()`
]

// Since migration 4 every refund writes a row per target, so the table is keyed the way
// the guard reads it, (provider, target, refund_seq), and needs no second index: one
// b-tree written per reservation instead of two.
// Rows for the targets of refunds stored before migration 4 that had none (no currency
// or no amount): NULL amounts, which the guard refuses to count past.
const backfillTargets = (targetOf: string, elements: string) =>
  `INSERT INTO refund_targets (refund_seq, ${targetColumns})
    SELECT DISTINCT r.seq, r.id, r.provider, ${targetOf}, CAST(NULL AS NUMERIC), r.currency
    FROM refunds r, ${elements}
    WHERE ${targetOf} IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM refund_targets t WHERE t.refund_seq = r.seq AND t.target = ${targetOf})`

const sqlite4: ReadonlyArray<string> = [
  `CREATE TABLE refund_targets_nullable (
    refund_seq INTEGER NOT NULL REFERENCES refunds (seq),
    refund_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    target TEXT NOT NULL,
    amount_minor TEXT,
    currency TEXT,
    PRIMARY KEY (provider, target, refund_seq)
  ) WITHOUT ROWID`,
  `INSERT INTO refund_targets_nullable (refund_seq, ${targetColumns}) SELECT refund_seq, ${targetColumns} FROM refund_targets`,
  `DROP TABLE refund_targets`,
  `ALTER TABLE refund_targets_nullable RENAME TO refund_targets`,
  backfillTargets("json_extract(j.value, '$.target')", "json_each(r.targets) j")
]

const pg4: ReadonlyArray<string> = [
  `ALTER TABLE refund_targets ALTER COLUMN amount_minor DROP NOT NULL, ALTER COLUMN currency DROP NOT NULL,
    DROP CONSTRAINT refund_targets_pkey, ADD PRIMARY KEY (provider, target, refund_seq)`,
  `DROP INDEX refund_targets_provider_target`,
  backfillTargets("j.value ->> 'target'", "json_array_elements(r.targets::json) j")
]

// A refund whose provider calls its status final (Exirom's CHARGEBACK) while it still needs a
// person: sync loops pass it by. 0 / 1 on both databases, so one row shape serves both drivers.
// The version trigger is recreated to count the column as content.
const contentColumns5 = `${contentColumns}, provider_final`

/** A 0 / 1 column counted as the refund's content: added, and the version trigger recreated with it. */
const flagColumn = (column: string, content: string) => {
  const add = `ALTER TABLE refunds ADD COLUMN ${column} SMALLINT NOT NULL DEFAULT 0 CHECK (${column} IN (0, 1))`
  return {
    sqlite: [
      add,
      `DROP TRIGGER refunds_version_on_update`,
      `CREATE TRIGGER refunds_version_on_update AFTER UPDATE OF ${content} ON refunds
    WHEN NEW.version IS OLD.version
    BEGIN UPDATE refunds SET version = OLD.version + 1 WHERE seq = NEW.seq; END`
    ],
    pg: [
      add,
      `DROP TRIGGER refunds_version_on_update ON refunds`,
      `CREATE TRIGGER refunds_version_on_update BEFORE UPDATE OF ${content} ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_version_on_update()`
    ]
  }
}

// Leasing refunds for a sync walks this index in lease order and stops at the limit, instead
// of sorting every refund due for a sync once per lease (queries.ts, leaseOrder).
// PostgreSQL sorts NULL last unless told; SQLite sorts it first. The predicate is queries.ts's
// syncDue as it stood (a migration never changes); a lease query whose conditions no longer
// imply it fails to prepare on SQLite, where it names the index.
const syncDueIndex = (nullsFirst: string) =>
  `CREATE INDEX refunds_sync_due ON refunds (sync_lease_until${nullsFirst}, updated_at, seq)
    WHERE status IN ('pending', 'unknown', 'requires_action') AND provider_final = 0`

// Listing by status (newest first, a keyset cursor on seq) walks this index from the cursor
// and stops at the page's end, where `refunds_status_updated` gave every refund of the status,
// to be sorted by seq for each page. It replaces that index rather than joining it: every
// status change rewrites the entries of both, and recovery's `requested` refunds read as well
// from this one. `needingSync`, which walked the old one per status by update time, sorts the
// refunds due instead, as it always did on PostgreSQL.
const statusSeqIndex: ReadonlyArray<string> = [
  `DROP INDEX refunds_status_updated`,
  `CREATE INDEX refunds_status_seq ON refunds (status, seq)`
]

/**
 * A refund's turn across processes on SQLite (`serialise`): one lease row per refund
 * whose turn is held, by an owner until a time (ISO text, compared byte-wise like
 * `sync_lease_until`). Not keyed to `refunds`: a turn is taken before its refund is read.
 * PostgreSQL takes an advisory lock instead and needs no table.
 */
const sqlite8: ReadonlyArray<string> = [
  `CREATE TABLE refund_turns (
    refund_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until TEXT NOT NULL
  ) WITHOUT ROWID`
]

// Leasing refunds for a sync walks this index from the first entry of each provider leased for,
// in lease order, and stops at the limit. `refunds_sync_due`, which it replaces, had no provider:
// a gateway's sync loop leases for the providers with a status query (Exirom), and walked past
// every refund due of a provider without one (an Airalo refund stays `pending` for good), which
// no sync ever leases, so they stayed first in lease order: one walk per synced refund. Replaced
// rather than joined, so a claim and a status change update no more index entries than before.
const syncDueByProvider = (nullsFirst: string): ReadonlyArray<string> => [
  `DROP INDEX refunds_sync_due`,
  `CREATE INDEX refunds_sync_due_by_provider ON refunds (provider, sync_lease_until${nullsFirst}, updated_at, seq)
    WHERE status IN ('pending', 'unknown', 'requires_action') AND provider_final = 0`
]

// Listing one provider's refunds of a status (`GET /v1/refunds?provider=airalo&status=pending`,
// `refundkit reconcile --provider`) walked `refunds_status_seq` past every refund of that status
// of the other providers: 109 ms a page at 200,000 refunds in a soak run, once per page. With the
// provider between status and seq, it walks that provider's entries alone. A list by status alone
// takes one walk per provider with refunds of that status and keeps the newest; counting by status
// and provider reads the entries in group order. Replaced rather than joined, so a status change
// rewrites no more index entries than before.
const statusProviderSeqIndex: ReadonlyArray<string> = [
  `DROP INDEX refunds_status_seq`,
  `CREATE INDEX refunds_status_provider_seq ON refunds (status, provider, seq)`
]

// A list by creation time (`GET /v1/refunds?createdFrom=…&createdTo=…`, `refundkit list --created-from`)
// walks this index from its cursor, newest first by (created_at, seq), and stops at the page's end:
// by seq alone it walked every refund created after the range (an hour a day ago on 200,000 refunds:
// 55 ms a page on SQLite, 75 ms on PostgreSQL; a page that did not fill walked on to the first
// refund). seq cannot be bounded from the range instead: it follows the order refunds were recorded,
// created_at the clock of the process that created each one, and gateways' clocks disagree. One more
// entry per claim; created_at never changes, so SQLite's status changes do not touch it (PostgreSQL's
// do, as they rewrite every index of the row: status is indexed, so no update of a refund is HOT).
const createdSeqIndex = `CREATE INDEX refunds_created_seq ON refunds (created_at, seq)`

// Not a content column (migration 5's list): a lease written every heartbeat must not bump the
// refund's version, which a status change read before it compares against. Not indexed either:
// recovery reads it only for the few refunds in `requested`, found by their status index.
const aliveUntil = {
  sqlite: [`ALTER TABLE refunds ADD COLUMN alive_until TEXT`],
  pg: [`ALTER TABLE refunds ADD COLUMN alive_until timestamptz`]
}

// A failed refund its provider keeps on its targets (AeroHub's CLOSED and QUOTE_REJECTED): the
// guard counts its reservations, read with `status <> 'failed' OR holds_target = 1` on rows it
// already joins, so no index changes. 0 / 1 on both databases, as `provider_final`. The version
// trigger is recreated to count it as content: a hand edit releasing a target must move the
// version on, or a process's cached copy, still holding it, would be written back over it.
// Migration 12's `alive_until` is not content and stays out of the list.
const contentColumns13 = `${contentColumns5}, holds_target`

// Written once, by the claim, and read only for the few refunds in `requested`: no index, and not content
// (a refund's version and cached copies are about its state, not about who first recorded it).
const claimedBy = [`ALTER TABLE refunds ADD COLUMN claimed_by TEXT`]

// A target whose item its refund records failed holds nothing for the guards (core's
// `releasedTargets`: an Airpay transaction refused in a batch whose others were refunded), though
// the refund holds its other targets. The flag sits on the reservation the guard already reads, so
// its read adds `released = 0` and no join; it is written only when a status change alters the
// refund's released targets (`releasedChange`), so a refund none of whose items failed costs no
// more than before. Not content: `refund_targets` has no version. Existing rows are marked from
// each refund's stored items by the same rule: in a refund that is not `failed` (a failed refund
// frees, or keeps, every target by its status), a target all of whose items are `failed`.
const releasedItems = (items: string, target: string, status: string) =>
  `SELECT r.provider, ${target} AS target, r.seq AS seq FROM refunds r, ${items} i
    WHERE r.status <> 'failed' AND r.items LIKE '%"failed"%'
    GROUP BY r.provider, r.seq, ${target}
    HAVING SUM(CASE WHEN ${status} = 'failed' THEN 0 ELSE 1 END) = 0`

const sqlite15: ReadonlyArray<string> = [
  `ALTER TABLE refund_targets ADD COLUMN released INTEGER NOT NULL DEFAULT 0 CHECK (released IN (0, 1))`,
  `UPDATE refund_targets SET released = 1 WHERE (provider, target, refund_seq) IN (${
    releasedItems("json_each(r.items)", "json_extract(i.value, '$.target')", "json_extract(i.value, '$.status')")
  })`
]

const pg15: ReadonlyArray<string> = [
  `ALTER TABLE refund_targets ADD COLUMN released SMALLINT NOT NULL DEFAULT 0 CHECK (released IN (0, 1))`,
  `UPDATE refund_targets t SET released = 1 FROM (${
    releasedItems("json_array_elements(r.items::json)", "i.value ->> 'target'", "i.value ->> 'status'")
  }) f WHERE t.provider = f.provider AND t.target = f.target AND t.refund_seq = f.seq`
]

// What an operator's verdict asked for, on its event (core's `RefundEvent.verdict`): the gateway tells a repeat
// of the verdict that settled a refund from it, not from the words of the event's detail. Nothing is filled in
// for the events already there: a verdict's words are all they have, and read so (the gateway falls back to
// them), while words parsed into a column here would pass for what was asked. A nullable column with no
// default is added without rewriting a row on either database, so the append-only triggers never see it.
const eventVerdict = [`ALTER TABLE refund_events ADD COLUMN verdict TEXT`]

// A provider's callback's key, on its event (core's `RefundEvent.callbackKey`): a repeat of the callback is
// known by it, decided under the refund's lock, where it used to be known by the event's words (`webhook <key>`),
// read before the write. The unique index is the storage's own guarantee that one callback is recorded once per
// refund whatever a ledger's code does (a partial one: other events are not in it), keyed by `refund_seq` as the
// events are, so that its entries go where the refund's events go. Nothing is filled in for the events already
// there: core still knows their callbacks by their words (`recordsCallback`); filling the column in from them
// would rewrite rows of the append-only history (its triggers would have to be lifted), and a ledger whose two
// deliveries of one callback were both recorded, as they could be before, would hold a repeated key that the
// unique index refuses, failing the migration.
const eventCallbackKey = [
  `ALTER TABLE refund_events ADD COLUMN callback_key TEXT`,
  `CREATE UNIQUE INDEX refund_events_callback_key ON refund_events (refund_seq, callback_key) WHERE callback_key IS NOT NULL`
]

const statements = (byDialect: { readonly sqlite: ReadonlyArray<string>; readonly pg: ReadonlyArray<string> }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const list = sql.onDialectOrElse({ sqlite: () => byDialect.sqlite, pg: () => byDialect.pg, orElse: () => byDialect.sqlite })
    for (const statement of list) yield* sql.unsafe(statement).raw
  })

/**
 * Every migration, by `<id>_<name>`. Append new ones; never edit an applied one.
 *
 * @since 0.1.0
 */
export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_create_ledger": statements({ sqlite: sqlite1, pg: pg1 }),
  "2_version_on_update": statements({ sqlite: sqlite2, pg: pg2 }),
  "3_keyed_by_refund_seq": statements({ sqlite: sqlite3, pg: pg3 }),
  "4_every_target_reserved": statements({ sqlite: sqlite4, pg: pg4 }),
  "5_provider_final": statements(flagColumn("provider_final", contentColumns5)),
  "6_sync_due_index": statements({ sqlite: [syncDueIndex("")], pg: [syncDueIndex(" NULLS FIRST")] }),
  "7_status_seq_index": statements({ sqlite: statusSeqIndex, pg: statusSeqIndex }),
  "8_refund_turns": statements({ sqlite: sqlite8, pg: [] }),
  "9_sync_due_by_provider": statements({ sqlite: syncDueByProvider(""), pg: syncDueByProvider(" NULLS FIRST") }),
  "10_status_provider_seq_index": statements({ sqlite: statusProviderSeqIndex, pg: statusProviderSeqIndex }),
  "11_created_seq_index": statements({ sqlite: [createdSeqIndex], pg: [createdSeqIndex] }),
  "12_alive_until": statements(aliveUntil),
  "13_failed_holds_target": statements(flagColumn("holds_target", contentColumns13)),
  "14_claimed_by": statements({ sqlite: claimedBy, pg: claimedBy }),
  "15_released_targets": statements({ sqlite: sqlite15, pg: pg15 }),
  "16_event_verdict": statements({ sqlite: eventVerdict, pg: eventVerdict }),
  "17_event_callback_key": statements({ sqlite: eventCallbackKey, pg: eventCallbackKey })
}

/**
 * The id of the newest migration: a ledger is ready when it has been applied.
 *
 * @since 0.1.0
 */
export const latest: number = Math.max(...Object.keys(migrations).map((key) => Number.parseInt(key, 10)))

const dialectOf = (sql: SqlClient.SqlClient): Effect.Effect<Dialect, LedgerError> =>
  sql.onDialectOrElse({
    sqlite: () => Effect.succeed<Dialect>("sqlite"),
    pg: () => Effect.succeed<Dialect>("pg"),
    orElse: () => Effect.fail(new LedgerError({ detail: "the ledger supports SQLite and PostgreSQL only" }))
  })

const migrationsTablePg = `CREATE TABLE IF NOT EXISTS ${table} (
  migration_id integer primary key,
  created_at timestamp with time zone not null default now(),
  name text not null
)`

const describeFailure = (error: { readonly message: string; readonly cause?: unknown }): string => {
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ""
  return `migrating the ledger schema failed: ${error.message}${cause}${noSchemaHint(error.cause)}`
}

// PostgreSQL's words for a search_path that names no existing schema ("no schema has been selected to
// create in", SQLSTATE 3F000) do not say that the schema the URL names is missing.
const noSchemaHint = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "3F000"
    ? " (the search_path the URL sets, `options=-c search_path=...`, names no schema that exists: create it first, `CREATE SCHEMA <name>`)"
    : ""

/**
 * Applies the migrations not yet applied and returns them. Safe to run from several
 * processes at once: on SQLite the run holds the write lock (`BEGIN IMMEDIATE`), on
 * PostgreSQL an advisory transaction lock, so one process migrates and the others then
 * find nothing to do.
 *
 * @since 0.1.0
 */
export const run: Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, LedgerError, SqlClient.SqlClient> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    const dialect = yield* dialectOf(sql)
    const transactions = Transactions.make(sql, dialect)
    const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table })
    const locked = dialect === "pg"
      // The migrator's own "does the table exist" probe fails inside a transaction on
      // PostgreSQL when the table is missing, so create it first, under the lock.
      ? sql`SELECT pg_advisory_xact_lock(hashtext(${table}::text || ':' || current_schema()))`.pipe(
        Effect.zipRight(sql.unsafe(migrationsTablePg).raw),
        Effect.zipRight(migrate)
      )
      : migrate
    return yield* transactions.write(locked).pipe(
      Effect.retry({ schedule: Transactions.retryTransient, while: (e) => e._tag === "SqlError" && Transactions.isTransient(e) }),
      Effect.mapError((error) => new LedgerError({ detail: describeFailure(error) })),
      Effect.catchAllDefect((defect) =>
        Effect.fail(new LedgerError({ detail: describeFailure(defect instanceof Error ? defect : { message: String(defect) }) }))
      ),
      // A schema a newer build migrated past this one's migrations: refuse to start rather than
      // run with statements that no longer fit it (every write would fail).
      Effect.tap(() => check)
    )
  }
)

/**
 * Succeeds when the ledger database answers and every migration has been applied.
 *
 * @since 0.1.0
 */
export const check: Effect.Effect<void, LedgerError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const unreadable = (error: SqlError) =>
    new LedgerError({ detail: `the ledger database cannot be read: ${error.cause instanceof Error ? error.cause.message : error.message}` })
  // Look the table up before reading it: the SQLite client caches a failed prepare
  // ("no such table") for minutes, which would keep the ledger unready after a migration.
  const exists = yield* sql.onDialectOrElse({
    pg: () => Effect.map(sql<{ readonly ok: unknown }>`SELECT to_regclass(${table}) IS NOT NULL AS ok`, (rows) => rows[0]?.ok === true),
    orElse: () =>
      Effect.map(
        sql<{ readonly n: unknown }>`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${table}`,
        (rows) => Number(rows[0]?.n ?? 0) > 0
      )
  }).pipe(Effect.mapError(unreadable))
  const applied = exists
    ? Number((yield* Effect.mapError(sql<{ readonly id: unknown }>`SELECT MAX(migration_id) AS id FROM ${sql(table)}`, unreadable))[0]?.id ?? 0)
    : 0
  if (applied < latest) {
    return yield* new LedgerError({ detail: `the ledger schema is at migration ${applied}, ${latest} is required; run the migrations` })
  }
  if (applied > latest) {
    return yield* new LedgerError({
      detail: `the ledger schema is at migration ${applied}, newer than this build knows (${latest}): a newer refundkit migrated it; upgrade this process`
    })
  }
})
