/**
 * The 409 for an operator's request that takes a failed refund's targets back (a correction to `succeeded`, a
 * reopen: core's `Ledger.reclaim`) while a refund made since it stood failed holds one: answered as a create
 * refused so is (`target_already_refunded` naming the holder, or `over_refund`), in the request's own words.
 *
 * @since 0.6.0
 */
import { ApiError } from "@refundkit/api"
import type * as RefundError from "@refundkit/core/RefundError"

/**
 * How a request is named in the answer: what it could not do (`Refund <id> cannot <refused>`), what holding both
 * refunds would be (`<both> would count the target refunded twice`), and what to send again.
 *
 * @since 0.6.0
 */
export interface Words {
  readonly refused: string
  readonly both: string
  readonly request: string
}

/**
 * The answer for `error`, core's refusal of refund `id`'s request.
 *
 * @since 0.6.0
 */
export const answer = (
  id: string,
  provider: string,
  error: RefundError.TargetAlreadyRefunded | RefundError.OverRefund,
  words: Words
): ApiError.TargetAlreadyRefunded | ApiError.OverRefund => {
  const cannot = `Refund ${id} cannot ${words.refused}`
  if (error._tag === "TargetAlreadyRefunded") {
    return new ApiError.TargetAlreadyRefunded({
      message: `${cannot}: its target ${error.target} is held by refund ${error.refundId} (status ${error.status}), made while ${id} stood failed. Nothing was changed. ` +
        `${words.both} would count ${error.target} refunded twice: check ${error.refundId} with ${provider} first, and if ${provider} did not make it, ` +
        `record that on it (POST /v1/refunds/${error.refundId}/resolve), then send this ${words.request} again.`,
      target: error.target,
      refundId: error.refundId,
      status: error.status
    })
  }
  const why = error.blockedBy === undefined
    ? `with the refunds made against ${error.target} while it stood failed it would exceed the original amount (${error.remaining} ${error.currency} left)`
    : `its ${error.requested} ${error.currency} against ${error.target} cannot be checked against the original amount: refund ${error.blockedBy.refundId} against it ${error.blockedBy.reason}`
  return new ApiError.OverRefund({
    message: `${cannot}: ${why}. Nothing was changed. Check the other refunds of ${error.target} with ${provider} ` +
      `(GET /v1/refunds?provider=${provider}&target=${encodeURIComponent(error.target)}), record any ${provider} did not make as failed, then send this ${words.request} again.`,
    target: error.target,
    requested: error.requested,
    remaining: error.remaining,
    currency: error.currency,
    ...(error.blockedBy === undefined ? {} : { blockedBy: error.blockedBy })
  })
}
