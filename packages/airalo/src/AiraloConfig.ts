/**
 * The Airalo plugin's settings, read from `REFUNDKIT_AIRALO_*`.
 *
 * | Variable | Default | Meaning |
 * |---|---|---|
 * | `REFUNDKIT_AIRALO_BASE_URL` | `https://partners-api.airalo.com/v2` | the API root; the client appends `/token` and `/refund` |
 * | `REFUNDKIT_AIRALO_CLIENT_ID` | (required) | the partner's `client_id` |
 * | `REFUNDKIT_AIRALO_CLIENT_SECRET` | (required, secret) | the partner's `client_secret` |
 * | `REFUNDKIT_AIRALO_RATE_LIMIT` | `1/5m` | refund calls allowed per window, `<requests>/<n><unit>` (unit `ms`, `s`, `m`, `h`), or `off` |
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"
import type * as Redacted from "effect/Redacted"

/**
 * At most `requests` refund calls per `perMillis`, as Airalo counts them.
 *
 * @since 0.1.0
 */
export interface RateLimit {
  readonly requests: number
  readonly perMillis: number
}

/**
 * The settings the plugin is built from.
 *
 * @since 0.1.0
 */
export interface AiraloConfig {
  /** The API root without a trailing slash, e.g. `https://partners-api.airalo.com/v2`. */
  readonly baseUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** Airalo's refund rate limit, or undefined when refundkit should not pace refund calls. */
  readonly rateLimit: RateLimit | undefined
}

/**
 * Airalo's production API root.
 *
 * @since 0.1.0
 */
export const defaultBaseUrl = "https://partners-api.airalo.com/v2"

/**
 * The documented refund limit we default to: 1 request per 5 minutes per IP address
 * (the refund page and the rate-limits table; an older fragment says 5 per minute).
 *
 * @since 0.1.0
 */
export const defaultRateLimit: RateLimit = { requests: 1, perMillis: 5 * 60_000 }

const units: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

const rateLimitFormat = /^\s*(\d+)\s*\/\s*(\d*)\s*(ms|s|m|h)\s*$/

/**
 * Reads a rate limit written as `<requests>/<n><unit>` ("1/5m", "5/1m", "10/1s",
 * "2/500ms"; the count before the unit may be left out: "5/m") or `off`.
 *
 * @since 0.1.0
 */
export const parseRateLimit = (text: string): Either.Either<RateLimit | undefined, string> => {
  if (/^\s*off\s*$/i.test(text)) return Either.right(undefined)
  const match = rateLimitFormat.exec(text)
  if (match === null) {
    return Either.left(`expected "<requests>/<n><unit>" with unit ms, s, m or h (e.g. "1/5m", "5/1m") or "off", got ${JSON.stringify(text)}`)
  }
  const requests = Number(match[1])
  const count = match[2] === "" ? 1 : Number(match[2])
  const perMillis = count * units[match[3]!]!
  if (!Number.isSafeInteger(requests) || requests < 1) return Either.left(`the number of requests must be at least 1, got ${JSON.stringify(text)}`)
  if (!Number.isSafeInteger(perMillis) || perMillis < 1) return Either.left(`the window must be at least 1ms, got ${JSON.stringify(text)}`)
  return Either.right({ requests, perMillis })
}

/**
 * Prints a rate limit in the form {@link parseRateLimit} reads, with the largest
 * unit that divides the window exactly.
 *
 * @since 0.1.0
 */
export const formatRateLimit = (limit: RateLimit | undefined): string => {
  if (limit === undefined) return "off"
  for (const unit of ["h", "m", "s"] as const) {
    const size = units[unit]!
    if (limit.perMillis % size === 0) return `${limit.requests}/${limit.perMillis / size}${unit}`
  }
  return `${limit.requests}/${limit.perMillis}ms`
}

const baseUrlConfig = Config.string("REFUNDKIT_AIRALO_BASE_URL").pipe(
  Config.withDefault(defaultBaseUrl),
  Config.mapOrFail((raw) => {
    const trimmed = raw.trim().replace(/\/+$/, "")
    const parsed = URL.canParse(trimmed) ? new URL(trimmed) : undefined
    return parsed !== undefined && (parsed.protocol === "https:" || parsed.protocol === "http:")
      ? Either.right(trimmed)
      : Either.left(ConfigError.InvalidData(["REFUNDKIT_AIRALO_BASE_URL"], `expected an http(s) URL such as ${defaultBaseUrl}`))
  })
)

const rateLimitConfig = Config.string("REFUNDKIT_AIRALO_RATE_LIMIT").pipe(
  Config.withDefault(formatRateLimit(defaultRateLimit)),
  Config.mapOrFail((raw) => Either.mapLeft(parseRateLimit(raw), (message) => ConfigError.InvalidData(["REFUNDKIT_AIRALO_RATE_LIMIT"], message)))
)

/**
 * The settings from the environment (or any `ConfigProvider`).
 *
 * @since 0.1.0
 */
export const config: Config.Config<AiraloConfig> = Config.all({
  baseUrl: baseUrlConfig,
  clientId: Config.nonEmptyString("REFUNDKIT_AIRALO_CLIENT_ID"),
  clientSecret: Config.redacted(Config.nonEmptyString("REFUNDKIT_AIRALO_CLIENT_SECRET")),
  rateLimit: rateLimitConfig
})
