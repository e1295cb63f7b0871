/**
 * `POST /v1/refunds/{id}/reopen`: an operator's reopen of a final refund the provider set, recorded as
 * `refundkit reopen` records it (core's `Refunds.reopen`), over HTTP. Nothing is sent to any provider.
 *
 * A repeat of the reopen that moved the refund (the same `note`, read from the verdict its event records, core's
 * `RefundEvent.verdict` with `reopen: true`), while nothing has moved the refund since, is answered with the refund
 * as it stands, changing nothing: a client that lost the answer may send it again. The reopen runs in the refund's
 * turn (core's `reopen` takes it), so of two sent at once the second finds the refund reopened and is answered
 * as its repeat.
 *
 * @since 0.6.0
 */
import { ApiError, ApiModel } from "@refundkit/api"
import { isReopenEvent } from "@refundkit/core/Ledger"
import type { Refund } from "@refundkit/core/Refund"
import * as RefundError from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as ApiErrors from "./ApiErrors.js"
import * as TargetsTaken from "./TargetsTaken.js"
import type { ResolveError, Resolved } from "./ResolveRoute.js"

const decodeReopen = Schema.decodeUnknownEither(ApiModel.ReopenRefund, { errors: "all", onExcessProperty: "error" })

/**
 * Why a reopen is answered with an error: as a verdict is, by the same rules of the refund's state.
 *
 * @since 0.6.0
 */
export type ReopenError = ResolveError

const invalid = (issues: ReadonlyArray<RefundError.FieldIssue>): ApiError.InvalidRequest =>
  new ApiError.InvalidRequest({ message: `The reopen is invalid: ${RefundError.describeIssues(issues)}. Nothing was changed.`, issues })

/**
 * The body as a reopen, or 400 `invalid_request` naming each field and its rule (an unknown field included).
 *
 * @since 0.6.0
 */
export const decode = (body: unknown): Either.Either<ApiModel.ReopenRefund, ApiError.InvalidRequest> =>
  Either.mapLeft(decodeReopen(body), (error) => invalid(RefundError.InvalidRequest.fromParseError(error).issues))


/**
 * Whether `note` is the reopen that moved `refund` to where it stands: its last status change is an operator's
 * reopen (`isReopenEvent`) recording that note, and nothing has moved the refund since.
 */
const repeats = (refund: Refund, note: string): boolean => {
  for (let i = refund.events.length - 1; i >= 0; i--) {
    const event = refund.events[i]!
    if (!event.accepted || event.from === event.to) continue
    return isReopenEvent(event) && event.to === refund.status && event.verdict?.note === Refunds.operatorNote(note)
  }
  return false
}

const refused = (refund: Refund, message: string): ApiError.IllegalTransition =>
  new ApiError.IllegalTransition({ message, refundId: refund.id, from: refund.status, to: "requires_action" })

// Core's refusal as data (`Refunds.reopenRefusal`), worded with the route to use instead.
const refusalOf = (refund: Refund, refusal: Refunds.ReopenRefusal): ApiError.IllegalTransition => {
  switch (refusal.reason) {
    case "not_final":
      return refused(
        refund,
        `Refund ${refund.id} is ${refusal.status}, which is not final: there is nothing to reopen, and nothing was changed. ` +
          `Record its outcome instead: POST /v1/refunds/${refund.id}/resolve with {"status": "succeeded" | "failed", "note": "..."}.`
      )
    case "set_by_operator": {
      const other = refusal.status === "succeeded" ? "failed" : "succeeded"
      return refused(
        refund,
        `Refund ${refund.id} is ${refusal.status} by an operator's verdict recorded at ${refusal.at}, not by ${refund.provider}: nothing was changed. ` +
          `A verdict recorded by hand is corrected, not reopened: POST /v1/refunds/${refund.id}/resolve with {"status": "${other}", "correct": true, "note": "..."}.`
      )
    }
  }
}

/**
 * Records the reopen of refund `id` through core's `Refunds.reopen`: 404 for no such refund; the refund, `repeated`,
 * for a repeat of the reopen that moved it; 409 `illegal_transition` for a refund not final or final by an operator's
 * verdict (as `Refunds.reopenRefusal` says, read again after core refused it: a reopen recorded meanwhile is a
 * repeat); 409 `target_already_refunded` or `over_refund` for a reopened `failed` whose target a refund made since
 * holds. Logs the reopen (refund id) at info.
 *
 * @since 0.6.0
 */
export const reopen = (service: Refunds.Refunds["Type"], id: string, body: ApiModel.ReopenRefund): Effect.Effect<Resolved, ReopenError> =>
  Effect.gen(function*() {
    const current = yield* Effect.mapError(service.get(id), ApiErrors.fromRefundError)
    const annotations = { refundId: id }
    const settled = (refund: Refund): Effect.Effect<Resolved, ReopenError> => {
      if (repeats(refund, body.note)) {
        return Effect.as(
          Effect.logInfo(`reopen: ${id} was already reopened by this request; nothing changed`).pipe(Effect.annotateLogs(annotations)),
          { refund, repeated: true }
        )
      }
      const refusal = Refunds.reopenRefusal(refund)
      return Effect.fail(refusal === undefined ? refused(refund, `Refund ${id} was not reopened. Nothing was changed.`) : refusalOf(refund, refusal))
    }
    if (Refunds.reopenRefusal(current) !== undefined) return yield* settled(current)
    const outcome: Resolved = yield* service.reopen(id, Refunds.operatorNote(body.note)).pipe(
      Effect.map((refund): Resolved => ({ refund, repeated: false })),
      Effect.catchAll((error): Effect.Effect<Resolved, ReopenError> =>
        error._tag === "TargetAlreadyRefunded" || error._tag === "OverRefund"
          ? Effect.fail(TargetsTaken.answer(id, current.provider, error, { refused: "be reopened", both: "Holding both", request: "reopen" }))
          : error._tag === "InvalidRequest" && error.issues.every((issue) => issue.path === "note")
          ? Effect.fail(invalid(error.issues))
          : error._tag === "InvalidRequest" || error._tag === "IllegalTransition"
          // Moved since the read above (the same reopen sent twice at once, a verdict, a sync): answered from the refund as it stands.
          ? Effect.flatMap(Effect.mapError(service.get(id), ApiErrors.fromRefundError), settled)
          : Effect.fail(ApiErrors.fromRefundError(error))
      )
    )
    if (!outcome.repeated) yield* Effect.logInfo(`reopen: operator reopened ${id} from ${current.status}`).pipe(Effect.annotateLogs(annotations))
    return outcome
  })
