/**
 * The CLI's own errors, for problems with how it was called (a file that cannot be
 * read, `--data` that is not JSON). Everything else is one of core's errors.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The command line or an input file is not usable; nothing was sent to a provider.
 * `field` names the flag, argument or column at fault.
 *
 * @since 0.1.0
 */
export class UsageError extends Schema.TaggedError<UsageError>("UsageError")("UsageError", {
  field: Schema.String,
  detail: Schema.String,
  hint: Schema.optional(Schema.String)
}) {
  get code() {
    return "usage_error" as const
  }
  override get message() {
    return `${this.field}: ${this.detail}.${this.hint === undefined ? "" : ` ${this.hint}`}`
  }
}
