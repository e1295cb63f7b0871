/**
 * @refundkit/aerohub: AeroHub FareMarket supplier refund progress (UpdateRefund) for
 * refundkit. The sandbox is at `@refundkit/aerohub/sandbox`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as AeroHub from "./AeroHub.js"

/**
 * @since 0.1.0
 */
export * as AeroHubClient from "./AeroHubClient.js"

/**
 * @since 0.1.0
 */
export * as AeroHubConfig from "./AeroHubConfig.js"

/**
 * @since 0.4.0
 */
export * as AeroHubReplay from "./AeroHubReplay.js"

/**
 * @since 0.1.0
 */
export * as AeroHubRequest from "./AeroHubRequest.js"

/**
 * @since 0.1.0
 */
export * as AeroHubStatus from "./AeroHubStatus.js"

/**
 * @since 0.1.0
 */
export * as AeroHubTransitions from "./AeroHubTransitions.js"

/**
 * @since 0.1.0
 */
export * as AeroHubWire from "./AeroHubWire.js"
