/**
 * The AeroHub provider plugin. Here the refundkit user is a ticket supplier on
 * AeroHub's FareMarket: AeroHub sends them a refund order, and they report its
 * progress back with UpdateRefund. One AeroHub refund order is one refund: creating
 * it sends the order's first update, and each later update (`Refunds.update`) moves
 * it along AeroHub's state machine, checked locally before anything is sent.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Provider from "@refundkit/core/Provider"
import * as Providers from "@refundkit/core/Providers"
import type { Refund } from "@refundkit/core/Refund"
import { type ConfigurationError, InvalidRequest, OutcomeUnknown, type ProviderError } from "@refundkit/core/RefundError"
import * as RefundStatus from "@refundkit/core/RefundStatus"
import * as UpdateEvent from "@refundkit/core/UpdateEvent"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Record from "effect/Record"
import * as Schema from "effect/Schema"
import * as AeroHubClient from "./AeroHubClient.js"
import * as AeroHubConfig from "./AeroHubConfig.js"
import * as AeroHubReplay from "./AeroHubReplay.js"
import * as AeroHubRequest from "./AeroHubRequest.js"
import * as AeroHubStatus from "./AeroHubStatus.js"
import * as AeroHubTransitions from "./AeroHubTransitions.js"
import * as AeroHubWire from "./AeroHubWire.js"

/**
 * The plugin id.
 *
 * @since 0.1.0
 */
export const id = "aerohub"

/**
 * What AeroHub's UpdateRefund allows:
 * - one refund order per call (`maxTargetsPerCall: 1`);
 * - no status API and no refund callback to the supplier (`statusQuery`, `webhooks`
 *   false: the supplier is the source of the progress);
 * - `idempotentSubmit`: repeating an update for the same target state changes nothing
 *   at AeroHub, and AeroHub itself asks for a retry whenever the answer is not 200;
 * - `updates`: later progress goes through `Refunds.update`;
 * - `partialRefunds` false: refundkit does not choose an amount here, the supplier
 *   reports what was refunded (`refundAmount`) and AeroHub owns the order;
 * - settlement in money (`refundCost`; vouchers are reported beside it).
 * No rate limit is documented.
 *
 * @since 0.1.0
 */
export const capabilities: Provider.Capabilities = {
  partialRefunds: false,
  maxTargetsPerCall: 1,
  statusQuery: false,
  webhooks: false,
  idempotentSubmit: true,
  updates: true,
  settlement: "money"
}

const StoredRequest = Schema.Struct({
  refundOrderNo: Schema.String,
  purchaseOrderNo: Schema.String,
  refundStatus: AeroHubRequest.RefundStatus
})

/** A shell word for `text` (single quotes, each `'` closed, escaped and reopened). */
const shellQuoted = (text: string): string => `'${text.replaceAll("'", "'\\''")}'`

/** The CLI command that sends `request` as an update of the refund. */
const updateCommand = (refundId: string, request: unknown): string => `refundkit update ${refundId} --data ${shellQuoted(JSON.stringify(request))}`

/**
 * What settles an AeroHub call in doubt (core's `Definition.inDoubtAdvice`): the same update again.
 * AeroHub takes an update to the state an order is in as a repeat, so the repeat is safe whatever
 * happened to the first, and its answer is what the refund records. A verdict by hand would record
 * no AeroHub word, and the order's next updates could not be checked against one.
 */
const inDoubtAdvice = (refundId: string, request: unknown): string =>
  `AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ` +
  `${updateCommand(refundId, request)} (on the gateway: POST /v1/refunds/${refundId}/events with that body)`

/** The refund phase's steps, in order: what a supplier reports on the way to REFUNDED. */
const refundPhase: ReadonlyArray<AeroHubRequest.RefundStatus> = ["PROCESSING", "REFUNDED_PENDING", "REFUNDED"]

/** The steps still to report after `state` on the way to REFUNDED (none after a final state). */
const stepsAfter = (state: AeroHubRequest.RefundStatus | undefined): ReadonlyArray<AeroHubRequest.RefundStatus> =>
  state === undefined || state === "QUOTE_COMPLETED"
    ? refundPhase
    : refundPhase.includes(state)
    ? refundPhase.slice(refundPhase.indexOf(state) + 1)
    : []

/**
 * Where a refund stands at AeroHub, as far as refundkit knows: the states the next
 * update may start from. Its recorded AeroHub word when it has one; when the first
 * update's outcome is not known (a timeout), either nothing or that update's state.
 */
const standing = (refund: Refund, stored: Option.Option<typeof StoredRequest.Type>): Either.Either<ReadonlyArray<AeroHubRequest.RefundStatus | undefined>, string> => {
  if (refund.providerStatus !== undefined && AeroHubRequest.isRefundStatus(refund.providerStatus)) return Either.right([refund.providerStatus])
  if (refund.status === "unknown" || refund.status === "requested") {
    return Either.right(Option.match(stored, { onNone: () => [undefined], onSome: (request) => [undefined, request.refundStatus] }))
  }
  // Ended with no AeroHub word: AeroHub refused its first update, or an operator settled the refund by
  // hand while that update was in doubt (which this version refuses for `succeeded`, and earlier ones took).
  const ended = [...refund.events].reverse().find((event) => event.accepted && event.from !== event.to && event.to === refund.status)
  const first = Option.match(stored, { onNone: () => "its first update", onSome: (request) => `its first update (${request.refundStatus})` })
  if (ended?.source === "operator" && refund.status === "succeeded") {
    return Either.left(
      `refund ${refund.id} was resolved succeeded by an operator (refundkit resolve, ${ended.at}) while ${first} was in doubt, so it records no AeroHub word, ` +
        "and a succeeded refund is final: refundkit can send no update for this refund order, and refuses a new refund of it while this one holds it. " +
        "This cannot be undone through refundkit: report the order's progress at AeroHub directly (AeroHub's supplier portal or your own UpdateRefund call)"
    )
  }
  if (ended?.source === "operator" && refund.status === "failed") {
    return Either.left(
      `refund ${refund.id} was resolved failed by an operator while ${first} was in doubt, so it records no AeroHub word to move from, and it holds nothing: ` +
        "create a new refund for this refund order with its first update again (AeroHub takes a repeat of the state the order is in), then send the next steps as updates of that refund"
    )
  }
  return Either.left(
    `refund ${refund.id} ended as ${refund.status} before AeroHub accepted its first update${refund.error === undefined ? "" : ` (${refund.error.message})`}; there is no progress to move: create a new refund for this refund order`
  )
}

/** A repeat compared with what the refund recorded of its state: `recorded` false when there is nothing to compare with. */
interface Replay {
  readonly recorded: boolean
  readonly conflict?: AeroHubReplay.Conflict | undefined
}

/** What a refund keeps of one state's content, under which reference, and how a repeat is compared with it. */
interface Kept {
  readonly what: string
  readonly reference: string
  /** `reference` is the refund's kept JSON; `history` the update the refund's history says brought it there. */
  readonly replay: (reference: string | undefined, history: () => Option.Option<AeroHubRequest.UpdateRefund>, sent: AeroHubRequest.UpdateRefund) => Replay
  /** The first difference between an earlier update to this state and `sent`; undefined when `sent` repeats it. */
  readonly compare: (earlier: AeroHubRequest.UpdateRefund, sent: AeroHubRequest.UpdateRefund) => AeroHubReplay.Conflict | undefined
}

const keptAs = <A, I>(
  what: string,
  reference: string,
  schema: Schema.Schema<A, I>,
  of: (update: AeroHubRequest.UpdateRefund) => A,
  conflict: (recorded: A, sent: A) => AeroHubReplay.Conflict | undefined
): Kept => {
  const decode = Schema.decodeUnknownOption(Schema.parseJson(schema))
  return {
    what,
    reference,
    replay: (kept, history, sent) => {
      const recorded = kept !== undefined ? decode(kept) : Option.map(history(), of)
      return Option.match(recorded, { onNone: () => ({ recorded: false }), onSome: (was) => ({ recorded: true, conflict: conflict(was, of(sent)) }) })
    },
    compare: (earlier, sent) => conflict(of(earlier), of(sent))
  }
}

/**
 * The plugin for one configuration.
 *
 * @since 0.1.0
 */
export const make = (config: AeroHubConfig.AeroHubConfig): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* AeroHubClient.make(config)
    const schemas = AeroHubRequest.make(config.rejectReasons)
    const decodeUpdate = Schema.decodeUnknown(schemas.update, { errors: "all", onExcessProperty: "error" })
    const encodeUpdate = Schema.encode(schemas.update)
    const decodeStored = Schema.decodeUnknownOption(StoredRequest)
    const decodeFirstRequest = Schema.decodeUnknownOption(schemas.update)
    // The update an event of `Refunds.update` recorded, as core wrote it.
    const recorded = (detail: string | undefined, inDoubt: boolean): Option.Option<AeroHubRequest.UpdateRefund> =>
      Option.flatMap(
        Option.filter(UpdateEvent.recordedUpdate(detail, id), (update) => update.inDoubt === inDoubt),
        (update) => decodeFirstRequest(update.request)
      )

    // What each state a repeat must replay keeps on the refund, and how a repeat is compared with it.
    const replayed: { readonly [S in AeroHubRequest.RefundStatus]?: Kept } = {
      REFUNDED: keptAs("money", AeroHubStatus.refundedMoneyReference, AeroHubStatus.ReportedMoney, AeroHubStatus.moneyOf, AeroHubStatus.moneyConflict),
      CLOSED: keptAs("rejection", AeroHubReplay.rejectionReference, AeroHubReplay.Rejection, AeroHubReplay.rejectionOf, AeroHubReplay.rejectionConflict),
      QUOTE_REJECTED: keptAs("rejection", AeroHubReplay.rejectionReference, AeroHubReplay.Rejection, AeroHubReplay.rejectionOf, AeroHubReplay.rejectionConflict),
      QUOTE_COMPLETED: keptAs("quote", AeroHubReplay.quoteReference, AeroHubReplay.Quote, AeroHubReplay.quoteOf, AeroHubReplay.quoteConflict)
    }

    // The update that brought a refund recorded before its content was kept to `state`, from its
    // history: the first accepted event reaching that state (a later one can be a repeat that an
    // earlier version sent with other content, which AeroHub did not take), read from its
    // "update …" detail, or the refund's own request when it was the answer to the first update.
    const firstUpdateTo = (refund: Refund, state: AeroHubRequest.RefundStatus): Option.Option<AeroHubRequest.UpdateRefund> => {
      const event = refund.events.find((e) => e.accepted && e.providerStatus === state)
      if (event === undefined) return Option.none()
      const update = recorded(event.detail, false)
      if (Option.isSome(update)) return update
      if (event.source !== "submit") return Option.none()
      return Option.filter(decodeFirstRequest(refund.request), (request) => request.refundStatus === state)
    }

    // The updates AeroHub may have applied without the refund recording it, oldest first, each as sent
    // and decoded: those in doubt since the refund last recorded an AeroHub word (an answer recorded
    // after them is newer news), and the order's first update while no answer to it was ever recorded
    // (a create left `unknown`).
    const inDoubt = (refund: Refund): ReadonlyArray<{ readonly sent: unknown; readonly update: AeroHubRequest.UpdateRefund }> => {
      const lastAnswer = refund.events.reduce((last, e, i) => (e.accepted && e.providerStatus !== undefined ? i : last), -1)
      const first = refund.providerStatus === undefined && lastAnswer === -1 ? [refund.request] : []
      const later = refund.events.slice(lastAnswer + 1).filter((e) => e.accepted).flatMap((e) =>
        Option.toArray(Option.map(Option.filter(UpdateEvent.recordedUpdate(e.detail, id), (u) => u.inDoubt), (u) => u.request))
      )
      return [...first, ...later].flatMap((sent) => Option.toArray(Option.map(decodeFirstRequest(sent), (update) => ({ sent, update }))))
    }

    // The updates to `state` in doubt: if one was applied, AeroHub takes a later update to `state` as a
    // repeat and keeps that one's content.
    const inDoubtTo = (refund: Refund, state: AeroHubRequest.RefundStatus): ReadonlyArray<AeroHubRequest.UpdateRefund> =>
      inDoubt(refund).flatMap((d) => (d.update.refundStatus === state ? [d.update] : []))

    // An operator's verdict (core's `Definition.verdictRefusal`). Only AeroHub's answers to the supplier's
    // own updates say where an order stands, and a refund settled by hand takes no update that would move
    // its status (a `succeeded` one at PROCESSING can send neither REFUNDED_PENDING nor REFUNDED): so
    // `succeeded` is taken only once AeroHub was told REFUNDED (answered or in doubt), and `pending`,
    // `requires_action` and `unknown`, which would record no AeroHub word, never. `failed` is taken: it
    // gives the order up in refundkit and frees it for a new refund (unless AeroHub keeps it, `holdsTarget`).
    const verdictRefusal = (refund: Refund, to: RefundStatus.RefundStatus): string | undefined => {
      if (to === "failed") return undefined
      const word = refund.providerStatus !== undefined && AeroHubRequest.isRefundStatus(refund.providerStatus) ? refund.providerStatus : undefined
      const doubtful = inDoubt(refund)
      const told = [...(word === undefined ? [] : [word]), ...doubtful.map((d) => d.update.refundStatus)]
      if (to === "succeeded" && told.some((state) => AeroHubStatus.statusOf(state) === "succeeded")) return undefined
      const earliest = doubtful[0]
      const order = Option.match(decodeStored(refund.request), { onNone: () => refund.targets[0]?.target ?? "", onSome: (s) => s.refundOrderNo })
      const stands = earliest !== undefined
        ? `its ${earliest.update.refundStatus} update's outcome is not known${word === undefined ? "" : ` (AeroHub last answered ${word})`}`
        : `AeroHub has it at ${word ?? "a word refundkit does not know"}`
      const remaining = stepsAfter(earliest?.update.refundStatus ?? word)
      const closedOff = to === "succeeded" && remaining.length > 0
        ? ` Resolved succeeded, it would take no further update, and the order could not be reported ${remaining.join(" or ")} through refundkit.`
        : ""
      const next = remaining[0]
      const instead = earliest !== undefined
        ? `send that update again, the same (AeroHub takes a repeat, and its answer is recorded): ${updateCommand(refund.id, earliest.sent)}${remaining.length > 0 ? `, then the next steps (${remaining.join(", then ")}) the same way` : ""}`
        : next !== undefined
        ? `report the order's next steps (${remaining.join(", then ")}) as updates, the next one: ${
          updateCommand(refund.id, {
            ...Option.match(decodeStored(refund.request), { onNone: () => ({ refundOrderNo: order }), onSome: (s) => ({ refundOrderNo: s.refundOrderNo, purchaseOrderNo: s.purchaseOrderNo }) }),
            refundStatus: next,
            ...(next === "REFUNDED" ? { refundAmount: [{ refundCost: "<the amount refunded>" }] } : {})
          })
        }`
        : "report the order's progress with updates (refundkit update)"
      return `refund ${refund.id} is not resolved ${to} by hand: an AeroHub refund stands where AeroHub's answers to your updates put refund order ${order}, and ${stands}.${closedOff} ` +
        `Instead, ${instead}. To give the order up in refundkit, resolve it failed, which frees the order for a new refund.`
    }

    // Every call carries a fresh requestId and AeroHub documents no replay of an earlier
    // answer: a refusal of a retry speaks for the retry only. When an earlier attempt may
    // have been applied (a 500, a lost answer), the order may already be in the reported
    // state (PROCESSING "cannot be undone"), so the refusal leaves the outcome unknown
    // instead of declining the refund. Retries after attempts AeroHub did nothing with (a
    // 429, a 503) leave the refusal a decline: nothing else can have moved the order.
    const send = (request: AeroHubRequest.UpdateRefund, context: Provider.SubmitContext, outcome: Provider.Outcome = AeroHubStatus.outcomeOf(request)) =>
      Effect.flatMap(AeroHubWire.fromRequest(request), client.updateRefund).pipe(
        Effect.as(outcome),
        Effect.mapError((error): ProviderError =>
          // A core that does not say (older than this field) is read the cautious way.
          context.attempt > 1 && (context.earlierMayHaveTakenEffect ?? true) && error._tag === "ProviderDeclined"
            ? new OutcomeUnknown({
              provider: id,
              detail: `AeroHub refused a retry of ${request.refundStatus} for ${request.refundOrderNo} (code ${error.providerCode}: ${error.reason}) after an earlier attempt that may have been applied; check the order at AeroHub`
            })
            : error
        )
      )

    const update = (refund: Refund, input: unknown) =>
      Effect.gen(function*() {
        const request = yield* Effect.mapError(decodeUpdate(input), (error) => InvalidRequest.fromParseError(error, id))
        const stored = decodeStored(refund.request)
        const order = Option.match(stored, { onNone: () => refund.targets[0]?.target, onSome: (s) => s.refundOrderNo })
        if (request.refundOrderNo !== order) {
          return yield* InvalidRequest.field(
            "refundOrderNo",
            `must be ${JSON.stringify(order)}, the refund order of refund ${refund.id}: one refund follows one AeroHub refund order`,
            id
          )
        }
        if (Option.isSome(stored) && request.purchaseOrderNo !== stored.value.purchaseOrderNo) {
          return yield* InvalidRequest.field(
            "purchaseOrderNo",
            `must be ${JSON.stringify(stored.value.purchaseOrderNo)}, the order refund order ${order} belongs to`,
            id
          )
        }
        const from = yield* Either.mapLeft(standing(refund, stored), (message) => InvalidRequest.field("refundStatus", message, id))
        const refusals = from.map((state) => AeroHubTransitions.refusal(state, request.refundStatus))
        if (refusals.every((refused) => refused !== undefined)) {
          return yield* InvalidRequest.field("refundStatus", `illegal move for refund ${refund.id}: ${refusals[refusals.length - 1]}`, id)
        }
        // A refund settled by hand (`resolve`) keeps the AeroHub word it had, so AeroHub's state machine
        // alone would let this update out, and AeroHub would take it, but the refund could not record it.
        const to = AeroHubStatus.statusOf(request.refundStatus)
        if (!RefundStatus.canTransition(refund.status, to)) {
          return yield* InvalidRequest.field(
            "refundStatus",
            `refund ${refund.id} is ${refund.status} (settled by an operator while AeroHub had ${refund.providerStatus ?? "nothing"}), and a ${request.refundStatus} update would make it ${to}: it was not sent; report this order's progress at AeroHub directly`,
            id
          )
        }
        // A repeat of REFUNDED, CLOSED, QUOTE_REJECTED or QUOTE_COMPLETED is a replay of what AeroHub was
        // told: AeroHub takes it as a repeat and keeps the first, so other content (money, a rejection,
        // a quote) would be recorded on the refund although AeroHub never accepted it.
        const state = request.refundStatus
        const kept = replayed[state]
        const repeated = kept !== undefined && refund.providerStatus === state
        const replay = !repeated ? undefined : kept.replay(refund.references[kept.reference], () => firstUpdateTo(refund, state), request)
        if (kept !== undefined && replay?.conflict !== undefined) {
          return yield* InvalidRequest.field(
            replay.conflict.path,
            `refund ${refund.id} is already ${state} with ${replay.conflict.recorded}; a repeated ${state} replays the same ${kept.what}, got ${replay.conflict.sent}: it was not sent (AeroHub would take it as a repeat and keep the first)`,
            id
          )
        }
        // An update to this state in doubt is as binding as an accepted one: had AeroHub applied it, it
        // would keep its content and take this one as a repeat, while the refund recorded this one's.
        const doubt = kept === undefined || repeated ? undefined : inDoubtTo(refund, state).reduce<AeroHubReplay.Conflict | undefined>(
          (found, earlier) => found ?? kept.compare(earlier, request),
          undefined
        )
        if (kept !== undefined && doubt !== undefined) {
          return yield* InvalidRequest.field(
            doubt.path,
            `refund ${refund.id} sent ${state} with ${doubt.recorded} in an update whose outcome is not known (AeroHub may have applied it); a repeated ${state} replays the same ${kept.what}, got ${doubt.sent}: it was not sent (AeroHub would take it as a repeat and keep the first). Send that update again, the same, to learn its outcome`,
            id
          )
        }
        // With nothing recorded to compare with, the repeat is sent as before, but its content is not
        // recorded as the state's: AeroHub kept the first, whatever it was.
        const accepted = AeroHubStatus.outcomeOf(request)
        const outcome = kept === undefined || !repeated || replay?.recorded === true
          ? accepted
          : { ...accepted, references: Record.remove(accepted.references ?? {}, kept.reference) }
        const encoded = yield* Effect.mapError(encodeUpdate(request), (error) => InvalidRequest.fromParseError(error, id))
        return {
          request: encoded,
          targets: [{ target: request.refundOrderNo }],
          submit: (context) => send(request, context, outcome)
        } satisfies Provider.Prepared
      })

    return Provider.make({
      id,
      displayName: "AeroHub",
      capabilities,
      requestSchema: schemas.create,
      describe: (request) => ({ targets: [{ target: request.refundOrderNo }] }),
      submit: (request, context) => send(request, context),
      update,
      inDoubtAdvice,
      verdictRefusal,
      statusHint: "AeroHub documents no status API for suppliers: you are the source of a refund order's progress; report the next step with an update.",
      statusRank: AeroHubStatus.statusRank
    })
  })

/**
 * The plugin's Layer for a given configuration.
 *
 * @since 0.1.0
 */
export const layer = (config: AeroHubConfig.AeroHubConfig): Layer.Layer<never, ConfigurationError, Providers.Providers | HttpClient.HttpClient> =>
  Providers.plugin(make(config))

/**
 * The plugin's Layer configured from `REFUNDKIT_AEROHUB_*`.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<never, ConfigurationError | ConfigError.ConfigError, Providers.Providers | HttpClient.HttpClient> =
  Providers.pluginConfig("AeroHub", AeroHubConfig.config, make)
