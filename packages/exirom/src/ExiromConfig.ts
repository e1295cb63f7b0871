/**
 * The Exirom plugin's settings, read from `REFUNDKIT_EXIROM_*` with Effect `Config`.
 * The merchant key and secret are `Redacted`: they never reach a message, a log
 * line, a stored request or a URL.
 *
 * @since 0.1.0
 */
import * as Settings from "@refundkit/core/Settings"
import * as Config from "effect/Config"
import * as Redacted from "effect/Redacted"

/**
 * What the plugin needs to talk to Exirom.
 *
 * @since 0.1.0
 */
export interface ExiromConfig {
  /** Up to and including `/api`; the client appends `/v1/auth`, `/v1/refunds/card`, ... */
  readonly baseUrl: string
  readonly merchantKey: Redacted.Redacted<string>
  readonly merchantSecret: Redacted.Redacted<string>
  /** The merchant account used when a request names no `mid` of its own. */
  readonly mid: string
  /** Refund calls per minute; 0 turns the limit off (whitelisted IPs, the sandbox). */
  readonly requestsPerMinute: number
}

/**
 * Exirom's sandbox. The docs also show an `/api/api/v1` prefix; the reference curls use
 * a single `/api`, which is what this default and the client's paths assume.
 *
 * @since 0.1.0
 */
export const defaultBaseUrl = "https://sandbox.api.exirom.com/api"

/**
 * Exirom's documented production limit: 40 requests per minute per IP address.
 *
 * @since 0.1.0
 */
export const defaultRequestsPerMinute = 40

/**
 * Builds a config from plain values (tests, scripts).
 *
 * @since 0.1.0
 */
export const make = (options: {
  readonly baseUrl?: string | undefined
  readonly merchantKey: string | Redacted.Redacted<string>
  readonly merchantSecret: string | Redacted.Redacted<string>
  readonly mid: string
  readonly requestsPerMinute?: number | undefined
}): ExiromConfig => ({
  // As `config` does: the client appends "/v1/...", and "/api//v1/auth" is a 404 at Exirom.
  baseUrl: (options.baseUrl ?? defaultBaseUrl).replace(/\/+$/, ""),
  merchantKey: Redacted.isRedacted(options.merchantKey) ? options.merchantKey : Redacted.make(options.merchantKey),
  merchantSecret: Redacted.isRedacted(options.merchantSecret) ? options.merchantSecret : Redacted.make(options.merchantSecret),
  mid: options.mid,
  requestsPerMinute: options.requestsPerMinute ?? defaultRequestsPerMinute
})

/**
 * `REFUNDKIT_EXIROM_BASE_URL` (default {@link defaultBaseUrl}), `REFUNDKIT_EXIROM_MERCHANT_KEY`,
 * `REFUNDKIT_EXIROM_MERCHANT_SECRET`, `REFUNDKIT_EXIROM_MID` and
 * `REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE` (default 40, 0 for none).
 *
 * @since 0.1.0
 */
export const config: Config.Config<ExiromConfig> = Config.all({
  baseUrl: Config.string("REFUNDKIT_EXIROM_BASE_URL").pipe(
    Config.validate({ message: "must be an http(s) URL such as https://api.exirom.com/api", validation: isHttpUrl }),
    Config.withDefault(defaultBaseUrl),
    Config.map((url) => url.replace(/\/+$/, ""))
  ),
  // An empty secret is a missing one (`X=${UNSET}`): the plugin is not configured, nothing is sent.
  merchantKey: Config.redacted(Config.nonEmptyString("REFUNDKIT_EXIROM_MERCHANT_KEY")),
  merchantSecret: Config.redacted(Config.nonEmptyString("REFUNDKIT_EXIROM_MERCHANT_SECRET")),
  mid: Config.nonEmptyString("REFUNDKIT_EXIROM_MID"),
  requestsPerMinute: Settings.wholeNumber(
    "REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE",
    { min: 0, max: 999_999_999 },
    "must be 0 (no limit) or a positive whole number of requests per minute"
  ).pipe(Config.withDefault(defaultRequestsPerMinute))
})

function isHttpUrl(url: string): boolean {
  try {
    const parsed = new URL(url)
    return parsed.protocol === "https:" || parsed.protocol === "http:"
  } catch {
    return false
  }
}
