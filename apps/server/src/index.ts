/**
 * @refundkit/server: the refundkit HTTP gateway, and the pieces the CLI shares with it.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as ApiErrors from "./ApiErrors.js"

/**
 * @since 0.1.0
 */
export * as ApiKeys from "./ApiKeys.js"

/**
 * @since 0.1.0
 */
export * as ClientErrors from "./ClientErrors.js"

/**
 * @since 0.1.0
 */
export * as CreateRoute from "./CreateRoute.js"

/**
 * @since 0.1.0
 */
export * as Handlers from "./Handlers.js"

/**
 * @since 0.1.0
 */
export * as IdempotencyKey from "./IdempotencyKey.js"

/**
 * @since 0.1.0
 */
export * as Installed from "./Installed.js"

/**
 * @since 0.1.0
 */
export * as Main from "./Main.js"

/**
 * @since 0.1.0
 */
export * as ProviderClient from "./ProviderClient.js"

/**
 * @since 0.1.0
 */
export * as RequestBody from "./RequestBody.js"

/**
 * @since 0.1.0
 */
export * as RequestMiddleware from "./RequestMiddleware.js"

/**
 * @since 0.6.0
 */
export * as ReopenRoute from "./ReopenRoute.js"

/**
 * @since 0.6.0
 */
export * as ResolveRoute from "./ResolveRoute.js"

/**
 * @since 0.1.0
 */
export * as Sandboxes from "./Sandboxes.js"

/**
 * @since 0.1.0
 */
export * as Server from "./Server.js"

/**
 * @since 0.1.0
 */
export * as ServerConfig from "./ServerConfig.js"

/**
 * @since 0.1.0
 */
export * as Stack from "./Stack.js"

/**
 * @since 0.1.0
 */
export * as SyncLoop from "./SyncLoop.js"
