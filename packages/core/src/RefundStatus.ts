/**
 * The unified refund status and the one table of legal transitions between them.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * - `requested`: recorded, not yet acknowledged by the provider
 * - `pending`: the provider has it, the outcome is not final
 * - `requires_action`: a person has to do something (at the provider or here)
 * - `succeeded` / `failed`: final
 * - `unknown`: the request may or may not have reached the provider; resolved by sync or an operator, never retried blindly
 *
 * @since 0.1.0
 */
export const RefundStatus = Schema.Literal("requested", "pending", "requires_action", "succeeded", "failed", "unknown").annotations({
  identifier: "RefundStatus"
})

/**
 * @since 0.1.0
 */
export type RefundStatus = typeof RefundStatus.Type

/**
 * Every status, in lifecycle order.
 *
 * @since 0.1.0
 */
export const all: ReadonlyArray<RefundStatus> = RefundStatus.literals

/**
 * Where each status may go next. Staying in the same status is always allowed (a
 * provider may report a new status word that maps to the same unified status, or
 * repeat itself); leaving a final status never is.
 *
 * @since 0.1.0
 */
export const transitions: { readonly [From in RefundStatus]: ReadonlyArray<RefundStatus> } = {
  requested: ["pending", "requires_action", "succeeded", "failed", "unknown"],
  pending: ["requires_action", "succeeded", "failed"],
  requires_action: ["pending", "succeeded", "failed"],
  unknown: ["pending", "requires_action", "succeeded", "failed"],
  succeeded: [],
  failed: []
}

/**
 * Whether a refund in `from` may move to `to`.
 *
 * @since 0.1.0
 */
export const canTransition = (from: RefundStatus, to: RefundStatus): boolean => from === to || transitions[from].includes(to)

/**
 * Final statuses never change again.
 *
 * @since 0.1.0
 */
export const isFinal = (status: RefundStatus): boolean => status === "succeeded" || status === "failed"

/**
 * Statuses a sync loop or `reconcile` should look at again.
 *
 * @since 0.1.0
 */
export const needsSync = (status: RefundStatus): boolean => status === "pending" || status === "unknown" || status === "requires_action"

/**
 * The status of a refund made of several items (a batch provider call): any item
 * still open keeps the whole open; all alike gives that status; a mix of
 * `succeeded` and `failed` needs a person (`requires_action`), because neither
 * word would tell the truth about the refund as a whole.
 *
 * @since 0.1.0
 */
export const aggregate = (items: ReadonlyArray<RefundStatus>): RefundStatus => {
  if (items.length === 0) return "requested"
  const first = items[0]!
  if (items.every((s) => s === first)) return first
  if (items.includes("unknown")) return "unknown"
  if (items.some((s) => s === "requested" || s === "pending")) return "pending"
  return "requires_action"
}
