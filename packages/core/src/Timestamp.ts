/**
 * Instants as the ledger writes them: `Date.prototype.toISOString`'s form, UTC with three
 * fraction digits (`2026-12-06T14:00:00.000Z`), the form of `Refund.createdAt` and
 * `updatedAt`. The ledgers compare these byte-wise (the SQL ones in their indexes), which is
 * the instants' order only while every value has this one form: `…T15:00:00+01:00` sorts
 * after `…T14:30:00.000Z` as text, and `…:00Z` after `…:00.500Z`. Whatever a user types
 * goes through `parse` before it meets a stored timestamp.
 *
 * @since 0.4.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * What `parse` accepts, as a refusal names it.
 *
 * @since 0.4.0
 */
export const rule =
  "must be an RFC 3339 timestamp with an offset (2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00) or a date (2026-12-06, midnight UTC)"

const dateTime = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2})))?$/

const daysIn = (year: number, month: number): number =>
  month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31

/**
 * Reads an RFC 3339 timestamp with an offset (`Z` or `±HH:MM`, any number of fraction
 * digits) or a bare date (`2026-12-06`, read as midnight UTC) and writes it in the ledger's
 * form; a refusal says what is wrong. A time without an offset is refused, not read in
 * this machine's zone: two operators in two zones would get two answers.
 *
 * Stored timestamps have whole milliseconds, so a finer instant is rounded up to the next
 * millisecond: every stored value at or after `…:00.0005Z` is at or after `…:00.001Z`, and
 * every one before it is before `…:00.001Z`, so the rounded bound selects the same refunds
 * as an inclusive lower bound and as an exclusive upper bound.
 *
 * @since 0.4.0
 */
export const parse = (text: string): Either.Either<string, string> => {
  const match = dateTime.exec(text.trim())
  if (match === null) return Either.left(rule)
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match
  const [year, month, day] = [Number(y), Number(mo), Number(d)]
  if (month < 1 || month > 12) return Either.left(`${rule}: month ${mo} is not 01 to 12`)
  if (day < 1 || day > daysIn(year, month)) return Either.left(`${rule}: ${y}-${mo} has no day ${d}`)
  if (h === undefined) return Either.right(`${y}-${mo}-${d}T00:00:00.000Z`)
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return Either.left(`${rule}: ${h}:${mi}:${s} is not a time of day (00:00:00 to 23:59:59)`)
  if (zulu === undefined && (Number(oh) > 23 || Number(om) > 59)) return Either.left(`${rule}: offset ${sign}${oh}:${om} is not -23:59 to +23:59`)
  const millis = (fraction ?? "").padEnd(3, "0").slice(0, 3)
  const finer = /[1-9]/.test((fraction ?? "").slice(3)) ? 1 : 0
  // Date.parse reads this exact shape (ECMA-262's date time string format) the same everywhere.
  const epoch = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}.${millis}${zulu === undefined ? `${sign}${oh}:${om}` : "Z"}`) + finer
  const iso = Number.isNaN(epoch) ? "" : new Date(epoch).toISOString()
  // Past year 9999 (or before year 0) toISOString writes six digits and a sign, which no longer sort as text.
  return /^\d{4}-/.test(iso) ? Either.right(iso) : Either.left(`${rule}: ${text.trim()} is outside the years 0000 to 9999 in UTC`)
}

/**
 * A timestamp as text, decoded to the ledger's form (`parse`); encoding writes that form.
 * For query parameters and flags that bound `Refund.createdAt`.
 *
 * @since 0.4.0
 */
export const FromText: Schema.Schema<string> = Schema.transformOrFail(Schema.String, Schema.String, {
  strict: true,
  decode: (text, _, ast) => Either.match(parse(text), { onLeft: (message) => ParseResult.fail(new ParseResult.Type(ast, text, message)), onRight: ParseResult.succeed }),
  encode: ParseResult.succeed
})

/**
 * Whether `text` is already in the ledger's form (what `parse` writes).
 *
 * @since 0.4.0
 */
export const isCanonical = (text: string): boolean => Either.getOrUndefined(parse(text)) === text
