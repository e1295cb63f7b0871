/**
 * What the CLI prints: refunds and errors for a person (plain lines) or a program
 * (`--json`, the same objects the gateway returns). Results go to stdout; errors,
 * progress and advice to stderr.
 *
 * @since 0.1.0
 */
import { Refund } from "@refundkit/core/Refund"
import type { FieldIssue } from "@refundkit/core/RefundError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/**
 * The gateway's error body: `{"error": {"code", "message", "issues"?, "refundId"?}}`.
 *
 * @since 0.1.0
 */
export interface ErrorBody {
  readonly error: {
    readonly code: string
    readonly message: string
    readonly issues?: ReadonlyArray<FieldIssue>
    readonly refundId?: string
  }
}

/**
 * Anything with a stable code and a message: core's errors and the CLI's own.
 *
 * @since 0.1.0
 */
export interface Describable {
  readonly code: string
  readonly message: string
  readonly issues?: ReadonlyArray<FieldIssue> | undefined
  readonly refundId?: string | undefined
}

/**
 * The JSON body of an error.
 *
 * @since 0.1.0
 */
export const errorBody = (error: Describable): ErrorBody => ({
  error: {
    code: error.code,
    message: error.message,
    ...(error.issues === undefined ? {} : { issues: error.issues }),
    ...(error.refundId === undefined ? {} : { refundId: error.refundId })
  }
})

/**
 * Prints an error: the sentence always goes to stderr; with `--json` the gateway's
 * error object also goes to stdout, where scripts read.
 *
 * @since 0.1.0
 */
export const error = (json: boolean, failure: Describable): Effect.Effect<void> =>
  Effect.zipRight(
    Console.error(`error: ${failure.message}`),
    json ? Console.log(JSON.stringify(errorBody(failure))) : Effect.void
  )

/**
 * One line of JSON on stdout.
 *
 * @since 0.1.0
 */
export const json = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value))

/**
 * Plain text on stdout.
 *
 * @since 0.1.0
 */
export const text = (value: string): Effect.Effect<void> => Console.log(value)

/**
 * Advice and notes for a person: stderr, so stdout stays parseable.
 *
 * @since 0.1.0
 */
export const note = (value: string): Effect.Effect<void> => Console.error(value)

const encodeRefund = Schema.encodeSync(Refund)

/**
 * A refund as the gateway returns it.
 *
 * @since 0.1.0
 */
export const refundJson = (refund: Refund): unknown => encodeRefund(refund)

/**
 * A refund for a person: its id, provider and status first, then what the provider said.
 *
 * @since 0.1.0
 */
export const refundLines = (refund: Refund): ReadonlyArray<string> => {
  const lines = [`${refund.id}  ${refund.provider}  ${refund.status}${refund.providerStatus === undefined ? "" : ` (provider status ${refund.providerStatus})`}`]
  const field = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== "") lines.push(`  ${name.padEnd(17)} ${value}`)
  }
  field("idempotency key", refund.idempotencyKey)
  field("amount", refund.amount === undefined ? undefined : `${refund.amount}${refund.currency === undefined ? "" : ` ${refund.currency}`}`)
  field("provider ref", refund.providerReference)
  for (const [name, value] of Object.entries(refund.references)) field(name, value)
  field("targets", refund.targets.map((t) => (t.amount === undefined ? t.target : `${t.target} (${t.amount})`)).join(", "))
  for (const item of refund.items) {
    field(`item ${item.target}`, `${item.status}${item.providerStatus === undefined ? "" : ` (${item.providerStatus})`}${item.message === undefined ? "" : `: ${item.message}`}`)
  }
  field("error", refund.error === undefined ? undefined : refund.error.message)
  field("created", refund.createdAt)
  field("updated", refund.updatedAt)
  if (refund.status === "unknown") {
    lines.push("  The provider may or may not have made this refund; it will not be resent. Run `refundkit sync` or `refundkit reconcile` to learn the outcome.")
  }
  return lines
}

/**
 * Prints a refund in the chosen form.
 *
 * @since 0.1.0
 */
export const refund = (asJson: boolean, value: Refund): Effect.Effect<void> =>
  asJson ? json(refundJson(value)) : text(refundLines(value).join("\n"))
