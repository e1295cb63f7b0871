/**
 * Exact money: integer minor units (a `bigint`) plus an ISO 4217 currency.
 *
 * Amounts enter and leave the domain as decimal strings ("100.00"); a JavaScript
 * float never carries an amount. `bigint` arithmetic cannot overflow, so sums of
 * refunds stay exact whatever their size.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * Minor-unit exponents of ISO 4217 currencies that differ from 2, plus the
 * common two-place ones. A currency not listed here is refused rather than guessed.
 */
const exponents: Readonly<Record<string, number>> = {
  // zero-decimal currencies
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0,
  UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  // three-decimal currencies
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  // four-decimal currencies
  CLF: 4, UYW: 4,
  // two-decimal currencies
  AED: 2, AFN: 2, ALL: 2, AMD: 2, ANG: 2, AOA: 2, ARS: 2, AUD: 2, AWG: 2, AZN: 2, BAM: 2, BBD: 2,
  BDT: 2, BGN: 2, BMD: 2, BND: 2, BOB: 2, BRL: 2, BSD: 2, BTN: 2, BWP: 2, BYN: 2, BZD: 2, CAD: 2,
  CDF: 2, CHF: 2, CNY: 2, COP: 2, CRC: 2, CUP: 2, CVE: 2, CZK: 2, DKK: 2, DOP: 2, DZD: 2, EGP: 2,
  ERN: 2, ETB: 2, EUR: 2, FJD: 2, FKP: 2, GBP: 2, GEL: 2, GHS: 2, GIP: 2, GMD: 2, GTQ: 2, GYD: 2,
  HKD: 2, HNL: 2, HTG: 2, HUF: 2, IDR: 2, ILS: 2, INR: 2, IRR: 2, JMD: 2, KES: 2, KGS: 2, KHR: 2,
  KPW: 2, KYD: 2, KZT: 2, LAK: 2, LBP: 2, LKR: 2, LRD: 2, LSL: 2, MAD: 2, MDL: 2, MGA: 2, MKD: 2,
  MMK: 2, MNT: 2, MOP: 2, MRU: 2, MUR: 2, MVR: 2, MWK: 2, MXN: 2, MYR: 2, MZN: 2, NAD: 2, NGN: 2,
  NIO: 2, NOK: 2, NPR: 2, NZD: 2, PAB: 2, PEN: 2, PGK: 2, PHP: 2, PKR: 2, PLN: 2, QAR: 2, RON: 2,
  RSD: 2, RUB: 2, SAR: 2, SBD: 2, SCR: 2, SDG: 2, SEK: 2, SGD: 2, SHP: 2, SLE: 2, SOS: 2, SRD: 2,
  SSP: 2, STN: 2, SYP: 2, SZL: 2, THB: 2, TJS: 2, TMT: 2, TOP: 2, TRY: 2, TTD: 2, TWD: 2, TZS: 2,
  UAH: 2, USD: 2, UZS: 2, VES: 2, WST: 2, XCD: 2, YER: 2, ZAR: 2, ZMW: 2, ZWL: 2
}

/**
 * The number of minor-unit digits of an ISO 4217 currency, if refundkit knows it.
 *
 * @since 0.1.0
 */
export const exponentOf = (currency: string): number | undefined => exponents[currency]

/**
 * An ISO 4217 currency code that refundkit knows the exponent of.
 *
 * @since 0.1.0
 */
export const Currency = Schema.String.pipe(
  Schema.filter((code) => exponents[code] !== undefined || `must be a known ISO 4217 currency code in capitals (such as USD, EUR, JPY), got ${JSON.stringify(code)}`),
  Schema.annotations({ identifier: "Currency", description: "ISO 4217 currency code, e.g. USD" })
)

/**
 * An exact amount of money.
 *
 * @since 0.1.0
 */
export interface Money {
  /** Integer minor units: cents for USD, yen for JPY, fils for KWD. */
  readonly minor: bigint
  readonly currency: string
}

/**
 * Why a decimal string or an operation on money was refused.
 *
 * @since 0.1.0
 */
export class MoneyError extends Schema.TaggedError<MoneyError>("MoneyError")("MoneyError", {
  message: Schema.String
}) {}

const decimalPattern = /^(-)?(\d+)(?:\.(\d+))?$/

/**
 * Parses a plain decimal string into minor units for a given number of places.
 * "10.5" with 2 places is 1050; "1.005" with 2 places is refused (never rounded);
 * trailing zeros past the exponent ("10.500") are exact and accepted.
 *
 * @since 0.1.0
 */
export const parseMinor = (input: string, places: number): Either.Either<bigint, string> => {
  const match = decimalPattern.exec(input)
  if (match === null) {
    return Either.left(`must be a decimal string such as "10.00" (digits, an optional "." and digits), got ${JSON.stringify(input)}`)
  }
  const [, sign, whole = "", fraction = ""] = match
  const significant = fraction.replace(/0+$/, "")
  if (significant.length > places) {
    return Either.left(
      places === 0
        ? `must be a whole number (this currency has no minor units), got ${JSON.stringify(input)}`
        : `must have at most ${places} decimal places (it is not rounded), got ${JSON.stringify(input)}`
    )
  }
  const digits = whole + significant.padEnd(places, "0")
  const minor = BigInt(digits)
  return Either.right(sign === "-" ? -minor : minor)
}

/**
 * Prints minor units as a decimal string with exactly `places` decimals.
 *
 * @since 0.1.0
 */
export const formatMinor = (minor: bigint, places: number): string => {
  const negative = minor < 0n
  const digits = (negative ? -minor : minor).toString().padStart(places + 1, "0")
  const whole = digits.slice(0, digits.length - places)
  const fraction = digits.slice(digits.length - places)
  return `${negative ? "-" : ""}${whole}${places > 0 ? `.${fraction}` : ""}`
}

/**
 * Builds money from minor units.
 *
 * @since 0.1.0
 */
export const make = (minor: bigint, currency: string): Money => ({ minor, currency })

/**
 * Parses an exact decimal string in a currency: `parse("0.5", "USD")` is 50 cents.
 *
 * @since 0.1.0
 */
export const parse = (input: string, currency: string): Either.Either<Money, MoneyError> => {
  const places = exponents[currency]
  if (places === undefined) {
    return Either.left(new MoneyError({ message: `unknown currency ${JSON.stringify(currency)}: use an ISO 4217 code such as USD` }))
  }
  return Either.mapBoth(parseMinor(input, places), {
    onLeft: (message) => new MoneyError({ message: `amount ${message}` }),
    onRight: (minor) => make(minor, currency)
  })
}

/**
 * Prints money as its exact decimal string: `format(make(1050n, "USD"))` is "10.50".
 *
 * @since 0.1.0
 */
export const format = (money: Money): string => formatMinor(money.minor, exponents[money.currency] ?? 2)

const sameCurrency = (self: Money, that: Money): Either.Either<void, MoneyError> =>
  self.currency === that.currency
    ? Either.void
    : Either.left(new MoneyError({ message: `cannot combine ${self.currency} with ${that.currency}` }))

/**
 * Adds two amounts of the same currency.
 *
 * @since 0.1.0
 */
export const add = (self: Money, that: Money): Either.Either<Money, MoneyError> =>
  Either.map(sameCurrency(self, that), () => make(self.minor + that.minor, self.currency))

/**
 * Subtracts `that` from `self` in the same currency.
 *
 * @since 0.1.0
 */
export const subtract = (self: Money, that: Money): Either.Either<Money, MoneyError> =>
  Either.map(sameCurrency(self, that), () => make(self.minor - that.minor, self.currency))

/**
 * Orders two amounts of the same currency: -1, 0 or 1.
 *
 * @since 0.1.0
 */
export const compare = (self: Money, that: Money): Either.Either<-1 | 0 | 1, MoneyError> =>
  Either.map(sameCurrency(self, that), () => (self.minor < that.minor ? -1 : self.minor > that.minor ? 1 : 0))

/**
 * Whether two amounts are exactly the same money.
 *
 * @since 0.1.0
 */
export const equals = (self: Money, that: Money): boolean => self.currency === that.currency && self.minor === that.minor

/**
 * The largest magnitude a JSON number carries exactly: 15 significant digits
 * always survive a round trip through an IEEE double.
 */
const maxJsonDigits = 15

/**
 * The exact value as a JSON number for providers that want one on the wire.
 * Refused when the amount has more digits than a double carries exactly.
 *
 * @since 0.1.0
 */
export const toJsonNumber = (money: Money): Either.Either<number, MoneyError> => {
  const magnitude = money.minor < 0n ? -money.minor : money.minor
  return magnitude.toString().length > maxJsonDigits
    ? Either.left(new MoneyError({ message: `${format(money)} ${money.currency} has too many digits to send as a JSON number exactly` }))
    : Either.right(Number(format(money)))
}

/**
 * The JSON shape of money at every refundkit boundary: `{ "amount": "10.50", "currency": "USD" }`.
 *
 * @since 0.1.0
 */
export const MoneyJson = Schema.Struct({
  amount: Schema.String.annotations({ description: "exact decimal string in major units, e.g. \"10.50\"" }),
  currency: Currency
}).annotations({ identifier: "Money" })

/**
 * Schema between the JSON shape and `Money`, refusing amounts that are not exact in the currency.
 *
 * @since 0.1.0
 */
export const MoneyFromJson: Schema.Schema<Money, typeof MoneyJson.Encoded> = Schema.transformOrFail(
  MoneyJson,
  Schema.declare((u): u is Money => typeof u === "object" && u !== null && "minor" in u && typeof u.minor === "bigint" && "currency" in u),
  {
    strict: true,
    decode: (json, _, ast) =>
      Either.mapLeft(parse(json.amount, json.currency), (e) => new ParseResult.Type(ast, json, e.message)),
    encode: (money) => ParseResult.succeed({ amount: format(money), currency: money.currency })
  }
)

const maxWholeDigits = 15

// What was sent instead of a string, kept short: the value may be a whole object.
const formatActual = (actual: unknown): string => {
  const text = typeof actual === "object" && actual !== null ? (Array.isArray(actual) ? "an array" : "an object") : String(actual)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}

/**
 * A positive decimal amount with at most `places` decimals, normalised to exactly
 * `places` decimals ("10.5" becomes "10.50"). Anything finer is refused, never rounded.
 * Provider request schemas use it for their amount fields.
 *
 * @since 0.1.0
 */
export const DecimalAmount = (places: number): Schema.Schema<string> =>
  // A JSON number is the usual first try; "Expected string, actual 10.5" named neither the rule nor the fix.
  Schema.transformOrFail(Schema.String.annotations({ message: (issue) => `must be a decimal string such as "10.00" (in quotes: a JSON number is not accepted, it could be rounded), got ${formatActual(issue.actual)}` }), Schema.String, {
    strict: true,
    decode: (input, _, ast) => {
      // No refund is a quadrillion of anything; a longer string is an attack or a typo, and
      // past 15 digits a provider that wants a JSON number could not carry it exactly.
      const whole = input.split(".")[0] ?? ""
      if (whole.replace(/^-?0+/, "").length > maxWholeDigits) {
        return ParseResult.fail(new ParseResult.Type(ast, input, `must be less than 10^${maxWholeDigits} (at most ${maxWholeDigits} digits before the decimal point)`))
      }
      if (input.length > 40) {
        return ParseResult.fail(new ParseResult.Type(ast, input, `must be at most 40 characters (a decimal string such as "10.00"), got ${input.length}`))
      }
      const parsed = parseMinor(input, places)
      if (Either.isLeft(parsed)) return ParseResult.fail(new ParseResult.Type(ast, input, parsed.left))
      if (parsed.right <= 0n) return ParseResult.fail(new ParseResult.Type(ast, input, `must be greater than zero, got ${JSON.stringify(input)}`))
      return ParseResult.succeed(formatMinor(parsed.right, places))
    },
    encode: ParseResult.succeed
  }).annotations({
    title: "DecimalAmount",
    description: `positive decimal string with at most ${places} decimal places, e.g. "10.${"0".repeat(places)}"`,
    jsonSchema: { type: "string", pattern: places === 0 ? "^\\d+$" : `^\\d+(\\.\\d{1,${places}})?$` }
  })
