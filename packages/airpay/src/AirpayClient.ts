/**
 * Airpay v4 auth and HTTP: the encrypted `/oauth2/` token call (cached below its
 * `expires_in`), and the encrypted, checksummed refund call with the token in the
 * query string and one re-authentication when Airpay refuses the token.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { ProviderAuthFailed, UnexpectedResponse, type ProviderError } from "@refundkit/core/RefundError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AirpayCrypto from "./AirpayCrypto.js"
import type { AirpayConfig } from "./AirpayConfig.js"
import { envelopeError, isTokenRejection, provider } from "./AirpayStatus.js"
import * as AirpayWire from "./AirpayWire.js"
import * as ExactJson from "./internal/exactJson.js"

/**
 * One transaction as the refund call sends it.
 *
 * @since 0.1.0
 */
export interface RefundLine {
  /** The id's digits, as `AirpayRequest` decodes it: sent as a JSON number, digit for digit. */
  readonly ap_transactionid: string
  /** Exactly two decimals: "100.00". */
  readonly amount: string
}

/**
 * The Airpay API as the plugin uses it.
 *
 * @since 0.1.0
 */
export interface AirpayClient {
  /** A valid access token, fetched once and cached below its lifetime. */
  readonly token: Effect.Effect<Redacted.Redacted<string>, ProviderError>
  /** One refund call carrying `lines`; the per-transaction outcomes as Airpay sent them. */
  readonly refund: (lines: ReadonlyArray<RefundLine>) => Effect.Effect<AirpayWire.RefundData, ProviderError>
}

/**
 * Tokens live about five minutes; refreshing one minute early keeps a call that is
 * queued behind the rate limiter from carrying a token that dies on the way.
 *
 * @since 0.1.0
 */
export const tokenRefreshMarginMillis = 60_000

const decodeAt = <A, I>(path: string, schema: Schema.Schema<A, I>, value: unknown, httpStatus: number) =>
  Effect.mapError(ProviderHttp.decode(provider, schema, value, httpStatus), (error) =>
    new UnexpectedResponse({
      provider,
      path: error.path === "" ? path : path === "" ? error.path : `${path}.${error.path}`,
      detail: error.detail,
      httpStatus
    }))

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const decodeEncrypted = Schema.decodeUnknownOption(AirpayWire.Encrypted)

/**
 * The JSON of an answer's body. A body that is not JSON but is one JSON object inside a
 * second pair of braces (`{ {...} }`, the docs' own error example) is read as that object:
 * `{ {` starts no JSON value, so no valid answer can be misread this way.
 */
const bodyOf = (received: ProviderHttp.Received): Effect.Effect<unknown, UnexpectedResponse> => {
  // Read again from the text, not core's parse: an id past 2^53 keeps its digits.
  const whole = ExactJson.parse(received.text)
  if (Either.isRight(whole)) return Effect.succeed(whole.right)
  const inner = /^\s*\{\s*(\{[\s\S]*\})\s*\}\s*$/.exec(received.text)?.[1]
  const parsed = inner === undefined ? undefined : ExactJson.parse(inner)
  return parsed !== undefined && Either.isRight(parsed) && isObject(parsed.right) ? Effect.succeed(parsed.right) : ProviderHttp.json(provider, received)
}

/**
 * Reads an answer's envelope: `{"response": "<encrypted>"}` decrypted with the key, a
 * plain JSON envelope (Airpay sends some answers unencrypted), or `{"response": {<the
 * envelope>}}`: what the docs' `json_decode($result)->response` reads from an answer that
 * is not encrypted. The body text never appears in an error: it may carry a token.
 *
 * @since 0.1.0
 */
export const readEnvelope = (
  received: ProviderHttp.Received,
  key: Redacted.Redacted<string>
): Effect.Effect<AirpayWire.Envelope, ProviderError> =>
  Effect.gen(function*() {
    const body = yield* bodyOf(received)
    if (isObject(body) && "response" in body) {
      // Decoded as the envelope, never echoed: a schema error's "actual" would print the token it carries.
      if (isObject(body.response)) return yield* decodeAt("response", AirpayWire.Envelope, body.response, received.status)
      const sealed = decodeEncrypted(body)
      if (Option.isNone(sealed)) {
        return yield* new UnexpectedResponse({ provider, path: "response", detail: "must be the encrypted answer (a string) or Airpay's envelope (an object)", httpStatus: received.status })
      }
      const { response } = sealed.value
      const plain = AirpayCrypto.decrypt(response, key)
      if (Either.isLeft(plain)) {
        return yield* new UnexpectedResponse({ provider, path: "response", detail: `the encrypted response cannot be read: ${plain.left}`, httpStatus: received.status })
      }
      const parsed = ExactJson.parse(plain.right)
      if (Either.isLeft(parsed)) {
        return yield* new UnexpectedResponse({ provider, path: "response", detail: "the decrypted response is not JSON", httpStatus: received.status })
      }
      return yield* decodeAt("response", AirpayWire.Envelope, parsed.right, received.status)
    }
    return yield* decodeAt("", AirpayWire.Envelope, body, received.status)
  })

/**
 * The refund call's transactions as Airpay's docs write them (`[{"ap_transactionid": 10265, "amount":
 * "100.00"}]`). Written by hand: the id is a JSON number with every digit, which `JSON.stringify` of a
 * double cannot write past 2^53. Anything but digits is written as a JSON string, never spliced in.
 */
const transactionsJson = (lines: ReadonlyArray<RefundLine>): string =>
  `[${
    lines.map((line) =>
      `{"ap_transactionid":${/^\d+$/.test(line.ap_transactionid) ? line.ap_transactionid : JSON.stringify(line.ap_transactionid)},"amount":${JSON.stringify(line.amount)}}`
    ).join(",")
  }]`

type RefundAnswer =
  | { readonly _tag: "TokenRefused"; readonly detail: string }
  | { readonly _tag: "Answer"; readonly envelope: AirpayWire.Envelope; readonly httpStatus: number }

/**
 * Builds the client. Needs an `HttpClient` from the caller.
 *
 * @since 0.1.0
 */
export const make = (config: AirpayConfig): Effect.Effect<AirpayClient, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const key = AirpayCrypto.encryptionKey(config.username, config.password)
    const privateKey = AirpayCrypto.privateKey(config.secret, config.username, config.password)

    /** encdata and checksum of `data`, computed fresh for every send (new IV, today's date). */
    const seal = (data: Readonly<Record<string, string>>) =>
      Effect.all({ encdata: AirpayCrypto.encrypt(JSON.stringify(data), key), checksum: AirpayCrypto.checksumNow(data) })

    const fetchToken = Effect.gen(function*() {
      const data: typeof AirpayWire.TokenRequestData.Encoded = {
        client_id: config.clientId,
        client_secret: Redacted.value(config.clientSecret),
        merchant_id: config.merchantId,
        grant_type: "client_credentials"
      }
      const { checksum, encdata } = yield* seal(data)
      const request = HttpClientRequest.post(`${config.baseUrl}/oauth2/`).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUrlParams({ merchant_id: config.merchantId, encdata, checksum })
      )
      const received = yield* ProviderHttp.execute(http, provider, request)
      const refused = ProviderHttp.statusError(provider, received, "from the token endpoint")
      if (refused._tag === "Some") return yield* refused.value
      const envelope = yield* readEnvelope(received, key)
      if (envelope.status_code !== "200") {
        const error = envelopeError(envelope)
        return yield* error._tag === "ProviderUnavailable"
          ? error
          : new ProviderAuthFailed({ provider, detail: `the token request was refused (status_code ${envelope.status_code}): ${envelope.message ?? "no message"}` })
      }
      // The envelope can say "success" while data.success says no: only data decides.
      const data_ = yield* decodeAt("data", AirpayWire.TokenData, envelope.data, received.status)
      if (!("access_token" in data_)) {
        return yield* new ProviderAuthFailed({
          provider,
          detail: `the token request was refused: ${data_.msg ?? data_.message ?? "data.success is false"}`
        })
      }
      return { token: Redacted.make(data_.access_token), expiresInMillis: data_.expires_in * 1000 } satisfies ProviderHttp.IssuedToken
    })

    const cache = yield* ProviderHttp.makeTokenCache(fetchToken, { provider, refreshMarginMillis: tokenRefreshMarginMillis })

    const refundOnce = (lines: ReadonlyArray<RefundLine>) => (token: Redacted.Redacted<string>) =>
      Effect.gen(function*() {
        const transactions = AirpayCrypto.encodeTransactions(transactionsJson(lines))
        // mode goes inside the encrypted, checksummed data: the docs require it, the sample omits it.
        const { checksum, encdata } = yield* seal({ mode: "refund", transactions })
        const request = HttpClientRequest.post(`${config.baseUrl}/refund/`).pipe(
          HttpClientRequest.setUrlParam("token", Redacted.value(token)),
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUrlParams({ merchant_id: config.merchantId, encdata, checksum, privatekey: Redacted.value(privateKey) })
        )
        const received = yield* ProviderHttp.execute(http, provider, request)
        if (received.status === 401) return { _tag: "TokenRefused", detail: "HTTP 401" } satisfies RefundAnswer as RefundAnswer
        const failed = ProviderHttp.statusError(provider, received)
        if (failed._tag === "Some") return yield* failed.value
        const envelope = yield* readEnvelope(received, key)
        // An answer that lists per-transaction outcomes was processed, whatever its message says about
        // the token: resending it with a fresh token could refund its accepted transactions twice.
        if (envelope.status_code !== "200" && isTokenRejection(envelope) && !listsTransactions(envelope)) {
          return { _tag: "TokenRefused", detail: envelope.message ?? `status_code ${envelope.status_code}` } as RefundAnswer
        }
        return { _tag: "Answer", envelope, httpStatus: received.status } as RefundAnswer
      })

    const listsTransactions = (envelope: AirpayWire.Envelope) => {
      const listed = Schema.decodeUnknownOption(AirpayWire.RefundData)(envelope.data)
      return listed._tag === "Some" && listed.value.transactions.length > 0
    }

    const refund = (lines: ReadonlyArray<RefundLine>) =>
      Effect.gen(function*() {
        const answer = yield* ProviderHttp.withToken(cache, refundOnce(lines), (a) => a._tag === "TokenRefused")
        if (answer._tag === "TokenRefused") {
          return yield* new ProviderAuthFailed({ provider, detail: `Airpay refused a freshly issued access token: ${answer.detail}` })
        }
        if (answer.envelope.status_code !== "200") {
          // A failure envelope that still lists per-transaction outcomes is read item by item: an item
          // Airpay accepted must not be declined with the rest.
          const listed = Schema.decodeUnknownOption(AirpayWire.RefundData)(answer.envelope.data)
          if (listed._tag === "Some" && listed.value.transactions.length > 0) return listed.value
          return yield* envelopeError(answer.envelope)
        }
        return yield* decodeAt("data", AirpayWire.RefundData, answer.envelope.data, answer.httpStatus)
      })

    return { token: cache.get, refund }
  })
