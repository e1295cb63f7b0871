import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { javaDouble } from "../src/internal/javaDouble.js"
import * as ExiromSandbox from "../src/sandbox.js"
import { listener } from "./support/listener.js"

interface Answer {
  readonly status: number
  readonly body: unknown
}

const call = (url: string, init: { method?: string; token?: string; body?: unknown } = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers: { "content-type": "application/json", ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }) },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) })
    })
    const text = await response.text()
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) as unknown }
  })

const start = (options?: ExiromSandbox.Options) =>
  Effect.gen(function*() {
    const sandbox = yield* ExiromSandbox.make(options)
    const auth = yield* call(`${sandbox.baseUrl}/v1/auth`, { body: { merchantKey: sandbox.env.REFUNDKIT_EXIROM_MERCHANT_KEY, merchantSecret: sandbox.merchantSecret } })
    assert.strictEqual(auth.status, 200)
    const token = auth.body as string
    const refund = (body: Record<string, unknown>) =>
      call(`${sandbox.baseUrl}/v1/refunds/card`, { token, body: { requestId: crypto.randomUUID(), mid: sandbox.mid, reason: "customer_request", ...body } })
    const get = (path: string) => call(`${sandbox.baseUrl}${path}`, { token })
    return { sandbox, token, refund, get }
  })

describe("Exirom sandbox", () => {
  it.scopedLive("answers each documented auth shape and refuses bad credentials", () =>
    Effect.gen(function*() {
      for (const [shape, check] of [["string", (b: unknown) => typeof b === "string"], ["token", (b: unknown) => typeof b === "object" && b !== null && "token" in b && !("merchantKey" in b)], ["merchantKey", (b: unknown) => typeof b === "object" && b !== null && "merchantKey" in b && "token" in b]] as const) {
        const sandbox = yield* ExiromSandbox.make({ authResponse: shape })
        const answer = yield* call(`${sandbox.baseUrl}/v1/auth`, { body: { merchantKey: "sandbox-merchant-key", merchantSecret: "sandbox-merchant-secret" } })
        assert.isTrue(check(answer.body), `${shape}: ${JSON.stringify(answer.body)}`)
      }
      const sandbox = yield* ExiromSandbox.make()
      assert.strictEqual((yield* call(`${sandbox.baseUrl}/v1/auth`, { body: { merchantKey: "sandbox-merchant-key", merchantSecret: "wrong" } })).status, 401)
      assert.strictEqual((yield* call(`${sandbox.baseUrl}/v1/refunds/card`, { body: {} })).status, 401, "no token")
    }))

  it("prints callback amounts as Java's Double.toString does (the values below are OpenJDK 17's)", () => {
    const java: ReadonlyArray<readonly [bigint, string]> = [
      [0n, "0.0"],
      [1n, "0.01"],
      [10n, "0.1"],
      [1050n, "10.5"],
      [20000n, "200.0"],
      [999999999n, "9999999.99"],
      [1000000000n, "1.0E7"],
      [1234567800n, "1.2345678E7"],
      [1234567890n, "1.23456789E7"],
      [1234567809n, "1.234567809E7"],
      [9999999999n, "9.999999999E7"],
      [10000000000n, "1.0E8"],
      [123456789012345n, "1.23456789012345E12"]
    ]
    for (const [minor, printed] of java) assert.strictEqual(javaDouble(minor), printed, String(minor))
  })

  it.scopedLive("its env holds every REFUNDKIT_EXIROM_* setting, pointing at itself", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ merchantKey: "mk", merchantSecret: "ms", mid: "m1" })
      assert.deepStrictEqual(sandbox.env, {
        REFUNDKIT_EXIROM_BASE_URL: `${sandbox.url}/api`,
        REFUNDKIT_EXIROM_MERCHANT_KEY: "mk",
        REFUNDKIT_EXIROM_MERCHANT_SECRET: "ms",
        REFUNDKIT_EXIROM_MID: "m1",
        REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE: "0"
      })
      assert.strictEqual(sandbox.provider, "exirom")
      assert.match(sandbox.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    }))

  it.scopedLive("refunds partially up to the captured amount; an over-refund is 200 FAILED with decline code 8", () =>
    Effect.gen(function*() {
      const { refund, sandbox } = yield* start()
      const first = yield* refund({ transactionId: 12345, amount: "60.00" })
      assert.strictEqual(first.status, 200)
      assert.deepInclude(first.body as object, { transactionStatus: "NEW", paymentType: "CARD" })
      assert.strictEqual((yield* refund({ transactionId: 12345, amount: "40.00" })).status, 200)
      const over = yield* refund({ transactionId: 12345, amount: "0.01" })
      assert.strictEqual(over.status, 200)
      assert.deepInclude(over.body as object, { transactionStatus: "FAILED", declineCode: ExiromSandbox.overRefundDeclineCode })
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 2)
      assert.deepStrictEqual(stats["refundsPerTransaction"], { "12345": 2 })
      assert.deepStrictEqual(stats["refundedPerTransaction"], { "12345": "100.00" })
    }))

  it.scopedLive("a repeated requestId replays the original answer without refunding again; another payload is 409", () =>
    Effect.gen(function*() {
      const { sandbox, token } = yield* start()
      const body = { requestId: "req_abc123", mid: sandbox.mid, transactionId: 20001, amount: "10.00", reason: "duplicate" }
      const url = `${sandbox.baseUrl}/v1/refunds/card`
      const first = yield* call(url, { token, body })
      const again = yield* call(url, { token, body })
      assert.deepStrictEqual(again, first)
      const other = yield* call(url, { token, body: { ...body, amount: "11.00" } })
      assert.strictEqual(other.status, 409)
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("validates like Exirom: 400 fields, 403 mid, 404 transaction, 422 unrefundable or too precise", () =>
    Effect.gen(function*() {
      const { refund } = yield* start({ autoSeed: false })
      const missing = yield* refund({ transactionId: 12345, amount: "1.00", reason: "" })
      assert.strictEqual(missing.status, 400)
      assert.include(JSON.stringify(missing.body), "reason")
      assert.strictEqual((yield* refund({ transactionId: 12345, amount: "1.00", reason: "   " })).status, 400, "a blank reason is missing")
      assert.strictEqual((yield* refund({ transactionId: "12345", amount: "1.00" })).status, 400)
      assert.strictEqual((yield* refund({ transactionId: 12345, amount: "1.00", mid: "someone_else" })).status, 403)
      assert.strictEqual((yield* refund({ transactionId: 1_000_001, amount: "1.00" })).status, 404, "auto-seeding is off")
      assert.strictEqual((yield* refund({ transactionId: 30001, amount: "1.00" })).status, 422, "FAILED payment")
      assert.strictEqual((yield* refund({ transactionId: 30002, amount: "1.00" })).status, 422, "PROCESSING payment")
      assert.strictEqual((yield* refund({ transactionId: 12345, amount: "1.005" })).status, 422)
    }))

  it.scopedLive("auto-seeds a numeric range and takes added transactions", () =>
    Effect.gen(function*() {
      const { refund, sandbox } = yield* start({ transactions: [], autoSeed: { from: 500, to: 20_499, amount: "5.00", currency: "GBP" } })
      for (const id of [500, 10_000, 20_499]) assert.strictEqual((yield* refund({ transactionId: id, amount: "5.00" })).status, 200)
      assert.strictEqual((yield* refund({ transactionId: 20_500, amount: "5.00" })).status, 404)
      yield* sandbox.addTransaction({ transactionId: 77, amount: "1.00", currency: "USD" })
      assert.strictEqual((yield* refund({ transactionId: 77, amount: "1.00" })).status, 200)
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 4)
    }))

  it.scopedLive("refunds settle NEW -> SUCCEED, visible through status and info", () =>
    Effect.gen(function*() {
      const { get, refund, sandbox } = yield* start({ settleAfterMillis: 60_000 })
      const created = (yield* refund({ transactionId: 20001, amount: "12.30", metadata: { order: "o-1" } })).body as { refundId: string }
      assert.strictEqual((yield* get(`/v1/refunds/card/status/${created.refundId}`)).body, "NEW")
      yield* sandbox.settle
      assert.strictEqual((yield* get(`/v1/refunds/card/status/${created.refundId}`)).body, "SUCCEED")
      const info = (yield* get(`/v1/refunds/card/info/${created.refundId}`)).body
      assert.deepInclude(info as object, { transactionId: 20001, refundId: created.refundId, transactionStatus: "SUCCEED", totalAmount: 12.3, declineCode: null, metadata: { order: "o-1" } })
      assert.strictEqual((yield* get("/v1/refunds/card/status/nope")).status, 404)
    }))

  it.scopedLive("charges back a refund that stands SUCCEED, through the control route or the handle, and sends its callback", () =>
    Effect.gen(function*() {
      const endpoint = yield* listener
      const { get, refund, sandbox } = yield* start({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0, duplicates: 1 } })
      const chargeback = (refundId: unknown) => call(`${sandbox.url}${ExiromSandbox.chargebackPath}`, { body: { refundId } })
      const created = (yield* refund({ transactionId: 20001, amount: "12.30", callbackUrl: endpoint.url })).body as { refundId: string }
      assert.deepInclude((yield* chargeback(created.refundId)).body as object, { status: 409, message: `Refund ${created.refundId} is NEW: only a refund that stands SUCCEED can be charged back` })
      assert.strictEqual((yield* chargeback("nope")).status, 404)
      assert.strictEqual((yield* chargeback(12)).status, 400, "a refundId that is no string")
      yield* sandbox.settle
      yield* endpoint.waitFor(2)

      const answer = yield* chargeback(created.refundId)
      assert.strictEqual(answer.status, 200)
      const { deliveries } = answer.body as { deliveries: ReadonlyArray<ExiromSandbox.Delivery> }
      assert.deepStrictEqual(deliveries.map((d) => [d.transactionStatus, d.httpStatus]), [["CHARGEBACK", 200], ["CHARGEBACK", 200]])
      // Delivered before the answer: the listener holds them already.
      assert.deepStrictEqual(endpoint.received.map((c) => (JSON.parse(c.body) as { transactionStatus: string }).transactionStatus), ["SUCCEED", "SUCCEED", "CHARGEBACK", "CHARGEBACK"])
      assert.strictEqual((yield* get(`/v1/refunds/card/status/${created.refundId}`)).body, "CHARGEBACK")
      assert.deepInclude((yield* get(`/v1/refunds/card/info/${created.refundId}`)).body as object, { transactionStatus: "CHARGEBACK", declineCode: null })
      assert.strictEqual((yield* chargeback(created.refundId)).status, 409, "charged back once")
      // The money stays refunded: the dispute paid on top of it.
      assert.deepStrictEqual((yield* sandbox.stats)["refundedPerTransaction"], { "20001": "12.30" })

      // The handle does the same for a test in this process; a refund without a callbackUrl hears nothing.
      const quiet = (yield* refund({ transactionId: 12345, amount: "1.00" })).body as { refundId: string }
      yield* sandbox.settle
      assert.deepStrictEqual(yield* sandbox.chargeBack(quiet.refundId), [])
      assert.strictEqual((yield* get(`/v1/refunds/card/status/${quiet.refundId}`)).body, "CHARGEBACK")
    }))

  it.scopedLive("reverses a refund that stands SUCCEED: FAILED with a decline code, the money back with the merchant, and its callback sent", () =>
    Effect.gen(function*() {
      const endpoint = yield* listener
      const { get, refund, sandbox } = yield* start({ settleAfterMillis: 60_000, callbacks: { delayMillis: 0 } })
      const reversal = (body: unknown) => call(`${sandbox.url}${ExiromSandbox.reversalPath}`, { body })
      // 250.00 EUR captured: 200.00 refunded leaves 50.00.
      const created = (yield* refund({ transactionId: 20001, amount: "200.00", callbackUrl: endpoint.url })).body as { refundId: string }
      assert.deepInclude((yield* reversal({ refundId: created.refundId })).body as object, { status: 409, message: `Refund ${created.refundId} is NEW: only a refund that stands SUCCEED can be reversed` })
      assert.strictEqual((yield* reversal({ refundId: "nope" })).status, 404)
      assert.strictEqual((yield* reversal({ refundId: created.refundId, declineCode: "2" })).status, 400, "a declineCode that is no integer")
      yield* sandbox.settle
      yield* endpoint.waitFor(1)

      const answer = yield* reversal({ refundId: created.refundId })
      assert.strictEqual(answer.status, 200)
      const body = answer.body as { transactionStatus: string; declineCode: number; deliveries: ReadonlyArray<ExiromSandbox.Delivery> }
      assert.deepStrictEqual([body.transactionStatus, body.declineCode], ["FAILED", ExiromSandbox.reversalDeclineCode])
      assert.deepStrictEqual(body.deliveries.map((d) => [d.transactionStatus, d.httpStatus]), [["FAILED", 200]])
      const sent = JSON.parse(endpoint.received.at(-1)!.body) as { transactionStatus: string; declineCode: number | null }
      assert.deepStrictEqual([sent.transactionStatus, sent.declineCode], ["FAILED", 2])
      assert.strictEqual((yield* get(`/v1/refunds/card/status/${created.refundId}`)).body, "FAILED")
      assert.deepInclude((yield* get(`/v1/refunds/card/info/${created.refundId}`)).body as object, { transactionStatus: "FAILED", declineCode: 2 })
      assert.strictEqual((yield* reversal({ refundId: created.refundId })).status, 409, "reversed once")
      // The money is back: the payment has 250.00 to refund again, and a new refund of it is made.
      assert.deepStrictEqual((yield* sandbox.stats)["refundedPerTransaction"], {})
      const again = (yield* refund({ transactionId: 20001, amount: "250.00" })).body as { transactionStatus: string }
      assert.notStrictEqual(again.transactionStatus, "FAILED")

      // The handle does the same for a test in this process, with a decline code of its choosing.
      const quiet = (yield* refund({ transactionId: 12345, amount: "1.00" })).body as { refundId: string }
      yield* sandbox.settle
      assert.deepStrictEqual(yield* sandbox.reverse(quiet.refundId, 5), [])
      assert.deepInclude((yield* get(`/v1/refunds/card/info/${quiet.refundId}`)).body as object, { transactionStatus: "FAILED", declineCode: 5 })
    }))

  it.scopedLive("an expired token is refused until a new one is fetched", () =>
    Effect.gen(function*() {
      const { get, refund, sandbox } = yield* start()
      const created = (yield* refund({ transactionId: 20001, amount: "1.00" })).body as { refundId: string }
      yield* sandbox.expireTokens
      assert.strictEqual((yield* get(`/v1/refunds/card/status/${created.refundId}`)).status, 401)
      const short = yield* start({ tokenTtlSeconds: 0 })
      assert.strictEqual((yield* short.refund({ transactionId: 20001, amount: "1.00" })).status, 401, "a token past its exp")
    }))
})
