/**
 * The ledger: where refunds and their history are kept. This module holds the
 * service interface, the rules every implementation shares (transition checks,
 * over-refund arithmetic) and an in-memory implementation for tests.
 * `@refundkit/ledger-sql` is the durable one.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Money from "./Money.js"
import { storableText } from "./Provider.js"
import type { EventSource, OperatorVerdict, Refund, RefundEvent, RefundItem } from "./Refund.js"
import type { ErrorInfo } from "./RefundError.js"
import {
  DuplicateCallback,
  IllegalTransition,
  InvalidRequest,
  LedgerError,
  OverRefund,
  overRefundHoldersShown,
  RefundNotFound,
  TargetAlreadyRefunded
} from "./RefundError.js"
import * as RefundStatus from "./RefundStatus.js"
import * as Timestamp from "./Timestamp.js"

/**
 * The result of claiming an idempotency key: either this caller won and the refund
 * was recorded in `requested`, or the key already belonged to `refund`.
 *
 * @since 0.1.0
 */
export type Claim =
  | { readonly _tag: "Claimed"; readonly refund: Refund }
  | { readonly _tag: "Existing"; readonly refund: Refund }

/**
 * A change to a refund's status and what the provider said with it.
 *
 * @since 0.1.0
 */
export interface Change {
  readonly to: RefundStatus.RefundStatus
  readonly source: EventSource
  readonly at: string
  readonly providerStatus?: string | undefined
  /**
   * Whether the provider says `providerStatus` is final (`Outcome.providerFinal`); read only with
   * a `providerStatus`. A change without one keeps the refund's flag, and a refund that no longer
   * needs a sync drops it (since 0.4.0).
   */
  readonly providerFinal?: boolean | undefined
  /**
   * Whether a `failed` refund keeps holding its targets (`Outcome.holdsTarget`, `Refund.holdsTarget`).
   * `undefined` follows the provider's latest word: a change with a `providerStatus` drops the flag, one
   * without (an operator's, recovery's) keeps it, since a note typed by hand is not the provider
   * letting go of the refund. `false` releases the targets (an operator's explicit say-so: `Refunds.resolve`
   * with `releaseTargets`); `true` from an operator keeps them (`Refunds.resolve` of a refund its provider took
   * back from its own success, `reopening`). Only a `failed` refund carries it (since 0.6.0).
   */
  readonly holdsTarget?: boolean | undefined
  readonly providerReference?: string | undefined
  readonly references?: Readonly<Record<string, string>> | undefined
  readonly items?: ReadonlyArray<RefundItem> | undefined
  /**
   * With a final `to` and no `items`: carries `to` onto the items the provider has not decided
   * (`settleItems`), as they stand when the change applies, under the ledger's lock. An operator's
   * verdict (`Refunds.resolve`) sets it (since 0.6.0).
   */
  readonly settleItems?: boolean | undefined
  /**
   * With `settleItems`: targets the provider did not refund, as an operator learnt it
   * (`Refunds.resolve`'s `failedTargets`). Their items are recorded `failed` (an item the
   * provider reported `succeeded` keeps its word), and a target without an item gets one
   * (`verdictItems`), so the guards release it (`releasedTargets`) (since 0.6.0).
   */
  readonly failedTargets?: ReadonlyArray<string> | undefined
  /**
   * An operator's correction of an operator's verdict (`Refunds.resolve` with `correct`): lets a change
   * whose `source` is `operator` move a final status to the other one, where the accepted event that set
   * the final status came from an operator too. A final status the provider set stays final (the change
   * is refused as before), and so does a change to the same status. The event records which verdict it
   * corrects (since 0.6.0).
   */
  readonly corrects?: boolean | undefined
  /**
   * An operator's reopen of a final status the provider set (`Refunds.reopen`): lets a change whose `source` is
   * `operator` move a `succeeded` or `failed` refund to `requires_action`, where the accepted event that set the
   * final status is not an operator's verdict (a verdict is corrected: `corrects`). The refund's items in that
   * status are held as `requires_action` too, so that every target is held until a person settles it; the event
   * records what it reopens (`reopenOpening`) (since 0.6.0).
   */
  readonly reopens?: boolean | undefined
  /** `null` clears the stored error. */
  readonly error?: ErrorInfo | null | undefined
  readonly detail?: string | undefined
  /**
   * An operator's verdict as it was asked for (`Refunds.resolve`), recorded on the change's event
   * (`RefundEvent.verdict`) beside the `detail` that words it. Read only with `source` `operator`:
   * no other source records a verdict (since 0.6.0).
   */
  readonly verdict?: OperatorVerdict | undefined
  /**
   * The key of the provider's callback this change records (`WebhookEvent.dedupeKey`), kept on its
   * event (`RefundEvent.callbackKey`), refused or not. Read only with `source` `webhook`. A change whose
   * key one of the refund's events already records (`repeatedCallback`) records nothing and fails with
   * `DuplicateCallback`, decided under the same lock as the write, so two deliveries of one callback
   * racing each other are recorded once (since 0.6.0).
   */
  readonly callbackKey?: string | undefined
  /**
   * Applies only while the refund is in one of these statuses (checked under the same lock
   * as the transition table); otherwise it is refused like an illegal transition. A submit's
   * own verdict uses it: once a sync, a callback or recovery has moved the refund on, what
   * the submit's attempts saw no longer speaks for the refund.
   */
  readonly onlyFrom?: ReadonlyArray<RefundStatus.RefundStatus> | undefined
}

/**
 * One line of `countByStatus`.
 *
 * @since 0.4.0
 */
export interface StatusCount {
  readonly provider: string
  readonly status: RefundStatus.RefundStatus
  readonly count: number
}

/**
 * Filters and a page of `list`.
 *
 * @since 0.1.0
 */
export interface ListQuery {
  readonly provider?: string | undefined
  readonly status?: RefundStatus.RefundStatus | undefined
  /**
   * Only refunds against this target (a provider's own id: Exirom's `transactionId`, an Airalo
   * ICCID, Airpay's `ap_transactionid`); needs `provider`, since two providers' ids may coincide.
   */
  readonly target?: string | undefined
  /**
   * Only refunds created at or after this instant, and with `createdTo` before that one, in the
   * form the ledger writes `createdAt` (`Timestamp.parse` reads what a user types); another form
   * is `InvalidRequest` on the field, and so is `createdFrom` after `createdTo`. With either
   * bound the page is ordered by `createdAt`, newest first (refunds created in the same
   * millisecond newest recorded first): gateways' clocks disagree, so the order a ledger
   * records refunds in is not their creation order, and a range of creation times is walked in
   * its own order. Such a page's cursor continues lists with a creation bound only.
   */
  readonly createdFrom?: string | undefined
  /** See `createdFrom`; exclusive. */
  readonly createdTo?: string | undefined
  readonly limit: number
  /** From a previous page's `nextCursor`. */
  readonly cursor?: string | undefined
}

/**
 * A lease on refunds due for a sync, for one sync worker: refunds another worker holds an
 * unexpired lease on are skipped.
 *
 * @since 0.3.0
 */
export interface SyncLease {
  /** Who takes the lease: an instance id, so a worker can release only its own leases. */
  readonly owner: string
  /** Now, as an ISO 8601 timestamp; leases that end at or before it are free. */
  readonly at: string
  /** When the lease ends, as an ISO 8601 timestamp. */
  readonly until: string
  readonly providers?: ReadonlyArray<string> | undefined
  readonly limit: number
}

/**
 * @since 0.1.0
 */
export interface Page {
  readonly items: ReadonlyArray<Refund>
  readonly nextCursor?: string | undefined
}

/**
 * @since 0.1.0
 */
export class Ledger extends Context.Tag("@refundkit/core/Ledger")<Ledger, Ledger.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Ledger {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /**
     * Atomically claims (provider, idempotency key) and records `refund` in
     * `requested`, unless the key is taken. Where targets state an original amount,
     * refuses a claim that would take the refunds holding the target past it; a target named
     * without an amount (a whole refund) is refused while another refund holds it
     * (`TargetAlreadyRefunded`). A refund holds its targets unless it failed, and a failed one
     * its provider keeps on them still does (`holdsTargets`), except the targets whose items it
     * records `failed` (`releasedTargets`). Ledgers check both through
     * `targetGuards` and `refusalOf`.
     */
    readonly claim: (refund: Refund) => Effect.Effect<Claim, GuardError | LedgerError>
    readonly get: (id: string) => Effect.Effect<Refund, RefundNotFound | LedgerError>
    readonly findByKey: (provider: string, idempotencyKey: string) => Effect.Effect<Option.Option<Refund>, LedgerError>
    readonly findByReference: (provider: string, providerReference: string) => Effect.Effect<Option.Option<Refund>, LedgerError>
    /**
     * The first refund of `provider` naming `target` that holds it (`holdsOn`), read without a lock:
     * `Refunds` asks before a whole refund waits for its turn of a rate limit, so one the
     * claim would refuse takes no turn. The claim checks again under its lock. Optional: a
     * ledger without it only loses that shortcut (since 0.3.0).
     */
    readonly holderOf?: ((provider: string, target: string) => Effect.Effect<Option.Option<Reservation>, LedgerError>) | undefined
    /**
     * Runs `effect` as the only holder of refund `id`'s turn among every process sharing
     * this ledger: a second caller waits until the first has finished, and then reads what
     * the first recorded. `Refunds.update` runs each provider update in it (read the refund,
     * check the move, call the provider, record the answer), so two updates to one refund
     * reach the provider in order and the second is checked against what the first left.
     * Optional (since 0.4.0): without it, updates are serialised within one process only.
     */
    readonly serialise?: (<A, E, R>(id: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LedgerError, R>) | undefined
    /**
     * Applies a change through the transition table. An illegal change is recorded as
     * a refused event and fails with `IllegalTransition`; the refund is not overwritten.
     * A provider's callback the refund already records (`Change.callbackKey`, `repeatedCallback`
     * on the refund as read under the lock the write takes) records nothing and fails with
     * `DuplicateCallback`; no change without a `callbackKey` fails so (since 0.6.0).
     */
    readonly transition: (id: string, change: Change) => Effect.Effect<Refund, IllegalTransition | DuplicateCallback | RefundNotFound | LedgerError>
    /**
     * `transition` for a change that may make a refund hold its targets again (an operator's correction
     * of `failed` to `succeeded`: `Refunds.resolve` with `correct`). When the change turns a refund that
     * no longer held its targets (`holdsTargets`) into one that does, each target is checked as a claim of
     * the refund would be (`reclaimRefusal`: `targetGuards` and `refusalOf` against the other refunds
     * holding it), in the same write as the change and under the locks a claim takes; a refusal
     * (`TargetAlreadyRefunded` naming the holder, or `OverRefund`) records nothing. Any other change is
     * applied as `transition` applies it. Optional (since 0.6.0): without it `Refunds.resolve` checks the
     * whole targets through `holderOf` before the write, which another claim can slip past. It is for an
     * operator's change: a provider's callback goes through `transition`, which checks its `callbackKey`.
     */
    readonly reclaim?: ((id: string, change: Change) => Effect.Effect<Refund, GuardError | IllegalTransition | RefundNotFound | LedgerError>) | undefined
    /**
     * Newest first (by creation time with a creation bound: `ListQuery.createdFrom`); the cursor stays
     * valid while new refunds are recorded. A cursor this ledger did not issue, or one of a list with a
     * creation bound given to one without (or the other way round), is `InvalidRequest` on `cursor`.
     */
    readonly list: (query: ListQuery) => Effect.Effect<Page, LedgerError | InvalidRequest>
    /**
     * Refunds in `pending`, `unknown` or `requires_action`, oldest update first, except those whose
     * provider status is final (`Refund.providerFinal`): the provider has nothing more to say about them.
     */
    readonly needingSync: (query: { readonly providers?: ReadonlyArray<string> | undefined; readonly limit: number }) => Effect.Effect<ReadonlyArray<Refund>, LedgerError>
    /**
     * Like `needingSync`, but each returned refund is leased to `owner` until `until` and
     * refunds under another unexpired lease are skipped. Never-leased refunds come first
     * (oldest update first), then the least recently leased: a sync that changes nothing
     * leaves `updatedAt` alone, so by update time alone old refunds that never move would
     * come back every time their lease ran out and starve every newer one. Optional: the sync
     * loop of a ledger without it picks by `needingSync` alone (since 0.3.0).
     */
    readonly claimForSync?: ((lease: SyncLease) => Effect.Effect<ReadonlyArray<Refund>, LedgerError>) | undefined
    /** Ends `owner`'s leases on these refunds early (after syncing them); with `claimForSync` (since 0.3.0). */
    readonly releaseSync?: ((options: { readonly owner: string; readonly ids: ReadonlyArray<string> }) => Effect.Effect<void, LedgerError>) | undefined
    /**
     * How many refunds are in each of `statuses`, by provider; a provider and status with none
     * is left out. For the statuses whose refunds should stay few (`requested`, `unknown`,
     * `requires_action`: a gateway's metrics count them on every scrape): the SQL ledgers read
     * them from the status index, so the cost grows with those refunds, not with the ledger.
     * Optional (since 0.4.0).
     */
    readonly countByStatus?: ((statuses: ReadonlyArray<RefundStatus.RefundStatus>) => Effect.Effect<ReadonlyArray<StatusCount>, LedgerError>) | undefined
    /**
     * Moves refunds left in `requested` since before `olderThan` to `unknown`, with a recovery
     * event, except those whose first call a live process says is still out ({@link Ledger.Service.keepAlive}):
     * their lease must have run out as well. Those whose claimant the ledger knows has ended
     * ({@link Ledger.Service.orphaned}) are moved whatever their age or lease.
     */
    readonly recover: (options: { readonly olderThan: string; readonly at: string }) => Effect.Effect<ReadonlyArray<Refund>, LedgerError>
    /**
     * Says that the process calling it is still waiting for the first call of each of these
     * refunds (those still `requested`; others are passed by), for `forMillis` from now: until
     * then `recover` leaves them alone, however long ago they were claimed. A call that retries
     * and waits (4 attempts of 30 s by default, and a rate limit's turn) outlasts the recovery
     * grace; moved to `unknown` while it was out, its refund could be settled `failed` by hand
     * and its target refunded again before its answer arrived. `Refunds` calls it for the refunds
     * it has in flight, every `Options.heartbeat`. A ledger with a clock of its own (PostgreSQL's
     * `now()`) times the lease by it, so that a process whose clock runs ahead of the owner's does
     * not see it expired; others use `at`. Optional (since 0.6.0): without it, recovery goes by
     * `olderThan` alone.
     */
    readonly keepAlive?: ((options: { readonly ids: ReadonlyArray<string>; readonly at: string; readonly forMillis: number }) => Effect.Effect<void, LedgerError>) | undefined
    /**
     * Which of these refunds a live process leases now ({@link Ledger.Service.keepAlive}), by the
     * same clock: a caller about to take a `requested` refund for one whose process died (a bulk
     * re-run meeting its own file's rows) leaves those alone. Optional (since 0.6.0), with `keepAlive`.
     */
    readonly leased?: ((options: { readonly ids: ReadonlyArray<string>; readonly at: string }) => Effect.Effect<ReadonlyArray<string>, LedgerError>) | undefined
    /**
     * Which of these refunds, still `requested`, were claimed by a process the ledger can tell has
     * ended (`@refundkit/ledger-sql`: one on this machine whose pid is gone or now names another
     * process): nobody will record their first call's answer, so they are in doubt now, whatever
     * their age or lease. A claimant it cannot judge (on another machine, in another container)
     * is not among them. Optional (since 0.6.0): without it, a claimant is taken for gone once its
     * refund's grace and lease have passed.
     */
    readonly orphaned?: ((ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, LedgerError>) | undefined
  }
}

/**
 * Whether an item's status is the provider's word: not an operator's verdict on an item the provider
 * had not decided (`RefundItem.settledBy`). `Refunds.resolve`'s rule against failing a refund whose
 * provider reported a target refunded reads only these.
 *
 * @since 0.6.0
 */
export const providerDecided = (item: RefundItem): boolean => RefundStatus.isFinal(item.status) && item.settledBy !== "operator"

/**
 * The items of a refund settled `to` by a verdict that is not the provider's: an item the provider
 * has not decided (`requested`, `pending`, `requires_action`, `unknown`) takes `to`, marked
 * `settledBy: "operator"`, and one it decided (`succeeded`, `failed`) keeps its word, so a target the
 * provider refused stays `failed` in a refund recorded `succeeded`. An item an earlier verdict settled
 * is settled again: a correction of that verdict (`Change.corrects`) changes it too. Each keeps its
 * `providerStatus` and `message`: what the provider last said of it, which the refund's history does
 * not repeat per item. The same array when nothing changes.
 *
 * @since 0.6.0
 */
export const settleItems = (items: ReadonlyArray<RefundItem>, to: "succeeded" | "failed"): ReadonlyArray<RefundItem> => {
  const settled = (item: RefundItem) => providerDecided(item) || (item.status === to && item.settledBy === "operator")
  return items.every(settled) ? items : items.map((item): RefundItem => (settled(item) ? item : { ...item, status: to, settledBy: "operator" }))
}

// What a refund names against `target`, as one item's amount: its one amount, or their sum where
// it names the target more than once with a currency; none where it cannot be told.
const itemAmount = (refund: Refund, target: string): string | undefined => {
  const against = refund.targets.filter((t) => t.target === target)
  if (against.length === 1) return against[0]!.amount
  const currency = refund.currency
  if (currency === undefined || against.some((t) => t.amount === undefined)) return undefined
  let minor = 0n
  for (const t of against) {
    const parsed = Money.parse(t.amount!, currency)
    if (Either.isLeft(parsed)) return undefined
    minor += parsed.right.minor
  }
  return Money.formatMinor(minor, Money.exponentOf(currency) ?? 2)
}

/**
 * The items of a refund under an operator's verdict `to` that names `failedTargets`, targets the
 * provider did not refund: their items become `failed` (one the provider reported `succeeded` keeps
 * its word), the others are settled as `settleItems` settles them, and every target the refund names
 * without an item (a refund in doubt, never answered) gets one: `failed` if named, `to` otherwise,
 * with the amount the refund names against it. Each existing item keeps its `providerStatus` and
 * `message`. Without `failedTargets` it is `settleItems`.
 *
 * @since 0.6.0
 */
export const verdictItems = (
  refund: Refund,
  to: "succeeded" | "failed",
  failedTargets: ReadonlyArray<string> | undefined
): ReadonlyArray<RefundItem> => {
  if (failedTargets === undefined || failedTargets.length === 0) return settleItems(refund.items, to)
  const named = new Set(failedTargets)
  // An item the provider decided keeps its word; one an operator settled (an earlier verdict, being
  // corrected) or none settled takes this verdict's status.
  const items: Array<RefundItem> = refund.items.map((item): RefundItem =>
    providerDecided(item)
      ? item
      : { ...item, status: named.has(item.target) ? "failed" : to, settledBy: "operator" }
  )
  const covered = new Set(items.map((item) => item.target))
  for (const { target } of refund.targets) {
    if (covered.has(target)) continue
    covered.add(target)
    const amount = itemAmount(refund, target)
    items.push({ target, status: named.has(target) ? "failed" : to, settledBy: "operator", ...(amount === undefined ? {} : { amount }) })
  }
  return items
}

// What the provider says against each final status, when a person set it. A `requires_action` after a
// hand-made `succeeded` is a provider that has more to say than "refunded" (Exirom's CHARGEBACK: the
// cardholder may have been repaid twice), which a person reconciles, as after a hand-made `failed`.
// Of these, only `succeeded` -> `failed` and `succeeded` -> `requires_action` also reopen a status the
// provider set itself, and only from its own sync or callback (`overruling`).
const contradicts: { readonly [From in "succeeded" | "failed"]: ReadonlyArray<RefundStatus.RefundStatus> } = {
  failed: ["pending", "requires_action", "succeeded"],
  succeeded: ["failed", "requires_action"]
}

const heardIn: { readonly [Source in EventSource]: string } = {
  submit: "in the answer to its call",
  sync: "to a status query",
  webhook: "in a callback",
  operator: "by hand",
  recovery: "on recovery"
}

/**
 * The accepted event that moved a refund into its current status (the last accepted event that changed
 * the status): its `source` says whether the provider or an operator set a final status.
 *
 * @since 0.6.0
 */
export const setterOf = (refund: Refund): RefundEvent | undefined => {
  for (let i = refund.events.length - 1; i >= 0; i--) {
    const event = refund.events[i]!
    if (event.accepted && event.from !== event.to) return event
  }
  return undefined
}

/**
 * Whether an event is an operator's verdict (`Refunds.resolve`): an `operator` event without a provider
 * status word. A provider's answer to an update (AeroHub's `REFUNDED` or `CLOSED`) is recorded as the
 * operator's change too, with the provider's word: that one is the provider's.
 *
 * @since 0.6.0
 */
export const isVerdict = (event: RefundEvent): boolean =>
  event.source === "operator" && event.providerStatus === undefined && event.verdict?.reopen !== true

/**
 * Whether an event is an operator's reopen of a final status the provider set (`Refunds.reopen`): it records the
 * verdict it was asked as with `reopen: true`. It decides nothing about the refund's outcome, so it is no verdict
 * (`isVerdict`): it takes the refund back to a person, as a provider's reversal does (`reopening`).
 *
 * @since 0.6.0
 */
export const isReopenEvent = (event: RefundEvent): boolean => event.source === "operator" && event.verdict?.reopen === true

/**
 * Whether a change is an operator's reopen `applyChange` accepts out of a final status: marked `reopens`, from an
 * operator, to `requires_action`, of a final status that is not an operator's verdict (`setterOf`, `isVerdict`).
 *
 * @since 0.6.0
 */
export const isReopen = (refund: Refund, change: Change): boolean => {
  if (change.reopens !== true || change.source !== "operator" || change.to !== "requires_action" || !RefundStatus.isFinal(refund.status)) return false
  const setter = setterOf(refund)
  return setter !== undefined && !isVerdict(setter)
}

/**
 * Whether a change is an operator's correction `applyChange` accepts out of a final status: marked
 * `corrects`, from an operator, to the other final status, of a final status an operator's verdict set
 * (`setterOf`, `isVerdict`).
 *
 * @since 0.6.0
 */
export const isCorrection = (refund: Refund, change: Change): boolean => {
  if (change.corrects !== true || change.source !== "operator" || !RefundStatus.isFinal(refund.status)) return false
  if (!RefundStatus.isFinal(change.to) || change.to === refund.status) return false
  const setter = setterOf(refund)
  return setter !== undefined && isVerdict(setter)
}

// A status change, as `setterOf` counts one.
const changesStatus = (event: RefundEvent): boolean => event.accepted && event.from !== event.to

const providerSource = (source: EventSource): boolean => source !== "operator" && source !== "recovery"

/**
 * The event that took a final status back to a person, when nothing but operators' verdicts (a correction included)
 * has moved the refund since: it is held in `requires_action` for a person, or a person has settled it. Either the
 * provider's own, taking back its `succeeded` (`overruling`: a `failed` word, a reversal, or a `requires_action`
 * word it calls final, a chargeback), or an operator's reopen of a final status the provider set (`isReopenEvent`,
 * `Refunds.reopen`: a reversal or a refund seen only in the provider's dashboard). `undefined` for any other
 * refund, and for one whose `succeeded` was an operator's verdict (`isVerdict`): that is the rule for verdicts by
 * hand. `Refunds.resolve` keeps such a refund on its targets when it is resolved `failed` without
 * `releaseTargets`; `repeatsSettled` reads the word it took back (`reopenedWord`).
 *
 * @since 0.6.0
 */
export const reopening = (refund: Refund): RefundEvent | undefined => {
  const at = reopeningIndex(refund)
  return at === undefined ? undefined : refund.events[at]
}

const reopeningIndex = (refund: Refund): number | undefined => {
  const events = refund.events
  let i = events.length - 1
  while (i >= 0 && (!changesStatus(events[i]!) || isVerdict(events[i]!))) i--
  const reopened = events[i]
  if (reopened === undefined) return undefined
  // Accepted only out of a final status the provider set (`isReopen`): what set it was checked then.
  if (isReopenEvent(reopened)) return reopened.to === "requires_action" ? i : undefined
  if (reopened.from !== "succeeded" || reopened.to !== "requires_action" || !providerSource(reopened.source)) return undefined
  for (let j = i - 1; j >= 0; j--) {
    const event = events[j]!
    if (changesStatus(event)) return isVerdict(event) ? undefined : i
  }
  return undefined
}

/**
 * The provider's word that `reopening`'s event took back: the word it brought (a reversal's `FAILED`, a
 * `CHARGEBACK`), or, for an operator's reopen, the word the refund held when the operator reopened it (the
 * provider's `SUCCEED` the dashboard contradicts). `undefined` when nothing reopened the refund, or the provider
 * never gave a word.
 *
 * @since 0.6.0
 */
export const reopenedWord = (refund: Refund): string | undefined => {
  const at = reopeningIndex(refund)
  if (at === undefined) return undefined
  const reopened = refund.events[at]!
  if (!isReopenEvent(reopened)) return reopened.providerStatus
  for (let j = at - 1; j >= 0; j--) {
    const event = refund.events[j]!
    if (event.accepted && event.providerStatus !== undefined) return event.providerStatus
  }
  return undefined
}

/**
 * Whether a provider's change is no news: it brings, from the provider (a sync, a callback, a submit), the
 * provider status the refund already holds, and that word has been put to a person.
 *
 * - The refund is final by an operator's verdict (`setterOf`, `isVerdict`), and the change brings the word as
 *   `requires_action`: the word the operator had before them asked for a person, and the verdict is that
 *   person's answer. A retried callback or a second sync answering the same `CHARGEBACK` would otherwise move
 *   the refund back to `requires_action` every time, and it could never be settled.
 * - The word took back the provider's own `succeeded` (`reopening`: a reversal's `failed` word, a chargeback's
 *   `requires_action` word), whatever status it maps to: while the refund is held in `requires_action` for a
 *   person (the same `FAILED` from a callback after a sync saw it would otherwise make the refund `failed` and
 *   free its targets, nobody having decided), and once verdicts have settled it (after `resolve failed`, it would
 *   otherwise drop the hold the verdict kept).
 * - The word is the one an operator's reopen took back (`reopenedWord`: Exirom's `SUCCEED` again after the
 *   operator saw a reversal in its dashboard), for the same reasons: it would otherwise settle the refund back
 *   to what the operator said is wrong, and a `failed` word free targets a person is to decide on.
 *
 * `applyChange` refuses it; `Refunds.sync` and `Refunds.webhook` ask first and record nothing. A new word reopens
 * a settled refund, and after a verdict by hand on a refund the provider had not taken back from its own success
 * so does a `pending`, `succeeded` or `failed` word that contradicts the verdict, repeated or not: that says the
 * verdict itself is wrong (a hand-made `failed` freed targets the provider is still refunding).
 *
 * @since 0.6.0
 */
export const repeatsSettled = (refund: Refund, change: Pick<Change, "to" | "source" | "providerStatus">): boolean => {
  if (!providerSource(change.source) || change.providerStatus === undefined || change.providerStatus !== refund.providerStatus) return false
  if (reopenedWord(refund) === change.providerStatus) return true
  if ((refund.status !== "failed" && refund.status !== "succeeded") || change.to !== "requires_action") return false
  const setter = setterOf(refund)
  return setter !== undefined && isVerdict(setter)
}

/**
 * Why a provider's change is no news (`repeatsSettled`), in words: `Refunds.webhook` answers a callback
 * with it, and the ledger refuses such a change with it where the transition table would allow it.
 *
 * @since 0.6.0
 */
export const repeatReason = (refund: Refund, word: string): string => {
  const setter = setterOf(refund)
  return refund.status === "requires_action"
    ? `${word} repeats what ${refund.provider} said at ${setter?.at ?? refund.updatedAt}, which holds the refund in requires_action until a person settles it with refundkit resolve`
    : `${word} repeats what ${refund.provider} said before an operator recorded ${refund.status} at ${setter?.at ?? refund.updatedAt}`
}

/**
 * An operator's verdict on a refund in doubt reads the provider's dashboard; the provider's own word
 * arriving later (a submit still out when recovery moved its refund on, a sync, a callback) outranks
 * it. Refused as an illegal move out of a final status, a success after a hand-made `failed` was kept
 * only in the history while the target stood free for a second refund. It moves the refund to
 * `requires_action` instead: the target is held again, and a person settles it.
 *
 * A provider may also take back its own `succeeded`, from a sync or a callback (a submit's late answer,
 * `onlyFrom`, is older than the success and is still refused), in two ways. Refused, each was a real money
 * event the ledger dropped while the refund kept saying `succeeded`. Each moves the refund to
 * `requires_action` with its targets still held (it counts against original amounts as it did while
 * `succeeded`), and a person settles it with `Refunds.resolve`:
 *
 * - A `requires_action` word it calls final (`providerFinal`) is a chargeback or a dispute of the refund
 *   (Exirom's `CHARGEBACK` after its `SUCCEED`): the customer may have been repaid twice. A `requires_action`
 *   word it does not call final may still move on, and is refused.
 * - A `failed` word is a reversal: Stripe documents that a refund can go from succeeded to failed, the money
 *   back in the merchant's balance (the card account closed), and the customer not repaid. The refund does
 *   not become `failed`, which would free its targets for a second refund nobody decided on; items the change
 *   records `failed` (or, naming none, the refund's `succeeded` items) are held as `requires_action` too, since
 *   a `failed` item releases its target (`releasedTargets`). `Refunds.resolve` then keeps the targets of such a
 *   refund resolved `failed` unless the operator releases them in so many words (`releaseTargets`).
 *
 * A word that reopened the provider's own success, repeated, is no news (`repeatsSettled`).
 */
const overruling = (refund: Refund, change: Change): Change | undefined => {
  if ((refund.status !== "failed" && refund.status !== "succeeded") || !providerSource(change.source)) return undefined
  if (!contradicts[refund.status].includes(change.to) || repeatsSettled(refund, change)) return undefined
  const setter = setterOf(refund)
  if (setter === undefined) return undefined
  const detail = change.detail === undefined ? "" : ` (${change.detail})`
  if (setter.source === "operator") {
    const said = `${change.to}${change.providerStatus === undefined ? "" : ` (${change.providerStatus})`} ${heardIn[change.source]}`
    return {
      ...change,
      to: "requires_action",
      onlyFrom: undefined,
      detail: `${refund.provider} reports ${said} after an operator recorded ${refund.status}: check with ${refund.provider} and resolve it again${detail}`
    }
  }
  if (refund.status !== "succeeded" || change.providerStatus === undefined || change.onlyFrom !== undefined) return undefined
  const reported = `${refund.provider} reported ${change.providerStatus}`
  const made = `after it had reported ${setter.providerStatus ?? setter.to} ${heardIn[setter.source]} at ${setter.at}`
  if (change.to === "failed") {
    const reason = change.error?.code === "provider_declined" ? ` (${change.error.message})` : ""
    return {
      ...change,
      to: "requires_action",
      items: heldItems(change.items ?? refund.items, change.items === undefined ? "succeeded" : "failed"),
      detail: `${reported}${reason} ${heardIn[change.source]} ${made}: ` +
        `the refund may have been reversed and the customer not repaid, and its targets stay held; check with ${refund.provider} and settle it with refundkit resolve: ` +
        `succeeded if the refund stands, or failed --release-targets if ${refund.provider} confirms the reversal, which lets its targets be refunded again${detail}`
    }
  }
  if (change.providerFinal !== true) return undefined
  return {
    ...change,
    detail: `${reported} ${heardIn[change.source]} ${made}: ` +
      `the refund it made is charged back or disputed, and the customer may have been repaid twice; ` +
      `check with ${refund.provider} and settle it with refundkit resolve${detail}`
  }
}

// A reversal's items: those in `word` become `requires_action`, keeping the provider's word and message, so
// that none releases its target (`releasedTargets`) before a person has decided.
const heldItems = (items: ReadonlyArray<RefundItem>, word: "succeeded" | "failed"): ReadonlyArray<RefundItem> =>
  items.some((item) => item.status === word) ? items.map((item) => (item.status === word ? { ...item, status: "requires_action" } : item)) : items

/**
 * How a correction's event detail opens, before the operator's note (`<opening>: <note>`): it names the
 * verdict it corrects, since the history otherwise reads as two verdicts with nothing between them. A
 * gateway that answers a repeated correction as a replay recognises the event by it.
 *
 * @since 0.6.0
 */
export const correctionOpening = (corrected: RefundStatus.RefundStatus, at: string): string => `corrects the ${corrected} an operator recorded at ${at}`

const correcting = (refund: Refund, change: Change): Change => {
  const opening = correctionOpening(refund.status, setterOf(refund)!.at)
  return { ...change, onlyFrom: undefined, detail: change.detail === undefined ? opening : `${opening}: ${change.detail}` }
}

/**
 * How an operator's reopen's event detail opens, before the operator's note (`<opening>: <note>`): the final
 * status it takes back, who reported it (`how`: the provider and how it said so, as `Refunds.setBy` words it) and
 * when. The history otherwise reads as a provider's final word followed by a person's `requires_action` with
 * nothing to say what was contradicted.
 *
 * @since 0.6.0
 */
export const reopenOpening = (status: RefundStatus.RefundStatus, providerStatus: string | undefined, how: string, at: string): string =>
  `reopens the ${status}${providerStatus === undefined ? "" : ` (${providerStatus})`} ${how} reported at ${at}, held in requires_action until a person settles it with refundkit resolve`

/**
 * Who set a status that is not an operator's verdict, in words: the provider (how it said so), or refundkit's
 * recovery (`Refunds.setBy`).
 *
 * @since 0.6.0
 */
export const setterWords = (provider: string, setter: RefundEvent | undefined): string =>
  setter?.source === "recovery"
    ? "refundkit's recovery"
    : setter?.source === "operator"
    ? `${provider} (its answer to an update)`
    : `${provider} (${setter?.source ?? "submit"})`

const reopened = (refund: Refund, change: Change): Change => {
  const setter = setterOf(refund)!
  const opening = reopenOpening(refund.status, refund.providerStatus, setterWords(refund.provider, setter), setter.at)
  return {
    ...change,
    onlyFrom: undefined,
    // An item in the reopened status would decide its target on its own: a `failed` one releases it
    // (`releasedTargets`), a `succeeded` one makes `resolve failed` refuse the refund.
    items: change.items ?? heldItems(refund.items, refund.status === "succeeded" ? "succeeded" : "failed"),
    detail: change.detail === undefined ? opening : `${opening}: ${change.detail}`
  }
}

// Its fields only, as a SQL ledger stores them (`reopen` only where set): the memory ledger's copy reads back the same.
const verdictOf = (verdict: OperatorVerdict): OperatorVerdict => ({
  note: verdict.note,
  releaseTargets: verdict.releaseTargets,
  failedTargets: [...verdict.failedTargets],
  correct: verdict.correct,
  ...(verdict.reopen === true ? { reopen: true } : {})
})

// Before 0.6.0 core kept a callback's key in its event's words only: the whole detail was `webhook <key>`, or
// ended ` (webhook <key>)` where core wrapped them (a change that reopened a final refund, a refused change).
// Events recorded then (a SQL ledger's before its migration 17, which leaves them as they are) have no
// `callbackKey`, and a repeat of their callback is still known by those words.
const wordedCallback = (event: RefundEvent, key: string): boolean => {
  if (event.source !== "webhook" || event.detail === undefined) return false
  const marker = `webhook ${key}`
  return event.detail === marker || event.detail.endsWith(` (${marker})`)
}

/**
 * Whether an event records the provider's callback `key`: its `callbackKey`, or, on an event recorded
 * before ledgers kept one, the words core gave it then (`webhook <key>`).
 *
 * @since 0.6.0
 */
export const recordsCallback = (event: RefundEvent, key: string): boolean =>
  event.callbackKey === undefined ? wordedCallback(event, key) : event.callbackKey === key

/**
 * The refusal of a change that brings a provider's callback the refund already records
 * (`Change.callbackKey`, `recordsCallback`), applied or refused: the provider delivering it again, or two
 * deliveries of it racing each other. Every ledger asks it on the refund as it reads it under the lock
 * its write takes, before `applyChange`, and records nothing when it answers.
 *
 * @since 0.6.0
 */
export const repeatedCallback = (refund: Refund, change: Change): DuplicateCallback | undefined => {
  const key = change.callbackKey
  if (key === undefined || change.source !== "webhook" || !refund.events.some((event) => recordsCallback(event, key))) return undefined
  return new DuplicateCallback({ refundId: refund.id, callbackKey: key })
}

/**
 * The next state of a refund under a change, or the refused event and error when the
 * transition table does not allow it. Every ledger implementation applies changes
 * through this, so the rules live in one place. A NUL character in the change's `detail`
 * (a provider's decline reason quoted in it) is kept as U+FFFD: PostgreSQL text cannot
 * hold U+0000, and the write of the outcome would fail with the refund left in doubt.
 *
 * @since 0.1.0
 */
export const applyChange = (
  refund: Refund,
  given: Change
): Either.Either<Refund, { readonly refused: Refund; readonly error: IllegalTransition }> => {
  const detail = given.detail === undefined ? undefined : storableText(given.detail)
  const storable = detail === given.detail ? given : { ...given, detail }
  const overruled = overruling(refund, storable)
  const corrected = overruled === undefined && isCorrection(refund, storable) ? correcting(refund, storable) : undefined
  // An operator's reopen is the one other change the table does not allow out of a final status, marked as such.
  const reopen = overruled === undefined && corrected === undefined && isReopen(refund, storable) ? reopened(refund, storable) : undefined
  const marked = corrected ?? reopen
  const change = overruled ?? marked ?? storable
  const sequence = (refund.events.at(-1)?.sequence ?? 0) + 1
  const event: RefundEvent = {
    sequence,
    at: change.at,
    source: change.source,
    from: refund.status,
    to: change.to,
    accepted: true,
    ...(change.providerStatus === undefined ? {} : { providerStatus: change.providerStatus }),
    ...(change.detail === undefined ? {} : { detail: change.detail }),
    ...(change.verdict === undefined || change.source !== "operator" ? {} : { verdict: verdictOf(change.verdict) }),
    ...(change.callbackKey === undefined || change.source !== "webhook" ? {} : { callbackKey: change.callbackKey })
  }
  // A repeat the table allows (the reversal's `failed` again on the refund it holds, or on one a verdict
  // settled `failed`) would settle what a person is to decide, or drop the hold a verdict kept.
  const repeat = overruled === undefined && marked === undefined && RefundStatus.canTransition(refund.status, change.to) &&
      repeatsSettled(refund, change)
    ? repeatReason(refund, change.providerStatus!)
    : undefined
  if (
    repeat !== undefined || (overruled === undefined && marked === undefined &&
      (!RefundStatus.canTransition(refund.status, change.to) || (change.onlyFrom !== undefined && !change.onlyFrom.includes(refund.status))))
  ) {
    const said = repeat ?? change.detail
    const error = new IllegalTransition({ refundId: refund.id, from: refund.status, to: change.to, ...(said === undefined ? {} : { detail: said }) })
    const refusal = repeat !== undefined
      ? `refused: ${refund.status} -> ${change.to}: ${repeat}${change.detail === undefined ? "" : ` (${change.detail})`}`
      : `refused: ${refund.status} -> ${change.to} is not a legal transition${change.detail === undefined ? "" : ` (${change.detail})`}`
    return Either.left({ refused: { ...refund, events: [...refund.events, { ...event, accepted: false, detail: refusal }] }, error })
  }
  const { error: _previous, providerFinal: _final, holdsTarget: _holds, ...rest } = refund
  const error = change.error === undefined ? refund.error : change.error === null ? undefined : change.error
  const providerFinal = RefundStatus.needsSync(change.to) &&
    (change.providerStatus === undefined ? refund.providerFinal === true : change.providerFinal === true)
  // The hold on a refund its provider took back from its own success (`reopening`) is the verdict's, not the
  // provider's: a new failed word from the provider does not drop it.
  const holdsTarget = change.to === "failed" &&
    (change.holdsTarget ?? (refund.holdsTarget === true && (change.providerStatus === undefined || reopening(refund) !== undefined)))
  return Either.right({
    ...rest,
    ...(error === undefined ? {} : { error }),
    ...(providerFinal ? { providerFinal } : {}),
    ...(holdsTarget ? { holdsTarget } : {}),
    status: change.to,
    updatedAt: change.at,
    ...(change.providerStatus === undefined ? {} : { providerStatus: change.providerStatus }),
    ...(change.providerReference === undefined ? {} : { providerReference: change.providerReference }),
    references: change.references === undefined ? refund.references : { ...refund.references, ...change.references },
    items: change.items !== undefined
      ? change.items
      : change.settleItems === true && (change.to === "succeeded" || change.to === "failed")
      ? verdictItems(refund, change.to, change.failedTargets)
      : refund.items,
    events: [...refund.events, event]
  })
}

/**
 * The part of each target that the over-refund guard checks: amounts in minor units.
 *
 * @since 0.1.0
 */
export interface GuardedTarget {
  readonly target: string
  readonly amount: bigint
  readonly original: bigint
  readonly currency: string
}

/**
 * Targets of a refund that state both an amount and an original amount, one entry per
 * target: a refund naming the same target twice is checked against its sum, and against
 * the smaller original amount when the two disagree.
 *
 * @since 0.1.0
 */
export const guardedTargets = (refund: Refund): ReadonlyArray<GuardedTarget> => {
  const currency = refund.currency
  if (currency === undefined) return []
  const merged = new Map<string, GuardedTarget>()
  for (const t of refund.targets) {
    if (t.amount === undefined || t.originalAmount === undefined) continue
    const amount = Money.parse(t.amount, currency)
    const original = Money.parse(t.originalAmount, currency)
    if (Either.isLeft(amount) || Either.isLeft(original)) continue
    const seen = merged.get(t.target)
    merged.set(t.target, {
      target: t.target,
      currency,
      amount: (seen?.amount ?? 0n) + amount.right.minor,
      original: seen === undefined || original.right.minor < seen.original ? original.right.minor : seen.original
    })
  }
  return [...merged.values()]
}

/**
 * Whether the target guards count a refund: every refund that has not failed, and a failed one
 * whose provider keeps it on its targets (`Refund.holdsTarget`), since a new refund of them
 * would reach the provider as a repeat of it. Every ledger reads reservations through this rule
 * (the SQL ones as `status <> 'failed' OR holds_target = 1`), except the targets it released
 * (`releasedTargets`: `released = 0` on each reservation).
 *
 * @since 0.6.0
 */
export const holdsTargets = (refund: Refund): boolean => refund.status !== "failed" || refund.holdsTarget === true

/**
 * The targets a refund lets go of although it holds its targets (`holdsTargets`): those whose every
 * item the refund records `failed`, in a refund that is not itself `failed`. The provider refused them
 * (an Airpay transaction refused in a batch whose others it refunded), or an operator said it did not
 * refund them (`Refunds.resolve` with `failedTargets`), so a new refund of them must not be counted
 * against what this one never refunded. A target without an item, or with one in any other status, is
 * held; an item moved back from `failed` (a provider correcting itself) holds its target again. A
 * `failed` refund releases nothing here: it frees every target by its status, or keeps every one
 * (`Refund.holdsTarget`, refund-level: AeroHub's). Sorted, each once.
 *
 * This is the one rule: the in-memory ledger reads it (`holdsOn`), and the SQL ledgers write it beside
 * each reservation when a status change alters it (`releasedChange`).
 *
 * @since 0.6.0
 */
export const releasedTargets = (refund: Refund): ReadonlyArray<string> => {
  // Every status change of every refund asks (twice, in the SQL ledgers): nothing is allocated unless an item failed.
  if (refund.status === "failed" || !refund.items.some((item) => item.status === "failed")) return []
  const failed = new Set<string>()
  const held = new Set<string>()
  for (const item of refund.items) (item.status === "failed" ? failed : held).add(item.target)
  return [...failed].filter((target) => !held.has(target)).sort()
}

/**
 * The targets a refund releases after a change, when they differ from those it released before
 * (`releasedTargets`); `undefined` when the change leaves them as they were, as it does for every
 * refund none of whose items failed, so that a ledger writes nothing more for those.
 *
 * @since 0.6.0
 */
export const releasedChange = (before: Refund, after: Refund): ReadonlyArray<string> | undefined => {
  const now = releasedTargets(after)
  const was = releasedTargets(before)
  return now.length === was.length && now.every((target, i) => target === was[i]) ? undefined : now
}

/**
 * Whether a refund holds `target` for the target guards: it holds its targets (`holdsTargets`) and has
 * not released this one (`releasedTargets`).
 *
 * @since 0.6.0
 */
export const holdsOn = (refund: Refund, target: string): boolean => holdsTargets(refund) && !releasedTargets(refund).includes(target)

/**
 * The minor units a refund reserves against a target while it holds it (`holdsOn`).
 *
 * @since 0.1.0
 */
export const reservedAgainst = (refund: Refund, target: string): bigint => {
  if (!holdsOn(refund, target) || refund.currency === undefined) return 0n
  let reserved = 0n
  for (const t of refund.targets) {
    if (t.target !== target || t.amount === undefined) continue
    const amount = Money.parse(t.amount, refund.currency)
    if (Either.isRight(amount)) reserved += amount.right.minor
  }
  return reserved
}

/**
 * What one refund holds against one target, as the over-refund guard counts it: an
 * amount in minor units of `currency`, or no amount where none can be measured (the
 * refund states no currency, or names the target without an amount: a whole refund).
 *
 * @since 0.2.0
 */
export interface Reservation {
  readonly refundId: string
  readonly amount: bigint | undefined
  readonly currency: string | undefined
  /**
   * The holding refund's status, named when a whole refund is refused (since 0.3.0): `failed` only
   * for a refund whose provider keeps it on its targets (`Refund.holdsTarget`).
   */
  readonly status: RefundStatus.RefundStatus
}

/**
 * The reservation a refund holds against a target whatever its status (ledgers skip
 * refunds that no longer hold the target when they read reservations back: `holdsOn`),
 * or none when it does not name it.
 *
 * @since 0.2.0
 */
export const reservationOf = (refund: Refund, target: string): Reservation | undefined => {
  const against = refund.targets.filter((t) => t.target === target)
  if (against.length === 0) return undefined
  const currency = refund.currency
  let amount: bigint | undefined = currency === undefined ? undefined : 0n
  for (const t of against) {
    const parsed = currency === undefined || t.amount === undefined ? undefined : Money.parse(t.amount, currency)
    amount = amount === undefined || parsed === undefined || Either.isLeft(parsed) ? undefined : amount + parsed.right.minor
  }
  return { refundId: refund.id, amount, currency, status: refund.status }
}

/**
 * The guard's verdict on one target: the refusal when the refunds already reserved against
 * it that hold it (`holdsOn`) and this one would exceed its original amount, or when one
 * of them cannot be counted in the guard's currency: the guard refuses what it cannot
 * prove fits rather than sum amounts of different currencies or guess a whole refund's.
 *
 * @since 0.2.0
 */
export const overRefundOf = (guard: GuardedTarget, reservations: Iterable<Reservation>): OverRefund | undefined => {
  let reserved = 0n
  const counted: Array<Reservation> = []
  for (const r of reservations) {
    const reason = r.currency === undefined
      ? "states no currency"
      : r.currency !== guard.currency
      ? `is in ${r.currency}`
      : r.amount === undefined
      ? "states no amount (a whole refund)"
      : undefined
    if (reason !== undefined) return overRefund(guard, guard.original, { refundId: r.refundId, reason })
    reserved += r.amount!
    counted.push(r)
  }
  return reserved + guard.amount > guard.original ? overRefund(guard, reserved, undefined, counted) : undefined
}

/**
 * What a claim may be refused with by the target guards.
 *
 * @since 0.3.0
 */
export type GuardError = OverRefund | TargetAlreadyRefunded

/**
 * One target a claim must check before it is recorded: an amount checked against its
 * original amount (`GuardedTarget`), or a whole refund, which no other refund holding the
 * target (`holdsOn`) may share.
 *
 * @since 0.3.0
 */
export type TargetGuard =
  | ({ readonly _tag: "Amount" } & GuardedTarget)
  | { readonly _tag: "Whole"; readonly target: string }

/**
 * Targets a refund names at least once without an amount: whole refunds. A whole refund
 * is guarded whether or not it states original amounts, since the only refund it can
 * share its target with is one that failed and let go of it.
 *
 * @since 0.3.0
 */
export const wholeTargets = (refund: Refund): ReadonlyArray<string> => [
  ...new Set(refund.targets.filter((t) => t.amount === undefined).map((t) => t.target))
]

/**
 * Every check a claim of `refund` must pass, one per target, in target order (the order
 * ledgers that lock targets take their locks in): a whole refund's target is guarded as
 * whole even where the refund also names it with an amount.
 *
 * @since 0.3.0
 */
export const targetGuards = (refund: Refund): ReadonlyArray<TargetGuard> => {
  const whole = wholeTargets(refund)
  const guards: Array<TargetGuard> = whole.map((target) => ({ _tag: "Whole", target }))
  for (const guard of guardedTargets(refund)) {
    if (!whole.includes(guard.target)) guards.push({ _tag: "Amount", ...guard })
  }
  return guards.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0))
}

/**
 * The guard's verdict on one target given the reservations of the other refunds that hold
 * it (`holdsOn`): a whole refund is refused by any of them, an amount by
 * `overRefundOf`'s rules.
 *
 * @since 0.3.0
 */
export const refusalOf = (guard: TargetGuard, reservations: Iterable<Reservation>): GuardError | undefined => {
  if (guard._tag === "Amount") return overRefundOf(guard, reservations)
  for (const r of reservations) {
    return new TargetAlreadyRefunded({ target: guard.target, refundId: r.refundId, status: r.status })
  }
  return undefined
}

/**
 * Why a change may not make `before` hold its targets again (`Ledger.reclaim`), given `after`, what the
 * change makes of it, and `heldBy`, the reservations the refunds holding a target have on it as the
 * ledger reads them under its lock: a refund that did not hold its targets (`holdsTargets`) and now
 * would is refused where a claim of it would be (`targetGuards`, `refusalOf`), the refund itself left
 * out. `undefined` when it may, or when the change does not take the targets back.
 *
 * @since 0.6.0
 */
export const reclaimRefusal = (
  before: Refund,
  after: Refund,
  heldBy: (target: string) => Iterable<Reservation>
): GuardError | undefined => {
  if (holdsTargets(before) || !holdsTargets(after)) return undefined
  for (const guard of targetGuards(after)) {
    const others = [...heldBy(guard.target)].filter((r) => r.refundId !== after.id)
    const refused = refusalOf(guard, others)
    if (refused !== undefined) return refused
  }
  return undefined
}

/**
 * The refusal for a target whose refunds would exceed its original amount.
 *
 * @since 0.1.0
 */
export const overRefund = (
  guard: GuardedTarget,
  alreadyReserved: bigint,
  blockedBy?: { readonly refundId: string; readonly reason: string },
  counted: ReadonlyArray<Reservation> = []
): OverRefund => {
  const places = Money.exponentOf(guard.currency) ?? 2
  const remaining = guard.original - alreadyReserved
  const shown = counted.slice(0, overRefundHoldersShown)
  return new OverRefund({
    target: guard.target,
    requested: Money.formatMinor(guard.amount, places),
    remaining: Money.formatMinor(remaining < 0n ? 0n : remaining, places),
    currency: guard.currency,
    ...(blockedBy === undefined ? {} : { blockedBy }),
    ...(shown.length === 0
      ? {}
      : {
        // Every counted reservation states an amount in `guard.currency` (`overRefundOf` stops at one that does not).
        heldBy: shown.map((r) => ({ refundId: r.refundId, amount: Money.formatMinor(r.amount ?? 0n, places), status: r.status })),
        ...(counted.length > shown.length ? { heldByCount: counted.length } : {})
      })
  })
}

/**
 * The error code of a refund that is claimed but provably not sent: the call packing it
 * with others was refused as a whole, and it waits, still `requested`, for a call of its own.
 * Recovery fails such a refund instead of making it `unknown` (see {@link recoveryOf}).
 *
 * @since 0.3.0
 */
export const notSentCode = "not_sent"

/**
 * What recovery makes of a refund an interrupted process left in `requested`: `unknown`,
 * since its call may have gone out, unless it carries {@link notSentCode}. That one
 * never reached the provider: it is `failed`, and a `bulk --retry-failed` sends it again,
 * where `unknown` at a provider without a status API (Airalo) needs a person to check it.
 * Every ledger's `recover` applies this, as core's `recoverOne` does.
 *
 * @since 0.3.0
 */
export const recoveryOf = (refund: Refund, at: string, detail = "left in requested by an interrupted process; not resent"): Change =>
  refund.error?.code === notSentCode
    ? {
      to: "failed",
      source: "recovery",
      at,
      detail: "left in requested by an interrupted process before its call was sent; failed, as nothing reached the provider",
      onlyFrom: ["requested"]
    }
    : { to: "unknown", source: "recovery", at, detail, onlyFrom: ["requested"] }

/**
 * The refusal for a `cursor` a ledger did not issue, or issued for a list of the other kind: a
 * plain list's cursor does not continue a list with creation bounds, nor the reverse. "Not a cursor
 * from this ledger" sent an operator holding this ledger's cursor looking for another ledger.
 *
 * @since 0.1.0
 */
export const invalidCursor: InvalidRequest = InvalidRequest.field(
  "cursor",
  "is not a cursor of this list: pass the nextCursor of its previous page, asked with the same creation bounds (or none)"
)

/**
 * What every ledger answers to a `list` by target without a provider.
 *
 * @since 0.1.0
 */
export const targetWithoutProvider: InvalidRequest = InvalidRequest.field(
  "target",
  "is a provider's own id (a transactionId, an ICCID) and needs provider: name the provider too"
)

/**
 * Whether a list has a creation bound, and so is ordered by `createdAt` (`ListQuery.createdFrom`).
 *
 * @since 0.4.0
 */
export const byCreation = (query: ListQuery): boolean => query.createdFrom !== undefined || query.createdTo !== undefined

/**
 * What every ledger answers to a `list` whose creation bounds are not in the ledger's form or
 * are the wrong way round; `undefined` when they are fine (or absent).
 *
 * @since 0.4.0
 */
export const createdRangeRefusal = (query: ListQuery): InvalidRequest | undefined => {
  for (const field of ["createdFrom", "createdTo"] as const) {
    const value = query[field]
    if (value !== undefined && !Timestamp.isCanonical(value)) {
      return InvalidRequest.field(field, `must be a timestamp as the ledger writes createdAt (2026-12-06T14:00:00.000Z), got ${JSON.stringify(value)}`)
    }
  }
  return query.createdFrom !== undefined && query.createdTo !== undefined && query.createdFrom > query.createdTo
    ? InvalidRequest.field("createdFrom", `must not be after createdTo (${query.createdFrom} is after ${query.createdTo})`)
    : undefined
}

const encodeCursor = (position: number): string => Buffer.from(`p:${position}`).toString("base64url")
const decodeCursor = (cursor: string): number | undefined => {
  const text = Buffer.from(cursor, "base64url").toString()
  return text.startsWith("p:") ? Number(text.slice(2)) : undefined
}

// A list by creation time continues after the last refund handed out: its creation time and place in the ledger.
const encodeCreatedCursor = (createdAt: string, position: number): string => Buffer.from(`c:${position}:${createdAt}`).toString("base64url")
const decodeCreatedCursor = (cursor: string): { readonly createdAt: string; readonly position: number } | undefined => {
  const match = /^c:(\d{1,15}):(.+)$/s.exec(Buffer.from(cursor, "base64url").toString())
  return match === null ? undefined : { position: Number(match[1]), createdAt: match[2]! }
}

/**
 * An in-memory ledger: atomic because every operation is one synchronous step.
 * For tests and demos; nothing survives the process.
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<Ledger.Service> = Effect.sync(() => {
  const byId = new Map<string, Refund>()
  const order: Array<string> = []
  const keyOf = (provider: string, key: string) => `${provider}\u0000${key}`
  const byKey = new Map<string, string>()
  // Leases are not part of a refund (as in the SQL ledger's columns beside it): a change keeps them.
  const leases = new Map<string, { readonly until: string; readonly owner: string }>()
  const seqOf = new Map<string, number>()
  // When each in-flight refund's lease runs out (`keepAlive`), beside the refund as `leases` are.
  const aliveUntil = new Map<string, string>()
  // A lease holds while `at` is before its end, as a sync lease does.
  const leasedAt = (id: string, at: string) => (aliveUntil.get(id) ?? "") > at

  /** What the refunds of `provider` that hold `target` reserve on it, oldest first. */
  const heldOn = (provider: string, target: string): Array<Reservation> =>
    order.flatMap((id) => {
      const other = byId.get(id)!
      const r = other.provider === provider && holdsOn(other, target) ? reservationOf(other, target) : undefined
      return r === undefined ? [] : [r]
    })

  /** Both of the sync paths' choice: a status that needs a sync, a provider word not final, a provider asked about. */
  const dueForSync = (refund: Refund, providers: ReadonlyArray<string> | undefined): boolean =>
    RefundStatus.needsSync(refund.status) && refund.providerFinal !== true && (providers === undefined || providers.includes(refund.provider))

  const get = (id: string) =>
    Effect.suspend(() => {
      const refund = byId.get(id)
      return refund === undefined ? Effect.fail(new RefundNotFound({ refundId: id })) : Effect.succeed(refund)
    })

  // The SQL ledgers' order for a list by creation time: createdAt, then seq, newest first.
  const listByCreation = (query: ListQuery): Effect.Effect<Page, InvalidRequest> => {
    const after = query.cursor === undefined ? undefined : decodeCreatedCursor(query.cursor)
    if (query.cursor !== undefined && after === undefined) return Effect.fail(invalidCursor)
    const matching: Array<{ readonly refund: Refund; readonly position: number }> = []
    order.forEach((id, position) => {
      const refund = byId.get(id)!
      if (query.provider !== undefined && refund.provider !== query.provider) return
      if (query.status !== undefined && refund.status !== query.status) return
      if (query.target !== undefined && !refund.targets.some((t) => t.target === query.target)) return
      if (query.createdFrom !== undefined && refund.createdAt < query.createdFrom) return
      if (query.createdTo !== undefined && refund.createdAt >= query.createdTo) return
      if (after !== undefined && (refund.createdAt > after.createdAt || (refund.createdAt === after.createdAt && position >= after.position))) return
      matching.push({ refund, position })
    })
    const page = matching
      .sort((a, b) => (a.refund.createdAt < b.refund.createdAt ? 1 : a.refund.createdAt > b.refund.createdAt ? -1 : b.position - a.position))
      .slice(0, Math.max(0, Math.floor(query.limit)) + 1)
    const shown = page.slice(0, Math.max(0, Math.floor(query.limit)))
    const last = shown.at(-1)
    return Effect.succeed(
      page.length > shown.length && last !== undefined
        ? { items: shown.map((m) => m.refund), nextCursor: encodeCreatedCursor(last.refund.createdAt, last.position) }
        : { items: shown.map((m) => m.refund) }
    )
  }

  return Ledger.of({
    claim: (refund) =>
      Effect.suspend(() => {
        const existingId = byKey.get(keyOf(refund.provider, refund.idempotencyKey))
        if (existingId !== undefined) return Effect.succeed<Claim>({ _tag: "Existing", refund: byId.get(existingId)! })
        for (const guard of targetGuards(refund)) {
          const refused = refusalOf(guard, heldOn(refund.provider, guard.target))
          if (refused !== undefined) return Effect.fail(refused)
        }
        byId.set(refund.id, refund)
        byKey.set(keyOf(refund.provider, refund.idempotencyKey), refund.id)
        seqOf.set(refund.id, order.push(refund.id))
        return Effect.succeed<Claim>({ _tag: "Claimed", refund })
      }),
    get,
    findByKey: (provider, key) =>
      Effect.sync(() => Option.fromNullable(byKey.get(keyOf(provider, key))).pipe(Option.flatMap((id) => Option.fromNullable(byId.get(id))))),
    findByReference: (provider, reference) =>
      Effect.sync(() => Option.fromNullable([...byId.values()].find((r) => r.provider === provider && r.providerReference === reference))),
    holderOf: (provider, target) => Effect.sync(() => Option.fromNullable(heldOn(provider, target)[0])),
    transition: (id, change) =>
      Effect.flatMap(get(id), (refund): Effect.Effect<Refund, IllegalTransition | DuplicateCallback> => {
        const repeated = repeatedCallback(refund, change)
        if (repeated !== undefined) return Effect.fail(repeated)
        return Either.match(applyChange(refund, change), {
          onLeft: ({ error, refused }) => {
            byId.set(id, refused)
            return Effect.fail(error)
          },
          onRight: (next) => {
            byId.set(id, next)
            return Effect.succeed(next)
          }
        })
      }),
    reclaim: (id, change) =>
      Effect.flatMap(get(id), (refund): Effect.Effect<Refund, GuardError | IllegalTransition> =>
        Either.match(applyChange(refund, change), {
          onLeft: ({ error, refused }) => {
            byId.set(id, refused)
            return Effect.fail(error)
          },
          onRight: (next) => {
            const refused = reclaimRefusal(refund, next, (target) => heldOn(refund.provider, target))
            if (refused !== undefined) return Effect.fail(refused)
            byId.set(id, next)
            return Effect.succeed(next)
          }
        })),
    list: (query) =>
      Effect.suspend(() => {
        if (query.target !== undefined && query.provider === undefined) return Effect.fail(targetWithoutProvider)
        const badRange = createdRangeRefusal(query)
        if (badRange !== undefined) return Effect.fail(badRange)
        if (byCreation(query)) return listByCreation(query)
        const from = query.cursor === undefined ? order.length : decodeCursor(query.cursor)
        if (from === undefined || !Number.isInteger(from) || from < 0) return Effect.fail(invalidCursor)
        const start = from - 1
        const items: Array<Refund> = []
        let position = start
        for (; position >= 0 && items.length < query.limit; position--) {
          const refund = byId.get(order[position]!)!
          if (query.provider !== undefined && refund.provider !== query.provider) continue
          if (query.status !== undefined && refund.status !== query.status) continue
          if (query.target !== undefined && !refund.targets.some((t) => t.target === query.target)) continue
          items.push(refund)
        }
        return Effect.succeed(position >= 0 ? { items, nextCursor: encodeCursor(position + 1) } : { items })
      }),
    needingSync: (query) =>
      Effect.sync(() =>
        [...byId.values()]
          .filter((r) => dueForSync(r, query.providers))
          .sort((a, b) => (a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : 0))
          .slice(0, query.limit)
      ),
    claimForSync: (lease) =>
      Effect.sync(() => {
        const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
        // The SQL ledger's order: sync_lease_until NULLS FIRST, updated_at, seq.
        const picked = [...byId.values()]
          .filter((r) => {
            const held = leases.get(r.id)
            return dueForSync(r, lease.providers) && (held === undefined || held.until <= lease.at)
          })
          .sort((a, b) => {
            const [x, y] = [leases.get(a.id)?.until, leases.get(b.id)?.until]
            if (x !== y) return x === undefined ? -1 : y === undefined ? 1 : compare(x, y)
            return compare(a.updatedAt, b.updatedAt) || seqOf.get(a.id)! - seqOf.get(b.id)!
          })
          .slice(0, Math.max(0, Math.floor(lease.limit)))
        for (const r of picked) leases.set(r.id, { until: lease.until, owner: lease.owner })
        return picked.sort((a, b) => compare(a.updatedAt, b.updatedAt) || seqOf.get(a.id)! - seqOf.get(b.id)!)
      }),
    releaseSync: ({ ids, owner }) =>
      Effect.sync(() => {
        for (const id of ids) if (leases.get(id)?.owner === owner) leases.delete(id)
      }),
    countByStatus: (statuses) =>
      Effect.sync(() => {
        const counts = new Map<string, StatusCount>()
        for (const refund of byId.values()) {
          if (!statuses.includes(refund.status)) continue
          const key = `${refund.provider}\u0000${refund.status}`
          const seen = counts.get(key)
          counts.set(key, { provider: refund.provider, status: refund.status, count: (seen?.count ?? 0) + 1 })
        }
        return [...counts.values()]
      }),
    keepAlive: ({ at, forMillis, ids }) =>
      Effect.sync(() => {
        const until = new Date(Date.parse(at) + forMillis).toISOString()
        for (const id of ids) if (byId.get(id)?.status === "requested") aliveUntil.set(id, until)
      }),
    leased: ({ at, ids }) => Effect.sync(() => ids.filter((id) => byId.get(id)?.status === "requested" && leasedAt(id, at))),
    recover: ({ at, olderThan }) =>
      Effect.sync(() => {
        const moved: Array<Refund> = []
        for (const refund of byId.values()) {
          if (refund.status !== "requested" || refund.updatedAt >= olderThan || leasedAt(refund.id, at)) continue
          const next = applyChange(refund, recoveryOf(refund, at))
          if (Either.isRight(next)) {
            byId.set(refund.id, next.right)
            moved.push(next.right)
          }
        }
        return moved
      })
  })
})

/**
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<Ledger> = Layer.effect(Ledger, makeMemory)

/**
 * Wraps an unexpected storage failure.
 *
 * @since 0.1.0
 */
export const ledgerError = (cause: unknown): LedgerError =>
  new LedgerError({ detail: cause instanceof Error ? cause.message : String(cause) })
