/**
 * @refundkit/api: the refundkit gateway's HttpApi contract (endpoints, bodies,
 * errors) and a typed client derived from it.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Api from "./Api.js"

/**
 * @since 0.1.0
 */
export * as ApiClient from "./ApiClient.js"

/**
 * @since 0.1.0
 */
export * as ApiError from "./ApiError.js"

/**
 * @since 0.1.0
 */
export * as ApiModel from "./ApiModel.js"

/**
 * @since 0.1.0
 */
export * as Authorization from "./Authorization.js"
