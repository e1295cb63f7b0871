import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Providers from "@refundkit/core/Providers"
import { ConfigProvider, Effect, Either, Layer, Redacted } from "effect"
import * as Airalo from "../src/Airalo.js"
import * as AiraloConfig from "../src/AiraloConfig.js"

const load = (env: Record<string, string>) => Effect.withConfigProvider(AiraloConfig.config, ConfigProvider.fromMap(new Map(Object.entries(env))))

const credentials = { REFUNDKIT_AIRALO_CLIENT_ID: "id", REFUNDKIT_AIRALO_CLIENT_SECRET: "shh-secret" }

describe("AiraloConfig", () => {
  it.effect("defaults: production base URL and 1 refund call per 5 minutes; the secret stays redacted", () =>
    Effect.gen(function*() {
      const config = yield* load(credentials)
      assert.strictEqual(config.baseUrl, "https://partners-api.airalo.com/v2")
      assert.deepStrictEqual(config.rateLimit, { requests: 1, perMillis: 300_000 })
      assert.strictEqual(Redacted.value(config.clientSecret), "shh-secret")
      assert.isFalse(String(config.clientSecret).includes("shh-secret"))
      assert.isFalse(JSON.stringify(config).includes("shh-secret"))
    }))

  it.effect("reads the base URL without a trailing slash and the rate limit in its documented format", () =>
    Effect.gen(function*() {
      const config = yield* load({ ...credentials, REFUNDKIT_AIRALO_BASE_URL: "http://127.0.0.1:9999/v2/", REFUNDKIT_AIRALO_RATE_LIMIT: "5/1m" })
      assert.strictEqual(config.baseUrl, "http://127.0.0.1:9999/v2")
      assert.deepStrictEqual(config.rateLimit, { requests: 5, perMillis: 60_000 })
      const off = yield* load({ ...credentials, REFUNDKIT_AIRALO_RATE_LIMIT: "off" })
      assert.isUndefined(off.rateLimit)
    }))

  it("parses and prints rate limits", () => {
    const cases: ReadonlyArray<[string, AiraloConfig.RateLimit | undefined]> = [
      ["1/5m", { requests: 1, perMillis: 300_000 }],
      ["5/1m", { requests: 5, perMillis: 60_000 }],
      ["5/m", { requests: 5, perMillis: 60_000 }],
      [" 10 / 1s ", { requests: 10, perMillis: 1_000 }],
      ["2/500ms", { requests: 2, perMillis: 500 }],
      ["100/1h", { requests: 100, perMillis: 3_600_000 }],
      ["OFF", undefined]
    ]
    for (const [text, limit] of cases) assert.deepStrictEqual(AiraloConfig.parseRateLimit(text), Either.right(limit), text)
    for (const text of ["", "5", "5 per minute", "0/1m", "1/0s", "1/5d", "-1/1m", "1.5/1m"]) {
      assert.isTrue(Either.isLeft(AiraloConfig.parseRateLimit(text)), text)
    }
    assert.strictEqual(AiraloConfig.formatRateLimit({ requests: 1, perMillis: 300_000 }), "1/5m")
    assert.strictEqual(AiraloConfig.formatRateLimit({ requests: 3, perMillis: 90_000 }), "3/90s")
    assert.strictEqual(AiraloConfig.formatRateLimit({ requests: 2, perMillis: 1_500 }), "2/1500ms")
    assert.strictEqual(AiraloConfig.formatRateLimit(undefined), "off")
  })

  it.effect("a malformed setting is a ConfigError naming the variable and the expected format", () =>
    Effect.gen(function*() {
      const rate = yield* Effect.flip(load({ ...credentials, REFUNDKIT_AIRALO_RATE_LIMIT: "5 per minute" }))
      assert.include(String(rate), "REFUNDKIT_AIRALO_RATE_LIMIT")
      assert.include(String(rate), "\"1/5m\"")
      const url = yield* Effect.flip(load({ ...credentials, REFUNDKIT_AIRALO_BASE_URL: "partners-api.airalo.com" }))
      assert.include(String(url), "REFUNDKIT_AIRALO_BASE_URL")
      const missing = yield* Effect.flip(load({ REFUNDKIT_AIRALO_CLIENT_ID: "id" }))
      assert.include(String(missing), "REFUNDKIT_AIRALO_CLIENT_SECRET")
    }))
})

describe("Airalo.layerConfig", () => {
  it.scoped("a malformed setting fails the plugin's Layer with a ConfigurationError naming it", () =>
    Effect.gen(function*() {
      const layer = Airalo.layerConfig.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...credentials, REFUNDKIT_AIRALO_RATE_LIMIT: "fast" })))))
      )
      const error = yield* Effect.flip(Layer.build(Layer.provideMerge(layer, Providers.layer).pipe(Layer.provide(NodeHttpClient.layerUndici))))
      assert.strictEqual(error._tag, "ConfigurationError")
      assert.include(error.message, "REFUNDKIT_AIRALO_RATE_LIMIT")
      assert.isFalse(error.message.includes("shh-secret"))
    }))
})
