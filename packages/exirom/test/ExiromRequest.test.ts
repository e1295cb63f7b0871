import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, JSONSchema, Schema } from "effect"
import type { Provider } from "@refundkit/core"
import { Exirom, ExiromConfig, ExiromRequest, ExiromWire } from "../src/index.js"

// The example request of Exirom's Process Refund reference (seed 001).
const seedRequest = {
  requestId: "req_abc123",
  mid: "merchant_123",
  transactionId: 12345,
  amount: "100.00",
  reason: "customer_request",
  callbackUrl: "https://yourserver.com/callback",
  metadata: { key1: "value1" }
}
const { requestId: _, ...seedInput } = seedRequest

const provider: Effect.Effect<Provider.Provider> = Exirom.make(
  ExiromConfig.make({ baseUrl: "http://127.0.0.1:9/api", merchantKey: "k", merchantSecret: "s", mid: "merchant_123" })
).pipe(Effect.provide(NodeHttpClient.layerUndici))

const issues = (input: unknown) =>
  Effect.map(Effect.flatMap(provider, (p) => Effect.flip(p.prepare(input))), (error) => error.issues)

const messageAt = (input: unknown, path: string) =>
  Effect.map(issues(input), (list) => {
    const found = list.find((issue) => issue.path === path)
    assert.isDefined(found, `expected an issue at ${path}, got ${JSON.stringify(list)}`)
    return found!.message
  })

const valid = { transactionId: 12345, amount: "10.00", reason: "customer_request" }

describe("ExiromRequest", () => {
  it.effect("the seed's example request decodes and is sent exactly as the reference shows it", () =>
    Effect.gen(function*() {
      const request = Schema.decodeUnknownSync(ExiromRequest.ExiromRequest)(seedInput)
      const body = Exirom.wireBody(request, seedRequest.requestId, { mid: "ignored_default" })
      assert.deepStrictEqual(Schema.encodeSync(ExiromWire.RefundBody)(body), seedRequest)
      assert.strictEqual(JSON.stringify(body), JSON.stringify(seedRequest))
      const prepared = yield* Effect.flatMap(provider, (p) => p.prepare(seedInput))
      assert.deepStrictEqual(prepared.targets, [{ target: "12345", amount: "100.00" }])
    }))

  it.effect("a refund's target is its transaction id's digits, up to the largest id accepted", () =>
    Effect.gen(function*() {
      const p = yield* provider
      for (const [id, digits] of [[1, "1"], [12345, "12345"], ["0012345", "12345"], [9007199254740991, "9007199254740991"]] as const) {
        const prepared = yield* p.prepare({ ...valid, transactionId: id })
        assert.deepStrictEqual(prepared.targets, [{ target: digits, amount: "10.00" }], `transactionId ${id}`)
      }
    }))

  it.effect("amount is an exact decimal string: normalised to two places, never rounded", () =>
    Effect.gen(function*() {
      const decode = Schema.decodeUnknownSync(ExiromRequest.ExiromRequest)
      assert.strictEqual(decode({ ...valid, amount: "10.5" }).amount, "10.50")
      assert.strictEqual(decode({ ...valid, amount: "7" }).amount, "7.00")
      assert.include(yield* messageAt({ ...valid, amount: "10.005" }, "amount"), "at most 2 decimal places (it is not rounded)")
      assert.include(yield* messageAt({ ...valid, amount: "0.00" }, "amount"), "greater than zero")
      assert.include(yield* messageAt({ ...valid, amount: "ten" }, "amount"), "decimal string")
      assert.include(yield* messageAt({ ...valid, amount: 10 }, "amount"), "string")
    }))

  it.effect("a bad optional field is one issue naming its rule, not also \"Expected undefined\"", () =>
    Effect.gen(function*() {
      for (const [field, value] of [["currency", "jpy"], ["callbackUrl", "ftp://a/b"], ["metadata", { order: 1 }]] as const) {
        const list = yield* issues({ ...valid, [field]: value })
        assert.isFalse(list.some((issue) => issue.message.startsWith("Expected undefined")), `${field}: ${JSON.stringify(list)}`)
        assert.strictEqual(list.length, 1, `${field}: ${JSON.stringify(list)}`)
      }
    }))

  it.effect("amount must be exact in the stated currency", () =>
    Effect.gen(function*() {
      assert.include(yield* messageAt({ ...valid, amount: "100.50", currency: "JPY" }, "amount"), "not an exact amount of JPY")
      const decoded = Schema.decodeUnknownSync(ExiromRequest.ExiromRequest)({ ...valid, amount: "100", currency: "JPY" })
      assert.strictEqual(decoded.amount, "100.00")
      assert.include(yield* messageAt({ ...valid, currency: "XYZ" }, "currency"), "ISO 4217")
    }))

  it.effect("transactionId is Exirom's positive integer; a digit string is accepted and sent as the integer", () =>
    Effect.gen(function*() {
      const decoded = Schema.decodeUnknownSync(ExiromRequest.ExiromRequest)({ ...valid, transactionId: "12345" })
      assert.strictEqual(decoded.transactionId, 12345)
      for (const bad of ["txn_abc123", 1.5, -3, 0]) {
        assert.include(yield* messageAt({ ...valid, transactionId: bad }, "transactionId"), "positive integer transaction id")
      }
      // A whole number too large to send exactly is told that rule, not that it is no integer.
      for (const large of ["9007199254740993", "12345678901234567890", 2 ** 60]) {
        assert.include(yield* messageAt({ ...valid, transactionId: large }, "transactionId"), "is larger than 9007199254740991, the largest integer refundkit sends exactly")
      }
      assert.include((yield* issues({ amount: "1.00", reason: "x" })).map((i) => i.path).join(","), "transactionId")
    }))

  it.effect("reason, mid, callbackUrl and metadata follow their rules", () =>
    Effect.gen(function*() {
      assert.include(yield* messageAt({ ...valid, reason: "  " }, "reason"), "reason must not be empty")
      assert.include(yield* messageAt({ ...valid, mid: "" }, "mid"), "mid must not be empty")
      assert.include(yield* messageAt({ ...valid, callbackUrl: "/relative" }, "callbackUrl"), "absolute http(s) URL")
      assert.include(yield* messageAt({ ...valid, callbackUrl: "ftp://x.example/cb" }, "callbackUrl"), "absolute http(s) URL")
      assert.isNotEmpty(yield* issues({ ...valid, metadata: { n: 1 } }))
    }))

  it.effect("requestId is refundkit's to fill in, and unknown fields are refused", () =>
    Effect.gen(function*() {
      assert.include(yield* messageAt(seedRequest, "requestId"), "filled in by refundkit")
      assert.include(yield* messageAt({ ...valid, apiKey: "x" }, "apiKey"), "unexpected")
    }))

  it.effect("an unknown field's message lists the fields a caller may send, not requestId, which is always refused", () =>
    Effect.gen(function*() {
      const sendable = "\"transactionId\" | \"amount\" | \"reason\" | \"callbackUrl\" | \"metadata\" | \"mid\" | \"currency\""
      assert.deepStrictEqual(yield* issues({ ...valid, foo: 1 }), [{ path: "foo", message: `is unexpected, expected: ${sendable}` }])
      const error = yield* Effect.flip(Effect.flatMap(provider, (p) => p.prepare({ ...valid, foo: 1 })))
      assert.notInclude(error.message, "requestId")
    }))

  it.effect("the provider's request JSON Schema (bulk's header check, the gateway's /v1/providers) offers no requestId and still refuses it", () =>
    Effect.gen(function*() {
      const schema = (yield* provider).requestJsonSchema as { properties?: Record<string, unknown>; additionalProperties?: unknown }
      assert.deepStrictEqual(Object.keys(schema.properties ?? {}), ["transactionId", "amount", "reason", "callbackUrl", "metadata", "mid", "currency"])
      assert.strictEqual(schema.additionalProperties, false)
    }))

  it("the request JSON Schema names Exirom's fields", () => {
    const schema = JSONSchema.make(Schema.encodedSchema(ExiromRequest.ExiromRequest)) as { properties?: Record<string, unknown>; required?: Array<string> }
    assert.includeMembers(Object.keys(schema.properties ?? {}), ["transactionId", "amount", "reason", "callbackUrl", "metadata", "mid", "currency"])
    assert.sameMembers(schema.required ?? [], ["transactionId", "amount", "reason"])
  })
})
