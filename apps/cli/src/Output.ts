/**
 * What the CLI prints: refunds and errors for a person (plain lines) or a program
 * (`--json`, the same objects the gateway returns). Results go to stdout; errors,
 * progress and advice to stderr.
 *
 * @since 0.1.0
 */
import { Refund, type RefundEvent } from "@refundkit/core/Refund"
import type { FieldIssue } from "@refundkit/core/RefundError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
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

const decodeJson = Schema.decodeUnknownOption(Schema.parseJson())

/** A JSON value in words: objects as `key=value, ...` (in braces when nested), arrays in brackets, strings unquoted. */
const plain = (value: unknown, nested: boolean): string => {
  if (Array.isArray(value)) return `[${value.map((element) => plain(element, true)).join(", ")}]`
  if (value !== null && typeof value === "object") {
    const entries: Array<[string, unknown]> = Object.entries(value)
    const body = entries.map(([key, inner]) => `${key}=${plain(inner, true)}`).join(", ")
    return nested ? `{${body}}` : body
  }
  return String(value)
}

/**
 * A reference's value for a person, a line each. A provider may keep a structured answer as JSON
 * (AeroHub's `rejection` and `refundFeePricing`), which printed raw read `rejection {}` for an order
 * closed without a reason: an object reads `key=value, ...`, an array one element a line, and an
 * empty one says that nothing was given. Any other value is printed as recorded.
 */
const referenceLines = (value: string): ReadonlyArray<string> => {
  const start = value.trimStart()[0]
  if (start !== "{" && start !== "[") return [value]
  const decoded = decodeJson(value)
  if (Option.isNone(decoded) || decoded.value === null || typeof decoded.value !== "object") return [value]
  const json = decoded.value
  const elements: ReadonlyArray<unknown> = Array.isArray(json) ? json : Object.keys(json).length === 0 ? [] : [json]
  return elements.length === 0 ? ["(no details given)"] : elements.map((element) => plain(element, false))
}

/**
 * One line of a refund's history: when, who moved it (submit, sync, webhook, operator, recovery),
 * from which status to which (with the provider's status word), and why; a change the ledger
 * refused (an illegal transition) is kept in the history and marked so.
 */
const eventLine = (event: RefundEvent): string => {
  const move = event.from === null ? event.to : `${event.from} -> ${event.to}`
  const word = event.providerStatus === undefined ? "" : ` (${event.providerStatus})`
  return `    ${event.at}  ${event.source.padEnd(8)}  ${move}${word}${event.accepted ? "" : " [refused]"}${event.detail === undefined ? "" : `: ${event.detail}`}`
}

/**
 * A refund for a person: its id, provider and status first, then what the provider said, then
 * its history, one line per event (and, for a refund in doubt, what to do about it).
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
  for (const [name, value] of Object.entries(refund.references)) {
    const [first, ...more] = referenceLines(value)
    field(name, first)
    // Further elements of an array line up under the first.
    for (const line of more) lines.push(`${" ".repeat(20)}${line}`)
  }
  field("targets", refund.targets.map((t) => (t.amount === undefined ? t.target : `${t.target} (${t.amount})`)).join(", "))
  for (const item of refund.items) {
    field(`item ${item.target}`, `${item.status}${item.providerStatus === undefined ? "" : ` (${item.providerStatus})`}${item.message === undefined ? "" : `: ${item.message}`}`)
  }
  field("error", refund.error === undefined ? undefined : refund.error.message)
  field("created", refund.createdAt)
  field("updated", refund.updatedAt)
  if (refund.events.length > 0) lines.push("  history", ...refund.events.map(eventLine))
  // What to do about a refund in doubt stays the last line, below its history.
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
