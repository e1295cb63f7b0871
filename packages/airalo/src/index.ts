/**
 * @refundkit/airalo: Airalo eSIM refund requests for refundkit. The sandbox is at
 * `@refundkit/airalo/sandbox`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Airalo from "./Airalo.js"

/**
 * @since 0.1.0
 */
export * as AiraloClient from "./AiraloClient.js"

/**
 * @since 0.1.0
 */
export * as AiraloConfig from "./AiraloConfig.js"

/**
 * @since 0.1.0
 */
export * as AiraloRequest from "./AiraloRequest.js"

/**
 * @since 0.1.0
 */
export * as AiraloStatus from "./AiraloStatus.js"

/**
 * @since 0.1.0
 */
export * as AiraloWire from "./AiraloWire.js"
