import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Ledger from "@refundkit/core/Ledger"
import * as Providers from "@refundkit/core/Providers"
import * as Refunds from "@refundkit/core/Refunds"
import { Clock, ConfigProvider, Context, Effect, Either, Layer, Redacted, Schedule } from "effect"
import * as Airalo from "../src/Airalo.js"
import * as AiraloClient from "../src/AiraloClient.js"
import * as AiraloSandbox from "../src/sandbox.js"

/** The whole stack as an app builds it: the plugin from `env` (as the CLI and gateway do), core's Refunds, the in-memory ledger. */
const stackFor = (env: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const plugin = Airalo.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))
    const layer = Refunds.layer({
      callTimeout: "5 seconds",
      retrySchedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
      maxRetryAfter: "2 seconds"
    }).pipe(
      Layer.provideMerge(Layer.provideMerge(plugin, Providers.layer)),
      Layer.provideMerge(Ledger.layerMemory),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    const context = yield* Layer.build(layer)
    return { refunds: Context.get(context, Refunds.Refunds), providers: Context.get(context, Providers.Providers) }
  })

const setup = (options: AiraloSandbox.Options = { rateLimit: false }, env: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function*() {
    const sandbox = yield* AiraloSandbox.make(options)
    const stack = yield* stackFor({ ...sandbox.env, ...env })
    return { sandbox, ...stack }
  })

/** Airalo's client on its own, pointed at `sandbox`, with no rate limit of its own. */
const unpacedClient = (sandbox: AiraloSandbox.AiraloSandbox) =>
  Effect.flatMap(Layer.build(NodeHttpClient.layerUndici), (http) =>
    AiraloClient.make({
      baseUrl: sandbox.baseUrl,
      clientId: sandbox.clientId,
      clientSecret: Redacted.make(sandbox.clientSecret),
      rateLimit: undefined
    }).pipe(Effect.provide(http)))

const request = (n: number, extra: Record<string, unknown> = {}) => ({ iccids: [AiraloSandbox.ownedIccid(n)], reason: "NO_COVERAGE", ...extra })

describe("Airalo", () => {
  it.scopedLive("a refund request is pending under review, with Airalo's refund_id for every ICCID", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const iccids = [AiraloSandbox.ownedIccid(1), AiraloSandbox.ownedIccid(2)]
      const { refund } = yield* refunds.create({
        provider: "airalo",
        request: { iccids, reason: "INCOMPATIBLE_DEVICE", notes: "Customer's phone is carrier-locked.", email: "ops@reseller.example.com" },
        idempotencyKey: "order-1"
      })
      const [sent] = yield* sandbox.accepted
      assert.deepStrictEqual(sent, {
        refund_id: refund.providerReference!,
        created_at: refund.references["created_at"]!,
        iccids,
        reason: "INCOMPATIBLE_DEVICE",
        notes: "Customer's phone is carrier-locked.",
        email: "ops@reseller.example.com"
      })
      assert.strictEqual(refund.status, "pending")
      assert.strictEqual(refund.providerStatus, "accepted_for_review")
      assert.deepStrictEqual(refund.targets, iccids.map((target) => ({ target })))
      assert.isUndefined(refund.amount)
      assert.deepStrictEqual(refund.items.map((i) => [i.target, i.status, i.providerReference]), iccids.map((i) => [i, "pending", sent!.refund_id]))
      assert.strictEqual(refund.references["refund_id"], sent!.refund_id)
      assert.isFalse(JSON.stringify(refund).includes(sandbox.clientSecret))
    }))

  it.scopedLive("the seed's example request is refused for its reason before any network call", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const error = yield* Effect.flip(refunds.create({
        provider: "airalo",
        request: { iccids: ["894000000000001", "894000000000002"], reason: "SERVICE_ISSUES", notes: "Connection issues in the region." },
        idempotencyKey: "seed"
      }))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.include(error.message, "reason: \"SERVICE_ISSUES\" is not an accepted reason")
      assert.include(error.message, "INSTALLATION_FAILURE, NO_COVERAGE, APN_FAILURE")
      assert.deepStrictEqual((yield* sandbox.stats).requests, {})
    }))

  it.scopedLive("ICCIDs of another company: the refund fails with Airalo's own words", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup()
      const { refund } = yield* refunds.create({
        provider: "airalo",
        request: { iccids: [AiraloSandbox.ownedIccid(1), AiraloSandbox.foreignIccid(9)], reason: "NO_COVERAGE" },
        idempotencyKey: "foreign"
      })
      assert.strictEqual(refund.status, "failed")
      assert.strictEqual(refund.error?.code, "provider_declined")
      assert.strictEqual(refund.error?.providerCode, "iccids_not_owned")
      assert.include(refund.error?.message, `The following ICCIDs do not belong to your company: ${AiraloSandbox.foreignIccid(9)}`)
    }))

  it.scopedLive("429 with Retry-After: ProviderUnavailable, not processed, not retried past maxRetryAfter; Airalo's words without a doubled full stop", () =>
    Effect.gen(function*() {
      // Airalo enforces 1 per 5 minutes; this caller told refundkit not to pace.
      const { provider, refunds, sandbox } = yield* Effect.flatMap(setup({}, { REFUNDKIT_AIRALO_RATE_LIMIT: "off" }), (s) =>
        Effect.map(s.providers.get("airalo"), (provider) => ({ ...s, provider })))
      assert.isUndefined(provider.capabilities.rateLimit)
      yield* refunds.create({ provider: "airalo", request: request(1), idempotencyKey: "first" })
      const error = yield* Effect.flip(refunds.create({ provider: "airalo", request: request(2), idempotencyKey: "second" }))
      assert.strictEqual(error._tag, "ProviderUnavailable")
      if (error._tag === "ProviderUnavailable") {
        assert.isFalse(error.maybeProcessed)
        assert.strictEqual(error.httpStatus, 429)
        assert.isTrue(error.retryAfterMillis! > 290_000 && error.retryAfterMillis! <= 300_000)
        assert.include(error.message, "Too Many Attempts.")
        assert.strictEqual(error.status, "failed")
        const stored = yield* refunds.get(error.refundId!)
        // Airalo's words end in a full stop of their own; the sentence around them must not add a second.
        assert.include(error.message, "HTTP 429 (rate limited): Too Many Attempts. Nothing was refunded.")
        // Recorded failed, its key only replays it: Airalo's wait is for a new attempt, under a new key.
        assert.match(error.message, /a new attempt needs a new key \(airalo asked to wait \d+ s first\)\.$/)
        assert.notInclude(error.message, "..")
        assert.notInclude(stored.error?.message, "..")
        assert.strictEqual(stored.error?.retryAfterMillis, error.retryAfterMillis)
      }
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["refund"], 2, "a Retry-After beyond maxRetryAfter ends the call")
      assert.strictEqual(stats["rateLimited"], 1)
      assert.strictEqual(stats.refundsPerformed, 1)
    }))

  it.scopedLive("core honours the rate-limit capability: with 1 per 1 s the second refund waits instead of failing", () =>
    Effect.gen(function*() {
      const { providers, refunds, sandbox } = yield* setup({ rateLimit: { requests: 1, perMillis: 1_000 } })
      assert.strictEqual(sandbox.env["REFUNDKIT_AIRALO_RATE_LIMIT"], "1/1s")
      const provider = yield* providers.get("airalo")
      assert.deepStrictEqual(provider.capabilities.rateLimit, { requests: 1, perMillis: 1_500 })
      const first = yield* refunds.create({ provider: "airalo", request: request(1), idempotencyKey: "paced-1" })
      const second = yield* refunds.create({ provider: "airalo", request: request(2), idempotencyKey: "paced-2" })
      assert.deepStrictEqual([first.refund.status, second.refund.status], ["pending", "pending"])
      const stats = yield* sandbox.stats
      assert.strictEqual(stats["rateLimited"], 0, "the sandbox never had to answer 429")
      assert.strictEqual(stats.requests["refund"], 2)
      assert.strictEqual(stats.refundsPerformed, 2)
    }))

  it.scopedLive("createMany packs ICCIDs sharing a reason into calls of up to 5; each refund keeps its own ICCIDs under the call's refund_id", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const inputs = [
        ...[1, 2, 3, 4, 5, 6].map((n) => ({ provider: "airalo", request: request(n, { notes: "outage" }), idempotencyKey: `pack-${n}` })),
        { provider: "airalo", request: { iccids: [AiraloSandbox.ownedIccid(7), AiraloSandbox.ownedIccid(8)], reason: "SLOW_SPEED" }, idempotencyKey: "pack-7" },
        { provider: "airalo", request: request(9, { reason: "SERVICE_ISSUES" }), idempotencyKey: "pack-bad" }
      ]
      const results = yield* refunds.createMany(inputs)
      const accepted = yield* sandbox.accepted
      assert.deepStrictEqual(accepted.map((a) => a.iccids.length).sort(), [1, 2, 5])
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 3)
      const five = accepted.find((a) => a.iccids.length === 5)!
      assert.deepStrictEqual(five.iccids, [1, 2, 3, 4, 5].map(AiraloSandbox.ownedIccid))
      assert.deepStrictEqual([five.reason, five.notes], ["NO_COVERAGE", "outage"])
      const created = results.map((r) => (Either.isRight(r) ? r.right.refund : undefined))
      for (const [i, refund] of created.slice(0, 5).entries()) {
        assert.strictEqual(refund?.status, "pending")
        assert.strictEqual(refund?.providerReference, five.refund_id)
        assert.deepStrictEqual(refund?.items.map((item) => [item.target, item.status, item.providerReference]), [[AiraloSandbox.ownedIccid(i + 1), "pending", five.refund_id]])
      }
      assert.notStrictEqual(created[5]?.providerReference, five.refund_id)
      assert.strictEqual(created[6]?.items.length, 2)
      assert.strictEqual(created[6]?.status, "pending")
      const bad = results[7]!
      assert.isTrue(Either.isLeft(bad) && bad.left._tag === "InvalidRequest")
      const again = yield* refunds.createMany(inputs.slice(0, 7))
      assert.isTrue(again.every((r) => Either.isRight(r) && r.right.replayed))
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 3, "a replay sends nothing")
    }))

  it.scopedLive("status is unsupported with a hint on how the outcome is learnt; sync sweeps skip Airalo", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup()
      const { refund } = yield* refunds.create({ provider: "airalo", request: request(1), idempotencyKey: "status" })
      const error = yield* Effect.flip(refunds.sync(refund.id))
      assert.strictEqual(error._tag, "UnsupportedOperation")
      assert.include(error.message, "airalo does not support status queries.")
      assert.include(error.message, "GET /v2/balance")
      assert.include(error.message, "Refunds.resolve")
      assert.deepStrictEqual(yield* refunds.syncDue({ limit: 10 }), [])
      const webhook = yield* Effect.flip(refunds.webhook("airalo", { headers: {}, body: "{}" }))
      assert.strictEqual(webhook._tag, "UnsupportedOperation")
      const resolved = yield* refunds.resolve(refund.id, "succeeded", "credited 4.50 USD, seen on GET /v2/balance")
      assert.strictEqual(resolved.status, "succeeded")
    }))

  it.scopedLive("refused credentials and a blocked IP are ProviderAuthFailed; the refund fails without reaching /refund", () =>
    Effect.gen(function*() {
      const wrong = yield* setup({ rateLimit: false }, { REFUNDKIT_AIRALO_CLIENT_SECRET: "not-the-secret" })
      const denied = yield* Effect.flip(wrong.refunds.create({ provider: "airalo", request: request(1), idempotencyKey: "auth" }))
      assert.strictEqual(denied._tag, "ProviderAuthFailed")
      assert.include(denied.message, "Client authentication failed")
      assert.isFalse(denied.message.includes("not-the-secret"))
      assert.strictEqual((yield* wrong.sandbox.stats).requests["refund"], undefined)

      const blocked = yield* setup({ rateLimit: false, ipAllowlist: ["203.0.113.7"] })
      const forbidden = yield* Effect.flip(blocked.refunds.create({ provider: "airalo", request: request(1), idempotencyKey: "ip" }))
      assert.strictEqual(forbidden._tag, "ProviderAuthFailed")
      assert.include(forbidden.message, "code 89")
      assert.include(forbidden.message, "IP allowlist")
      if (forbidden._tag === "ProviderAuthFailed") assert.strictEqual(forbidden.status, "failed")
    }))

  it.scopedLive("a base URL without /v2 is a ConfigurationError naming REFUNDKIT_AIRALO_BASE_URL at /token; the refund fails unsent", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      // The sandbox answers 404 "Not Found" outside /v2, as a host that does not serve Airalo's API would.
      const { refunds } = yield* stackFor({ ...sandbox.env, REFUNDKIT_AIRALO_BASE_URL: sandbox.url })
      const { refund } = yield* refunds.create({ provider: "airalo", request: request(1), idempotencyKey: "no-v2" })
      assert.strictEqual(refund.status, "failed")
      assert.strictEqual(refund.error?.code, "configuration_error")
      assert.include(refund.error?.message, "REFUNDKIT_AIRALO_BASE_URL")
      assert.include(refund.error?.message, "HTTP 404 on /token")
      assert.include(refund.error?.message, "should end in /v2")
      assert.notInclude(refund.error?.message, "refused refundkit's credentials")
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["token"], 1, "a wrong base URL is not retried")
      assert.isUndefined(stats.requests["refund"], "nothing reached /refund")
      assert.strictEqual(stats.refundsPerformed, 0)
    }))

  it.scopedLive("the token is kept for expires_in but refreshed after 24 hours", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      const client = yield* unpacedClient(sandbox)
      // The client's view of time moves ahead; the sandbox keeps real time (its tokens live 366 days).
      const later = (hours: number) => Effect.withClock(shiftedClock(hours * 3_600_000))
      const first = yield* client.token
      assert.strictEqual(Redacted.value(yield* later(23)(client.token)), Redacted.value(first))
      assert.notStrictEqual(Redacted.value(yield* later(25)(client.token)), Redacted.value(first))
      assert.strictEqual((yield* sandbox.stats)["tokensIssued"], 2)
    }))

  it.scopedLive("the sandbox's rate limit can be changed while it runs: a refused second call goes through once it is lifted", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: { requests: 1, perMillis: 60_000 } })
      // No pacing on the client's side, so the sandbox's own limit is what answers.
      const client = yield* unpacedClient(sandbox)
      const body = (n: number) => ({ iccids: [AiraloSandbox.ownedIccid(n)], reason: "NO_COVERAGE" }) as const
      yield* client.refund(body(1))
      const limited = yield* Effect.either(client.refund(body(2)))
      assert.isTrue(Either.isLeft(limited), "the second call within the minute is refused")
      yield* sandbox.setRateLimit(undefined)
      yield* client.refund(body(2))
      yield* sandbox.setRateLimit({ requests: 1, perMillis: 60_000 })
      yield* client.refund(body(3))
      assert.isTrue(Either.isLeft(yield* Effect.either(client.refund(body(4)))), "a limit set again counts from its own first call")
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 3)
      assert.strictEqual(stats["rateLimited"], 2)
      assert.deepStrictEqual(sandbox.rateLimit, { requests: 1, perMillis: 60_000 }, "the handle still names the limit it started with")
    }))
})

const shiftedClock = (offsetMillis: number): Clock.Clock => {
  const live = Clock.make()
  const millis = () => live.unsafeCurrentTimeMillis() + offsetMillis
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: millis,
    currentTimeMillis: Effect.sync(millis),
    unsafeCurrentTimeNanos: () => BigInt(millis()) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(millis()) * 1_000_000n),
    sleep: (duration) => live.sleep(duration)
  }
}
