/**
 * A stateful simulator of Exirom's card-refund API on 127.0.0.1, built on core's
 * `Sandbox.serve` (fault injection, `/__sandbox/*` control routes, request counts).
 *
 * It keeps seeded card payments with captured amounts, refunds partially up to the
 * captured total (an over-refund is 200 `FAILED` with decline code 8), replays a
 * repeated `requestId` without refunding again (409 for another payload), issues
 * JWTs that expire, settles refunds NEW -> PROCESSING -> SUCCEED after
 * `settleAfterMillis`, and POSTs signed callbacks to `callbackUrl`.
 *
 * @since 0.1.0
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Money from "@refundkit/core/Money"
import * as Sandbox from "@refundkit/core/Sandbox"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createHmac, randomUUID } from "node:crypto"
import { javaDouble } from "./internal/javaDouble.js"
import * as State from "./internal/sandboxState.js"

/**
 * A seeded card payment.
 *
 * @since 0.1.0
 */
export type Transaction = State.Transaction

/**
 * Transaction ids in `from..to` that are not seeded explicitly exist on first use as
 * SUCCEED payments of `amount` `currency`: benchmarks get any number of refundable
 * payments without seeding them one by one.
 *
 * @since 0.1.0
 */
export type AutoSeed = State.AutoSeed

/**
 * The decline code of an over-refund: 8 DATA_VALIDATION_ERROR (fix the request).
 *
 * @since 0.1.0
 */
export const overRefundDeclineCode = State.overRefundDeclineCode

/**
 * The payments every sandbox starts with unless `transactions` is given:
 * 12345 (the reference's example) 100.00 USD, 20001 250.00 EUR, 20002 5000 JPY,
 * 30001 FAILED and 30002 PROCESSING (not refundable), 30003 40.00 USD whose refunds
 * settle FAILED with decline code 6 (LIMITED_BY_ISSUER_BANK_ERROR), 30004 40.00 USD whose
 * refunds settle CHARGEBACK (the cardholder also won a dispute).
 *
 * @since 0.1.0
 */
export const defaultTransactions: ReadonlyArray<Transaction> = [
  { transactionId: 12345, amount: "100.00", currency: "USD" },
  { transactionId: 20001, amount: "250.00", currency: "EUR" },
  { transactionId: 20002, amount: "5000.00", currency: "JPY" },
  { transactionId: 30001, amount: "80.00", currency: "USD", status: "FAILED" },
  { transactionId: 30002, amount: "80.00", currency: "USD", status: "PROCESSING" },
  { transactionId: 30003, amount: "40.00", currency: "USD", refundsDeclineWith: 6 },
  { transactionId: 30004, amount: "40.00", currency: "USD", refundsChargedBack: true }
]

/**
 * Default auto-seeded range: 1,000,000 to 9,999,999, each 100.00 EUR.
 *
 * @since 0.1.0
 */
export const defaultAutoSeed: AutoSeed = { from: 1_000_000, to: 9_999_999, amount: "100.00", currency: "EUR" }

/**
 * How callbacks are delivered: `delayMillis` after a refund settles, only the final
 * status (default) or the whole lifecycle, in order or reversed, each sent
 * `1 + duplicates` times.
 *
 * @since 0.1.0
 */
export interface CallbackOptions {
  readonly delayMillis?: number | undefined
  readonly lifecycle?: boolean | undefined
  readonly outOfOrder?: boolean | undefined
  readonly duplicates?: number | undefined
}

/**
 * What a sandbox starts with; every option has a sandbox default.
 *
 * @since 0.1.0
 */
export interface Options {
  readonly port?: number | undefined
  readonly merchantKey?: string | undefined
  readonly merchantSecret?: string | undefined
  readonly mid?: string | undefined
  readonly transactions?: ReadonlyArray<Transaction> | undefined
  /** `false` turns auto-seeding off. */
  readonly autoSeed?: AutoSeed | false | undefined
  /**
   * Which documented shape `/v1/auth` answers with: a bare JSON string (the reference, default), `{token}`,
   * `{merchantKey, token}`, or `text`: the "plain string" as a Spring controller returning a String sends
   * it, unquoted `text/plain`.
   */
  readonly authResponse?: "string" | "token" | "merchantKey" | "text" | undefined
  /** Token lifetime, default 30 days. */
  readonly tokenTtlSeconds?: number | undefined
  /** How long a refund stays NEW then PROCESSING before it settles; default 200 ms. */
  readonly settleAfterMillis?: number | undefined
  readonly callbacks?: CallbackOptions | undefined
}

/**
 * One callback the sandbox POSTed, and the HTTP status it got back (0: no answer).
 *
 * @since 0.1.0
 */
export interface Delivery {
  readonly refundId: string
  readonly transactionStatus: string
  readonly url: string
  readonly httpStatus: number
}

/**
 * A running Exirom sandbox.
 *
 * @since 0.1.0
 */
export interface ExiromSandbox extends Sandbox.Handle {
  readonly merchantSecret: string
  readonly mid: string
  /** Seeds (or replaces) a card payment. */
  readonly addTransaction: (transaction: Transaction) => Effect.Effect<void>
  /** Settles every open refund now (and releases their callbacks). */
  readonly settle: Effect.Effect<void>
  /** POSTs a signed callback for a refund now, with its current or the given status (dies for an unknown refundId: a test bug). */
  readonly sendCallback: (refundId: string, transactionStatus?: string) => Effect.Effect<Delivery>
  /**
   * Charges back a refund that stands `SUCCEED`: the cardholder disputed it and won, so Exirom's word for it is
   * `CHARGEBACK` from now on (status and info calls), and a refund with a `callbackUrl` gets the `CHARGEBACK`
   * callback now (`1 + callbacks.duplicates` times), before this returns; the deliveries are returned. Dies for an
   * unknown refundId or a refund not `SUCCEED` (a test bug). Also `POST /__sandbox/chargeback` (`chargebackPath`).
   *
   * @since 0.6.0
   */
  readonly chargeBack: (refundId: string) => Effect.Effect<ReadonlyArray<Delivery>>
  /**
   * Reverses a refund that stands `SUCCEED`: the money did not reach the cardholder (the card account closed) and
   * is back with the merchant, so Exirom's word for it is `FAILED` with `declineCode` (default
   * `reversalDeclineCode`) from now on, and the payment has that amount left to refund again. Exirom's docs list
   * `FAILED` with decline codes and "card account closed" among its causes, but do not describe a refund moving
   * from `SUCCEED` to `FAILED`: this simulates the reversal Stripe documents, to show what refundkit does if Exirom
   * ever reports one. Callbacks as `chargeBack` sends them. Dies for an unknown refundId or a refund not `SUCCEED`
   * (a test bug). Also `POST /__sandbox/reversal` (`reversalPath`).
   *
   * @since 0.6.0
   */
  readonly reverse: (refundId: string, declineCode?: number) => Effect.Effect<ReadonlyArray<Delivery>>
  /** Callbacks delivered so far. */
  readonly deliveries: Effect.Effect<ReadonlyArray<Delivery>>
}

/**
 * The control route that charges back a refund that stands `SUCCEED` (`ExiromSandbox.chargeBack`), for a
 * sandbox in another process (`refundkit sandbox`): `POST` with `{"refundId": "..."}`. It answers 200
 * `{refundId, transactionStatus: "CHARGEBACK", deliveries}`, 404 for a refundId the sandbox does not hold, 409
 * for a refund that does not stand `SUCCEED` (naming its word), 400 for another body.
 *
 * @since 0.6.0
 */
export const chargebackPath = "/__sandbox/chargeback"

const ChargebackBody = Schema.Struct({ refundId: Schema.String })

/**
 * The control route that reverses a refund that stands `SUCCEED` (`ExiromSandbox.reverse`): `POST` with
 * `{"refundId": "...", "declineCode": 2}` (`declineCode` optional). It answers 200 `{refundId, transactionStatus:
 * "FAILED", declineCode, deliveries}`, 404 for a refundId the sandbox does not hold, 409 for a refund that does not
 * stand `SUCCEED` (naming its word), 400 for another body.
 *
 * @since 0.6.0
 */
export const reversalPath = "/__sandbox/reversal"

/**
 * The decline code a reversal reports unless told another: 2 REJECTED_BY_ISSUER_BANK_ERROR, the issuer refusing
 * the credit (a closed card account). Exirom names no code for a reversal.
 *
 * @since 0.6.0
 */
export const reversalDeclineCode = 2

const ReversalBody = Schema.Struct({ refundId: Schema.String, declineCode: Schema.optional(Schema.Int) })

// Exirom documents these as required Strings and nothing more: blank is missing, but a reason
// with a trailing space (a CSV cell) is still a reason and must not be a 400 here.
const Required = Schema.String.pipe(Schema.filter((s) => s.trim().length > 0 || "is required"))

const RefundBody = Schema.Struct({
  requestId: Required,
  mid: Required,
  transactionId: Schema.Int,
  amount: Schema.String.pipe(Schema.pattern(/^\d+(\.\d+)?$/, { message: () => "must be a decimal string such as \"10.00\"" })),
  reason: Required,
  callbackUrl: Schema.optional(Schema.String.pipe(Schema.filter((s) => URL.canParse(s) || "must be an absolute URL"))),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})

const AuthBody = Schema.Struct({ merchantKey: Schema.String, merchantSecret: Schema.String })

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })
const failure = (status: number, message: string, errors?: ReadonlyArray<{ field: string; message: string }>) =>
  json({ status, message, traceId: randomUUID(), ...(errors === undefined ? {} : { errors }) }, status)

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

const routeOf = (path: string): string => {
  if (path === "/api/v1/auth") return "auth"
  if (path === "/api/v1/refunds/card") return "refund"
  if (path.startsWith("/api/v1/refunds/card/status/")) return "status"
  if (path.startsWith("/api/v1/refunds/card/info/")) return "info"
  return "other"
}

/**
 * Starts a sandbox.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<ExiromSandbox, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const merchantKey = options.merchantKey ?? "sandbox-merchant-key"
    const merchantSecret = options.merchantSecret ?? "sandbox-merchant-secret"
    const mid = options.mid ?? "sandbox_mid"
    const ttlMillis = (options.tokenTtlSeconds ?? 30 * 24 * 60 * 60) * 1000
    const settleAfterMillis = options.settleAfterMillis ?? 200
    const callbackOptions = options.callbacks ?? {}
    const state = State.make({
      transactions: options.transactions ?? defaultTransactions,
      autoSeed: options.autoSeed === false ? undefined : options.autoSeed ?? defaultAutoSeed,
      settleAfterMillis
    })
    const tokens = new Map<string, number>()
    const deliveries: Array<Delivery> = []
    const waiting = new Map<string, () => void>()
    const scope = yield* Effect.scope

    const issueToken = (now: number) => {
      const exp = now + ttlMillis
      const head = `${base64url({ alg: "HS256", typ: "JWT" })}.${base64url({ sub: merchantKey, iat: Math.floor(now / 1000), exp: Math.floor(exp / 1000), jti: randomUUID() })}`
      const token = `${head}.${createHmac("sha256", merchantSecret).update(head).digest("base64url")}`
      tokens.set(token, exp)
      return token
    }

    const authorized = (request: HttpServerRequest.HttpServerRequest, now: number) => {
      const header = request.headers["authorization"] ?? ""
      const expires = header.startsWith("Bearer ") ? tokens.get(header.slice(7)) : undefined
      return expires !== undefined && now < expires
    }

    const readJson = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.map(request.text, (text) => Either.try(() => JSON.parse(text) as unknown))

    const decodeOr400 = <A, I>(schema: Schema.Schema<A, I>, value: unknown) =>
      Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "all" })(value), (error) =>
        failure(400, "Bad Request: missing or invalid parameters", ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => ({ field: i.path.join("."), message: i.message }))))

    const callbackBody = (record: State.RefundRecord, word: string, declineCode: number | null) => {
      const amount = javaDouble(record.minor)
      const text = `{"transactionId":${record.input.transactionId},"refundId":${JSON.stringify(record.refundId)},"requestId":${JSON.stringify(record.input.requestId)},` +
        `"mid":${JSON.stringify(record.input.mid)},"transactionStatus":${JSON.stringify(word)},"declineCode":${declineCode ?? "null"},` +
        `"totalAmount":${amount},"orderCurrency":${JSON.stringify(record.currency)},"processedCurrency":${JSON.stringify(record.currency)},` +
        `"callbackUrl":${JSON.stringify(record.input.callbackUrl ?? null)},"createdAt":${JSON.stringify(new Date(record.createdAt).toISOString())},` +
        `"metadata":${JSON.stringify(record.input.metadata ?? {})}}`
      const checksum = createHmac("sha256", merchantSecret).update(`${record.input.mid}|${amount}|${record.currency}|${record.input.transactionId}`).digest("base64")
      return { text, checksum }
    }

    const post = (record: State.RefundRecord, word: string, declineCode: number | null): Effect.Effect<Delivery> => {
      const target = new URL(record.input.callbackUrl ?? "http://127.0.0.1:9/")
      target.searchParams.set("paymentMethod", "card")
      const { checksum, text } = callbackBody(record, word, declineCode)
      return Effect.promise(() =>
        fetch(target, { method: "POST", headers: { "content-type": "application/json", "x-checksum": checksum }, body: text, signal: AbortSignal.timeout(10_000) })
          .then((response) => response.status, () => 0)
      ).pipe(
        Effect.map((httpStatus) => ({ refundId: record.refundId, transactionStatus: word, url: target.toString(), httpStatus })),
        Effect.tap((delivery) => Effect.sync(() => deliveries.push(delivery)))
      )
    }

    // Waits for the refund to settle, then delivers what `callbacks` asks for.
    const scheduleCallbacks = (record: State.RefundRecord) =>
      Effect.gen(function*() {
        if (record.declinedWith === undefined) {
          yield* Effect.async<void>((resume) => {
            waiting.set(record.refundId, () => resume(Effect.void))
          }).pipe(Effect.timeout(Duration.millis(settleAfterMillis)), Effect.ignore)
          waiting.delete(record.refundId)
        }
        yield* Effect.sleep(Duration.millis(callbackOptions.delayMillis ?? 50))
        const final = state.statusOf(record, Number.MAX_SAFE_INTEGER)
        const steps = callbackOptions.lifecycle === true && record.declinedWith === undefined
          ? [{ word: "NEW", declineCode: null }, { word: "PROCESSING", declineCode: null }, final]
          : [final]
        const ordered = callbackOptions.outOfOrder === true ? [...steps].reverse() : steps
        for (const step of ordered) {
          for (let i = 0; i <= (callbackOptions.duplicates ?? 0); i++) yield* post(record, step.word, step.declineCode)
        }
      }).pipe(
        // Request handlers run uninterruptibly and forks inherit that; delivery must stop when the sandbox does.
        Effect.interruptible,
        Effect.forkIn(scope)
      )

    const refund = (request: HttpServerRequest.HttpServerRequest, now: number) =>
      Effect.gen(function*() {
        const body = yield* readJson(request)
        if (Either.isLeft(body)) return failure(400, "Bad Request: the body is not JSON")
        const decoded = decodeOr400(RefundBody, body.right)
        if (Either.isLeft(decoded)) return decoded.left
        const input = decoded.right
        if (input.mid !== mid) return failure(403, `Forbidden: mid ${input.mid} is not permitted for this merchant; verify MID`)
        const minor = State.minorOf(input.amount)
        if (minor === undefined) return failure(422, `Unprocessable: amount ${input.amount} has more than two decimal places`)
        if (minor <= 0n) return failure(400, "Bad Request", [{ field: "amount", message: "must be greater than zero" }])
        const submitted = state.submit(input, now)
        switch (submitted._tag) {
          case "Conflict":
            return failure(409, `Duplicate requestId ${input.requestId} for a different request`)
          case "UnknownTransaction":
            return failure(404, `Transaction ${input.transactionId} not found`)
          case "NotRefundable":
            return failure(422, `Transaction ${input.transactionId} is ${submitted.status}: only SUCCEED card payments can be refunded`)
          case "Imprecise":
            return failure(
              422,
              `Unprocessable: amount ${input.amount} is not an exact amount of ${submitted.currency}, which has ${
                submitted.places === 0 ? "no minor units" : `${submitted.places} decimal places`
              } (transaction ${input.transactionId})`
            )
          case "Created":
          case "Replayed": {
            const record = submitted.record
            if (submitted._tag === "Created" && record.input.callbackUrl !== undefined) yield* scheduleCallbacks(record)
            return json({
              refundId: record.refundId,
              transactionStatus: record.declinedWith === undefined ? "NEW" : "FAILED",
              ...(record.declinedWith === undefined ? {} : { declineCode: record.declinedWith }),
              paymentType: "CARD"
            })
          }
        }
      })

    const lookup = (path: string, now: number) => {
      const [, kind, raw] = /^\/api\/v1\/refunds\/card\/(status|info)\/([^/]+)$/.exec(path) ?? []
      const record = raw === undefined ? undefined : state.refund(decodeURIComponent(raw))
      if (record === undefined) return failure(404, `Refund ${raw ?? ""} not found`)
      const { declineCode, word } = state.statusOf(record, now)
      if (kind === "status") return json(word)
      return json({
        transactionId: record.input.transactionId,
        refundId: record.refundId,
        requestId: record.input.requestId,
        mid: record.input.mid,
        transactionStatus: word,
        declineCode,
        // A JSON number, as Exirom sends it, printed from the exact amount.
        totalAmount: Number(Money.formatMinor(record.minor, 2)),
        callbackUrl: record.input.callbackUrl ?? null,
        createdAt: new Date(record.createdAt).toISOString(),
        metadata: record.input.metadata ?? {}
      })
    }

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://sandbox").pathname
      const now = yield* Clock.currentTimeMillis
      const route = routeOf(path)
      if (route === "auth" && request.method === "POST") {
        const body = yield* readJson(request)
        const credentials = Either.isLeft(body) ? Either.left(failure(400, "Bad Request: the body is not JSON")) : decodeOr400(AuthBody, body.right)
        if (Either.isLeft(credentials)) return credentials.left
        if (credentials.right.merchantKey !== merchantKey || credentials.right.merchantSecret !== merchantSecret) {
          return failure(401, "Unauthorized: invalid merchant credentials")
        }
        const token = issueToken(now)
        const shape = options.authResponse ?? "string"
        if (shape === "text") return HttpServerResponse.text(token)
        return json(shape === "string" ? token : shape === "token" ? { token } : { merchantKey, token })
      }
      if (route === "other") return failure(404, `Not Found: ${request.method} ${path}`)
      if (!authorized(request, now)) return failure(401, "Unauthorized: missing, expired or invalid bearer token; re-authenticate via POST /api/v1/auth")
      if (route === "refund" && request.method === "POST") return yield* refund(request, now)
      if ((route === "status" || route === "info") && request.method === "GET") return lookup(path, now)
      return failure(404, `Not Found: ${request.method} ${path}`)
    })

    // Taken back (charged back, reversed), a refund whose caller is listening hears it at once, as often as
    // callbacks are repeated.
    const takeBack = (taken: State.TakenBack, word: string, declineCode: number | null) =>
      Effect.gen(function*() {
        if (taken._tag !== "TakenBack" || taken.record.input.callbackUrl === undefined) return { taken, deliveries: [] }
        const deliveries: Array<Delivery> = []
        for (let i = 0; i <= (callbackOptions.duplicates ?? 0); i++) deliveries.push(yield* post(taken.record, word, declineCode))
        return { taken, deliveries }
      })
    const chargeBack = (refundId: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => takeBack(state.chargeBack(refundId, now), "CHARGEBACK", null))
    const reverse = (refundId: string, declineCode: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => takeBack(state.reverse(refundId, declineCode, now), "FAILED", declineCode))

    const takeBackAnswer = (
      refundId: string,
      { deliveries, taken }: { readonly taken: State.TakenBack; readonly deliveries: ReadonlyArray<Delivery> },
      what: string,
      answer: Record<string, unknown>
    ) => {
      switch (taken._tag) {
        case "UnknownRefund":
          return failure(404, `Refund ${refundId} not found`)
        case "NotSucceeded":
          return failure(409, `Refund ${refundId} is ${taken.word}: only a refund that stands SUCCEED can be ${what}`)
        case "TakenBack":
          return json({ refundId, ...answer, deliveries })
      }
    }
    const chargebackRoute = Effect.gen(function*() {
      const body = yield* Schema.decodeUnknown(ChargebackBody)(yield* (yield* HttpServerRequest.HttpServerRequest).json)
      return takeBackAnswer(body.refundId, yield* chargeBack(body.refundId), "charged back", { transactionStatus: "CHARGEBACK" })
    })
    const reversalRoute = Effect.gen(function*() {
      const body = yield* Schema.decodeUnknown(ReversalBody)(yield* (yield* HttpServerRequest.HttpServerRequest).json)
      const declineCode = body.declineCode ?? reversalDeclineCode
      return takeBackAnswer(body.refundId, yield* reverse(body.refundId, declineCode), "reversed", { transactionStatus: "FAILED", declineCode })
    })
    const orDie = (refundId: string) => ({ deliveries, taken }: { readonly taken: State.TakenBack; readonly deliveries: ReadonlyArray<Delivery> }) =>
      taken._tag === "TakenBack"
        ? Effect.succeed(deliveries)
        : Effect.dieMessage(taken._tag === "UnknownRefund" ? `the sandbox has no refund ${refundId}` : `refund ${refundId} is ${taken.word}, not SUCCEED`)

    const server = yield* Sandbox.serve(Sandbox.orServerError(app), {
      controls: { [`POST ${chargebackPath}`]: chargebackRoute, [`POST ${reversalPath}`]: reversalRoute },
      ...(options.port === undefined ? {} : { port: options.port }),
      routeOf,
      expireTokens: Effect.sync(() => tokens.clear()),
      stats: Effect.sync(state.stats),
      schemaViolation: { refundId: 12345, transactionStatus: ["NEW"] }
    })
    const baseUrl = `${server.url}/api`

    return {
      ...server,
      provider: "exirom",
      baseUrl,
      env: {
        REFUNDKIT_EXIROM_BASE_URL: baseUrl,
        REFUNDKIT_EXIROM_MERCHANT_KEY: merchantKey,
        REFUNDKIT_EXIROM_MERCHANT_SECRET: merchantSecret,
        REFUNDKIT_EXIROM_MID: mid,
        REFUNDKIT_EXIROM_REQUESTS_PER_MINUTE: "0"
      },
      merchantSecret,
      mid,
      addTransaction: (transaction) => Effect.sync(() => state.add(transaction)),
      settle: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          state.settleAll(now)
          for (const release of [...waiting.values()]) release()
        })),
      sendCallback: (refundId, transactionStatus) =>
        Effect.gen(function*() {
          const record = state.refund(refundId)
          if (record === undefined) return yield* Effect.dieMessage(`the sandbox has no refund ${refundId}`)
          const now = yield* Clock.currentTimeMillis
          const current = state.statusOf(record, now)
          const word = transactionStatus ?? current.word
          return yield* post(record, word, word === "FAILED" ? current.declineCode : null)
        }),
      chargeBack: (refundId) => Effect.flatMap(chargeBack(refundId), orDie(refundId)),
      reverse: (refundId, declineCode) => Effect.flatMap(reverse(refundId, declineCode ?? reversalDeclineCode), orDie(refundId)),
      deliveries: Effect.sync(() => [...deliveries])
    } satisfies ExiromSandbox
  })
