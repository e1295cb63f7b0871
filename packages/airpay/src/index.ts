/**
 * @refundkit/airpay: Airpay v4 encrypted batch refunds for refundkit. The sandbox is
 * at `@refundkit/airpay/sandbox`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Airpay from "./Airpay.js"

/**
 * @since 0.1.0
 */
export * as AirpayClient from "./AirpayClient.js"

/**
 * @since 0.1.0
 */
export * as AirpayConfig from "./AirpayConfig.js"

/**
 * @since 0.1.0
 */
export * as AirpayCrypto from "./AirpayCrypto.js"

/**
 * @since 0.1.0
 */
export * as AirpayRequest from "./AirpayRequest.js"

/**
 * @since 0.1.0
 */
export * as AirpayStatus from "./AirpayStatus.js"

/**
 * @since 0.1.0
 */
export * as AirpayWire from "./AirpayWire.js"
