import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Either, Layer, Schema } from "effect"
import * as Providers from "../src/Providers.js"
import { deriveId } from "../src/Refund.js"
import { ConfigurationError, InvalidRequest, OutcomeUnknown, ProviderAuthFailed, ProviderDeclined, ProviderUnavailable, RefundNotFound, TargetAlreadyRefunded, UnexpectedResponse } from "../src/RefundError.js"

const settings = Config.all({
  mid: Config.string("REFUNDKIT_TOY_MID"),
  secret: Config.redacted("REFUNDKIT_TOY_SECRET"),
  timeout: Config.duration("REFUNDKIT_TOY_TIMEOUT")
})
const read = (map: ReadonlyArray<readonly [string, string]>) =>
  Effect.flip(Effect.withConfigProvider(settings, ConfigProvider.fromMap(new Map(map))))

describe("ConfigurationError.fromConfigError", () => {
  it.effect("names each setting and its rule, not Effect's nesting or a \"<redacted>\" message", () =>
    Effect.gen(function*() {
      const missing = ConfigurationError.fromConfigError(yield* read([["REFUNDKIT_TOY_TIMEOUT", "5 seconds"]]))
      assert.strictEqual(missing.message, "Configuration problem: REFUNDKIT_TOY_MID is not set; REFUNDKIT_TOY_SECRET is not set.")
      const unitless = ConfigurationError.fromConfigError(yield* read([["REFUNDKIT_TOY_MID", "m"], ["REFUNDKIT_TOY_SECRET", "s"], ["REFUNDKIT_TOY_TIMEOUT", "5"]]))
      assert.strictEqual(unitless.key, "REFUNDKIT_TOY_TIMEOUT")
      assert.strictEqual(unitless.message, `Configuration problem in REFUNDKIT_TOY_TIMEOUT: must be a duration with its unit, such as "30 seconds" or "500 millis", got "5".`)
    }))

  it.effect("a plugin's invalid setting is named as that setting", () =>
    Effect.gen(function*() {
      const toy = Providers.pluginConfig("Toy", settings, () => Effect.die("not reached"))
      const error = yield* Layer.build(toy).pipe(
        Effect.provide(Providers.layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_TOY_MID", "m"], ["REFUNDKIT_TOY_SECRET", "s"], ["REFUNDKIT_TOY_TIMEOUT", "soon"]]))),
        Effect.scoped,
        Effect.flip
      )
      assert.strictEqual(error.message, `Configuration problem in REFUNDKIT_TOY_TIMEOUT: Toy settings: must be a duration with its unit, such as "30 seconds" or "500 millis", got "soon".`)
    }))
})

describe("InvalidRequest", () => {
  it("names each field once: a rule that starts with its field's name follows the path without a colon", () => {
    const error = new InvalidRequest({
      provider: "toy",
      issues: [
        { path: "transactionId", message: "transactionId must be a positive integer, got \"abc\"" },
        { path: "items.0.ap_transactionid", message: "ap_transactionid must be a positive integer" },
        { path: "amount", message: "must have at most 2 decimal places" },
        { path: "reason", message: "reasonable words only" },
        { path: "", message: "the body must be a JSON object" }
      ]
    })
    assert.strictEqual(
      error.message,
      "The refund request is invalid and was not sent to toy: transactionId must be a positive integer, got \"abc\"; " +
        "items.0.ap_transactionid must be a positive integer; amount: must have at most 2 decimal places; reason: reasonable words only; " +
        "the body must be a JSON object. Fix the named fields and send it again."
    )
  })

  const issuesOf = <A, I>(schema: Schema.Schema<A, I>, input: unknown) =>
    Either.match(Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(input), {
      onLeft: (error) => InvalidRequest.fromParseError(error).issues,
      onRight: () => []
    })

  it("a field that must be null or absent, and is neither, still says so when that is its only issue", () => {
    const schema = Schema.Struct({ cleared: Schema.Null, gone: Schema.Undefined })
    assert.deepStrictEqual(issuesOf(schema, { cleared: 1, gone: 2 }), [
      { path: "cleared", message: "Expected null, actual 1" },
      { path: "gone", message: "Expected undefined, actual 2" }
    ])
  })

  it("an unexpected field's message lists the fields a caller may send, not one the plugin fills in (Schema.Never), at any depth", () => {
    const filled = Schema.Never.annotations({ message: () => "token is filled in by refundkit: leave it out" })
    const schema = Schema.Struct({ amount: Schema.String, token: Schema.optional(filled), item: Schema.Struct({ id: Schema.String, token: filled }) })
    assert.deepStrictEqual(issuesOf(schema, { amount: "1", extra: 1, item: { id: "a", token: "t", other: 2 } }), [
      { path: "extra", message: "is unexpected, expected: \"amount\" | \"item\"" },
      { path: "item.other", message: "is unexpected, expected: \"id\"" },
      { path: "item.token", message: "token is filled in by refundkit: leave it out" }
    ])
  })
})

describe("provider words in messages", () => {
  it("a provider's own full stop is not doubled", () => {
    const limited = new ProviderUnavailable({ provider: "toy", detail: "HTTP 429 (rate limited): Too Many Attempts.", maybeProcessed: false, httpStatus: 429, retryAfterMillis: 5000 })
    assert.strictEqual(limited.message, "toy is unavailable: HTTP 429 (rate limited): Too Many Attempts. Retry after 5 s.")
    const declined = new ProviderDeclined({ provider: "toy", providerCode: "73", reason: "The eSIM has been recycled.", action: "none" })
    assert.strictEqual(declined.message, "toy declined the refund (73): The eSIM has been recycled.")
    const field = new InvalidRequest({ provider: "toy", issues: [{ path: "iccids", message: "The iccids field is required." }] })
    assert.notInclude(field.message, "..")
  })
})

describe("the provider's wait", () => {
  it("is a retry's only where nothing was recorded; a refund recorded failed asks for a new key, the wait before it", () => {
    const limited = { provider: "toy", detail: "HTTP 429", maybeProcessed: false, httpStatus: 429, retryAfterMillis: 1500 } as const
    // Held back before its claim: nothing recorded, so the same key sends it.
    assert.strictEqual(new ProviderUnavailable(limited).message, "toy is unavailable: HTTP 429. Retry after 2 s.")
    const recorded = new ProviderUnavailable({ ...limited, refundId: "rfd_1", status: "failed" })
    assert.strictEqual(
      recorded.message,
      "toy is unavailable: HTTP 429. Nothing was refunded. The refund rfd_1 is recorded failed, which is final: a retry under the same idempotency key " +
        "replays this answer, and a new attempt needs a new key (toy asked to wait 2 s first)."
    )
    const doubt = new ProviderUnavailable({ ...limited, maybeProcessed: true, refundId: "rfd_2", status: "unknown" })
    assert.notInclude(doubt.message, "Retry after", "a refund in doubt is never resent")
  })
})

describe("ProviderAuthFailed", () => {
  it("of a callback that failed verification does not send operators to their credentials", () => {
    const callback = new ProviderAuthFailed({ provider: "toy", of: "callback", detail: "the callback has no signature" })
    assert.strictEqual(
      callback.message,
      "A callback said to come from toy failed verification: the callback has no signature. Nothing was changed. " +
        "If toy's own callbacks are refused like this, the secret refundkit verifies them with (a REFUNDKIT_TOY_* setting) may be wrong."
    )
    assert.notInclude(callback.message, "credentials")
    assert.include(new ProviderAuthFailed({ provider: "toy", detail: "HTTP 401" }).message, "toy refused refundkit's credentials: HTTP 401. Check the REFUNDKIT_TOY_* settings.")
  })
})

describe("RefundNotFound", () => {
  it("tells a well-formed id to check the ledger, and any other id what a refund id looks like", () => {
    const wellFormed = new RefundNotFound({ refundId: deriveId("toy", "k-1") })
    assert.include(wellFormed.message, "in this ledger. Check that this is the ledger (or gateway) that recorded it.")
    assert.notInclude(wellFormed.message, "Check the id")
    const malformed = new RefundNotFound({ refundId: "rfd_123" })
    assert.include(malformed.message, `Check the id: a refund id is "rfd_" followed by 26 lowercase letters or digits.`)
  })
})

describe("a refund in doubt", () => {
  it("is settled as its provider advises where it gives advice, in every error that keeps it unknown; core's own words otherwise", () => {
    const advice = "send the same update again: refundkit update rfd_1 --data '{}'"
    const core = `The refund rfd_1 is kept as "unknown" and will not be resent: sync it where toy answers status queries; otherwise check with toy and record what happened (refundkit resolve).`
    const advised = `The refund rfd_1 is kept as "unknown" and refundkit will not resend it by itself: ${advice}.`
    const lost = { provider: "toy", detail: "the connection was reset", maybeProcessed: true, refundId: "rfd_1", status: "unknown" } as const
    const cases = [
      [new ProviderUnavailable(lost), new ProviderUnavailable({ ...lost, advice })],
      [new OutcomeUnknown({ provider: "toy", detail: "no answer within 30s", refundId: "rfd_1" }), new OutcomeUnknown({ provider: "toy", detail: "no answer within 30s", refundId: "rfd_1", advice })],
      [new UnexpectedResponse({ provider: "toy", path: "code", detail: "Expected number", refundId: "rfd_1" }), new UnexpectedResponse({ provider: "toy", path: "code", detail: "Expected number", refundId: "rfd_1", advice })]
    ] as const
    for (const [plain, withAdvice] of cases) {
      assert.include(plain.message, core, plain._tag)
      assert.include(withAdvice.message, advised, withAdvice._tag)
      assert.notInclude(withAdvice.message, "refundkit resolve", withAdvice._tag)
    }
    // A follow-up in doubt leaves its refund pending: the advice alone, no "kept as unknown".
    const update = new ProviderUnavailable({ ...lost, detail: "the connection was reset; the update may have been applied", status: "pending", advice })
    assert.strictEqual(update.message, `toy is unavailable: the connection was reset; the update may have been applied. ${advice}.`)
    // So does an update that timed out: its refund keeps its status (`status`), and is not "kept as unknown".
    const timedOut = new OutcomeUnknown({ provider: "toy", detail: "no answer within 30s; the update may have been applied", refundId: "rfd_1", status: "pending", advice })
    assert.strictEqual(timedOut.message, `The outcome at toy is unknown: no answer within 30s; the update may have been applied. ${advice}.`)
    assert.strictEqual(
      new OutcomeUnknown({ provider: "toy", detail: "no answer within 30s; the update may have been applied. Send the same update again", refundId: "rfd_1", status: "pending" }).message,
      "The outcome at toy is unknown: no answer within 30s; the update may have been applied. Send the same update again."
    )
    // An update of a refund still unknown leaves it so: the words of any refund kept in doubt.
    assert.include(new OutcomeUnknown({ provider: "toy", detail: "no answer within 30s", refundId: "rfd_1", status: "unknown", advice }).message, advised)
    // And an update whose answer could not be read: the field it names, that it may have been applied, the advice.
    const unread = { provider: "toy", path: "code", detail: "is missing", refundId: "rfd_1", of: "update", advice } as const
    assert.strictEqual(
      new UnexpectedResponse({ ...unread, status: "pending" }).message,
      `toy sent a response refundkit does not understand (field code: is missing); the update may have been applied. ${advice}.`
    )
    assert.strictEqual(
      new UnexpectedResponse({ ...unread, status: "unknown" }).message,
      `toy sent a response refundkit does not understand (field code: is missing); the update may have been applied. ${advised}`
    )
    // A status query's recorded nothing, and says so.
    assert.strictEqual(
      new UnexpectedResponse({ provider: "toy", path: "", detail: "the body is not valid JSON" }).message,
      "toy sent a response refundkit does not understand (body: the body is not valid JSON). Nothing in it was recorded; the refund keeps the status it had."
    )
    // Nothing processed: no advice for a refund in doubt.
    assert.notInclude(new ProviderUnavailable({ ...lost, maybeProcessed: false, status: "failed", advice }).message, advice)
  })
})

describe("TargetAlreadyRefunded", () => {
  const held = (status: "requested" | "pending" | "unknown" | "succeeded") => new TargetAlreadyRefunded({ target: "T1", refundId: "rfd_1", status }).message
  const verdict = "refundkit resolve rfd_1 --status failed"

  it("held by a succeeded refund says the target is refunded: nothing to wait for, no verdict (one on a final refund is refused)", () => {
    const message = held("succeeded")
    assert.include(message, "T1 is already refunded by refund rfd_1 (status succeeded, which is final). Nothing was sent")
    assert.include(message, "rfd_1 is finished: T1 is refunded, and there is nothing more to refund")
    assert.notInclude(message, "Wait for")
    assert.notInclude(message, verdict)
  })

  it("held by a refund still requested says to wait for its first call's answer, not to resolve it (refused while requested)", () => {
    const message = held("requested")
    assert.include(message, "T1 is held by refund rfd_1 (status requested)")
    assert.include(message, "Its first call to the provider is still out: wait for its answer")
    assert.notInclude(message, verdict)
  })

  it("held by a refund in doubt says to settle it as its error says; held by a pending one, to wait for it", () => {
    const doubt = held("unknown")
    assert.include(doubt, "rfd_1 is in doubt: settle it as its error says (`refundkit get rfd_1`)")
    assert.include(doubt, `if the provider never made it, record that with \`${verdict} --note "..."\``)
    assert.include(
      held("pending"),
      `Wait for rfd_1 to finish; if the provider refused it, record that with \`${verdict} --note "..."\` ` +
        `(or, if it refunded that refund's other targets but not T1, \`refundkit resolve rfd_1 --status succeeded --failed-target T1 --note "..."\`) and send this one again.`
    )
    assert.include(doubt, "--status succeeded --failed-target T1", "a refund in doubt may have refunded some of its targets")
  })
})
