import { assert, describe, it } from "@effect/vitest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import * as Sandbox from "../src/Sandbox.js"

let performed = 0
const start = Sandbox.serve(Effect.sync(() => {
  performed++
  return HttpServerResponse.unsafeJson({ ok: true })
}), {
  routeOf: (path) => (path.startsWith("/refund") ? "refund" : "other"),
  expireTokens: Effect.void,
  stats: Effect.sync(() => ({ refundsPerformed: performed }))
})

const get = (url: string) => Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, body: await r.text(), retryAfter: r.headers.get("retry-after") }), (e: Error & { cause?: { code?: string } }) => ({ status: 0, body: e.cause?.code ?? e.message, retryAfter: null })))

describe("Sandbox", () => {
  it.scopedLive("serves on 127.0.0.1 and injects each fault on its route, then recovers", () =>
    Effect.gen(function*() {
      performed = 0
      const server = yield* start
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.strictEqual((yield* get(`${server.url}/refund`)).status, 200)

      yield* server.faults.inject({ fault: { _tag: "ServerError", status: 503 }, route: "refund" })
      assert.strictEqual((yield* get(`${server.url}/other`)).status, 200, "another route is untouched")
      assert.strictEqual((yield* get(`${server.url}/refund`)).status, 503)

      yield* server.faults.inject({ fault: { _tag: "Reset" }, route: "refund" })
      assert.strictEqual((yield* get(`${server.url}/refund`)).status, 0)

      yield* server.faults.inject({ fault: { _tag: "RateLimited", retryAfterSeconds: 7 } })
      const limited = yield* get(`${server.url}/refund`)
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(limited.retryAfter, "7")

      const unprocessed = performed
      yield* server.faults.inject({ fault: { _tag: "Malformed" } })
      const malformed = (yield* get(`${server.url}/refund`)).body
      assert.throws(() => JSON.parse(malformed) as unknown)
      yield* server.faults.inject({ fault: { _tag: "SchemaViolation" } })
      assert.deepStrictEqual(JSON.parse((yield* get(`${server.url}/refund`)).body), { unexpected: "shape" })
      assert.strictEqual(performed, unprocessed, "without afterProcessing nothing was done")

      // The same answers after the request was handled: done, and answered in words nobody can read.
      yield* server.faults.inject({ fault: { _tag: "Malformed", afterProcessing: true }, route: "refund" })
      const garbled = yield* get(`${server.url}/refund`)
      assert.deepStrictEqual([garbled.status, garbled.body], [200, malformed])
      yield* server.faults.inject({ fault: { _tag: "SchemaViolation", afterProcessing: true }, route: "refund" })
      assert.deepStrictEqual(JSON.parse((yield* get(`${server.url}/refund`)).body), { unexpected: "shape" })
      assert.strictEqual(performed, unprocessed + 2, "with afterProcessing each was done")

      const before = performed
      yield* server.faults.inject({ fault: { _tag: "LostResponse" }, route: "refund" })
      assert.strictEqual((yield* get(`${server.url}/refund`)).status, 0)
      assert.strictEqual(performed, before + 1, "a lost response was still processed")

      assert.strictEqual((yield* get(`${server.url}/refund`)).status, 200)
      const stats = yield* server.stats
      assert.strictEqual(stats.requests["refund"], 10)
      assert.strictEqual(stats.requests["other"], 1)
    }))

  it.scopedLive("applies probabilistic faults reproducibly from a seed and takes rules over HTTP", () =>
    Effect.gen(function*() {
      const server = yield* start
      const run = Effect.gen(function*() {
        yield* server.faults.clear
        yield* server.faults.seed(42)
        yield* server.faults.inject({ fault: { _tag: "ServerError", status: 500 }, route: "refund", times: 0, probability: 0.3 })
        const statuses: Array<number> = []
        for (let i = 0; i < 40; i++) statuses.push((yield* get(`${server.url}/refund`)).status)
        return statuses
      })
      const a = yield* run
      const b = yield* run
      assert.deepStrictEqual(a, b)
      const failures = a.filter((s) => s === 500).length
      assert.isTrue(failures > 3 && failures < 25, `${failures} of 40 failed`)

      yield* Effect.promise(() => fetch(`${server.url}/__sandbox/faults`, { method: "DELETE" }))
      yield* Effect.promise(() => fetch(`${server.url}/__sandbox/faults`, { method: "POST", body: JSON.stringify({ fault: { _tag: "ServerError", status: 502 } }) }))
      assert.strictEqual((yield* get(`${server.url}/refund`)).status, 502)
      const stats = JSON.parse((yield* get(`${server.url}/__sandbox/stats`)).body) as Sandbox.Stats
      assert.strictEqual(stats.requests["refund"], 81)
      const counts = JSON.parse((yield* get(`${server.url}/__sandbox/requests`)).body) as unknown
      assert.deepStrictEqual(counts, { requests: stats.requests })
    }))
})
