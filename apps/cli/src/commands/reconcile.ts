/**
 * `refundkit reconcile`: every refund in `pending`, `unknown` or `requires_action` synced
 * where the provider can tell, with a report of what changed, field by field, and of what
 * still needs a person (every refund left `requires_action`, with why).
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { providerDecided, setterOf } from "@refundkit/core/Ledger"
import type { Refund } from "@refundkit/core/Refund"
import * as Refunds from "@refundkit/core/Refunds"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * One changed field of a refund.
 *
 * @since 0.1.0
 */
export interface FieldChange {
  readonly field: string
  readonly from: string | null
  readonly to: string | null
}

/**
 * What reconcile did with one refund.
 *
 * @since 0.1.0
 */
export interface Reconciled {
  readonly refundId: string
  readonly provider: string
  readonly before: RefundStatus
  readonly after: RefundStatus
  readonly changes: ReadonlyArray<FieldChange>
  /** Why a person has to look at it, when one does. */
  readonly needsPerson?: string | undefined
  readonly error?: { readonly code: string; readonly message: string } | undefined
}

/**
 * The fields of a refund that differ between two versions of it.
 *
 * @since 0.1.0
 */
export const diff = (before: Refund, after: Refund): ReadonlyArray<FieldChange> => {
  const changes: Array<FieldChange> = []
  const field = (name: string, from: string | undefined, to: string | undefined) => {
    if (from !== to) changes.push({ field: name, from: from ?? null, to: to ?? null })
  }
  field("status", before.status, after.status)
  field("providerStatus", before.providerStatus, after.providerStatus)
  field("providerReference", before.providerReference, after.providerReference)
  for (const key of new Set([...Object.keys(before.references), ...Object.keys(after.references)])) {
    field(`references.${key}`, before.references[key], after.references[key])
  }
  const items = (r: Refund) => new Map(r.items.map((i) => [i.target, i]))
  const was = items(before)
  for (const [target, item] of items(after)) {
    field(`items.${target}.status`, was.get(target)?.status, item.status)
    field(`items.${target}.providerStatus`, was.get(target)?.providerStatus, item.providerStatus)
  }
  field("error", before.error?.message, after.error?.message)
  return changes
}

/**
 * Why a refund in `requires_action` waits for a person, from what the ledger holds: the words of the event
 * that put it there (a chargeback, a provider overruling an operator), else its error, else the provider's
 * answer per target (a mixed Airpay answer), else its provider status; and what to do about it.
 *
 * @since 0.6.0
 */
export const actionNeeded = (refund: Refund): string => {
  const setter = setterOf(refund)
  const said = setter?.to === "requires_action" ? setter.detail : undefined
  const items = refund.items.filter(providerDecided)
  const perTarget = items.length === 0
    ? undefined
    : `${refund.provider} answered per target: ${
      items.map((i) => `${i.target} ${i.status}${i.providerStatus === undefined ? "" : ` (${i.providerStatus})`}${i.message === undefined ? "" : `: ${i.message}`}`).join(", ")
    }`
  const why = said ?? refund.error?.message ?? perTarget ??
    (refund.providerStatus === undefined ? `${refund.provider} asks for an action` : `${refund.provider} reports ${refund.providerStatus}`)
  return `requires action: ${why.replace(/[.\s]+$/, "")}. Check it with ${refund.provider}, then record the outcome with refundkit resolve ${refund.id} --status succeeded|failed --note "..."`
}

const personFor = (refund: Refund): string | undefined =>
  refund.status === "unknown"
    ? "still unknown: check with the provider, then record the outcome"
    : refund.status === "requires_action"
    ? actionNeeded(refund)
    : undefined

const show = (value: string | null) => (value === null ? "(none)" : value)

/**
 * The `refundkit reconcile` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("reconcile", {
  ...Globals.options,
  provider: Options.text("provider").pipe(Options.withDescription("Only this provider's refunds."), Options.optional)
}, (own) =>
  Run.handler(own, (globals) =>
    Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const providerId = Option.getOrUndefined(own.provider)
      if (providerId !== undefined) yield* Environment.provider(providerId)
      const results: Array<Reconciled> = []
      const one = (refund: Refund) =>
        Effect.gen(function*() {
          const provider = yield* Environment.provider(refund.provider).pipe(Effect.option)
          // A word the provider calls final (Exirom's CHARGEBACK, a mixed Airpay answer) will not change:
          // asking again spends the provider's rate limit for nothing, and only a person settles it.
          if (refund.status === "requires_action" && (refund.providerFinal === true || Option.isNone(provider) || !provider.value.capabilities.statusQuery)) {
            return { refundId: refund.id, provider: refund.provider, before: refund.status, after: refund.status, changes: [], needsPerson: actionNeeded(refund) } satisfies Reconciled
          }
          if (Option.isNone(provider) || !provider.value.capabilities.statusQuery) {
            const why = Option.isNone(provider)
              ? `${refund.provider} is not installed or not configured here`
              : provider.value.capabilities.updates
              // Where the user reports the progress (AeroHub), resolve would settle the refund without
              // telling the provider, and the refund would then refuse every later step.
              ? `${refund.provider} has no status query: you report this refund's progress; send its next step (or repeat its last one) with refundkit update ${refund.id} --data '<json>'`
              : `${refund.provider} has no status query: check the refund with ${refund.provider}, then record the outcome with refundkit resolve ${refund.id} --status succeeded|failed --note "..."`
            return { refundId: refund.id, provider: refund.provider, before: refund.status, after: refund.status, changes: [], needsPerson: why } satisfies Reconciled
          }
          return yield* refunds.sync(refund.id).pipe(
            Effect.map((after): Reconciled => ({
              refundId: refund.id,
              provider: refund.provider,
              before: refund.status,
              after: after.status,
              changes: diff(refund, after),
              needsPerson: personFor(after)
            })),
            Effect.catchAll((error) =>
              Effect.succeed<Reconciled>({
                refundId: refund.id,
                provider: refund.provider,
                before: refund.status,
                after: refund.status,
                changes: [],
                needsPerson: `the status query failed: ${error.message}`,
                error: { code: error.code, message: error.message }
              })
            )
          )
        })
      // A refund a sync moves from one status walked to another is reported once, under the first.
      const seen = new Set<string>()
      for (const status of ["pending", "unknown", "requires_action"] as const) {
        let cursor: string | undefined
        do {
          const page = yield* refunds.list({ status, provider: providerId, limit: 100, cursor })
          const fresh = page.items.filter((refund) => !seen.has(refund.id))
          for (const refund of fresh) seen.add(refund.id)
          const done = yield* Effect.forEach(fresh, one, { concurrency: 4 })
          for (const r of done) {
            results.push(r)
            if (!globals.json) yield* Output.text(line(r))
          }
          cursor = page.nextCursor
        } while (cursor !== undefined)
      }
      const changed = results.filter((r) => r.changes.length > 0).length
      const needsPerson = results.filter((r) => r.needsPerson !== undefined).length
      const errors = results.filter((r) => r.error !== undefined).length
      const stillUnknown = results.filter((r) => r.after === "unknown").length
      if (globals.json) {
        yield* Output.json({ checked: results.length, changed, needsPerson, errors, results })
      } else {
        yield* Output.text(`${results.length} refund(s) checked: ${changed} changed, ${needsPerson} need a person${errors > 0 ? `, ${errors} status queries failed` : ""}.`)
      }
      return stillUnknown > 0 ? ExitCode.inDoubt : errors > 0 ? ExitCode.failure : ExitCode.ok
    }).pipe(Effect.provide(Environment.layer(globals))))
).pipe(Command.withDescription(
  "Sync every pending, unknown or requires_action refund and report what changed.\n\n" +
    "Only refunds at providers with a status query are synced (not one whose provider calls its word final, such as a chargeback); the report shows each change field by field, and what still needs a person: every refund left unknown or requires_action, with why.\n\n" +
    "Example: refundkit reconcile --provider airalo"
))

const line = (r: Reconciled): string => {
  const head = `${r.refundId}  ${r.provider.padEnd(8)}  ${r.before === r.after ? `${r.after} (unchanged)` : `${r.before} -> ${r.after}`}`
  const changes = r.changes.filter((c) => c.field !== "status").map((c) => `\n    ${c.field}: ${show(c.from)} -> ${show(c.to)}`).join("")
  return `${head}${changes}${r.needsPerson === undefined ? "" : `\n    needs a person: ${r.needsPerson}`}`
}
