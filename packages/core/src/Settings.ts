/**
 * Reading settings from the environment the way every refundkit package does.
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"

/**
 * A whole number from `min` to `max`, written in plain decimal digits; otherwise the
 * setting is refused with `rule`, naming the variable. Not `Config.integer`: it reads
 * with `Number`, so an empty value is 0 (a rate limit turned off, a random port) and
 * `0x28` or `1e3` pass.
 *
 * @since 0.2.0
 */
export const wholeNumber = (name: string, range: { readonly min: number; readonly max: number }, rule: string): Config.Config<number> =>
  Config.string(name).pipe(
    Config.validate({ message: rule, validation: (text) => /^\d{1,15}$/.test(text) && Number(text) >= range.min && Number(text) <= range.max }),
    Config.map(Number)
  )
