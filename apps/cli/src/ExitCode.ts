/**
 * The process exit codes of every command, and how an error maps to one. Scripts
 * branch on these, so they never change meaning.
 *
 * @since 0.1.0
 */
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
 * is in doubt when it was a submit's (it names the refund, now `unknown`); a status
 * query's or a lookup's recorded nothing and is a provider failure.
 *
 * @since 0.1.0
 */
export const ofError = (error: { readonly code: string; readonly status?: RefundStatus | undefined; readonly refundId?: string | undefined }): ExitCode =>
  usageCodes.has(error.code)
    ? usage
    : inDoubtCodes.has(error.code) || error.status === "unknown" || (error.code === "unexpected_response" && error.refundId !== undefined)
    ? inDoubt
    : failure

/**
 * The exit code for a refund a command printed: `unknown` (or still `requested`) is in
 * doubt; a failure that was not the provider's decline is a provider failure.
 *
 * @since 0.1.0
 */
export const ofRefund = (refund: Refund): ExitCode => {
  if (refund.status === "unknown" || refund.status === "requested") return inDoubt
  if (refund.status === "failed" && refund.error !== undefined && refund.error.code !== "provider_declined") return failure
  return ok
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
