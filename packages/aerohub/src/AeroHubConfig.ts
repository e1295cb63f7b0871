/**
 * The AeroHub plugin's settings, read from `REFUNDKIT_AEROHUB_*`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as Redacted from "effect/Redacted"

/**
 * Which `rejectReason` code set requests are validated against. AeroHub's English
 * page lists 1-9, its Chinese page 20-35; which one production validates is not
 * documented, so it is a setting ("en" by default).
 *
 * @since 0.1.0
 */
export type RejectReasonSet = "en" | "cn"

/**
 * The settings the plugin needs.
 *
 * @since 0.1.0
 */
export interface AeroHubConfig {
  /** FareMarket API host; the client appends `/supplier/v1/api/update_refund`. */
  readonly baseUrl: string
  /** The supplier apiKey AeroHub issued; it travels in the JSON body and is never logged or stored. */
  readonly apiKey: Redacted.Redacted<string>
  readonly rejectReasons: RejectReasonSet
}

/**
 * AeroHub's production FareMarket host.
 *
 * @since 0.1.0
 */
export const productionBaseUrl = "https://faremarket-api.aerohubtech.com"

/**
 * AeroHub's test FareMarket host, for interface testing before going live.
 *
 * @since 0.1.0
 */
export const testBaseUrl = "https://test.faremarket-api.aerohubtech.com"

/**
 * The path of UpdateRefund under the base URL.
 *
 * @since 0.1.0
 */
export const updateRefundPath = "/supplier/v1/api/update_refund"

/**
 * `REFUNDKIT_AEROHUB_BASE_URL` (default {@link productionBaseUrl}), `REFUNDKIT_AEROHUB_API_KEY`
 * (required, redacted) and `REFUNDKIT_AEROHUB_REJECT_REASONS` ("en" or "cn", default "en").
 *
 * @since 0.1.0
 */
export const config: Config.Config<AeroHubConfig> = Config.all({
  baseUrl: Config.string("REFUNDKIT_AEROHUB_BASE_URL").pipe(
    Config.validate({ message: "must be an http(s) URL such as https://faremarket-api.aerohubtech.com", validation: (url) => /^https?:\/\/[^\s/]+/.test(url) }),
    Config.withDefault(productionBaseUrl),
    Config.map((url) => url.replace(/\/+$/, ""))
  ),
  apiKey: Config.redacted(Config.nonEmptyString("REFUNDKIT_AEROHUB_API_KEY")),
  rejectReasons: Config.literal("en", "cn")("REFUNDKIT_AEROHUB_REJECT_REASONS").pipe(Config.withDefault("en" as const))
})
