/**
 * The refundkit error model: one `Schema.TaggedError` per thing a caller would
 * handle differently. Each carries what the caller needs and a message a person
 * understands, and each has a stable snake_case `code` used by the gateway and CLI.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as ConfigError from "effect/ConfigError"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { RefundStatus } from "./RefundStatus.js"

/**
 * One problem with one field: `path` is the field's location ("transactions.0.amount"),
 * `message` names the rule it broke.
 *
 * @since 0.1.0
 */
export const FieldIssue = Schema.Struct({
  path: Schema.String,
  message: Schema.String
}).annotations({ identifier: "FieldIssue" })

/**
 * @since 0.1.0
 */
export type FieldIssue = typeof FieldIssue.Type

// A rule that already names its field ("transactionId must be …") follows the path without a colon:
// `transactionId: transactionId must be …` said the name twice.
const describeIssue = (issue: FieldIssue): string => {
  if (issue.path === "") return issue.message
  const field = issue.path.slice(issue.path.lastIndexOf(".") + 1)
  return issue.message.startsWith(`${field} `) ? `${issue.path}${issue.message.slice(field.length)}` : `${issue.path}: ${issue.message}`
}

/**
 * Field issues as one line: `path: rule; path: rule` (an issue on the whole value has no path).
 *
 * @since 0.2.0
 */
export const describeIssues = (issues: ReadonlyArray<FieldIssue>): string => issues.map(describeIssue).join("; ")

// What a union member that stands for "absent" says when the value is something else: an optional
// field is a union with undefined, a nullable one (AeroHub's null for "not given") a union with null.
const absentAlternative = /^Expected (?:null|undefined), actual /

/**
 * Drops the "Expected undefined" or "Expected null" half of an optional or nullable field's
 * failure: such a field decodes as a union with `undefined` or `null`, so a bad value fails
 * every member, and "Expected null, actual 99" beside the real rule (on the field or inside
 * it) reads as if the field had to be null. Kept when it is the field's only issue.
 *
 * @since 0.6.0
 */
export const withoutAbsentAlternative = <I extends FieldIssue>(issues: ReadonlyArray<I>): ReadonlyArray<I> => {
  const within = (inner: string, outer: string) => inner === outer || outer === "" || inner.startsWith(`${outer}.`)
  const noise = (issue: FieldIssue) => absentAlternative.test(issue.message)
  return issues.filter((issue) => !(noise(issue) && issues.some((other) => !noise(other) && within(other.path, issue.path))))
}

/**
 * @since 0.3.0
 * @deprecated Use {@link withoutAbsentAlternative}, which drops the `null` alternative too.
 */
export const withoutUndefinedAlternative = withoutAbsentAlternative

// A field whose schema takes no value (`Schema.Never`, optional or not) is one a plugin fills in
// itself (Exirom's `requestId`), declared so that sending it is refused with its own message.
const takesNoValue = (ast: AST.AST): boolean =>
  AST.isNeverKeyword(ast) ||
  (AST.isUnion(ast) && ast.types.some(AST.isNeverKeyword) && ast.types.every((member) => AST.isNeverKeyword(member) || AST.isUndefinedKeyword(member)))

const unexpectedKey = "is unexpected, expected: "

// Schema's message for an excess key lists every property of the struct, a field refundkit fills in
// among them ("expected: … | \"requestId\""): sending it is refused, so it is left out of the list.
const offeringAcceptedKeys = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Pointer": {
      const inner = offeringAcceptedKeys(issue.issue)
      return inner === issue.issue ? issue : new ParseResult.Pointer(issue.path, issue.actual, inner)
    }
    case "Refinement": {
      const inner = offeringAcceptedKeys(issue.issue)
      return inner === issue.issue ? issue : new ParseResult.Refinement(issue.ast, issue.actual, issue.kind, inner)
    }
    case "Transformation": {
      const inner = offeringAcceptedKeys(issue.issue)
      return inner === issue.issue ? issue : new ParseResult.Transformation(issue.ast, issue.actual, issue.kind, inner)
    }
    case "Composite": {
      const struct = issue.ast
      const refused = AST.isTypeLiteral(struct) && struct.propertySignatures.some((property) => takesNoValue(property.type))
      const expected = refused ? `${unexpectedKey}${String(acceptedKeys(struct))}` : undefined
      const one = (child: ParseResult.ParseIssue): ParseResult.ParseIssue =>
        expected !== undefined && child._tag === "Pointer" && child.issue._tag === "Unexpected" && child.issue.message?.startsWith(unexpectedKey) === true
          ? new ParseResult.Pointer(child.path, child.actual, new ParseResult.Unexpected(child.issue.actual, expected))
          : offeringAcceptedKeys(child)
      const children = Arr.ensure(issue.issues)
      const mapped = Arr.map(children, one)
      return Arr.every(mapped, (child, i) => child === children[i]) || !Arr.isNonEmptyReadonlyArray(mapped)
        ? issue
        : new ParseResult.Composite(issue.ast, issue.actual, mapped, issue.output)
    }
    default:
      return issue
  }
}

// The same union of key literals Schema builds for its message, without the keys that take no value.
const acceptedKeys = (struct: AST.TypeLiteral): AST.AST =>
  AST.Union.make([
    ...struct.indexSignatures.map((index) => index.parameter),
    ...struct.propertySignatures
      .filter((property) => !takesNoValue(property.type))
      .map((property) => (typeof property.name === "symbol" ? new AST.UniqueSymbol(property.name) : new AST.Literal(property.name)))
  ])

/**
 * The request is not valid; nothing was sent to the provider.
 *
 * @since 0.1.0
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>("InvalidRequest")("InvalidRequest", {
  provider: Schema.optional(Schema.String),
  issues: Schema.Array(FieldIssue)
}) {
  get code() {
    return "invalid_request" as const
  }
  override get message() {
    return `The refund request is invalid and was not sent${this.provider ? ` to ${this.provider}` : ""}: ${closed(describeIssues(this.issues))} Fix the named fields and send it again.`
  }

  /**
   * Turns a Schema parse error into field issues, one per failing field.
   */
  static fromParseError(error: ParseResult.ParseError, provider?: string): InvalidRequest {
    const issues = withoutAbsentAlternative(ParseResult.ArrayFormatter.formatIssueSync(offeringAcceptedKeys(error.issue)).map((issue) => ({
      path: issue.path.map(String).join("."),
      message: issue.message
    })))
    return new InvalidRequest(provider === undefined ? { issues } : { provider, issues })
  }

  /**
   * A single issue on one field.
   */
  static field(path: string, message: string, provider?: string): InvalidRequest {
    return new InvalidRequest(provider === undefined ? { issues: [{ path, message }] } : { provider, issues: [{ path, message }] })
  }
}

/**
 * The provider refused our credentials (after one re-authentication), or, with `of: "callback"`,
 * a callback said to come from the provider failed its signature check.
 *
 * @since 0.1.0
 */
export class ProviderAuthFailed extends Schema.TaggedError<ProviderAuthFailed>("ProviderAuthFailed")("ProviderAuthFailed", {
  provider: Schema.String,
  detail: Schema.String,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus),
  /**
   * `callback`: a webhook call failed the provider's signature check (since 0.6.0). Anyone can send
   * one, so it says nothing of refundkit's credentials; a plugin's own calls while handling a
   * callback (Exirom's confirming lookup) leave it out, as their refusal is of our credentials.
   */
  of: Schema.optional(Schema.Literal("callback"))
}) {
  get code() {
    return "provider_auth_failed" as const
  }
  override get message() {
    // A forged or unsigned callback from anywhere must not send operators to check their own settings;
    // only a refusal of the provider's own callbacks points at the secret they are verified with.
    if (this.of === "callback") {
      return `A callback said to come from ${this.provider} failed verification: ${closed(this.detail)} Nothing was changed. ` +
        `If ${this.provider}'s own callbacks are refused like this, the secret refundkit verifies them with (a REFUNDKIT_${this.provider.toUpperCase()}_* setting) may be wrong.`
    }
    return `${this.provider} refused refundkit's credentials: ${closed(this.detail)} Check the REFUNDKIT_${this.provider.toUpperCase()}_* settings.${finalUnsent(this.refundId, this.status)}`
  }
}

/**
 * What a provider's decline code asks of the caller.
 *
 * @since 0.1.0
 */
export const DeclineAction = Schema.Literal("retry", "fix_request", "customer_action", "contact_support", "none").annotations({
  identifier: "DeclineAction"
})

/**
 * The provider answered and said no. As a refund outcome this is a recorded refund in
 * status `failed`, not an exception the gateway turns into an HTTP error.
 *
 * @since 0.1.0
 */
export class ProviderDeclined extends Schema.TaggedError<ProviderDeclined>("ProviderDeclined")("ProviderDeclined", {
  provider: Schema.String,
  providerCode: Schema.String,
  reason: Schema.String,
  action: Schema.optional(DeclineAction),
  refundId: Schema.optional(Schema.String),
  /** `update`: the provider declined a follow-up on the refund, which keeps its status; no key is involved. */
  of: Schema.optional(Schema.Literal("update"))
}) {
  get code() {
    return "provider_declined" as const
  }
  override get message() {
    const update = this.of === "update"
    const advice: Record<typeof DeclineAction.Type, string> = {
      retry: update
        ? " The provider says it is transient: send the update again later."
        : " The provider says it is transient: send it again later under a new idempotency key (this refund is final, and its own key only replays it).",
      fix_request: update ? " Fix the update and send it again (an update carries no idempotency key)." : " Fix the request and send it with a new idempotency key.",
      customer_action: " The customer has to act before this can succeed.",
      contact_support: ` Contact ${this.provider} support.`,
      none: ""
    }
    const what = update ? "the update" : "the refund"
    return `${this.provider} declined ${what} (${this.providerCode}): ${closed(this.reason)}${update ? " The refund keeps its status." : ""}${this.action ? advice[this.action] : ""}`
  }
}

// A provider's words often end with their own full stop ("Too Many Attempts."): one more made "..".
const closed = (text: string): string => (/[.!?…]$/.test(text) ? text : `${text}.`)

// A refund recorded `failed` keeps its key: a retry with the same key replays the failure, so
// "retry" alone (or "Retry after 120 s.") sent callers round in a loop that never reaches the provider.
// The provider's wait, where it named one, is for the new attempt, and said so.
const finalUnsent = (refundId: string | undefined, status: string | undefined, wait = ""): string =>
  status === "failed" && refundId !== undefined
    ? ` Nothing was refunded. The refund ${refundId} is recorded failed, which is final: a retry under the same idempotency key replays this answer, and a new attempt needs a new key${wait}.`
    : ""

// Not every provider answers status queries (Airalo, Airpay, AeroHub do not): "sync it" alone sent
// operators to a command that cannot settle those. A provider whose refunds are settled otherwise
// (AeroHub: the same update sent again) gives its own advice, and "record what happened" sent its
// operators to a verdict that left the order with no way forward.
const keptInDoubt = (provider: string, refundId: string | undefined, providerAdvice: string | undefined): string =>
  providerAdvice === undefined
    ? `The refund${refundId === undefined ? "" : ` ${refundId}`} is kept as "unknown" and will not be resent: sync it where ${provider} answers status queries; otherwise check with ${provider} and record what happened (refundkit resolve).`
    : `The refund${refundId === undefined ? "" : ` ${refundId}`} is kept as "unknown" and refundkit will not resend it by itself: ${closed(providerAdvice)}`

/**
 * What settles a refund in doubt, in its provider's words (`Provider.Definition.inDoubtAdvice`):
 * said instead of core's own advice (since 0.6.0).
 */
const inDoubtAdvice = Schema.optional(Schema.String)

/**
 * The provider could not be reached or answered with a transient failure (5xx, 429,
 * connection refused or reset). `maybeProcessed` says whether the request may have
 * taken effect anyway: false only when the provider provably did nothing (a 429, a 503
 * with `Retry-After`, a refused connection).
 *
 * @since 0.1.0
 */
export class ProviderUnavailable extends Schema.TaggedError<ProviderUnavailable>("ProviderUnavailable")("ProviderUnavailable", {
  provider: Schema.String,
  detail: Schema.String,
  httpStatus: Schema.optional(Schema.Number),
  retryAfterMillis: Schema.optional(Schema.Number),
  maybeProcessed: Schema.Boolean,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus),
  advice: inDoubtAdvice
}) {
  get code() {
    return "provider_unavailable" as const
  }
  override get message() {
    // `Retry-After: 0` names no wait.
    const seconds = this.retryAfterMillis === undefined || this.retryAfterMillis <= 0 ? undefined : Math.ceil(this.retryAfterMillis / 1000)
    const inDoubt = this.maybeProcessed && this.status === "unknown"
    const final = this.status === "failed" && this.refundId !== undefined
    // "Retry after" only where a retry is sent: nothing was recorded under the key. A refund recorded
    // failed replays under it, and one in doubt is never resent.
    const wait = seconds === undefined || inDoubt || final ? "" : ` Retry after ${seconds} s.`
    // A follow-up in doubt leaves its refund's status as it was: the provider's advice alone.
    const doubt = inDoubt
      ? ` It may have reached ${this.provider}. ${keptInDoubt(this.provider, this.refundId, this.advice)}`
      : this.maybeProcessed && this.advice !== undefined
      ? ` ${closed(this.advice)}`
      : ""
    return `${this.provider} is unavailable: ${closed(this.detail)}${wait}${doubt}${finalUnsent(this.refundId, this.status, seconds === undefined ? "" : ` (${this.provider} asked to wait ${seconds} s first)`)}`
  }
}

/**
 * The request may have reached the provider but no answer came back in time. The
 * refund is `unknown`: it is never retried blindly; sync it or ask an operator.
 * A follow-up's (an update's) leaves its refund in the status it had, which `status`
 * names: the refund is not "kept as unknown", and the advice (the provider's, or core's
 * in `detail`) is all there is to say (since 0.6.0).
 *
 * @since 0.1.0
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>("OutcomeUnknown")("OutcomeUnknown", {
  provider: Schema.String,
  detail: Schema.String,
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus),
  advice: inDoubtAdvice
}) {
  get code() {
    return "outcome_unknown" as const
  }
  override get message() {
    const unknown = `The outcome at ${this.provider} is unknown: ${closed(this.detail)}`
    return this.status === undefined || this.status === "unknown"
      ? `${unknown} ${keptInDoubt(this.provider, this.refundId, this.advice)}`
      : `${unknown}${this.advice === undefined ? "" : ` ${closed(this.advice)}`}`
  }
}

/**
 * The provider answered with a body that did not match its documented schema.
 * `path` names the offending field.
 *
 * An update's (`of: "update"`, since 0.6.0) may have been applied all the same: the
 * provider answered, in words refundkit cannot read. It names the refund and the status
 * it keeps (`status`), and `advice` says what settles it (the provider's, or core's).
 *
 * @since 0.1.0
 */
export class UnexpectedResponse extends Schema.TaggedError<UnexpectedResponse>("UnexpectedResponse")("UnexpectedResponse", {
  provider: Schema.String,
  path: Schema.String,
  detail: Schema.String,
  httpStatus: Schema.optional(Schema.Number),
  refundId: Schema.optional(Schema.String),
  status: Schema.optional(RefundStatus),
  of: Schema.optional(Schema.Literal("update")),
  advice: inDoubtAdvice
}) {
  get code() {
    return "unexpected_response" as const
  }
  // Without a refund id it is not a submit's answer (a status query's, a callback lookup's):
  // nothing from it was recorded and the refund keeps its status, which saying "kept as unknown"
  // misreported for a pending refund whose sync got a bad answer. An update's answer is not a
  // read: it said "nothing was recorded" of an update AeroHub may have applied, and no more.
  override get message() {
    const what = `${this.provider} sent a response refundkit does not understand (${this.path === "" ? "body" : `field ${this.path}`}: ${this.detail})`
    if (this.of === "update") {
      const applied = `${what}; the update may have been applied.`
      return this.status === "unknown"
        ? `${applied} ${keptInDoubt(this.provider, this.refundId, this.advice)}`
        : `${applied}${this.advice === undefined ? "" : ` ${closed(this.advice)}`}`
    }
    return this.refundId === undefined
      ? `${what}. Nothing in it was recorded; the refund keeps the status it had.`
      : `${what}. ${keptInDoubt(this.provider, this.refundId, this.advice)}`
  }

  /**
   * From a Schema parse error on a provider response: names the first failing field. The
   * value found there is quoted only when it is short and not an object or array: a body
   * that is not the expected shape (a token answer, say) may carry a token or a key, and
   * this message is stored on the refund and shown to callers.
   */
  static fromParseError(provider: string, error: ParseResult.ParseError, httpStatus?: number): UnexpectedResponse {
    const [first] = ParseResult.ArrayFormatter.formatErrorSync(error)
    return new UnexpectedResponse({
      provider,
      path: first ? first.path.map(String).join(".") : "",
      detail: first ? withoutEchoedValue(first.message) : "does not match the documented shape",
      ...(httpStatus === undefined ? {} : { httpStatus })
    })
  }
}

// Schema's messages end ", actual <the value>", the value printed as JSON.
const echoedValue = /, actual ([\s\S]*)$/
const longestQuoted = 64

const withoutEchoedValue = (message: string): string =>
  message.replace(echoedValue, (whole, actual: string) =>
    actual.startsWith("{")
      ? ", actual an object"
      : actual.startsWith("[")
      ? ", actual an array"
      : actual.startsWith("\"") && actual.length > longestQuoted + 2
      ? `, actual a string longer than ${longestQuoted} characters`
      : whole
  )

/**
 * The idempotency key was used before with a different request body.
 *
 * @since 0.1.0
 */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>("IdempotencyKeyReused")("IdempotencyKeyReused", {
  idempotencyKey: Schema.String,
  refundId: Schema.String
}) {
  get code() {
    return "idempotency_key_reused" as const
  }
  override get message() {
    return `Idempotency key ${JSON.stringify(this.idempotencyKey)} was already used for refund ${this.refundId} with a different request. Use a new key for a new refund.`
  }
}

/**
 * The first request with this idempotency key is still running.
 *
 * @since 0.1.0
 */
export class RefundInProgress extends Schema.TaggedError<RefundInProgress>("RefundInProgress")("RefundInProgress", {
  idempotencyKey: Schema.String,
  refundId: Schema.String
}) {
  get code() {
    return "refund_in_progress" as const
  }
  override get message() {
    return `Refund ${this.refundId} for idempotency key ${JSON.stringify(this.idempotencyKey)} is still being processed. Retry in a moment with the same key to get its result.`
  }
}

// Refund.RefundId's pattern; Refund imports this module, so it is written here again.
const wellFormedId = /^rfd_[0-9a-z]{26}$/

/**
 * No refund with this id.
 *
 * @since 0.1.0
 */
export class RefundNotFound extends Schema.TaggedError<RefundNotFound>("RefundNotFound")("RefundNotFound", {
  refundId: Schema.String
}) {
  get code() {
    return "refund_not_found" as const
  }
  override get message() {
    // A well-formed id was told to check that it starts with "rfd_", which it does.
    return wellFormedId.test(this.refundId)
      ? `No refund with id ${JSON.stringify(this.refundId)} in this ledger. Check that this is the ledger (or gateway) that recorded it.`
      : `No refund with id ${JSON.stringify(this.refundId)}. Check the id: a refund id is "rfd_" followed by 26 lowercase letters or digits.`
  }
}

/**
 * The provider has no such operation (no status endpoint, no webhooks, no follow-up updates).
 *
 * @since 0.1.0
 */
export class UnsupportedOperation extends Schema.TaggedError<UnsupportedOperation>("UnsupportedOperation")("UnsupportedOperation", {
  provider: Schema.String,
  operation: Schema.String,
  hint: Schema.optional(Schema.String)
}) {
  get code() {
    return "unsupported_operation" as const
  }
  override get message() {
    return `${this.provider} does not support ${this.operation}.${this.hint ? ` ${this.hint}` : ""}`
  }
}

/**
 * Refundkit or a plugin is misconfigured.
 *
 * @since 0.1.0
 */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>("ConfigurationError")("ConfigurationError", {
  detail: Schema.String,
  key: Schema.optional(Schema.String)
}) {
  get code() {
    return "configuration_error" as const
  }
  override get message() {
    return `Configuration problem${this.key ? ` in ${this.key}` : ""}: ${closed(this.detail)}`
  }

  /** The setting and what is wrong with it as one sentence: `REFUNDKIT_EXIROM_MID is not set`, `REFUNDKIT_PORT: must be …`. */
  get sentence(): string {
    return this.key === undefined ? this.detail : configSentence({ key: this.key, text: this.detail })
  }

  /**
   * An Effect `ConfigError` as one sentence per setting: `REFUNDKIT_CALL_TIMEOUT: must be a duration
   * with its unit ...`, `REFUNDKIT_EXIROM_MID is not set`. `String(error)` printed Effect's nesting
   * (`(Invalid data at ...) and (...)`), and a missing `Config.redacted` setting as `"<redacted>"`.
   */
  static fromConfigError(error: ConfigError.ConfigError): ConfigurationError {
    const leaves = ConfigError.reduceWithContext(error, undefined, {
      andCase: (_, left: ReadonlyArray<ConfigLeaf>, right: ReadonlyArray<ConfigLeaf>) => [...left, ...right],
      orCase: (_, left: ReadonlyArray<ConfigLeaf>, right: ReadonlyArray<ConfigLeaf>) => [...left, ...right],
      invalidDataCase: (_, path, message): ReadonlyArray<ConfigLeaf> => [{ key: path.join("_"), text: invalidConfigText(message) }],
      missingDataCase: (_, path): ReadonlyArray<ConfigLeaf> => [{ key: path.join("_"), text: "is not set" }],
      sourceUnavailableCase: (_, path, message): ReadonlyArray<ConfigLeaf> => [{ key: path.join("_"), text: `could not be read (${message})` }],
      unsupportedCase: (_, path, message): ReadonlyArray<ConfigLeaf> => [{ key: path.join("_"), text: message }]
    })
    const keys = [...new Set(leaves.map((leaf) => leaf.key))]
    if (keys.length === 1 && keys[0] !== "") {
      return new ConfigurationError({ key: keys[0]!, detail: leaves.map((leaf) => leaf.text).join("; ") })
    }
    return new ConfigurationError({ detail: leaves.map(configSentence).join("; ") })
  }
}

interface ConfigLeaf {
  readonly key: string
  readonly text: string
}

const configSentence = (leaf: ConfigLeaf): string =>
  leaf.key === "" ? leaf.text : /^(is|could) /.test(leaf.text) ? `${leaf.key} ${leaf.text}` : `${leaf.key}: ${leaf.text}`

// Effect's words for a duration written without its unit ("5") say neither the rule nor an example.
const invalidConfigText = (message: string): string => {
  const duration = /^Expected a duration but received (.*)$/.exec(message)
  return duration === null ? message : `must be a duration with its unit, such as "30 seconds" or "500 millis", got ${duration[1]}`
}

/**
 * A provider id that is not installed.
 *
 * @since 0.1.0
 */
export class UnknownProvider extends Schema.TaggedError<UnknownProvider>("UnknownProvider")("UnknownProvider", {
  provider: Schema.String,
  installed: Schema.Array(Schema.String)
}) {
  get code() {
    return "unknown_provider" as const
  }
  override get message() {
    return `Unknown provider ${JSON.stringify(this.provider)}. Installed providers: ${this.installed.length === 0 ? "none" : this.installed.join(", ")}.`
  }
}

/**
 * A status change the transition table does not allow; nothing was overwritten.
 *
 * @since 0.1.0
 */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>("IllegalTransition")("IllegalTransition", {
  refundId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  detail: Schema.optional(Schema.String)
}) {
  get code() {
    return "illegal_transition" as const
  }
  override get message() {
    return `Refund ${this.refundId} cannot move from ${this.from} to ${this.to}${this.detail ? `: ${this.detail}` : ""}. Nothing was changed.`
  }
}

/**
 * A provider's callback the refund's history already records (`Change.callbackKey`): the ledger
 * found it under the same lock as the write and recorded nothing. A ledger's answer to
 * `Refunds.webhook`, which answers the callback `applied: false, reason: "duplicate callback"`; it is
 * not one of the errors a caller of refundkit sees (`RefundError`), since a repeat is no failure.
 *
 * @since 0.6.0
 */
export class DuplicateCallback extends Schema.TaggedError<DuplicateCallback>("DuplicateCallback")("DuplicateCallback", {
  refundId: Schema.String,
  callbackKey: Schema.String
}) {
  override get message() {
    return `Refund ${this.refundId} already records the callback ${this.callbackKey}. Nothing was changed.`
  }
}

/**
 * The refunds against one target would exceed its original amount.
 *
 * @since 0.1.0
 */
export class OverRefund extends Schema.TaggedError<OverRefund>("OverRefund")("OverRefund", {
  target: Schema.String,
  requested: Schema.String,
  remaining: Schema.String,
  currency: Schema.String,
  /**
   * A refund against the target whose amount cannot be counted in `currency` (it states
   * no currency, another one, or no amount: a whole refund), so nothing is left that the
   * guard can vouch for.
   */
  blockedBy: Schema.optional(Schema.Struct({ refundId: Schema.String, reason: Schema.String })),
  /**
   * The refunds whose amounts against the target were counted, each with its amount in `currency` and
   * its status, at most {@link overRefundHoldersShown} of them, in the order the ledger read them
   * (since 0.6.0): the ones to check with the provider before refunding more.
   */
  heldBy: Schema.optional(Schema.Array(Schema.Struct({ refundId: Schema.String, amount: Schema.String, status: RefundStatus }))),
  /** How many refunds were counted in all, when more than `heldBy` lists (since 0.6.0). */
  heldByCount: Schema.optional(Schema.Number)
}) {
  get code() {
    return "over_refund" as const
  }
  override get message() {
    if (this.blockedBy !== undefined) {
      return `Refunding ${this.requested} ${this.currency} against ${this.target} cannot be checked against its original amount: refund ${this.blockedBy.refundId} against it ${this.blockedBy.reason}. Nothing was sent; to refund without the guard, leave out originalAmounts.`
    }
    const held = this.heldBy ?? []
    const more = this.heldByCount !== undefined && this.heldByCount > held.length ? ` and ${this.heldByCount - held.length} more` : ""
    const counted = held.length === 0
      ? ""
      : ` Counted against it: ${held.map((h) => `refund ${h.refundId} (${h.amount} ${this.currency}, ${h.status})`).join(", ")}${more}.`
    return `Refunding ${this.requested} ${this.currency} against ${this.target} would exceed its original amount: only ${this.remaining} ${this.currency} is left to refund.${counted}`
  }
}

/**
 * How many of the refunds counted against a target an `OverRefund` names (`heldBy`); `heldByCount` says how
 * many there were in all. A target refunded in many small parts would otherwise make an error of any length.
 *
 * @since 0.6.0
 */
export const overRefundHoldersShown = 10

/**
 * A whole refund (a target named without an amount) against a target that another
 * refund holds (one not `failed`, or a failed one its provider keeps on the target:
 * `Refund.holdsTarget`): refunding it again would pay twice, or reach the provider as a
 * repeat of the first, whatever idempotency key the second request carries.
 *
 * @since 0.3.0
 */
export class TargetAlreadyRefunded extends Schema.TaggedError<TargetAlreadyRefunded>("TargetAlreadyRefunded")("TargetAlreadyRefunded", {
  target: Schema.String,
  /** The refund that holds the target. */
  refundId: Schema.String,
  /**
   * Its status when the claim was refused: `failed` only for a refund its provider accepted and
   * keeps on the target (`Refund.holdsTarget`); any other failed refund frees it.
   */
  status: RefundStatus
}) {
  get code() {
    return "target_already_refunded" as const
  }
  override get message() {
    // A failed holder is not waited for, nor settled by hand: its provider said its last word and keeps it.
    if (this.status === "failed") {
      return `${this.target} is held by refund ${this.refundId} (status failed): its provider took that refund and ended it failed, and keeps it on ${this.target}, so a new refund of ${this.target} would reach the provider as a repeat of it. Nothing was sent. If the provider has told you it will take a new refund of ${this.target}, release the target with \`refundkit resolve ${this.refundId} --status failed --release-targets --note "..."\` and send this one again.`
    }
    const guard = "Nothing was sent: a refund of the whole target is refused while another refund against it has not failed."
    const recordFailed = `\`refundkit resolve ${this.refundId} --status failed --note "..."\``
    const recordPart = `(or, if it refunded that refund's other targets but not ${this.target}, \`refundkit resolve ${this.refundId} --status succeeded --failed-target ${this.target} --note "..."\`)`
    // The advice follows the holder's status: "wait for it to finish; if refused, resolve it failed" told an
    // operator to wait for a finished refund and to run a verdict refused on a final or requested one.
    switch (this.status) {
      case "succeeded":
        return `${this.target} is already refunded by refund ${this.refundId} (status succeeded, which is final). ${guard} ${this.refundId} is finished: ${this.target} is refunded, and there is nothing more to refund (\`refundkit get ${this.refundId}\` shows how it ended).`
      // Its first call is out, and its answer settles it; a verdict by hand is refused meanwhile.
      case "requested":
        return `${this.target} is held by refund ${this.refundId} (status requested). ${guard} Its first call to the provider is still out: wait for its answer (\`refundkit get ${this.refundId}\`), and send this one again only if it ends failed.`
      // In doubt: it does not finish by itself.
      case "unknown":
        return `${this.target} is held by refund ${this.refundId} (status unknown). ${guard} ${this.refundId} is in doubt: settle it as its error says (\`refundkit get ${this.refundId}\`); if the provider never made it, record that with ${recordFailed} ${recordPart} and send this one again.`
      default:
        return `${this.target} is already refunded by refund ${this.refundId} (status ${this.status}). ${guard} Wait for ${this.refundId} to finish; if the provider refused it, record that with ${recordFailed} ${recordPart} and send this one again.`
    }
  }
}

/**
 * The ledger could not be read or written.
 *
 * @since 0.1.0
 */
export class LedgerError extends Schema.TaggedError<LedgerError>("LedgerError")("LedgerError", {
  detail: Schema.String
}) {
  get code() {
    return "ledger_error" as const
  }
  override get message() {
    // The detail carries its own advice where there is one (a corrupt row, a schema newer than
    // this build, an fsync failure); "is the database reachable" only fits the connection failures.
    return `The refund ledger failed: ${this.detail.replace(/[.\s]+$/, "")}.`
  }
}

/**
 * Every refundkit error.
 *
 * @since 0.1.0
 */
export const RefundError = Schema.Union(
  InvalidRequest,
  ProviderAuthFailed,
  ProviderDeclined,
  ProviderUnavailable,
  OutcomeUnknown,
  UnexpectedResponse,
  IdempotencyKeyReused,
  RefundInProgress,
  RefundNotFound,
  UnsupportedOperation,
  ConfigurationError,
  UnknownProvider,
  IllegalTransition,
  OverRefund,
  TargetAlreadyRefunded,
  LedgerError
)

/**
 * @since 0.1.0
 */
export type RefundError = typeof RefundError.Type

/**
 * What a provider plugin's calls may fail with.
 *
 * @since 0.1.0
 */
export type ProviderError =
  | InvalidRequest
  | ProviderAuthFailed
  | ProviderDeclined
  | ProviderUnavailable
  | OutcomeUnknown
  | UnexpectedResponse
  | UnsupportedOperation
  | ConfigurationError

const tags = new Set<string>(RefundError.members.map((member) => member._tag))

/**
 * Whether a value is one of refundkit's errors.
 *
 * @since 0.1.0
 */
export const isRefundError = (u: unknown): u is RefundError => Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)

/**
 * The error stored on a refund, in JSON: the stable code, a message for a person and
 * what a retry needs.
 *
 * @since 0.1.0
 */
export const ErrorInfo = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  providerCode: Schema.optional(Schema.String),
  retryAfterMillis: Schema.optional(Schema.Number)
}).annotations({ identifier: "ErrorInfo" })

/**
 * @since 0.1.0
 */
export type ErrorInfo = typeof ErrorInfo.Type

/**
 * The stored form of an error.
 *
 * @since 0.1.0
 */
export const toErrorInfo = (error: RefundError): ErrorInfo => ({
  code: error.code,
  message: error.message,
  ...(error._tag === "ProviderDeclined" ? { providerCode: error.providerCode } : {}),
  ...(error._tag === "ProviderUnavailable" && error.retryAfterMillis !== undefined ? { retryAfterMillis: error.retryAfterMillis } : {})
})
