/**
 * What `refundkit create` answers when its idempotency key was used before: the refund, or the
 * error its first run was answered with, while the refund still stands where that answer left it.
 * The rule is core's `Refunds.replayedError`, which the gateway's replay follows too: printing the
 * refund after a first run that printed a 502's error made `--json` change shape between two runs
 * of one command, and a script that retries on an error took the second for a refund made.
 *
 * @since 0.6.0
 */
import type { Refund } from "@refundkit/core/Refund"
import * as Refunds from "@refundkit/core/Refunds"
import { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Schema from "effect/Schema"

/**
 * The error a create's first run ended with, answered again by a re-run under its key. It is
 * printed, and exits, as that first run's did: the same code, message and refund, and the
 * refund's status, which decides the exit code (`ExitCode.ofError`).
 *
 * @since 0.6.0
 */
export class ReplayedError extends Schema.TaggedError<ReplayedError>("ReplayedError")("ReplayedError", {
  code: Schema.String,
  message: Schema.String,
  refundId: Schema.String,
  status: RefundStatus
}) {}

/**
 * The error a create replayed under its key answers with, or `undefined` when the replay is the
 * refund as it is now (it has moved on since, or its first run was answered with the refund).
 *
 * @since 0.6.0
 */
export const errorOf = (refund: Refund): ReplayedError | undefined => {
  const recorded = Refunds.replayedError(refund)
  return recorded === undefined ? undefined : new ReplayedError({ code: recorded.code, message: recorded.message, refundId: refund.id, status: refund.status })
}

/**
 * The note said on stderr before a replayed error, so that a person does not take it for a new
 * attempt that failed again.
 *
 * @since 0.6.0
 */
export const note = (idempotencyKey: string, refund: Refund): string =>
  `Replay of idempotency key ${idempotencyKey} (refund ${refund.id}): its first run ended with the error below, and the refund is still ${refund.status}, ` +
  `as that left it; nothing was sent again.`
