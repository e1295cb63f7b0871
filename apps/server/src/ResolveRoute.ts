/**
 * `POST /v1/refunds/{id}/resolve`: an operator's verdict on a refund, recorded as `refundkit resolve`
 * records it (the same rules, then core's `Refunds.resolve`), over HTTP. Nothing is sent to any provider.
 *
 * A repeat of the verdict that settled the refund (the same `status` and `note`, and `releaseTargets`
 * if that verdict released its targets) is answered with the refund as it stands, changing nothing:
 * a client that lost the answer to its verdict may send it again and is told it was recorded, as a
 * PUT would be. Any other verdict on a final refund is 409, as the CLI refuses it.
 *
 * The check and the verdict run in the refund's turn (`Ledger.serialise`, the one `Refunds.update`
 * takes), so two verdicts on one refund through any gateways sharing the ledger are decided one after
 * the other: a retry sent while the first attempt is still running waits for it and is then its repeat.
 * Core's `resolve` accepts a final refund settled again to the same status (a second operator event),
 * so without the turn both would be recorded.
 *
 * @since 0.6.0
 */
import { ApiError, ApiModel } from "@refundkit/api"
import type { Refund, RefundEvent } from "@refundkit/core/Refund"
import * as RefundError from "@refundkit/core/RefundError"
import type { Providers } from "@refundkit/core/Providers"
import type { Refunds } from "@refundkit/core/Refunds"
import * as RefundStatus from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as ApiErrors from "./ApiErrors.js"

const decodeVerdict = Schema.decodeUnknownEither(ApiModel.ResolveRefund, { errors: "all", onExcessProperty: "error" })

/**
 * Why a verdict is answered with an error.
 *
 * @since 0.6.0
 */
export type ResolveError =
  | ApiError.InvalidRequest
  | ApiError.RefundNotFound
  | ApiError.IllegalTransition
  | ApiError.LedgerUnavailable

/**
 * What a verdict did: `repeated` when it repeated the one that settled the refund, and changed nothing.
 *
 * @since 0.6.0
 */
export interface Resolved {
  readonly refund: Refund
  readonly repeated: boolean
}

/**
 * The header of an answer that repeats the verdict already recorded (nothing changed), as a replayed
 * create is marked.
 *
 * @since 0.6.0
 */
export const repeatedHeaders: Readonly<Record<string, string>> = { "idempotent-replayed": "true" }

// Core's own InvalidRequest message speaks of a refund request not sent; a verdict is not one.
const invalid = (issues: ReadonlyArray<RefundError.FieldIssue>): ApiError.InvalidRequest =>
  new ApiError.InvalidRequest({ message: `The verdict is invalid: ${RefundError.describeIssues(issues)}. Nothing was changed.`, issues })

/**
 * The body as a verdict, or 400 `invalid_request` naming each field and its rule (an unknown
 * field included: a misspelt `releaseTargets` must not be a verdict that keeps the targets held).
 *
 * @since 0.6.0
 */
export const decode = (body: unknown): Either.Either<ApiModel.ResolveRefund, ApiError.InvalidRequest> =>
  Either.mapLeft(decodeVerdict(body), (error) => invalid(RefundError.InvalidRequest.fromParseError(error).issues))

// The history's text of a verdict, as the CLI records it (`operator: <note>`).
const detailOf = (note: string): string => `operator: ${note.trim()}`

/**
 * The operator event that settled `refund`, if an operator's verdict did: the last accepted
 * operator event, when no accepted event after it moved the refund elsewhere.
 */
const settlingVerdict = (refund: Refund): RefundEvent | undefined => {
  for (let i = refund.events.length - 1; i >= 0; i--) {
    const event = refund.events[i]!
    if (!event.accepted) continue
    if (event.source === "operator") return event.to === refund.status ? event : undefined
    if (event.to !== refund.status) return undefined
  }
  return undefined
}

/**
 * Whether `verdict` is the one that settled `refund`. Core records a release as the note followed by
 * ` (targets released: …)` (`Refunds.resolve`); a verdict that asked for the release matches either
 * form, since a release of a refund that held nothing records the note alone.
 */
const repeats = (refund: Refund, verdict: ApiModel.ResolveRefund, canonical: (target: string) => string): boolean => {
  const settled = settlingVerdict(refund)
  if (settled === undefined || settled.to !== verdict.status || settled.detail === undefined) return false
  const detail = detailOf(verdict.note)
  if (verdict.failedTargets !== undefined) {
    // Core records the targets as the refund names them, in its order: the verdict's, read the same way.
    const named = new Set(verdict.failedTargets.map((given) => refund.targets.some((t) => t.target === given) ? given : canonical(given)))
    const recorded = [...new Set(refund.targets.map((t) => t.target))].filter((target) => named.has(target))
    return settled.detail === `${detail} (failed targets, not refunded by ${refund.provider}: ${recorded.join(", ")})`
  }
  if (settled.detail === detail) return true
  return verdict.releaseTargets === true && settled.detail.startsWith(`${detail} (targets released: `)
}

/**
 * How a provider's plugin reads a caller's spelling of a target (`Provider.canonicalTarget`): a verdict's
 * `failedTargets` is compared with what core recorded in the refund's spelling.
 *
 * @since 0.6.0
 */
export type Canonical = (provider: string) => Effect.Effect<(target: string) => string>

/**
 * {@link Canonical} from the installed plugins; a provider not installed reads targets as written.
 *
 * @since 0.6.0
 */
export const canonicalIn = (registry: Providers["Type"]): Canonical => (provider) =>
  registry.get(provider).pipe(
    Effect.map((plugin) => (target: string) => plugin.canonicalTarget(target)),
    Effect.orElseSucceed(() => (target: string) => target)
  )

const refused = (refund: Refund, to: string, message: string): ApiError.IllegalTransition =>
  new ApiError.IllegalTransition({ message, refundId: refund.id, from: refund.status, to })

/**
 * The CLI's refusal of a verdict on a final refund (`refundkit resolve`): core lets a refund stay in its
 * status (a provider may repeat itself), so it would take a second verdict on a final refund as one more
 * event. The one change a final refund takes is the release of targets its provider keeps a failed refund on.
 */
const finalRefusal = (refund: Refund, verdict: ApiModel.ResolveRefund): ApiError.IllegalTransition => {
  const held = refund.status === "failed" && refund.holdsTarget === true
  if (verdict.releaseTargets === true && refund.status === "failed") {
    return refused(refund, verdict.status, `Refund ${refund.id} is failed and holds no target to release: nothing was changed.`)
  }
  const settled = settlingVerdict(refund)
  const hint = held
    ? ` It still holds its targets (${refund.provider} keeps it on them); if ${refund.provider} has told you it will take a new refund of them, ` +
      `send {"status": "failed", "releaseTargets": true, "note": "..."}.`
    : settled !== undefined
    ? ` An operator settled it ${settled.to} at ${settled.at}; only a repeat of that verdict (the same status and note) is answered with the refund.`
    : ""
  return refused(refund, verdict.status, `Refund ${refund.id} is already ${refund.status}, which is final: nothing was changed.${hint}`)
}

/**
 * Core's refusals of the verdict (a refund still `requested`; `failed` for a refund whose items show a
 * target the provider refunded) are the refund's state, not the body: 409 from the status it is in now.
 */
const fromCoreError = (service: Refunds["Type"], id: string, verdict: ApiModel.ResolveRefund) =>
(
  error: RefundError.RefundNotFound | RefundError.LedgerError | RefundError.IllegalTransition | RefundError.InvalidRequest | RefundError.OverRefund | RefundError.TargetAlreadyRefunded
): Effect.Effect<never, ResolveError> => {
  // A correction taking targets back is refused so; this route sends no correction, and answers one as the refund's state if it ever does.
  if (error._tag === "OverRefund" || error._tag === "TargetAlreadyRefunded") {
    return service.get(id).pipe(Effect.mapError(ApiErrors.fromRefundError), Effect.flatMap((now) => Effect.fail(refused(now, verdict.status, error.message))))
  }
  if (error._tag !== "InvalidRequest") return Effect.fail(ApiErrors.fromRefundError(error))
  // The body named something the refund does not have (a target not its own, one the provider refunded): the field is wrong, not the state.
  if (error.issues.every((issue) => issue.path === "releaseTargets" || issue.path === "failedTargets")) return Effect.fail(invalid(error.issues))
  const message = `The verdict was refused: ${error.issues.map((issue) => issue.message).join(" ")} Nothing was changed.`
  return service.get(id).pipe(
    Effect.mapError(ApiErrors.fromRefundError),
    Effect.flatMap((now) => Effect.fail(refused(now, verdict.status, message)))
  )
}

/**
 * Records `verdict` on refund `id` through core's `Refunds.resolve`, in the refund's turn, after the
 * checks `refundkit resolve` makes first: 404 for no such refund; 409 for a final refund, unless the
 * verdict repeats the one that settled it (then the refund, `repeated`) or releases the targets of a
 * failed refund its provider holds on them; core's refusals as 409 too. Logs the verdict (refund id,
 * status) at info.
 *
 * @since 0.6.0
 */
export const resolve = (
  service: Refunds["Type"],
  id: string,
  verdict: ApiModel.ResolveRefund,
  canonical: Canonical = () => Effect.succeed((target) => target)
): Effect.Effect<Resolved, ResolveError> =>
  decideAndRecord(service, id, verdict, canonical)

// A final refund is answered here (a repeat, or 409) without asking core; core's `resolve` decides in the
// refund's turn, so of two verdicts sent at once the second finds the first's final status and is refused
// there (IllegalTransition), then answered as a repeat of it or a 409, from the refund as it now stands.
const decideAndRecord = (service: Refunds["Type"], id: string, verdict: ApiModel.ResolveRefund, canonical: Canonical): Effect.Effect<Resolved, ResolveError> =>
  Effect.gen(function*() {
    const current = yield* Effect.mapError(service.get(id), ApiErrors.fromRefundError)
    const release = verdict.releaseTargets === true
    const annotations = { refundId: id, status: verdict.status }
    const settled = (refund: Refund): Effect.Effect<Resolved, ResolveError> =>
      Effect.gen(function*() {
        if (!repeats(refund, verdict, yield* canonical(refund.provider))) return yield* Effect.fail(finalRefusal(refund, verdict))
        yield* Effect.logInfo(`resolve: ${id} was already settled ${refund.status} by this verdict; nothing changed`).pipe(Effect.annotateLogs(annotations))
        return { refund, repeated: true }
      })
    if (RefundStatus.isFinal(current.status) && !(release && current.status === "failed" && current.holdsTarget === true)) {
      return yield* settled(current)
    }
    const outcome: Resolved = yield* service.resolve(id, verdict.status, detailOf(verdict.note), {
      releaseTargets: release,
      ...(verdict.failedTargets === undefined ? {} : { failedTargets: verdict.failedTargets })
    }).pipe(
      Effect.map((refund): Resolved => ({ refund, repeated: false })),
      Effect.catchAll((error): Effect.Effect<Resolved, ResolveError> =>
        error._tag === "IllegalTransition"
          ? Effect.flatMap(Effect.mapError(service.get(id), ApiErrors.fromRefundError), settled)
          : fromCoreError(service, id, verdict)(error)
      )
    )
    if (outcome.repeated) return outcome
    const refund = outcome.refund
    const released = release && current.holdsTarget === true
    yield* Effect.logInfo(`resolve: operator verdict recorded on ${id}: ${verdict.status}${released ? " (targets released)" : ""}`).pipe(
      Effect.annotateLogs(annotations)
    )
    return { refund, repeated: false }
  })
