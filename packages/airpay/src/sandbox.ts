/**
 * A stateful simulator of Airpay's v4 `/oauth2/` and `/refund/` endpoints on
 * 127.0.0.1, built on core's `Sandbox.serve` (fault injection, `/__sandbox/*`).
 *
 * It does what Airpay does to a request: decrypts `encdata` with the merchant's key,
 * checks the dated checksum and the `privatekey`, issues tokens that expire, and
 * refunds seeded transactions once each, answering in Airpay's own (encrypted)
 * shapes, errors with HTTP 200 and `status_code` "400".
 *
 * Seeded transactions: {@link seededTransactions}, plus every `ap_transactionid` in
 * {@link autoSeed}'s range (1,000,000 to 9,999,999), which exists with an original
 * amount of 1000.00, so tests and benchmarks can use fresh ids without seeding.
 *
 * @since 0.1.0
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Multipart from "@effect/platform/Multipart"
import * as Money from "@refundkit/core/Money"
import * as Sandbox from "@refundkit/core/Sandbox"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import * as AirpayCrypto from "./AirpayCrypto.js"
import * as AirpayConfig from "./AirpayConfig.js"
import * as AirpayWire from "./AirpayWire.js"
import * as ExactJson from "./internal/exactJson.js"

/**
 * The merchant credentials the sandbox accepts (sandbox values only).
 *
 * @since 0.1.0
 */
export interface Credentials {
  readonly merchantId: string
  readonly username: string
  readonly password: string
  readonly secret: string
  readonly clientId: string
  readonly clientSecret: string
}

/**
 * The sandbox merchant.
 *
 * @since 0.1.0
 */
export const defaultCredentials: Credentials = {
  merchantId: "100042",
  username: "sbx_airpay_user",
  password: "sbx-airpay-password-7f3a",
  secret: "sbx-airpay-secret-91c2",
  clientId: "sbx_client_1",
  clientSecret: "sbx-airpay-client-secret-4d8e"
}

/**
 * Transactions that exist from the start, with their original amounts (INR): the
 * ids of Airpay's refund docs, and a few for examples.
 *
 * @since 0.1.0
 */
export const seededTransactions: Readonly<Record<string, string>> = {
  "10264": "10.00",
  "10265": "100.00",
  "20001": "2500.00",
  "20002": "499.99",
  "20003": "75.50"
}

/**
 * Every `ap_transactionid` in `[from, to]` exists with original amount `amount`.
 *
 * @since 0.1.0
 */
export const autoSeed = { from: 1_000_000, to: 9_999_999, amount: "1000.00" } as const

/**
 * Airpay's message for a transaction that already has a refund.
 *
 * @since 0.1.0
 */
export const alreadyInitiatedMessage = "Refund can not be performed. Refund already initiated."

/**
 * The sandbox's answer to a missing, unknown or expired token (Airpay documents none):
 * HTTP 200, `status_code` "401".
 *
 * @since 0.1.0
 */
export const invalidTokenMessage = "Invalid or expired token"

/**
 * How to start the sandbox.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Default: an ephemeral port. */
  readonly port?: number | undefined
  readonly credentials?: Partial<Credentials> | undefined
  /** Replaces {@link seededTransactions}: ap_transactionid -> original amount. */
  readonly transactions?: Readonly<Record<string, string>> | undefined
  /** Replaces {@link autoSeed}; `false` turns it off. */
  readonly autoSeed?: { readonly from: number; readonly to: number; readonly amount: string } | false | undefined
  /** Token lifetime the sandbox grants (default 300 s, as Airpay's docs say). */
  readonly tokenTtlSeconds?: number | undefined
  /** `REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL` in `handle.env` (default the plugin's). */
  readonly maxTransactionsPerCall?: number | undefined
  /**
   * How answers are sent: `encrypted` (default) as `{"response": "<encrypted>"}`, except those Airpay sends
   * unencrypted ("Invalid Merchant Id", token and form errors); or every answer `plain` (the bare envelope),
   * `wrapped` (`{"response": {<the envelope>}}`: what the docs' `json_decode($result)->response` reads when
   * an answer is not encrypted) or `double-braced` (`{ {<the envelope>} }`, the docs' error example as printed,
   * which is not JSON).
   */
  readonly answers?: "encrypted" | "plain" | "wrapped" | "double-braced" | undefined
}

/**
 * A refund the sandbox performed.
 *
 * @since 0.1.0
 */
export interface SandboxRefund {
  readonly ap_transactionid: string
  readonly refund_id: string
  readonly amount: string
}

/**
 * The running sandbox: the shared handle plus its merchant and its refunds.
 *
 * @since 0.1.0
 */
export interface AirpayHandle extends Sandbox.Handle {
  readonly credentials: Credentials
  /** Refunds performed so far, in order. */
  readonly refunds: Effect.Effect<ReadonlyArray<SandboxRefund>>
  /** Every token issued so far (tests check that none leaks into an error). */
  readonly issuedTokens: Effect.Effect<ReadonlyArray<string>>
  /** Adds or replaces a transaction; an id past 2^53 as its digits. */
  readonly seed: (apTransactionId: number | string, amount: string) => Effect.Effect<void>
}

/**
 * The path the sandbox serves Airpay's API under (as on Airpay's host).
 *
 * @since 0.1.0
 */
export const basePath = "/airpay/pay/v4/api"

const routeOf = (path: string) =>
  /\/oauth2\/?$/.test(path) ? "auth" : /\/refund\/?$/.test(path) ? "refund" : "other"

type Answer = { readonly status_code: string; readonly response_code: string | number; readonly status: string; readonly message: string; readonly data: unknown }

const failure = (message: string, responseCode: string | number = "400"): Answer => ({
  status_code: "400",
  response_code: responseCode,
  status: "fail",
  message,
  data: []
})

const success = (data: unknown): Answer => ({ status_code: "200", response_code: "00", status: "Success", message: "success", data })

// Every answer in the shape `Options.answers` asks for; `unencrypted` is what Airpay sends without encryption.
const shaped = (answers: NonNullable<Options["answers"]>, unencrypted: (answer: Answer) => HttpServerResponse.HttpServerResponse) => (answer: Answer) => {
  switch (answers) {
    case "encrypted":
      return unencrypted(answer)
    case "plain":
      return HttpServerResponse.unsafeJson(answer)
    case "wrapped":
      return HttpServerResponse.unsafeJson({ response: answer })
    case "double-braced":
      return HttpServerResponse.text(`{\n  ${JSON.stringify(answer)}\n}`, { contentType: "application/json" })
  }
}

/** A JSON value as PHP's string concatenation prints it, for the checksum. */
const phpString = (value: unknown): string =>
  typeof value === "string" ? value : typeof value === "number" ? String(value) : value === true ? "1" : value === false || value === null ? "" : JSON.stringify(value)

const amountPattern = /^\d{1,13}(\.\d{1,2})?$/

/**
 * Starts the sandbox.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<AirpayHandle, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const credentials: Credentials = { ...defaultCredentials, ...options.credentials }
    const key = AirpayCrypto.encryptionKey(Redacted.make(credentials.username), Redacted.make(credentials.password))
    const privateKey = Redacted.value(AirpayCrypto.privateKey(Redacted.make(credentials.secret), Redacted.make(credentials.username), Redacted.make(credentials.password)))
    const ttlSeconds = options.tokenTtlSeconds ?? 300
    const range = options.autoSeed === undefined ? autoSeed : options.autoSeed
    const transactions = new Map<string, bigint>()
    for (const [id, amount] of Object.entries(options.transactions ?? seededTransactions)) transactions.set(id, minorOf(amount))
    const tokens = new Map<string, number>()
    const issued: Array<string> = []
    const refunds = new Map<string, SandboxRefund>()
    const performed: Array<SandboxRefund> = []
    const refundsByTransaction: Record<string, number> = {}
    const requestsByTransaction: Record<string, number> = {}
    const counters = { tokensIssued: 0, refundCalls: 0, duplicatesRefused: 0, overRefundsRefused: 0, unknownTransactions: 0 }
    let nextRefundId = 12071

    const answers = options.answers ?? "encrypted"
    const plain = shaped(answers, (answer) => HttpServerResponse.unsafeJson(answer))
    const encrypted = (answer: Answer) =>
      answers === "encrypted"
        ? Effect.map(AirpayCrypto.encrypt(JSON.stringify(answer), key), (response) => HttpServerResponse.unsafeJson({ response }))
        : Effect.succeed(plain(answer))

    const originalOf = (id: string): bigint | undefined => {
      const seeded = transactions.get(id)
      if (seeded !== undefined) return seeded
      const n = Number(id)
      return range !== false && n >= range.from && n <= range.to ? minorOf(range.amount) : undefined
    }

    /** Today's IST date, and the date five minutes ago so a request sealed just before midnight IST still passes. */
    const acceptedDates = Effect.map(Clock.currentTimeMillis, (now) => new Set([AirpayCrypto.kolkataDate(now), AirpayCrypto.kolkataDate(now - 5 * 60_000)]))

    const checksumValid = (data: Record<string, unknown>, checksum: string) =>
      Effect.map(acceptedDates, (dates) => {
        const values = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, phpString(v)]))
        return [...dates].some((date) => AirpayCrypto.checksum(values, date) === checksum.toLowerCase())
      })

    /** Decrypts encdata to a JSON object, or says why not. */
    const open = (encdata: string): Either.Either<Record<string, unknown>, string> => {
      const text = AirpayCrypto.decrypt(encdata, key)
      if (Either.isLeft(text)) return Either.left("Invalid encdata: it cannot be decrypted")
      try {
        const value = JSON.parse(text.right) as unknown
        return typeof value === "object" && value !== null && !Array.isArray(value)
          ? Either.right(value as Record<string, unknown>)
          : Either.left("Invalid encdata: not a JSON object")
      } catch {
        return Either.left("Invalid encdata: not JSON")
      }
    }

    const oauth2 = (form: Record<string, string>) =>
      Effect.gen(function*() {
        const fields = Schema.decodeUnknownEither(AirpayWire.TokenForm)(form)
        if (Either.isLeft(fields)) return plain(failure("merchant_id, encdata and checksum are required"))
        if (fields.right.merchant_id !== credentials.merchantId) return plain(failure("Invalid Merchant Id", 501))
        const data = open(fields.right.encdata)
        if (Either.isLeft(data)) return plain(failure(data.left))
        if (!(yield* checksumValid(data.right, fields.right.checksum))) return yield* encrypted(failure("Invalid checksum"))
        const request = Schema.decodeUnknownEither(AirpayWire.TokenRequestData)(data.right)
        if (Either.isLeft(request)) return yield* encrypted(failure("Invalid request: client_id, client_secret, merchant_id and grant_type are required"))
        // Airpay answers a refused token request with a "success" envelope: only data.success tells.
        if (request.right.merchant_id !== credentials.merchantId) return yield* encrypted(success({ success: false, msg: "Invalid merchant id" }))
        if (request.right.client_id !== credentials.clientId || request.right.client_secret !== credentials.clientSecret) {
          return yield* encrypted(success({ success: false, msg: "Invalid client id or secret" }))
        }
        if (request.right.grant_type !== "client_credentials") return yield* encrypted(success({ success: false, msg: "Invalid grant type" }))
        const token = randomBytes(20).toString("hex")
        const now = yield* Clock.currentTimeMillis
        tokens.set(token, now + ttlSeconds * 1000)
        issued.push(token)
        counters.tokensIssued += 1
        return yield* encrypted(success({ success: true, access_token: token, expires_in: String(ttlSeconds), token_type: "Bearer", scope: null }))
      })

    const refund = (form: Record<string, string>, token: string | null) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const expiry = token === null ? undefined : tokens.get(token)
        if (expiry === undefined || expiry <= now) return plain({ ...failure(invalidTokenMessage, "401"), status_code: "401" })
        const fields = Schema.decodeUnknownEither(AirpayWire.RefundForm)(form)
        if (Either.isLeft(fields)) return plain(failure("merchant_id, encdata, checksum and privatekey are required"))
        if (fields.right.merchant_id !== credentials.merchantId) return plain(failure("Invalid Merchant Id", 501))
        if (fields.right.privatekey.toLowerCase() !== privateKey) return yield* encrypted(failure("Invalid private key", "402"))
        const data = open(fields.right.encdata)
        if (Either.isLeft(data)) return plain(failure(data.left))
        if (!(yield* checksumValid(data.right, fields.right.checksum))) return yield* encrypted(failure("Invalid checksum"))
        const request = Schema.decodeUnknownEither(AirpayWire.RefundRequestData)(data.right)
        if (Either.isLeft(request)) return yield* encrypted(failure("Invalid request: transactions is required"))
        // The docs require mode "refund"; their own sample leaves it out, so absent is accepted too.
        if (request.right.mode !== undefined && request.right.mode !== "refund") return yield* encrypted(failure("Invalid mode"))
        const json = AirpayCrypto.decodeTransactions(request.right.transactions)
        // Read as PHP's json_decode reads it: an integer id keeps every digit, past 2^53 too.
        const lines = Either.flatMap(json, (text) =>
          Either.flatMap(
            Either.mapLeft(ExactJson.parse(text), () => "not JSON"),
            (value) => Either.mapLeft(Schema.decodeUnknownEither(AirpayWire.WireTransactions)(value), () => "not a list of {ap_transactionid, amount}")
          ))
        if (Either.isLeft(lines)) return yield* encrypted(failure("Invalid transactions data"))
        counters.refundCalls += 1
        const results = lines.right.map((line) => perform(line.ap_transactionid, line.amount))
        return yield* encrypted(success({ transactions: results }))
      })

    /** One transaction's refund; synchronous, so concurrent calls cannot both refund it. */
    const perform = (id: string, amount: string): typeof AirpayWire.RefundResult.Encoded => {
      requestsByTransaction[id] = (requestsByTransaction[id] ?? 0) + 1
      // Airpay writes the id as a JSON number; JSON.stringify cannot write one past 2^53, which goes as its digits.
      const numeric = Number.isSafeInteger(Number(id)) ? Number(id) : id
      const existing = refunds.get(id)
      if (existing !== undefined) {
        counters.duplicatesRefused += 1
        return { ap_transactionid: numeric, amount: existing.amount, success: "false", message: alreadyInitiatedMessage, refund_id: existing.refund_id }
      }
      if (!amountPattern.test(amount) || minorOf(amount) <= 0n) {
        return { ap_transactionid: numeric, success: "false", message: "Invalid refund amount" }
      }
      const original = originalOf(id)
      if (original === undefined) {
        counters.unknownTransactions += 1
        return { ap_transactionid: numeric, success: "false", message: "Invalid transaction id" }
      }
      if (minorOf(amount) > original) {
        counters.overRefundsRefused += 1
        return { ap_transactionid: numeric, success: "false", message: "Refund amount exceeds the transaction amount" }
      }
      const refund: SandboxRefund = { ap_transactionid: id, refund_id: String(nextRefundId++), amount: Money.formatMinor(minorOf(amount), 2) }
      refunds.set(id, refund)
      performed.push(refund)
      refundsByTransaction[id] = (refundsByTransaction[id] ?? 0) + 1
      // As in Airpay's example: an accepted item carries the id as a string and no amount.
      return { ap_transactionid: id, success: "true", message: "Transaction accepted for refund", refund_id: refund.refund_id }
    }

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const url = new URL(request.url, "http://sandbox")
      const route = url.pathname.startsWith(basePath) ? routeOf(url.pathname) : "other"
      if (route === "other") return HttpServerResponse.unsafeJson({ status_code: "404", status: "fail", message: "Not Found", data: [] }, { status: 404 })
      if (request.method !== "POST") return HttpServerResponse.unsafeJson({ status_code: "405", status: "fail", message: "Method Not Allowed", data: [] }, { status: 405 })
      const form = yield* readForm(request)
      return route === "auth" ? yield* oauth2(form) : yield* refund(form, url.searchParams.get("token"))
    }).pipe(Effect.catchAll(() => Effect.succeed(plain(failure("Invalid Request")))))

    const server = yield* Sandbox.serve(Sandbox.orServerError(app), {
      ...(options.port === undefined ? {} : { port: options.port }),
      routeOf,
      expireTokens: Effect.sync(() => tokens.clear()),
      stats: Effect.sync(() => ({
        refundsPerformed: performed.length,
        refundsByTransaction: { ...refundsByTransaction },
        requestsByTransaction: { ...requestsByTransaction },
        ...counters
      })),
      schemaViolation: success({ transactions: "not-a-list" })
    })
    const baseUrl = `${server.url}${basePath}`
    return {
      ...server,
      provider: "airpay",
      baseUrl,
      credentials,
      env: {
        REFUNDKIT_AIRPAY_BASE_URL: baseUrl,
        REFUNDKIT_AIRPAY_MERCHANT_ID: credentials.merchantId,
        REFUNDKIT_AIRPAY_USERNAME: credentials.username,
        REFUNDKIT_AIRPAY_PASSWORD: credentials.password,
        REFUNDKIT_AIRPAY_SECRET: credentials.secret,
        REFUNDKIT_AIRPAY_CLIENT_ID: credentials.clientId,
        REFUNDKIT_AIRPAY_CLIENT_SECRET: credentials.clientSecret,
        REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL: String(options.maxTransactionsPerCall ?? AirpayConfig.defaultMaxTransactionsPerCall)
      },
      refunds: Effect.sync(() => [...performed]),
      issuedTokens: Effect.sync(() => [...issued]),
      seed: (apTransactionId, amount) => Effect.sync(() => void transactions.set(String(apTransactionId).replace(/^0+(?=\d)/, ""), minorOf(amount)))
    }
  })

const minorOf = (amount: string): bigint => {
  const parsed = Money.parseMinor(amount, 2)
  return Either.isRight(parsed) ? parsed.right : -1n
}

/** The form fields of a urlencoded, multipart (what PHP's cURL sends for an array) or JSON body. */
const readForm = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const type = (request.headers["content-type"] ?? "").toLowerCase()
    const form: Record<string, string> = {}
    if (type.includes("multipart/form-data")) {
      const parts = yield* Stream.runCollect(request.multipartStream)
      for (const part of Chunk.toReadonlyArray(parts)) if (Multipart.isField(part) && !(part.key in form)) form[part.key] = part.value
    } else if (type.includes("application/json")) {
      const body = yield* request.json
      if (typeof body === "object" && body !== null) {
        for (const [k, v] of Object.entries(body)) if (typeof v === "string") form[k] = v
      }
    } else {
      for (const [k, v] of yield* request.urlParamsBody) if (!(k in form)) form[k] = v
    }
    return form
  })
