// The gateway's JSON routes take a body only when it is declared as JSON: 415 unsupported_media_type
// otherwise, before the body is read, with nothing sent to a provider and nothing recorded.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHmac } from "node:crypto"
import * as Http from "node:http"
import * as Gateway from "./support/Gateway.js"

interface Answer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
  readonly body: any
}

/**
 * One request with exactly these headers (the test helper's client would set its own Content-Type):
 * `contentType` undefined sends none. A body is sent with its Content-Length.
 */
const send = (
  gw: Gateway.Gateway,
  method: string,
  path: string,
  options: { readonly body?: string | undefined; readonly contentType?: string | undefined; readonly headers?: Record<string, string>; readonly auth?: boolean }
) =>
  Effect.async<Answer>((resume) => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.auth !== false) headers["authorization"] = `Bearer ${Gateway.apiKey}`
    if (options.contentType !== undefined) headers["content-type"] = options.contentType
    if (options.body !== undefined) headers["content-length"] = String(Buffer.byteLength(options.body))
    const request = Http.request(`${gw.info.url}${path}`, { method, headers, agent: false }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (text += chunk))
      response.on("end", () => {
        let body: unknown
        try {
          body = text === "" ? undefined : JSON.parse(text)
        } catch {
          body = undefined
        }
        resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, text, body }))
      })
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end(options.body)
  })

const create = (gw: Gateway.Gateway, contentType: string | undefined, body: unknown = Gateway.exiromRefund({ amount: "1.00" }), key = Gateway.key("ct")) =>
  send(gw, "POST", "/v1/refunds", { body: typeof body === "string" ? body : JSON.stringify(body), contentType, headers: { "idempotency-key": key } })

// What the reliability suite sends, and what else a client gets wrong.
const refusedTypes: ReadonlyArray<string | undefined> = [
  "text/plain",
  "text/plain; charset=utf-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "application/json; charset=iso-8859-1",
  "application/xml",
  "application/jsonx",
  "json",
  "",
  undefined
]

const acceptedTypes: ReadonlyArray<string> = [
  "application/json",
  "application/json; charset=utf-8",
  "Application/JSON;Charset=\"UTF-8\"",
  "application/json; version=2",
  "application/merge-patch+json"
]

const assertUnsupported = (answer: Answer, label: string) => {
  assert.strictEqual(answer.status, 415, `${label}: ${answer.text}`)
  assert.strictEqual(answer.body?.error?.code, "unsupported_media_type", label)
  assert.deepStrictEqual(Object.keys(answer.body.error).sort(), ["code", "message"], label)
  assert.include(answer.body.error.message, "Content-Type", label)
  assert.include(answer.body.error.message, "send Content-Type: application/json", label)
  assert.strictEqual(answer.headers["content-type"], "application/json", label)
  assert.isString(answer.headers["x-request-id"], label)
}

for (const createRoute of ["direct", "httpapi"] as const) {
  describe(`POST /v1/refunds with a body not declared as JSON (${createRoute} route)`, () => {
    it.scopedLive("is 415 unsupported_media_type naming Content-Type and the rule; nothing is sent or recorded", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        for (const type of refusedTypes) {
          const label = type === undefined ? "no Content-Type" : JSON.stringify(type)
          assertUnsupported(yield* create(gw, type), label)
        }
        const utf16 = yield* create(gw, "application/json; charset=utf-16")
        assert.include(utf16.body.error.message, "charset other than UTF-8")
        const none = yield* create(gw, undefined)
        assert.include(none.body.error.message, "no Content-Type")
        assert.strictEqual((yield* gw.exirom.stats).requests["refund"] ?? 0, 0, "nothing was sent to the provider")
        assert.deepStrictEqual((yield* gw.fetch("GET", "/v1/refunds")).body.items, [], "nothing was recorded")

        // JSON, in each spelling the rule takes, is created.
        for (const type of acceptedTypes) {
          const created = yield* create(gw, type)
          assert.strictEqual(created.status, 201, `${type}: ${created.text}`)
        }
      }))

    it.scopedLive("checks the API key, then the Idempotency-Key, then the Content-Type; a body-less create without one is the body's 400", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const body = JSON.stringify(Gateway.exiromRefund({ amount: "1.00" }))
        const noApiKey = yield* send(gw, "POST", "/v1/refunds", { body, contentType: "text/plain", headers: { "idempotency-key": Gateway.key() }, auth: false })
        assert.strictEqual(noApiKey.status, 401, noApiKey.text)
        assert.strictEqual(noApiKey.body.error.code, "unauthorized")
        const noKey = yield* send(gw, "POST", "/v1/refunds", { body, contentType: "text/plain" })
        assert.strictEqual(noKey.status, 400, noKey.text)
        assert.strictEqual(noKey.body.error.code, "missing_idempotency_key")
        const badKey = yield* send(gw, "POST", "/v1/refunds", { body, contentType: "text/plain", headers: { "idempotency-key": "k".repeat(256) } })
        assert.strictEqual(badKey.status, 400, badKey.text)
        assert.deepStrictEqual(badKey.body.error.issues.map((i: { readonly path: string }) => i.path), ["Idempotency-Key"])

        // Nothing to type: the missing body is what the client is told about.
        const bodiless = yield* send(gw, "POST", "/v1/refunds", { headers: { "idempotency-key": Gateway.key() } })
        assert.strictEqual(bodiless.status, 400, bodiless.text)
        assert.strictEqual(bodiless.body.error.code, "invalid_request")
        assert.strictEqual((yield* gw.exirom.stats).requests["refund"] ?? 0, 0)
      }))
  })
}

describe("POST /v1/refunds/{id}/events with a body not declared as JSON", () => {
  it.scopedLive("is 415 and the update is neither sent to AeroHub nor recorded; as JSON it moves the refund", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF900415", purchaseOrderNo: "F300415" }
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: { provider: "aerohub", ...order, refundStatus: "PROCESSING" }, headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.status, 201, created.text)
      const before = (yield* gw.aerohub.stats).requests
      const update = JSON.stringify({ ...order, refundStatus: "REFUNDED_PENDING" })
      for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
        assertUnsupported(yield* send(gw, "POST", `/v1/refunds/${created.body.id}/events`, { body: update, contentType: type }), String(type))
      }
      assert.deepStrictEqual((yield* gw.aerohub.stats).requests, before, "nothing was sent to AeroHub")
      assert.deepStrictEqual((yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)).body, created.body, "nothing was recorded")
      // The API key is checked first, as for every other refusal.
      const anonymous = yield* send(gw, "POST", `/v1/refunds/${created.body.id}/events`, { body: update, contentType: "text/plain", auth: false })
      assert.strictEqual(anonymous.status, 401, anonymous.text)

      const step = yield* send(gw, "POST", `/v1/refunds/${created.body.id}/events`, { body: update, contentType: "application/json; charset=utf-8" })
      assert.strictEqual(step.status, 200, step.text)
      assert.strictEqual(step.body.providerStatus, "REFUNDED_PENDING")
    }))
})

describe("routes that read no JSON body", () => {
  it.scopedLive("sync takes no body: sent without one and without a Content-Type it syncs, and a body it does not read is not refused", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.body.status, "pending", created.text)
      const bare = yield* send(gw, "POST", `/v1/refunds/${created.body.id}/sync`, {})
      assert.strictEqual(bare.status, 200, bare.text)
      const emptyBody = yield* send(gw, "POST", `/v1/refunds/${created.body.id}/sync`, { body: "" })
      assert.strictEqual(emptyBody.status, 200, emptyBody.text)
      yield* gw.exirom.settle
      const withText = yield* send(gw, "POST", `/v1/refunds/${created.body.id}/sync`, { body: "please", contentType: "text/plain" })
      assert.strictEqual(withText.status, 200, withText.text)
      assert.strictEqual(withText.body.status, "succeeded")
    }))

  it.scopedLive("an Exirom callback is taken whatever its Content-Type: the provider's signature, not the header, vouches for it", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ exirom: { settleAfterMillis: 60_000 } })
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.body.status, "pending", created.text)
      yield* gw.exirom.settle
      // A callback as Exirom's sandbox signs it (its checksum covers mid, amount, currency and transaction).
      const body = `{"transactionId":12345,"refundId":${JSON.stringify(created.body.providerReference)},"requestId":${JSON.stringify(created.body.id)},` +
        `"mid":${JSON.stringify(gw.exirom.mid)},"transactionStatus":"SUCCEED","declineCode":null,"totalAmount":10.0,"orderCurrency":"USD","processedCurrency":"USD"}`
      const checksum = createHmac("sha256", gw.exirom.merchantSecret).update(`${gw.exirom.mid}|10.0|USD|12345`).digest("base64")
      const applied: Array<number> = []
      for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
        const ack = yield* send(gw, "POST", "/v1/webhooks/exirom?paymentMethod=card", { body, contentType: type, headers: { "x-checksum": checksum }, auth: false })
        assert.strictEqual(ack.status, 200, `${String(type)}: ${ack.text}`)
        applied.push(ack.body.applied)
      }
      assert.deepStrictEqual(applied, [1, 0, 0], "the first settles the refund, the others are its duplicates")
      assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)).body.status, "succeeded")
    }))
})
