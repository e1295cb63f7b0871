import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as AirpayCrypto from "../src/AirpayCrypto.js"
import * as AirpaySandbox from "../src/sandbox.js"

// The sandbox on its own, over real HTTP, driven the way Airpay's PHP sample drives Airpay.
const credentials = AirpaySandbox.defaultCredentials
const key = AirpayCrypto.encryptionKey(Redacted.make(credentials.username), Redacted.make(credentials.password))
const privatekey = Redacted.value(AirpayCrypto.privateKey(Redacted.make(credentials.secret), Redacted.make(credentials.username), Redacted.make(credentials.password)))
const today = () => AirpayCrypto.kolkataDate(Date.now())
const seedBase64 =
  "W3siYXBfdHJhbnNhY3Rpb25pZCI6IDEwMjY1LCJhbW91bnQiOiAiMTAwLjAwIn0seyJhcF90cmFuc2FjdGlvbmlkIjogMTAyNjQsImFtb3VudCI6ICIxMC4wMCJ9XQ=="

type Json = Record<string, any>

const seal = (data: Record<string, string>, date = today()) => ({
  encdata: Either.getOrThrow(AirpayCrypto.encryptWith(JSON.stringify(data), key, "a1b2c3d4e5f60718")),
  checksum: AirpayCrypto.checksum(data, date)
})

const post = (url: string, form: Record<string, string>, multipart = false) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    // Multipart written by hand, as PHP's cURL sends an array of fields.
    const boundary = "----airpaysandboxtest"
    const parts = Object.entries(form).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
    const request = HttpClientRequest.post(url).pipe(
      multipart
        ? HttpClientRequest.bodyText(`${parts.join("")}--${boundary}--\r\n`, `multipart/form-data; boundary=${boundary}`)
        : HttpClientRequest.bodyUrlParams(form)
    )
    const response = yield* client.execute(request)
    assert.strictEqual(response.status, 200)
    return (yield* response.json) as Json
  }).pipe(Effect.scoped)

/** The decrypted envelope, and whether it came encrypted. */
const open = (body: Json): { envelope: Json; encrypted: boolean } => {
  if (typeof body.response !== "string") return { envelope: body, encrypted: false }
  return { envelope: JSON.parse(Either.getOrThrow(AirpayCrypto.decrypt(body.response, key))) as Json, encrypted: true }
}

const tokenData = { client_id: credentials.clientId, client_secret: credentials.clientSecret, merchant_id: credentials.merchantId, grant_type: "client_credentials" }

const setup = (options?: AirpaySandbox.Options) =>
  Effect.gen(function*() {
    const handle = yield* AirpaySandbox.make(options)
    const oauth2 = (data: Record<string, string>, overrides: Record<string, string> = {}) =>
      Effect.map(post(`${handle.baseUrl}/oauth2/`, { merchant_id: credentials.merchantId, ...seal(data), ...overrides }), open)
    const token = Effect.map(oauth2(tokenData), ({ envelope }) => envelope.data.access_token as string)
    const refund = (data: Record<string, string>, options: { token?: string; overrides?: Record<string, string>; multipart?: boolean } = {}) =>
      Effect.gen(function*() {
        const query = options.token === undefined ? "" : `?token=${options.token}`
        const form = { merchant_id: credentials.merchantId, ...seal(data), privatekey, ...options.overrides }
        return open(yield* post(`${handle.baseUrl}/refund/${query}`, form, options.multipart))
      })
    return { handle, oauth2, token, refund }
  })

const transactions = (list: ReadonlyArray<{ ap_transactionid: number; amount: string }>) => ({ mode: "refund", transactions: AirpayCrypto.encodeTransactions(JSON.stringify(list)) })

describe("Airpay sandbox", () => {
  it.scopedLive("issues an encrypted token to the right client", () =>
    Effect.gen(function*() {
      const { handle, oauth2 } = yield* setup()
      const { encrypted, envelope } = yield* oauth2(tokenData)
      assert.isTrue(encrypted)
      assert.strictEqual(envelope.status_code, "200")
      assert.strictEqual(envelope.data.success, true)
      assert.match(envelope.data.access_token, /^[0-9a-f]{40}$/)
      assert.strictEqual(envelope.data.expires_in, "300")
      assert.strictEqual((yield* handle.stats).requests.auth, 1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a wrong client secret gets a 'success' envelope whose data.success is false", () =>
    Effect.gen(function*() {
      const { oauth2 } = yield* setup()
      const { envelope } = yield* oauth2({ ...tokenData, client_secret: "nope" })
      assert.strictEqual(envelope.status_code, "200")
      assert.strictEqual(envelope.status, "Success")
      assert.deepStrictEqual(envelope.data, { success: false, msg: "Invalid client id or secret" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("an unknown merchant gets Airpay's plain error shape; a wrong checksum is refused", () =>
    Effect.gen(function*() {
      const { oauth2 } = yield* setup()
      const merchant = yield* oauth2(tokenData, { merchant_id: "999" })
      assert.isFalse(merchant.encrypted)
      assert.deepStrictEqual(merchant.envelope, { status_code: "400", response_code: 501, status: "fail", message: "Invalid Merchant Id", data: [] })
      const stale = yield* oauth2(tokenData, { checksum: AirpayCrypto.checksum(tokenData, "2000-01-01") })
      assert.strictEqual(stale.envelope.status_code, "400")
      assert.strictEqual(stale.envelope.message, "Invalid checksum")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("refunds the seed's example once; a repeat is 'Refund already initiated' with the original refund_id", () =>
    Effect.gen(function*() {
      const { handle, refund, token } = yield* setup()
      const access = yield* token
      // Exactly the seed's data: its base64, and no mode (its sample leaves mode out).
      const first = yield* refund({ transactions: seedBase64 }, { token: access })
      assert.isTrue(first.encrypted)
      assert.strictEqual(first.envelope.status_code, "200")
      const [a, b] = first.envelope.data.transactions as Array<Json>
      assert.deepStrictEqual([a!.ap_transactionid, a!.success, a!.message], ["10265", "true", "Transaction accepted for refund"])
      assert.deepStrictEqual([b!.ap_transactionid, b!.success], ["10264", "true"])
      const again = yield* refund(transactions([{ ap_transactionid: 10265, amount: "100.00" }, { ap_transactionid: 10264, amount: "5.00" }]), { token: access })
      const [c, d] = again.envelope.data.transactions as Array<Json>
      assert.deepStrictEqual(c, { ap_transactionid: 10265, amount: "100.00", success: "false", message: AirpaySandbox.alreadyInitiatedMessage, refund_id: a!.refund_id })
      assert.deepStrictEqual(d, { ap_transactionid: 10264, amount: "10.00", success: "false", message: AirpaySandbox.alreadyInitiatedMessage, refund_id: b!.refund_id })
      const stats = yield* handle.stats
      assert.strictEqual(stats.refundsPerformed, 2)
      assert.deepStrictEqual(stats.refundsByTransaction, { "10265": 1, "10264": 1 })
      assert.deepStrictEqual(stats.requestsByTransaction, { "10265": 2, "10264": 2 })
      assert.strictEqual(stats.duplicatesRefused, 2)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a wrong privatekey or checksum is refused and refunds nothing", () =>
    Effect.gen(function*() {
      const { handle, refund, token } = yield* setup()
      const access = yield* token
      const data = transactions([{ ap_transactionid: 20001, amount: "1.00" }])
      const key_ = yield* refund(data, { token: access, overrides: { privatekey: "0".repeat(64) } })
      assert.deepStrictEqual(key_.envelope, { status_code: "400", response_code: "402", status: "fail", message: "Invalid private key", data: [] })
      const sum = yield* refund(data, { token: access, overrides: { checksum: AirpayCrypto.checksum(data, "2000-01-01") } })
      assert.strictEqual(sum.envelope.message, "Invalid checksum")
      const tampered = yield* refund(data, { token: access, overrides: { checksum: AirpayCrypto.checksum({ ...data, mode: "refunds" }, today()) } })
      assert.strictEqual(tampered.envelope.message, "Invalid checksum")
      const mode = yield* refund({ ...data, mode: "status" }, { token: access })
      assert.strictEqual(mode.envelope.message, "Invalid mode")
      assert.strictEqual((yield* handle.stats).refundsPerformed, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("per transaction: over-refunds and unknown ids are refused, the rest refunded; multipart is accepted", () =>
    Effect.gen(function*() {
      const { handle, refund, token } = yield* setup()
      const access = yield* token
      const answer = yield* refund(transactions([
        { ap_transactionid: 20002, amount: "500.00" },
        { ap_transactionid: 424242, amount: "1.00" },
        { ap_transactionid: 1_234_567, amount: "1000.00" },
        { ap_transactionid: 20003, amount: "75.50" }
      ]), { token: access, multipart: true })
      const items = (answer.envelope.data.transactions as Array<Json>).map((t) => [String(t.ap_transactionid), t.success, t.message])
      assert.deepStrictEqual(items, [
        ["20002", "false", "Refund amount exceeds the transaction amount"],
        ["424242", "false", "Invalid transaction id"],
        ["1234567", "true", "Transaction accepted for refund"],
        ["20003", "true", "Transaction accepted for refund"]
      ])
      const stats = yield* handle.stats
      assert.strictEqual(stats.refundsPerformed, 2)
      assert.strictEqual(stats.overRefundsRefused, 1)
      assert.deepStrictEqual((yield* handle.refunds).map((r) => [r.ap_transactionid, r.amount]), [["1234567", "1000.00"], ["20003", "75.50"]])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("a missing or expired token gets status_code 401", () =>
    Effect.gen(function*() {
      const { handle, refund, token } = yield* setup()
      const data = transactions([{ ap_transactionid: 20001, amount: "1.00" }])
      const missing = yield* refund(data)
      assert.deepStrictEqual(missing.envelope, { status_code: "401", response_code: "401", status: "fail", message: AirpaySandbox.invalidTokenMessage, data: [] })
      const access = yield* token
      yield* handle.expireTokens
      const expired = yield* refund(data, { token: access })
      assert.strictEqual(expired.envelope.status_code, "401")
      assert.strictEqual((yield* handle.stats).refundsPerformed, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.scopedLive("handle.env holds every REFUNDKIT_AIRPAY_* setting", () =>
    Effect.gen(function*() {
      const { handle } = yield* setup({ maxTransactionsPerCall: 7 })
      assert.deepStrictEqual(Object.keys(handle.env).sort(), [
        "REFUNDKIT_AIRPAY_BASE_URL",
        "REFUNDKIT_AIRPAY_CLIENT_ID",
        "REFUNDKIT_AIRPAY_CLIENT_SECRET",
        "REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL",
        "REFUNDKIT_AIRPAY_MERCHANT_ID",
        "REFUNDKIT_AIRPAY_PASSWORD",
        "REFUNDKIT_AIRPAY_SECRET",
        "REFUNDKIT_AIRPAY_USERNAME"
      ])
      assert.strictEqual(handle.env.REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL, "7")
      assert.match(handle.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/airpay\/pay\/v4\/api$/)
      assert.strictEqual(handle.provider, "airpay")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
