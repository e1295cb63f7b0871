import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Option, Schedule } from "effect"
import * as Http from "node:http"
import * as Gateway from "./support/Gateway.js"
import { eventually } from "@refundkit/testkit/Waiting"

const post = (gw: Gateway.Gateway, body: unknown, key: string | null = Gateway.key()) =>
  gw.fetch("POST", "/v1/refunds", { body, headers: key === null ? {} : { "idempotency-key": key } })

// The gateway answers creates on its direct route; the HttpApi handler it can be built
// with instead must answer exactly alike.
for (const createRoute of ["direct", "httpapi"] as const) {
  describe(`POST /v1/refunds (${createRoute} route)`, () => {
    it.scopedLive("201 creates, 200 replays with Idempotent-Replayed, 422 for the key with another body", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const key = Gateway.key()
        const first = yield* post(gw, Gateway.exiromRefund(), key)
        assert.strictEqual(first.status, 201, first.text)
        assert.match(first.body.id, /^rfd_/)
        assert.strictEqual(first.body.provider, "exirom")
        assert.include(["pending", "succeeded"], first.body.status)
        assert.isUndefined(first.headers["idempotent-replayed"])
        assert.strictEqual(first.headers["location"], `/v1/refunds/${first.body.id}`)
        assert.strictEqual((yield* gw.fetch("GET", first.headers["location"]!)).body.id, first.body.id, "Location finds the refund")
        const again = yield* post(gw, { ...Gateway.exiromRefund(), amount: "10.0" }, key)
        assert.strictEqual(again.status, 200, "the same amount spelled differently is the same body")
        assert.strictEqual(again.headers["idempotent-replayed"], "true")
        assert.isUndefined(again.headers["location"], "a replay created nothing")
        assert.strictEqual(again.body.id, first.body.id)
        const reused = yield* post(gw, Gateway.exiromRefund({ amount: "11.00" }), key)
        assert.strictEqual(reused.status, 422)
        assert.strictEqual(reused.body.error.code, "idempotency_key_reused")
        assert.strictEqual(reused.body.error.refundId, first.body.id)
        assert.strictEqual((yield* gw.exirom.stats).refundsPerformed, 1)
      }))

    it.scopedLive("a provider decline is a 201 refund in status failed", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 0 }, server: { createRoute } })
        // 30001 is a FAILED payment at the sandbox: Exirom refuses to refund it.
        const declined = yield* post(gw, Gateway.exiromRefund({ transactionId: 30001 }))
        assert.strictEqual(declined.status, 201, declined.text)
        assert.strictEqual(declined.body.status, "failed")
        assert.strictEqual(declined.body.error.code, "provider_declined")
      }))

    it.scopedLive("400 missing_idempotency_key, 400 invalid_request naming fields (nothing sent), 404 unknown_provider", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const missing = yield* post(gw, Gateway.exiromRefund(), null)
        assert.strictEqual(missing.status, 400)
        assert.strictEqual(missing.body.error.code, "missing_idempotency_key")
        const empty = yield* post(gw, Gateway.exiromRefund(), "")
        assert.strictEqual(empty.body.error.code, "missing_idempotency_key")
        const badKey = yield* post(gw, Gateway.exiromRefund(), "x".repeat(256))
        assert.strictEqual(badKey.status, 400)
        assert.deepStrictEqual(badKey.body.error.issues, [{ path: "Idempotency-Key", message: "must be 1 to 255 printable ASCII characters" }])

        const invalid = yield* post(gw, Gateway.exiromRefund({ amount: "1.005" }))
        assert.strictEqual(invalid.status, 400)
        assert.strictEqual(invalid.body.error.code, "invalid_request")
        assert.strictEqual(invalid.body.error.issues[0].path, "amount")
        assert.isString(invalid.body.error.issues[0].message)
        const noProvider = yield* post(gw, { transactionId: 1 })
        assert.strictEqual(noProvider.status, 400)
        assert.deepStrictEqual(noProvider.body.error.issues.map((i: { path: string }) => i.path), ["provider"])
        const notJson = yield* gw.fetch("POST", "/v1/refunds", { body: "{not json", headers: { "idempotency-key": Gateway.key() } })
        assert.strictEqual(notJson.status, 400)
        assert.strictEqual(notJson.body.error.code, "invalid_request")
        assert.strictEqual((yield* gw.exirom.stats).requests["refund"] ?? 0, 0, "nothing was sent to the provider")

        const unknown = yield* post(gw, { provider: "nope", amount: "1.00" })
        assert.strictEqual(unknown.status, 404)
        assert.strictEqual(unknown.body.error.code, "unknown_provider")
        assert.sameMembers(unknown.body.error.installed, ["aerohub", "airalo", "airpay", "exirom"])
      }))

    it.scopedLive("409 refund_in_progress while the first request with the key runs", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ callTimeout: "10 seconds", server: { createRoute } })
        // Exirom holds the first call 2 s once it arrives: the second request goes out while it is held.
        yield* gw.exirom.faults.inject({ fault: { _tag: "Latency", millis: 2000 }, route: "refund" })
        const key = Gateway.key()
        const first = yield* Effect.fork(post(gw, Gateway.exiromRefund(), key))
        yield* eventually(sent(gw.exirom, "refund", 1), "the first request's call reached Exirom")
        const second = yield* post(gw, Gateway.exiromRefund(), key)
        assert.strictEqual(second.status, 409, second.text)
        assert.strictEqual(second.body.error.code, "refund_in_progress")
        const done = yield* Fiber.join(first)
        assert.strictEqual(done.status, 201)
        assert.strictEqual(second.body.error.refundId, done.body.id)
      }))

    it.scopedLive("502 provider_unavailable and provider_auth_failed carry the refund id and its status; 504 outcome_unknown", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ callTimeout: "1 second", server: { createRoute } })
        yield* gw.exirom.faults.inject({ fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 0 })
        const unavailable = yield* post(gw, Gateway.exiromRefund())
        assert.strictEqual(unavailable.status, 502, unavailable.text)
        assert.strictEqual(unavailable.body.error.code, "provider_unavailable")
        assert.match(unavailable.body.error.refundId, /^rfd_/)
        assert.strictEqual(unavailable.body.error.status, "failed", "a 503 with Retry-After means Exirom did nothing")
        const stored = yield* gw.fetch("GET", `/v1/refunds/${unavailable.body.error.refundId}`)
        assert.strictEqual(stored.body.status, "failed")
        yield* gw.exirom.faults.clear
        // A bare 503 may come from a proxy after Exirom took the call: the refund is kept in doubt, for a sync to settle.
        yield* gw.exirom.faults.inject({ fault: { _tag: "ServerError", status: 503 }, route: "refund", times: 0 })
        const bare = yield* post(gw, Gateway.exiromRefund())
        assert.strictEqual(bare.status, 502, bare.text)
        assert.strictEqual(bare.body.error.status, "unknown")
        assert.include(bare.body.error.message, "It may have reached exirom")
        yield* gw.exirom.faults.clear

        // Exirom's 429 names its wait: the body's retryAfterSeconds is the standard header too, and the
        // message says the key is spent (the same key replays this failure; a new one sends it, after the wait).
        yield* gw.exirom.faults.inject({ fault: { _tag: "RateLimited", retryAfterSeconds: 120 }, route: "refund" })
        const limited = yield* post(gw, Gateway.exiromRefund(), Gateway.key("limited"))
        assert.strictEqual(limited.status, 502, limited.text)
        assert.strictEqual(limited.body.error.retryAfterSeconds, 120)
        assert.strictEqual(limited.headers["retry-after"], "120")
        assert.strictEqual(limited.body.error.status, "failed")
        assert.include(
          limited.body.error.message,
          `The refund ${limited.body.error.refundId} is recorded failed, which is final: a retry under the same idempotency key replays this answer, and a new attempt needs a new key (exirom asked to wait 120 s first).`
        )
        assert.notInclude(limited.body.error.message, "Retry after", "a retry under the same key is what the wait must not invite")
        yield* gw.exirom.faults.clear

        yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "refund" })
        const timedOut = yield* post(gw, Gateway.exiromRefund())
        assert.strictEqual(timedOut.status, 504, timedOut.text)
        assert.strictEqual(timedOut.body.error.code, "outcome_unknown")
        assert.strictEqual(timedOut.body.error.status, "unknown")
        const unknown = yield* gw.fetch("GET", `/v1/refunds/${timedOut.body.error.refundId}`)
        assert.strictEqual(unknown.body.status, "unknown")
        yield* gw.exirom.faults.clear

        // Exirom refunds the first attempt but its answer is lost; every retry meets a 503, which says
        // nothing of that first attempt: in doubt (a client must not resend under a new key), not failed.
        yield* gw.exirom.faults.inject({ fault: { _tag: "LostResponse" }, route: "refund", times: 1 })
        yield* gw.exirom.faults.inject({ fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 0 })
        const refundedBefore = (yield* gw.exirom.stats).refundsPerformed
        const lost = yield* post(gw, Gateway.exiromRefund())
        assert.strictEqual(lost.status, 504, lost.text)
        assert.strictEqual(lost.body.error.code, "outcome_unknown")
        assert.strictEqual(lost.body.error.status, "unknown")
        assert.include(lost.body.error.message, "an earlier attempt may have been processed")
        assert.strictEqual((yield* gw.exirom.stats).refundsPerformed, refundedBefore + 1)
        yield* gw.exirom.faults.clear
      }))

    it.scopedLive("502 provider_auth_failed when the provider refuses the gateway's credentials", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        // Every token the sandbox issues is revoked at once: the plugin's one re-authentication fails too.
        yield* gw.exirom.faults.inject({ fault: { _tag: "ExpiredToken" }, route: "*", times: 0 })
        const key = Gateway.key("refused")
        const refused = yield* post(gw, Gateway.exiromRefund(), key)
        assert.strictEqual(refused.status, 502, refused.text)
        assert.strictEqual(refused.body.error.code, "provider_auth_failed")
        assert.match(refused.body.error.refundId, /^rfd_/)
        assert.strictEqual(refused.body.error.status, "failed")
        // The retry a client makes of a 502 is told the same, not handed the failed refund as a 200.
        const replayed = yield* post(gw, Gateway.exiromRefund(), key)
        assert.strictEqual(replayed.status, 502, replayed.text)
        assert.strictEqual(replayed.headers["idempotent-replayed"], "true")
        assert.deepStrictEqual(replayed.body, refused.body)
      }))

    it.scopedLive("a retry under the key of a create answered 502 or 504 gets that answer again, marked as a replay, until the refund moves on", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ callTimeout: "1 second", server: { createRoute } })
        const refundCalls = Effect.map(gw.exirom.stats, (stats) => stats.requests["refund"] ?? 0)
        // A 503 with Retry-After: Exirom did nothing, so the refund is recorded failed, final under its key.
        yield* gw.exirom.faults.inject({ fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 1 }, route: "refund", times: 0 })
        const key = Gateway.key("unavailable")
        const first = yield* post(gw, Gateway.exiromRefund(), key)
        assert.strictEqual(first.status, 502, first.text)
        assert.strictEqual(first.body.error.code, "provider_unavailable")
        assert.strictEqual(first.body.error.status, "failed")
        // The provider's wait stays, as the advice for a new attempt, and the message says so.
        assert.strictEqual(first.headers["retry-after"], "1")
        assert.include(first.body.error.message, "a retry under the same idempotency key replays this answer, and a new attempt needs a new key (exirom asked to wait 1 s first).")
        assert.notInclude(first.body.error.message, "Retry after")
        const sent = yield* refundCalls
        const again = yield* post(gw, Gateway.exiromRefund(), key)
        assert.strictEqual(again.status, 502, again.text)
        assert.strictEqual(again.headers["idempotent-replayed"], "true")
        assert.strictEqual(again.headers["retry-after"], "1")
        assert.deepStrictEqual(again.body, first.body, "the same error body as the first answer")
        assert.strictEqual(yield* refundCalls, sent, "a replay sends nothing")
        yield* gw.exirom.faults.clear

        // No answer within the call timeout: 504, the refund kept unknown; its replay is the 504 again.
        yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "refund" })
        const doubtKey = Gateway.key("in-doubt")
        const timedOut = yield* post(gw, Gateway.exiromRefund({ transactionId: 20001, currency: "EUR" }), doubtKey)
        assert.strictEqual(timedOut.status, 504, timedOut.text)
        const inDoubt = yield* post(gw, Gateway.exiromRefund({ transactionId: 20001, currency: "EUR" }), doubtKey)
        assert.strictEqual(inDoubt.status, 504, inDoubt.text)
        assert.strictEqual(inDoubt.headers["idempotent-replayed"], "true")
        assert.deepStrictEqual(inDoubt.body, timedOut.body)
        yield* gw.exirom.faults.clear

        // A sync settles it (Exirom is asked again under the same requestId): the replay is the refund, 200, as before.
        const synced = yield* gw.fetch("POST", `/v1/refunds/${timedOut.body.error.refundId}/sync`)
        assert.strictEqual(synced.status, 200, synced.text)
        assert.include(["pending", "succeeded"], synced.body.status)
        const settled = yield* post(gw, Gateway.exiromRefund({ transactionId: 20001, currency: "EUR" }), doubtKey)
        assert.strictEqual(settled.status, 200, settled.text)
        assert.strictEqual(settled.headers["idempotent-replayed"], "true")
        assert.strictEqual(settled.body.id, timedOut.body.error.refundId)
        assert.strictEqual(settled.body.status, synced.body.status)
      }))

    it.scopedLive("409 over_refund when originalAmounts would be exceeded", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const originalAmounts = { "12345": "100.00" }
        const first = yield* post(gw, Gateway.exiromRefund({ amount: "60.00", originalAmounts }))
        assert.strictEqual(first.status, 201, first.text)
        const over = yield* post(gw, Gateway.exiromRefund({ amount: "50.00", originalAmounts }))
        assert.strictEqual(over.status, 409, over.text)
        assert.strictEqual(over.body.error.code, "over_refund")
        assert.strictEqual(over.body.error.remaining, "40.00")
        // The refund counted against the payment, named for the operator to check.
        assert.deepStrictEqual(over.body.error.heldBy, [{ refundId: first.body.id, amount: "60.00", status: first.body.status }])
        assert.include(over.body.error.message, `Counted against it: refund ${first.body.id} (60.00 ${over.body.error.currency}, ${first.body.status}).`)
        assert.strictEqual((yield* gw.exirom.stats).refundsPerformed, 1)
      }))

    it.scopedLive("409 target_already_refunded for a second refund of one Airalo eSIM under another key; nothing sent for it", () =>
      Effect.gen(function*() {
        // Without Airalo's 1 call per 5 minutes: the second create takes its turn of the limit before its claim is refused.
        const gw = yield* Gateway.start({ airalo: { rateLimit: false }, server: { createRoute } })
        const first = yield* post(gw, Gateway.airaloRefund())
        assert.strictEqual(first.status, 201, first.text)
        const second = yield* post(gw, Gateway.airaloRefund())
        assert.strictEqual(second.status, 409, second.text)
        assert.strictEqual(second.body.error.code, "target_already_refunded")
        assert.strictEqual(second.body.error.target, "8910300000000000011")
        assert.strictEqual(second.body.error.refundId, first.body.id)
        assert.strictEqual(second.body.error.status, first.body.status)
        assert.include(second.body.error.message, first.body.id)
        assert.include(second.body.error.message, "Nothing was sent")
        assert.include(second.body.error.message, `Wait for ${first.body.id} to finish`)
        // The verdicts the advice spells out name the gateway's route and body beside the CLI's command.
        const route = `(over HTTP: \`POST /v1/refunds/${first.body.id}/resolve\` with`
        assert.include(second.body.error.message, `--status failed --note "..."\` ${route} \`{"status": "failed", "note": "..."}\`)`)
        assert.include(
          second.body.error.message,
          `--status succeeded --failed-target 8910300000000000011 --note "..."\` ${route} \`{"status": "succeeded", "failedTargets": ["8910300000000000011"], "note": "..."}\`)`
        )
        const stats = yield* gw.airalo.stats
        assert.deepStrictEqual(stats.refundRequestsPerIccid, { "8910300000000000011": 1 })
        // Only the first was recorded.
        const listed = yield* gw.fetch("GET", "/v1/refunds?provider=airalo")
        assert.deepStrictEqual(listed.body.items.map((r: { id: string }) => r.id), [first.body.id])
      }))

    it.scopedLive("409 over_refund naming the refund the guard cannot count: Exirom is not sent a currency, so 80.00 without one may be USD", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const { currency: _, ...withoutCurrency } = Gateway.exiromRefund({ amount: "80.00" })
        const first = yield* post(gw, withoutCurrency)
        assert.strictEqual(first.status, 201, first.text)
        const over = yield* post(gw, Gateway.exiromRefund({ amount: "80.00", originalAmounts: { "12345": "100.00" } }))
        assert.strictEqual(over.status, 409, over.text)
        assert.strictEqual(over.body.error.code, "over_refund")
        assert.deepStrictEqual(over.body.error.blockedBy, { refundId: first.body.id, reason: "states no currency" })
        assert.include(over.body.error.message, first.body.id)
        assert.strictEqual((yield* gw.exirom.stats).refundsPerformed, 1)
      }))
  })
}

describe("POST /v1/refunds: the direct route and the HttpApi handler", () => {
  it.scopedLive("answer every refused request with the same status and body", () =>
    Effect.gen(function*() {
      const direct = yield* Gateway.start({ server: { createRoute: "direct", bodyLimitBytes: 4096 } })
      const httpapi = yield* Gateway.start({ server: { createRoute: "httpapi", bodyLimitBytes: 4096 } })
      let deep: unknown = 1
      for (let i = 0; i < 40; i++) deep = { a: deep }
      const valid = JSON.stringify(Gateway.exiromRefund())
      const cases: ReadonlyArray<{ readonly name: string; readonly path?: string; readonly body: string; readonly headers: Record<string, string>; readonly auth?: false }> = [
        { name: "no API key", body: valid, headers: { "idempotency-key": "k" }, auth: false },
        { name: "unknown API key", body: valid, headers: { "idempotency-key": "k", authorization: "Bearer nope" }, auth: false },
        { name: "not a bearer", body: valid, headers: { "idempotency-key": "k", authorization: "Basic abc" }, auth: false },
        { name: "no key and no API key", body: "{not json", headers: {}, auth: false },
        { name: "no Idempotency-Key", body: valid, headers: {} },
        { name: "empty Idempotency-Key", body: valid, headers: { "idempotency-key": "" } },
        { name: "long Idempotency-Key", body: valid, headers: { "idempotency-key": "k".repeat(256) } },
        { name: "not JSON", body: "{not json", headers: { "idempotency-key": "k" } },
        { name: "an array", body: "[1]", headers: { "idempotency-key": "k" } },
        { name: "null", body: "null", headers: { "idempotency-key": "k" } },
        { name: "too deep", body: JSON.stringify({ provider: "exirom", deep }), headers: { "idempotency-key": "k" } },
        { name: "no provider", body: "{}", headers: { "idempotency-key": "k" } },
        { name: "unknown provider", body: JSON.stringify({ provider: "nope" }), headers: { "idempotency-key": "k" } },
        { name: "bad amount", body: JSON.stringify(Gateway.exiromRefund({ amount: "1.005" })), headers: { "idempotency-key": "k" } },
        { name: "prototype keys", body: `{"provider":"exirom","__proto__":{"x":1},"constructor":{"prototype":{}}}`, headers: { "idempotency-key": "k" } },
        { name: "over the limit", body: JSON.stringify(Gateway.exiromRefund({ metadata: { note: "x".repeat(5000) } })), headers: { "idempotency-key": "k" } },
        { name: "with a query string", path: "/v1/refunds?dry=1", body: "{}", headers: { "idempotency-key": "k" } }
      ]
      for (const c of cases) {
        const request = { body: c.body, headers: { "x-request-id": `case-${cases.indexOf(c)}`, ...c.headers }, ...(c.auth === false ? { auth: false } : {}) }
        const [a, b] = [yield* direct.fetch("POST", c.path ?? "/v1/refunds", request), yield* httpapi.fetch("POST", c.path ?? "/v1/refunds", request)]
        assert.isAtLeast(a.status, 400, c.name)
        assert.strictEqual(a.status, b.status, `${c.name}: ${a.text} vs ${b.text}`)
        assert.deepStrictEqual(a.body, b.body, c.name)
        assert.strictEqual(a.headers["content-type"], b.headers["content-type"], c.name)
        assert.strictEqual(a.headers["x-request-id"], `case-${cases.indexOf(c)}`, c.name)
        assert.match(a.headers["server-timing"]!, /^app;dur=\d+\.\d\d, provider;dur=\d+\.\d\d$/, c.name)
      }
      assert.strictEqual((yield* direct.exirom.stats).requests["refund"] ?? 0, 0, "nothing was sent to the provider")
      assert.strictEqual((yield* httpapi.exirom.stats).requests["refund"] ?? 0, 0, "nothing was sent to the provider")
    }))
})

// Two Idempotency-Key lines, as a proxy adding its own would send: Node joins them as "k-a, k-b".
const twoKeys = (url: string, body: string) =>
  Effect.async<{ readonly status: number; readonly body: any }>((resume) => {
    const request = Http.request(`${url}/v1/refunds`, {
      method: "POST",
      headers: { authorization: `Bearer ${Gateway.apiKey}`, "content-type": "application/json", "idempotency-key": ["k-a", "k-b"] }
    }, (response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: JSON.parse(text) })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end(body)
  })

describe("POST /v1/refunds with the Idempotency-Key header twice", () => {
  it.scopedLive("is refused naming the header, on the direct route and the HttpApi handler, and nothing is sent", () =>
    Effect.gen(function*() {
      for (const createRoute of ["direct", "httpapi"] as const) {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const refused = yield* twoKeys(gw.info.url, JSON.stringify(Gateway.exiromRefund()))
        assert.strictEqual(refused.status, 400, createRoute)
        assert.strictEqual(refused.body.error.code, "invalid_request", createRoute)
        assert.deepStrictEqual(refused.body.error.issues, [{ path: "Idempotency-Key", message: "must be sent once" }], createRoute)
        assert.strictEqual((yield* gw.exirom.stats).requests["refund"] ?? 0, 0, `${createRoute}: nothing was sent to the provider`)
        const listed = yield* gw.fetch("GET", "/v1/refunds")
        assert.strictEqual(listed.body.items.length, 0, `${createRoute}: nothing was recorded`)
        // One key holding ", " is one key.
        const one = yield* post(gw, Gateway.exiromRefund(), `order-7, refund-1-${createRoute}`)
        assert.strictEqual(one.status, 201, one.text)
        assert.strictEqual(one.body.idempotencyKey, `order-7, refund-1-${createRoute}`)
      }
    }))
})

describe("reading and moving refunds", () => {
  it.scopedLive("an id longer than the router's default segment limit is an unknown refund, on every route that takes one", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const long = `rfd_${"a".repeat(200)}`
      for (const [method, path] of [["GET", `/v1/refunds/${long}`], ["POST", `/v1/refunds/${long}/sync`]] as const) {
        const answer = yield* gw.fetch(method, path)
        assert.strictEqual(answer.status, 404, `${method} ${path.slice(0, 20)}: ${answer.text}`)
        assert.strictEqual(answer.body.error.code, "refund_not_found", answer.text)
      }
      const provider = yield* gw.fetch("POST", `/v1/webhooks/${"p".repeat(200)}`, { body: "{}", auth: false })
      assert.strictEqual(provider.body.error.code, "unknown_provider", provider.text)
    }))

  it.scopedLive("a bad list parameter is one issue naming it and its rule, not one per union member", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const limit = yield* gw.fetch("GET", "/v1/refunds?limit=0")
      assert.strictEqual(limit.status, 400, limit.text)
      assert.deepStrictEqual(limit.body.error.issues.map((i: { readonly path: string }) => i.path), ["limit"])
      assert.notInclude(limit.text, "Expected undefined")
      const status = yield* gw.fetch("GET", "/v1/refunds?status=bogus")
      assert.strictEqual(status.status, 400, status.text)
      assert.strictEqual(status.body.error.issues.length, 1)
      assert.include(status.body.error.issues[0].message, "Expected one of \"requested\", \"pending\"")
      assert.include(status.body.error.issues[0].message, "actual \"bogus\"")
    }))

  it.scopedLive("a list filtered by a provider not installed is 400 naming the provider field and the installed ones, not an empty page", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const created = yield* post(gw, Gateway.exiromRefund())
      assert.strictEqual(created.status, 201, created.text)
      const bogus = yield* gw.fetch("GET", "/v1/refunds?provider=bogus")
      assert.strictEqual(bogus.status, 400, bogus.text)
      assert.strictEqual(bogus.body.error.code, "invalid_request")
      assert.deepStrictEqual(bogus.body.error.issues, [
        { path: "provider", message: "\"bogus\" is not an installed provider; installed: aerohub, airalo, airpay, exirom" }
      ])
      assert.strictEqual(
        bogus.body.error.message,
        "The query is invalid: provider: \"bogus\" is not an installed provider; installed: aerohub, airalo, airpay, exirom."
      )
      // Ids are exact, as the ledger stores them.
      const upper = yield* gw.fetch("GET", "/v1/refunds?provider=EXIROM")
      assert.strictEqual(upper.status, 400, upper.text)
      const exirom = yield* gw.fetch("GET", "/v1/refunds?provider=exirom")
      assert.strictEqual(exirom.status, 200, exirom.text)
      assert.deepStrictEqual(exirom.body.items.map((r: { id: string }) => r.id), [created.body.id])
      // An installed provider with no refunds yet is an empty page, as before.
      const airpay = yield* gw.fetch("GET", "/v1/refunds?provider=airpay")
      assert.strictEqual(airpay.status, 200, airpay.text)
      assert.deepStrictEqual(airpay.body.items, [])
    }))

  it.scopedLive("a list filtered by a provider installed but not enabled here (its settings missing) still lists, as the CLI's does", () =>
    Effect.gen(function*() {
      // No provider settings at all: every plugin is installed and none is enabled.
      const gw = yield* Gateway.start({ server: { sandbox: false } }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      const providers = yield* gw.fetch("GET", "/v1/providers")
      assert.deepStrictEqual(providers.body.providers, [])
      const airalo = yield* gw.fetch("GET", "/v1/refunds?provider=airalo")
      assert.strictEqual(airalo.status, 200, airalo.text)
      const bogus = yield* gw.fetch("GET", "/v1/refunds?provider=bogus")
      assert.strictEqual(bogus.status, 400, bogus.text)
      assert.include(bogus.body.error.issues[0].message, "installed: aerohub, airalo, airpay, exirom")
    }))

  it.scopedLive("GET one with its events, 404 refund_not_found, list with filters and cursor", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const a = yield* post(gw, Gateway.exiromRefund({ amount: "1.00" }))
      const b = yield* post(gw, Gateway.exiromRefund({ amount: "2.00" }))
      const c = yield* post(gw, Gateway.airaloRefund())
      assert.strictEqual(c.status, 201, c.text)
      const one = yield* gw.fetch("GET", `/v1/refunds/${a.body.id}`)
      assert.strictEqual(one.status, 200)
      assert.strictEqual(one.body.events[0].to, "requested")
      assert.isAtLeast(one.body.events.length, 2)
      const missing = yield* gw.fetch("GET", "/v1/refunds/rfd_nope")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.body.error.code, "refund_not_found")

      const exirom = yield* gw.fetch("GET", "/v1/refunds?provider=exirom&limit=1")
      assert.strictEqual(exirom.status, 200)
      assert.deepStrictEqual(exirom.body.items.map((r: { id: string }) => r.id), [b.body.id])
      const next = yield* gw.fetch("GET", `/v1/refunds?provider=exirom&limit=1&cursor=${encodeURIComponent(exirom.body.nextCursor)}`)
      assert.deepStrictEqual(next.body.items.map((r: { id: string }) => r.id), [a.body.id])
      const badLimit = yield* gw.fetch("GET", "/v1/refunds?limit=0")
      assert.strictEqual(badLimit.status, 400)
      assert.strictEqual(badLimit.body.error.code, "invalid_request")
      const badStatus = yield* gw.fetch("GET", "/v1/refunds?status=done")
      assert.strictEqual(badStatus.body.error.code, "invalid_request")
    }))

  it.scopedLive("lists the refunds against one transaction: provider and target, newest first; 400 naming target without provider", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const first = yield* post(gw, Gateway.exiromRefund({ amount: "1.00" }))
      const other = yield* post(gw, Gateway.exiromRefund({ transactionId: 12346, amount: "1.00" }))
      const second = yield* post(gw, Gateway.exiromRefund({ amount: "2.00" }))
      for (const r of [first, other, second]) assert.strictEqual(r.status, 201, r.text)
      const ids = (page: { readonly body: { readonly items: ReadonlyArray<{ readonly id: string }> } }) => page.body.items.map((r) => r.id)
      const listed = yield* gw.fetch("GET", "/v1/refunds?provider=exirom&target=12345")
      assert.strictEqual(listed.status, 200, listed.text)
      assert.deepStrictEqual(ids(listed), [second.body.id, first.body.id])
      const paged = yield* gw.fetch("GET", "/v1/refunds?provider=exirom&target=12345&limit=1")
      const rest = yield* gw.fetch("GET", `/v1/refunds?provider=exirom&target=12345&limit=1&cursor=${encodeURIComponent(paged.body.nextCursor)}`)
      assert.deepStrictEqual([...ids(paged), ...ids(rest)], [second.body.id, first.body.id])
      assert.isUndefined(rest.body.nextCursor)
      assert.deepStrictEqual(ids(yield* gw.fetch("GET", "/v1/refunds?provider=exirom&target=12346")), [other.body.id])
      // An ICCID is not an Exirom transaction.
      assert.deepStrictEqual(ids(yield* gw.fetch("GET", "/v1/refunds?provider=airalo&target=12345")), [])
      for (const [path, rule] of [["/v1/refunds?target=12345", "needs provider"], ["/v1/refunds?provider=exirom&target=", "not empty"]] as const) {
        const refused = yield* gw.fetch("GET", path)
        assert.strictEqual(refused.status, 400, refused.text)
        assert.strictEqual(refused.body.error.code, "invalid_request")
        assert.deepStrictEqual(refused.body.error.issues.map((i: { readonly path: string }) => i.path), ["target"])
        assert.include(refused.text, rule)
      }
    }))

  it.scopedLive("a sync whose status answer does not parse leaves the refund pending, and says so, not 'kept as unknown'", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
      const pending = yield* post(gw, Gateway.exiromRefund())
      assert.strictEqual(pending.body.status, "pending", pending.text)
      yield* gw.exirom.faults.inject({ fault: { _tag: "SchemaViolation" }, route: "info" })
      const synced = yield* gw.fetch("POST", `/v1/refunds/${pending.body.id}/sync`)
      assert.strictEqual(synced.status, 502, synced.text)
      assert.strictEqual(synced.body.error.code, "unexpected_response")
      assert.notInclude(synced.body.error.message, "kept as \"unknown\"", synced.text)
      assert.include(synced.body.error.message, "the refund keeps the status it had")
      const after = yield* gw.fetch("GET", `/v1/refunds/${pending.body.id}`)
      assert.strictEqual(after.body.status, "pending")
    }))

  it.scopedLive("a sync whose status query times out leaves a pending refund pending: 502 provider_unavailable, not outcome_unknown", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second", exirom: { settleAfterMillis: 60_000 } })
      const pending = yield* post(gw, Gateway.exiromRefund())
      assert.strictEqual(pending.body.status, "pending", pending.text)
      yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "info" })
      const synced = yield* gw.fetch("POST", `/v1/refunds/${pending.body.id}/sync`)
      assert.strictEqual(synced.status, 502, synced.text)
      assert.strictEqual(synced.body.error.code, "provider_unavailable")
      assert.strictEqual(synced.body.error.status, "pending")
      assert.notInclude(synced.body.error.message, "kept as \"unknown\"", synced.text)
      const after = yield* gw.fetch("GET", `/v1/refunds/${pending.body.id}`)
      assert.strictEqual(after.body.status, "pending")
      assert.deepStrictEqual(after.body.events, pending.body.events)
    }))

  it.scopedLive("sync asks the provider where it can, 409 sync_unsupported where it cannot; events need a provider with updates", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
      const pending = yield* post(gw, Gateway.exiromRefund())
      assert.strictEqual(pending.body.status, "pending", pending.text)
      yield* gw.exirom.settle
      const synced = yield* gw.fetch("POST", `/v1/refunds/${pending.body.id}/sync`)
      assert.strictEqual(synced.status, 200, synced.text)
      assert.strictEqual(synced.body.status, "succeeded")
      assert.strictEqual(synced.body.events.at(-1).source, "sync")

      const airalo = yield* post(gw, Gateway.airaloRefund())
      const unsupported = yield* gw.fetch("POST", `/v1/refunds/${airalo.body.id}/sync`)
      assert.strictEqual(unsupported.status, 409)
      assert.strictEqual(unsupported.body.error.code, "sync_unsupported")
      assert.strictEqual(unsupported.body.error.refundId, airalo.body.id)
      // Airalo's advice names the gateway's route for the verdict, with this refund's id.
      assert.include(
        unsupported.body.error.message,
        `\`refundkit resolve ${airalo.body.id} --status succeeded|failed --note ...\` (over HTTP: \`POST /v1/refunds/${airalo.body.id}/resolve\` with \`{"status": "succeeded" | "failed", "note": "..."}\`)`
      )
      assert.notInclude(unsupported.body.error.message, "Refunds.resolve")

      const noUpdates = yield* gw.fetch("POST", `/v1/refunds/${pending.body.id}/events`, { body: { status: "done" } })
      assert.strictEqual(noUpdates.status, 409)
      assert.strictEqual(noUpdates.body.error.code, "unsupported_operation")
      const notFound = yield* gw.fetch("POST", "/v1/refunds/rfd_nope/sync")
      assert.strictEqual(notFound.status, 404)
    }))
})

describe("POST /v1/refunds/{id}/events", () => {
  it.scopedLive("an AeroHub progress update moves its refund through the provider's follow-up schema", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF900001", purchaseOrderNo: "F300001" }
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
      assert.strictEqual(created.status, 201, created.text)
      assert.strictEqual(created.body.status, "pending")
      const step = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, { body: { ...order, refundStatus: "REFUNDED_PENDING" } })
      assert.strictEqual(step.status, 200, step.text)
      assert.strictEqual(step.body.providerStatus, "REFUNDED_PENDING")
      const done = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, {
        body: { ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00", refundVoucher: "50.00", voucherCurrency: "USD" }] }
      })
      assert.strictEqual(done.status, 200, done.text)
      assert.strictEqual(done.body.status, "succeeded")
      const illegal = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, { body: { ...order, refundStatus: "PROCESSING" } })
      assert.include([400, 409], illegal.status, illegal.text)
      const invalid = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, { body: "{oops" })
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(invalid.body.error.code, "invalid_request")
    }))
})

describe("POST /v1/refunds/{id}/events: an update AeroHub may have applied", () => {
  const order = { refundOrderNo: "FBRF900101", purchaseOrderNo: "F300101" }

  it.scopedLive("every answer lost: 502 naming the refund, and the refund's history records the update in doubt", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
      assert.strictEqual(created.status, 201, created.text)
      yield* gw.aerohub.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 0 })
      const lost = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, { body: { ...order, refundStatus: "CLOSED", rejectReason: 4 } })
      assert.strictEqual(lost.status, 502, lost.text)
      assert.strictEqual(lost.body.error.refundId, created.body.id)
      assert.include(lost.body.error.message, "may have been applied")
      // AeroHub closed the order; the refund must not read as if nothing had been sent.
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* gw.aerohub.order(order.refundOrderNo), (o) => o.status)), "CLOSED")
      const inDoubt = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)
      assert.strictEqual(inDoubt.body.status, "pending")
      assert.strictEqual(inDoubt.body.error.code, "provider_unavailable")
      assert.include(inDoubt.body.events.at(-1).detail, "may have been applied")
      yield* gw.aerohub.faults.clear
      const repeated = yield* gw.fetch("POST", `/v1/refunds/${created.body.id}/events`, { body: { ...order, refundStatus: "CLOSED", rejectReason: 4 } })
      assert.strictEqual(repeated.status, 200, repeated.text)
      assert.strictEqual(repeated.body.status, "failed")
      assert.strictEqual(repeated.body.providerStatus, "CLOSED")
      assert.isUndefined(repeated.body.error)
    }))

  it.scopedLive("no answer in time: 504 naming the refund and the status it keeps, with AeroHub's advice (the same update again)", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
      assert.strictEqual(created.status, 201, created.text)
      const id: string = created.body.id
      const next = { ...order, refundStatus: "REFUNDED_PENDING" }
      yield* gw.aerohub.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "update_refund" })
      const late = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, { body: next })
      yield* gw.aerohub.faults.clear
      assert.strictEqual(late.status, 504, late.text)
      assert.deepInclude(late.body.error, { code: "outcome_unknown", provider: "aerohub", refundId: id, status: "pending" })
      assert.include(
        late.body.error.message,
        `no answer within 1s; the update may have been applied. AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ` +
          `refundkit update ${id} --data '${JSON.stringify(next)}' (on the gateway: POST /v1/refunds/${id}/events with that body).`
      )
      assert.notInclude(late.body.error.message, "resolve")
      assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body.status, "pending")
      const repeated = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, { body: next })
      assert.strictEqual(repeated.status, 200, repeated.text)
      assert.deepStrictEqual([repeated.body.status, repeated.body.providerStatus, repeated.body.error], ["pending", "REFUNDED_PENDING", undefined])
    }))

  it.scopedLive("an answer the gateway cannot read (AeroHub applied it): 502 unexpected_response naming the refund, the status it keeps and the field, with AeroHub's advice", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
      assert.strictEqual(created.status, 201, created.text)
      const id: string = created.body.id
      const next = { ...order, refundStatus: "REFUNDED_PENDING" }
      yield* gw.aerohub.faults.inject({ fault: { _tag: "SchemaViolation", afterProcessing: true }, route: "update_refund" })
      const unread = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, { body: next })
      yield* gw.aerohub.faults.clear
      // The create's unreadable answer is a 502 unexpected_response too: its own code and status, the doubt said by refundId and status.
      assert.strictEqual(unread.status, 502, unread.text)
      assert.deepInclude(unread.body.error, { code: "unexpected_response", provider: "aerohub", refundId: id, status: "pending" })
      assert.include(
        unread.body.error.message,
        `aerohub sent a response refundkit does not understand (field code: is missing); the update may have been applied. AeroHub takes a repeated update and changes nothing, ` +
          `so send the same update again and its answer is recorded on the refund: refundkit update ${id} --data '${JSON.stringify(next)}' (on the gateway: POST /v1/refunds/${id}/events with that body).`
      )
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* gw.aerohub.order(order.refundOrderNo), (o) => o.status)), "REFUNDED_PENDING", "AeroHub applied it")
      const inDoubt = yield* gw.fetch("GET", `/v1/refunds/${id}`)
      assert.deepStrictEqual([inDoubt.body.status, inDoubt.body.providerStatus], ["pending", "PROCESSING"])
      assert.deepStrictEqual(inDoubt.body.error, { code: "unexpected_response", message: unread.body.error.message })
      const repeated = yield* gw.fetch("POST", `/v1/refunds/${id}/events`, { body: next })
      assert.strictEqual(repeated.status, 200, repeated.text)
      assert.deepStrictEqual([repeated.body.status, repeated.body.providerStatus, repeated.body.error], ["pending", "REFUNDED_PENDING", undefined])
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* gw.aerohub.order(order.refundOrderNo), (o) => o.repeats)), 1, "applied once, the repeat taken as one")
    }))

  it.scopedLive("a client that hangs up does not stop its update: AeroHub's step is recorded", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "10 seconds" })
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
      assert.strictEqual(created.status, 201, created.text)
      yield* gw.aerohub.faults.inject({ fault: { _tag: "Latency", millis: 1500 }, route: "update_refund" })
      const sentBefore = yield* requests(gw.aerohub, "update_refund")
      const controller = new AbortController()
      const client = yield* Effect.fork(Effect.promise(() =>
        fetch(`${gw.info.url}/v1/refunds/${created.body.id}/events`, {
          method: "POST",
          signal: controller.signal,
          headers: { authorization: `Bearer ${Gateway.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })
        }).then((response) => `answered ${response.status}`, () => "hung up")
      ))
      // The client hangs up while AeroHub holds the update (1.5 s), not before the gateway sent it.
      yield* eventually(sent(gw.aerohub, "update_refund", sentBefore + 1), "the update reached AeroHub")
      controller.abort()
      assert.strictEqual(yield* Fiber.join(client), "hung up")
      const recorded = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`).pipe(
        Effect.filterOrFail((r) => r.body.providerStatus === "REFUNDED_PENDING", () => "not recorded"),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("3 seconds"))),
        Effect.either
      )
      const atAeroHub = Option.getOrUndefined(Option.map(yield* gw.aerohub.order(order.refundOrderNo), (o) => o.status))
      assert.isTrue(recorded._tag === "Right", `AeroHub is at ${atAeroHub}, the refund still says PROCESSING`)
    }))
})

describe("the typed client derived from the HttpApi", () => {
  it.scopedLive("creates, replays, reads, lists and fails with typed errors", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const key = Gateway.key()
      const created = yield* gw.client.refunds.create({ headers: { "idempotency-key": key }, payload: Gateway.exiromRefund() })
      assert.match(created.id, /^rfd_/)
      const [replayed, response] = yield* gw.client.refunds.create({
        headers: { "idempotency-key": key },
        payload: Gateway.exiromRefund(),
        withResponse: true
      })
      assert.strictEqual(replayed.id, created.id)
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers["idempotent-replayed"], "true")
      const got = yield* gw.client.refunds.get({ path: { id: created.id } })
      assert.strictEqual(got.id, created.id)
      const page = yield* gw.client.refunds.list({ urlParams: { provider: "exirom", limit: 10 } })
      assert.include(page.items.map((r) => r.id), created.id)
      const providers = yield* gw.client.providers.list()
      assert.includeMembers(providers.providers.map((p) => p.id), ["exirom", "airalo", "airpay"])

      const reused = yield* Effect.flip(gw.client.refunds.create({ headers: { "idempotency-key": key }, payload: Gateway.exiromRefund({ amount: "3.00" }) }))
      assert.strictEqual(reused._tag, "IdempotencyKeyReused")
      if (reused._tag === "IdempotencyKeyReused") assert.strictEqual(reused.refundId, created.id)
      const invalid = yield* Effect.flip(gw.client.refunds.create({ headers: { "idempotency-key": Gateway.key() }, payload: Gateway.exiromRefund({ amount: "x" }) }))
      assert.strictEqual(invalid._tag, "InvalidRequest")
      const missing = yield* Effect.flip(gw.client.refunds.get({ path: { id: "rfd_missing" } }))
      assert.strictEqual(missing._tag, "RefundNotFound")
      const health = yield* gw.client.health.readyz()
      assert.strictEqual(health.status, "ready")
    }))
})

/** A create to `path` whose client goes away once it is claimed and its call to Exirom is in flight. */
const hangUpDuringCreate = (gw: Gateway.Gateway, path: string, key: string) =>
  Effect.gen(function*() {
    yield* gw.exirom.faults.inject({ fault: { _tag: "Latency", millis: 1500 }, route: "refund" })
    const sentBefore = yield* requests(gw.exirom, "refund")
    const controller = new AbortController()
    const client = yield* Effect.fork(Effect.promise(() =>
      fetch(`${gw.info.url}${path}`, {
        method: "POST",
        signal: controller.signal,
        headers: { authorization: `Bearer ${Gateway.apiKey}`, "idempotency-key": key, "content-type": "application/json" },
        body: JSON.stringify(Gateway.exiromRefund())
      }).then((response) => `answered ${response.status}`, () => "hung up")
    ))
    // Hung up while Exirom holds the call (1.5 s), not before the gateway sent it.
    yield* eventually(sent(gw.exirom, "refund", sentBefore + 1), "the create's call reached Exirom")
    controller.abort()
    assert.strictEqual(yield* Fiber.join(client), "hung up")
  })

/** Calls to `route` a sandbox has received, counted as they arrive (before any latency it adds). */
const requests = (sandbox: Gateway.Gateway["exirom"] | Gateway.Gateway["aerohub"], route: string) =>
  Effect.map(sandbox.stats, (stats) => stats.requests[route] ?? 0)

/** Whether a sandbox has received `count` calls to `route`. */
const sent = (sandbox: Gateway.Gateway["exirom"] | Gateway.Gateway["aerohub"], route: string, count: number) =>
  Effect.map(requests(sandbox, route), (n) => n >= count)

/** The retry with the key: refused while the refund runs, then its replay once it is recorded (within 5 s). */
const replayOnceRecorded = (gw: Gateway.Gateway, key: string) =>
  post(gw, Gateway.exiromRefund(), key).pipe(
    Effect.filterOrFail((r) => r.status !== 409, () => "still in progress"),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds")))
  )

describe("POST /v1/refunds (direct route): a client that hangs up", () => {
  it.scopedLive("does not stop its refund: the refund is recorded, and a retry with the key replays it", () =>
    Effect.gen(function*() {
      // The access log goes to stdout: read it there, to see the hung-up request has its line.
      const stdout = yield* Gateway.captureStdout
      const gw = yield* Gateway.start({ server: { accessLog: true } })
      const key = Gateway.key()
      yield* hangUpDuringCreate(gw, "/v1/refunds", key)
      const replay = yield* replayOnceRecorded(gw, key).pipe(Effect.orDie)
      assert.strictEqual(replay.status, 200, replay.text)
      assert.strictEqual(replay.headers["idempotent-replayed"], "true")
      assert.include(["pending", "succeeded"], replay.body.status)
      assert.deepStrictEqual(replay.body.events.map((e: { readonly to: string }) => e.to), ["requested", replay.body.status])
      assert.strictEqual((yield* gw.exirom.stats).refundsPerformed, 1)
      // The hung-up request is in the access log with what it would have been told.
      // Its line is written when its handler ends, which may be just after the replay was answered.
      const lines = () => stdout.text().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
      yield* eventually(
        () => lines().some((l) => l["clientGone"] === true && l["status"] === 201 && l["path"] === "/v1/refunds"),
        "the access log has the hung-up request's line (clientGone, 201)"
      )
    }))
})

describe("POST /v1/refunds spelled as the router also accepts it: a client that hangs up", () => {
  for (const path of ["/v1/refunds/", "//v1/refunds", "/V1/refunds"]) {
    it.scopedLive(`${path} does not stop its refund either`, () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start()
        const key = Gateway.key()
        yield* hangUpDuringCreate(gw, path, key)
        const replay = yield* Effect.either(replayOnceRecorded(gw, key))
        assert.isTrue(replay._tag === "Right", `${path}: the refund was left in requested (409 refund_in_progress for 5 s)`)
      }))
  }
})
