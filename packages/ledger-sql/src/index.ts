/**
 * @refundkit/ledger-sql: the durable refundkit ledger on `@effect/sql`, in a SQLite
 * file by default or in PostgreSQL for several instances sharing one ledger.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as LedgerConfig from "./LedgerConfig.js"

/**
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.js"

/**
 * @since 0.1.0
 */
export * as SqlLedger from "./SqlLedger.js"

/**
 * The layers and the readiness check, also reachable without the namespace.
 *
 * @since 0.1.0
 */
export { layer, layerConfig, layerFromClient, layerPg, layerSqlite, ready } from "./SqlLedger.js"
