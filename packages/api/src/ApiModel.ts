/**
 * The bodies, headers and query parameters of the gateway's endpoints. Refunds are
 * core's `Refund` schema, so a client reads exactly what the ledger stores.
 *
 * @since 0.1.0
 */
import { Capabilities } from "@refundkit/core/Provider"
import { Json, Refund } from "@refundkit/core/Refund"
import { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Timestamp from "@refundkit/core/Timestamp"
import * as Schema from "effect/Schema"

/**
 * `POST /v1/refunds`: the provider id, the provider's own request fields beside it, and
 * optionally the original amount of each target for the over-refund guard.
 *
 * @since 0.1.0
 */
export const CreateRefund = Schema.Struct(
  {
    provider: Schema.String.annotations({ description: "An installed provider id (see GET /v1/providers)" }),
    originalAmounts: Schema.optional(
      Schema.Record({ key: Schema.String, value: Schema.String }).annotations({
        description:
          "The original amount of each target (keyed by the provider's id of the payment or product), as a decimal string. " +
          "When given, refunds against a target that have not failed may not add up past it (409 over_refund). " +
          "A target named without an amount is refunded whole and is guarded with or without this: it is refused while " +
          "another refund against it has not failed, or failed but is kept on the target by its provider (409 target_already_refunded)."
      })
    )
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({
  identifier: "CreateRefund",
  description: "The provider's own request fields (see GET /v1/providers for each provider's JSON Schema), plus `provider`."
})

/**
 * @since 0.1.0
 */
export type CreateRefund = typeof CreateRefund.Type

/**
 * The `Idempotency-Key` header: 1 to 255 printable ASCII characters. The same key and
 * body replay the stored refund; the same key with another body is refused.
 *
 * @since 0.1.0
 */
export const IdempotencyHeaders = Schema.Struct({
  "idempotency-key": Schema.String.annotations({ description: "1 to 255 printable ASCII characters, unique per refund" })
})

/**
 * A refund as stored, with its event history.
 *
 * @since 0.1.0
 */
export const RefundResponse = Refund

/**
 * The answer to a replayed `POST /v1/refunds` (status 200, `Idempotent-Replayed: true`).
 *
 * @since 0.1.0
 */
export const ReplayedRefund = Refund.annotations({ description: "The refund created earlier with this idempotency key and body" })

/**
 * The path of a refund's endpoints.
 *
 * @since 0.1.0
 */
export const RefundPath = Schema.Struct({ id: Schema.String.annotations({ description: "A refund id (rfd_...)" }) })

/**
 * The longest `note` an operator's verdict takes, in characters (Unicode code points).
 *
 * @since 0.6.0
 */
export const maxNoteLength = 1000

const describeValue = (actual: unknown): string =>
  typeof actual === "string" ? JSON.stringify(actual.length > 40 ? `${actual.slice(0, 40)}…` : actual) : actual === null ? "null" : Array.isArray(actual) ? "an array" : typeof actual

const codePoints = (text: string): number => {
  let n = 0
  for (const _ of text) n++
  return n
}

// What the CLI's `resolve --note` takes, bounded: blank is refused (it would record no reason), and a NUL
// character is refused rather than stored as U+FFFD (a repeat of the verdict would then not match it).
const Note = Schema.String.annotations({ message: (issue) => `must be a string saying how the outcome was checked with the provider, got ${describeValue(issue.actual)}` }).pipe(
  Schema.filter((note) => note.trim() !== "", { message: () => "must say how the outcome was checked with the provider (it is kept in the refund's history), not be blank" }),
  Schema.filter((note) => codePoints(note) <= maxNoteLength, {
    message: (issue) => `must be at most ${maxNoteLength} characters, got ${typeof issue.actual === "string" ? codePoints(issue.actual) : "more"}`
  }),
  Schema.filter((note) => !note.includes("\u0000"), { message: () => "must not contain a NUL character" }),
  Schema.annotations({
    description: `How you know: what the provider said and where (e.g. "credited 4.50 USD, seen on GET /v2/balance"); kept in the refund's history as an operator event. 1 to ${maxNoteLength} characters, not blank`,
    jsonSchema: { type: "string", minLength: 1, maxLength: maxNoteLength }
  })
)

/**
 * `POST /v1/refunds/{id}/resolve`: an operator's verdict on a refund the provider cannot be asked
 * about (or still `unknown` after a sync), once it has been checked with the provider: `status`
 * `succeeded` or `failed`, a `note` saying how it was checked, `releaseTargets` (with `failed`
 * only) to free the targets of a failed refund its provider keeps on them, `failedTargets` (with
 * `succeeded` only) naming the targets the provider did not refund, and `correct` to replace a
 * verdict an operator recorded with the other final status (since 0.6.0). Unknown fields are refused.
 *
 * @since 0.6.0
 */
export const ResolveRefund = Schema.Struct({
  status: Schema.propertySignature(Schema.Literal("succeeded", "failed").annotations({
    message: (issue) => ({ message: `must be "succeeded" or "failed" (what the provider says happened), got ${describeValue(issue.actual)}`, override: true }),
    description: "What the provider says happened: succeeded (the money or credits went out) or failed (it never made the refund)"
  })).annotations({ missingMessage: () => "is required: \"succeeded\" or \"failed\" (what the provider says happened)" }),
  note: Schema.propertySignature(Note).annotations({ missingMessage: () => "is required: say how the outcome was checked with the provider" }),
  releaseTargets: Schema.optional(Schema.Boolean.annotations({
    message: (issue) => `must be true or false, got ${describeValue(issue.actual)}`,
    description: "With status failed: free the targets of a failed refund its provider still keeps on them (an AeroHub order it closed), " +
      "once the provider has told you it will take a new refund of them; or of a refund its provider took back after reporting it succeeded " +
      "(an Exirom FAILED or CHARGEBACK after SUCCEED), once it has confirmed the money came back: without it such a refund resolved failed keeps its targets held"
  })),
  failedTargets: Schema.optional(
    Schema.Array(Schema.String.pipe(Schema.minLength(1, { message: () => "a target of the refund, not empty" }), Schema.maxLength(200))).pipe(
      Schema.minItems(1, { message: () => "names at least one target when given" }),
      Schema.maxItems(500)
    ).annotations({
      description: "With status succeeded: the refund's targets the provider did not refund (an Airalo ICCID refused by email, a transaction of an " +
        "Airpay batch whose answer was lost): their items are recorded failed and the targets freed for a new refund; the others are recorded refunded. " +
        "Any spelling the provider's plugin reads; not every target (then the verdict is failed), not one the provider reported succeeded"
    })
  ),
  correct: Schema.optional(Schema.Boolean.annotations({
    message: (issue) => `must be true or false, got ${describeValue(issue.actual)}`,
    description: "true: replace a verdict an operator recorded (succeeded by failed, or failed by succeeded), as `refundkit resolve --correct` does. " +
      "Only a final status an operator's verdict set is corrected, never one the provider reported; a correction to succeeded takes the refund's " +
      "targets back, and is refused while a refund made since holds one"
  }))
}).pipe(
  Schema.filter((verdict) =>
    verdict.releaseTargets !== true || verdict.status === "failed" ||
    { path: ["releaseTargets"], message: "goes with status \"failed\": it frees the targets of a failed refund" }
  ),
  Schema.filter((verdict) =>
    verdict.failedTargets === undefined || verdict.status === "succeeded" ||
    { path: ["failedTargets"], message: "goes with status \"succeeded\": it names the targets the provider did not refund" }
  ),
  Schema.annotations({
    identifier: "ResolveRefund",
    description: "An operator's verdict on a refund, once checked with the provider"
  })
)

/**
 * @since 0.6.0
 */
export type ResolveRefund = typeof ResolveRefund.Type

// What the CLI's `reopen --note` takes, bounded as a verdict's note is.
const ReopenNote = Schema.String.annotations({ message: (issue) => `must be a string saying why the refund is reopened, got ${describeValue(issue.actual)}` }).pipe(
  Schema.filter((note) => note.trim() !== "", { message: () => "must say why the refund is reopened (what the provider's dashboard shows; it is kept in the refund's history), not be blank" }),
  Schema.filter((note) => codePoints(note) <= maxNoteLength, {
    message: (issue) => `must be at most ${maxNoteLength} characters, got ${typeof issue.actual === "string" ? codePoints(issue.actual) : "more"}`
  }),
  Schema.filter((note) => !note.includes("\u0000"), { message: () => "must not contain a NUL character" }),
  Schema.annotations({
    description: `Why: what the provider's dashboard shows against the status it reported (e.g. "reversed in the Airpay dashboard on 6 Dec: card account closed"); kept in the refund's history as an operator event. 1 to ${maxNoteLength} characters, not blank`,
    jsonSchema: { type: "string", minLength: 1, maxLength: maxNoteLength }
  })
)

/**
 * `POST /v1/refunds/{id}/reopen`: an operator reopens a final refund whose status the provider set, when the
 * provider's dashboard contradicts it (a reversal or chargeback of a `succeeded` refund, a `failed` one refunded
 * after all), with a `note` saying why; the refund moves to `requires_action`, its targets held, until a verdict
 * (`resolve`) settles it. Unknown fields are refused (since 0.6.0).
 *
 * @since 0.6.0
 */
export const ReopenRefund = Schema.Struct({
  note: Schema.propertySignature(ReopenNote).annotations({ missingMessage: () => "is required: say why the refund is reopened" })
}).annotations({
  identifier: "ReopenRefund",
  description: "An operator's reopen of a final refund the provider set, for a person to settle"
})

/**
 * @since 0.6.0
 */
export type ReopenRefund = typeof ReopenRefund.Type

const createdBound = (description: string) =>
  Schema.optional(Timestamp.FromText.annotations({
    description: `${description}: an RFC 3339 timestamp with an offset (2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00) or a date ` +
      "(2026-12-06, midnight UTC). With either bound the page is ordered by creation time, newest first"
  }))

/**
 * `GET /v1/refunds` filters. `limit` defaults to 50 (at most 500); `cursor` is the
 * previous page's `nextCursor`. `target` lists what was refunded against one of a provider's
 * transactions (or eSIMs, or orders) before refunding it again. `createdFrom` (inclusive) and
 * `createdTo` (exclusive) bound the refunds' `createdAt`, decoded to the ledger's form.
 *
 * @since 0.1.0
 */
export const ListQuery = Schema.Struct({
  provider: Schema.optional(Schema.String.annotations({ description: "An installed provider's id; any other is 400 invalid_request" })),
  status: Schema.optional(RefundStatus),
  target: Schema.optional(Schema.String.pipe(Schema.minLength(1, { message: () => "a provider's own id, not empty" })).annotations({
    description: "Only refunds against this target: the provider's own id (Exirom's transactionId, an Airalo ICCID, Airpay's ap_transactionid, AeroHub's refundOrderNo); needs `provider`"
  })),
  limit: Schema.optional(
    Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500, { message: () => "an integer from 1 to 500" }))
  ),
  createdFrom: createdBound("Only refunds created at or after this instant"),
  createdTo: createdBound("Only refunds created before this instant"),
  cursor: Schema.optional(Schema.String)
})

/**
 * A page of refunds, newest first.
 *
 * @since 0.1.0
 */
export const RefundPage = Schema.Struct({
  items: Schema.Array(Refund),
  nextCursor: Schema.optional(Schema.String.annotations({ description: "Pass as `cursor` for the next page; absent on the last page" }))
}).annotations({ identifier: "RefundPage" })

/**
 * @since 0.1.0
 */
export type RefundPage = typeof RefundPage.Type

/**
 * An installed provider: what it can do and the JSON Schema of its request.
 *
 * @since 0.1.0
 */
export const ProviderInfo = Schema.Struct({
  id: Schema.String,
  displayName: Schema.String,
  capabilities: Capabilities,
  requestSchema: Json.annotations({ description: "JSON Schema (draft-07) of the provider's request fields" })
}).annotations({ identifier: "ProviderInfo" })

/**
 * @since 0.1.0
 */
export type ProviderInfo = typeof ProviderInfo.Type

/**
 * `GET /v1/providers`.
 *
 * @since 0.1.0
 */
export const ProviderList = Schema.Struct({
  providers: Schema.Array(ProviderInfo)
}).annotations({ identifier: "ProviderList" })

/**
 * What happened to one event of a callback.
 *
 * @since 0.1.0
 */
export const WebhookResult = Schema.Struct({
  refundId: Schema.optional(Schema.String),
  applied: Schema.Boolean,
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "WebhookResult" })

/**
 * The answer to a verified callback. Duplicates and out-of-order events are
 * acknowledged (so the provider stops retrying) with `applied: false` and a reason.
 *
 * @since 0.1.0
 */
export const WebhookAck = Schema.Struct({
  received: Schema.Int,
  applied: Schema.Int,
  results: Schema.Array(WebhookResult)
}).annotations({ identifier: "WebhookAck" })

/**
 * @since 0.1.0
 */
export type WebhookAck = typeof WebhookAck.Type

/**
 * The raw callback body; the gateway verifies it as bytes, so any content type is accepted.
 *
 * @since 0.1.0
 */
export const WebhookBody = Json.annotations({ description: "The provider's callback body, exactly as the provider sends it" })

/**
 * `/healthz`: the process is up.
 *
 * @since 0.1.0
 */
export const Health = Schema.Struct({ status: Schema.Literal("ok") }).annotations({ identifier: "Health" })

/**
 * `/readyz`: the ledger is reachable and migrated.
 *
 * @since 0.1.0
 */
export const Readiness = Schema.Struct({
  status: Schema.Literal("ready"),
  checks: Schema.Record({ key: Schema.String, value: Schema.String })
}).annotations({ identifier: "Readiness" })
