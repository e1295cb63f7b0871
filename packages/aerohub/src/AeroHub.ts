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
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AeroHubClient from "./AeroHubClient.js"
import * as AeroHubConfig from "./AeroHubConfig.js"
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
  return Either.left(
    `refund ${refund.id} ended as ${refund.status} before AeroHub accepted its first update${refund.error === undefined ? "" : ` (${refund.error.message})`}; there is no progress to move: create a new refund for this refund order`
  )
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
    const decodeMoney = Schema.decodeUnknownOption(Schema.parseJson(AeroHubStatus.ReportedMoney))
    const decodeRecordedUpdate = Schema.decodeUnknownOption(Schema.parseJson(schemas.update))

    // The money a REFUNDED refund was reported with: its reference, or for a refund recorded
    // before the reference was kept, the accepted REFUNDED update in its history.
    const refundedMoney = (refund: Refund): Option.Option<typeof AeroHubStatus.ReportedMoney.Type> => {
      const kept = refund.references[AeroHubStatus.refundedMoneyReference]
      if (kept !== undefined) return decodeMoney(kept)
      const event = [...refund.events].reverse().find((e) => e.accepted && e.providerStatus === "REFUNDED" && e.detail?.startsWith("update ") === true)
      return Option.map(
        Option.flatMap(Option.fromNullable(event?.detail), (detail) => decodeRecordedUpdate(detail.slice("update ".length))),
        AeroHubStatus.moneyOf
      )
    }

    // Every call carries a fresh requestId and AeroHub documents no replay of an earlier
    // answer: a refusal of a retry speaks for the retry only. When an earlier attempt may
    // have been applied (a 500, a lost answer), the order may already be in the reported
    // state (PROCESSING "cannot be undone"), so the refusal leaves the outcome unknown
    // instead of declining the refund. Retries after attempts AeroHub did nothing with (a
    // 429, a 503) leave the refusal a decline: nothing else can have moved the order.
    const send = (request: AeroHubRequest.UpdateRefund, context: Provider.SubmitContext) =>
      Effect.flatMap(AeroHubWire.fromRequest(request), client.updateRefund).pipe(
        Effect.as(AeroHubStatus.outcomeOf(request)),
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
        // REFUNDED is final: repeating it is a replay of what AeroHub was told, and other money
        // would be a second, different settlement that AeroHub takes as a repeat and the refund
        // could not tell from the first.
        if (request.refundStatus === "REFUNDED" && refund.providerStatus === "REFUNDED") {
          const recorded = refundedMoney(refund)
          const conflict = Option.isSome(recorded) ? AeroHubStatus.moneyConflict(recorded.value, AeroHubStatus.moneyOf(request)) : undefined
          if (conflict !== undefined) {
            return yield* InvalidRequest.field(
              conflict.path,
              `refund ${refund.id} is already REFUNDED with ${conflict.recorded}; a repeated REFUNDED replays the same money, got ${conflict.sent}: it was not sent (AeroHub would take it as a repeat and keep the first)`,
              id
            )
          }
        }
        const encoded = yield* Effect.mapError(encodeUpdate(request), (error) => InvalidRequest.fromParseError(error, id))
        return {
          request: encoded,
          targets: [{ target: request.refundOrderNo }],
          submit: (context) => send(request, context)
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
