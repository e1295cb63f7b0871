/**
 * The process exit codes of every command, and how an error maps to one. Scripts
 * branch on these, so they never change meaning.
 *
 * @since 0.1.0
 */
import { isVerdict, setterOf } from "@refundkit/core/Ledger"
import type { Refund } from "@refundkit/core/Refund"
import type { RefundStatus } from "@refundkit/core/RefundStatus"

/**
 * A process exit code.
 *
 * @since 0.1.0
 */
export type ExitCode = 0 | 1 | 2 | 3

/**
 * The command did what was asked. A refund the provider declined is still a recorded
 * refund: it exits 0 with status `failed` shown.
 *
 * @since 0.1.0
 */
export const ok: ExitCode = 0

/**
 * A provider or the ledger failed.
 *
 * @since 0.1.0
 */
export const failure: ExitCode = 1

/**
 * Invalid input or usage: nothing was sent to a provider.
 *
 * @since 0.1.0
 */
export const usage: ExitCode = 2

/**
 * The outcome is unknown: the request may or may not have reached the provider.
 *
 * @since 0.1.0
 */
export const inDoubt: ExitCode = 3

/** Error codes where the caller has to fix the input; nothing reached a provider. */
const usageCodes: ReadonlySet<string> = new Set([
  "usage_error",
  "invalid_request",
  "unknown_provider",
  "idempotency_key_reused",
  "over_refund",
  "target_already_refunded",
  "refund_not_found",
  "unsupported_operation",
  "configuration_error"
])

/** Error codes that leave the outcome at the provider in doubt. */
const inDoubtCodes: ReadonlySet<string> = new Set(["outcome_unknown", "refund_in_progress"])

/**
 * The exit code for an error, by its stable code. A provider failure that left the
 * refund `unknown` is in doubt, not a plain failure. An answer refundkit could not read
 * is in doubt when it was a submit's (it names the refund, now `unknown`) or an update's
 * (it names the refund, which keeps its status: the provider may have applied it); a
 * status query's or a lookup's recorded nothing and is a provider failure. A provider that was
 * unavailable after a call about a refund may have been processed (`maybeProcessed`: an
 * update whose answer was lost, or met a 500 on every retry) leaves that call in doubt
 * although the refund keeps its status.
 *
 * @since 0.1.0
 */
export const ofError = (error: {
  readonly code: string
  readonly status?: RefundStatus | undefined
  readonly refundId?: string | undefined
  readonly maybeProcessed?: boolean | undefined
}): ExitCode =>
  usageCodes.has(error.code)
    ? usage
    : inDoubtCodes.has(error.code) || error.status === "unknown" || (error.code === "unexpected_response" && error.refundId !== undefined) ||
        (error.code === "provider_unavailable" && error.maybeProcessed === true && error.refundId !== undefined && error.status !== "failed")
    ? inDoubt
    : failure

/**
 * The exit code for a refund a command printed: `unknown` (or still `requested`) is in
 * doubt; a failure that was not the provider's decline is a provider failure, unless an
 * operator recorded it: a refund resolved `failed` by hand is a recorded outcome, as a
 * decline is, whatever error an earlier build kept on it (core now drops an in-doubt one).
 *
 * @since 0.1.0
 */
export const ofRefund = (refund: Refund): ExitCode => {
  if (refund.status === "unknown" || refund.status === "requested") return inDoubt
  if (refund.status === "failed" && refund.error !== undefined && refund.error.code !== "provider_declined" && !isOperatorVerdict(refund)) {
    return failure
  }
  return ok
}

const isOperatorVerdict = (refund: Refund): boolean => {
  const setter = setterOf(refund)
  return setter !== undefined && isVerdict(setter)
}

/**
 * The most serious of several exit codes: in doubt, then failure, then usage, then ok.
 *
 * @since 0.1.0
 */
export const worst = (codes: Iterable<ExitCode>): ExitCode => {
  const rank: Record<ExitCode, number> = { 0: 0, 2: 1, 1: 2, 3: 3 }
  let result: ExitCode = ok
  for (const code of codes) if (rank[code] > rank[result]) result = code
  return result
}
