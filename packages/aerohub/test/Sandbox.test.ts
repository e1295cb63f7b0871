import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { readFileSync } from "node:fs"
import { AeroHubConfig } from "../src/index.js"
import * as AeroHubSandbox from "../src/sandbox.js"

const seedSample: Record<string, unknown> = JSON.parse(readFileSync(new URL("./fixtures/seed-sample-request.json", import.meta.url), "utf8"))

const post = (url: string, body: unknown) =>
  Effect.promise(() =>
    fetch(`${url}${AeroHubConfig.updateRefundPath}`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) })
      .then(async (r) => ({ status: r.status, body: (await r.json()) as { code: number; msg: string } }))
  )

const requestId = "0123456789abcdef0123456789abcdef"

const send = (sandbox: AeroHubSandbox.AeroHubSandbox, fields: Record<string, unknown>) =>
  post(sandbox.url, { apiKey: sandbox.apiKey, requestId, ...fields })

const order = (n: number) => ({ refundOrderNo: `FBRF${900000 + n}`, purchaseOrderNo: `F${100000 + n}` })
const quote = [{ amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: 100 }] }]

describe("AeroHub sandbox", () => {
  it.scopedLive("answers an accepted update as AeroHub does and exposes its settings in env", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      assert.strictEqual(sandbox.provider, "aerohub")
      assert.deepStrictEqual(sandbox.env, {
        REFUNDKIT_AEROHUB_BASE_URL: sandbox.url,
        REFUNDKIT_AEROHUB_API_KEY: AeroHubSandbox.defaultApiKey,
        REFUNDKIT_AEROHUB_REJECT_REASONS: "en"
      })
      const answer = yield* send(sandbox, { ...order(1), refundStatus: "PROCESSING" })
      assert.deepStrictEqual(answer, { status: 200, body: { code: 200, msg: "Successful" } })
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["update_refund"], 1)
      assert.strictEqual(stats["updatesAccepted"], 1)
      assert.deepStrictEqual(stats["orders"], { FBRF900001: { status: "PROCESSING", transitions: ["NEW -> PROCESSING"], repeats: 0 } })
    }))

  it.scopedLive("refuses a wrong or missing apiKey with code 1000, HTTP 200", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      assert.deepStrictEqual(yield* post(sandbox.url, { apiKey: "wrong", requestId, ...order(1), refundStatus: "PROCESSING" }), { status: 200, body: { code: 1000, msg: "Invalid API Key" } })
      assert.strictEqual((yield* post(sandbox.url, { requestId, ...order(1), refundStatus: "PROCESSING" })).body.code, 1000)
      assert.isTrue(Option.isNone(yield* sandbox.order("FBRF900001")), "nothing was created")
    }))

  it.scopedLive("requires a 32-character requestId", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      const answer = yield* post(sandbox.url, { apiKey: sandbox.apiKey, requestId: "B2B171eAv8YTQ", ...order(1), refundStatus: "PROCESSING" })
      assert.deepStrictEqual(answer.body, { code: 400, msg: "Failed: requestId must be 32 characters, got 13" })
    }))

  it.scopedLive("validates field types and the conditional rules", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      const missing = yield* send(sandbox, { ...order(1), refundStatus: "QUOTE_COMPLETED" })
      assert.strictEqual(missing.body.code, 400)
      assert.include(missing.body.msg, "refundFeePricing is required when refundStatus is QUOTE_COMPLETED")
      const reason = yield* send(sandbox, { ...order(1), refundStatus: "CLOSED", rejectReason: 7 })
      assert.include(reason.body.msg, "flightNumber is required when rejectReason is 7")
      const stringMoney = yield* send(sandbox, { ...order(1), refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "10.00" })
      assert.include(stringMoney.body.msg, "refundableAmount", "AeroHub types refundableAmount as float")
      const status = yield* send(sandbox, { ...order(1), refundStatus: "QUOTE_ACCEPTED" })
      assert.include(status.body.msg, "refundStatus: must be one of QUOTE_COMPLETED")
      assert.strictEqual((yield* send(sandbox, { ...order(1), refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote })).body.code, 200)
      assert.strictEqual((yield* post(sandbox.url, "{not json")).body.code, 400)
    }))

  it.scopedLive("holds seeded orders and any FBRF order; checks the purchase order", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      const unknown = yield* send(sandbox, { refundOrderNo: "XX123", purchaseOrderNo: "F1", refundStatus: "PROCESSING" })
      assert.deepStrictEqual(unknown.body, { code: 400, msg: "Failed: refund order XX123 does not exist" })
      const wrongPurchase = yield* send(sandbox, { refundOrderNo: "FBRF2403112526", purchaseOrderNo: "F1", refundStatus: "PROCESSING" })
      assert.include(wrongPurchase.body.msg, "belongs to purchase order F1745553257834618888")
      const withdrawn = yield* send(sandbox, { refundOrderNo: "FBRF2403110003", purchaseOrderNo: "F1745553257834610003", refundStatus: "CLOSED" })
      assert.include(withdrawn.body.msg, "withdrawn by the customer")
      assert.strictEqual((yield* send(sandbox, { ...order(5), refundStatus: "PROCESSING" })).body.code, 200)
      assert.include((yield* send(sandbox, { refundOrderNo: order(5).refundOrderNo, purchaseOrderNo: "F999", refundStatus: "PROCESSING" })).body.msg, "belongs to purchase order")
    }))

  it.scopedLive("enforces the state machine, counts real state changes, and makes repeats idempotent", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      const o = order(2)
      assert.include((yield* send(sandbox, { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 250 }] })).body.msg, "first update must be one of")
      for (const step of [{ refundStatus: "PROCESSING" }, { refundStatus: "REFUNDED_PENDING" }, { refundStatus: "REFUNDED", refundAmount: [{ refundCost: 250 }] }]) {
        assert.strictEqual((yield* send(sandbox, { ...o, ...step })).body.code, 200, step.refundStatus)
      }
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
      assert.strictEqual((yield* send(sandbox, { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 250 }] })).body.code, 200, "a repeat is accepted")
      assert.include((yield* send(sandbox, { ...o, refundStatus: "CLOSED" })).body.msg, "nothing leaves REFUNDED")
      const after = yield* sandbox.order(o.refundOrderNo)
      assert.deepStrictEqual(Option.getOrUndefined(after)?.transitions, ["NEW -> PROCESSING", "PROCESSING -> REFUNDED_PENDING", "REFUNDED_PENDING -> REFUNDED"])
      assert.strictEqual(Option.getOrUndefined(after)?.status, "REFUNDED")
      assert.strictEqual(Option.getOrUndefined(after)?.repeats, 1)
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 1, "the repeat did not refund twice")
      assert.strictEqual(stats["updatesRefused"], 2)
      // A seeded order already reimbursed: repeating REFUNDED changes nothing, anything else is refused.
      const seeded = { refundOrderNo: "FBRF2403110001", purchaseOrderNo: "F1745553257834610001" }
      assert.strictEqual((yield* send(sandbox, { ...seeded, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 1 }] })).body.code, 200)
      assert.include((yield* send(sandbox, { ...seeded, refundStatus: "PROCESSING" })).body.msg, "nothing leaves REFUNDED")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
      assert.include((yield* send(sandbox, { ...order(3), refundStatus: "PROCESSING" })).body.msg, "Successful")
      assert.include((yield* send(sandbox, { ...order(3), refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote })).body.msg, "PROCESSING cannot be undone")
    }))

  it.scopedLive("reads AeroHub's documents on its own: refundkit's stricter rules are the plugin's, not AeroHub's", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      // What the documents leave open, and refundkit refuses before sending (its README, "Choices"):
      // skipping REFUNDED_PENDING, and a quote refused after it was given.
      const skip = order(10)
      assert.strictEqual((yield* send(sandbox, { ...skip, refundStatus: "PROCESSING" })).body.code, 200)
      assert.strictEqual((yield* send(sandbox, { ...skip, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 1 }] })).body.code, 200)
      const requote = order(11)
      assert.strictEqual((yield* send(sandbox, { ...requote, refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote })).body.code, 200)
      assert.strictEqual((yield* send(sandbox, { ...requote, refundStatus: "QUOTE_REJECTED" })).body.code, 200)
      // Rules refundkit adds to the table: a day that exists, two-place amounts, a voucher's currency.
      assert.strictEqual((yield* send(sandbox, { ...order(12), refundStatus: "CLOSED", rejectReason: 1, refundDate: "2024-02-30" })).body.code, 200)
      assert.strictEqual((yield* send(sandbox, { ...order(13), refundStatus: "CLOSED", rejectReason: 6, refundableAmount: 1.005 })).body.code, 200)
      // What the documents do say is AeroHub's too: PROCESSING first and for good, nothing after a final state.
      assert.include((yield* send(sandbox, { ...order(14), refundStatus: "REFUNDED_PENDING" })).body.msg, "its refund starts with PROCESSING")
      const back = order(15)
      assert.strictEqual((yield* send(sandbox, { ...back, refundStatus: "PROCESSING" })).body.code, 200)
      assert.include((yield* send(sandbox, { ...back, refundStatus: "QUOTE_REJECTED" })).body.msg, "PROCESSING cannot be undone")
      assert.strictEqual((yield* send(sandbox, { ...back, refundStatus: "CLOSED" })).body.code, 200)
      assert.include((yield* send(sandbox, { ...back, refundStatus: "PROCESSING" })).body.msg, "nothing leaves REFUNDED, CLOSED or QUOTE_REJECTED")
      assert.include((yield* send(sandbox, { ...order(16), refundStatus: "CLOSED", rejectReason: 1 })).body.msg, "refundDate is required when rejectReason is 1")
      assert.include((yield* send(sandbox, { ...order(16), refundStatus: "REFUNDED", refundAmount: [] })).body.msg, "refundAmount is required when refundStatus is REFUNDED")
    }))

  it.scopedLive("AeroHub's own sample request is refused: a 13-character requestId, then REFUNDED as a first update", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      assert.strictEqual((yield* post(sandbox.url, seedSample)).body.code, 1000, "the sample's apiKey is a placeholder")
      assert.include((yield* post(sandbox.url, { ...seedSample, apiKey: sandbox.apiKey })).body.msg, "requestId must be 32 characters, got 13")
      const answer = yield* post(sandbox.url, { ...seedSample, apiKey: sandbox.apiKey, requestId })
      assert.include(answer.body.msg, "first update must be one of")
    }))

  it.scopedLive("the Chinese code set is 20-35 when configured so", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make({ rejectReasons: "cn" })
      assert.strictEqual(sandbox.env["REFUNDKIT_AEROHUB_REJECT_REASONS"], "cn")
      assert.include((yield* send(sandbox, { ...order(1), refundStatus: "CLOSED", rejectReason: 6 })).body.msg, "Chinese page's codes")
      assert.include((yield* send(sandbox, { ...order(1), refundStatus: "CLOSED", rejectReason: 27 })).body.msg, "refundDate is required when rejectReason is 27")
      assert.strictEqual((yield* send(sandbox, { ...order(1), refundStatus: "CLOSED", rejectReason: 32 })).body.code, 200)
    }))

  it.scopedLive("other paths are 404, and the ExpiredToken fault changes nothing (AeroHub has no token)", () =>
    Effect.gen(function*() {
      const sandbox = yield* AeroHubSandbox.make()
      const other = yield* Effect.promise(() => fetch(`${sandbox.url}/supplier/v1/api/other`, { method: "POST" }))
      assert.strictEqual(other.status, 404)
      yield* sandbox.faults.inject({ fault: { _tag: "ExpiredToken" }, route: "update_refund" })
      assert.strictEqual((yield* send(sandbox, { ...order(1), refundStatus: "PROCESSING" })).body.code, 200)
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["other"], 1)
    }))
})
