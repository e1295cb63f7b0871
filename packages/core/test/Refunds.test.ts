import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Duration, Effect, Either, Fiber, Layer, Option, Schedule, Schema, TestClock } from "effect"
import * as Ledger from "../src/Ledger.js"
import * as Money from "../src/Money.js"
import * as Provider from "../src/Provider.js"
import * as Providers from "../src/Providers.js"
import { OutcomeUnknown, ProviderAuthFailed, ProviderDeclined, ProviderUnavailable } from "../src/RefundError.js"
import * as Refunds from "../src/Refunds.js"
import { eventually, track } from "./waiting.js"

// A scripted in-process provider: core's orchestration is what is under test here;
// real providers are exercised over HTTP against their sandboxes in each plugin package.
const Lines = Schema.Struct({
  lines: Schema.Array(Schema.Struct({ target: Schema.String, amount: Money.DecimalAmount(2) })).pipe(Schema.minItems(1)),
  currency: Schema.optional(Schema.Literal("USD"))
})

type Step = (lines: typeof Lines.Type) => Effect.Effect<Provider.Outcome, ProviderUnavailable | OutcomeUnknown | ProviderDeclined | ProviderAuthFailed>

const scripted = (options: {
  idempotent: boolean
  maxTargets?: number
  rateLimit?: { requests: number; perMillis: number }
  maxRateLimitWait?: Duration.DurationInput
  callTimeout?: Duration.DurationInput
  /**
   * A ledger without leases and a heartbeat of 1 ms: recovery takes refunds whose calls are still out,
   * as it does when their process has stalled past its leases, or has died (a crash, simulated).
   */
  unleased?: boolean
  /** The provider's own advice for a refund in doubt (`Definition.inDoubtAdvice`). */
  inDoubtAdvice?: (refundId: string, request: unknown) => string
  /** The provider's refusal of an operator's verdict (`Definition.verdictRefusal`). */
  verdictRefusal?: Provider.Definition<typeof Lines.Type, typeof Lines.Encoded>["verdictRefusal"]
  /** The plugin's `canonicalTarget`: how it reads a caller's spelling of a target. */
  canonicalTarget?: (text: string) => string
}) => {
  const calls: Array<typeof Lines.Type> = []
  const script: Array<Step> = []
  const succeed: Step = (request) =>
    Effect.succeed({
      status: "succeeded",
      providerStatus: "DONE",
      providerReference: `ref-${request.lines.map((l) => l.target).join("+")}`,
      items: request.lines.map((l) => ({ target: l.target, status: "succeeded" as const, amount: l.amount, providerReference: `ref-${l.target}` }))
    })
  const provider = Provider.make({
    id: "toy",
    displayName: "Toy",
    capabilities: {
      partialRefunds: true,
      maxTargetsPerCall: options.maxTargets ?? 1,
      statusQuery: true,
      webhooks: true,
      idempotentSubmit: options.idempotent,
      updates: false,
      settlement: "money",
      ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit })
    },
    requestSchema: Lines,
    describe: (request) => ({
      targets: request.lines.map((l) => ({ target: l.target, amount: l.amount })),
      currency: request.currency,
      amount: request.lines.length === 1 ? request.lines[0]!.amount : undefined
    }),
    submit: (request) =>
      Effect.suspend(() => {
        calls.push(request)
        return (script.shift() ?? succeed)(request)
      }),
    // Like a provider whose calls share one setting (Airalo's reason): only alike requests combine.
    combine: (requests) =>
      requests.every((r) => r.currency === requests[0]!.currency)
        ? Option.some({ lines: requests.flatMap((r) => r.lines), currency: requests[0]!.currency })
        : Option.none(),
    status: () => Effect.succeed({ status: "succeeded", providerStatus: "DONE" }),
    webhook: (request) => {
      const body = JSON.parse(request.body) as { ref: string; status: "PENDING" | "DONE" | "FAILED"; said?: string }
      return Effect.succeed([{
        providerReference: body.ref,
        dedupeKey: `${body.ref}:${body.status}`,
        outcome: {
          status: body.status === "DONE" ? "succeeded" : body.status === "FAILED" ? "failed" : "pending",
          providerStatus: body.status,
          ...(body.said === undefined ? {} : { detail: body.said })
        }
      }])
    },
    statusRank: (word) => ({ PENDING: 1, DONE: 2, FAILED: 2 } as Record<string, number>)[word],
    ...(options.inDoubtAdvice === undefined ? {} : { inDoubtAdvice: options.inDoubtAdvice }),
    ...(options.verdictRefusal === undefined ? {} : { verdictRefusal: options.verdictRefusal }),
    ...(options.canonicalTarget === undefined ? {} : { canonicalTarget: options.canonicalTarget })
  })
  const layer = Refunds.layer({
    // Long enough that no call a test holds open times out on a loaded machine; the tests of the timeout set their own.
    callTimeout: options.callTimeout ?? "1 minute",
    retrySchedule: Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
    maxRetryAfter: "1 second",
    maxRateLimitWait: options.maxRateLimitWait,
    ...(options.unleased === true ? { heartbeat: "1 millis" } : {})
  }).pipe(
    Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(provider)), Providers.layer)),
    Layer.provideMerge(
      options.unleased === true
        ? Layer.effect(Ledger.Ledger, Effect.map(Ledger.makeMemory, (memory) => ({ ...memory, keepAlive: undefined, leased: undefined })))
        : Ledger.layerMemory
    )
  )
  const called = (n: number) => eventually(() => calls.length >= n, `the provider has been called ${n} times`)
  return { calls, script, layer, called }
}

const one = (target: string, amount = "10.00") => ({ lines: [{ target, amount }], currency: "USD" })

describe("Refunds", () => {
  it.scopedLive("records requested then the outcome, and replays the same key", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const first = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k1" })
      assert.strictEqual(first.refund.status, "succeeded")
      assert.isFalse(first.replayed)
      assert.deepStrictEqual(first.refund.events.map((e) => [e.from, e.to]), [[null, "requested"], ["requested", "succeeded"]])
      const again = yield* refunds.create({ provider: "toy", request: { currency: "USD", lines: [{ amount: "10", target: "t1" }] }, idempotencyKey: "k1" })
      assert.isTrue(again.replayed, "the same request in another key order and amount spelling is the same body")
      assert.strictEqual(again.refund.id, first.refund.id)
      assert.strictEqual(toy.calls.length, 1)
      const reused = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "k1" }))
      assert.strictEqual(reused._tag, "IdempotencyKeyReused")
      assert.strictEqual(toy.calls.length, 1)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("refuses a second request while the first with the key is in flight", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const gate = yield* Deferred.make<void>()
      toy.script.push((request) => Effect.as(Deferred.await(gate), { status: "pending", providerStatus: "PENDING", providerReference: request.lines[0]!.target }))
      const first = yield* Effect.fork(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
      yield* toy.called(1)
      const second = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
      assert.strictEqual(second._tag, "RefundInProgress")
      yield* Deferred.succeed(gate, undefined)
      const done = yield* first
      assert.strictEqual(done.refund.status, "pending")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("rejects invalid input naming the field, and unknown providers listing the installed ones, sending nothing", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const invalid = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1", "1.005"), idempotencyKey: "k" }))
      assert.strictEqual(invalid._tag, "InvalidRequest")
      if (invalid._tag === "InvalidRequest") {
        assert.strictEqual(invalid.issues[0]!.path, "lines.0.amount")
        assert.include(invalid.issues[0]!.message, "at most 2 decimal places")
      }
      const badKey = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "" }))
      assert.strictEqual(badKey._tag, "InvalidRequest")
      const unknown = yield* Effect.flip(refunds.create({ provider: "nope", request: {}, idempotencyKey: "k" }))
      assert.strictEqual(unknown._tag, "UnknownProvider")
      assert.include(unknown.message, "toy")
      assert.strictEqual(toy.calls.length, 0)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a timeout ends in unknown and is never retried", () => {
    const toy = scripted({ idempotent: true, callTimeout: "200 millis" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      let aborted = false
      toy.script.push(() => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void (aborted = true)))))
      const error = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
      assert.strictEqual(error._tag, "OutcomeUnknown")
      const refund = yield* refunds.get(error._tag === "OutcomeUnknown" ? error.refundId! : "")
      assert.strictEqual(refund.status, "unknown")
      assert.strictEqual(refund.error?.code, "outcome_unknown")
      assert.strictEqual(toy.calls.length, 1)
      assert.isTrue(aborted, "the timed out call was interrupted")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("interrupting a create interrupts its provider call at once; an answer in time is kept", () => {
    // Only the interruption can end the first call: the call timeout is a minute.
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const interrupted = yield* Deferred.make<void>()
      toy.script.push(() => Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))))
      const fiber = yield* Effect.fork(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
      yield* toy.called(1)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(interrupted).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "the call was not interrupted" }))
      toy.script.push((request) => Effect.as(Effect.sleep("40 millis"), { status: "succeeded" as const, providerStatus: "DONE", providerReference: `late-${request.lines[0]!.target}` }))
      const slow = yield* refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "k2" })
      assert.strictEqual(slow.refund.status, "succeeded")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("retries a failure that may have been processed only when the provider is idempotent", () =>
    Effect.gen(function*() {
      const maybe = () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 500", httpStatus: 500, maybeProcessed: true }))
      const idempotent = scripted({ idempotent: true })
      idempotent.script.push(maybe)
      const retried = yield* Effect.flatMap(Refunds.Refunds, (r) => r.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })).pipe(Effect.provide(idempotent.layer))
      assert.strictEqual(retried.refund.status, "succeeded")
      assert.strictEqual(idempotent.calls.length, 2)

      const once = scripted({ idempotent: false })
      once.script.push(maybe)
      const error = yield* Effect.flatMap(Refunds.Refunds, (r) => Effect.flip(r.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))).pipe(Effect.provide(once.layer))
      assert.strictEqual(error._tag, "ProviderUnavailable")
      if (error._tag === "ProviderUnavailable") assert.strictEqual(error.status, "unknown")
      assert.strictEqual(once.calls.length, 1)

      const notSent = scripted({ idempotent: false })
      notSent.script.push(() => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 429", httpStatus: 429, retryAfterMillis: 10, maybeProcessed: false })))
      const after = yield* Effect.flatMap(Refunds.Refunds, (r) => r.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })).pipe(Effect.provide(notSent.layer))
      assert.strictEqual(after.refund.status, "succeeded")
      assert.strictEqual(notSent.calls.length, 2)
    }))

  it.scopedLive("a retried call whose earlier attempt may have been processed never ends failed on a later not-processed answer", () =>
    Effect.gen(function*() {
      const maybe = () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 500", httpStatus: 500, maybeProcessed: true }))
      const notSent = () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 503", httpStatus: 503, maybeProcessed: false }))
      const refused = () => Effect.fail(new ProviderAuthFailed({ provider: "toy", detail: "HTTP 401" }))
      const declined = () => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "5", reason: "insufficient funds" }))
      // Three attempts (the toy's schedule retries twice); what the refund is left as after each script.
      const run = (...steps: Array<Step>) => {
        const toy = scripted({ idempotent: true })
        toy.script.push(...steps)
        return Effect.gen(function*() {
          const refunds = yield* Refunds.Refunds
          const result = yield* Effect.either(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
          const stored = yield* refunds.list({ limit: 10 })
          return { result, status: stored.items[0]!.status, calls: toy.calls.length }
        }).pipe(Effect.provide(toy.layer))
      }

      const inDoubt = yield* run(maybe, notSent, notSent)
      assert.strictEqual(inDoubt.calls, 3)
      assert.strictEqual(inDoubt.status, "unknown")
      assert.isTrue(Either.isLeft(inDoubt.result) && inDoubt.result.left._tag === "OutcomeUnknown")
      if (Either.isLeft(inDoubt.result)) assert.include(inDoubt.result.left.message, "an earlier attempt may have been processed (HTTP 500) and the last one ended with HTTP 503")

      const sentLater = yield* run(notSent, maybe, refused)
      assert.strictEqual(sentLater.calls, 3)
      assert.strictEqual(sentLater.status, "unknown")
      assert.isTrue(Either.isLeft(sentLater.result) && sentLater.result.left._tag === "OutcomeUnknown")

      // A decline is the provider's answer to the refund itself: it stands.
      const verdict = yield* run(maybe, declined)
      assert.strictEqual(verdict.status, "failed")
      assert.isTrue(Either.isRight(verdict.result) && verdict.result.right.refund.error?.code === "provider_declined")

      // No attempt may have been processed: the refund is failed, and nothing was refunded.
      const nothing = yield* run(notSent, notSent, notSent)
      assert.strictEqual(nothing.calls, 3)
      assert.strictEqual(nothing.status, "failed")
      assert.isTrue(Either.isLeft(nothing.result) && nothing.result.left._tag === "ProviderUnavailable")
    }))

  it.scopedLive("a decline is a recorded failed refund, not an error", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      toy.script.push(() => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "5", reason: "insufficient funds", action: "customer_action" })))
      const created = yield* Effect.flatMap(Refunds.Refunds, (r) => r.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
      assert.strictEqual(created.refund.status, "failed")
      assert.strictEqual(created.refund.error?.code, "provider_declined")
      assert.strictEqual(created.refund.error?.providerCode, "5")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("layerConfig refuses a call timeout of zero and a retry count that is not 0 to 20, naming the variable", () =>
    Effect.gen(function*() {
      const build = (env: Record<string, string>) =>
        Effect.flip(Layer.build(Refunds.layerConfig.pipe(
          Layer.provide(Layer.merge(Providers.layer, Ledger.layerMemory)),
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
        )))
      for (const [name, value] of [["REFUNDKIT_CALL_TIMEOUT", "0 seconds"], ["REFUNDKIT_MAX_RETRIES", "-1"], ["REFUNDKIT_MAX_RETRIES", ""], ["REFUNDKIT_MAX_RETRIES", "1e9"]] as const) {
        const error = yield* build({ [name]: value })
        assert.include(String(error), name, `${name}=${value}`)
      }
    }))

  it.scopedLive("an original amount keyed by no target of the refund, or not above zero, is refused naming it, and nothing is sent", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const stray = yield* Effect.flip(refunds.create({ provider: "toy", request: one("12345"), idempotencyKey: "stray", originalAmounts: { "0012345": "60.00" } }))
      assert.strictEqual(stray._tag, "InvalidRequest")
      assert.strictEqual(stray._tag === "InvalidRequest" ? stray.issues[0]?.path : "", "originalAmounts.0012345")
      const negative = yield* Effect.flip(refunds.create({ provider: "toy", request: one("12345"), idempotencyKey: "negative", originalAmounts: { "12345": "-1" } }))
      assert.strictEqual(negative._tag === "InvalidRequest" ? negative.issues[0]?.path : "", "originalAmounts.12345")
      assert.strictEqual(toy.calls.length, 0)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("never lets refunds against a target exceed its stated original amount; failed ones free theirs", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const originalAmounts = { t1: "100.00" }
      yield* refunds.create({ provider: "toy", request: one("t1", "60.00"), idempotencyKey: "a", originalAmounts })
      const over = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1", "50.00"), idempotencyKey: "b", originalAmounts }))
      assert.strictEqual(over._tag, "OverRefund")
      assert.include(over.message, "40.00")
      toy.script.push(() => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "x", reason: "no" })))
      const declined = yield* refunds.create({ provider: "toy", request: one("t1", "40.00"), idempotencyKey: "c", originalAmounts })
      assert.strictEqual(declined.refund.status, "failed")
      const last = yield* refunds.create({ provider: "toy", request: one("t1", "40.00"), idempotencyKey: "d", originalAmounts })
      assert.strictEqual(last.refund.status, "succeeded")
      assert.strictEqual(toy.calls.length, 3)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("an operator cannot settle a refund whose first call is still out: its answer settles it, and a failed one would free its target", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const originalAmounts = { t1: "10.00" }
      const gate = yield* Deferred.make<void>()
      toy.script.push((request) =>
        Effect.as(Deferred.await(gate), { status: "succeeded", providerStatus: "DONE", providerReference: request.lines[0]!.target })
      )
      const first = yield* Effect.fork(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "out", originalAmounts }))
      yield* toy.called(1)
      const { refundId } = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "out", originalAmounts }))
        .pipe(Effect.filterOrDieMessage((e) => e._tag === "RefundInProgress", "the second create should find the first in flight"))
      for (const to of ["failed", "succeeded"] as const) {
        const refused = yield* Effect.flip(refunds.resolve(refundId, to, "operator: the dashboard shows nothing yet"))
        assert.strictEqual(refused._tag, "InvalidRequest", `resolve to ${to}`)
        assert.deepStrictEqual(refused._tag === "InvalidRequest" ? refused.issues.map((i) => i.path) : [], ["status"])
        assert.include(refused.message, `refund ${refundId} is requested: its first call to toy is still out`)
      }
      assert.deepStrictEqual((yield* refunds.get(refundId)).events.map((e) => [e.source, e.to]), [["submit", "requested"]], "nothing was recorded")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* first).refund.status, "succeeded", "the provider's answer settled it")
      const again = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "again", originalAmounts }))
      assert.strictEqual(again._tag, "OverRefund", "t1 is still held by the refund that succeeded")
      assert.strictEqual(toy.calls.length, 1)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("resolve failed: refused while a target is refunded, or refunding beside one refused; allowed while every target awaits the provider's decision", () => {
    const toy = scripted({ idempotent: true, maxTargets: 2 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const two = { lines: [{ target: "t1", amount: "5.00" }, { target: "t2", amount: "5.00" }], currency: "USD" }
      const answer = (t1: "pending" | "failed", t2: "pending" | "failed") => () =>
        Effect.succeed({ status: "pending" as const, providerStatus: "REVIEW", items: [{ target: "t1", status: t1 }, { target: "t2", status: t2 }] })
      toy.script.push(answer("pending", "failed"))
      const mixed = yield* refunds.create({ provider: "toy", request: two, idempotencyKey: "mixed" })
      const refused = yield* Effect.flip(refunds.resolve(mixed.refund.id, "failed", "operator: refused"))
      assert.strictEqual(refused._tag, "InvalidRequest")
      assert.include(refused.message, "the provider reported t1 pending")
      assert.strictEqual((yield* refunds.get(mixed.refund.id)).status, "pending", "nothing was changed")

      toy.script.push(answer("pending", "pending"))
      const whole = { request: { ...two, lines: two.lines.map((l) => ({ ...l, target: `${l.target}b` })) }, originalAmounts: { t1b: "5.00", t2b: "5.00" } }
      const undecided = yield* refunds.create({ provider: "toy", ...whole, idempotencyKey: "undecided" })
      assert.strictEqual((yield* Effect.flip(refunds.create({ provider: "toy", ...whole, idempotencyKey: "meanwhile" })))._tag, "OverRefund")
      const failed = yield* refunds.resolve(undecided.refund.id, "failed", "operator: the provider refused both by email")
      assert.strictEqual(failed.status, "failed")
      const again = yield* refunds.create({ provider: "toy", ...whole, idempotencyKey: "again" })
      assert.strictEqual(again.refund.status, "succeeded", "its targets are free for a new refund")
      assert.strictEqual(toy.calls.length, 3)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("resolve carries its verdict onto the items the provider had not decided; those it decided, and every item's own word, stay", () => {
    const toy = scripted({ idempotent: true, maxTargets: 2 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const request = (key: string) => ({ lines: [{ target: `${key}-1`, amount: "5.00" }, { target: `${key}-2`, amount: "5.00" }], currency: "USD" as const })
      type ItemStatus = "pending" | "failed" | "unknown" | "requires_action"
      const answer = (key: string, first: ItemStatus, second: ItemStatus) => () =>
        Effect.succeed({
          status: "pending" as const,
          providerStatus: "REVIEW",
          items: [
            { target: `${key}-1`, status: first, providerStatus: `word-${first}` },
            { target: `${key}-2`, status: second, providerStatus: `word-${second}`, message: "as the provider put it" }
          ]
        })
      const settle = (key: string, first: ItemStatus, second: ItemStatus, to: "succeeded" | "failed") =>
        Effect.gen(function*() {
          toy.script.push(answer(key, first, second))
          const created = yield* refunds.create({ provider: "toy", request: request(key), idempotencyKey: key })
          assert.include(["pending", "unknown"], created.refund.status)
          const resolved = yield* refunds.resolve(created.refund.id, to, `operator: ${to} by email`)
          assert.strictEqual(resolved.status, to)
          assert.strictEqual(resolved.providerStatus, "REVIEW", "the refund keeps the provider's last word too")
          assert.deepStrictEqual(yield* refunds.get(created.refund.id), resolved, "what was answered is what is stored")
          return resolved.items.map((item) => [item.status, item.providerStatus, item.message])
        })

      // Airalo's "accepted for review": the operator's verdict is the provider's decision, for each ICCID.
      assert.deepStrictEqual(yield* settle("review", "pending", "pending", "succeeded"), [
        ["succeeded", "word-pending", undefined],
        ["succeeded", "word-pending", "as the provider put it"]
      ])
      assert.deepStrictEqual(yield* settle("refused", "pending", "pending", "failed"), [
        ["failed", "word-pending", undefined],
        ["failed", "word-pending", "as the provider put it"]
      ])
      // A target the provider refused stays failed in a refund recorded succeeded, as resolve's refusal promises.
      assert.deepStrictEqual(yield* settle("mixed", "pending", "failed", "succeeded"), [
        ["succeeded", "word-pending", undefined],
        ["failed", "word-failed", "as the provider put it"]
      ])
      assert.deepStrictEqual(yield* settle("doubt", "unknown", "requires_action", "succeeded"), [
        ["succeeded", "word-unknown", undefined],
        ["succeeded", "word-requires_action", "as the provider put it"]
      ])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a provider's advice for a refund in doubt replaces core's in the answer and on the refund; without one, core's words stay", () =>
    Effect.gen(function*() {
      const lost = () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "the connection was reset after the request was sent", maybeProcessed: true }))
      const advice = (refundId: string, request: unknown) => `send ${JSON.stringify(request)} again with toyctl resend ${refundId}`
      const inDoubt = (toy: ReturnType<typeof scripted>, key: string) =>
        Effect.gen(function*() {
          toy.script.push(lost)
          const refunds = yield* Refunds.Refunds
          const error = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: key }))
          assert.strictEqual(error._tag, "ProviderUnavailable")
          const refund = yield* refunds.get(error._tag === "ProviderUnavailable" ? error.refundId ?? "" : "")
          assert.strictEqual(refund.status, "unknown")
          assert.strictEqual(refund.error?.message, error.message, "the refund records the answer, advice and all")
          return { error, refund }
        }).pipe(Effect.provide(toy.layer))

      const advised = yield* inDoubt(scripted({ idempotent: false, inDoubtAdvice: advice }), "advised")
      assert.include(
        advised.error.message,
        `It may have reached toy. The refund ${advised.refund.id} is kept as "unknown" and refundkit will not resend it by itself: send ${JSON.stringify(one("t1"))} again with toyctl resend ${advised.refund.id}.`
      )
      assert.notInclude(advised.error.message, "refundkit resolve")
      assert.notInclude(advised.error.message, "record what happened")

      // A timeout and a retry ending without a verdict are answered with the advice too.
      const timedOut = scripted({ idempotent: true, callTimeout: "200 millis", inDoubtAdvice: advice })
      timedOut.script.push(() => Effect.never)
      const late = yield* Effect.flatMap(Refunds.Refunds, (r) => Effect.flip(r.create({ provider: "toy", request: one("t2"), idempotencyKey: "late" }))).pipe(Effect.provide(timedOut.layer))
      assert.strictEqual(late._tag, "OutcomeUnknown")
      assert.include(late.message, `is kept as "unknown" and refundkit will not resend it by itself: send`)
      assert.notInclude(late.message, "refundkit resolve")

      const plain = yield* inDoubt(scripted({ idempotent: false }), "plain")
      assert.include(plain.error.message, `The refund ${plain.refund.id} is kept as "unknown" and will not be resent: sync it where toy answers status queries; otherwise check with toy and record what happened (refundkit resolve).`)
    }))

  it.scopedLive("two verdicts at once take the refund's turn: the second meets the first's final status and is refused, one operator event", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.succeed({ status: "pending", providerStatus: "PENDING" }))
      const { refund } = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "twice" })
      const verdicts = yield* Effect.all([
        Effect.either(refunds.resolve(refund.id, "succeeded", "operator: credited, first")),
        Effect.either(refunds.resolve(refund.id, "succeeded", "operator: credited, second"))
      ], { concurrency: 2 })
      assert.deepStrictEqual(verdicts.map((v) => (Either.isRight(v) ? v.right.status : v.left._tag)).sort(), ["IllegalTransition", "succeeded"])
      const stored = yield* refunds.get(refund.id)
      assert.strictEqual(stored.events.filter((e) => e.source === "operator").length, 1)
      // A final refund takes no second verdict through core either, only a correction in so many words.
      const again = yield* Effect.flip(refunds.resolve(refund.id, "succeeded", "operator: once more"))
      assert.strictEqual(again._tag, "IllegalTransition")
      assert.include(again.message, "already succeeded, which is final")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a verdict the provider refuses is InvalidRequest on status with its reason, nothing recorded; other verdicts, and final refunds, are not its to refuse", () => {
    const asked: Array<string> = []
    const toy = scripted({
      idempotent: true,
      verdictRefusal: (refund, to) => {
        asked.push(`${refund.status}->${to}`)
        return to === "succeeded" && refund.providerStatus !== "DONE" ? `only the toy's own DONE says refund ${refund.id} succeeded: send the next step` : undefined
      }
    })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.succeed({ status: "pending", providerStatus: "PENDING" }))
      const { refund } = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "pending" })
      const refused = yield* Effect.flip(refunds.resolve(refund.id, "succeeded", "operator: the dashboard says paid"))
      assert.strictEqual(refused._tag, "InvalidRequest")
      assert.deepStrictEqual(refused._tag === "InvalidRequest" ? refused.issues : [], [{ path: "status", message: `only the toy's own DONE says refund ${refund.id} succeeded: send the next step` }])
      assert.deepStrictEqual((yield* refunds.get(refund.id)).events.length, refund.events.length, "nothing was recorded")
      const failed = yield* refunds.resolve(refund.id, "failed", "operator: the toy gave up")
      assert.strictEqual(failed.status, "failed")
      // A final refund is the ledger's to refuse: the provider is not asked.
      const final = yield* Effect.flip(refunds.resolve(refund.id, "succeeded", "operator: after all"))
      assert.strictEqual(final._tag, "IllegalTransition")
      assert.deepStrictEqual(asked, ["pending->succeeded", "pending->failed"])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("resolve succeeded with failedTargets: those items are failed and their targets free for a new refund, the others held; each rule refused naming failedTargets, nothing written", () => {
    // Targets written with a leading "x" are the provider's spelling of the same id (as Airpay reads "010265" as 10265).
    const toy = scripted({ idempotent: false, maxTargets: 3, canonicalTarget: (text) => text.replace(/^x/, "") })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const three = { lines: [{ target: "t1", amount: "10.00" }, { target: "t2", amount: "60.00" }, { target: "t3", amount: "5.00" }], currency: "USD" as const }
      const originalAmounts = { t1: "100.00", t2: "100.00", t3: "100.00" }
      // The answer is lost: the refund is unknown and has no items.
      toy.script.push(() => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 500", httpStatus: 500, maybeProcessed: true })))
      const lost = yield* Effect.flip(refunds.create({ provider: "toy", request: three, idempotencyKey: "lost", originalAmounts }))
      const id = lost._tag === "ProviderUnavailable" ? lost.refundId! : ""
      const before = yield* refunds.get(id)
      assert.deepStrictEqual([before.status, before.items], ["unknown", []])

      const refusals = [
        { to: "failed" as const, failedTargets: ["t2"], says: "goes with status succeeded, not failed" },
        { to: "succeeded" as const, failedTargets: ["t9"], says: `"t9" is not a target of refund ${id} (its targets: t1, t2, t3)` },
        { to: "succeeded" as const, failedTargets: ["t1", "xt2", "t3"], says: `names every target of refund ${id}: the provider refunded none of them, so resolve it failed` }
      ]
      for (const { failedTargets, says, to } of refusals) {
        const refused = yield* Effect.flip(refunds.resolve(id, to, "operator: checked", { failedTargets }))
        assert.deepStrictEqual(refused._tag === "InvalidRequest" ? refused.issues.map((i) => i.path) : refused, ["failedTargets"])
        assert.include(refused.message, says)
      }
      assert.deepStrictEqual(yield* refunds.get(id), before, "nothing was written")

      // Named in the provider's other spelling, and twice: one failed item, in the refund's order.
      const resolved = yield* refunds.resolve(id, "succeeded", "operator: t1 and t3 refunded, t2 not", { failedTargets: ["xt2", "t2"] })
      assert.strictEqual(resolved.status, "succeeded")
      assert.deepStrictEqual(resolved.items.map((i) => [i.target, i.status, i.amount]), [["t1", "succeeded", "10.00"], ["t2", "failed", "60.00"], ["t3", "succeeded", "5.00"]])
      assert.strictEqual(resolved.events.at(-1)!.detail, "operator: t1 and t3 refunded, t2 not (failed targets, not refunded by toy: t2)")
      // As asked, with the targets as the refund spells them: what a repeat is compared with, not the words above.
      assert.deepStrictEqual(resolved.events.at(-1)!.verdict, { note: "operator: t1 and t3 refunded, t2 not", releaseTargets: false, failedTargets: ["t2"], correct: false })
      assert.deepStrictEqual(yield* refunds.get(id), resolved)

      // t2's 60.00 no longer counts, t1's 10.00 does.
      const again = yield* refunds.create({ provider: "toy", request: one("t2", "100.00"), idempotencyKey: "t2-again", originalAmounts: { t2: "100.00" } })
      assert.strictEqual(again.refund.status, "succeeded")
      const over = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1", "95.00"), idempotencyKey: "t1-again", originalAmounts: { t1: "100.00" } }))
      assert.deepStrictEqual(over._tag === "OverRefund" ? over.remaining : over, "90.00")

      // A target the provider reported refunded cannot be named.
      toy.script.push(() =>
        Effect.succeed({ status: "pending", providerStatus: "MIXED", items: [{ target: "t4", status: "succeeded" as const }, { target: "t5", status: "pending" as const }] })
      )
      const mixed = yield* refunds.create({ provider: "toy", request: { lines: [{ target: "t4", amount: "1.00" }, { target: "t5", amount: "1.00" }], currency: "USD" }, idempotencyKey: "mixed" })
      const refunded = yield* Effect.flip(refunds.resolve(mixed.refund.id, "succeeded", "operator: t5 refused", { failedTargets: ["t4"] }))
      assert.deepStrictEqual(refunded._tag === "InvalidRequest" ? refunded.issues.map((i) => i.path) : refunded, ["failedTargets"])
      assert.include(refunded.message, "toy reported t4 succeeded: a target the provider says it refunded cannot be recorded as not refunded")
      const settled = yield* refunds.resolve(mixed.refund.id, "succeeded", "operator: t5 refused", { failedTargets: ["t5"] })
      assert.deepStrictEqual(settled.items.map((i) => [i.target, i.status]), [["t4", "succeeded"], ["t5", "failed"]])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a failed answer the provider keeps on its target holds it: a new refund is refused unsent, a hand-made failed keeps it, releaseTargets lets go", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const originalAmounts = { t1: "100.00" }
      // The provider took the refund and closed it, and would take another for t1 as a repeat of it.
      toy.script.push(() => Effect.succeed({ status: "failed", providerStatus: "CLOSED", holdsTarget: true }))
      const closed = yield* refunds.create({ provider: "toy", request: one("t1", "60.00"), idempotencyKey: "closed", originalAmounts })
      assert.strictEqual(closed.refund.status, "failed")
      assert.strictEqual(closed.refund.holdsTarget, true)
      const over = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1", "50.00"), idempotencyKey: "second", originalAmounts }))
      assert.strictEqual(over._tag, "OverRefund", "the closed refund's 60.00 still counts")
      assert.strictEqual(toy.calls.length, 1, "nothing sent for the second")

      // An operator's verdict alone keeps the hold; releaseTargets only goes with failed.
      const noted = yield* refunds.resolve(closed.refund.id, "failed", "operator: closed at the provider")
      assert.strictEqual(noted.holdsTarget, true)
      assert.strictEqual((yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1", "50.00"), idempotencyKey: "third", originalAmounts })))._tag, "OverRefund")
      const wrong = yield* Effect.flip(refunds.resolve(closed.refund.id, "succeeded", "operator: reopened", { releaseTargets: true }))
      assert.deepStrictEqual(wrong._tag === "InvalidRequest" ? wrong.issues.map((i) => i.path) : wrong, ["releaseTargets"])
      const released = yield* refunds.resolve(closed.refund.id, "failed", "operator: the provider reopened it", { releaseTargets: true })
      assert.isUndefined(released.holdsTarget)
      assert.strictEqual(released.status, "failed")
      assert.include(released.events.at(-1)!.detail ?? "", "targets released")
      assert.deepStrictEqual(released.events.at(-1)!.verdict, { note: "operator: the provider reopened it", releaseTargets: true, failedTargets: [], correct: false })
      assert.deepStrictEqual(noted.events.at(-1)!.verdict, { note: "operator: closed at the provider", releaseTargets: false, failedTargets: [], correct: false })
      // The provider's own word is no verdict.
      assert.deepStrictEqual(released.events.filter((e) => e.verdict !== undefined).map((e) => e.sequence), [noted.events.at(-1)!.sequence, released.events.at(-1)!.sequence])
      const after = yield* refunds.create({ provider: "toy", request: one("t1", "50.00"), idempotencyKey: "fourth", originalAmounts })
      assert.strictEqual(after.refund.status, "succeeded")
      assert.strictEqual(toy.calls.length, 2)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("each verdict's event records it as asked (verdict), whatever its note says; a correction too; recovery's and the provider's events carry none", () => {
    const toy = scripted({ idempotent: false })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 500", httpStatus: 500, maybeProcessed: true })))
      const lost = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "verdict-words" }))
      const id = lost._tag === "ProviderUnavailable" ? lost.refundId! : ""
      // A note in the very words core adds to a release and a correction: the record says what was asked.
      const note = `operator: ${Ledger.correctionOpening("succeeded", "2024-01-01T00:00:00.000Z")}: odd (targets released: none)`
      const failed = yield* refunds.resolve(id, "failed", note)
      assert.strictEqual(failed.events.at(-1)!.detail, note)
      assert.deepStrictEqual(failed.events.at(-1)!.verdict, { note, releaseTargets: false, failedTargets: [], correct: false })
      const corrected = yield* refunds.resolve(id, "succeeded", "operator: credited after all", { correct: true })
      assert.include(corrected.events.at(-1)!.detail ?? "", "corrects the failed an operator recorded at ")
      assert.deepStrictEqual(corrected.events.at(-1)!.verdict, { note: "operator: credited after all", releaseTargets: false, failedTargets: [], correct: true })
      assert.deepStrictEqual(corrected.events.filter((e) => e.verdict !== undefined).map((e) => e.source), ["operator", "operator"])
      assert.isAbove(corrected.events.length, 2, "the submit's events are there, without a verdict")
      assert.deepStrictEqual(yield* refunds.get(id), corrected)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("createMany packs claims into as few provider calls as the provider allows", () => {
    const toy = scripted({ idempotent: true, maxTargets: 3 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const inputs = ["a", "b", "c", "d", "e"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `key-${t}` }))
      const results = yield* refunds.createMany([...inputs, { provider: "toy", request: one("z", "oops"), idempotencyKey: "bad" }])
      assert.strictEqual(toy.calls.length, 2)
      assert.deepStrictEqual(toy.calls.map((c) => c.lines.length), [3, 2])
      const statuses = results.map((r) => (Either.isRight(r) ? r.right.refund.status : r.left._tag))
      assert.deepStrictEqual(statuses, ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "InvalidRequest"])
      const first = results[0]!
      assert.isTrue(Either.isRight(first) && first.right.refund.items.length === 1 && first.right.refund.providerReference === "ref-a")
      const again = yield* refunds.createMany(inputs)
      assert.isTrue(again.every((r) => Either.isRight(r) && r.right.replayed))
      assert.strictEqual(toy.calls.length, 2)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("createMany packs alike claims together even when they alternate in the input", () => {
    const toy = scripted({ idempotent: true, maxTargets: 5 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const inputs = ["a", "b", "c", "d", "e", "f"].map((t, i) => ({
        provider: "toy",
        request: i % 2 === 0 ? one(t) : { lines: [{ target: t, amount: "1.00" }] },
        idempotencyKey: `alt-${t}`
      }))
      const results = yield* refunds.createMany(inputs)
      assert.isTrue(results.every(Either.isRight))
      assert.deepStrictEqual(toy.calls.map((c) => c.lines.map((l) => l.target).join("")), ["ace", "bdf"])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a pipeline claims ahead but keeps at most its number of provider calls in flight", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const gate = yield* Deferred.make<void>()
      let inFlight = 0
      let most = 0
      for (let i = 0; i < 10; i++) {
        toy.script.push((request) =>
          Effect.gen(function*() {
            inFlight++
            most = Math.max(most, inFlight)
            yield* Deferred.await(gate)
            inFlight--
            return { status: "succeeded" as const, providerStatus: "DONE", providerReference: `ref-${request.lines[0]!.target}` }
          }))
      }
      const create = yield* refunds.pipeline({ calls: 3 })
      const fibers = yield* track
      const all = yield* fibers.fork(Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) =>
        create({ provider: "toy", request: one(`p${i}`), idempotencyKey: `p${i}` }), { concurrency: "unbounded" }))
      // Everything that can happen before the gate opens has: every create has claimed its key; only three reached the provider.
      yield* fibers.settled
      assert.strictEqual((yield* refunds.list({ limit: 50, status: "requested" })).items.length, 10)
      assert.strictEqual(toy.calls.length, 3)
      yield* Deferred.succeed(gate, void 0)
      const created = yield* Effect.flatMap(all.await, (exit) => exit)
      assert.deepStrictEqual(created.map((c) => c.refund.status), Array.from({ length: 10 }, () => "succeeded"))
      assert.strictEqual(most, 3)
      assert.strictEqual(toy.calls.length, 10)
    }).pipe(Effect.provide(toy.layer))
  })

  // The rate limit's windows pass on the test clock: each test moves it past a window and then waits until
  // every fiber is blocked again, so what must wait for the limit is seen waiting, however slow the machine.
  it.scoped("at a rate-limited provider the bulk paths claim a key only when its call's turn comes; replays take no turn", () => {
    const toy = scripted({ idempotent: false, maxTargets: 2, rateLimit: { requests: 1, perMillis: 300 } })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      const nextWindow = fibers.advance("300 millis")
      const claimed = (keys: ReadonlyArray<string>) =>
        Effect.map(refunds.list({ limit: 50 }), (page) => page.items.filter((r) => keys.includes(r.idempotencyKey)).map((r) => r.idempotencyKey).sort())
      const inputs = ["a", "b", "c", "d", "e", "f"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `turn-${t}` }))
      const keys = inputs.map((i) => i.idempotencyKey)
      const many = yield* fibers.fork(refunds.createMany(inputs, { concurrency: 3 }))
      yield* fibers.settled
      // One call of three has gone; the other two wait for the limit and have claimed nothing, so a crash
      // now would leave no refund `requested` that was never sent.
      assert.strictEqual(toy.calls.length, 1)
      assert.deepStrictEqual(yield* claimed(keys), ["turn-a", "turn-b"])
      yield* nextWindow
      assert.strictEqual(toy.calls.length, 2)
      assert.strictEqual((yield* claimed(keys)).length, 4)
      yield* nextWindow
      const results = yield* fibers.result(many, "the third call, a window later")
      assert.isTrue(results.every((r) => Either.isRight(r) && r.right.refund.status === "succeeded"))
      assert.deepStrictEqual(toy.calls.map((c) => c.lines.map((l) => l.target).join("")), ["ab", "cd", "ef"])

      // A re-run is answered from the ledger at once: the last window is still open, and the clock does not move.
      const again = yield* fibers.result(yield* fibers.fork(refunds.createMany(inputs, { concurrency: 3 })), "the re-run")
      assert.isTrue(again.every((r) => Either.isRight(r) && r.right.replayed))

      // The single-target pipeline does the same: each create waits for its turn unclaimed.
      const create = yield* refunds.pipeline({ calls: 4 })
      const two = yield* fibers.fork(Effect.all([create({ provider: "toy", request: one("p"), idempotencyKey: "turn-p" }), create({ provider: "toy", request: one("q"), idempotencyKey: "turn-q" })], { concurrency: 2 }))
      yield* fibers.settled
      assert.deepStrictEqual(yield* claimed(["turn-p", "turn-q"]), [])
      yield* nextWindow
      assert.strictEqual(toy.calls.length, 4)
      assert.strictEqual((yield* claimed(["turn-p", "turn-q"])).length, 1)
      yield* nextWindow
      const both = yield* fibers.result(two, "the second create, a window later")
      assert.deepStrictEqual(both.map((c) => c.refund.status), ["succeeded", "succeeded"])
      assert.strictEqual(toy.calls.length, 5)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scoped("a call that would wait too long for the rate limit is refused unsent instead of queued", () => {
    const toy = scripted({ idempotent: false, rateLimit: { requests: 1, perMillis: 60_000 }, maxRateLimitWait: "50 millis" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      const first = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "rl-1" })
      assert.strictEqual(first.refund.status, "succeeded")
      const waiting = yield* fibers.fork(Effect.flip(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "rl-2" })))
      yield* fibers.settled
      // The window's one turn is taken and it closes in a minute: no turn can come within 50 ms, and
      // the caller is told so at once rather than after waiting them out.
      const second = yield* fibers.result(waiting, "the second create, the clock not moved")
      assert.strictEqual(second._tag, "ProviderUnavailable")
      if (second._tag === "ProviderUnavailable") {
        assert.isFalse(second.maybeProcessed)
        // What is left of the window the first call opened.
        assert.strictEqual(second.retryAfterMillis, 60_000)
        assert.include(second.detail, "rate limit")
      }
      assert.strictEqual(toy.calls.length, 1, "the refused call never reached the provider")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scoped("a call refused for the rate limit is told the time left in the window, not a whole window", () => {
    const toy = scripted({ idempotent: false, rateLimit: { requests: 1, perMillis: 4_000 }, maxRateLimitWait: "20 millis" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "left-1" })
      yield* fibers.settled
      yield* TestClock.adjust("2500 millis")
      const waiting = yield* fibers.fork(Effect.flip(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "left-2" })))
      yield* fibers.settled
      const held = yield* fibers.result(waiting, "the second create, refused at once")
      assert.strictEqual(held._tag, "ProviderUnavailable")
      const after = held._tag === "ProviderUnavailable" ? held.retryAfterMillis ?? 0 : 0
      assert.strictEqual(after, 1_500, "what was left of a 4 s window 2.5 s in")
      // With less of the window left than the longest wait, the call waits for the next window and goes.
      yield* TestClock.adjust("1490 millis")
      const waited = yield* fibers.fork(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "left-2" }))
      yield* fibers.settled
      yield* TestClock.adjust("10 millis")
      assert.strictEqual((yield* fibers.result(waited, "the create 10 ms before the next window")).refund.status, "succeeded")
      assert.strictEqual(toy.calls.length, 2)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scoped("a create held back by the rate limit records nothing: the same key sends it once the window has passed", () => {
    const toy = scripted({ idempotent: false, rateLimit: { requests: 1, perMillis: 1_200 }, maxRateLimitWait: "20 millis" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "held-1" })
      const waiting = yield* fibers.fork(Effect.flip(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "held-2" })))
      yield* fibers.settled
      yield* TestClock.adjust("20 millis")
      const held = yield* fibers.result(waiting, "the second create, 20 ms on")
      assert.strictEqual(held._tag, "ProviderUnavailable")
      assert.isTrue(Option.isNone(yield* Ledger.Ledger.pipe(Effect.flatMap((ledger) => ledger.findByKey("toy", "held-2")))))
      // The gateway tells the client "Retry after ...": a retry with the same Idempotency-Key must send it, not replay a failure.
      yield* TestClock.adjust("1180 millis")
      const retried = yield* fibers.result(yield* fibers.fork(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "held-2" })), "the retry in the next window")
      assert.isFalse(retried.replayed)
      assert.strictEqual(retried.refund.status, "succeeded")
      assert.strictEqual(toy.calls.length, 2)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("in a packed call each refund is told only what its own items say", () => {
    const toy = scripted({ idempotent: true, maxTargets: 3 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push((request) =>
        Effect.succeed({
          status: "requires_action",
          providerStatus: "MIXED",
          items: request.lines.map((l) =>
            l.target === "b"
              ? { target: l.target, status: "failed" as const, providerStatus: "REFUSED", message: "already refunded" }
              : { target: l.target, status: "succeeded" as const, providerStatus: "DONE", providerReference: `ref-${l.target}` }
          )
        })
      )
      const results = yield* refunds.createMany(["a", "b"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `mixed-${t}` })))
      assert.strictEqual(toy.calls.length, 1)
      const [a, b] = results.map((r) => (Either.isRight(r) ? r.right.refund : undefined))
      assert.strictEqual(a?.status, "succeeded")
      assert.strictEqual(a?.providerStatus, "DONE")
      assert.isUndefined(a?.error)
      assert.strictEqual(b?.status, "failed")
      assert.strictEqual(b?.providerStatus, "REFUSED")
      assert.strictEqual(b?.error?.providerCode, "REFUSED")
      assert.include(b?.error?.message, "already refunded")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("webhooks apply once, ignore duplicates and never move a refund backwards", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.succeed({ status: "pending", providerStatus: "PENDING", providerReference: "R1" }))
      const { refund } = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })
      const send = (status: string) => refunds.webhook("toy", { headers: {}, body: JSON.stringify({ ref: "R1", status }) })
      assert.isTrue((yield* send("DONE"))[0]!.applied)
      assert.isFalse((yield* send("DONE"))[0]!.applied)
      const late = (yield* send("PENDING"))[0]!
      assert.isFalse(late.applied)
      assert.include(late.reason, "out of order")
      // A FAILED after the provider's own DONE is a reversal: recorded, the refund held for a person, not failed.
      assert.isTrue((yield* send("FAILED"))[0]!.applied)
      const stored = yield* refunds.get(refund.id)
      assert.deepStrictEqual([stored.status, stored.events.at(-1)!.from, stored.events.at(-1)!.to], ["requires_action", "succeeded", "requires_action"])
      assert.deepStrictEqual((yield* send("FAILED"))[0]!, { refundId: refund.id, applied: false, reason: "duplicate callback" })
      assert.deepStrictEqual(yield* refunds.get(refund.id), stored)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a callback's event carries its key and the plugin's words; delivered again, or twenty times at once, it is recorded once", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.succeed({ status: "pending", providerStatus: "PENDING", providerReference: "R1" }))
      const { refund } = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })
      const send = (body: object) => refunds.webhook("toy", { headers: {}, body: JSON.stringify({ ref: "R1", ...body }) })

      // Without words of the plugin's own, the event says which callback it records.
      assert.isTrue((yield* send({ status: "PENDING" }))[0]!.applied)
      const pending = yield* refunds.get(refund.id)
      assert.deepInclude(pending.events.at(-1), { source: "webhook", to: "pending", callbackKey: "R1:PENDING", detail: "callback R1:PENDING" })
      const pendingEvents = pending.events.length
      const burst = yield* Effect.all(Array.from({ length: 20 }, () => send({ status: "DONE", said: "the toy bank paid the card back" })), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(burst.map((results) => results[0]!.applied).filter(Boolean), [true])
      for (const [result] of burst.filter((results) => !results[0]!.applied)) {
        assert.deepStrictEqual(result, { refundId: refund.id, applied: false, reason: "duplicate callback" })
      }
      const done = yield* refunds.get(refund.id)
      assert.strictEqual(done.events.length, pendingEvents + 1)
      assert.deepInclude(done.events.at(-1), {
        source: "webhook",
        to: "succeeded",
        providerStatus: "DONE",
        callbackKey: "R1:DONE",
        detail: "the toy bank paid the card back"
      })
      assert.deepStrictEqual((yield* send({ status: "DONE", said: "other words, the same callback" }))[0], {
        refundId: refund.id,
        applied: false,
        reason: "duplicate callback"
      })

      // The reversal that follows: core's words around the plugin's, the key beside them.
      assert.isTrue((yield* send({ status: "FAILED" }))[0]!.applied)
      const reversed = yield* refunds.get(refund.id)
      assert.deepInclude(reversed.events.at(-1), { source: "webhook", to: "requires_action", callbackKey: "R1:FAILED" })
      assert.match(reversed.events.at(-1)!.detail!, /^toy reported FAILED in a callback after it had reported DONE in a callback at .+ \(callback R1:FAILED\)$/)
      assert.deepStrictEqual(yield* refunds.get(refund.id), reversed)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a callback recorded before ledgers kept its key, by its words alone, is still a duplicate", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const ledger = yield* Ledger.Ledger
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.succeed({ status: "pending", providerStatus: "PENDING", providerReference: "R1" }))
      const { refund } = yield* refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })
      // As core recorded a callback before 0.6.0: the key in the words, none beside them.
      const before = yield* ledger.transition(refund.id, { to: "succeeded", source: "webhook", at: new Date().toISOString(), providerStatus: "DONE", detail: "webhook R1:DONE" })
      assert.isUndefined(before.events.at(-1)!.callbackKey)
      const [again] = yield* refunds.webhook("toy", { headers: {}, body: JSON.stringify({ ref: "R1", status: "DONE" }) })
      assert.deepStrictEqual(again, { refundId: refund.id, applied: false, reason: "duplicate callback" })
      assert.deepStrictEqual(yield* refunds.get(refund.id), before)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("replayedError: a replay answers the error its create was answered with, while the refund stands where that left it", () => {
    const toy = scripted({ idempotent: false })
    return Effect.gen(function*() {
      const ledger = yield* Ledger.Ledger
      const refunds = yield* Refunds.Refunds
      const unavailable = (maybeProcessed: boolean): Step => () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 503", maybeProcessed }))
      const replayOf = (request: unknown, idempotencyKey: string) =>
        Effect.map(refunds.create({ provider: "toy", request, idempotencyKey }), (created) => {
          assert.isTrue(created.replayed)
          return created.refund
        })

      // Provably not processed (retried, then recorded failed): the replay is that 502's error, word for word.
      toy.script.push(unavailable(false), unavailable(false), unavailable(false))
      const failed = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "failed" }))
      assert.strictEqual(failed._tag, "ProviderUnavailable")
      const failedRefund = yield* replayOf(one("t1"), "failed")
      assert.deepStrictEqual(Refunds.replayedError(failedRefund), { code: "provider_unavailable", message: failed.message })
      assert.include(failed.message, "a retry under the same idempotency key replays this answer, and a new attempt needs a new key.")
      // As an older build stored it (the provider's own words, naming no refund), it was never the answer: replayed as the refund.
      const storedBefore = { ...failedRefund, error: { code: "provider_unavailable", message: "toy is unavailable: HTTP 503. Retry after 2 s.", retryAfterMillis: 2000 } }
      assert.isUndefined(Refunds.replayedError(storedBefore))

      // May have been processed: kept unknown, and so is its replay, until a sync settles it.
      toy.script.push(unavailable(true))
      const inDoubt = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "in-doubt" }))
      assert.strictEqual(inDoubt._tag, "ProviderUnavailable")
      const unknown = yield* replayOf(one("t2"), "in-doubt")
      assert.strictEqual(unknown.status, "unknown")
      assert.deepStrictEqual(Refunds.replayedError(unknown), { code: "provider_unavailable", message: inDoubt.message })
      yield* refunds.sync(unknown.id)
      assert.isUndefined(Refunds.replayedError(yield* replayOf(one("t2"), "in-doubt")), "settled by a sync: the replay is the refund")

      // A decline is a refund, answered as one, and so is its replay.
      toy.script.push(() => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "NO", reason: "no" })))
      yield* refunds.create({ provider: "toy", request: one("t3"), idempotencyKey: "declined" })
      assert.isUndefined(Refunds.replayedError(yield* replayOf(one("t3"), "declined")))

      // A create whose process stopped with its call out was never answered: recovery keeps it unknown, and a
      // retry under its key gets the refund, as clients retrying until they get one expect.
      const at = new Date(Date.now() - 60_000).toISOString()
      const crashed = "rfd_00000000000000000000000001"
      yield* ledger.claim({
        id: crashed, provider: "toy", idempotencyKey: "crashed", fingerprint: "f", request: one("t4"), status: "requested",
        references: {}, targets: [], items: [], createdAt: at, updatedAt: at,
        events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }]
      })
      yield* refunds.recover("10 seconds")
      assert.strictEqual((yield* refunds.get(crashed)).status, "unknown")
      assert.isUndefined(Refunds.replayedError(yield* refunds.get(crashed)))

      // In doubt, then failed by an operator's verdict: moved on, the replay is the refund.
      toy.script.push(unavailable(true))
      const resolved = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t5"), idempotencyKey: "resolved" }))
      assert.strictEqual(resolved._tag, "ProviderUnavailable")
      const id = resolved._tag === "ProviderUnavailable" ? resolved.refundId! : ""
      yield* refunds.resolve(id, "failed", "operator: nothing at the provider")
      const failedByHand = yield* replayOf(one("t5"), "resolved")
      assert.strictEqual(failedByHand.status, "failed")
      assert.isUndefined(failedByHand.error, "an operator's failed drops the error that left it in doubt")
      assert.isUndefined(Refunds.replayedError(failedByHand))
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("replayedError: a create answered outcome_unknown because recovery took its refund while its call was out replays that answer", () => {
    const toy = scripted({ unleased: true, idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const gate = yield* Deferred.make<void>()
      const unavailable: Step = () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 503", maybeProcessed: false, httpStatus: 503 }))
      toy.script.push((lines) => Effect.zipRight(Deferred.await(gate), unavailable(lines)), unavailable, unavailable)
      const submit = yield* Effect.fork(Effect.either(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })))
      yield* toy.called(1)
      yield* Effect.sleep("5 millis")
      const [recovered] = yield* refunds.recover("0 millis")
      yield* Deferred.succeed(gate, undefined)
      const answered = yield* Fiber.join(submit)
      assert.isTrue(Either.isLeft(answered) && answered.left._tag === "OutcomeUnknown", JSON.stringify(answered))
      const stored = yield* refunds.get(recovered!.id)
      assert.deepStrictEqual([stored.status, stored.error], ["unknown", undefined], "the submit's verdict was refused, and nothing recorded as its error")
      const replayed = Refunds.replayedError(stored)
      assert.strictEqual(replayed?.code, "outcome_unknown")
      assert.include(replayed?.message ?? "", `the refund was moved to unknown while it was being submitted. The refund ${stored.id} is kept as "unknown"`)
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("recovery moves refunds stuck in requested to unknown, and sync resolves them", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const ledger = yield* Ledger.Ledger
      const refunds = yield* Refunds.Refunds
      const at = new Date(Date.now() - 60_000).toISOString()
      yield* ledger.claim({
        id: "rfd_00000000000000000000000000", provider: "toy", idempotencyKey: "crashed", fingerprint: "f", request: one("t9"), status: "requested",
        references: {}, targets: [], items: [], createdAt: at, updatedAt: at,
        events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }]
      })
      const moved = yield* refunds.recover("10 seconds")
      assert.deepStrictEqual(moved.map((r) => r.status), ["unknown"])
      const swept = yield* refunds.syncDue({ limit: 10 })
      assert.deepStrictEqual(swept.map((s) => [s.before, s.after]), [["unknown", "succeeded"]])
      assert.strictEqual(toy.calls.length, 0, "nothing was resent")
    }).pipe(Effect.provide(toy.layer))
  })

  // Recovery in another process (the gateway's sync loop, a `refundkit` command started meanwhile)
  // took a refund whose call was still out past the grace: a person could then settle it `failed`
  // and its target be refunded again before the call's answer came. Recovery's view is the ledger's
  // alone, so this instance's `recover` stands for any other process's.
  it.scoped("a refund whose call outlasts the recovery grace stays requested while its process lives, and is recovered once it is gone", () => {
    const toy = scripted({ idempotent: false, callTimeout: "1 hour" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      const after = fibers.advance
      const gate = yield* Deferred.make<void>()
      toy.script.push(() => Effect.as(Deferred.await(gate), { status: "succeeded" as const, providerStatus: "DONE", providerReference: "ref-slow" }))
      toy.script.push(() => Effect.never)
      const slow = yield* fibers.fork(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "slow" }))
      const dying = yield* fibers.fork(refunds.create({ provider: "toy", request: one("t2"), idempotencyKey: "dying" }))
      yield* fibers.settled
      assert.strictEqual(toy.calls.length, 2)
      // A client's retry under the same key while the first is out is told to wait, and leaves the lease alone.
      const retried = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "slow" }))
      assert.strictEqual(retried._tag, "RefundInProgress")
      // Claimed since the last heartbeat, neither is leased yet: recovery leaves them alone whatever its grace.
      assert.deepStrictEqual(yield* refunds.recover("0 millis"), [])
      // A bulk re-run meeting the row waits for its process's answer or for its lease to run out, five beats at most.
      const taking = yield* fibers.fork(refunds.recoverOne(retried._tag === "RefundInProgress" ? retried.refundId : "", "taken for abandoned"))
      // Beat by beat, as a process lives: every 15 s its leases are renewed.
      for (let i = 0; i < 12; i++) yield* after("15 seconds")
      const taken = yield* fibers.result(taking, "the re-run's wait for the row")
      assert.strictEqual(taken.status, "requested", "still held when the wait ended: left to its process")
      assert.deepStrictEqual(yield* refunds.recover("2 minutes"), [], "three minutes in, both calls are still out and leased")

      yield* Deferred.succeed(gate, undefined)
      const done = yield* fibers.result(slow, "the slow create")
      assert.strictEqual(done.refund.status, "succeeded", "the answer settled its refund, which recovery had left alone")

      // Its process gone (the fiber that held the call interrupted), no one renews its lease: four
      // beats later it has run out, and recovery takes it.
      yield* Fiber.interrupt(dying)
      yield* after("59 seconds")
      assert.deepStrictEqual(yield* refunds.recover("2 minutes"), [], "the last lease still stands")
      yield* after("1 second")
      const recovered = yield* refunds.recover("2 minutes")
      assert.deepStrictEqual(recovered.map((r) => [r.idempotencyKey, r.status]), [["dying", "unknown"]])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scoped("a bulk re-run meeting a row of a run killed a moment ago waits until it can take it, then takes it in doubt", () => {
    const toy = scripted({ idempotent: false, callTimeout: "1 hour" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      const after = fibers.advance
      toy.script.push(() => Effect.never)
      const killed = yield* fibers.fork(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "row-1" }))
      yield* fibers.settled
      yield* Fiber.interrupt(killed)
      const [row] = (yield* refunds.list({ limit: 1 })).items
      let waits = 0
      const onWait = Effect.sync(() => void waits++)
      const taking = yield* fibers.fork(refunds.recoverOne(row!.id, "left by a killed run", { onWait }))
      // Claimed since its run's last beat, it may belong to a live run that has not leased it yet.
      yield* after("29 seconds")
      assert.isNull(taking.unsafePoll(), "within two heartbeats of its claim the row is waited for")
      yield* after("2 seconds")
      const taken = yield* fibers.result(taking, "the re-run's wait for the row")
      assert.deepStrictEqual([taken.status, taken.events.at(-1)?.detail], ["unknown", "left by a killed run"])
      assert.strictEqual(waits, 1, "the wait is said once, however many times the row is looked at")
      const again = yield* refunds.recoverOne(row!.id, "left by a killed run", { onWait })
      assert.strictEqual(again.status, "unknown")
      assert.strictEqual(waits, 1, "a row taken at once is not waited for, and nothing is said")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scoped("the refunds of a packed call are leased while it is out, and no longer once the batch is interrupted", () => {
    const toy = scripted({ idempotent: false, maxTargets: 5, callTimeout: "1 hour" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      const after = fibers.advance
      toy.script.push(() => Effect.never)
      const batch = yield* fibers.fork(refunds.createMany([
        { provider: "toy", request: one("p1"), idempotencyKey: "p1" },
        { provider: "toy", request: one("p2"), idempotencyKey: "p2" }
      ]))
      yield* fibers.settled
      assert.deepStrictEqual(toy.calls.map((c) => c.lines.length), [2], "one call for both")
      for (let i = 0; i < 12; i++) yield* after("15 seconds")
      assert.deepStrictEqual(yield* refunds.recover("2 minutes"), [])
      yield* Fiber.interrupt(batch)
      yield* after("1 minute")
      const recovered = yield* refunds.recover("2 minutes")
      assert.deepStrictEqual(recovered.map((r) => r.idempotencyKey).sort(), ["p1", "p2"])
    }).pipe(Effect.provide(toy.layer))
  })

  // A submit that is still retrying when recovery (after too short a grace, or another process's
  // `bulk`) and a sync move its refund on: the sync may have resent it and seen the provider take it.
  const movedOnWhileSubmitting = (last: Step) => {
    const toy = scripted({ unleased: true, idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const gate = yield* Deferred.make<void>()
      toy.script.push(
        () => Effect.zipRight(Deferred.await(gate), Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 503", maybeProcessed: false, httpStatus: 503 }))),
        last,
        last
      )
      const submit = yield* Effect.fork(Effect.either(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })))
      // The claim is recorded once the provider is called; recovery then takes refunds last updated
      // before the current millisecond.
      yield* toy.called(1)
      yield* Effect.sleep("5 millis")
      const recovered = yield* refunds.recover("0 millis")
      assert.deepStrictEqual(recovered.map((r) => r.status), ["unknown"])
      const synced = yield* refunds.sync(recovered[0]!.id)
      assert.strictEqual(synced.status, "succeeded", "the sync learnt that the provider refunded it")
      yield* Deferred.succeed(gate, undefined)
      const result = yield* Fiber.join(submit)
      const stored = yield* refunds.get(recovered[0]!.id)
      return { result, stored, calls: toy.calls.length }
    }).pipe(Effect.provide(toy.layer))
  }

  it.scopedLive("a submit's late 503s do not overwrite what a sync learnt while it retried (it was recorded failed, and resent)", () =>
    Effect.gen(function*() {
      const { calls, result, stored } = yield* movedOnWhileSubmitting(() =>
        Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 503", maybeProcessed: false, httpStatus: 503 }))
      )
      assert.strictEqual(calls, 3)
      assert.strictEqual(stored.status, "succeeded")
      assert.isTrue(Either.isRight(result) && result.right.refund.status === "succeeded", "the caller gets the refund as the ledger holds it")
      const refused = stored.events.filter((e) => !e.accepted)
      assert.deepStrictEqual(refused.map((e) => [e.source, e.from, e.to]), [["submit", "succeeded", "failed"]], "the submit's answer is kept, refused")
    }))

  it.scopedLive("a decline on a retry does not end a refund a sync moved on meanwhile", () =>
    Effect.gen(function*() {
      const { result, stored } = yield* movedOnWhileSubmitting(() =>
        Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "STATE", reason: "the order is already further on", action: "contact_support" }))
      )
      assert.strictEqual(stored.status, "succeeded")
      assert.isTrue(Either.isRight(result) && result.right.refund.status === "succeeded")
    }))

  it.scopedLive("a submit's answer that arrives after a sync settled the refund is kept as history, and the caller gets the refund, not a ledger error", () =>
    Effect.gen(function*() {
      const { result, stored } = yield* movedOnWhileSubmitting(() => Effect.succeed({ status: "pending", providerStatus: "PENDING", providerReference: "ref-t1" }))
      assert.strictEqual(stored.status, "succeeded")
      assert.isTrue(Either.isRight(result) && result.right.refund.status === "succeeded", `got ${JSON.stringify(result)}`)
    }))

  it.scopedLive("a provider's success after an operator recorded the refund failed is not dropped: the refund needs a person again", () => {
    const toy = scripted({ unleased: true, idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const gate = yield* Deferred.make<void>()
      toy.script.push(() => Effect.zipRight(Deferred.await(gate), Effect.succeed({ status: "succeeded" as const, providerStatus: "DONE", providerReference: "ref-t1" })))
      const submit = yield* Effect.fork(Effect.either(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "late" })))
      yield* toy.called(1)
      yield* Effect.sleep("5 millis")
      // Another process's recovery (too short a grace, or a skewed clock) takes the live refund, and an
      // operator who finds nothing at the provider yet records it failed: its target is free again.
      const [recovered] = yield* refunds.recover("0 millis")
      const resolved = yield* refunds.resolve(recovered!.id, "failed", "nothing at toy")
      assert.strictEqual(resolved.status, "failed")
      yield* Deferred.succeed(gate, undefined)
      const result = yield* Fiber.join(submit)
      const stored = yield* refunds.get(recovered!.id)
      assert.strictEqual(stored.status, "requires_action", "the provider's word outranks the operator's")
      assert.strictEqual(stored.providerReference, "ref-t1")
      assert.isTrue(Either.isRight(result) && result.right.refund.status === "requires_action", `got ${JSON.stringify(result)}`)
      const last = stored.events.at(-1)!
      assert.deepStrictEqual([last.source, last.from, last.to, last.accepted], ["submit", "failed", "requires_action", true])
      assert.include(last.detail ?? "", "toy reports succeeded (DONE) in the answer to its call after an operator recorded failed")
      const settled = yield* refunds.resolve(stored.id, "succeeded", "refunded after all")
      assert.strictEqual(settled.status, "succeeded")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a packed call refused as a whole is sent again one refund at a time: one bad target does not decline the others", () => {
    const toy = scripted({ idempotent: false, maxTargets: 5 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const decline = (reason: string): Step => () => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "HTTP_422", reason, action: "fix_request" }))
      toy.script.push(decline("t2 is not yours"), (r) => Effect.succeed({ status: "succeeded", providerStatus: "DONE", providerReference: `ref-${r.lines[0]!.target}` }), decline("t2 is not yours"))
      const results = yield* refunds.createMany(["t1", "t2", "t3"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `k-${t}` })))
      assert.deepStrictEqual(toy.calls.map((c) => c.lines.map((l) => l.target).join("+")), ["t1+t2+t3", "t1", "t2", "t3"])
      assert.deepStrictEqual(results.map((r) => Either.isRight(r) ? r.right.refund.status : r.left._tag), ["succeeded", "failed", "succeeded"])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("the members of a packed call refused as a whole wait for their own calls recorded as not sent: a crash then leaves them failed, not in doubt", () => {
    // Airalo's shape: one call per window, several targets per call, no way to ask afterwards.
    const toy = scripted({ unleased: true, idempotent: false, maxTargets: 5, rateLimit: { requests: 1, perMillis: 60_000 } })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "HTTP_422", reason: "t2 is not yours", action: "fix_request" })))
      const fibers = yield* track
      const run = yield* fibers.fork(refunds.createMany(["t1", "t2", "t3"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `k-${t}` }))))
      yield* toy.called(1)
      // Until the first member waits a minute for its own turn, and nothing else can happen.
      yield* fibers.settled
      // The process dies then.
      yield* Fiber.interrupt(run)
      assert.strictEqual(toy.calls.length, 1, "only the packed call was sent")
      const waiting = (yield* refunds.list({ limit: 10 })).items
      assert.deepStrictEqual(waiting.map((r) => [r.status, r.error?.code]), [["requested", "not_sent"], ["requested", "not_sent"], ["requested", "not_sent"]])
      yield* Effect.sleep("5 millis")
      const recovered = [...(yield* refunds.recover("0 millis"))].sort((a, b) => a.idempotencyKey.localeCompare(b.idempotencyKey))
      assert.deepStrictEqual(recovered.map((r) => [r.idempotencyKey, r.status, r.error?.code]), [
        ["k-t1", "failed", "not_sent"],
        ["k-t2", "failed", "not_sent"],
        ["k-t3", "failed", "not_sent"]
      ])
      assert.include(recovered[0]!.error?.message, "refused as a whole")
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("a member of a refused packed call says it is being sent before its own call goes out, and recovery then leaves it in doubt", () => {
    const toy = scripted({ unleased: true, idempotent: false, maxTargets: 5, rateLimit: { requests: 1, perMillis: 100 } })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const ledger = yield* Ledger.Ledger
      const gate = yield* Deferred.make<void>()
      const seen: Array<string | undefined> = []
      toy.script.push(() => Effect.fail(new ProviderDeclined({ provider: "toy", providerCode: "HTTP_422", reason: "t2 is not yours", action: "fix_request" })))
      // The first member's own call: the ledger is read while it is out, and then it never answers.
      toy.script.push(() =>
        Effect.flatMap(Effect.orDie(ledger.findByKey("toy", "k-t1")), (found) => {
          seen.push(Option.getOrUndefined(found)?.error?.code)
          return Effect.zipRight(Deferred.succeed(gate, undefined), Effect.never)
        })
      )
      const run = yield* Effect.fork(refunds.createMany(["t1", "t2"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `k-${t}` }))))
      yield* Deferred.await(gate)
      yield* Fiber.interrupt(run)
      assert.deepStrictEqual(seen, [undefined], "no longer marked not sent once its call goes out")
      yield* Effect.sleep("5 millis")
      const recovered = [...(yield* refunds.recover("0 millis"))].sort((a, b) => a.idempotencyKey.localeCompare(b.idempotencyKey))
      assert.deepStrictEqual(recovered.map((r) => [r.idempotencyKey, r.status]), [["k-t1", "unknown"], ["k-t2", "failed"]])
    }).pipe(Effect.provide(toy.layer))
  })

  it.scopedLive("each member of a packed call that timed out is told its own refund id", () => {
    const toy = scripted({ idempotent: false, maxTargets: 5, callTimeout: "200 millis" })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      toy.script.push(() => Effect.never)
      const results = yield* refunds.createMany(["t1", "t2"].map((t) => ({ provider: "toy", request: one(t), idempotencyKey: `k-${t}` })))
      const ids = results.map((r) => (Either.isLeft(r) && r.left._tag === "OutcomeUnknown" ? r.left.refundId : "not in doubt"))
      const page = yield* refunds.list({ limit: 10 })
      const stored = ["k-t1", "k-t2"].map((key) => page.items.find((i) => i.idempotencyKey === key)!)
      assert.deepStrictEqual(ids, stored.map((r) => r.id))
      // The ledger's record of it too: an operator follows that message to the refund to settle.
      for (const refund of stored) {
        assert.strictEqual(refund.status, "unknown")
        assert.include(refund.error?.message, refund.id)
        for (const other of stored) if (other.id !== refund.id) assert.notInclude(refund.error?.message, other.id)
      }
    }).pipe(Effect.provide(toy.layer))
  })
  it.scopedLive("a packed answer that leaves out one of a refund's targets leaves that refund in doubt, not failed on its other target", () => {
    const toy = scripted({ idempotent: false, maxTargets: 5 })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      // The answer names t1 (refused) and t3 (done), and says nothing of t2, which may have been refunded.
      toy.script.push((request) =>
        Effect.succeed({
          status: "requires_action",
          providerStatus: "BATCH",
          items: request.lines.filter((l) => l.target !== "t2").map((l) => ({ target: l.target, status: l.target === "t1" ? "failed" as const : "succeeded" as const }))
        })
      )
      const results = yield* refunds.createMany([
        { provider: "toy", request: { lines: [{ target: "t1", amount: "5.00" }, { target: "t2", amount: "5.00" }], currency: "USD" }, idempotencyKey: "a" },
        { provider: "toy", request: one("t3"), idempotencyKey: "b" }
      ])
      assert.strictEqual(toy.calls.length, 1)
      const [a, b] = results.map((r) => Either.getOrThrow(r).refund)
      assert.strictEqual(a!.status, "unknown", "t2 was in the call and the answer does not say what became of it")
      assert.deepStrictEqual(a!.items.map((i) => [i.target, i.status]), [["t1", "failed"], ["t2", "unknown"]])
      assert.strictEqual(b!.status, "succeeded")
    }).pipe(Effect.provide(toy.layer))
  })
  it.scopedLive("a submit's late 'pending' does not move back a refund a callback already put in requires_action", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const ledger = yield* Ledger.Ledger
      const gate = yield* Deferred.make<void>()
      toy.script.push((request) => Effect.as(Deferred.await(gate), { status: "pending", providerStatus: "PENDING", providerReference: `ref-${request.lines[0]!.target}` }))
      const fiber = yield* Effect.fork(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" }))
      yield* toy.called(1)
      const id = (yield* refunds.list({ limit: 1 })).items[0]!.id
      // A callback (a chargeback: a person must reconcile) is recorded while the submit's answer is still on its way.
      yield* ledger.transition(id, { to: "requires_action", source: "webhook", at: new Date().toISOString(), providerStatus: "CHARGEBACK" })
      yield* Deferred.succeed(gate, undefined)
      const created = yield* Fiber.join(fiber)
      assert.strictEqual(created.refund.status, "requires_action")
      const stored = yield* refunds.get(id)
      assert.strictEqual(stored.status, "requires_action")
      assert.strictEqual(stored.providerStatus, "CHARGEBACK")
      assert.isFalse(stored.events.at(-1)!.accepted, "the late answer is kept in the history as a refused event")
    }).pipe(Effect.provide(toy.layer))
  })
  it.scopedLive("a retry spelling an original amount differently is the same request, as the refund amount is", () => {
    const toy = scripted({ idempotent: true })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const first = yield* refunds.create({ provider: "toy", request: one("t1", "5"), idempotencyKey: "k", originalAmounts: { t1: "100" } })
      assert.strictEqual(first.refund.targets[0]!.originalAmount, "100.00")
      const again = yield* refunds.create({ provider: "toy", request: one("t1", "5.00"), idempotencyKey: "k", originalAmounts: { t1: "100.00" } })
      assert.isTrue(again.replayed)
      const other = yield* Effect.flip(refunds.create({ provider: "toy", request: one("t1", "5.00"), idempotencyKey: "k", originalAmounts: { t1: "100.01" } }))
      assert.strictEqual(other._tag, "IdempotencyKeyReused")
    }).pipe(Effect.provide(toy.layer))
  })
  it.scoped("a Retry-After is waited before a retry, not after the last attempt", () => {
    const toy = scripted({ idempotent: false })
    return Effect.gen(function*() {
      const refunds = yield* Refunds.Refunds
      const fibers = yield* track
      const limited = () => Effect.fail(new ProviderUnavailable({ provider: "toy", detail: "HTTP 429", httpStatus: 429, retryAfterMillis: 300, maybeProcessed: false }))
      toy.script.push(limited, limited, limited)
      const create = yield* fibers.fork(Effect.flip(refunds.create({ provider: "toy", request: one("t1"), idempotencyKey: "k" })))
      const after = fibers.advance
      yield* fibers.settled
      // The retry schedule alone would wait 5 ms.
      yield* after(299)
      assert.strictEqual(toy.calls.length, 1, "the first retry waits the 300 ms the provider asked for")
      yield* after(1)
      assert.strictEqual(toy.calls.length, 2)
      yield* after(300)
      // Two waits before the two retries; none once the third answer has settled the refund.
      const error = yield* fibers.result(create, "the create after its third answer")
      assert.strictEqual(error._tag, "ProviderUnavailable")
      assert.strictEqual(toy.calls.length, 3)
    }).pipe(Effect.provide(toy.layer))
  })
})

describe("retryScheduleFor", () => {
  it.effect("backs off exponentially, each wait at most 10 s (plus jitter), and stops after the retries", () =>
    Effect.gen(function*() {
      const delays = [...yield* Schedule.run(Schedule.delays(Refunds.retryScheduleFor(20)), 0, Array.from({ length: 30 }, () => undefined))]
        .map(Duration.toMillis)
      // (`Schedule.run` also emits the step on which the schedule ends, with no wait.)
      assert.strictEqual(delays.filter((d) => d > 0).length, 20)
      // 250 ms doubling (jittered 0.8-1.2x), until the 10 s cap; uncapped, the last would be 131,072 s.
      assert.isAtMost(delays[0]!, 300)
      assert.isAtLeast(delays[5]!, 6_400)
      assert.isTrue(delays.every((d) => d <= 12_000), `a wait over the cap: ${delays}`)
    }))
})
