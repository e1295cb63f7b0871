/**
 * The refusal of an operator's command that takes a failed refund's targets back (`resolve --correct` to
 * succeeded, `reopen`: core's `Ledger.reclaim`) while a refund made since it stood failed holds one, in the
 * command's own words: the holder to check first, and the command to run again.
 *
 * @since 0.6.0
 */
import type { GuardError } from "@refundkit/core/Ledger"
import type { OverRefund } from "@refundkit/core/RefundError"
import { UsageError } from "./CliError.js"

/**
 * How a command is named in the refusal: the flag or argument it blames, what it could not do (`refund <id>
 * cannot <refused>`), what holding both refunds would be (`<both> would count the target refunded twice`), and
 * the verb to run again (`then <again> <id>`).
 *
 * @since 0.6.0
 */
export interface Words {
  readonly field: string
  readonly refused: string
  readonly both: string
  readonly again: string
}

/**
 * The refusal of refund `id`'s command for `error`.
 *
 * @since 0.6.0
 */
export const usageError = (id: string, error: GuardError, words: Words): UsageError =>
  error._tag === "TargetAlreadyRefunded"
    ? new UsageError({
      field: words.field,
      detail: `refund ${id} cannot ${words.refused}: its target ${error.target} is held by refund ${error.refundId} (status ${error.status}), made while ${id} stood failed, and nothing was changed`,
      hint: `${words.both} would count ${error.target} refunded twice. Check ${error.refundId} with the provider first: if the provider did not make it, resolve it failed (refundkit resolve ${error.refundId} --status failed --note "..."), then ${words.again} ${id}.`
    })
    : new UsageError({
      field: words.field,
      detail: `refund ${id} cannot ${words.refused}: with the refunds made against ${error.target} while it stood failed it would exceed the original amount (${error.remaining} ${error.currency} left), and nothing was changed`,
      hint: `Check the other refunds of ${error.target} with the provider (${counted(error)}) and resolve any the provider refused as failed, then ${words.again} ${id}.`
    })

// The refunds the guard counted against the target, as the ledger named them; the command that lists them all
// where it named none, or not every one.
const counted = (error: OverRefund): string => {
  const named = (error.heldBy ?? []).map((h) => `${h.refundId}: ${h.amount} ${error.currency}, ${h.status}`)
  const all = `refundkit list --provider <provider> --target ${error.target}`
  if (named.length === 0) return all
  const more = (error.heldByCount ?? named.length) - named.length
  return more > 0 ? `${named.join("; ")}; ${more} more: ${all}` : named.join("; ")
}
