/**
 * @refundkit/cli: the `refundkit` command line. The executable is `dist/bin.js`; the
 * command tree is exported for embedding and tests.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * @since 0.1.0
 */
export * as ExitCode from "./ExitCode.js"

/**
 * @since 0.1.0
 */
export * as BulkFile from "./BulkFile.js"
