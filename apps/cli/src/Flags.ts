/**
 * Flags whose refusals name the flag and its rule. `@effect/cli`'s own integer and choice
 * options answered `'abc' is not a integer` and `Expected one of the following cases: …`,
 * which say neither which flag was wrong nor, for a number, what it should have been.
 *
 * @since 0.4.0
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Timestamp from "@refundkit/core/Timestamp"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

const refuse = (name: string, rule: string, given: string) =>
  Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: ${rule}, got ${JSON.stringify(given)}`)))

/**
 * A whole-number flag (`--limit 50`); anything else is refused naming the flag.
 *
 * @since 0.4.0
 */
export const integer = (name: string): Options.Options<number> =>
  Options.text(name).pipe(
    Options.withPseudoName("integer"),
    Options.mapEffect((text) =>
      /^-?\d{1,15}$/.test(text.trim()) ? Effect.succeed(Number(text.trim())) : refuse(name, "must be a whole number", text)
    )
  )

/**
 * A flag taking one of `values`; anything else is refused naming the flag and listing them.
 *
 * @since 0.4.0
 */
export const choice = <const A extends string>(name: string, values: ReadonlyArray<A>): Options.Options<A> =>
  Options.text(name).pipe(
    Options.withPseudoName(values.join(" | ")),
    Options.mapEffect((text) =>
      (values as ReadonlyArray<string>).includes(text) ? Effect.succeed(text as A) : refuse(name, `must be one of ${values.join(", ")}`, text)
    )
  )

/**
 * An instant (`--created-from 2026-12-06T14:00:00Z`): an RFC 3339 timestamp with an offset or a
 * date (midnight UTC), written the way the ledger writes `createdAt` (`Timestamp.parse`); anything
 * else is refused naming the flag and the rule.
 *
 * @since 0.4.0
 */
export const timestamp = (name: string): Options.Options<string> =>
  Options.text(name).pipe(
    Options.withPseudoName("timestamp"),
    Options.mapEffect((text) => Either.match(Timestamp.parse(text), { onLeft: (rule) => refuse(name, rule, text), onRight: Effect.succeed }))
  )

/**
 * A text flag whose value may not be empty (`--ledger ''`): an empty value is most often a
 * variable that did not arrive (`--ledger "$DATABASE_URL"`), and taken as "not given" it silently
 * fell back to the default. Refused naming the flag, with `rule` saying what it takes.
 *
 * @since 0.6.0
 */
export const nonEmpty = (name: string, rule: string): Options.Options<string> =>
  Options.text(name).pipe(
    Options.mapEffect((text) => (text.trim() === "" ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: is empty; ${rule}`))) : Effect.succeed(text)))
  )
