import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as AiraloRequest from "../src/AiraloRequest.js"
import * as AiraloSandbox from "../src/sandbox.js"

interface Answer {
  readonly status: number
  readonly body: unknown
  readonly headers: Headers
}

const call = (url: string, init: RequestInit = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, init)
    const text = await response.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
    return { status: response.status, body, headers: response.headers }
  })

/** Reads one value out of a JSON body. */
const at = (value: unknown, ...path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((current, key) => (typeof current === "object" && current !== null ? (current as Record<string, unknown>)[key] : undefined), value)

const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
  body: new URLSearchParams(fields).toString()
})

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json", ...headers },
  body: JSON.stringify(body)
})

const tokenOf = (sandbox: AiraloSandbox.AiraloSandbox) =>
  Effect.map(
    call(`${sandbox.baseUrl}/token`, form({ client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "client_credentials" })),
    (answer) => at(answer.body, "data", "access_token") as string
  )

const refund = (sandbox: AiraloSandbox.AiraloSandbox, token: string, body: unknown) =>
  call(`${sandbox.baseUrl}/refund`, json(body, { authorization: `Bearer ${token}` }))

describe("Airalo sandbox", () => {
  it.scopedLive("issues tokens for form and JSON credentials and refuses wrong ones in Airalo's shapes", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make()
      const viaForm = yield* call(`${sandbox.baseUrl}/token`, form({ client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "client_credentials" }))
      assert.strictEqual(viaForm.status, 200)
      assert.strictEqual(at(viaForm.body, "data", "token_type"), "Bearer")
      assert.strictEqual(at(viaForm.body, "data", "expires_in"), 31622400)
      assert.deepStrictEqual(at(viaForm.body, "meta"), { message: "success" })
      const viaJson = yield* call(`${sandbox.baseUrl}/token`, json({ client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "client_credentials" }))
      assert.strictEqual(viaJson.status, 200)
      const wrongSecret = yield* call(`${sandbox.baseUrl}/token`, form({ client_id: sandbox.clientId, client_secret: "nope", grant_type: "client_credentials" }))
      assert.deepStrictEqual([wrongSecret.status, wrongSecret.body], [401, { data: [], meta: { message: "Client authentication failed" } }])
      const wrongId = yield* call(`${sandbox.baseUrl}/token`, form({ client_id: "someone", client_secret: sandbox.clientSecret, grant_type: "client_credentials" }))
      assert.deepStrictEqual([wrongId.status, wrongId.body], [422, { data: { client_id: "The selected client id is invalid." }, meta: { message: "the parameter is invalid" } }])
      const missing = yield* call(`${sandbox.baseUrl}/token`, form({ client_id: sandbox.clientId }))
      assert.strictEqual(missing.status, 422)
      assert.deepStrictEqual(Object.keys(at(missing.body, "data") as object), ["client_secret", "grant_type"])
      const wrongMethod = yield* call(`${sandbox.baseUrl}/token`)
      assert.strictEqual(wrongMethod.status, 405)
      assert.strictEqual((yield* sandbox.stats)["tokensIssued"], 2)
    }))

  it.scopedLive("a refund needs a valid, unexpired token", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      const request = { iccids: [AiraloSandbox.ownedIccid(1)], reason: "NO_COVERAGE" }
      const none = yield* call(`${sandbox.baseUrl}/refund`, json(request))
      assert.strictEqual(none.status, 401)
      assert.deepStrictEqual(at(none.body, "data"), [])
      assert.include(at(none.body, "meta", "message"), "expired token")
      assert.strictEqual((yield* refund(sandbox, "made-up", request)).status, 401)
      const token = yield* tokenOf(sandbox)
      assert.strictEqual((yield* refund(sandbox, token, request)).status, 202)
      yield* sandbox.expireTokens
      assert.strictEqual((yield* refund(sandbox, token, request)).status, 401)
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("accepts a request with 202 and one refund_id for the whole call; JSON sent as text/plain and form bodies too", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      const token = yield* tokenOf(sandbox)
      const accepted = yield* refund(sandbox, token, { iccids: ["894000000000001", "894000000000002"], reason: "NO_COVERAGE", notes: "Connection issues in the region." })
      assert.strictEqual(accepted.status, 202)
      assert.isString(at(accepted.body, "data", "refund_id"))
      assert.match(String(at(accepted.body, "data", "created_at")), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/)
      assert.deepStrictEqual(at(accepted.body, "meta"), { message: "success" })
      // The docs' curl: JSON with Content-Type text/plain.
      const plain = yield* call(`${sandbox.baseUrl}/refund`, {
        method: "POST",
        headers: { "content-type": "text/plain", authorization: `Bearer ${token}` },
        body: JSON.stringify({ iccids: [AiraloSandbox.ownedIccid(2)], reason: "SLOW_SPEED" })
      })
      assert.strictEqual(plain.status, 202)
      const viaForm = yield* call(`${sandbox.baseUrl}/refund`, {
        ...form({ "iccids[]": AiraloSandbox.ownedIccid(3), reason: "APN_FAILURE" }),
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${token}` }
      })
      assert.strictEqual(viaForm.status, 202)
      const listInForm = yield* call(`${sandbox.baseUrl}/refund`, {
        ...form({ iccids: JSON.stringify([AiraloSandbox.ownedIccid(4), AiraloSandbox.ownedIccid(5)]), reason: "APN_FAILURE" }),
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${token}` }
      })
      assert.strictEqual(listInForm.status, 202)
      const all = yield* sandbox.accepted
      assert.deepStrictEqual(all.map((r) => r.iccids.length), [2, 1, 1, 2])
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 4)
    }))

  it.scopedLive("reads multipart/form-data, as the docs' token curl (--form) and the refund fragment send it", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      // fetch writes the multipart boundary into the content type itself.
      const multipart = (fields: ReadonlyArray<readonly [string, string]>, headers: Record<string, string> = {}) => {
        const body = new FormData()
        for (const [name, value] of fields) body.append(name, value)
        return { method: "POST", headers: { accept: "application/json", ...headers }, body }
      }
      const issued = yield* call(
        `${sandbox.baseUrl}/token`,
        multipart([["client_id", sandbox.clientId], ["client_secret", sandbox.clientSecret], ["grant_type", "client_credentials"]])
      )
      assert.strictEqual(issued.status, 200)
      const token = at(issued.body, "data", "access_token") as string
      assert.isString(token)
      const missing = yield* call(`${sandbox.baseUrl}/token`, multipart([["client_id", sandbox.clientId]]))
      assert.deepStrictEqual([missing.status, Object.keys(at(missing.body, "data") as object)], [422, ["client_secret", "grant_type"]])

      const bearer = { authorization: `Bearer ${token}` }
      // Repeated iccids[] fields, as PHP and Laravel read an array from a form.
      const repeated = yield* call(
        `${sandbox.baseUrl}/refund`,
        multipart([["iccids[]", AiraloSandbox.ownedIccid(1)], ["iccids[]", AiraloSandbox.ownedIccid(2)], ["reason", "NO_COVERAGE"], ["notes", "No signal."]], bearer)
      )
      assert.strictEqual(repeated.status, 202)
      // The fragment's example: iccids as one field holding a JSON list.
      const jsonList = yield* call(
        `${sandbox.baseUrl}/refund`,
        multipart([["iccids", '["894000000000001",  "894000000000002"]'], ["reason", "TRIP_CANCELLATION"], ["email", "ops@reseller.example.com"]], bearer)
      )
      assert.strictEqual(jsonList.status, 202)
      const invalid = yield* call(`${sandbox.baseUrl}/refund`, multipart([["iccids[]", "89x"], ["reason", "NO_COVERAGE"]], bearer))
      assert.deepStrictEqual([invalid.status, at(invalid.body, "data")], [422, { "iccids.0": "The iccids.0 field must be a string of digits." }])
      const all = yield* sandbox.accepted
      assert.deepStrictEqual(all.map((r) => [r.iccids, r.reason, r.notes, r.email]), [
        [[AiraloSandbox.ownedIccid(1), AiraloSandbox.ownedIccid(2)], "NO_COVERAGE", "No signal.", undefined],
        [["894000000000001", "894000000000002"], "TRIP_CANCELLATION", undefined, "ops@reseller.example.com"]
      ])
    }))

  it.scopedLive("validates in Airalo's two 422 shapes; a bad reason lists the accepted values", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      const token = yield* tokenOf(sandbox)
      const owned = AiraloSandbox.ownedIccid(1)
      const missing = yield* refund(sandbox, token, { reason: "NO_COVERAGE" })
      assert.deepStrictEqual([missing.status, missing.body], [422, { data: [], meta: { message: "The iccids field is required." } }])
      const seed = yield* refund(sandbox, token, { iccids: ["894000000000001", "894000000000002"], reason: "SERVICE_ISSUES", notes: "Connection issues in the region." })
      assert.strictEqual(seed.status, 422)
      assert.deepStrictEqual(seed.body, {
        data: { reason: `The selected reason is invalid. It must be one of the following: ${AiraloRequest.reasons.join(", ")}` },
        meta: { message: "the parameter is invalid" }
      })
      const several = yield* refund(sandbox, token, { iccids: [owned, "12ab", owned, owned, owned, owned], reason: "OTHERS", email: "nope" })
      assert.deepStrictEqual(at(several.body, "data"), {
        iccids: "The iccids field must not have more than 5 items.",
        "iccids.1": "The iccids.1 field must be a string of digits.",
        notes: "The notes field is required when reason is OTHERS.",
        email: "The email field must be a valid email address."
      })
      const long = yield* refund(sandbox, token, { iccids: [owned], reason: "NO_COVERAGE", notes: "x".repeat(256) })
      assert.deepStrictEqual(at(long.body, "data"), { notes: "The notes field must not be greater than 255 characters." })
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 0)
    }))

  it.scopedLive("refuses ICCIDs of another company with Airalo's message; owns the seeded ones and the 8910 rule", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false, ownedIccids: ["8933000000000000001"] })
      const token = yield* tokenOf(sandbox)
      const foreign = yield* refund(sandbox, token, { iccids: [AiraloSandbox.ownedIccid(1), AiraloSandbox.foreignIccid(1), "8912000000000000001"], reason: "NO_COVERAGE" })
      assert.deepStrictEqual([foreign.status, foreign.body], [422, {
        data: [],
        meta: { message: `The following ICCIDs do not belong to your company: ${AiraloSandbox.foreignIccid(1)}, 8912000000000000001` }
      }])
      assert.isFalse(sandbox.owns("891000000000000001"), "the rule is 19 digits")
      for (const iccid of [...AiraloSandbox.seededIccids, "8933000000000000001", AiraloSandbox.ownedIccid(42)]) assert.isTrue(sandbox.owns(iccid), iccid)
      yield* sandbox.own(AiraloSandbox.foreignIccid(1))
      assert.strictEqual((yield* refund(sandbox, token, { iccids: [AiraloSandbox.foreignIccid(1)], reason: "NO_COVERAGE" })).status, 202)
    }))

  it.scopedLive("duplicate requests are accepted again and visible in the stats", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
      const token = yield* tokenOf(sandbox)
      const iccid = AiraloSandbox.ownedIccid(7)
      const first = yield* refund(sandbox, token, { iccids: [iccid], reason: "NO_COVERAGE" })
      const second = yield* refund(sandbox, token, { iccids: [iccid, AiraloSandbox.ownedIccid(8)], reason: "NO_COVERAGE" })
      assert.notStrictEqual(at(first.body, "data", "refund_id"), at(second.body, "data", "refund_id"))
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 2)
      assert.deepStrictEqual(stats["refundRequestsPerIccid"], { [iccid]: 2, [AiraloSandbox.ownedIccid(8)]: 1 })
      assert.deepStrictEqual(stats["duplicateIccids"], [iccid])
    }))

  it.scopedLive("enforces the documented 1 refund per 5 minutes by default: 429, Retry-After, Too Many Attempts.", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make()
      assert.strictEqual(sandbox.env["REFUNDKIT_AIRALO_RATE_LIMIT"], "1/5m")
      const token = yield* tokenOf(sandbox)
      const first = yield* refund(sandbox, token, { iccids: [AiraloSandbox.ownedIccid(1)], reason: "NO_COVERAGE" })
      assert.strictEqual(first.status, 202)
      assert.strictEqual(first.headers.get("x-ratelimit-limit"), "1")
      assert.strictEqual(first.headers.get("x-ratelimit-remaining"), "0")
      const second = yield* refund(sandbox, token, { iccids: [AiraloSandbox.ownedIccid(2)], reason: "NO_COVERAGE" })
      assert.strictEqual(second.status, 429)
      assert.deepStrictEqual(second.body, { message: "Too Many Attempts." })
      const retryAfter = Number(second.headers.get("retry-after"))
      assert.isTrue(retryAfter > 290 && retryAfter <= 300, `Retry-After ${retryAfter}`)
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 1)
      assert.strictEqual(stats["rateLimited"], 1)
    }))

  it.scopedLive("the limits are configurable: a short window reopens, the token limit can be turned on", () =>
    Effect.gen(function*() {
      // A window long enough for three calls on a loaded machine (300 ms was not).
      const sandbox = yield* AiraloSandbox.make({ rateLimit: { requests: 2, perMillis: 1500 }, tokenRateLimit: { requests: 1, perMillis: 60_000 } })
      assert.strictEqual(sandbox.env["REFUNDKIT_AIRALO_RATE_LIMIT"], "2/1500ms")
      const token = yield* tokenOf(sandbox)
      const statuses: Array<number> = []
      for (let i = 1; i <= 3; i++) statuses.push((yield* refund(sandbox, token, { iccids: [AiraloSandbox.ownedIccid(i)], reason: "NO_COVERAGE" })).status)
      assert.deepStrictEqual(statuses, [202, 202, 429])
      yield* Effect.sleep("1600 millis")
      assert.strictEqual((yield* refund(sandbox, token, { iccids: [AiraloSandbox.ownedIccid(4)], reason: "NO_COVERAGE" })).status, 202)
      const secondToken = yield* call(`${sandbox.baseUrl}/token`, form({ client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "client_credentials" }))
      assert.strictEqual(secondToken.status, 429)
      const off = yield* AiraloSandbox.make({ rateLimit: false })
      assert.strictEqual(off.env["REFUNDKIT_AIRALO_RATE_LIMIT"], "off")
    }))

  it.scopedLive("an IP allowlist refuses other addresses with 403 and code 89", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ ipAllowlist: ["203.0.113.7"] })
      const blocked = yield* call(`${sandbox.baseUrl}/token`, form({ client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "client_credentials" }))
      assert.strictEqual(blocked.status, 403)
      assert.strictEqual(at(blocked.body, "code"), 89)
      const allowed = yield* AiraloSandbox.make({ ipAllowlist: ["127.0.0.1"] })
      assert.strictEqual((yield* call(`${allowed.baseUrl}/token`, form({ client_id: allowed.clientId, client_secret: allowed.clientSecret, grant_type: "client_credentials" }))).status, 200)
    }))

  it.scopedLive("handle.env holds every REFUNDKIT_AIRALO_* setting; faults come from core's Sandbox", () =>
    Effect.gen(function*() {
      const sandbox = yield* AiraloSandbox.make({ clientId: "c1", clientSecret: "s1" })
      assert.strictEqual(sandbox.provider, "airalo")
      assert.deepStrictEqual(sandbox.env, {
        REFUNDKIT_AIRALO_BASE_URL: `${sandbox.url}/v2`,
        REFUNDKIT_AIRALO_CLIENT_ID: "c1",
        REFUNDKIT_AIRALO_CLIENT_SECRET: "s1",
        REFUNDKIT_AIRALO_RATE_LIMIT: "1/5m"
      })
      yield* sandbox.faults.inject({ fault: { _tag: "ServerError", status: 502 }, route: "token" })
      assert.strictEqual((yield* call(`${sandbox.baseUrl}/token`, form({}))).status, 502)
      assert.strictEqual((yield* call(`${sandbox.url}/nowhere`)).status, 404)
      const stats = yield* sandbox.stats
      assert.deepStrictEqual(stats.requests, { token: 1, other: 1 })
    }))
})
