import * as Headers from "@effect/platform/Headers"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Redacted, Schema, TestClock } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as ProviderHttp from "../src/ProviderHttp.js"
import { OutcomeUnknown, ProviderAuthFailed, ProviderUnavailable, UnexpectedResponse } from "../src/RefundError.js"
import { track } from "./waiting.js"

type Handler = (request: Http.IncomingMessage, response: Http.ServerResponse) => void

// A plain node server: what is under test is our client edge, so the far side stays as dumb as possible.
const server = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; server: Http.Server }>((resume) => {
      const s = Http.createServer(handler)
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, server: s })))
    }),
    // Connections a handler never answered are cut: `close` alone would wait for them.
    ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)).closeAllConnections())
  )

const Body = Schema.Struct({ refund: Schema.Struct({ id: Schema.String, amount: Schema.String }) })

describe("ProviderHttp", () => {
  it.scopedLive("reads a body, decodes it, and names the field that does not match", () =>
    Effect.gen(function*() {
      const { url } = yield* server((req, res) => {
        res.setHeader("content-type", "application/json")
        res.end(req.url === "/good" ? JSON.stringify({ refund: { id: "r1", amount: "1.00" } }) : req.url === "/bad" ? JSON.stringify({ refund: { id: 7 } }) : "<html>")
      })
      const good = yield* ProviderHttp.send("toy", HttpClientRequest.get(`${url}/good`))
      assert.strictEqual(good.status, 200)
      assert.deepStrictEqual(yield* ProviderHttp.decodeBody("toy", Body, good), { refund: { id: "r1", amount: "1.00" } })

      const bad = yield* Effect.flip(Effect.flatMap(ProviderHttp.send("toy", HttpClientRequest.get(`${url}/bad`)), (r) => ProviderHttp.decodeBody("toy", Body, r)))
      assert.strictEqual(bad._tag, "UnexpectedResponse")
      assert.strictEqual(bad._tag === "UnexpectedResponse" ? bad.path : "", "refund.id")

      const html = yield* Effect.flip(Effect.flatMap(ProviderHttp.send("toy", HttpClientRequest.get(`${url}/html`)), (r) => ProviderHttp.decodeBody("toy", Body, r)))
      assert.strictEqual(html._tag, "UnexpectedResponse")
      assert.include(html.message, "not valid JSON")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a body of the wrong shape is named, not quoted: a token answer's secrets stay out of the error", () =>
    Effect.gen(function*() {
      const jwt = `eyJhbGciOiJIUzI1NiJ9.${"c2VjcmV0".repeat(12)}.sig`
      const bodies: Record<string, unknown> = {
        "/object": { access_token: jwt, merchantKey: "mk-SECRET-1" },
        "/array": [{ token: jwt }],
        "/long": jwt,
        "/short": "PENDING"
      }
      const { url } = yield* server((req, res) => {
        res.setHeader("content-type", "application/json")
        res.end(JSON.stringify(bodies[req.url ?? ""]))
      })
      const Token = Schema.Union(Schema.Literal("OK"), Schema.Struct({ token: Schema.NonEmptyString }))
      const refused = (path: string) =>
        Effect.flip(Effect.flatMap(ProviderHttp.send("toy", HttpClientRequest.get(`${url}${path}`)), (r) => ProviderHttp.decodeBody("toy", Token, r)))
      const object = yield* refused("/object")
      assert.include(object.message, "actual an object")
      const array = yield* refused("/array")
      assert.include(array.message, "actual an array")
      const long = yield* refused("/long")
      assert.include(long.message, "actual a string longer than 64 characters")
      for (const error of [object, array, long]) {
        assert.notInclude(error.message, "c2VjcmV0")
        assert.notInclude(error.message, "mk-SECRET-1")
      }
      // A short word is what a person needs to see, and is quoted as before.
      assert.include((yield* refused("/short")).message, `actual "PENDING"`)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a refused connection was not sent; a reset after sending may have been processed; neither error shows the URL", () =>
    Effect.gen(function*() {
      const { url } = yield* server((req) => req.socket.destroy())
      const reset = yield* Effect.flip(ProviderHttp.send("toy", HttpClientRequest.post(`${url}/refund?token=s3cret`)))
      assert.isTrue(reset.maybeProcessed)
      assert.notInclude(reset.message, "s3cret")

      const closed = yield* server(() => undefined)
      const port = new URL(closed.url).port
      yield* Effect.async<void>((resume) => void closed.server.close(() => resume(Effect.void)))
      const refused = yield* Effect.flip(ProviderHttp.send("toy", HttpClientRequest.post(`http://127.0.0.1:${port}/refund?token=s3cret`)))
      assert.isFalse(refused.maybeProcessed)
      assert.include(refused.detail, "ECONNREFUSED")
      assert.notInclude(refused.message, "s3cret")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("adds each call's time to the timing installed by the caller", () =>
    Effect.gen(function*() {
      const { url } = yield* server((_, res) => void setTimeout(() => res.end("{}"), 30))
      const timing: ProviderHttp.Timing = { millis: 0, calls: 0 }
      yield* Effect.all([ProviderHttp.send("toy", HttpClientRequest.get(url)), ProviderHttp.send("toy", HttpClientRequest.get(url))], { concurrency: 2 }).pipe(
        Effect.locally(ProviderHttp.currentTiming, timing)
      )
      assert.strictEqual(timing.calls, 2)
      assert.isAtLeast(timing.millis, 50)
      assert.deepStrictEqual(timing.running, [], "both finished")
      assert.strictEqual(ProviderHttp.providerMillis(timing), timing.millis)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a call interrupted in flight (a timeout) counts as provider time up to the moment it is read", () =>
    Effect.gen(function*() {
      // Never answers: however late the timeout fires on a loaded machine, the call is still out.
      const { url } = yield* server(() => undefined)
      const timing: ProviderHttp.Timing = { millis: 0, calls: 0 }
      const started = performance.now()
      const result = yield* ProviderHttp.send("toy", HttpClientRequest.get(url)).pipe(
        Effect.timeout("100 millis"),
        Effect.either,
        Effect.locally(ProviderHttp.currentTiming, timing)
      )
      assert.strictEqual(result._tag, "Left", "timed out")
      assert.strictEqual(timing.calls, 1)
      assert.strictEqual(timing.millis, 0, "it never finished")
      assert.strictEqual(timing.running?.length, 1)
      yield* Effect.sleep("50 millis")
      const now = performance.now()
      const counted = ProviderHttp.providerMillis(timing, now)
      assert.isAtLeast(counted, 140)
      assert.isAtMost(counted, now - started)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it("reads the generic meaning of statuses and Retry-After", () => {
    const at = (status: number, headers: Record<string, string> = {}): ProviderHttp.Received => ({ status, headers: Headers.fromInput(headers), text: "", json: Option.none() })
    const limited = ProviderHttp.statusError("toy", at(429, { "retry-after": "7" }))
    assert.isTrue(Option.isSome(limited) && limited.value._tag === "ProviderUnavailable" && limited.value.retryAfterMillis === 7000 && !limited.value.maybeProcessed)
    // A 503 that says when to come back did nothing; a bare one may come from a proxy after its upstream took the request.
    const down = ProviderHttp.statusError("toy", at(503, { "retry-after": "3" }))
    assert.isTrue(Option.isSome(down) && down.value._tag === "ProviderUnavailable" && !down.value.maybeProcessed && down.value.retryAfterMillis === 3000)
    const unavailable = ProviderHttp.statusError("toy", at(503))
    assert.isTrue(Option.isSome(unavailable) && unavailable.value._tag === "ProviderUnavailable" && unavailable.value.maybeProcessed)
    const broken = ProviderHttp.statusError("toy", at(500))
    assert.isTrue(Option.isSome(broken) && broken.value._tag === "ProviderUnavailable" && broken.value.maybeProcessed)
    assert.strictEqual(Option.map(ProviderHttp.statusError("toy", at(401)), (e) => e._tag).pipe(Option.getOrNull), "ProviderAuthFailed")
    assert.isTrue(Option.isNone(ProviderHttp.statusError("toy", at(422))))
    assert.strictEqual(ProviderHttp.retryAfterMillis(Headers.fromInput({ "retry-after": new Date(61_000).toUTCString() }), 1_000), 60_000)
    assert.isUndefined(ProviderHttp.retryAfterMillis(Headers.fromInput({ "retry-after": "soon" })))
  })

  it.scopedLive("fetches a token once for concurrent callers and re-authenticates exactly once on 401", () =>
    Effect.gen(function*() {
      let fetched = 0
      // The first token call is held until every caller is waiting for a token.
      const gate = yield* Deferred.make<void>()
      const cache = yield* ProviderHttp.makeTokenCache(
        Effect.suspend(() => {
          fetched++
          return Effect.as(Deferred.await(gate), { token: Redacted.make(`t${fetched}`), expiresInMillis: 3_600_000 })
        }),
        { provider: "toy" }
      )
      const fibers = yield* track
      const callers = yield* fibers.fork(Effect.all(Array.from({ length: 5 }, () => cache.get), { concurrency: "unbounded" }))
      yield* fibers.settled
      assert.strictEqual(fetched, 1, "the callers share the call in flight")
      yield* Deferred.succeed(gate, void 0)
      const seen = yield* Fiber.join(callers)
      assert.strictEqual(fetched, 1)
      assert.deepStrictEqual(seen.map(Redacted.value), ["t1", "t1", "t1", "t1", "t1"])

      const used: Array<string> = []
      const status = yield* ProviderHttp.withToken(cache, (token) => Effect.sync(() => {
        used.push(Redacted.value(token))
        return Redacted.value(token) === "t1" ? 401 : 200
      }), (s) => s === 401)
      assert.strictEqual(status, 200)
      assert.deepStrictEqual(used, ["t1", "t2"])

      const always = yield* ProviderHttp.withToken(cache, () => Effect.succeed(401), (s) => s === 401)
      assert.strictEqual(always, 401, "a second refusal is returned to the caller, not retried again")
      assert.strictEqual(fetched, 3)
    }))

  it.scoped("refreshes a token before the provider's lifetime or the cap runs out", () =>
    Effect.gen(function*() {
      let fetched = 0
      const cache = yield* ProviderHttp.makeTokenCache(
        Effect.sync(() => ({ token: Redacted.make(`t${++fetched}`), expiresInMillis: 3_600_000 })),
        { provider: "toy", maxAgeMillis: 40, refreshMarginMillis: 0 }
      )
      yield* cache.get
      yield* TestClock.adjust("39 millis")
      assert.strictEqual(Redacted.value(yield* cache.get), "t1")
      assert.strictEqual(fetched, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(Redacted.value(yield* cache.get), "t2")
    }))

  it.scopedLive("a failed token call says the refund was not sent, however it failed: the refund call never left", () =>
    Effect.gen(function*() {
      const failures = [
        new ProviderUnavailable({ provider: "toy", detail: "HTTP 500", maybeProcessed: true, httpStatus: 500 }),
        new OutcomeUnknown({ provider: "toy", detail: "the connection was reset" }),
        new UnexpectedResponse({ provider: "toy", path: "token", detail: "no token in the answer", httpStatus: 200 })
      ]
      for (const failure of failures) {
        const cache = yield* ProviderHttp.makeTokenCache(Effect.fail(failure), { provider: "toy" })
        const error = yield* Effect.flip(cache.get)
        assert.strictEqual(error._tag, "ProviderUnavailable", failure._tag)
        assert.isTrue(error._tag === "ProviderUnavailable" && !error.maybeProcessed, failure._tag)
        assert.include(error.message, "not sent")
        // A token answer of the wrong shape names its field.
        if (failure._tag === "UnexpectedResponse") assert.include(error.message, "the token answer's field token: no token in the answer")
      }
      const refused = yield* Effect.flip((yield* ProviderHttp.makeTokenCache(Effect.fail(new ProviderAuthFailed({ provider: "toy", detail: "HTTP 401" })), { provider: "toy" })).get)
      assert.strictEqual(refused._tag, "ProviderAuthFailed", "refused credentials stay what they are")
    }))

  it.scopedLive("a token call that hangs is given up as not sent within its own timeout, and the next caller fetches afresh", () =>
    Effect.gen(function*() {
      let fetched = 0
      const cache = yield* ProviderHttp.makeTokenCache(
        Effect.suspend(() => (++fetched === 1 ? Effect.never : Effect.succeed({ token: Redacted.make("t2"), expiresInMillis: 3_600_000 }))),
        { provider: "toy", timeoutMillis: 50 }
      )
      const hung = yield* Effect.flip(cache.get)
      assert.strictEqual(hung._tag, "ProviderUnavailable")
      assert.isTrue(hung._tag === "ProviderUnavailable" && !hung.maybeProcessed && hung.provider === "toy")
      assert.include(hung.message, "not sent")
      assert.strictEqual(Redacted.value(yield* cache.get), "t2")
    }))
  it.scoped("callers queued behind hanging token calls are given up within one token timeout, not one per caller ahead of them", () =>
    Effect.gen(function*() {
      const cache = yield* ProviderHttp.makeTokenCache(Effect.never, { provider: "toy", timeoutMillis: 300 })
      const fibers = yield* track
      const callers = yield* fibers.fork(Effect.forEach([1, 2, 3, 4], () => Effect.flip(cache.get), { concurrency: "unbounded" }))
      yield* fibers.settled
      yield* TestClock.adjust("300 millis")
      // Inside the refund call's timeout whatever the queue: a refund call waiting for a token is never `unknown`.
      // (One timeout per caller ahead, as before, is 600, 900 and 1,200 ms for the last three.)
      const errors = yield* fibers.result(callers, "a caller queued for a token 300 ms on")
      for (const e of errors) assert.isTrue(e._tag === "ProviderUnavailable" && !e.maybeProcessed, "not sent")
    }))
})
