/**
 * @refundkit/testkit: the conformance suite every refundkit provider plugin runs
 * against its own sandbox, over real HTTP on 127.0.0.1.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Conformance from "./Conformance.js"

/**
 * @since 0.1.0
 */
export { conformance, stack } from "./Conformance.js"

/**
 * @since 0.2.0
 */
export * as ScriptedServer from "./ScriptedServer.js"

/**
 * @since 0.2.0
 */
export * as Recorded from "./Recorded.js"

/**
 * @since 0.2.0
 */
export * as Waiting from "./Waiting.js"
