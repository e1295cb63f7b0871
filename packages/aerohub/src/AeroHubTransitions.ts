/**
 * The refund-order state machine a supplier's updates must follow, checked locally
 * from the refund's history before anything is sent.
 *
 * From AeroHub's Chinese UpdateRefund page: a quote phase (QUOTE_COMPLETED or
 * QUOTE_REJECTED), then the refund phase PROCESSING ("step 1, cannot be undone") ->
 * REFUNDED_PENDING (step 2) -> REFUNDED (step 3), and CLOSED ("any step can refuse").
 *
 * @since 0.1.0
 */
import type { RefundStatus } from "./AeroHubRequest.js"

/**
 * The states a new refund order's first update may report.
 *
 * @since 0.1.0
 */
export const starts: ReadonlyArray<RefundStatus> = ["QUOTE_COMPLETED", "QUOTE_REJECTED", "PROCESSING", "CLOSED"]

/**
 * Where each state may go next, besides repeating itself (a repeat is always allowed:
 * an update is safe to send twice for the same target state).
 *
 * @since 0.1.0
 */
export const next: { readonly [From in RefundStatus]: ReadonlyArray<RefundStatus> } = {
  QUOTE_COMPLETED: ["PROCESSING", "CLOSED"],
  QUOTE_REJECTED: [],
  PROCESSING: ["REFUNDED_PENDING", "CLOSED"],
  REFUNDED_PENDING: ["REFUNDED", "CLOSED"],
  REFUNDED: [],
  CLOSED: []
}

/**
 * States nothing leaves.
 *
 * @since 0.1.0
 */
export const isFinal = (status: RefundStatus): boolean => next[status].length === 0

const refundPhase: ReadonlyArray<RefundStatus> = ["PROCESSING", "REFUNDED_PENDING", "REFUNDED"]

/**
 * Why `from -> to` is not allowed, naming the rule; undefined when it is allowed.
 * `from` undefined is a new refund order (nothing reported yet).
 *
 * @since 0.1.0
 */
export const refusal = (from: RefundStatus | undefined, to: RefundStatus): string | undefined => {
  if (from === undefined) {
    return starts.includes(to)
      ? undefined
      : `a new refund order's first update must be one of ${starts.join(", ")}; ${to} comes later (PROCESSING -> REFUNDED_PENDING -> REFUNDED)`
  }
  if (from === to || next[from].includes(to)) return undefined
  if (isFinal(from)) {
    return `the refund order is ${from}, a final state: nothing leaves REFUNDED, CLOSED or QUOTE_REJECTED (repeating ${from} is allowed)`
  }
  if (refundPhase.includes(from) && (to === "QUOTE_COMPLETED" || to === "QUOTE_REJECTED")) {
    return `PROCESSING cannot be undone: a refund order in ${from} cannot go back to the quote phase (${to})`
  }
  if (refundPhase.includes(to) && refundPhase.indexOf(to) < refundPhase.indexOf(from)) {
    return `PROCESSING -> REFUNDED_PENDING -> REFUNDED only moves forward: ${from} cannot go back to ${to}`
  }
  if (from === "QUOTE_COMPLETED" && to === "QUOTE_REJECTED") {
    return "the quote phase ends once: a quoted order (QUOTE_COMPLETED) goes on to PROCESSING, or is refused with CLOSED"
  }
  return `${from} -> ${to} skips a step: the refund phase is PROCESSING -> REFUNDED_PENDING -> REFUNDED, one step per update; from ${from} the next state is ${next[from].join(" or ")}`
}

/**
 * Whether `from -> to` is allowed.
 *
 * @since 0.1.0
 */
export const canMove = (from: RefundStatus | undefined, to: RefundStatus): boolean => refusal(from, to) === undefined
