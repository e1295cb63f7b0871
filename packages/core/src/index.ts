/**
 * @refundkit/core: the refund domain, the error model, the provider plugin contract,
 * the ledger interface and the orchestration service. The sandbox toolkit is at
 * `@refundkit/core/Sandbox` (it needs `@effect/platform-node`).
 *
 * @since 0.1.0
 */

/**
 * @since 0.4.0
 */
export * as JsonNumbers from "./JsonNumbers.js"

/**
 * @since 0.1.0
 */
export * as Ledger from "./Ledger.js"

/**
 * @since 0.1.0
 */
export * as Money from "./Money.js"

/**
 * @since 0.1.0
 */
export * as Provider from "./Provider.js"

/**
 * @since 0.1.0
 */
export * as ProviderHttp from "./ProviderHttp.js"

/**
 * @since 0.1.0
 */
export * as Providers from "./Providers.js"

/**
 * @since 0.1.0
 */
export * as Refund from "./Refund.js"

/**
 * @since 0.1.0
 */
export * as RefundError from "./RefundError.js"

/**
 * @since 0.1.0
 */
export * as Refunds from "./Refunds.js"

/**
 * @since 0.1.0
 */
export * as RefundStatus from "./RefundStatus.js"

/**
 * @since 0.2.0
 */
export * as Settings from "./Settings.js"

/**
 * @since 0.4.0
 */
export * as Timestamp from "./Timestamp.js"

/**
 * @since 0.5.0
 */
export * as UpdateEvent from "./UpdateEvent.js"
