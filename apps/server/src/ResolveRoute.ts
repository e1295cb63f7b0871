/**
 * `POST /v1/refunds/{id}/resolve`: an operator's verdict on a refund, recorded as `refundkit resolve`
 * records it (the same rules, then core's `Refunds.resolve`), over HTTP. Nothing is sent to any provider.
 *
 * A repeat of the verdict that settled the refund (the same `status`, `note`, `releaseTargets`,
 * `failedTargets` and `correct`, read from the verdict its event records, core's `RefundEvent.verdict`) is
 * answered with the refund as it stands, changing nothing: a client that lost the answer to its verdict may
 * send it again and is told it was recorded, as a PUT would be. Any other verdict on a final refund is 409, as the CLI refuses
 * it, unless it corrects (`correct`) a final status an operator's verdict set, as `refundkit resolve --correct`.
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
import { correctionOpening, setterOf } from "@refundkit/core/Ledger"
import type { Refund, RefundEvent } from "@refundkit/core/Refund"
import * as RefundError from "@refundkit/core/RefundError"
import type { Providers } from "@refundkit/core/Providers"
import * as Refunds from "@refundkit/core/Refunds"
import * as RefundStatus from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as ApiErrors from "./ApiErrors.js"
import * as TargetsTaken from "./TargetsTaken.js"

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
  | ApiError.TargetAlreadyRefunded
  | ApiError.OverRefund
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


/**
 * The operator event that settled `refund`, if an operator's verdict did, with its place in the history:
 * the last accepted operator event, when no accepted event after it moved the refund elsewhere.
 */
const settlingVerdict = (refund: Refund): { readonly event: RefundEvent; readonly index: number } | undefined => {
  for (let i = refund.events.length - 1; i >= 0; i--) {
    const event = refund.events[i]!
    if (!event.accepted) continue
    if (event.source === "operator") return event.to === refund.status ? { event, index: i } : undefined
    if (event.to !== refund.status) return undefined
  }
  return undefined
}

/**
 * What the ledger writes before a correction's own detail (`Ledger.correctionOpening`), when the event at
 * `index` is a correction: only a correction moves a final refund to the other final status. `<when>` is the corrected verdict's time, the status's setter
 * just before it.
 */
const correctionPrefix = (refund: Refund, index: number): string | undefined => {
  const event = refund.events[index]!
  if (event.from === null || !RefundStatus.isFinal(event.from) || !RefundStatus.isFinal(event.to) || event.from === event.to) return undefined
  const corrected = setterOf({ ...refund, events: refund.events.slice(0, index) })
  return corrected === undefined ? undefined : `${correctionOpening(event.from, corrected.at)}: `
}

// A verdict's failedTargets as core records them (`Refunds.resolve`): as the refund names them, each once, in its order.
const failedTargetsOf = (refund: Refund, verdict: ApiModel.ResolveRefund, canonical: (target: string) => string): ReadonlyArray<string> => {
  const named = new Set((verdict.failedTargets ?? []).map((given) => refund.targets.some((t) => t.target === given) ? given : canonical(given)))
  return [...new Set(refund.targets.map((t) => t.target))].filter((target) => named.has(target))
}

/**
 * Whether `verdict` is the one that settled `refund`: the same status, and every field the same as the
 * verdict its event records (`RefundEvent.verdict`), an absent flag as `false`. A correction is repeated
 * by a correction only, and a plain verdict by a plain one: a verdict without `correct` that happens to
 * match a correction's note was not the request that made it. An event recorded before the ledger kept
 * verdicts (a SQL ledger before its migration 16) has only its words, read as they were then.
 */
const repeats = (refund: Refund, verdict: ApiModel.ResolveRefund, canonical: (target: string) => string): boolean => {
  const settled = settlingVerdict(refund)
  if (settled === undefined || settled.event.to !== verdict.status) return false
  const recorded = settled.event.verdict
  if (recorded === undefined) return repeatsInWords(refund, settled.index, verdict, canonical)
  const failedTargets = failedTargetsOf(refund, verdict, canonical)
  return recorded.note === Refunds.operatorNote(verdict.note) &&
    recorded.releaseTargets === (verdict.releaseTargets === true) &&
    recorded.correct === (verdict.correct === true) &&
    recorded.failedTargets.length === failedTargets.length &&
    recorded.failedTargets.every((target, i) => target === failedTargets[i])
}

/**
 * {@link repeats} for an event without a verdict record, from the words of its detail as core wrote them before it
 * kept one: a release is the note followed by ` (targets released: …)`, which a verdict that asked for the release
 * matches either way, since a release of a refund that held nothing records the note alone; failed targets follow
 * the note as ` (failed targets, not refunded by <provider>: …)`; a correction opens with `Ledger.correctionOpening`.
 */
const repeatsInWords = (refund: Refund, index: number, verdict: ApiModel.ResolveRefund, canonical: (target: string) => string): boolean => {
  const detailText = refund.events[index]!.detail
  if (detailText === undefined) return false
  const prefix = correctionPrefix(refund, index)
  if ((verdict.correct === true) !== (prefix !== undefined)) return false
  if (prefix !== undefined && !detailText.startsWith(prefix)) return false
  const recorded = detailText.slice(prefix?.length ?? 0)
  const detail = Refunds.operatorNote(verdict.note)
  if (verdict.failedTargets !== undefined) {
    return recorded === `${detail} (failed targets, not refunded by ${refund.provider}: ${failedTargetsOf(refund, verdict, canonical).join(", ")})`
  }
  if (recorded === detail) return true
  return verdict.releaseTargets === true && recorded.startsWith(`${detail} (targets released: `)
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
  const settled = settlingVerdict(refund)?.event
  // The other final status in place of a verdict recorded by hand is a correction, which is asked for in so many words.
  const correction = Refunds.correctionRefusal(refund, verdict.status) === undefined
    ? ` If that verdict was wrong, correct it in so many words: send {"status": "${verdict.status}", "correct": true, "note": "..."}.`
    : ""
  const hint = held
    ? ` It still holds its targets (${refund.provider} keeps it on them); if ${refund.provider} has told you it will take a new refund of them, ` +
      `send {"status": "failed", "releaseTargets": true, "note": "..."}.`
    : settled !== undefined
    ? ` An operator settled it ${settled.to} at ${settled.at}; only a repeat of that verdict (the same status, note, releaseTargets, failedTargets and correct) is answered with the refund.${correction}`
    : ""
  return refused(refund, verdict.status, `Refund ${refund.id} is already ${refund.status}, which is final: nothing was changed.${hint}`)
}

/**
 * Core's refusal of a correction (`InvalidRequest` on `correct`), read against the refund as it stands now:
 * a final status the provider set refuses any correction (409, the refund's state), while a refund with no
 * verdict to correct (not final) or one already in the status asked for makes `correct` the wrong field
 * (400 naming it; without `correct`, the first is a verdict like any other).
 */
const correctionRefused = (now: Refund, verdict: ApiModel.ResolveRefund, error: RefundError.InvalidRequest): ApiError.InvalidRequest | ApiError.IllegalTransition =>
  Refunds.correctionRefusal(now, verdict.status)?.reason === "set_by_provider"
    ? refused(now, verdict.status, `The correction was refused: ${error.issues.map((issue) => issue.message).join(" ")}. Nothing was changed.`)
    : invalid(error.issues)

/**
 * Core's refusals of the verdict (a refund still `requested`; `failed` for a refund whose items show a
 * target the provider refunded) are the refund's state, not the body: 409 from the status it is in now.
 * A correction's targets taken back are answered as `TargetsTaken.answer` words it.
 */
const fromCoreError = (service: Refunds.Refunds["Type"], id: string, provider: string, verdict: ApiModel.ResolveRefund) =>
(
  error: RefundError.RefundNotFound | RefundError.LedgerError | RefundError.IllegalTransition | RefundError.InvalidRequest | RefundError.OverRefund | RefundError.TargetAlreadyRefunded
): Effect.Effect<never, ResolveError> => {
  if (error._tag === "OverRefund" || error._tag === "TargetAlreadyRefunded") {
    return Effect.fail(TargetsTaken.answer(id, provider, error, { refused: "be corrected to succeeded", both: "Recording both as refunded", request: "correction" }))
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
 * verdict repeats the one that settled it (then the refund, `repeated`), releases the targets of a
 * failed refund its provider holds on them, or corrects (`correct`) a final status an operator's verdict
 * set; core's refusals as 409 too, but a `correct` that does not fit the refund (400 naming it) and a
 * correction's targets held by another refund (409 `target_already_refunded` or `over_refund`). Logs the
 * verdict (refund id, status) at info.
 *
 * @since 0.6.0
 */
export const resolve = (
  service: Refunds.Refunds["Type"],
  id: string,
  verdict: ApiModel.ResolveRefund,
  canonical: Canonical = () => Effect.succeed((target) => target)
): Effect.Effect<Resolved, ResolveError> =>
  decideAndRecord(service, id, verdict, canonical)

// A final refund is answered here (a repeat, or 409) without asking core, unless the verdict is a correction,
// which core decides; core's `resolve` decides in the refund's turn, so of two verdicts sent at once the second
// finds the first's final status and is refused there (IllegalTransition, or for a correction InvalidRequest on
// `correct`: already in that status), then answered as a repeat of it, or refused, from the refund as it now stands.
const decideAndRecord = (service: Refunds.Refunds["Type"], id: string, verdict: ApiModel.ResolveRefund, canonical: Canonical): Effect.Effect<Resolved, ResolveError> =>
  Effect.gen(function*() {
    const current = yield* Effect.mapError(service.get(id), ApiErrors.fromRefundError)
    const release = verdict.releaseTargets === true
    const correct = verdict.correct === true
    const annotations = { refundId: id, status: verdict.status }
    const repeated = (refund: Refund): Effect.Effect<Resolved | undefined> =>
      Effect.gen(function*() {
        if (!repeats(refund, verdict, yield* canonical(refund.provider))) return undefined
        yield* Effect.logInfo(`resolve: ${id} was already settled ${refund.status} by this verdict; nothing changed`).pipe(Effect.annotateLogs(annotations))
        return { refund, repeated: true }
      })
    const settled = (refund: Refund, refusal: ResolveError): Effect.Effect<Resolved, ResolveError> =>
      Effect.flatMap(repeated(refund), (outcome) => outcome === undefined ? Effect.fail(refusal) : Effect.succeed(outcome))
    // Read again once core has refused: a repeat recorded meanwhile (the same verdict sent twice at once) is answered as one.
    const settledNow = (refusal: (now: Refund) => ResolveError) =>
      Effect.flatMap(Effect.mapError(service.get(id), ApiErrors.fromRefundError), (now) => settled(now, refusal(now)))
    if (correct) {
      const before = yield* repeated(current)
      if (before !== undefined) return before
    } else if (RefundStatus.isFinal(current.status) && !(release && current.status === "failed" && current.holdsTarget === true)) {
      return yield* settled(current, finalRefusal(current, verdict))
    }
    const outcome: Resolved = yield* service.resolve(id, verdict.status, Refunds.operatorNote(verdict.note), {
      releaseTargets: release,
      correct,
      ...(verdict.failedTargets === undefined ? {} : { failedTargets: verdict.failedTargets })
    }).pipe(
      Effect.map((refund): Resolved => ({ refund, repeated: false })),
      Effect.catchAll((error): Effect.Effect<Resolved, ResolveError> =>
        error._tag === "IllegalTransition"
          ? settledNow((now) => correct ? refused(now, verdict.status, error.message) : finalRefusal(now, verdict))
          : correct && error._tag === "InvalidRequest" && error.issues.some((issue) => issue.path === "correct")
          ? settledNow((now) => correctionRefused(now, verdict, error))
          : fromCoreError(service, id, current.provider, verdict)(error)
      )
    )
    if (outcome.repeated) return outcome
    const refund = outcome.refund
    const released = release && current.holdsTarget === true
    const what = correct ? ` (corrects ${current.status})` : released ? " (targets released)" : ""
    yield* Effect.logInfo(`resolve: operator verdict recorded on ${id}: ${verdict.status}${what}`).pipe(Effect.annotateLogs(annotations))
    return { refund, repeated: false }
  })
