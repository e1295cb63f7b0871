/**
 * The Airpay plugin's settings, read from `REFUNDKIT_AIRPAY_*`.
 *
 * @since 0.1.0
 */
import * as Settings from "@refundkit/core/Settings"
import * as Config from "effect/Config"
import type * as Redacted from "effect/Redacted"

/**
 * Everything the plugin needs to talk to Airpay v4. The ids are plain strings; the
 * username, password, secret and client secret are `Redacted` (the username is half
 * of the AES key and of the private key).
 *
 * @since 0.1.0
 */
export interface AirpayConfig {
  /** Ends before `/oauth2/` and `/refund/`, e.g. `https://kraken.airpay.co.in/airpay/pay/v4/api`. */
  readonly baseUrl: string
  readonly merchantId: string
  readonly username: Redacted.Redacted<string>
  readonly password: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<string>
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** How many transactions one refund call may carry (the `maxTargetsPerCall` capability). */
  readonly maxTransactionsPerCall: number
}

/**
 * Airpay's documented v4 API host.
 *
 * @since 0.1.0
 */
export const defaultBaseUrl = "https://kraken.airpay.co.in/airpay/pay/v4/api"

/**
 * Airpay documents no limit on transactions per refund call. 50 keeps one encrypted form
 * small and bounds how many refunds a single lost answer leaves `unknown`.
 *
 * @since 0.1.0
 */
export const defaultMaxTransactionsPerCall = 50

/**
 * The highest `REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL` accepted.
 *
 * @since 0.1.0
 */
export const maxTransactionsPerCallLimit = 500

const trimmedBase = (url: string) => url.replace(/\/+$/, "")

/**
 * Reads the settings:
 * `REFUNDKIT_AIRPAY_BASE_URL` (default {@link defaultBaseUrl}), `REFUNDKIT_AIRPAY_MERCHANT_ID`,
 * `REFUNDKIT_AIRPAY_USERNAME`, `REFUNDKIT_AIRPAY_PASSWORD`, `REFUNDKIT_AIRPAY_SECRET`,
 * `REFUNDKIT_AIRPAY_CLIENT_ID`, `REFUNDKIT_AIRPAY_CLIENT_SECRET` and
 * `REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL` (default {@link defaultMaxTransactionsPerCall}).
 *
 * @since 0.1.0
 */
export const config: Config.Config<AirpayConfig> = Config.all({
  baseUrl: Config.string("REFUNDKIT_AIRPAY_BASE_URL").pipe(
    Config.validate({ message: "must be an http(s) URL", validation: (url) => /^https?:\/\/[^\s]+$/.test(url) }),
    Config.withDefault(defaultBaseUrl),
    Config.map(trimmedBase)
  ),
  // Empty is missing, as for the secrets (`X=${UNSET}` in a template): the plugin is not
  // configured and skipped, rather than an invalid setting that stops the whole gateway.
  merchantId: Config.nonEmptyString("REFUNDKIT_AIRPAY_MERCHANT_ID").pipe(
    Config.validate({ message: "must be Airpay's numeric merchant id (1 to 20 digits)", validation: (id) => /^\d{1,20}$/.test(id) })
  ),
  username: Config.redacted(Config.nonEmptyString("REFUNDKIT_AIRPAY_USERNAME")),
  password: Config.redacted(Config.nonEmptyString("REFUNDKIT_AIRPAY_PASSWORD")),
  secret: Config.redacted(Config.nonEmptyString("REFUNDKIT_AIRPAY_SECRET")),
  clientId: Config.nonEmptyString("REFUNDKIT_AIRPAY_CLIENT_ID").pipe(
    Config.validate({ message: "must be 1 to 20 characters", validation: (id) => id.length <= 20 })
  ),
  clientSecret: Config.redacted(Config.nonEmptyString("REFUNDKIT_AIRPAY_CLIENT_SECRET")),
  maxTransactionsPerCall: Settings.wholeNumber(
    "REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL",
    { min: 1, max: maxTransactionsPerCallLimit },
    `must be between 1 and ${maxTransactionsPerCallLimit}`
  ).pipe(
    Config.withDefault(defaultMaxTransactionsPerCall)
  )
})

/**
 * Settings from values in code: the defaults filled in.
 *
 * @since 0.1.0
 */
export const make = (
  options: Omit<AirpayConfig, "baseUrl" | "maxTransactionsPerCall"> & { readonly baseUrl?: string; readonly maxTransactionsPerCall?: number }
): AirpayConfig => ({
  ...options,
  baseUrl: trimmedBase(options.baseUrl ?? defaultBaseUrl),
  maxTransactionsPerCall: options.maxTransactionsPerCall ?? defaultMaxTransactionsPerCall
})
