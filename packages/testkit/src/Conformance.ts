/**
 * The conformance suite every provider plugin runs against its own sandbox over
 * real HTTP on 127.0.0.1. Call {@link conformance} at the top level of a test file.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Ledger from "@refundkit/core/Ledger"
import type * as Provider from "@refundkit/core/Provider"
import * as Providers from "@refundkit/core/Providers"
import * as Refund from "@refundkit/core/Refund"
import * as RefundError from "@refundkit/core/RefundError"
import * as Refunds from "@refundkit/core/Refunds"
import type * as Sandbox from "@refundkit/core/Sandbox"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/**
 * What a plugin tells the suite about itself.
 *
 * @since 0.1.0
 */
export interface Options<E1, E2> {
  readonly provider: string
  /** Starts a fresh sandbox; each test gets its own. */
  readonly sandbox: Effect.Effect<Sandbox.Handle, E1, Scope.Scope>
  /** The plugin's Layer configured against that sandbox. */
  readonly plugin: (handle: Sandbox.Handle) => Layer.Layer<never, E2, Providers.Providers | HttpClient.HttpClient>
  /** The n-th valid request; different `n`, different target, so refunds never collide. */
  readonly validRequest: (n: number) => unknown
  /** A request that fails decoding on `field`. */
  readonly invalidRequest: { readonly input: unknown; readonly field: string }
  /** Route names the sandbox's `routeOf` gives the token endpoint (if any) and the refund endpoint. */
  readonly routes: { readonly auth?: string | undefined; readonly submit: string }
  /** The secret values the plugin is configured with; none may ever be printed. */
  readonly secrets: ReadonlyArray<string>
  /**
   * How many submits the provider acted on, read from the sandbox's stats. Defaults to
   * `refundsPerformed`; a provider whose submit is a progress report rather than a
   * reimbursement (AeroHub) names its own counter.
   */
  readonly performed?: ((stats: Sandbox.Stats) => number) | undefined
}

/**
 * One sandbox and the whole stack around it: the plugin, an in-memory ledger and the
 * orchestration with fast retries. The call timeout is generous unless a test sets its
 * own: a first call on a loaded CI machine (token, connection, JIT) took over a second.
 *
 * @since 0.1.0
 */
export const stack = <E1, E2>(options: Options<E1, E2>, callTimeout: Duration.DurationInput = "10 seconds") =>
  Effect.gen(function*() {
    const handle = yield* options.sandbox
    const layer = Refunds.layer({
      callTimeout,
      retrySchedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
      maxRetryAfter: "2 seconds"
    }).pipe(
      Layer.provideMerge(Layer.provideMerge(options.plugin(handle), Providers.layer)),
      Layer.provideMerge(Ledger.layerMemory),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    const context = yield* Layer.build(layer)
    const provider = yield* Effect.flatMap(Providers.Providers, (registry) => registry.get(options.provider)).pipe(Effect.provide(context))
    return { handle, context, provider, refunds: Context.get(context, Refunds.Refunds), ledger: Context.get(context, Ledger.Ledger) }
  })

const refundsPerformed = (stats: Sandbox.Stats) => stats.refundsPerformed

const totalRequests = (stats: Sandbox.Stats) => Object.values(stats.requests).reduce((a, b) => a + b, 0)

const submitDirect = (provider: Provider.Provider, request: unknown, key: string) =>
  Effect.flatMap(provider.prepare(request), (prepared) => prepared.submit({ refundId: Refund.deriveId(provider.id, key), idempotencyKey: key, attempt: 1 }))

/**
 * Registers the conformance tests for one plugin.
 *
 * @since 0.1.0
 */
export const conformance = <E1, E2>(options: Options<E1, E2>): void => {
  const setup = (callTimeout?: Duration.DurationInput) => stack(options, callTimeout)
  const performed = options.performed ?? refundsPerformed
  let counter = 0
  const next = () => options.validRequest(++counter)

  describe(`${options.provider} conformance`, () => {
    it.scopedLive("an invalid request fails naming its field, before any network call", () =>
      Effect.gen(function*() {
        const { handle, provider, refunds } = yield* setup()
        const direct = yield* Effect.flip(provider.prepare(options.invalidRequest.input))
        assert.strictEqual(direct._tag, "InvalidRequest")
        assert.isTrue(
          direct.issues.some((issue) => issue.path.split(".").includes(options.invalidRequest.field)),
          `issues ${JSON.stringify(direct.issues)} should name ${options.invalidRequest.field}`
        )
        const viaRefunds = yield* Effect.flip(refunds.create({ provider: options.provider, request: options.invalidRequest.input, idempotencyKey: "invalid-1" }))
        assert.strictEqual(viaRefunds._tag, "InvalidRequest")
        assert.strictEqual(totalRequests(yield* handle.stats), 0)
      }))

    it.scopedLive("a refund is performed once; the same key replays it", () =>
      Effect.gen(function*() {
        const { handle, refunds } = yield* setup()
        const request = next()
        const first = yield* refunds.create({ provider: options.provider, request, idempotencyKey: "replay-1" })
        const second = yield* refunds.create({ provider: options.provider, request, idempotencyKey: "replay-1" })
        assert.isFalse(first.replayed)
        assert.isTrue(second.replayed)
        assert.strictEqual(second.refund.id, first.refund.id)
        assert.notStrictEqual(first.refund.status, "requested")
        assert.strictEqual(performed(yield* handle.stats), 1)
        const reused = yield* Effect.flip(refunds.create({ provider: options.provider, request: next(), idempotencyKey: "replay-1" }))
        assert.strictEqual(reused._tag, "IdempotencyKeyReused")
      }))

    if (options.routes.auth !== undefined) {
      const auth = options.routes.auth
      it.scopedLive("the token is fetched once and cached", () =>
        Effect.gen(function*() {
          const { handle, refunds } = yield* setup()
          for (let i = 0; i < 3; i++) {
            yield* refunds.create({ provider: options.provider, request: next(), idempotencyKey: `cache-${i}` })
          }
          const stats = yield* handle.stats
          assert.strictEqual(stats.requests[auth], 1)
          assert.strictEqual(stats.requests[options.routes.submit], 3)
        }))

      it.scopedLive("an expired token gets exactly one re-auth and one retry", () =>
        Effect.gen(function*() {
          const { handle, refunds } = yield* setup()
          yield* refunds.create({ provider: options.provider, request: next(), idempotencyKey: "expire-0" })
          yield* handle.faults.inject({ fault: { _tag: "ExpiredToken" }, route: options.routes.submit })
          const created = yield* refunds.create({ provider: options.provider, request: next(), idempotencyKey: "expire-1" })
          assert.notStrictEqual(created.refund.status, "unknown")
          const stats = yield* handle.stats
          assert.strictEqual(stats.requests[auth], 2)
          assert.strictEqual(stats.requests[options.routes.submit], 3)
          assert.strictEqual(performed(stats), 2)
        }))
    }

    for (const status of [500, 502, 503] as const) {
      it.scopedLive(`HTTP ${status} becomes ProviderUnavailable`, () =>
        Effect.gen(function*() {
          const { handle, provider } = yield* setup()
          yield* handle.faults.inject({ fault: { _tag: "ServerError", status }, route: options.routes.submit, times: 0 })
          const error = yield* Effect.flip(submitDirect(provider, next(), `http-${status}`))
          assert.strictEqual(error._tag, "ProviderUnavailable")
          // A bare 503 may come from a proxy whose upstream took the request: only one with Retry-After says "nothing done".
          if (error._tag === "ProviderUnavailable" && status === 503) assert.isTrue(error.maybeProcessed)
        }))
    }

    it.scopedLive("a connection reset becomes ProviderUnavailable", () =>
      Effect.gen(function*() {
        const { handle, provider } = yield* setup()
        yield* handle.faults.inject({ fault: { _tag: "Reset" }, route: options.routes.submit, times: 0 })
        const error = yield* Effect.flip(submitDirect(provider, next(), "reset-1"))
        assert.strictEqual(error._tag, "ProviderUnavailable")
      }))

    it.scopedLive("a 503 with Retry-After is retried: the provider did nothing", () =>
      Effect.gen(function*() {
        const { handle, refunds } = yield* setup()
        yield* handle.faults.inject({ fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: options.routes.submit, times: 1 })
        const created = yield* refunds.create({ provider: options.provider, request: next(), idempotencyKey: "retry-503" })
        assert.notStrictEqual(created.refund.status, "unknown")
        assert.strictEqual(performed(yield* handle.stats), 1)
        assert.strictEqual((yield* handle.stats).requests[options.routes.submit], 2)
      }))

    // A bare 503 is read as a 500 is: a proxy sends one after its upstream took the request.
    for (const status of [500, 503] as const) {
      it.scopedLive(`a ${status === 503 ? "bare 503" : "500"} after sending is retried only where the provider is idempotent, and otherwise leaves the refund in doubt`, () =>
        Effect.gen(function*() {
          const { handle, provider, refunds } = yield* setup()
          yield* handle.faults.inject({ fault: { _tag: "ServerError", status }, route: options.routes.submit, times: 1 })
          const exit = yield* Effect.exit(refunds.create({ provider: options.provider, request: next(), idempotencyKey: `retry-${status}` }))
          const submits = (yield* handle.stats).requests[options.routes.submit]
          if (provider.capabilities.idempotentSubmit) {
            assert.isTrue(Exit.isSuccess(exit), `an idempotent provider's submit is retried after a ${status}`)
            assert.strictEqual(submits, 2)
          } else {
            assert.isTrue(Exit.isFailure(exit))
            assert.strictEqual(submits, 1, "a non-idempotent submit is never retried once it may have been sent")
            const refund = yield* refunds.get(Exit.isFailure(exit) ? idOf(exit.cause) : "")
            assert.strictEqual(refund.status, "unknown")
          }
        }))
    }

    // A 500 fault never reaches the provider's logic, so the case above cannot tell whether a resend is
    // harmless; a lost answer can: the provider acted on the first attempt, and the resend must not act again.
    it.scopedLive("a lost answer is resent only where the provider is idempotent, and never refunds twice", () =>
      Effect.gen(function*() {
        const { handle, provider, refunds } = yield* setup()
        yield* handle.faults.inject({ fault: { _tag: "LostResponse" }, route: options.routes.submit, times: 1 })
        const exit = yield* Effect.exit(refunds.create({ provider: options.provider, request: next(), idempotencyKey: "lost-1" }))
        const stats = yield* handle.stats
        assert.strictEqual(performed(stats), 1, "the provider acted on the first attempt, and exactly once")
        if (provider.capabilities.idempotentSubmit) {
          assert.isTrue(Exit.isSuccess(exit), "an idempotent provider's submit is resent after a lost answer")
          assert.strictEqual(stats.requests[options.routes.submit], 2)
        } else {
          assert.isTrue(Exit.isFailure(exit))
          assert.strictEqual(stats.requests[options.routes.submit], 1, "a non-idempotent submit is never resent once it may have been processed")
        }
      }))

    it.scopedLive("a malformed body becomes UnexpectedResponse", () =>
      Effect.gen(function*() {
        const { handle, provider } = yield* setup()
        yield* handle.faults.inject({ fault: { _tag: "Malformed" }, route: options.routes.submit, times: 0 })
        const error = yield* Effect.flip(submitDirect(provider, next(), "malformed-1"))
        assert.strictEqual(error._tag, "UnexpectedResponse")
      }))

    it.scopedLive("a body of the wrong shape becomes UnexpectedResponse naming a field", () =>
      Effect.gen(function*() {
        const { handle, provider } = yield* setup()
        yield* handle.faults.inject({ fault: { _tag: "SchemaViolation" }, route: options.routes.submit, times: 0 })
        const error = yield* Effect.flip(submitDirect(provider, next(), "shape-1"))
        assert.strictEqual(error._tag, "UnexpectedResponse")
        if (error._tag === "UnexpectedResponse") assert.notStrictEqual(error.path, "", error.message)
      }))

    it.scopedLive("a timeout leaves the refund unknown and is not retried", () =>
      Effect.gen(function*() {
        const { handle, refunds } = yield* setup("500 millis")
        yield* handle.faults.inject({ fault: { _tag: "Hang", millis: 2_000 }, route: options.routes.submit })
        const error = yield* Effect.flip(refunds.create({ provider: options.provider, request: next(), idempotencyKey: "hang-1" }))
        assert.strictEqual(error._tag, "OutcomeUnknown")
        const refund = yield* refunds.get(error._tag === "OutcomeUnknown" ? error.refundId ?? "" : "")
        assert.strictEqual(refund.status, "unknown")
        assert.strictEqual((yield* handle.stats).requests[options.routes.submit], 1)
      }))

    it.scopedLive("configured secrets never appear in errors, logs or refunds", () => {
      const lines: Array<string> = []
      const capture = Logger.make(({ annotations, message }) => {
        lines.push(JSON.stringify({ message, annotations: [...annotations] }))
      })
      return Effect.gen(function*() {
        const { handle, provider, refunds } = yield* setup("500 millis")
        const seen: Array<string> = []
        const record = (value: unknown) => {
          seen.push(String(value), JSON.stringify(value) ?? "")
          if (RefundError.isRefundError(value)) seen.push(value.message)
        }
        const ok = yield* refunds.create({ provider: options.provider, request: next(), idempotencyKey: "secret-ok" })
        record(ok.refund)
        const scenarios: ReadonlyArray<Sandbox.FaultRule["fault"]> = [
          { _tag: "ServerError", status: 500 },
          { _tag: "Malformed" },
          { _tag: "SchemaViolation" },
          { _tag: "RateLimited", retryAfterSeconds: 1 },
          { _tag: "Hang", millis: 1_500 }
        ]
        for (const [i, fault] of scenarios.entries()) {
          yield* handle.faults.inject({ fault, route: options.routes.submit, times: 0 })
          const exit = yield* Effect.exit(refunds.create({ provider: options.provider, request: next(), idempotencyKey: `secret-${i}` }))
          if (Exit.isFailure(exit)) {
            seen.push(Cause.pretty(exit.cause))
            for (const failure of Cause.failures(exit.cause)) record(failure)
          } else {
            record(exit.value.refund)
          }
          yield* handle.faults.clear
          yield* Effect.logInfo("scenario done", fault._tag)
        }
        record(yield* Effect.flip(provider.prepare(options.invalidRequest.input)))
        const page = yield* refunds.list({ limit: 100 })
        for (const refund of page.items) record(refund)
        const everything = [...seen, ...lines].join("\n")
        for (const secret of options.secrets) {
          assert.isFalse(everything.includes(secret), `a configured secret leaked: ${secret.slice(0, 3)}...`)
        }
        assert.isAbove(seen.length, 10)
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)), Logger.withMinimumLogLevel(LogLevel.All))
    })
  })
}

const idOf = (cause: Cause.Cause<Refunds.CreateError>): string => {
  for (const failure of Cause.failures(cause)) {
    if ("refundId" in failure && typeof failure.refundId === "string") return failure.refundId
  }
  return ""
}
