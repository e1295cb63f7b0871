/**
 * The Airpay plugin: encrypted, checksummed batch refunds against Airpay v4, one
 * outcome per transaction.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Money from "@refundkit/core/Money"
import * as Provider from "@refundkit/core/Provider"
import * as Providers from "@refundkit/core/Providers"
import type { RefundTarget } from "@refundkit/core/Refund"
import type { ConfigurationError } from "@refundkit/core/RefundError"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as AirpayClient from "./AirpayClient.js"
import * as AirpayConfig from "./AirpayConfig.js"
import * as AirpayRequest from "./AirpayRequest.js"
import * as AirpayStatus from "./AirpayStatus.js"

/**
 * The plugin id.
 *
 * @since 0.1.0
 */
export const id = AirpayStatus.provider

/**
 * What Airpay can do, for a given number of transactions per call:
 * - partial refunds: yes, the amount is per transaction;
 * - several transactions per call (`maxTransactionsPerCall`), each with its own outcome;
 * - no status API and no refund callback in Airpay's v4 docs;
 * - `idempotentSubmit: false`: Airpay has no idempotency key. It answers "Refund already
 *   initiated" for a transaction that already has a refund, but its docs show that
 *   only for a repeat of the same amount and also allow partial refunds; whether a
 *   second partial refund of the same transaction is refused or performed is not
 *   documented, so a blind resend after a lost answer could refund twice.
 *
 * @since 0.1.0
 */
export const capabilities = (maxTransactionsPerCall: number): Provider.Capabilities => ({
  partialRefunds: true,
  maxTargetsPerCall: maxTransactionsPerCall,
  statusQuery: false,
  webhooks: false,
  idempotentSubmit: false,
  updates: false,
  settlement: "money"
})

/**
 * Why a status query is unsupported, and what to do instead.
 *
 * @since 0.1.0
 */
export const statusHint =
  "Airpay v4 documents no refund status API or refund callback: each transaction's outcome comes back on the refund call. Check a refund left unknown in the Airpay merchant dashboard and record what you find with `refundkit resolve <id> --status succeeded|failed --note ...` (or Refunds.resolve); " +
  "where Airpay refunded some of its transactions and not others, succeeded with `--failed-target <ap_transactionid>` for each one not refunded (failedTargets), which frees it for a new refund."

const total = (request: AirpayRequest.AirpayRequest): string | undefined => {
  let sum: Money.Money | undefined
  for (const transaction of request.transactions) {
    const amount = Money.parse(transaction.amount, request.currency)
    if (Either.isLeft(amount)) return undefined
    const next = sum === undefined ? Either.right(amount.right) : Money.add(sum, amount.right)
    if (Either.isLeft(next)) return undefined
    sum = next.right
  }
  return sum === undefined ? undefined : Money.format(sum)
}

const targetsOf = (request: AirpayRequest.AirpayRequest): ReadonlyArray<RefundTarget> =>
  request.transactions.map((t) => ({ target: t.ap_transactionid, amount: t.amount }))

/**
 * Packs several requests into one call: same currency, no transaction twice, at most
 * `max` transactions. None otherwise, and core sends them apart.
 *
 * @since 0.1.0
 */
export const combine = (max: number) => (requests: ReadonlyArray<AirpayRequest.AirpayRequest>): Option.Option<AirpayRequest.AirpayRequest> => {
  const first = requests[0]
  if (first === undefined) return Option.none()
  if (requests.some((r) => r.currency !== first.currency)) return Option.none()
  const transactions = requests.flatMap((r) => r.transactions)
  if (transactions.length > max) return Option.none()
  if (new Set(transactions.map((t) => t.ap_transactionid)).size !== transactions.length) return Option.none()
  return Option.some({ transactions, currency: first.currency })
}

/**
 * The provider, talking to Airpay with `config`.
 *
 * @since 0.1.0
 */
export const make = (config: AirpayConfig.AirpayConfig): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* AirpayClient.make(config)
    const max = config.maxTransactionsPerCall
    return Provider.make({
      id,
      displayName: "Airpay",
      capabilities: capabilities(max),
      requestSchema: AirpayRequest.withMaxTransactions(max),
      describe: (request) => {
        const amount = total(request)
        return { targets: targetsOf(request), currency: request.currency, ...(amount === undefined ? {} : { amount }) }
      },
      submit: (request, context) =>
        client.refund(request.transactions).pipe(
          Effect.map((data) => AirpayStatus.outcomeOf(targetsOf(request).map((t) => ({ target: t.target, amount: t.amount ?? "" })), data, context.attempt > 1))
        ),
      combine: combine(max),
      statusHint,
      statusRank: AirpayStatus.statusRank,
      canonicalTarget: AirpayRequest.canonicalTarget
    })
  })

/**
 * The plugin's Layer: registers Airpay in the registry.
 *
 * @since 0.1.0
 */
export const layer = (config: AirpayConfig.AirpayConfig): Layer.Layer<never, ConfigurationError, Providers.Providers | HttpClient.HttpClient> =>
  Providers.plugin(make(config))

/**
 * The plugin's Layer from `REFUNDKIT_AIRPAY_*` (see `AirpayConfig.config`).
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError | ConfigurationError, Providers.Providers | HttpClient.HttpClient> =
  Providers.pluginConfig("Airpay", AirpayConfig.config, make)
