/**
 * The orchestration: decode -> claim the idempotency key -> record `requested` ->
 * call the provider under a timeout and a retry schedule (retrying only where a
 * repeat cannot refund twice) -> record the outcome. Also sync, webhooks,
 * follow-up updates and crash recovery.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as RateLimiter from "effect/RateLimiter"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import {
  type GuardError,
  isVerdict,
  Ledger,
  notSentCode,
  providerDecided,
  recoveryOf,
  isReopenEvent,
  reopening,
  repeatedCallback,
  repeatReason,
  repeatsSettled,
  setterOf,
  setterWords,
  wholeTargets,
  type Change,
  type ListQuery,
  type Page
} from "./Ledger.js"
import * as CallSlots from "./internal/callSlots.js"
import { beatsPerLease, beatsUnleased, keepInFlightAlive } from "./internal/inFlightLeases.js"
import * as Money from "./Money.js"
import { type Outcome, type Prepared, type Provider, storableEvent, type WebhookRequest } from "./Provider.js"
import { Providers } from "./Providers.js"
import { deriveId, fingerprint, type EventSource, type Refund, type RefundEvent, type RefundItem, type RefundTarget } from "./Refund.js"
import {
  IdempotencyKeyReused,
  IllegalTransition,
  InvalidRequest,
  LedgerError,
  OutcomeUnknown,
  OverRefund,
  TargetAlreadyRefunded,
  ProviderAuthFailed,
  ProviderDeclined,
  ProviderUnavailable,
  RefundInProgress,
  RefundNotFound,
  toErrorInfo,
  type ErrorInfo,
  UnexpectedResponse,
  UnknownProvider,
  UnsupportedOperation,
  type ProviderError
} from "./RefundError.js"
import * as RefundStatus from "./RefundStatus.js"
import * as Settings from "./Settings.js"
import * as UpdateEvent from "./UpdateEvent.js"

/**
 * How the orchestration treats provider calls.
 *
 * @since 0.1.0
 */
export interface Options {
  /** How long one provider call may take before its outcome is `unknown`. */
  readonly callTimeout: Duration.DurationInput
  /** When to retry a retryable failure; only used where a repeat cannot refund twice. */
  readonly retrySchedule: Schedule.Schedule<unknown, ProviderError>
  /** The longest `Retry-After` honoured inside one call; longer ones end the call. */
  readonly maxRetryAfter: Duration.DurationInput
  /**
   * The longest a call may wait for the provider's rate limit before it is refused as
   * `ProviderUnavailable` (not sent, with a retry-after). Unset: wait as long as it takes,
   * which a bulk run wants and an HTTP request does not.
   */
  readonly maxRateLimitWait?: Duration.DurationInput | undefined
  /**
   * How often this process tells the ledger which of its refunds still have their first call
   * out (`Ledger.keepAlive`), each time for four of these periods, so that recovery in any
   * process sharing the ledger leaves them `requested` while their answer can still come.
   * Default 15 seconds (since 0.6.0).
   */
  readonly heartbeat?: Duration.DurationInput | undefined
}

/** How often in-flight refunds are leased when `Options.heartbeat` is unset. */
export const defaultHeartbeat: Duration.DurationInput = "15 seconds"

/**
 * `retries` retries with jittered exponential backoff from 250 ms, each wait at most 10 s
 * (uncapped, 20 retries, the most `REFUNDKIT_MAX_RETRIES` allows, would back off for about 73 hours).
 *
 * @since 0.2.0
 */
export const retryScheduleFor = (retries: number): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential("250 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")), Schedule.jittered, Schedule.intersect(Schedule.recurs(retries)))

/**
 * Defaults: 30 s per call, up to 3 retries with jittered exponential backoff from 250 ms (each wait at most 10 s).
 *
 * @since 0.1.0
 */
export const defaultOptions: Options = {
  callTimeout: "30 seconds",
  retrySchedule: retryScheduleFor(3),
  maxRetryAfter: "10 seconds"
}

/**
 * A refund to create.
 *
 * @since 0.1.0
 */
export interface CreateInput {
  readonly provider: string
  /** The provider's request, in its own field names, as plain JSON. */
  readonly request: unknown
  readonly idempotencyKey: string
  /** The original amount of each target (keyed by the target's provider id), for the over-refund guard. */
  readonly originalAmounts?: Readonly<Record<string, string>> | undefined
}

/**
 * The refund, and whether it is a replay of an earlier request with the same key.
 *
 * @since 0.1.0
 */
export interface Created {
  readonly refund: Refund
  readonly replayed: boolean
}

/**
 * Why `create` did not return a refund. Provider failures carry the refund id and the
 * status the refund was recorded with; a decline is not among them: it is a refund in
 * status `failed`.
 *
 * @since 0.1.0
 */
export type CreateError =
  | InvalidRequest
  | UnknownProvider
  | IdempotencyKeyReused
  | RefundInProgress
  | OverRefund
  | TargetAlreadyRefunded
  | LedgerError
  | ProviderUnavailable
  | ProviderAuthFailed
  | OutcomeUnknown
  | UnexpectedResponse

/**
 * The outcome of one refund in a sync sweep.
 *
 * @since 0.1.0
 */
export interface SyncResult {
  readonly refundId: string
  readonly before: RefundStatus.RefundStatus
  readonly after: RefundStatus.RefundStatus
  readonly refund?: Refund | undefined
  readonly error?: { readonly code: string; readonly message: string } | undefined
}

/**
 * What happened to one event of a webhook call.
 *
 * @since 0.1.0
 */
export interface WebhookResult {
  readonly refundId?: string | undefined
  readonly applied: boolean
  readonly reason?: string | undefined
  /**
   * Set when the event was not recorded because an identifier or status word in it carries
   * what no ledger stores (a NUL character): the other events of the callback are still
   * applied (since 0.4.0).
   */
  readonly refused?: UnexpectedResponse | undefined
}

/**
 * How `recoverOne` tells its caller it waits.
 *
 * @since 0.6.0
 */
export interface RecoverOneOptions {
  /**
   * Run once, before the first wait for a refund a live process may still hold: a caller saying
   * so keeps a bulk re-run from seeming to hang, and says nothing when the refund is taken at once.
   */
  readonly onWait?: Effect.Effect<void> | undefined
}

/**
 * What an operator's verdict (`resolve`) does with the refund's targets.
 *
 * @since 0.6.0
 */
export interface ResolveOptions {
  /**
   * With `failed`: lets go of the targets of a failed refund its provider keeps on them
   * (`Refund.holdsTarget`), so a new refund of them is no longer refused. For when the provider
   * has said it will take a new refund of the target (AeroHub reopened the order); a verdict
   * without it keeps them held, since a note typed by hand is not the provider letting go.
   * A refund its provider took back from its own `succeeded` (a reversal's `failed` word, a
   * chargeback: `Ledger.reopening`) is held so too once resolved `failed`: with `releaseTargets`
   * its targets are free for a new refund (the provider confirmed the reversal), without it they stay
   * held (the customer may have been repaid some other way), and a later `failed` with it frees them.
   * With another status it is `InvalidRequest` on `releaseTargets`.
   */
  readonly releaseTargets?: boolean | undefined
  /**
   * With `succeeded`: the targets the provider did not refund in a refund it otherwise made (an
   * Airalo request of two ICCIDs, one credited and one refused by email; an Airpay batch whose answer
   * was lost, one transaction refunded). Their items are recorded `failed` and the target guards
   * release them (`Ledger.releasedTargets`), so a new refund of them is not refused on this one's
   * account; the other targets take the verdict. A refund with no items yet (in doubt, never
   * answered) gets one per target. Each is given as the provider spells it or in any form its plugin
   * reads (`Provider.canonicalTarget`: Airpay's `"010265"`). `InvalidRequest` on `failedTargets`, nothing
   * written, when the status is not `succeeded`, when one is not a target of the refund, when the
   * provider reported it `succeeded`, or when it names every target (resolve it `failed`) (since 0.6.0).
   */
  readonly failedTargets?: ReadonlyArray<string> | undefined
  /**
   * Corrects an operator's verdict: a refund whose final status an operator recorded (the accepted
   * event that set it has source `operator`) may be resolved to the other final status. Without it a
   * final refund is refused as before, so a verdict is overturned only in so many words (a refund id
   * typed wrong does not overwrite another refund's verdict). Refused (`InvalidRequest` on `correct`)
   * for a refund that is not final, one resolved to the status it has, and one whose final status the
   * provider set: the provider's word is not corrected by hand. `failed` follows the rules of any
   * hand-made `failed`; `succeeded` takes the refund's targets back, and is refused, nothing recorded,
   * while another refund holds one of them (`TargetAlreadyRefunded` naming it, or `OverRefund`), as a
   * claim of the refund would be now: checked in the ledger's write (`Ledger.reclaim`) (since 0.6.0).
   */
  readonly correct?: boolean | undefined
}

/**
 * @since 0.1.0
 */
export class Refunds extends Context.Tag("@refundkit/core/Refunds")<Refunds, Refunds.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Refunds {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /**
     * One refund. At a rate-limited provider its key is claimed only after the call's turn of
     * the limit, as in `createMany`: a create refused for waiting longer than `maxRateLimitWait`
     * records nothing, so a retry under the same key is sent.
     */
    readonly create: (input: CreateInput) => Effect.Effect<Created, CreateError>
    /**
     * Many refunds at once (the bulk engine): each is decoded and checked against the
     * ledger (an earlier refund under its key is replayed), refunds for a provider that
     * takes several targets per call are packed into as few calls as its `combine` allows,
     * and each call's refunds are claimed just before it is sent: after its turn of the
     * provider's rate limit, so that a refund is `requested` only while its call is going
     * out. At most `concurrency` provider calls run at once (default 16): a call waiting in
     * a queue must not spend its own timeout there. Results are in input order.
     */
    readonly createMany: (
      inputs: ReadonlyArray<CreateInput>,
      options?: { readonly concurrency?: number | undefined }
    ) => Effect.Effect<ReadonlyArray<Either.Either<Created, CreateError>>>
    /**
     * A `create` for pipelines (the bulk engine's sliding window over single-target rows):
     * at most `calls` provider calls of the creates it runs are in flight at once, while
     * more creates decode, claim and record around them, so the provider's pipe stays
     * full instead of idling while each row's ledger work runs. Creates waiting for a
     * slot get one in the order they asked. A create waiting for a slot has already
     * claimed its key: if the process dies then, recovery moves that refund to `unknown`
     * although nothing was sent. The wait for a provider's rate limit comes before the
     * claim, as in `createMany`: that one can last minutes.
     */
    readonly pipeline: (options: { readonly calls: number }) => Effect.Effect<(input: CreateInput) => Effect.Effect<Created, CreateError>>
    readonly get: (id: string) => Effect.Effect<Refund, RefundNotFound | LedgerError>
    /**
     * The ledger's list; a `target` is put as its provider records it first (`Provider.canonicalTarget`:
     * Airpay's `"010265"` finds the refunds of `10265`).
     */
    readonly list: (query: ListQuery) => Effect.Effect<Page, LedgerError | InvalidRequest>
    /** Asks the provider for the refund's current status and records it. */
    readonly sync: (id: string) => Effect.Effect<Refund, RefundNotFound | LedgerError | UnknownProvider | IllegalTransition | ProviderError>
    /** Syncs every refund that needs it at providers with a status API. */
    readonly syncDue: (options: { readonly providers?: ReadonlyArray<string> | undefined; readonly limit: number }) => Effect.Effect<ReadonlyArray<SyncResult>, LedgerError>
    /** A provider follow-up on an existing refund (an AeroHub progress update). */
    readonly update: (id: string, input: unknown) => Effect.Effect<Refund, RefundNotFound | LedgerError | UnknownProvider | IllegalTransition | ProviderError>
    /**
     * Verifies and applies a provider callback; duplicates and regressions change nothing. Each event is
     * recorded with its key (`RefundEvent.callbackKey`, the plugin's `dedupeKey`) and the plugin's words
     * (`Outcome.detail`, else `callback <key>`); one whose key the refund's history records already is
     * answered `applied: false, reason: "duplicate callback"`, decided by the ledger under the lock of its
     * write, so deliveries of one callback racing each other (two gateways on one ledger) record it once.
     */
    readonly webhook: (provider: string, request: WebhookRequest) => Effect.Effect<ReadonlyArray<WebhookResult>, UnknownProvider | LedgerError | ProviderError>
    /**
     * An operator settles a refund by hand (an `unknown` one after checking with the provider).
     * Refused (InvalidRequest on `status`) while the refund is `requested` (its first call is still
     * out, and its answer settles it), and `failed` is refused while the provider reported refunding
     * some of its targets: a failed refund reserves nothing, so those targets could be refunded again.
     * A failed refund its provider keeps on its targets (`Refund.holdsTarget`) may be resolved `failed`
     * again: it keeps holding them unless `options.releaseTargets` says otherwise (since 0.6.0).
     * Resolved `succeeded` or `failed`, its items the provider had not decided take that status, and
     * those it decided keep theirs; each keeps its `providerStatus` (`Ledger.settleItems`, since 0.6.0).
     * A verdict on a refund that is not final is refused (InvalidRequest on `status`, with its reason)
     * where its provider says it would contradict what only the provider's answers can say
     * (`Provider.verdictRefusal`: AeroHub's `succeeded` before AeroHub was told `REFUNDED`; since 0.6.0).
     * Resolved `succeeded` with `options.failedTargets`, those targets' items are `failed` and the
     * guards release them (`ResolveOptions.failedTargets`, since 0.6.0).
     * Resolved `succeeded`, the refund drops the error that left it in doubt; resolved `failed`, it keeps
     * a provider's decline and drops any other error (an in-doubt or transport error no longer says
     * what happened: the operator's verdict does) (since 0.6.0). A final status an operator recorded is
     * corrected with `options.correct` (`GuardError` when the refund's targets are no longer free).
     * Its event records the verdict as asked beside the detail that words it (`RefundEvent.verdict`:
     * `note`, `releaseTargets`, the `failedTargets` as the refund spells them, `correct`; since 0.6.0).
     */
    readonly resolve: (
      id: string,
      to: RefundStatus.RefundStatus,
      note: string,
      options?: ResolveOptions
    ) => Effect.Effect<Refund, RefundNotFound | LedgerError | IllegalTransition | InvalidRequest | GuardError>
    /**
     * An operator reopens a final refund whose status the provider set (a reversal or a chargeback seen only in
     * the provider's dashboard, at a provider that has no status query or no callback after success; a refund the
     * provider reported `failed` that its dashboard shows refunded after all): the refund moves to `requires_action`
     * with an `operator` event whose detail says what it reopens (`Ledger.reopenOpening`) and why (`note`, required),
     * recording `{ reopen: true }` as its verdict (`RefundEvent.verdict`), and a person settles it with `resolve`.
     * It holds its targets there: a reopened `failed` takes them back, refused, nothing recorded, while another
     * refund holds one (`TargetAlreadyRefunded` naming it, or `OverRefund`), as a claim of it would be now
     * (`Ledger.reclaim`). Resolved `failed`, it keeps them held unless `releaseTargets` (`Ledger.reopening`), and the
     * provider's word it took back, repeated, is no news (`Ledger.repeatsSettled`). `InvalidRequest` on `note` for
     * an empty note, and on `status` for a refund that is not final (resolve it) or whose final status an operator's
     * verdict set (correct it: `ResolveOptions.correct`), as `reopenRefusal` says. It takes the refund's turn as
     * `resolve` does (since 0.6.0).
     */
    readonly reopen: (
      id: string,
      note: string
    ) => Effect.Effect<Refund, RefundNotFound | LedgerError | IllegalTransition | InvalidRequest | GuardError>
    /** Moves refunds a crash left in `requested` to `unknown`; returns them. */
    readonly recover: (grace: Duration.DurationInput) => Effect.Effect<ReadonlyArray<Refund>, LedgerError>
    /**
     * Moves one refund left in `requested` to `unknown`, for a caller that takes its submitter
     * for gone (a bulk re-run meeting its own file's rows), whatever its age; a refund that has
     * moved on meanwhile is returned as it stands. One whose claimant the ledger knows has ended
     * (`Ledger.orphaned`) is taken at once. One a live process may still hold (leased, or updated
     * within the last two heartbeats) is waited for, up to five heartbeats: its answer settles it,
     * or, its process dead, its lease runs out and it is taken. Still held then (a second run of
     * the same file, started while the first is sending), it is returned as it stands, `requested`.
     */
    readonly recoverOne: (id: string, detail: string, options?: RecoverOneOptions) => Effect.Effect<Refund, RefundNotFound | LedgerError>
  }
}

const printable = /^[\x20-\x7e]{1,255}$/

// How many partly filled calls packing keeps trying to add to.
const maxOpenGroups = 8

const isoNow = (clock: Clock.Clock): string => new Date(clock.unsafeCurrentTimeMillis()).toISOString()

const nowIso = Effect.clockWith((clock) => Effect.succeed(isoNow(clock)))

/**
 * `Effect.timeoutFail` with one forked fiber and a timer, where the library races two
 * fibers: it wraps every provider call, and the race cost about 50 µs of CPU per call
 * (measured: 14 µs for this one). The call runs in a child fiber; when the timer fires
 * first the child is interrupted (aborting its request), and once it has ended the
 * timeout is the failure.
 *
 * The wait for the child registers no canceler: one would wrap every call in an
 * uninterruptible region. Interrupting the caller still interrupts the call, because a
 * forked fiber is interrupted when its parent ends, and the child's end clears the timer.
 */
const timeoutFail = <A, E, E2>(self: Effect.Effect<A, E>, millis: number, onTimeout: () => E2): Effect.Effect<A, E | E2> =>
  Effect.flatMap(Effect.fork(self), (child) =>
    Effect.async<A, E | E2>((resume) => {
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        child.unsafeInterruptAsFork(FiberId.none)
      }, millis)
      child.addObserver((exit) => {
        clearTimeout(timer)
        resume(timedOut && Exit.isInterrupted(exit) ? Effect.fail(onTimeout()) : exit)
      })
    }))

/**
 * What a failed provider call leaves the refund as: `unknown` whenever the request may
 * have taken effect, `failed` when the provider provably did nothing.
 */
const statusAfter = (error: ProviderError): RefundStatus.RefundStatus => {
  switch (error._tag) {
    case "ProviderUnavailable":
      return error.maybeProcessed ? "unknown" : "failed"
    case "OutcomeUnknown":
    case "UnexpectedResponse":
      return "unknown"
    default:
      return "failed"
  }
}

const mayHaveTakenEffect = (error: ProviderError): boolean => statusAfter(error) === "unknown"

/**
 * Why `resolve` with `correct` may not change a refund's verdict, as data, so that each caller words it
 * for its own reader (core as `InvalidRequest` on `correct`, the CLI with its flags and hints):
 * - `not_final`: the refund has no verdict yet (resolve it without `correct`);
 * - `same_status`: it already has the status asked for;
 * - `set_by_provider`: its final status is not an operator's verdict (`setBy` says whose, `at` when).
 *
 * @since 0.6.0
 */
export type CorrectionRefusal =
  | { readonly reason: "not_final"; readonly status: RefundStatus.RefundStatus }
  | { readonly reason: "same_status"; readonly status: RefundStatus.RefundStatus }
  | { readonly reason: "set_by_provider"; readonly status: RefundStatus.RefundStatus; readonly setBy: string; readonly at: string }

/**
 * Why a correction of `refund` to `to` is refused, as read before the write (the ledger checks again
 * under its lock: `Ledger.isCorrection`); `undefined` when it may be corrected.
 *
 * @since 0.6.0
 */
export const correctionRefusal = (refund: Refund, to: RefundStatus.RefundStatus): CorrectionRefusal | undefined => {
  if (!RefundStatus.isFinal(refund.status)) return { reason: "not_final", status: refund.status }
  if (refund.status === to) return { reason: "same_status", status: refund.status }
  const setter = setterOf(refund)
  if (setter === undefined || !isVerdict(setter)) {
    return { reason: "set_by_provider", status: refund.status, setBy: setBy(refund.provider, setter), at: setter?.at ?? refund.updatedAt }
  }
  return undefined
}

/**
 * An operator's note as the CLI and the gateway record it in a refund's history (`operator: <note>`), for a verdict
 * (`resolve`) and a reopen alike: a repeat of either is recognised by these words.
 *
 * @since 0.6.0
 */
export const operatorNote = (note: string): string => `operator: ${note.trim()}`

/**
 * Why `reopen` may not take a refund back to a person, as data, so that each caller words it for its own reader
 * (core as `InvalidRequest` on `status`, the CLI and the gateway with what to do instead). Read from
 * `correctionRefusal`, whose rule it is the other side of: a final status an operator's verdict set is corrected,
 * one the provider set is reopened.
 * - `not_final`: the refund waits for a verdict already (resolve it);
 * - `set_by_operator`: its final status is an operator's verdict, recorded at `at` (correct it).
 *
 * @since 0.6.0
 */
export type ReopenRefusal =
  | { readonly reason: "not_final"; readonly status: RefundStatus.RefundStatus }
  | { readonly reason: "set_by_operator"; readonly status: RefundStatus.RefundStatus; readonly at: string }

/**
 * Why a reopen of `refund` is refused, as read before the write (the ledger checks again under its lock:
 * `Ledger.isReopen`); `undefined` when it may be reopened.
 *
 * @since 0.6.0
 */
export const reopenRefusal = (refund: Refund): ReopenRefusal | undefined => {
  const correction = correctionRefusal(refund, refund.status === "succeeded" ? "failed" : "succeeded")
  if (correction === undefined) return { reason: "set_by_operator", status: refund.status, at: setterOf(refund)?.at ?? refund.updatedAt }
  return correction.reason === "not_final" ? correction : undefined
}

const reopenRefused = (id: string, refusal: ReopenRefusal): string => {
  switch (refusal.reason) {
    case "not_final":
      return `refund ${id} is ${refusal.status}, which is not final: there is nothing to reopen; settle it with resolve`
    case "set_by_operator":
      return `refund ${id} is ${refusal.status} by an operator's verdict recorded at ${refusal.at}, not by its provider: ` +
        `a verdict recorded by hand is corrected (resolve with correct), not reopened`
  }
}

const correctionRefused = (id: string, refusal: CorrectionRefusal): string => {
  switch (refusal.reason) {
    case "not_final":
      return `refund ${id} is ${refusal.status}: there is no verdict to correct; resolve it without correct`
    case "same_status":
      return `refund ${id} is already ${refusal.status}: there is nothing to correct`
    case "set_by_provider":
      return `refund ${id} is ${refusal.status}, set by ${refusal.setBy} at ${refusal.at}: ` +
        "only a verdict an operator recorded is corrected by hand; a final status the provider set stays"
  }
}

/**
 * Who set a status that is not an operator's verdict, in words: the provider (how it said so), or
 * refundkit's recovery.
 *
 * @since 0.6.0
 */
export const setBy: (provider: string, setter: RefundEvent | undefined) => string = setterWords

/** A packed call's failure as one member's: an in-doubt error names the refund it is about, which is this member, not the call's lead. */
const ownError = (error: ProviderError, refundId: string): ProviderError =>
  error._tag === "OutcomeUnknown" ? new OutcomeUnknown({ provider: error.provider, detail: error.detail, refundId }) : error

/** A refusal of a whole call that says the provider did nothing with it, possibly because of one of its targets. */
const refusedWhole = (error: ProviderError): boolean => error._tag === "ProviderDeclined" || error._tag === "InvalidRequest"

const briefly = (error: ProviderError): string => ("detail" in error && typeof error.detail === "string" ? error.detail : error.message)

/**
 * How a call that was retried ends when an earlier attempt may have taken effect (a
 * 500, a lost connection, at a provider whose submit is idempotent). The last attempt's
 * failure speaks for that attempt only: a 503, a 429, refused credentials or a call
 * refundkit held back say the provider did nothing this time, not that the earlier
 * attempt did nothing, so the refund stays in doubt (`OutcomeUnknown`: kept `unknown`,
 * never resent, resolved by a sync) instead of `failed`, which is final, frees the
 * target's amount and lets `bulk --retry-failed` send it again under a new key. A
 * decline stands: such a provider answers a repeated request with its original answer,
 * so a decline is its verdict on the refund itself.
 */
const afterRetries = (provider: string, refundId: string, earlier: ProviderError, last: ProviderError): ProviderError =>
  last._tag === "ProviderDeclined" || statusAfter(last) !== "failed"
    ? last
    : new OutcomeUnknown({
      provider,
      refundId,
      detail: `an earlier attempt may have been processed (${briefly(earlier)}) and the last one ended with ${briefly(last)}`
    })

/**
 * A request's targets with their original amounts (`CreateInput.originalAmounts`), as a create
 * records them for the over-refund guard: each key must name a target of the request, and each
 * amount be above zero in the request's currency; `InvalidRequest` on `originalAmounts.<key>`
 * otherwise, before anything is claimed or sent. A bulk run's validation pass checks its rows with
 * it, so a file with such a row sends nothing.
 *
 * @since 0.6.0
 */
export const withOriginalAmounts = (
  provider: string,
  prepared: Pick<Prepared, "targets" | "currency">,
  originalAmounts: Readonly<Record<string, string>>
): Effect.Effect<ReadonlyArray<RefundTarget>, InvalidRequest> => {
  // A key naming no target would guard nothing, silently: "0012345" where the target is 12345.
  const names = new Set(prepared.targets.map((t) => t.target))
  const stray = Object.keys(originalAmounts).find((key) => !names.has(key))
  if (stray !== undefined) {
    return Effect.fail(InvalidRequest.field(
      `originalAmounts.${stray}`,
      `is not a target of this refund, so it would guard nothing; key each original amount by a target: ${[...names].join(", ")}`,
      provider
    ))
  }
  const currency = prepared.currency
  return Effect.forEach(prepared.targets, (target) => {
    const original = originalAmounts[target.target]
    if (original === undefined) return Effect.succeed(target)
    if (currency === undefined) {
      return Effect.fail(InvalidRequest.field(`originalAmounts.${target.target}`, "an original amount needs a currency on the request", provider))
    }
    return Money.parse(original, currency).pipe(
      Effect.mapError((e) => InvalidRequest.field(`originalAmounts.${target.target}`, e.message, provider)),
      Effect.filterOrFail(
        (money) => money.minor > 0n,
        () => InvalidRequest.field(`originalAmounts.${target.target}`, `must be greater than zero, got ${JSON.stringify(original)}`, provider)
      ),
      Effect.map((money): RefundTarget => ({ ...target, originalAmount: Money.format(money) }))
    )
  })
}

/** A submit's failure that `create` answers as an error naming the refund, as recorded in `status`; others answer with the refund. */
type AnsweredError = ProviderUnavailable | ProviderAuthFailed | OutcomeUnknown | UnexpectedResponse

const answerFor = (refundId: string, status: RefundStatus.RefundStatus, error: ProviderError, advice?: string): AnsweredError | undefined => {
  // The provider's own advice for a refund in doubt, where it gives one (`Provider.inDoubtAdvice`).
  const advised = advice === undefined ? {} : { advice }
  switch (error._tag) {
    case "ProviderUnavailable":
      return new ProviderUnavailable({
        provider: error.provider,
        detail: error.detail,
        maybeProcessed: error.maybeProcessed,
        ...(error.httpStatus === undefined ? {} : { httpStatus: error.httpStatus }),
        ...(error.retryAfterMillis === undefined ? {} : { retryAfterMillis: error.retryAfterMillis }),
        refundId,
        status,
        ...advised
      })
    case "ProviderAuthFailed":
      return new ProviderAuthFailed({ provider: error.provider, detail: error.detail, refundId, status })
    case "OutcomeUnknown":
      return new OutcomeUnknown({ provider: error.provider, detail: error.detail, refundId, ...advised })
    case "UnexpectedResponse":
      return new UnexpectedResponse({
        provider: error.provider,
        path: error.path,
        detail: error.detail,
        ...(error.httpStatus === undefined ? {} : { httpStatus: error.httpStatus }),
        refundId,
        ...advised
      })
    default:
      return undefined
  }
}

/** The codes of {@link AnsweredError}, by the status each leaves a refund in. */
const answeredFailed: ReadonlySet<string> = new Set(["provider_unavailable", "provider_auth_failed"])
const answeredInDoubt: ReadonlySet<string> = new Set(["provider_unavailable", "outcome_unknown", "unexpected_response"])

/**
 * The error a `create` answers when it replays `refund` under its key, or `undefined` when the
 * replay is the refund itself, as before.
 *
 * A create whose submit failed without a verdict was answered with an error naming the refund
 * (the gateway's 502 `provider_unavailable` or `provider_auth_failed` for a refund recorded
 * `failed`, 502 or 504 `outcome_unknown` for one kept `unknown`), which the refund records as its
 * error. A replay answered with the refund instead reads as a success to a client that retries such
 * errors (a 200 after a 502), so while the refund stands where that answer left it (still
 * `unknown`, or `failed` by that submit) the replay is the same error, as recorded. Once the
 * refund has moved on (a sync settled it, an operator resolved it) the replay is the refund. So is
 * the replay of a create that was never answered with a recorded error (its process stopped with
 * the call out, and recovery made the refund `unknown`): clients retry until they get a refund, and
 * a refund in doubt is what there is to give them. A create whose refund recovery made `unknown`
 * while its call was out was answered (`outcome_unknown`, the gateway's 504) though nothing was
 * recorded as its error: its submit's refused verdict in the history says so, and that is replayed.
 * An error an older build stored (the provider's words, naming no refund) was never an answer.
 *
 * @since 0.6.0
 */
export const replayedError = (refund: Refund): ErrorInfo | undefined => {
  // An answer is recorded as given, naming its refund. An error an older build stored is the provider's
  // own words ("Retry after 2 s.", no refund), never an answer: replayed as the refund, as it was then.
  const recorded = refund.error !== undefined && refund.error.message.includes(refund.id) ? refund.error : undefined
  if (refund.status === "unknown") {
    if (recorded !== undefined && answeredInDoubt.has(recorded.code)) return recorded
    return submitRefusedInDoubt(refund) ? toErrorInfo(movedToUnknown(refund.provider, refund.id, undefined)) : undefined
  }
  if (recorded === undefined || refund.status !== "failed" || !answeredFailed.has(recorded.code)) return undefined
  // Failed by that submit, not by an operator's verdict on a refund its submit had left in doubt.
  const setBy = [...refund.events].reverse().find((event) => event.accepted && event.to === "failed" && event.from !== "failed")
  return setBy?.source === "submit" ? recorded : undefined
}

/**
 * The answer of a create whose refund recovery moved to `unknown` while its submit was out: the
 * submit's own verdict was refused (kept as a refused event), and the create answered this.
 */
const movedToUnknown = (provider: string, refundId: string, error: ProviderError | undefined, advice?: string): OutcomeUnknown =>
  new OutcomeUnknown({
    provider,
    refundId,
    // The error's own message says how such a refund is settled, by the provider's means.
    detail: `the refund was moved to unknown while it was being submitted${error === undefined ? "" : ` (the submit ended with ${briefly(error)})`}`,
    ...(advice === undefined ? {} : { advice })
  })

// Since it last became `unknown`, its submit's verdict came and was refused: that create was answered
// `movedToUnknown`. One whose process died with the call out has no such event: its create was never
// answered, and its replay is the refund.
const submitRefusedInDoubt = (refund: Refund): boolean => {
  const events = refund.events
  let i = events.length - 1
  while (i >= 0 && !(events[i]!.accepted && events[i]!.to === "unknown")) i--
  return i >= 0 && events.slice(i + 1).some((event) => !event.accepted && event.source === "submit")
}

const changeFrom = (outcome: Outcome, source: EventSource, at: string): Change => ({
  to: outcome.status,
  source,
  at,
  providerStatus: outcome.providerStatus,
  providerFinal: outcome.providerFinal,
  holdsTarget: outcome.holdsTarget,
  providerReference: outcome.providerReference,
  references: outcome.references,
  items: outcome.items,
  detail: outcome.detail,
  error: outcome.decline === undefined
    ? null
    : {
      code: "provider_declined",
      message: `declined (${outcome.decline.providerCode}): ${outcome.decline.reason}`,
      providerCode: outcome.decline.providerCode
    }
})

/**
 * Builds the service from the registry, the ledger and options.
 *
 * @since 0.1.0
 */
export const make = (options: Options = defaultOptions): Effect.Effect<Refunds.Service, never, Providers | Ledger | Scope.Scope> =>
  Effect.gen(function*() {
    const providers = yield* Providers
    const ledger = yield* Ledger
    const scope = yield* Effect.scope
    const limiters = new Map<string, RateLimiter.RateLimiter>()
    /** When each provider's current rate-limit window closes, as far as this process has taken permits. */
    const windowEnds = new Map<string, number>()
    /** How many permits each provider's current window has given. */
    const windowUsed = new Map<string, number>()
    const maxRetryAfter = Duration.toMillis(options.maxRetryAfter)
    const callTimeoutMillis = Duration.toMillis(options.callTimeout)
    /**
     * Refunds this process claimed and has not yet recorded an answer for (their first call is out or
     * about to go), each with the run of `create` or `createMany` that claimed it: only that run lets go
     * of it. A retry under the same key (answered `RefundInProgress`) has the same refund id, and letting
     * go of the id when it ended left the live refund unleased.
     */
    const inFlight = new Map<string, object>()
    const heartbeatMillis = Duration.toMillis(options.heartbeat ?? defaultHeartbeat)
    yield* keepInFlightAlive(ledger, inFlight, heartbeatMillis)
    const letGo = (id: string, owner: object): void => {
      if (inFlight.get(id) === owner) inFlight.delete(id)
    }

    const limiterFor = (provider: Provider) =>
      Effect.suspend(() => {
        const limit = provider.capabilities.rateLimit
        if (limit === undefined) return Effect.succeed(Option.none<RateLimiter.RateLimiter>())
        const existing = limiters.get(provider.id)
        if (existing !== undefined) return Effect.succeed(Option.some(existing))
        return RateLimiter.make({ limit: limit.requests, interval: Duration.millis(limit.perMillis), algorithm: "fixed-window" }).pipe(
          Scope.extend(scope),
          Effect.tap((limiter) => Effect.sync(() => limiters.set(provider.id, limiter))),
          Effect.map(Option.some)
        )
      })

    /**
     * One turn of the provider's rate limit, waiting at most `maxRateLimitWait`. A call
     * refused here was never sent.
     */
    const permitFor = (provider: Provider): Effect.Effect<void, ProviderUnavailable> => {
      const limit = provider.capabilities.rateLimit
      if (limit === undefined) return Effect.void
      const maxWait = options.maxRateLimitWait
      return Effect.flatMap(limiterFor(provider), (limiter) => {
        if (Option.isNone(limiter)) return Effect.void
        // The limiter's fixed window opens with the first permit taken after the last one closed.
        const permit = Effect.zipRight(limiter.value(Effect.void), Effect.map(Clock.currentTimeMillis, (now) => {
          if (now >= (windowEnds.get(provider.id) ?? 0)) {
            windowEnds.set(provider.id, now + limit.perMillis)
            windowUsed.set(provider.id, 1)
          } else {
            windowUsed.set(provider.id, (windowUsed.get(provider.id) ?? 0) + 1)
          }
        }))
        if (maxWait === undefined) return permit
        const refused = (now: number) =>
          new ProviderUnavailable({
            provider: provider.id,
            detail: `refundkit holds calls to ${provider.id} to its rate limit of ${limit.requests} per ${Duration.format(Duration.millis(limit.perMillis))}, and this one would wait longer than ${Duration.format(maxWait)}; it was not sent`,
            maybeProcessed: false,
            // The time left in the current window (a whole window told a client to wait 5 minutes at Airalo when seconds were left).
            retryAfterMillis: Math.min(limit.perMillis, Math.max(1_000, (windowEnds.get(provider.id) ?? now + limit.perMillis) - now))
          })
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          // Every turn of the window is taken and it closes later than the longest wait allowed: no
          // turn can come in time, so the caller is told at once instead of after that wait.
          const ends = windowEnds.get(provider.id) ?? 0
          if (now < ends && (windowUsed.get(provider.id) ?? 0) >= limit.requests && ends - now > Duration.toMillis(maxWait)) {
            return Effect.fail(refused(now))
          }
          return Effect.flatMap(Effect.timeoutOption(permit, maxWait), (granted) =>
            Option.isSome(granted) ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (later) => Effect.fail(refused(later))))
        })
      })
    }

    /**
     * One provider call: rate limited, timed out, retried only where safe. `permitted`: the
     * caller already took the first attempt's turn of the rate limit (see {@link claimWhenDue}).
     */
    const call = (
      provider: Provider,
      refundId: string,
      run: (attempt: number, earlierMayHaveTakenEffect: boolean) => Effect.Effect<Outcome, ProviderError>,
      permitted = false
    ) => {
      let attempt = 0
      // The first earlier failure that may have taken effect; set by the retry driver below.
      let maybeTookEffect: ProviderError | undefined
      const timed = Effect.suspend(() => {
        attempt += 1
        return timeoutFail(
          run(attempt, maybeTookEffect !== undefined),
          callTimeoutMillis,
          () => new OutcomeUnknown({ provider: provider.id, refundId, detail: `no answer within ${Duration.format(options.callTimeout)}` })
        )
      })
      const once = provider.capabilities.rateLimit === undefined
        ? timed
        : Effect.suspend(() => (permitted && attempt === 0 ? timed : Effect.zipRight(permitFor(provider), timed)))
      const retryable = (error: ProviderError) =>
        error._tag === "ProviderUnavailable" &&
        (provider.capabilities.idempotentSubmit || !error.maybeProcessed) &&
        (error.retryAfterMillis === undefined || error.retryAfterMillis <= maxRetryAfter)
      // The retry machinery (a schedule driver per call) is only built once a call has
      // failed in a way worth retrying; the first failure is handed to it, not re-run.
      return Effect.catchAll(once, (first) => {
        if (!retryable(first)) return Effect.fail(first)
        let replay = true
        const again = Effect.suspend(() => {
          if (!replay) return once
          replay = false
          return Effect.fail(first)
        }).pipe(Effect.tapError((error) =>
          Effect.sync(() => {
            if (maybeTookEffect === undefined && mayHaveTakenEffect(error)) maybeTookEffect = error
          })
        ))
        return Effect.retry(again, { schedule: withRetryAfter, while: retryable }).pipe(
          Effect.mapError((last) =>
            maybeTookEffect === undefined ? last : afterRetries(provider.id, refundId, maybeTookEffect, last)
          )
        )
      })
    }

    // A `Retry-After` is honoured before the next attempt (the longer of it and the backoff), and only
    // when there is one: after the last attempt the answer is known and waiting would only delay it.
    const withRetryAfter = Schedule.intersect(
      options.retrySchedule,
      Schedule.identity<ProviderError>().pipe(
        Schedule.addDelay((error) => Duration.millis(error._tag === "ProviderUnavailable" ? error.retryAfterMillis ?? 0 : 0))
      )
    )

    // Every change but a callback's (`webhook`, which asks the ledger itself): without a `callbackKey` the ledger
    // never answers `DuplicateCallback` (`Ledger.transition`'s contract), so it is left out of the type here. A
    // `catchTag` turning it into a defect would cost every create an Effect operation for a case that cannot occur.
    const record = (id: string, change: Omit<Change, "callbackKey">) =>
      ledger.transition(id, change) as Effect.Effect<Refund, IllegalTransition | RefundNotFound | LedgerError>

    /** The provider's advice for this refund in doubt (`Provider.inDoubtAdvice`); none from a provider not registered here. */
    const adviceFor = (refund: Refund) =>
      Effect.map(Effect.option(providers.get(refund.provider)), (provider) =>
        Option.isSome(provider) ? provider.value.inDoubtAdvice(refund.id, refund.request) : undefined)

    const ledgerErrorOf = (e: IllegalTransition | RefundNotFound | CreateError): CreateError =>
      e._tag === "IllegalTransition" || e._tag === "RefundNotFound" ? new LedgerError({ detail: e.message }) : e

    const asLedgerError = <A, R>(effect: Effect.Effect<A, IllegalTransition | RefundNotFound | CreateError, R>) => Effect.mapError(effect, ledgerErrorOf)

    /**
     * When a sync, a callback or recovery moved the refund on while its submit was out, the
     * ledger already holds what was learnt from the provider itself: the submit's answer is
     * recorded as a refused event and the caller gets the refund as it stands (still in
     * doubt when it is `unknown`), not a ledger error.
     */
    const movedOn = (refund: Refund, error: ProviderError | undefined) =>
      Effect.flatMap(ledger.get(refund.id), (current): Effect.Effect<Created, CreateError | RefundNotFound | LedgerError> =>
        current.status === "unknown"
          ? Effect.flatMap(adviceFor(current), (advice) => Effect.fail(movedToUnknown(refund.provider, refund.id, error, advice)))
          : Effect.succeed({ refund: current, replayed: false }))

    // One handler for what the `map`, `catchTag` and `asLedgerError` of this step would do one after
    // the other (the first failure of the cause, as each of them takes it): every create records an
    // outcome, and each of those layers is an Effect operation more. With `asUnrecorded` the handler
    // also does what `unrecorded` around it would (submitClaimed's way, taken by every create).
    const recordOutcome = (refund: Refund, outcome: Outcome, asUnrecorded = false): Effect.Effect<Created, CreateError> =>
      Effect.matchCauseEffect(
        Effect.clockWith((clock) =>
          record(refund.id, {
            ...changeFrom(outcome, "submit", isoNow(clock)),
            // A submit's "still in progress" is older news than a callback or sync that already asked a
            // person to act (`requires_action`, e.g. a chargeback): it must not move the refund back to `pending`.
            ...(outcome.status === "pending" ? { onlyFrom: ["requested", "unknown", "pending"] as const } : {})
          })
        ),
        {
          onSuccess: (stored) => Effect.succeed<Created>({ refund: stored, replayed: false }),
          onFailure: (cause) => {
            const failure = Cause.failureOrCause(cause)
            if (Either.isRight(failure)) return Effect.failCause(failure.right)
            if (failure.left._tag === "IllegalTransition") {
              const moved = asLedgerError(movedOn(refund, undefined))
              return asUnrecorded ? unrecorded(refund)(moved) : moved
            }
            const error = ledgerErrorOf(failure.left)
            return Effect.fail(asUnrecorded && error._tag === "LedgerError" ? unrecordedError(refund, error) : error)
          }
        }
      )

    /**
     * Records what a failed call leaves the refund as; transport failures are re-raised carrying the
     * refund id. Such an answer is also what the refund records as its error, so that a replay under
     * the key can answer it again ({@link replayedError}) rather than with the refund as a success.
     */
    const recordFailure = (refund: Refund, error: ProviderError): Effect.Effect<Created, CreateError> =>
      Effect.gen(function*() {
        const at = yield* nowIso
        const to = statusAfter(error)
        const answer = answerFor(refund.id, to, error, to === "unknown" ? yield* adviceFor(refund) : undefined)
        const moved = yield* record(refund.id, {
          to,
          source: "submit",
          at,
          ...(error._tag === "ProviderDeclined" ? { providerStatus: error.providerCode } : {}),
          error: toErrorInfo(answer ?? error),
          detail: error.message,
          // "Not processed" speaks for this submit's attempts only: it may end the refund as
          // `failed` only while nothing else has touched it. A sync's resubmit, a callback or
          // a later update may have seen the provider take it meanwhile (or may be out now,
          // after recovery made it `unknown`). A decline is the provider's word on the request
          // and may still settle a refund recovery made `unknown`.
          onlyFrom: to === "failed" && error._tag !== "ProviderDeclined" ? ["requested"] : ["requested", "unknown"]
        }).pipe(
          Effect.map(Either.right),
          Effect.catchTag("IllegalTransition", () => Effect.map(movedOn(refund, error), Either.left))
        )
        if (Either.isLeft(moved)) return moved.left
        return answer === undefined ? { refund: moved.right, replayed: false } : yield* Effect.fail(answer)
      }).pipe(asLedgerError)

    /**
     * The provider has been called: a ledger failure now (busy past its timeout, disk full,
     * connection lost) leaves the refund `requested` though the provider may have taken it.
     * That is an outcome in doubt for this refund, not "the ledger is unavailable, nothing
     * happened": the caller gets its id, and recovery then a sync settle it.
     */
    const unrecordedError = (refund: Refund, error: LedgerError): OutcomeUnknown =>
      new OutcomeUnknown({
        provider: refund.provider,
        refundId: refund.id,
        detail: `${refund.provider} was called, but its answer could not be recorded (${error.detail}); the refund stays requested until recovery makes it unknown`
      })

    const unrecorded = (refund: Refund) => <A>(effect: Effect.Effect<A, CreateError>): Effect.Effect<A, CreateError> =>
      Effect.catchTag(effect, "LedgerError", (error) => Effect.fail(unrecordedError(refund, error)))

    const submitClaimed = (
      provider: Provider,
      prepared: Prepared,
      refund: Refund,
      slots?: CallSlots.CallSlots,
      permitted = false
    ): Effect.Effect<Created, CreateError> => {
      const sent = call(provider, refund.id, (attempt, earlierMayHaveTakenEffect) => prepared.submit({ refundId: refund.id, idempotencyKey: refund.idempotencyKey, attempt, earlierMayHaveTakenEffect }), permitted)
      // `unrecorded` for both: the outcome's own failure handler applies it (one step fewer on every create's way).
      return Effect.matchEffect(slots === undefined ? sent : slots.withSlot(sent), {
        onSuccess: (outcome) => recordOutcome(refund, outcome, true),
        onFailure: (error) => unrecorded(refund)(recordFailure(refund, error))
      })
    }

    /** The original amounts as the targets record them ("100" is "100.00"). */
    const originalAmountsOf = (targets: ReadonlyArray<RefundTarget>): Record<string, string> =>
      Object.fromEntries(targets.flatMap((t) => (t.originalAmount === undefined ? [] : [[t.target, t.originalAmount]])))

    /** The draft of a prepared create, as of `at`. */
    const drafted = (provider: Provider, input: CreateInput, prepared: Prepared, targets: ReadonlyArray<RefundTarget>, at: string) => {
      const draft: Refund = {
        id: deriveId(provider.id, input.idempotencyKey),
        provider: provider.id,
        idempotencyKey: input.idempotencyKey,
        // Original amounts as the refund records them ("100" is "100.00"), as the request's own amounts are.
        fingerprint: fingerprint(provider.id, { request: prepared.request, originalAmounts: originalAmountsOf(targets) }),
        request: prepared.request,
        status: "requested",
        references: {},
        targets,
        items: [],
        ...(prepared.currency === undefined ? {} : { currency: prepared.currency }),
        ...(prepared.amount === undefined ? {} : { amount: prepared.amount }),
        createdAt: at,
        updatedAt: at,
        events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }]
      }
      return { provider, prepared, draft, request: input.request }
    }

    /**
     * Decodes and checks a create, and builds the refund it would record; nothing is written yet.
     * Plain `flatMap`s rather than a generator, and the clock read where the draft is built: every
     * create runs this, and each step of a generator is two more Effect operations.
     */
    const draftOf = (input: CreateInput): Effect.Effect<ReturnType<typeof drafted>, UnknownProvider | InvalidRequest> =>
      Effect.flatMap(providers.get(input.provider), (provider) => {
        if (!printable.test(input.idempotencyKey)) {
          return Effect.fail(InvalidRequest.field("idempotencyKey", "must be 1 to 255 printable ASCII characters", provider.id))
        }
        return Effect.flatMap(provider.prepare(input.request), (prepared) =>
          input.originalAmounts === undefined
            ? Effect.clockWith((clock) => Effect.succeed(drafted(provider, input, prepared, prepared.targets, isoNow(clock))))
            : Effect.flatMap(withOriginalAmounts(provider.id, prepared, input.originalAmounts), (targets) =>
              Effect.clockWith((clock) => Effect.succeed(drafted(provider, input, prepared, targets, isoNow(clock))))))
      })

    type Drafted = Effect.Effect.Success<ReturnType<typeof draftOf>>

    /** What an earlier refund under the same key makes of this create: a replay, unless it is another request or still in flight. */
    type Replay = { readonly _tag: "Replay"; readonly created: Created }
    /** A claim this caller won: the refund is `requested` and is its to submit. */
    type Claimed = { readonly _tag: "Submit"; readonly provider: Provider; readonly prepared: Prepared; readonly refund: Refund; readonly request: unknown }
    type Claim = Replay | Claimed

    const replayOf = (draft: Refund, existing: Refund): Effect.Effect<Replay, IdempotencyKeyReused | RefundInProgress> => {
      if (existing.fingerprint !== draft.fingerprint) {
        return Effect.fail(new IdempotencyKeyReused({ idempotencyKey: draft.idempotencyKey, refundId: existing.id }))
      }
      if (existing.status === "requested") {
        return Effect.fail(new RefundInProgress({ idempotencyKey: draft.idempotencyKey, refundId: existing.id }))
      }
      return Effect.succeed({ _tag: "Replay", created: { refund: existing, replayed: true } })
    }

    /** Records the draft `requested`; the claim is either ours to submit or an earlier refund to replay. */
    const claimDrafted = (drafted: Drafted, owner: object): Effect.Effect<Claim, IdempotencyKeyReused | RefundInProgress | OverRefund | TargetAlreadyRefunded | LedgerError> =>
      Effect.flatMap(ledger.claim(drafted.draft), (claimed): Effect.Effect<Claim, IdempotencyKeyReused | RefundInProgress> =>
        claimed._tag === "Existing" ? replayOf(drafted.draft, claimed.refund) : Effect.sync(() => {
          inFlight.set(claimed.refund.id, owner)
          return { _tag: "Submit", provider: drafted.provider, prepared: drafted.prepared, refund: claimed.refund, request: drafted.request }
        }))

    /**
     * An earlier refund under the draft's key, read without claiming: the bulk paths check
     * this before waiting for a turn of the rate limit, so a re-run's replays take none.
     */
    const earlier = (drafted: Drafted): Effect.Effect<Replay | undefined, IdempotencyKeyReused | RefundInProgress | TargetAlreadyRefunded | LedgerError> =>
      Effect.flatMap(
        ledger.findByKey(drafted.provider.id, drafted.draft.idempotencyKey),
        (found): Effect.Effect<Replay | undefined, IdempotencyKeyReused | RefundInProgress | TargetAlreadyRefunded | LedgerError> =>
          Option.isSome(found) ? replayOf(drafted.draft, found.value) : Effect.as(heldWhole(drafted), undefined)
      )

    /**
     * At a rate-limited provider, a whole refund of a target another refund holds is refused
     * before it waits for a turn of the limit: the claim would refuse it anyway, and at
     * Airalo's 1 call per 5 minutes a re-exported bulk file of eSIMs already refunded would
     * otherwise spend a turn per call to send nothing. The claim still decides, under its lock.
     */
    const heldWhole = (drafted: Drafted): Effect.Effect<void, TargetAlreadyRefunded | LedgerError> => {
      const holderOf = ledger.holderOf
      if (holderOf === undefined || drafted.provider.capabilities.rateLimit === undefined) return Effect.void
      return Effect.forEach(wholeTargets(drafted.draft), (target) =>
        Effect.flatMap(holderOf(drafted.provider.id, target), (held) =>
          Option.isNone(held)
            ? Effect.void
            : Effect.fail(new TargetAlreadyRefunded({ target, refundId: held.value.refundId, status: held.value.status }))), { discard: true })
    }

    /**
     * Whole targets of refunds `createMany` has handed to a call that is not yet claimed (at
     * Airalo, waiting minutes for its turn): the ledger cannot know them yet, so {@link heldWhole}
     * lets a second row naming one of them through, to wait a turn of its own only to be refused
     * at its claim. Keyed by provider and target; the value is the refund id that holds it.
     */
    const pendingWhole = new Map<string, string>()
    const wholeKey = (provider: string, target: string) => `${provider}\u0000${target}`

    const pendingWholeOf = (drafted: Drafted): TargetAlreadyRefunded | undefined => {
      if (drafted.provider.capabilities.rateLimit === undefined) return undefined
      for (const target of wholeTargets(drafted.draft)) {
        const holder = pendingWhole.get(wholeKey(drafted.provider.id, target))
        if (holder !== undefined && holder !== drafted.draft.id) return new TargetAlreadyRefunded({ target, refundId: holder, status: "requested" })
      }
      return undefined
    }

    const heldBy = new Map<string, ReadonlyArray<string>>()
    const holdWhole = (drafted: Drafted): void => {
      if (drafted.provider.capabilities.rateLimit === undefined) return
      const keys = wholeTargets(drafted.draft).map((target) => wholeKey(drafted.provider.id, target))
      if (keys.length === 0) return
      for (const key of keys) pendingWhole.set(key, drafted.draft.id)
      heldBy.set(drafted.draft.id, keys)
    }

    /** Once the refund's result is known: claimed (the ledger holds its targets now), refused, or failed. */
    const releaseWhole = (id: string): void => {
      const keys = heldBy.get(id)
      if (keys === undefined) return
      heldBy.delete(id)
      for (const key of keys) if (pendingWhole.get(key) === id) pendingWhole.delete(key)
    }

    /**
     * The bulk paths' claim at a rate-limited provider: the key is claimed only once the call
     * has its turn of the rate limit, right before it is sent. A row claimed and then kept
     * waiting (minutes, at Airalo's 1 call per 5 minutes) would be `requested` without having
     * been sent: if the process died then, recovery could only call it `unknown`, and at a
     * provider with no status API someone would have to check every such row by hand. A
     * call refused for waiting too long was not claimed: nothing is recorded for its key.
     */
    const claimWhenDue = (drafted: Drafted, owner: object) =>
      Effect.flatMap(earlier(drafted), (replay) =>
        replay !== undefined ? Effect.succeed(replay) : Effect.zipRight(permitFor(drafted.provider), claimDrafted(drafted, owner)))

    const submitOrReplay = (claimed: Claim, slots: CallSlots.CallSlots | undefined, permitted: boolean): Effect.Effect<Created, CreateError> =>
      claimed._tag === "Replay" ? Effect.succeed(claimed.created) : submitClaimed(claimed.provider, claimed.prepared, claimed.refund, slots, permitted)

    /** Claim, then submit or replay; at a rate-limited provider the claim waits for the call's turn ({@link claimWhenDue}). */
    const createWhenDue = (input: CreateInput, slots?: CallSlots.CallSlots): Effect.Effect<Created, CreateError> =>
      Effect.flatMap(draftOf(input), (drafted) => {
        const limited = drafted.provider.capabilities.rateLimit !== undefined
        const owner = {}
        return Effect.flatMap(limited ? claimWhenDue(drafted, owner) : claimDrafted(drafted, owner), (claimed) => submitOrReplay(claimed, slots, limited)).pipe(
          Effect.ensuring(Effect.sync(() => letGo(drafted.draft.id, owner)))
        )
      })

    // At a rate-limited provider the key is claimed only once the call has its turn: a create refused
    // for waiting too long (the gateway waits 10 s, Airalo's window is 5 minutes) was never sent, and
    // claimed first it would stay `failed` under its key, so the retry the caller is told to make
    // ("Retry after 305 s", same Idempotency-Key) would replay that failure and never be sent.
    const create = (input: CreateInput): Effect.Effect<Created, CreateError> => createWhenDue(input)

    const pipeline = (pipelineOptions: { readonly calls: number }) =>
      Effect.sync(() => {
        const slots = CallSlots.make(pipelineOptions.calls)
        return (input: CreateInput) => createWhenDue(input, slots)
      })

    /** Splits a combined call's outcome into each refund's own items and status. */
    const outcomeFor = (refund: Refund, outcome: Outcome): Outcome => {
      if (outcome.items === undefined) return outcome
      const mine = new Set(refund.targets.map((t) => t.target))
      const named = outcome.items.filter((item) => mine.has(item.target))
      if (named.length === 0) {
        return { status: "unknown", providerStatus: outcome.providerStatus, items: named, detail: "the provider's answer named none of this refund's targets" }
      }
      // A target the answer leaves out may have been refunded in this call, or not: it is in doubt,
      // and so is the refund; its named items alone would call it `failed` (final) or `succeeded`.
      const answered = new Set(named.map((item) => item.target))
      const unnamed = [...mine].filter((target) => !answered.has(target))
      const items: ReadonlyArray<RefundItem> = [
        ...named,
        ...unnamed.map((target): RefundItem => ({ target, status: "unknown", message: "the provider's answer did not name this target" }))
      ]
      const references = [...new Set(items.flatMap((item) => (item.providerReference === undefined ? [] : [item.providerReference])))]
      // The batch's own words describe the whole call; this refund is told only what its items say.
      const words = [...new Set(items.map((item) => item.providerStatus ?? outcome.providerStatus))]
      const status = RefundStatus.aggregate(items.map((item) => item.status))
      const failed = items.filter((item) => item.status === "failed")
      return {
        status,
        providerStatus: words.join("+"),
        // Final for the whole call is final for each of its refunds, unless the answer left one of its targets out.
        ...(outcome.providerFinal === true && unnamed.length === 0 ? { providerFinal: true } : {}),
        ...(outcome.holdsTarget === true ? { holdsTarget: true } : {}),
        items,
        ...(references.length === 1 ? { providerReference: references[0] } : {}),
        ...(outcome.references === undefined ? {} : { references: outcome.references }),
        ...(status === "failed" && failed.length > 0
          ? {
            decline: {
              providerCode: [...new Set(failed.map((item) => item.providerStatus ?? "failed"))].join("+"),
              reason: failed.map((item) => `${item.target}: ${item.message ?? "refused"}`).join("; ")
            }
          }
          : {})
      }
    }

    /**
     * First-fit packing: each refund joins the first open call that has room and that the
     * provider can combine it with, so alternating kinds (Airalo reasons) still share calls.
     * Only the last few open calls are tried, which keeps packing linear in the refunds.
     */
    const pack = (provider: Provider, drafts: ReadonlyArray<Drafted>) =>
      Effect.gen(function*() {
        const max = provider.capabilities.maxTargetsPerCall
        const groups: Array<{ members: Array<Drafted>; prepared: Prepared; targets: Set<string> }> = []
        const open: Array<(typeof groups)[number]> = []
        for (const drafted of drafts) {
          const own = drafted.prepared.targets.map((t) => t.target)
          let joined = false
          for (const group of open) {
            if (group.targets.size + own.length > max || own.some((t) => group.targets.has(t))) continue
            const combined = yield* provider.combine([...group.members.map((m) => m.request), drafted.request]).pipe(
              Effect.orElseSucceed(() => Option.none<Prepared>())
            )
            if (Option.isNone(combined)) continue
            group.members.push(drafted)
            group.prepared = combined.value
            for (const t of own) group.targets.add(t)
            if (group.targets.size >= max) open.splice(open.indexOf(group), 1)
            joined = true
            break
          }
          if (joined) continue
          const group = { members: [drafted], prepared: drafted.prepared, targets: new Set(own) }
          groups.push(group)
          if (own.length < max) open.push(group)
          if (open.length > maxOpenGroups) open.shift()
        }
        return groups
      })

    /**
     * One packed call: its turn of the rate limit, then its members' claims, then the call.
     * Claiming last means a row is `requested` only while its call is about to go or out
     * (see {@link claimWhenDue}). A member whose key was taken meanwhile (a concurrent run)
     * drops out, and the call is rebuilt from the others.
     */
    const sendPacked = (
      provider: Provider,
      group: { readonly members: ReadonlyArray<Drafted>; readonly prepared: Prepared },
      store: (id: string, result: Effect.Effect<Created, CreateError>) => Effect.Effect<void>,
      owner: object
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        const permit = yield* Effect.either(permitFor(provider))
        if (Either.isLeft(permit)) {
          return yield* Effect.forEach(group.members, (m) => store(m.draft.id, Effect.fail(permit.left)), { discard: true })
        }
        const members: Array<Claimed> = []
        yield* Effect.forEach(group.members, (m) =>
          Effect.either(claimDrafted(m, owner)).pipe(Effect.flatMap((claimed) => {
            if (Either.isLeft(claimed)) return store(m.draft.id, Effect.fail(claimed.left))
            const won = claimed.right
            return won._tag === "Submit" ? Effect.sync(() => void members.push(won)) : store(m.draft.id, Effect.succeed(won.created))
          })), { concurrency: 16, discard: true })
        // Claims commit in any order; the call lists its members in the file's order.
        const order = new Map(group.members.map((m, i) => [m.draft.id, i]))
        members.sort((x, y) => order.get(x.refund.id)! - order.get(y.refund.id)!)
        // Each member in a call of its own, the first one using the turn already taken.
        const eachAlone = (permitted: boolean) =>
          Effect.forEach(members, (m, i) => store(m.refund.id, submitClaimed(provider, m.prepared, m.refund, undefined, permitted && i === 0)), { discard: true })
        if (members.length <= 1) return yield* eachAlone(true)
        const prepared = members.length === group.members.length
          ? Option.some(group.prepared)
          : yield* provider.combine(members.map((m) => m.request)).pipe(Effect.orElseSucceed(() => Option.none<Prepared>()))
        if (Option.isNone(prepared)) return yield* eachAlone(true)
        const lead = members[0]!.refund
        const result = yield* Effect.either(call(provider, lead.id, (attempt, earlierMayHaveTakenEffect) => prepared.value.submit({ refundId: lead.id, idempotencyKey: lead.idempotencyKey, attempt, earlierMayHaveTakenEffect }), true))
        // The provider refused the packed call as a whole (a decline or a field rule, so it did
        // nothing): one member's target may be the reason (an Airalo ICCID of another company),
        // and the others must not inherit a final decline for it. Each is sent on its own instead.
        if (Either.isLeft(result) && refusedWhole(result.left)) return yield* aloneAfterRefusal(provider, members, result.left, store)
        yield* Effect.forEach(members, (m) =>
          store(
            m.refund.id,
            unrecorded(m.refund)(
              Either.isRight(result) ? recordOutcome(m.refund, outcomeFor(m.refund, result.right)) : recordFailure(m.refund, ownError(result.left, m.refund.id))
            )
          ), { discard: true })
      })

    /**
     * The members of a packed call the provider refused as a whole, each sent on its own. Each
     * waits, claimed, for its own turn of the rate limit (at Airalo 5 minutes apiece), and a
     * process killed meanwhile left them `requested`, which recovery can only call `unknown`:
     * at a provider with no status API, refunds someone checks by hand though the provider
     * provably accepted none of them. So all are first recorded as not sent ({@link notSentCode},
     * failed by recovery), and only once every mark is written does each take its turn, say it is
     * being sent, and go out. One that moved on while it waited (failed by another run's recovery)
     * is not sent.
     *
     * The marks are one write per member, not one transaction (the Ledger offers none; issued
     * together, a SQL ledger usually commits them as one). A process that dies between them leaves
     * the members not yet marked `requested` as claimed, which recovery makes `unknown`: the state a
     * death one step earlier (before the refusal was read) leaves every member in, and one no write
     * order can rule out. Nothing is lost (an `unknown` refund is listed for a sync or a person),
     * nothing is sent twice (an `unknown` refund is never resent blindly and keeps its targets held);
     * such a member only loses the precision of `failed`. So the marks need no transaction.
     */
    const aloneAfterRefusal = (
      provider: Provider,
      members: ReadonlyArray<Claimed>,
      refusal: ProviderError,
      store: (id: string, result: Effect.Effect<Created, CreateError>) => Effect.Effect<void>
    ) =>
      Effect.gen(function*() {
        const at = yield* nowIso
        const message = `not sent: the call packing it with ${members.length - 1} other refund${members.length === 2 ? "" : "s"} was refused as a whole ` +
          `(${briefly(refusal)}); it waits for a call of its own`
        const marked = yield* Effect.forEach(members, (m) =>
          Effect.either(record(m.refund.id, {
            to: "requested",
            source: "submit",
            at,
            error: { code: notSentCode, message },
            detail: message,
            onlyFrom: ["requested"]
          })), { concurrency: "unbounded" })
        const sendOne = (m: Claimed, refund: Refund): Effect.Effect<Created, CreateError> =>
          Effect.either(permitFor(provider)).pipe(
            Effect.flatMap((permit) =>
              Either.isLeft(permit) ? recordFailure(refund, permit.left) : Effect.flatMap(nowIso, (sentAt) =>
                record(refund.id, {
                  to: "requested",
                  source: "submit",
                  at: sentAt,
                  error: null,
                  detail: "sent on its own after the call packing it was refused",
                  onlyFrom: ["requested"]
                }).pipe(
                  Effect.matchEffect({
                    onFailure: (e): Effect.Effect<Created, CreateError> =>
                      e._tag === "IllegalTransition" ? asLedgerError(movedOn(refund, undefined)) : asLedgerError(Effect.fail(e)),
                    onSuccess: (sending) => submitClaimed(provider, m.prepared, sending, undefined, true)
                  })
                ))
            )
          )
        yield* Effect.forEach(members, (m, i) => {
          const mark = marked[i]!
          if (Either.isRight(mark)) return store(m.refund.id, sendOne(m, mark.right))
          // Moved on before it could be marked (another run's recovery): what moved it stands.
          if (mark.left._tag === "IllegalTransition") return store(m.refund.id, asLedgerError(movedOn(m.refund, undefined)))
          // Not marked (the ledger failed): sent as before, its claim in doubt while it waits.
          return store(m.refund.id, submitClaimed(provider, m.prepared, m.refund))
        }, { discard: true })
      })

    const createMany = (inputs: ReadonlyArray<CreateInput>, manyOptions?: { readonly concurrency?: number | undefined }) =>
      // One input has nothing to pack with: skip the fan-out machinery a bulk run would otherwise pay per row.
      inputs.length === 1 ? Effect.map(Effect.either(createWhenDue(inputs[0]!)), (result) => [result]) : Effect.gen(function*() {
        const results: Array<Either.Either<Created, CreateError> | undefined> = new Array(inputs.length)
        const indexOf = new Map<string, number>()
        const owner = {}
        const toSend = new Map<string, Array<Drafted>>()
        const due: Array<Drafted | undefined> = new Array(inputs.length)
        // Decoded and checked against the ledger first, claimed only when their call is due (see sendPacked).
        yield* Effect.forEach(inputs, (input, index) =>
          Effect.either(Effect.flatMap(draftOf(input), (drafted) => Effect.map(earlier(drafted), (replay) => ({ drafted, replay })))).pipe(
            Effect.map((result) => {
              if (Either.isLeft(result)) results[index] = Either.left(result.left)
              else if (result.right.replay !== undefined) results[index] = Either.right(result.right.replay.created)
              else due[index] = result.right.drafted
            })
          ), { concurrency: 16, discard: true })
        // In input order, so that of two rows naming one target the first is sent.
        for (const [index, drafted] of due.entries()) {
          if (drafted === undefined) continue
          if (indexOf.has(drafted.draft.id)) {
            // The same key twice in one batch: the second is answered as the ledger answers it once the first is claimed.
            results[index] = undefined
            continue
          }
          const pending = pendingWholeOf(drafted)
          if (pending !== undefined) {
            results[index] = Either.left(pending)
            continue
          }
          holdWhole(drafted)
          indexOf.set(drafted.draft.id, index)
          const list = toSend.get(drafted.provider.id) ?? []
          list.push(drafted)
          toSend.set(drafted.provider.id, list)
        }
        const store = (id: string, created: Effect.Effect<Created, CreateError>) =>
          Effect.map(Effect.either(created), (result) => {
            results[indexOf.get(id)!] = result
            releaseWhole(id)
            letGo(id, owner)
          })
        const sendAll = Effect.forEach(toSend.values(), (drafts) => {
          const provider = drafts[0]!.provider
          const groups = provider.capabilities.maxTargetsPerCall > 1
            ? pack(provider, drafts)
            : Effect.succeed(drafts.map((d) => ({ members: [d], prepared: d.prepared })))
          return Effect.flatMap(groups, (all) =>
            Effect.forEach(all, (group) => sendPacked(provider, group, store, owner), { concurrency: manyOptions?.concurrency ?? 16, discard: true }))
        }, { discard: true })
        // Interrupted, a member claimed but not yet stored would otherwise stay leased for as long as the process lives.
        yield* Effect.ensuring(sendAll, Effect.sync(() => indexOf.forEach((_, id) => letGo(id, owner))))
        // Duplicates of a key within the batch, now that its first occurrence is settled.
        yield* Effect.forEach(inputs, (input, index) =>
          results[index] !== undefined ? Effect.void : Effect.map(Effect.either(createWhenDue(input)), (r) => void (results[index] = r)), { discard: true })
        return results.map((result) => result!)
      })

    const apply = (refund: Refund, outcome: Outcome, source: EventSource) =>
      Effect.flatMap(nowIso, (at) => record(refund.id, changeFrom(outcome, source, at)))

    /**
     * A refund still `requested` has its first call out, here or in another process sharing the
     * ledger: `sync` and `update` wait for its outcome. Recovery makes it `unknown`, and open to
     * both, if that caller died.
     */
    const stillRequested = (provider: Provider, id: string, operation: string, call: string, action: string) =>
      new UnsupportedOperation({
        provider: provider.id,
        operation,
        hint: `Refund ${id} is requested: ${call} is in flight; ${action} once it has an outcome (a refund left requested by a crash becomes unknown on recovery).`
      })

    const sync = (id: string) =>
      Effect.gen(function*() {
        const refund = yield* ledger.get(id)
        const provider = yield* providers.get(refund.provider)
        // A status query may resend a refund in doubt (Exirom's advice), and the submit's answer,
        // still to come, is what settles it.
        if (refund.status === "requested") return yield* stillRequested(provider, id, "status queries for a refund that is still being submitted", "its submit", "sync it")
        // A status query is a call to the provider like any other (Exirom's resend of a refund
        // in doubt is a refund call): it takes its turn of the provider's rate limit, or a sync
        // loop could spend the whole limit and leave the creates to be refused. A provider with no
        // status query answers without a call, and must not wait (Airalo: 5 minutes) to say so.
        if (provider.capabilities.statusQuery) yield* permitFor(provider)
        // A status query that times out leaves an `unknown` refund in doubt (its query may have been a
        // resend); for any other refund it was a read that recorded nothing, and the refund keeps its
        // status: "outcome unknown, kept as unknown" misreported a pending refund as in doubt.
        const outcome = yield* provider.status(refund).pipe(
          Effect.timeoutFail({
            duration: options.callTimeout,
            onTimeout: () =>
              refund.status === "unknown"
                ? new OutcomeUnknown({ provider: provider.id, refundId: id, detail: "the status query timed out" })
                : new ProviderUnavailable({
                  provider: provider.id,
                  detail: `the status query got no answer within ${Duration.format(options.callTimeout)}; nothing was recorded and the refund is still ${refund.status}`,
                  maybeProcessed: false,
                  refundId: id,
                  status: refund.status
                })
          })
        )
        // A provider-final word is recorded even when it is the word already held: a refund stored
        // before refundkit knew that word was final is left out of later sweeps from then on. So is a
        // failed refund's hold on its targets, which a refund stored before it was known lacks.
        if (
          outcome.status === refund.status && outcome.providerStatus === refund.providerStatus &&
          (outcome.providerFinal === true) === (refund.providerFinal === true) &&
          (outcome.status === "failed" && outcome.holdsTarget === true) === (refund.holdsTarget === true)
        ) return refund
        // The word an operator's verdict settled, asked again (`refundkit sync <id>` after `resolve`), is no news,
        // and so is the word that took back the provider's own success while the refund waits for a person.
        if (repeatsSettled(refund, { to: outcome.status, source: "sync", providerStatus: outcome.providerStatus })) return refund
        return yield* apply(refund, outcome, "sync")
      })

    const syncDue = (query: { readonly providers?: ReadonlyArray<string> | undefined; readonly limit: number }) =>
      Effect.gen(function*() {
        const installed = yield* providers.all
        const able = installed.filter((p) => p.capabilities.statusQuery && (query.providers === undefined || query.providers.includes(p.id))).map((p) => p.id)
        if (able.length === 0) return []
        const due = yield* ledger.needingSync({ providers: able, limit: query.limit })
        return yield* Effect.forEach(due, (refund) =>
          sync(refund.id).pipe(
            Effect.map((after): SyncResult => ({ refundId: refund.id, before: refund.status, after: after.status, refund: after })),
            Effect.catchAll((error) =>
              Effect.succeed<SyncResult>({ refundId: refund.id, before: refund.status, after: refund.status, error: { code: error.code, message: error.message } })
            )
          ), { concurrency: 8 })
      })

    /**
     * Updates to one refund, one at a time: within this process here, and across processes
     * sharing the ledger when it can (`Ledger.serialise`). An update decides from the refund
     * as the previous one left it, or two could both be checked against the same state and
     * both be sent (a REFUNDED and a CLOSED), and be recorded in the order their answers came.
     */
    const updateTurns = new Map<string, { readonly turn: Effect.Semaphore; waiting: number }>()
    const oneUpdateAtATime = <A, E, R>(id: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | LedgerError, R> =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const entry = updateTurns.get(id) ?? { turn: Effect.unsafeMakeSemaphore(1), waiting: 0 }
          entry.waiting += 1
          updateTurns.set(id, entry)
          return entry
        }),
        // The process's own turn first: a process waits for another's with one caller per refund.
        (entry) => entry.turn.withPermits(1)(ledger.serialise === undefined ? effect : ledger.serialise(id, effect)),
        (entry) =>
          Effect.sync(() => {
            entry.waiting -= 1
            if (entry.waiting === 0) updateTurns.delete(id)
          })
      )

    const update = (id: string, input: unknown) => oneUpdateAtATime(id, updateNow(id, input))

    const updateNow = (id: string, input: unknown) =>
      Effect.gen(function*() {
        const refund = yield* ledger.get(id)
        const provider = yield* providers.get(refund.provider)
        // An update sent beside the first call may reach the provider before it.
        if (refund.status === "requested") return yield* stillRequested(provider, id, "updates to a refund whose first call is still in flight", "its first call", "send the update")
        const prepared = yield* provider.update(refund, input)
        const outcome = yield* call(provider, id, (attempt, earlierMayHaveTakenEffect) => prepared.submit({ refundId: id, idempotencyKey: refund.idempotencyKey, attempt, earlierMayHaveTakenEffect })).pipe(
          Effect.catchAll((error) =>
            mayHaveTakenEffect(error)
              ? updateInDoubt(refund, provider, prepared.request, error)
              : Effect.fail(error._tag === "ProviderDeclined" ? new ProviderDeclined({ ...error, of: "update" }) : error)
          )
        )
        const at = yield* nowIso
        return yield* record(id, { ...changeFrom(outcome, "operator", at), detail: outcome.detail ?? UpdateEvent.acceptedDetail(prepared.request) })
      })

    /**
     * An update the provider may have applied (a lost answer, a timeout, an answer that could not
     * be read) changes the refund's status no more than a refused one, but it must not leave the
     * ledger silent: the provider may already be a step further than the refund says. The attempt goes into the history
     * with the error the caller gets, which names the refund, the status it keeps, and what
     * settles the doubt.
     */
    const updateInDoubt = (refund: Refund, provider: Provider, request: unknown, error: ProviderError): Effect.Effect<never, ProviderError | RefundNotFound | LedgerError> =>
      Effect.gen(function*() {
        // What settles it is the provider's answer to the same update: one whose repeat changes nothing there
        // (AeroHub takes an update to the state an order is in as a repeat) is simply sent again.
        // A plugin's own advice (`inDoubtAdvice`, AeroHub's exact command) replaces core's closing words.
        // A timeout (OutcomeUnknown, from `call`) gets them as a lost answer does: it went back bare, saying the
        // refund was kept as "unknown" (an acknowledged refund cannot become that) and to record what happened
        // by hand, which for AeroHub leaves the order with no recorded word to go on from.
        const advice = provider.inDoubtAdvice(refund.id, request)
        const advised = advice === undefined ? {} : { advice }
        const coreAdvice = provider.capabilities.idempotentSubmit
          ? `Send the same update again: if ${refund.provider} applied it, it takes the repeat as a repeat, and its answer records where the refund stands`
          : `Check with ${refund.provider} whether it applied it before sending another update`
        const mayHave = `; the update may have been applied${advice === undefined ? `. ${coreAdvice}` : ""}`
        // An answer that could not be read is as much in doubt as none: the provider answered, and may have
        // applied the update. It went back as a status query's did, naming no refund and saying nothing in it
        // was recorded (the CLI's exit 1), with no word of sending it again. It keeps its own tag and the field
        // it names; `of` words its message, and its `advice` is core's where the provider gives none.
        const answer: ProviderError = error._tag === "ProviderUnavailable"
          ? new ProviderUnavailable({ ...error, detail: `${error.detail}${mayHave}`, refundId: refund.id, status: refund.status, ...advised })
          : error._tag === "OutcomeUnknown"
          ? new OutcomeUnknown({ provider: error.provider, detail: `${error.detail}${mayHave}`, refundId: refund.id, status: refund.status, ...advised })
          : error._tag === "UnexpectedResponse"
          ? new UnexpectedResponse({ ...error, refundId: refund.id, status: refund.status, of: "update", advice: advice ?? coreAdvice })
          : error
        const at = yield* nowIso
        // An unreadable answer's detail alone ("is missing") names no field.
        const why = error._tag === "UnexpectedResponse" ? `an answer refundkit does not understand, ${error.path === "" ? "body" : `field ${error.path}`}: ${error.detail}` : briefly(error)
        const detail = UpdateEvent.inDoubtDetail(request, refund.provider, why)
        // The refund shows the words its caller got (`refundkit get` after a failed `refundkit update`).
        yield* record(refund.id, { to: refund.status, source: "operator", at, error: toErrorInfo(answer), detail, onlyFrom: [refund.status] }).pipe(
          // Moved on meanwhile: what moved it is newer news, and the caller still gets this error.
          Effect.catchTag("IllegalTransition", () => Effect.void)
        )
        return yield* answer
      })

    const webhook = (providerId: string, request: WebhookRequest) =>
      Effect.gen(function*() {
        const provider = yield* providers.get(providerId)
        // A plugin that confirms a callback with the provider (Exirom) makes a call like any other:
        // without a turn, a burst of callbacks spent the provider's limit behind the limiter's back.
        // Bounded like every call: a lookup that never answers would hold the callback's request as long
        // as the provider does. It only reads, so nothing was processed; the provider redelivers.
        const events = yield* provider.webhook(request, { permit: permitFor(provider) }).pipe(
          Effect.timeoutFail({
            duration: options.callTimeout,
            onTimeout: () =>
              new ProviderUnavailable({
                provider: provider.id,
                detail: `the callback could not be confirmed within ${Duration.format(options.callTimeout)}; nothing was recorded, and a redelivery is confirmed anew`,
                maybeProcessed: false
              })
          })
        )
        // Each event on its own: one the ledger cannot store is answered as not recorded, and the
        // others still apply. The provider redelivers the same words after a non-2xx, so refusing the
        // whole callback would only hold the good events back until its retries run out; a repeat of
        // one already applied is a "duplicate callback" anyway.
        return yield* Effect.forEach(events, (given, index) =>
          Effect.gen(function*() {
            const checked = storableEvent(providerId, given, index)
            if (Either.isLeft(checked)) {
              return { applied: false, reason: `not recorded: field ${checked.left.path} ${checked.left.detail}`, refused: checked.left } satisfies WebhookResult
            }
            const event = checked.right
            const byId = event.refundId !== undefined
              ? yield* ledger.get(event.refundId).pipe(Effect.map(Option.some), Effect.catchTag("RefundNotFound", () => Effect.succeed(Option.none<Refund>())))
              : Option.none<Refund>()
            // A callback naming an id we never issued (another installation's) may still carry the provider's reference.
            const found = Option.isNone(byId) && event.providerReference !== undefined
              ? yield* ledger.findByReference(providerId, event.providerReference)
              : byId
            if (Option.isNone(found) || found.value.provider !== providerId) {
              return { applied: false, reason: "no refund matches this callback" } satisfies WebhookResult
            }
            const refund = found.value
            const change: Change = {
              ...changeFrom(event.outcome, "webhook", yield* nowIso),
              callbackKey: event.dedupeKey,
              detail: event.outcome.detail ?? `callback ${event.dedupeKey}`
            }
            const duplicate = { refundId: refund.id, applied: false, reason: "duplicate callback" } satisfies WebhookResult
            // A repeat seen already is answered without a write; the ledger's own check below, under the
            // lock its write takes, is what keeps two deliveries racing each other from both being recorded.
            if (repeatedCallback(refund, change) !== undefined) return duplicate
            const rankNow = refund.providerStatus === undefined ? undefined : provider.statusRank(refund.providerStatus)
            const rankNew = provider.statusRank(event.outcome.providerStatus)
            if (rankNow !== undefined && rankNew !== undefined && rankNew < rankNow) {
              return { refundId: refund.id, applied: false, reason: `out of order: ${event.outcome.providerStatus} arrived after ${refund.providerStatus}` } satisfies WebhookResult
            }
            if (repeatsSettled(refund, change)) {
              return { refundId: refund.id, applied: false, reason: repeatReason(refund, event.outcome.providerStatus) } satisfies WebhookResult
            }
            return yield* ledger.transition(refund.id, change).pipe(
              Effect.as<WebhookResult>({ refundId: refund.id, applied: true }),
              Effect.catchTags({
                IllegalTransition: (e) => Effect.succeed<WebhookResult>({ refundId: refund.id, applied: false, reason: e.message }),
                DuplicateCallback: () => Effect.succeed<WebhookResult>(duplicate)
              })
            )
          }).pipe(Effect.catchTag("RefundNotFound", () => Effect.succeed<WebhookResult>({ applied: false, reason: "no refund matches this callback" }))))
      })

    // A verdict takes the refund's turn, as an update does (`oneUpdateAtATime`): two verdicts at once (a
    // client retrying, the CLI beside a gateway) are decided one after the other, the second against what
    // the first recorded, which a final status then refuses.
    const resolve = (id: string, to: RefundStatus.RefundStatus, note: string, resolveOptions: ResolveOptions = {}) =>
      oneUpdateAtATime(id, resolveNow(id, to, note, resolveOptions))

    const resolveNow = (id: string, to: RefundStatus.RefundStatus, note: string, resolveOptions: ResolveOptions) =>
      Effect.gen(function*() {
        const release = resolveOptions.releaseTargets === true
        const correct = resolveOptions.correct === true
        if (release && to !== "failed") {
          return yield* InvalidRequest.field(
            "releaseTargets",
            `lets go of the targets of a failed refund its provider keeps on them; resolve it failed, not ${to}`
          )
        }
        const named = resolveOptions.failedTargets ?? []
        if (named.length > 0 && to !== "succeeded") {
          return yield* InvalidRequest.field(
            "failedTargets",
            `names the targets the provider did not refund in a refund it otherwise made, and goes with status succeeded, not ${to}.`
          )
        }
        const refund = yield* ledger.get(id)
        // Its first call is out (here or in another process sharing the ledger), and its answer is
        // what settles it: settled by hand first, a success arriving later would be kept only as a
        // refused event, and a refund settled `failed` frees its targets for another refund. Nothing
        // moves a refund back to `requested`, so this read cannot be overtaken.
        if (refund.status === "requested") {
          return yield* InvalidRequest.field(
            "status",
            `refund ${id} is requested: its first call to ${refund.provider} is still out, and its answer will settle it. ` +
              "A refund left requested by a process that died becomes unknown when the gateway or a refundkit command next starts: " +
              "at once when the ledger can tell that process has ended (one on this machine), otherwise after the recovery grace (REFUNDKIT_RECOVERY_GRACE, 2 minutes by default) and the last lease its process renewed (four REFUNDKIT_HEARTBEATs, 1 minute by default); " +
                "check it with the provider and resolve it then."
          )
        }
        // What only the provider's own answers can say (AeroHub: where the supplier's updates left the
        // order) is not overruled by hand. A final refund is the ledger's to refuse; a provider not
        // registered here is not asked.
        if (!RefundStatus.isFinal(refund.status)) {
          const provider = yield* Effect.option(providers.get(refund.provider))
          const refusal = Option.isSome(provider) ? provider.value.verdictRefusal(refund, to) : undefined
          if (refusal !== undefined) return yield* InvalidRequest.field("status", refusal)
        }
        // A final refund takes no second verdict (a repeat would be one more event), only a correction in so
        // many words, and `failed` again on a failed refund its provider holds on its targets (noted, still
        // held, or released with `releaseTargets`).
        const heldAgain = refund.status === "failed" && to === "failed" && refund.holdsTarget === true
        if (RefundStatus.isFinal(refund.status) && !correct && !heldAgain) {
          return yield* new IllegalTransition({
            refundId: id,
            from: refund.status,
            to,
            detail: release ? `refund ${id} is failed and holds no target to release` : `refund ${id} is already ${refund.status}, which is final`
          })
        }
        if (correct) {
          const refused = correctionRefusal(refund, to)
          if (refused !== undefined) return yield* InvalidRequest.field("correct", correctionRefused(id, refused))
        }
        if (to === "failed") {
          // The over-refund guard counts nothing for a failed refund, so a target the provider refunded
          // would be free again: a refund with a `succeeded` item must not become `failed`, nor a mixed
          // answer (one transaction refused, another still `pending`: refused per target, the provider is
          // making the others). Items all `pending` are a request the provider has not decided (Airalo's
          // "accepted for review", decided by email): the operator's note is that decision. Only the
          // provider's words count: an item an operator's verdict settled (`settledBy`) is that verdict,
          // which a correction overturns.
          const items = refund.items ?? []
          const mixed = items.some((item) => item.status === "failed" && providerDecided(item))
          const refunded = items.filter((item) => (item.status === "succeeded" && providerDecided(item)) || (mixed && item.status === "pending"))
          if (refunded.length > 0) {
            return yield* InvalidRequest.field(
              "status",
              `refund ${id} cannot be failed: the provider reported ${refunded.map((item) => `${item.target} ${item.status}`).join(", ")}. ` +
                "Record it succeeded (its refused targets stay failed in its items and no longer count against a new refund of them; " +
                "name any other target the provider did not refund with --failed-target, failedTargets in code) and refund those targets in a new refund."
            )
          }
        }
        const failedTargets = named.length === 0 ? undefined : yield* namedTargets(refund, named)
        // A refund settled by hand no longer carries the error that left it in doubt: settled succeeded it
        // carries none, settled failed it keeps only a provider's decline (the provider's own word on it), and
        // an in-doubt or transport error ("kept as unknown") would contradict the verdict and read as a failure
        // of the provider or the ledger. A hand-made failed keeps a hold the provider set (applyChange) unless
        // the operator lets go of it in so many words. The verdict is the provider's decision as the operator
        // learnt it, so it is each undecided item's too: a refund succeeded with an item still pending told
        // two stories. Settled under the ledger's lock, from the items as they stand then (`Ledger.settleItems`).
        const at = yield* nowIso
        // A refund its provider took back from its own success (a reversal, a chargeback: `Ledger.reopening`)
        // has held its targets since, and resolved failed it keeps them until the operator lets go of them in
        // so many words: `failed` alone may mean the customer was repaid some other way, and a second refund
        // of the same target would pay them again.
        const reopened = to === "failed" && reopening(refund) !== undefined
        const released = release && (refund.holdsTarget === true || reopened)
        const staleError = to === "failed" && refund.status !== "failed" && refund.error !== undefined && refund.error.code !== "provider_declined"
        const change: Change = {
          to,
          source: "operator",
          at,
          settleItems: true,
          detail: released
            ? `${note} (targets released: ${
              !reopened
                ? `${refund.provider} no longer keeps this refund on them`
                : isReopenEvent(reopening(refund)!)
                ? `an operator reopened this refund against what ${refund.provider} had reported`
                : `${refund.provider} took this refund back after it had made it`
            })`
            : failedTargets !== undefined
            ? `${note} (failed targets, not refunded by ${refund.provider}: ${failedTargets.join(", ")})`
            : note,
          ...(to === "succeeded" || staleError ? { error: null } : {}),
          ...(release ? { holdsTarget: false } : reopened ? { holdsTarget: true } : {}),
          ...(failedTargets === undefined ? {} : { failedTargets }),
          ...(correct ? { corrects: true } : {}),
          // The detail words the verdict for a person; a program that asks whether a verdict repeats this one
          // (the gateway's replay) reads it here, as asked, not parsed back out of those words.
          verdict: { note, releaseTargets: release, failedTargets: failedTargets ?? [], correct }
        }
        // A correction to succeeded takes back targets its failed verdict freed, which another refund may have
        // taken since: checked as a claim of the refund would be, in the ledger's write where it can.
        return yield* correct && to === "succeeded" ? reclaim(refund, change) : record(id, change)
      })

    // The targets an operator names as not refunded (`ResolveOptions.failedTargets`), as the ledger records
    // them, each once, in the refund's order; refused, nothing written, unless each is a target of the
    // refund the provider did not report refunded, and some target is left to have been refunded.
    const namedTargets = (refund: Refund, named: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const provider = yield* Effect.option(providers.get(refund.provider))
        const canonical = (target: string) => (Option.isSome(provider) ? provider.value.canonicalTarget(target) : target)
        const targets = [...new Set(refund.targets.map((t) => t.target))]
        const refuse = (rule: string) => InvalidRequest.field("failedTargets", rule)
        const chosen = new Set<string>()
        for (const given of named) {
          const target = targets.includes(given) ? given : canonical(given)
          if (!targets.includes(target)) {
            return yield* refuse(`${JSON.stringify(given)} is not a target of refund ${refund.id} (its targets: ${targets.join(", ")}).`)
          }
          // An item an earlier verdict settled is that verdict's, which a correction may overturn.
          const refunded = refund.items.find((item) => item.target === target && item.status === "succeeded" && providerDecided(item))
          if (refunded !== undefined) {
            return yield* refuse(
              `${refund.provider} reported ${target} succeeded${refunded.providerStatus === undefined ? "" : ` (${refunded.providerStatus})`}: ` +
                "a target the provider says it refunded cannot be recorded as not refunded."
            )
          }
          chosen.add(target)
        }
        if (targets.every((target) => chosen.has(target))) {
          return yield* refuse(`names every target of refund ${refund.id}: the provider refunded none of them, so resolve it failed.`)
        }
        return targets.filter((target) => chosen.has(target))
      })

    // A reopen takes the refund's turn, as a verdict does: a sync or a verdict decided meanwhile is read first.
    const reopen = (id: string, note: string) => oneUpdateAtATime(id, reopenNow(id, note))

    const reopenNow = (id: string, note: string) =>
      Effect.gen(function*() {
        if (note.trim() === "") {
          return yield* InvalidRequest.field("note", "must say why the refund is reopened (what the provider's dashboard shows, and when)")
        }
        const refund = yield* ledger.get(id)
        const refusal = reopenRefusal(refund)
        if (refusal !== undefined) return yield* InvalidRequest.field("status", reopenRefused(id, refusal))
        const change: Change = {
          to: "requires_action",
          source: "operator",
          at: yield* nowIso,
          reopens: true,
          detail: note,
          verdict: { note, releaseTargets: false, failedTargets: [], correct: false, reopen: true }
        }
        // A reopened `failed` holds its targets again, which a refund made since it failed may have taken.
        return yield* reclaim(refund, change)
      })

    // Without `Ledger.reclaim`, whole targets are checked through `holderOf` before the write: a claim between
    // the check and the write is not seen, and amounts against original amounts are not checked.
    const reclaim = (refund: Refund, change: Change): Effect.Effect<Refund, GuardError | IllegalTransition | RefundNotFound | LedgerError> =>
      ledger.reclaim !== undefined
        ? ledger.reclaim(refund.id, change)
        : Effect.zipRight(
          Effect.forEach(ledger.holderOf === undefined ? [] : wholeTargets(refund), (target) =>
            Effect.flatMap(ledger.holderOf!(refund.provider, target), (holder) =>
              Option.isSome(holder) && holder.value.refundId !== refund.id
                ? Effect.fail(new TargetAlreadyRefunded({ target, refundId: holder.value.refundId, status: holder.value.status }))
                : Effect.void), { discard: true }),
          record(refund.id, change)
        )

    // A refund claimed since its process's last heartbeat has no lease yet: whatever the grace, recovery
    // leaves alone a refund updated within the last `beatsUnleased` heartbeats (processes sharing a ledger
    // are expected to share the heartbeat).
    const unleasedMillis = heartbeatMillis * beatsUnleased

    const recover = (grace: Duration.DurationInput) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        return yield* ledger.recover({
          at: new Date(now).toISOString(),
          olderThan: new Date(now - Math.max(Duration.toMillis(grace), unleasedMillis)).toISOString()
        })
      })

    // The read skips a refused event in the common case; `onlyFrom` decides under the ledger's lock.
    // `undefined` while a live process may still hold the refund: leased, or too recent to be leased yet,
    // unless the ledger knows its claimant has ended.
    const takeOne = (id: string, detail: string): Effect.Effect<Refund | undefined, RefundNotFound | LedgerError> =>
      Effect.flatMap(ledger.get(id), (refund) =>
        refund.status !== "requested" ? Effect.succeed(refund) : Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const at = new Date(now).toISOString()
          const take = record(id, recoveryOf(refund, at, detail)).pipe(Effect.catchTag("IllegalTransition", () => ledger.get(id)))
          const held = refund.updatedAt > new Date(now - unleasedMillis).toISOString()
            ? Effect.succeed(true)
            : Effect.map(ledger.leased === undefined ? Effect.succeed([]) : ledger.leased({ ids: [id], at }), (live) => live.length > 0)
          return Effect.flatMap(ledger.orphaned === undefined ? Effect.succeed([]) : ledger.orphaned([id]), (ended) =>
            ended.length > 0 ? take : Effect.flatMap(held, (isHeld) => isHeld ? Effect.succeed(undefined) : take))
        }))

    // Whether the refund's process is alive or was killed a moment ago (a bulk file re-run at once) cannot
    // always be told apart (another machine, another container): either its answer settles it, or the dead
    // process's last lease runs out, within as many heartbeats as a lease lasts, plus one.
    const holdersWaitMillis = heartbeatMillis * (beatsPerLease + 1)
    const recoverOne = (id: string, detail: string, options?: RecoverOneOptions) =>
      Effect.gen(function*() {
        const deadline = (yield* Clock.currentTimeMillis) + holdersWaitMillis
        for (let waited = false; ; waited = true) {
          const taken = yield* takeOne(id, detail)
          if (taken !== undefined) return taken
          if ((yield* Clock.currentTimeMillis) >= deadline) return yield* ledger.get(id)
          if (!waited && options?.onWait !== undefined) yield* options.onWait
          yield* Effect.sleep(Duration.millis(Math.min(heartbeatMillis, 1000)))
        }
      })

    // A target is recorded as its plugin spells it (Airpay's "010265" as "10265"): the caller's spelling
    // is put the same way, or the other spelling of the same transaction listed nothing. A provider not
    // registered here (installed but not configured in this shell) has its target matched as written.
    const list = (query: ListQuery): Effect.Effect<Page, LedgerError | InvalidRequest> => {
      const target = query.target
      if (query.provider === undefined || target === undefined) return ledger.list(query)
      return Effect.flatMap(
        Effect.option(providers.get(query.provider)),
        (provider) => ledger.list(Option.isSome(provider) ? { ...query, target: provider.value.canonicalTarget(target) } : query)
      )
    }

    return Refunds.of({ create, createMany, pipeline, get: ledger.get, list, sync, syncDue, update, webhook, resolve, reopen, recover, recoverOne })
  })

/**
 * @since 0.1.0
 */
export const layer = (options: Options = defaultOptions): Layer.Layer<Refunds, never, Providers | Ledger> =>
  Layer.scoped(Refunds, make(options))

/**
 * Options from the environment: `REFUNDKIT_CALL_TIMEOUT` (e.g. "30 seconds"),
 * `REFUNDKIT_MAX_RETRIES` (default 3), `REFUNDKIT_MAX_RATE_LIMIT_WAIT` (e.g.
 * "10 seconds"; unset waits as long as the rate limit needs) and `REFUNDKIT_HEARTBEAT`
 * (`Options.heartbeat`, default 15 seconds). `defaults` are what an
 * app wants when a setting is absent (the gateway bounds the rate-limit wait).
 *
 * @since 0.5.0
 */
export const optionsConfigWith = (
  defaults: { readonly maxRateLimitWait?: Duration.DurationInput | undefined } = {}
): Config.Config<Options> =>
  Config.all({
    // A zero timeout would leave every refund in doubt; a negative retry count means nothing.
    timeout: Config.duration("REFUNDKIT_CALL_TIMEOUT").pipe(
      Config.validate({ message: "must be a positive duration such as \"30 seconds\"", validation: (d) => Duration.greaterThan(d, Duration.zero) }),
      Config.withDefault(Duration.seconds(30))
    ),
    retries: Settings.wholeNumber("REFUNDKIT_MAX_RETRIES", { min: 0, max: 20 }, "must be a whole number of retries from 0 to 20").pipe(
      Config.withDefault(3)
    ),
    maxWait: Config.option(Config.duration("REFUNDKIT_MAX_RATE_LIMIT_WAIT")),
    // A zero heartbeat would lease in a busy loop; leases of zero length would protect nothing.
    heartbeat: Config.duration("REFUNDKIT_HEARTBEAT").pipe(
      Config.validate({ message: "must be a positive duration such as \"15 seconds\"", validation: (d) => Duration.greaterThan(d, Duration.zero) }),
      Config.withDefault(Duration.decode(defaultHeartbeat))
    )
  }).pipe(Config.map(({ heartbeat, maxWait, retries, timeout }) => {
    const maxRateLimitWait = Option.getOrUndefined(maxWait) ?? defaults.maxRateLimitWait
    return {
      ...defaultOptions,
      heartbeat,
      callTimeout: timeout,
      retrySchedule: retryScheduleFor(retries),
      ...(maxRateLimitWait === undefined ? {} : { maxRateLimitWait })
    }
  }))

/**
 * {@link layer} with its options from {@link optionsConfigWith}.
 *
 * @since 0.1.0
 */
export const layerConfigWith = (
  defaults: { readonly maxRateLimitWait?: Duration.DurationInput | undefined } = {}
): Layer.Layer<Refunds, import("effect/ConfigError").ConfigError, Providers | Ledger> =>
  Layer.unwrapEffect(Effect.map(optionsConfigWith(defaults), layer))

/**
 * {@link layerConfigWith} with no app defaults.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<Refunds, import("effect/ConfigError").ConfigError, Providers | Ledger> = layerConfigWith()
