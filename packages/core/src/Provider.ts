/**
 * The provider plugin contract. A plugin describes what its provider can do
 * (capabilities), decodes requests in the provider's own field names (its request
 * Schema), and performs `submit`, and where the provider offers them `status`,
 * `webhook` and follow-up `update`s.
 *
 * A plugin is written against its own typed request with {@link make}; the
 * registry and the apps see the erased {@link Provider}, which takes plain JSON.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { Refund, RefundItem, RefundTarget } from "./Refund.js"
import { InvalidRequest, type ProviderError, UnexpectedResponse, UnsupportedOperation } from "./RefundError.js"
import type { RefundStatus } from "./RefundStatus.js"

/**
 * What a provider can do. The orchestration reads it: it never retries a submit that
 * is not idempotent at the provider once it may have been sent, never asks for a
 * status the provider cannot give, and honours the rate limit.
 *
 * @since 0.1.0
 */
export const Capabilities = Schema.Struct({
  partialRefunds: Schema.Boolean,
  /** How many targets one provider call may carry (Airpay transactions, Airalo ICCIDs). */
  maxTargetsPerCall: Schema.Int,
  statusQuery: Schema.Boolean,
  webhooks: Schema.Boolean,
  /** A repeated submit with the same idempotency key cannot refund twice. */
  idempotentSubmit: Schema.Boolean,
  /** Follow-up updates on an existing refund (AeroHub progress updates). */
  updates: Schema.Boolean,
  settlement: Schema.Literal("money", "credits", "voucher", "none"),
  /** At most `requests` refund calls per `perMillis`; absent when the provider sets no limit we must honour. */
  rateLimit: Schema.optional(Schema.Struct({ requests: Schema.Int, perMillis: Schema.Int }))
}).annotations({ identifier: "Capabilities" })

/**
 * @since 0.1.0
 */
export type Capabilities = typeof Capabilities.Type

/**
 * Who is asking, passed to every provider call.
 *
 * @since 0.1.0
 */
export interface SubmitContext {
  readonly refundId: string
  readonly idempotencyKey: string
  /** 1 on the first try, 2 on the first retry, ... */
  readonly attempt: number
  /**
   * On a retry: whether an earlier attempt of this call may have taken effect (a 500, a
   * lost answer), as opposed to attempts the provider said it did nothing with (a 429, a
   * 503). A provider that does not replay earlier answers needs it to read a refusal of
   * the retry. Absent on the first attempt.
   */
  readonly earlierMayHaveTakenEffect?: boolean | undefined
}

/**
 * What the provider said about a refund: the unified status it maps to, its own
 * status word, its references, and per-item outcomes when it reports per target.
 *
 * @since 0.1.0
 */
export interface Outcome {
  readonly status: RefundStatus
  readonly providerStatus: string
  readonly providerReference?: string | undefined
  readonly references?: Readonly<Record<string, string>> | undefined
  readonly items?: ReadonlyArray<RefundItem> | undefined
  /**
   * The provider says this status word is final at its end although refundkit's status is
   * not (Exirom's CHARGEBACK: `requires_action`, a person must act). The ledger records it
   * on the refund (`Refund.providerFinal`) and no longer hands the refund to sync loops:
   * asking again would only spend the provider's rate limit on an answer that cannot
   * change. A person (`resolve`), a callback or an explicit `sync` still moves it (since 0.4.0).
   */
  readonly providerFinal?: boolean | undefined
  /**
   * With a `failed` status: the provider accepted this refund and keeps it on its targets, so a new
   * refund of a target would reach the provider as a repeat of this one (AeroHub keeps an order's
   * first `CLOSED` or `QUOTE_REJECTED` and takes a second as a repeat). The ledger records it on the
   * refund (`Refund.holdsTarget`) and the target guards count the refund as if it had not failed. Leave
   * it unset for a refusal that leaves nothing at the provider (a declined request): that one frees
   * its targets. Read only with a `failed` status (since 0.6.0).
   */
  readonly holdsTarget?: boolean | undefined
  /** Set when the provider declined: kept on the refund as its error. */
  readonly decline?: { readonly providerCode: string; readonly reason: string; readonly action?: "retry" | "fix_request" | "customer_action" | "contact_support" | "none" } | undefined
  readonly detail?: string | undefined
}

/**
 * A webhook call as the gateway received it: the raw body text (signatures are over
 * bytes, not over re-serialised JSON) and the headers, lower-cased.
 *
 * @since 0.1.0
 */
export interface WebhookRequest {
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly query?: Readonly<Record<string, string>> | undefined
}

/**
 * What core hands a plugin with each webhook call. `permit` is one turn of the
 * provider's rate limit (it succeeds at once where the provider sets none): a plugin that
 * calls the provider while handling a callback (Exirom confirms each one with a lookup)
 * takes a turn before each call, and only after the callback verified, so a forged
 * callback spends none. A turn it cannot get in time is `ProviderUnavailable`, nothing sent.
 *
 * @since 0.4.0
 */
export interface WebhookContext {
  readonly permit: Effect.Effect<void, ProviderError>
}

/**
 * A verified webhook: which refund it is about and what it says. `dedupeKey` lets the
 * caller drop repeats.
 *
 * @since 0.1.0
 */
export interface WebhookEvent {
  readonly refundId?: string | undefined
  readonly providerReference?: string | undefined
  readonly outcome: Outcome
  readonly dedupeKey: string
}

/**
 * A provider request after decoding: what is stored on the refund, what it is
 * against, and the call that sends it.
 *
 * @since 0.1.0
 */
export interface Prepared {
  /** The request in the provider's own field names as refundkit will send it, without secrets. */
  readonly request: unknown
  readonly targets: ReadonlyArray<RefundTarget>
  readonly currency?: string | undefined
  readonly amount?: string | undefined
  readonly submit: (context: SubmitContext) => Effect.Effect<Outcome, ProviderError>
}

/**
 * A provider as the registry and the apps see it: everything takes plain JSON.
 *
 * @since 0.1.0
 */
export interface Provider {
  readonly id: string
  readonly displayName: string
  readonly capabilities: Capabilities
  /** JSON Schema of the request, for the gateway's `/v1/providers` and docs. */
  readonly requestJsonSchema: JSONSchema.JsonSchema7Root
  readonly prepare: (input: unknown) => Effect.Effect<Prepared, InvalidRequest>
  /**
   * Several refunds in one provider call, when the capability allows more than one
   * target per call. Returns none when these requests cannot share a call.
   */
  readonly combine: (requests: ReadonlyArray<unknown>) => Effect.Effect<Option.Option<Prepared>, InvalidRequest>
  readonly status: (refund: Refund) => Effect.Effect<Outcome, ProviderError>
  readonly webhook: (request: WebhookRequest, context: WebhookContext) => Effect.Effect<ReadonlyArray<WebhookEvent>, ProviderError>
  readonly update: (refund: Refund, input: unknown) => Effect.Effect<Prepared, ProviderError | InvalidRequest>
  /** Position of a provider status word in its lifecycle, so late callbacks never move a refund backwards. */
  readonly statusRank: (providerStatus: string) => number | undefined
  /** A target as the ledger records it, for a caller's spelling of it (`Definition.canonicalTarget`; since 0.6.0). */
  readonly canonicalTarget: (text: string) => string
  /** What settles a call of this refund left in doubt, when core's own words do not (`Definition.inDoubtAdvice`; since 0.6.0). */
  readonly inDoubtAdvice: (refundId: string, request: unknown) => string | undefined
  /** Why an operator's verdict on this refund is refused, if it is (`Definition.verdictRefusal`; since 0.6.0). */
  readonly verdictRefusal: (refund: Refund, to: RefundStatus) => string | undefined
}

/**
 * What a plugin author writes: the same operations over the provider's own typed request.
 *
 * @since 0.1.0
 */
export interface Definition<A, I> {
  readonly id: string
  readonly displayName: string
  readonly capabilities: Capabilities
  readonly requestSchema: Schema.Schema<A, I>
  readonly describe: (request: A) => {
    readonly targets: ReadonlyArray<RefundTarget>
    readonly currency?: string | undefined
    readonly amount?: string | undefined
  }
  readonly submit: (request: A, context: SubmitContext) => Effect.Effect<Outcome, ProviderError>
  readonly combine?: (requests: ReadonlyArray<A>) => Option.Option<A>
  readonly status?: (refund: Refund, request: A) => Effect.Effect<Outcome, ProviderError>
  readonly webhook?: (request: WebhookRequest, context: WebhookContext) => Effect.Effect<ReadonlyArray<WebhookEvent>, ProviderError>
  readonly update?: (refund: Refund, input: unknown) => Effect.Effect<Prepared, ProviderError | InvalidRequest>
  /**
   * A hint shown when `status` is unsupported: how else the user learns the outcome. `<id>` in it stands for
   * the refund's id, filled in when the hint is given for a refund (since 0.6.0).
   */
  readonly statusHint?: string
  readonly statusRank?: (providerStatus: string) => number | undefined
  /**
   * A target as `describe` records it, for a caller's spelling of it (Airpay's `"010265"` is
   * `"10265"`), so that listing by target finds a refund however its request spelled the id.
   * Give it when the request schema accepts several spellings of one target; a text that is no
   * spelling of a target comes back unchanged. Without it a target is matched as written. (since 0.6.0)
   */
  readonly canonicalTarget?: (text: string) => string
  /**
   * What settles a refund of this provider whose call is in doubt (it may have reached the provider,
   * and no answer says what it did), where core's own advice (a sync where the provider answers
   * status queries, otherwise checking with the provider and `refundkit resolve`) is not the way.
   * `request` is the call in doubt as refundkit sent it: the refund's own request for its first
   * call, the update's for a follow-up. Core's errors naming the refund (`OutcomeUnknown`,
   * `ProviderUnavailable` that may have been processed, `UnexpectedResponse`) say it instead of
   * their own advice (their `advice`), and the refund records it with the error. AeroHub's: send the
   * same update again, which AeroHub takes as a repeat. Without it, core's advice. (since 0.6.0)
   */
  readonly inDoubtAdvice?: (refundId: string, request: unknown) => string
  /**
   * The reason an operator's verdict (`Refunds.resolve(id, to, ...)`) on a refund that is not final
   * would contradict what only the provider's own answers can say, or `undefined` to record it.
   * `Refunds.resolve` refuses a verdict with a reason as `InvalidRequest` on `status`, before anything
   * is written; the reason should say what to do instead. AeroHub refuses `succeeded` unless AeroHub
   * was told `REFUNDED` (a supplier's update says where its order stands, and a refund settled by
   * hand takes no further update). Without it, every verdict the ledger allows is recorded. (since 0.6.0)
   */
  readonly verdictRefusal?: (refund: Refund, to: RefundStatus) => string | undefined
}

/**
 * A provider's integer id (a transaction number) as a target's text: its decimal
 * digits, as `String(id)` gives them for a safe integer. Use it in `describe` rather
 * than `String(id)`: V8 keeps every number it turns into a string that way in a cache
 * of thousands of entries, so in a bulk pass, with a young-generation collection
 * every thousand rows or so, each row's target outlived two collections and was moved
 * to the old generation as garbage (Exirom's ids: 23 MiB per million rows, the whole
 * growth of a dry run's peak memory with its file's size).
 *
 * @since 0.4.0
 */
export const integerTarget = (id: number): string => id.toFixed(0)

// PostgreSQL text cannot hold U+0000, and a write carrying one fails: a reference with a NUL
// left the refund `requested`, then `unknown` with every sync failing the same way, while
// SQLite stored it. One rule where a provider's answer enters core, the same on every ledger:
// - free text a person reads (an outcome's `detail`, a decline's `reason`, an item's `message`)
//   keeps the NUL as U+FFFD, and the answer is recorded (as core's `applyChange` does for an
//   event's detail): the words still say what the provider said;
// - identifiers and status words (references, status words, targets, amounts, codes, a
//   callback's refund id, reference and dedupe key) are refused: changing one would record an
//   id the provider never gave, and a later lookup or callback naming the real one would
//   never find it.
const Storable = Schema.String.pipe(
  Schema.filter((text) => !text.includes("\u0000") || "contains a NUL character (U+0000), which no ledger stores; refundkit does not record this answer")
)

/**
 * Free text from a provider as core records it: each NUL character (U+0000), which
 * PostgreSQL text cannot hold, becomes U+FFFD.
 *
 * @since 0.4.0
 */
export const storableText = (text: string): string => (text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text)

const hasNul = (text: string | undefined) => text !== undefined && text.includes("\u0000")

// The outcome with its free text storable; the same object when it has no NUL (every answer passes here).
const withStorableText = (outcome: Outcome): Outcome => {
  const items = outcome.items
  const dirtyItems = items !== undefined && items.some((item) => hasNul(item.message))
  if (!hasNul(outcome.detail) && !hasNul(outcome.decline?.reason) && !dirtyItems) return outcome
  return {
    ...outcome,
    ...(outcome.detail === undefined ? {} : { detail: storableText(outcome.detail) }),
    ...(outcome.decline === undefined ? {} : { decline: { ...outcome.decline, reason: storableText(outcome.decline.reason) } }),
    ...(dirtyItems ? { items: items.map((item) => (item.message === undefined ? item : { ...item, message: storableText(item.message) })) } : {})
  }
}

// Every identifier and status word of an `Outcome` a ledger stores; its free text is made
// storable instead, and the others (`decline.action`, `status`) are literals.
const StorableOutcome = Schema.Struct({
  providerStatus: Storable,
  providerReference: Schema.optional(Storable),
  references: Schema.optional(Schema.Record({ key: Storable, value: Storable })),
  items: Schema.optional(Schema.Array(Schema.Struct({
    target: Storable,
    amount: Schema.optional(Storable),
    providerStatus: Schema.optional(Storable),
    providerReference: Schema.optional(Storable)
  }))),
  decline: Schema.optional(Schema.Struct({ providerCode: Storable }))
})

const StorableEvent = Schema.Struct({
  refundId: Schema.optional(Storable),
  providerReference: Schema.optional(Storable),
  dedupeKey: Storable,
  outcome: StorableOutcome
})

const checkOutcome = Schema.validateEither(StorableOutcome)
const checkEvent = Schema.validateEither(StorableEvent)

/** A provider's answer as core records it, or `UnexpectedResponse` naming the first identifier no ledger can store. */
const storable = (provider: string) => (outcome: Outcome): Either.Either<Outcome, UnexpectedResponse> =>
  Either.mapBoth(checkOutcome(outcome), { onLeft: (error) => UnexpectedResponse.fromParseError(provider, error), onRight: () => withStorableText(outcome) })

/**
 * One event of a callback as core records it: its free text with each NUL as U+FFFD, or
 * `UnexpectedResponse` naming the first identifier or status word that carries one
 * (`path` prefixed with the event's `index`, e.g. `0.providerReference`). `Refunds.webhook`
 * checks each event on its own, so one such event refuses only itself.
 *
 * @since 0.4.0
 */
export const storableEvent = (provider: string, event: WebhookEvent, index: number): Either.Either<WebhookEvent, UnexpectedResponse> =>
  Either.mapBoth(checkEvent(event), {
    onLeft: (error) => {
      const refused = UnexpectedResponse.fromParseError(provider, error)
      return new UnexpectedResponse({ provider, path: refused.path === "" ? String(index) : `${index}.${refused.path}`, detail: refused.detail })
    },
    onRight: () => {
      const outcome = withStorableText(event.outcome)
      return outcome === event.outcome ? event : { ...event, outcome }
    }
  })

// A field that takes no value (`{"not": {}}`, a `Schema.Never` the plugin fills in itself, such as
// Exirom's requestId) in an object that refuses unlisted fields is refused either way: listed, it reads
// as a field the caller may send (bulk's "its fields are …", the gateway's /v1/providers).
const schemaMaps = ["properties", "patternProperties", "$defs", "definitions"]
const schemaNodes = ["items", "additionalItems", "additionalProperties", "not", "anyOf", "allOf", "oneOf"]

const refusesEverything = (node: unknown): boolean => node === false || (Predicate.isRecord(node) && Predicate.isRecord(node["not"]) && Object.keys(node["not"]).length === 0)

const dropRefusedFields = (node: unknown): void => {
  if (Array.isArray(node)) return node.forEach(dropRefusedFields)
  if (!Predicate.isRecord(node)) return
  for (const key of schemaNodes) dropRefusedFields(node[key])
  for (const key of schemaMaps) {
    const map = node[key]
    if (Predicate.isRecord(map)) Object.values(map).forEach(dropRefusedFields)
  }
  const properties = node["properties"]
  if (node["additionalProperties"] !== false || !Predicate.isRecord(properties)) return
  for (const [name, property] of Object.entries(properties)) {
    if (refusesEverything(property)) delete properties[name]
  }
}

const withoutRefusedFields = (schema: JSONSchema.JsonSchema7Root): JSONSchema.JsonSchema7Root => {
  dropRefusedFields(schema)
  return schema
}

/**
 * Builds the registry's view of a plugin from its typed definition.
 *
 * @since 0.1.0
 */
export const make = <A, I>(definition: Definition<A, I>): Provider => {
  // Request schemas are synchronous, so the Either decoders serve: every refund passes
  // through them, and the Effect-returning ones cost several times as much per call.
  const decode = Schema.decodeUnknownEither(definition.requestSchema, { errors: "all", onExcessProperty: "error" })
  const encode = Schema.encodeEither(definition.requestSchema)
  const answered = storable(definition.id)
  const submitOf = (submit: (context: SubmitContext) => Effect.Effect<Outcome, ProviderError>) => (context: SubmitContext) =>
    Effect.flatMap(submit(context), answered)
  const decodeRequest = (input: unknown): Either.Either<A, InvalidRequest> =>
    Either.mapLeft(decode(input), (error) => InvalidRequest.fromParseError(error, definition.id))
  const prepared = (request: A): Either.Either<Prepared, InvalidRequest> =>
    Either.map(
      Either.mapLeft(encode(request), (error) => InvalidRequest.fromParseError(error, definition.id)),
      (encoded): Prepared => {
        const described = definition.describe(request)
        // Fields listed one by one: V8 promotes objects built by a spread plus extra fields to
        // the old generation, and a bulk dry run builds one per row (measured ~400 bytes a row).
        return {
          targets: described.targets,
          currency: described.currency,
          amount: described.amount,
          request: encoded,
          submit: submitOf((context) => definition.submit(request, context))
        }
      }
    )
  const unsupported = (operation: string, hint?: string) =>
    new UnsupportedOperation(hint === undefined ? { provider: definition.id, operation } : { provider: definition.id, operation, hint })

  return {
    id: definition.id,
    displayName: definition.displayName,
    capabilities: definition.capabilities,
    requestJsonSchema: withoutRefusedFields(JSONSchema.make(Schema.encodedSchema(definition.requestSchema))),
    prepare: (input) => Effect.suspend(() => Either.flatMap(decodeRequest(input), prepared)),
    combine: (inputs) =>
      Effect.gen(function*() {
        const combine = definition.combine
        if (combine === undefined || inputs.length === 0) return Option.none()
        const requests = yield* Effect.forEach(inputs, (input) => decodeRequest(input))
        const combined = combine(requests)
        return Option.isNone(combined) ? Option.none() : Option.some(yield* prepared(combined.value))
      }),
    status: (refund) => {
      const status = definition.status
      return status === undefined
        ? Effect.fail(unsupported("status queries", definition.statusHint?.replaceAll("<id>", refund.id)))
        : Effect.flatMap(decodeRequest(refund.request), (request) => Effect.flatMap(status(refund, request), answered))
    },
    webhook: (request, context) => {
      const webhook = definition.webhook
      // Each event is checked where it is applied (`Refunds.webhook`, through `storableEvent`), so one
      // event no ledger can store does not refuse the others of its callback.
      return webhook === undefined ? Effect.fail(unsupported("webhooks")) : webhook(request, context)
    },
    update: (refund, input) => {
      const update = definition.update
      return update === undefined
        ? Effect.fail(unsupported("follow-up updates"))
        : Effect.map(update(refund, input), (prepared): Prepared => ({ ...prepared, submit: submitOf(prepared.submit) }))
    },
    statusRank: definition.statusRank ?? (() => undefined),
    canonicalTarget: definition.canonicalTarget ?? identity,
    inDoubtAdvice: definition.inDoubtAdvice ?? (() => undefined),
    verdictRefusal: definition.verdictRefusal ?? (() => undefined)
  }
}

/**
 * Field issues of a Schema decode, for plugins that validate more than their request.
 *
 * @since 0.1.0
 */
export const issuesOf = (error: ParseResult.ParseError) => InvalidRequest.fromParseError(error).issues
