import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect } from "effect"
import * as Jwt from "../src/internal/jwt.js"
import { ExiromClient, ExiromConfig } from "../src/index.js"
import * as ExiromSandbox from "../src/sandbox.js"

const clientFor = (sandbox: ExiromSandbox.ExiromSandbox) =>
  ExiromClient.make(ExiromConfig.make({
    baseUrl: sandbox.baseUrl,
    merchantKey: sandbox.env.REFUNDKIT_EXIROM_MERCHANT_KEY!,
    merchantSecret: sandbox.merchantSecret,
    mid: sandbox.mid
  }))

const body = (sandbox: ExiromSandbox.ExiromSandbox, requestId: string) => ({
  requestId,
  mid: sandbox.mid,
  transactionId: 20001,
  amount: "1.00",
  reason: "customer_request"
})

describe("ExiromClient", () => {
  it("reads a JWT's exp and nothing from an opaque token", () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1_900_000_000 })).toString("base64url")
    assert.strictEqual(Jwt.expiresAt(`h.${payload}.s`), 1_900_000_000_000)
    assert.isUndefined(Jwt.expiresAt("opaque-token"))
    assert.isUndefined(Jwt.expiresAt("h.bm90IGpzb24.s"))
  })

  it.scopedLive("caches one token across calls and reads the refund, its status and its info", () =>
    Effect.gen(function*() {
      // Settles only when told to: on a loaded machine the default 200 ms can pass before the status call.
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 60_000 })
      const client = yield* clientFor(sandbox)
      const created = yield* client.refund(body(sandbox, "req-1"))
      const refundId = created.refundId!
      assert.strictEqual(yield* client.status(refundId), "NEW")
      yield* sandbox.settle
      const info = yield* client.info(refundId)
      assert.strictEqual(info.transactionStatus, "SUCCEED")
      assert.strictEqual(info.requestId, "req-1")
      assert.strictEqual((yield* sandbox.stats).requests["auth"], 1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a refused token is re-fetched exactly once, then the call fails with ProviderAuthFailed", () =>
    Effect.gen(function*() {
      // Tokens already past their exp: every call is answered 401.
      const sandbox = yield* ExiromSandbox.make({ tokenTtlSeconds: 0 })
      const client = yield* clientFor(sandbox)
      const error = yield* Effect.flip(client.refund(body(sandbox, "req-2")))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.requests["auth"], 2)
      assert.strictEqual(stats.requests["refund"], 2)
      assert.strictEqual(stats.refundsPerformed, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("wrong credentials are ProviderAuthFailed without the secret in the message", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make()
      const client = yield* ExiromClient.make(ExiromConfig.make({ baseUrl: sandbox.baseUrl, merchantKey: "k", merchantSecret: "wrong-secret-value", mid: sandbox.mid }))
      const error = yield* Effect.flip(client.refund(body(sandbox, "req-3")))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      assert.notInclude(error.message, "wrong-secret-value")
      assert.strictEqual((yield* sandbox.stats).requests["refund"] ?? 0, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a rate-limited call is ProviderUnavailable, not processed, with Retry-After", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make()
      const client = yield* clientFor(sandbox)
      yield* sandbox.faults.inject({ fault: { _tag: "RateLimited", retryAfterSeconds: 7 }, route: "refund" })
      const error = yield* Effect.flip(client.refund(body(sandbox, "req-4")))
      assert.strictEqual(error._tag, "ProviderUnavailable")
      if (error._tag === "ProviderUnavailable") {
        assert.strictEqual(error.retryAfterMillis, 7000)
        assert.isFalse(error.maybeProcessed)
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
