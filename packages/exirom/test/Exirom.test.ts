import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import { ConfigError, ConfigProvider, Context, Duration, Effect, Fiber, Layer, Schedule } from "effect"
import { createHmac } from "node:crypto"
import * as Checksum from "../src/internal/checksum.js"
import * as RawJson from "../src/internal/rawJson.js"
import { Exirom, ExiromConfig } from "../src/index.js"
import * as ExiromSandbox from "../src/sandbox.js"
import { stack } from "./support/stack.js"
import { listener } from "./support/listener.js"

/** The plugin configured from the sandbox's env, behind core's Refunds and an in-memory ledger. */
const stackFor = (sandbox: ExiromSandbox.ExiromSandbox, callTimeout: Duration.DurationInput = "2 seconds") =>
  Effect.gen(function*() {
    const retrySchedule = Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
    return (yield* stack(sandbox.env, { callTimeout, retrySchedule, maxRetryAfter: "1 second" })).refunds
  })

const setup = (options?: ExiromSandbox.Options) =>
  Effect.gen(function*() {
    const sandbox = yield* ExiromSandbox.make(options)
    return { sandbox, refunds: yield* stackFor(sandbox) }
  })

describe("Exirom plugin end to end", () => {
  it.scopedLive("a refund is pending with Exirom's refundId; a status sync moves it to succeeded", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000 })
      const { refund } = yield* refunds.create({
        provider: "exirom",
        request: { transactionId: 20001, amount: "10.5", reason: "customer_request", currency: "EUR", metadata: { order: "o-1" } },
        idempotencyKey: "order-o-1"
      })
      assert.strictEqual(refund.status, "pending")
      assert.strictEqual(refund.providerStatus, "NEW")
      assert.isString(refund.providerReference)
      assert.strictEqual(refund.references["requestId"], refund.id, "Exirom's requestId is our refund id")
      assert.strictEqual(refund.amount, "10.50")
      assert.deepStrictEqual(refund.targets, [{ target: "20001", amount: "10.50" }])
      assert.strictEqual((yield* refunds.sync(refund.id)).status, "pending", "not settled yet")
      yield* sandbox.settle
      const synced = yield* refunds.sync(refund.id)
      assert.strictEqual(synced.status, "succeeded")
      assert.strictEqual(synced.providerStatus, "SUCCEED")
      assert.deepStrictEqual(synced.events.map((e) => [e.source, e.to]), [["submit", "requested"], ["submit", "pending"], ["sync", "succeeded"]])
    }))

  it.scopedLive("an over-refund is declined by the sandbox; an asynchronous decline arrives through sync", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const full = yield* refunds.create({ provider: "exirom", request: { transactionId: 12345, amount: "100.00", reason: "customer_request" }, idempotencyKey: "full" })
      assert.strictEqual(full.refund.status, "pending")
      const over = yield* refunds.create({ provider: "exirom", request: { transactionId: 12345, amount: "0.01", reason: "customer_request" }, idempotencyKey: "over" })
      assert.strictEqual(over.refund.status, "failed")
      assert.strictEqual(over.refund.providerStatus, "FAILED")
      assert.strictEqual(over.refund.error?.providerCode, "8")
      assert.include(over.refund.error?.message ?? "", "DATA_VALIDATION_ERROR")

      const later = yield* refunds.create({ provider: "exirom", request: { transactionId: 30003, amount: "5.00", reason: "customer_request" }, idempotencyKey: "later" })
      assert.strictEqual(later.refund.status, "pending")
      yield* sandbox.settle
      const synced = yield* refunds.sync(later.refund.id)
      assert.strictEqual(synced.status, "failed")
      assert.strictEqual(synced.error?.providerCode, "6")
      assert.include(synced.error?.message ?? "", "LIMITED_BY_ISSUER_BANK_ERROR")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("unknown and unrefundable payments are declined with Exirom's words", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup({ autoSeed: false })
      const missing = yield* refunds.create({ provider: "exirom", request: { transactionId: 999, amount: "1.00", reason: "x" }, idempotencyKey: "missing" })
      assert.strictEqual(missing.refund.status, "failed")
      assert.strictEqual(missing.refund.error?.providerCode, "HTTP_404")
      const processing = yield* refunds.create({ provider: "exirom", request: { transactionId: 30002, amount: "1.00", reason: "x" }, idempotencyKey: "processing" })
      assert.strictEqual(processing.refund.error?.providerCode, "HTTP_422")
      assert.include(processing.refund.error?.message ?? "", "is PROCESSING")
    }))

  it.scopedLive("a fraction of a zero-decimal currency is refused 422 (amount precision) by the sandbox; whole yen are counted exactly", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      yield* sandbox.addTransaction({ transactionId: 20003, amount: "50000.00", currency: "KRW" })
      const create = (transactionId: number, amount: string, key: string) =>
        Effect.map(refunds.create({ provider: "exirom", request: { transactionId, amount, reason: "customer_request" }, idempotencyKey: key }), (c) => c.refund)
      // Without `currency` refundkit cannot check the amount against the payment's currency: the sandbox does, as Exirom documents.
      for (const [transactionId, amount, currency] of [[20002, "10.50", "JPY"], [20002, "0.01", "JPY"], [20003, "1.10", "KRW"]] as const) {
        const refused = yield* create(transactionId, amount, `fraction-${transactionId}-${amount}`)
        assert.strictEqual(refused.status, "failed", `${amount} ${currency}`)
        assert.strictEqual(refused.error?.providerCode, "HTTP_422")
        assert.include(refused.error?.message ?? "", `amount ${amount} is not an exact amount of ${currency}, which has no minor units`)
      }
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 0)
      // Whole yen (sent as "10.00", Exirom's two decimals) are refunded, and the captured total is reached exactly.
      assert.strictEqual((yield* create(20002, "10", "yen-10")).status, "pending")
      assert.strictEqual((yield* create(20002, "4990.00", "yen-4990")).status, "pending")
      const over = yield* create(20002, "1", "yen-over")
      assert.strictEqual(over.status, "failed")
      assert.strictEqual(over.error?.providerCode, "8")
      // A two-decimal currency keeps its cents.
      assert.strictEqual((yield* create(20001, "10.50", "cents")).status, "pending")
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 3)
      assert.deepStrictEqual(stats.refundedPerTransaction, { "20001": "10.50", "20002": "5000.00" })
    }))

  it.scopedLive("a reason with surrounding spaces (a CSV cell) is a reason: the sandbox refunds it as Exirom would", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const { refund } = yield* refunds.create({
        provider: "exirom",
        request: { transactionId: 12345, amount: "1.00", reason: "customer request ", metadata: { note: " kept as sent " } },
        idempotencyKey: "spaced-reason"
      })
      assert.strictEqual(refund.status, "pending", refund.error?.message)
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("a requestId Exirom already holds with another payload is a clear decline (409), refunding nothing", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make()
      // Two ledgers (a wiped one, another installation) reuse one idempotency key with different bodies.
      const first = yield* stackFor(sandbox)
      const second = yield* stackFor(sandbox)
      const a = yield* first.create({ provider: "exirom", request: { transactionId: 20001, amount: "10.00", reason: "x" }, idempotencyKey: "shared-key" })
      const b = yield* second.create({ provider: "exirom", request: { transactionId: 20001, amount: "20.00", reason: "x" }, idempotencyKey: "shared-key" })
      assert.strictEqual(a.refund.id, b.refund.id)
      assert.strictEqual(a.refund.status, "pending")
      assert.strictEqual(b.refund.status, "failed")
      assert.strictEqual(b.refund.error?.providerCode, "HTTP_409")
      assert.include(b.refund.error?.message ?? "", "different payload")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("ExiromConfig.make takes a base URL with a trailing slash, as REFUNDKIT_EXIROM_BASE_URL does", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make()
      const config = ExiromConfig.make({
        baseUrl: `${sandbox.baseUrl}/`,
        merchantKey: sandbox.env.REFUNDKIT_EXIROM_MERCHANT_KEY!,
        merchantSecret: sandbox.merchantSecret,
        mid: sandbox.mid,
        requestsPerMinute: 0
      })
      assert.strictEqual(config.baseUrl, sandbox.baseUrl)
      const layer = Refunds.layer().pipe(
        Layer.provideMerge(Layer.provideMerge(Exirom.layer(config), Providers.layer)),
        Layer.provideMerge(Ledger.layerMemory),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const refunds = Context.get(yield* Layer.build(layer), Refunds.Refunds)
      const { refund } = yield* refunds.create({ provider: "exirom", request: { transactionId: 12345, amount: "1.00", reason: "x" }, idempotencyKey: "slash" })
      assert.strictEqual(refund.status, "pending", refund.error?.message)
    }))

  it.scopedLive("every documented auth answer shape works end to end", () =>
    Effect.gen(function*() {
      // "text": the "plain string" unquoted, as a Java controller returning a String sends it.
      for (const authResponse of ["string", "token", "merchantKey", "text"] as const) {
        const { refunds, sandbox } = yield* setup({ authResponse })
        const { refund } = yield* refunds.create({ provider: "exirom", request: { transactionId: 20001, amount: "1.00", reason: "x" }, idempotencyKey: authResponse })
        assert.strictEqual(refund.status, "pending", authResponse)
        assert.strictEqual((yield* sandbox.stats).requests["auth"], 1)
      }
    }))

  it.scopedLive("a refund left unknown by a timeout is resolved by sync resending the same requestId", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make()
      const refunds = yield* stackFor(sandbox, "300 millis")
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "refund", times: 1 })
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 1_000 }, route: "refund", times: 0 })
      const lost = yield* Effect.flip(refunds.create({ provider: "exirom", request: { transactionId: 20001, amount: "3.00", reason: "x" }, idempotencyKey: "lost" }))
      assert.strictEqual(lost._tag, "OutcomeUnknown")
      const id = lost._tag === "OutcomeUnknown" ? lost.refundId ?? "" : ""
      assert.strictEqual((yield* refunds.get(id)).status, "unknown")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1, "the lost answer's refund was performed")
      yield* sandbox.faults.clear
      const synced = yield* refunds.sync(id)
      assert.strictEqual(synced.status, "pending")
      assert.isString(synced.providerReference)
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1, "the resend replayed, it did not refund again")
    }))

  it.scopedLive("a sync of a refund still being submitted is refused and resends nothing: only a refund in doubt is resent", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make()
      // The submit is held at the sandbox for 2 s, well past the list and the sync below on a loaded machine,
      // and well inside its call timeout.
      const refunds = yield* stackFor(sandbox, "30 seconds")
      yield* sandbox.faults.inject({ fault: { _tag: "Latency", millis: 2_000 }, route: "refund", times: 1 })
      const submit = yield* Effect.fork(refunds.create({ provider: "exirom", request: { transactionId: 20001, amount: "3.00", reason: "x" }, idempotencyKey: "slow" }))
      const received = Effect.map(sandbox.stats, (s) => (s.requests["refund"] ?? 0) > 0)
      yield* Effect.repeat(received, { until: (got) => got, schedule: Schedule.spaced("5 millis") }).pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the submit never reached the sandbox") })
      )
      const [inFlight] = (yield* refunds.list({ limit: 10 })).items
      assert.strictEqual(inFlight?.status, "requested")
      const refused = yield* Effect.flip(refunds.sync(inFlight!.id))
      assert.strictEqual(refused._tag, "UnsupportedOperation")
      assert.include(refused.message, "being submitted")
      const created = yield* Fiber.join(submit)
      assert.strictEqual(created.refund.status, "pending")
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["refund"], 1, "the sync sent nothing")
      assert.strictEqual(stats.refundsPerformed, 1)
    }))

  it.scopedLive("layerConfig names a missing setting (a ConfigError: not configured) and an invalid one (a ConfigurationError)", () =>
    Effect.gen(function*() {
      const build = (env: Record<string, string>) =>
        Effect.flip(Layer.build(Exirom.layerConfig.pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
          Layer.provide(Providers.layer),
          Layer.provide(NodeHttpClient.layerUndici)
        )))
      const missing = yield* build({ REFUNDKIT_EXIROM_MID: "m" })
      assert.isTrue(ConfigError.isConfigError(missing) && ConfigError.isMissingDataOnly(missing))
      assert.include(String(missing), "REFUNDKIT_EXIROM_MERCHANT_KEY")
      const badUrl = yield* build({ REFUNDKIT_EXIROM_MID: "m", REFUNDKIT_EXIROM_MERCHANT_KEY: "k", REFUNDKIT_EXIROM_MERCHANT_SECRET: "top-secret", REFUNDKIT_EXIROM_BASE_URL: "exirom" })
      assert.strictEqual(badUrl._tag, "ConfigurationError")
      assert.include(badUrl.message, "http(s) URL")
      assert.notInclude(badUrl.message, "top-secret")
      // An empty secret (`X=${UNSET}`) is a missing one: the plugin is not configured and nothing is sent.
      const empty = yield* build({ REFUNDKIT_EXIROM_MID: "m", REFUNDKIT_EXIROM_MERCHANT_KEY: "k", REFUNDKIT_EXIROM_MERCHANT_SECRET: "" })
      assert.isTrue(ConfigError.isConfigError(empty) && ConfigError.isMissingDataOnly(empty))
      assert.include(String(empty), "REFUNDKIT_EXIROM_MERCHANT_SECRET")
      // An empty or non-decimal rate limit is refused naming the variable (Number("") is 0: the limit was off).
      for (const value of ["", "0x28", "1e3", "-1"]) {
        const bad = yield* build({ REFUNDKIT_EXIROM_MID: "m", REFUNDKIT_EXIROM_MERCHANT_KEY: "k", REFUNDKIT_EXIROM_MERCHANT_SECRET: "s", REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE: value })
        assert.include(ConfigError.isConfigError(bad) ? String(bad) : bad.message, "REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE", value)
      }
    }))

  describe("webhooks", () => {
    it("signature fields are read from the raw body: literals as written, nested values skipped", () => {
      const body = `{ "mid" : "m\\u0031", "order": {"orderAmount": 1, "s": "},{"}, "orderAmount": null, "totalAmount": 200.0,\n "orderCurrency":"EUR", "transactionId": 12345 }`
      const fields = RawJson.members(body)!
      assert.strictEqual(fields.get("totalAmount"), "200.0")
      assert.strictEqual(fields.get("order"), `{"orderAmount": 1, "s": "},{"}`)
      assert.strictEqual(Checksum.message(fields), "m1|200.0|EUR|12345")
      for (const bad of ["", "[1]", "{\"a\":}", "{\"a\":1", "{\"a\":1} x"]) assert.isUndefined(RawJson.members(bad), bad)
    })

    it.scopedLive("the sandbox's signed callbacks verify; duplicates and out-of-order deliveries change nothing", () =>
      Effect.gen(function*() {
        const endpoint = yield* listener
        const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0, lifecycle: true, outOfOrder: true, duplicates: 1 } })
        const { refund } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 20001, amount: "200.00", reason: "customer_request", callbackUrl: endpoint.url },
          idempotencyKey: "hooked"
        })
        yield* sandbox.settle
        const callbacks = yield* endpoint.waitFor(6)
        assert.deepStrictEqual(callbacks.map((c) => (JSON.parse(c.body) as { transactionStatus: string }).transactionStatus), ["SUCCEED", "SUCCEED", "PROCESSING", "PROCESSING", "NEW", "NEW"])
        assert.strictEqual(callbacks[0]!.query["paymentMethod"], "card")
        assert.include(callbacks[0]!.body, "\"totalAmount\":200.0,", "Exirom's Double literal")
        // JSON.parse turns 200.0 into 200: a checksum over parsed values would not match.
        const parsed = JSON.parse(callbacks[0]!.body) as { mid: string; totalAmount: number; orderCurrency: string; transactionId: number }
        const overParsed = createHmac("sha256", sandbox.merchantSecret).update(`${parsed.mid}|${parsed.totalAmount}|${parsed.orderCurrency}|${parsed.transactionId}`).digest("base64")
        assert.notStrictEqual(callbacks[0]!.headers["x-checksum"], overParsed)

        // Each callback is confirmed with Exirom, which says SUCCEED by now: the first records it, the
        // rest (the stale PROCESSING and NEW among them) are the same news again.
        const results = yield* Effect.forEach(callbacks, (callback) => refunds.webhook("exirom", callback))
        assert.deepStrictEqual(results.map((r) => r[0]!.applied), [true, false, false, false, false, false])
        assert.isTrue(results.slice(1).every((r) => r[0]!.reason === "duplicate callback"))
        const after = yield* refunds.get(refund.id)
        assert.strictEqual(after.status, "succeeded")
        assert.strictEqual(after.providerStatus, "SUCCEED")
        // The event says what Exirom said; the key a repeat is known by is kept beside it.
        assert.deepInclude(after.events.at(-1), {
          source: "webhook",
          callbackKey: "20001:SUCCEED",
          detail: "Exirom's callback, confirmed by its refund info: transactionStatus SUCCEED"
        })
      }))

    it.scopedLive("callbacks of 10^7 and more carry Java's E notation (1.2345678E7), signed so, and verify end to end", () =>
      Effect.gen(function*() {
        const endpoint = yield* listener
        const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0 } })
        yield* sandbox.addTransaction({ transactionId: 40001, amount: "50000000.00", currency: "EUR" })
        const amounts = [["12345678.00", "1.2345678E7"], ["10000000.00", "1.0E7"], ["12345678.90", "1.23456789E7"], ["9999999.99", "9999999.99"]] as const
        const created = yield* Effect.forEach(amounts, ([amount]) =>
          refunds.create({
            provider: "exirom",
            request: { transactionId: 40001, amount, reason: "customer_request", currency: "EUR", callbackUrl: endpoint.url },
            idempotencyKey: `large-${amount}`
          }))
        yield* sandbox.settle
        const callbacks = yield* endpoint.waitFor(amounts.length)
        for (const [index, [amount, printed]] of amounts.entries()) {
          const id = created[index]!.refund.id
          const callback = callbacks.find((c) => c.body.includes(id))!
          // What Java's Double.toString(Double.parseDouble(amount)) prints.
          assert.include(callback.body, `"totalAmount":${printed},`, amount)
          const applied = yield* refunds.webhook("exirom", callback)
          assert.isTrue(applied[0]!.applied, `${amount}: ${applied[0]!.reason ?? ""}`)
          assert.strictEqual((yield* refunds.get(id)).status, "succeeded", amount)
        }
      }))

    it.scopedLive("a callback is a hint: what it records is what Exirom says now, found by our requestId at Exirom", () =>
      Effect.gen(function*() {
        const endpoint = yield* listener
        const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0, lifecycle: true } })
        const { refund } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 12345, amount: "10.00", reason: "x", callbackUrl: endpoint.url },
          idempotencyKey: "in-order"
        })
        yield* sandbox.settle
        const callbacks = yield* endpoint.waitFor(3)
        assert.deepStrictEqual(callbacks.map((c) => (JSON.parse(c.body) as { transactionStatus: string }).transactionStatus), ["NEW", "PROCESSING", "SUCCEED"])
        // The NEW callback is handled after Exirom settled the refund: it records SUCCEED, Exirom's word.
        const results = yield* Effect.forEach(callbacks, (callback) => refunds.webhook("exirom", callback))
        assert.deepStrictEqual(results.map((r) => [r[0]!.refundId, r[0]!.applied]), [[refund.id, true], [refund.id, false], [refund.id, false]])
        const after = yield* refunds.get(refund.id)
        assert.deepStrictEqual(after.events.filter((e) => e.source === "webhook").map((e) => e.providerStatus), ["SUCCEED"])
        assert.strictEqual(after.status, "succeeded")
      }))

    it.scopedLive("a genuine callback replayed naming another refund and another status changes neither (the checksum does not cover them)", () =>
      Effect.gen(function*() {
        const endpoint = yield* listener
        const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0 } })
        const { refund: mine } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 20001, amount: "10.00", reason: "x", callbackUrl: endpoint.url },
          idempotencyKey: "replayed-from"
        })
        const { refund: other } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 1_000_123, amount: "40.00", reason: "x" },
          idempotencyKey: "replayed-onto"
        })
        yield* sandbox.settle
        const [genuine] = yield* endpoint.waitFor(1)
        // requestId, refundId and transactionStatus are outside X-Checksum: the signature still verifies.
        const body = genuine!.body.replace(mine.id, other.id).replace(/"transactionStatus":"[A-Z]+"/, "\"transactionStatus\":\"FAILED\"")
        assert.include(body, other.id)
        assert.include(body, "\"FAILED\"")
        yield* refunds.webhook("exirom", { ...genuine!, body })
        assert.strictEqual((yield* refunds.get(other.id)).status, "pending", "the other refund is untouched")
        const after = yield* refunds.get(mine.id)
        assert.strictEqual(after.status, "succeeded", "the callback's own refund gets Exirom's word, not the forged FAILED")
        assert.strictEqual((yield* sandbox.stats).refundsPerformed, 2)
      }))

    it.scopedLive("a callback signed over the parsed amount (200, as Exirom's Node quick start computes it) verifies too", () =>
      Effect.gen(function*() {
        const endpoint = yield* listener
        const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0 } })
        const { refund } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 20001, amount: "200.00", reason: "x", callbackUrl: endpoint.url },
          idempotencyKey: "parsed-form"
        })
        yield* sandbox.settle
        const [genuine] = yield* endpoint.waitFor(1)
        assert.include(genuine!.body, "\"totalAmount\":200.0,")
        const parsed = JSON.parse(genuine!.body) as { mid: string; totalAmount: number; orderCurrency: string; transactionId: number }
        const overParsed = createHmac("sha256", sandbox.merchantSecret).update(`${parsed.mid}|${parsed.totalAmount}|${parsed.orderCurrency}|${parsed.transactionId}`).digest("base64")
        const applied = yield* refunds.webhook("exirom", { ...genuine!, headers: { ...genuine!.headers, "x-checksum": overParsed } })
        assert.isTrue(applied[0]!.applied)
        assert.strictEqual((yield* refunds.get(refund.id)).status, "succeeded")
        // Still only the two forms of the signed fields: another amount does not verify.
        const other = createHmac("sha256", sandbox.merchantSecret).update(`${parsed.mid}|201|${parsed.orderCurrency}|${parsed.transactionId}`).digest("base64")
        const refused = yield* Effect.flip(refunds.webhook("exirom", { ...genuine!, headers: { ...genuine!.headers, "x-checksum": other } }))
        assert.strictEqual(refused._tag, "ProviderAuthFailed")
      }))

    it.scopedLive("a verified callback in Exirom's documented card shape (no refundId) is acknowledged, records nothing, and the refund moves by sync", () =>
      Effect.gen(function*() {
        const { refunds, sandbox } = yield* setup({ settleAfterMillis: 60_000 })
        const { refund } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 20001, amount: "10.00", reason: "customer_request", currency: "EUR" },
          idempotencyKey: "card-shaped-callback"
        })
        assert.strictEqual(refund.status, "pending")
        // The webhook-callback-transaction-lifecycle page's fields, with our refund id as requestId and a status
        // that is not Exirom's word about this refund.
        const body = `{"transactionId":20001,"requestId":${JSON.stringify(refund.id)},"mid":${JSON.stringify(sandbox.mid)},"transactionStatus":"FAILED",` +
          `"declineCode":5,"cardMask":"411111******1111","cardHolder":"JANE DOE","orderCurrency":"EUR","processedCurrency":"EUR",` +
          `"orderAmount":10.0,"processedAmount":10.0,"conversionRate":1.0,"callbackUrl":"https://merchant.example/exirom",` +
          `"billingDetails":{"country":"DE","city":"Berlin"},"order":{"orderId":"o-1","description":"refund"},"createdAt":"2026-03-27T10:00:00Z"}`
        const checksum = createHmac("sha256", sandbox.merchantSecret).update(`${sandbox.mid}|10.0|EUR|20001`).digest("base64")
        const callback = { headers: { "content-type": "application/json", "x-checksum": checksum }, body, query: { paymentMethod: "card" } }
        const results = yield* refunds.webhook("exirom", callback)
        assert.deepStrictEqual(results, [], "acknowledged, nothing recorded")
        const after = yield* refunds.get(refund.id)
        assert.strictEqual(after.status, "pending", "the unsigned FAILED is not recorded")
        assert.deepStrictEqual(after.events.map((e) => e.source), ["submit", "submit"])
        assert.isUndefined((yield* sandbox.stats).requests["info"], "nothing to confirm it with: no call to Exirom")
        // Still verified first: the same shape with a wrong checksum is refused.
        const forged = yield* Effect.flip(refunds.webhook("exirom", { ...callback, headers: { ...callback.headers, "x-checksum": createHmac("sha256", "not-the-secret").update("x").digest("base64") } }))
        assert.strictEqual(forged._tag, "ProviderAuthFailed")
        yield* sandbox.settle
        assert.strictEqual((yield* refunds.sync(refund.id)).status, "succeeded", "Exirom's own word, by sync")
      }))

    it.scopedLive("forged, tampered and unsigned callbacks are refused", () =>
      Effect.gen(function*() {
        const endpoint = yield* listener
        const { refunds, sandbox } = yield* setup({ callbacks: { delayMillis: 0 } })
        const { refund } = yield* refunds.create({
          provider: "exirom",
          request: { transactionId: 20001, amount: "10.00", reason: "x", callbackUrl: endpoint.url },
          idempotencyKey: "forged"
        })
        const [genuine] = yield* endpoint.waitFor(1)
        const tampered = { ...genuine!, body: genuine!.body.replace("\"totalAmount\":10.0", "\"totalAmount\":99.0") }
        const forged = { ...genuine!, headers: { ...genuine!.headers, "x-checksum": createHmac("sha256", "not-the-secret").update("x").digest("base64") } }
        const { "x-checksum": _, ...unsignedHeaders } = genuine!.headers
        for (const attempt of [tampered, forged, { ...genuine!, headers: unsignedHeaders }]) {
          const error = yield* Effect.flip(refunds.webhook("exirom", attempt))
          assert.strictEqual(error._tag, "ProviderAuthFailed")
          // A callback's failed signature, not a refusal of refundkit's credentials: anyone can send one.
          assert.strictEqual(error._tag === "ProviderAuthFailed" ? error.of : undefined, "callback")
          assert.notInclude(error.message, "refused refundkit's credentials")
          assert.notInclude(error.message, sandbox.merchantSecret)
        }
        assert.strictEqual((yield* refunds.get(refund.id)).status, "pending", "nothing forged was applied")
        const applied = yield* refunds.webhook("exirom", genuine!)
        assert.isTrue(applied[0]!.applied)
        const garbage = yield* Effect.flip(refunds.webhook("exirom", { headers: genuine!.headers, body: "not json" }))
        assert.strictEqual(garbage._tag, "InvalidRequest")
      }))
  })
})
