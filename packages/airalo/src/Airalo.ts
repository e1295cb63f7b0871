/**
 * The Airalo provider plugin: eSIM refund requests (`POST /v2/refund`) that Airalo
 * reviews by hand and, when approved, pays as Airalo credits.
 *
 * Airalo has no idempotency key, no refund status endpoint and no refund webhook, and
 * rate-limits refund calls hard; the capabilities say so, so core never resends a
 * request that may have reached Airalo, never asks for a status, and paces calls.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Provider from "@refundkit/core/Provider"
import * as Providers from "@refundkit/core/Providers"
import { ConfigurationError } from "@refundkit/core/RefundError"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as AiraloClient from "./AiraloClient.js"
import * as AiraloConfig from "./AiraloConfig.js"
import * as AiraloRequest from "./AiraloRequest.js"
import * as AiraloStatus from "./AiraloStatus.js"
import { providerId } from "./internal/provider.js"

/**
 * The plugin id.
 *
 * @since 0.1.0
 */
export const id = providerId

/**
 * Shown when someone asks for an Airalo refund's status: how the outcome is learnt instead.
 *
 * @since 0.1.0
 */
export const statusHint =
  "Airalo has no refund status endpoint: its support team reviews each request by hand and emails the decision to your account's " +
  "contact (and to the request's `email`, when given); an approved refund appears as Airalo credits on your balance (GET /v2/balance). " +
  "Record the decision with `refundkit resolve <id> --status succeeded|failed --note ...` (or Refunds.resolve): succeeded when credited, failed when refused; " +
  "for a request whose ICCIDs Airalo decided apart, succeeded with `--failed-target <iccid>` for each one refused (failedTargets), which frees it for a new request."

/**
 * Extra time refundkit waits beyond Airalo's window before the next refund call.
 * Airalo's window starts when the first request arrives; refundkit's starts when it lets
 * the call begin, a token fetch earlier. Without this guard a call released at the very
 * end of refundkit's window can reach Airalo just before Airalo's window closes.
 *
 * @since 0.1.0
 */
export const rateLimitGuardMillis = (perMillis: number): number => Math.min(Math.max(Math.ceil(perMillis * 0.05), 500), 5_000)

/**
 * What Airalo can do, for a given refund rate limit (undefined: refundkit does not pace).
 *
 * - `partialRefunds: false`: a request names eSIMs, never an amount.
 * - `maxTargetsPerCall: 5`: up to 5 ICCIDs per request.
 * - `statusQuery`, `webhooks: false`: neither exists for refunds.
 * - `idempotentSubmit: false`: no idempotency key; a repeat opens a second review.
 * - `settlement: "credits"`: approved refunds are Airalo credits.
 * - `rateLimit`: the configured limit, its window lengthened by {@link rateLimitGuardMillis}.
 *
 * @since 0.1.0
 */
export const capabilitiesFor = (rateLimit: AiraloConfig.RateLimit | undefined): Provider.Capabilities => ({
  partialRefunds: false,
  maxTargetsPerCall: AiraloRequest.maxIccids,
  statusQuery: false,
  webhooks: false,
  idempotentSubmit: false,
  updates: false,
  settlement: "credits",
  ...(rateLimit === undefined
    ? {}
    : { rateLimit: { requests: rateLimit.requests, perMillis: rateLimit.perMillis + rateLimitGuardMillis(rateLimit.perMillis) } })
})

/**
 * The capabilities with the default rate limit (1 refund call per 5 minutes).
 *
 * @since 0.1.0
 */
export const capabilities: Provider.Capabilities = capabilitiesFor(AiraloConfig.defaultRateLimit)

/**
 * Several requests as one Airalo call: only when they share `reason`, `notes` and
 * `email` (Airalo applies them to every ICCID of a call) and name at most 5 distinct ICCIDs.
 *
 * @since 0.1.0
 */
export const combine = (requests: ReadonlyArray<AiraloRequest.AiraloRefundRequest>): Option.Option<AiraloRequest.AiraloRefundRequest> => {
  const [first] = requests
  if (first === undefined) return Option.none()
  const same = requests.every((r) => r.reason === first.reason && r.notes === first.notes && r.email === first.email)
  const iccids = requests.flatMap((r) => r.iccids)
  if (!same || iccids.length > AiraloRequest.maxIccids || new Set(iccids).size !== iccids.length) return Option.none()
  return Option.some({
    iccids,
    reason: first.reason,
    ...(first.notes === undefined ? {} : { notes: first.notes }),
    ...(first.email === undefined ? {} : { email: first.email })
  })
}

/**
 * Builds the provider from its settings.
 *
 * @since 0.1.0
 */
export const make = (config: AiraloConfig.AiraloConfig): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* AiraloClient.make(config)
    return Provider.make({
      id,
      displayName: "Airalo",
      capabilities: capabilitiesFor(config.rateLimit),
      requestSchema: AiraloRequest.AiraloRefundRequest,
      describe: (request) => ({ targets: request.iccids.map((iccid) => ({ target: iccid })) }),
      submit: (request) =>
        client.refund({
          iccids: request.iccids,
          reason: request.reason,
          ...(request.notes === undefined ? {} : { notes: request.notes }),
          ...(request.email === undefined ? {} : { email: request.email })
        }).pipe(Effect.map((accepted) => AiraloStatus.acceptedOutcome(accepted, request.iccids))),
      combine,
      statusHint,
      statusRank: AiraloStatus.statusRank
    })
  })

/**
 * The plugin's Layer: registers Airalo in the registry.
 *
 * @since 0.1.0
 */
export const layer = (config: AiraloConfig.AiraloConfig): Layer.Layer<never, ConfigurationError, Providers.Providers | HttpClient.HttpClient> =>
  Providers.plugin(make(config))

/**
 * The plugin's Layer with its settings read from `REFUNDKIT_AIRALO_*`: missing settings
 * stay a `ConfigError` (the gateway skips an unconfigured plugin), a malformed one is a `ConfigurationError` naming it.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError | ConfigurationError, Providers.Providers | HttpClient.HttpClient> =
  Providers.pluginConfig("Airalo", AiraloConfig.config, make)
