/**
 * @refundkit/exirom: Exirom card refunds for refundkit. The sandbox is at
 * `@refundkit/exirom/sandbox`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Exirom from "./Exirom.js"

/**
 * @since 0.1.0
 */
export * as ExiromClient from "./ExiromClient.js"

/**
 * @since 0.1.0
 */
export * as ExiromConfig from "./ExiromConfig.js"

/**
 * @since 0.1.0
 */
export * as ExiromRequest from "./ExiromRequest.js"

/**
 * @since 0.1.0
 */
export * as ExiromStatus from "./ExiromStatus.js"

/**
 * @since 0.1.0
 */
export * as ExiromWire from "./ExiromWire.js"
