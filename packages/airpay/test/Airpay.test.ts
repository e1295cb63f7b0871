import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Ledger from "@refundkit/core/Ledger"
import * as Providers from "@refundkit/core/Providers"
import * as Refunds from "@refundkit/core/Refunds"
import { ConfigError, ConfigProvider, Context, Effect, Either, Layer, Option, Redacted, Schedule } from "effect"
import { ScriptedServer } from "@refundkit/testkit"
import * as Airpay from "../src/Airpay.js"
import * as AirpayCrypto from "../src/AirpayCrypto.js"
import * as AirpaySandbox from "../src/sandbox.js"

// The plugin end to end: core's Refunds and the in-memory ledger, over HTTP to the sandbox.
const setup = (env: Record<string, string> = {}, options?: AirpaySandbox.Options) =>
  Effect.gen(function*() {
    const handle = yield* AirpaySandbox.make(options)
    const config = ConfigProvider.fromMap(new Map(Object.entries({ ...handle.env, ...env })))
    const layer = Refunds.layer({
      callTimeout: "5 seconds",
      retrySchedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
      maxRetryAfter: "1 second"
    }).pipe(
      Layer.provideMerge(Layer.provideMerge(Airpay.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(config))), Providers.layer)),
      Layer.provideMerge(Ledger.layerMemory),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    const context = yield* Layer.build(layer)
    const refunds = Context.get(context, Refunds.Refunds)
    const provider = yield* Context.get(context, Providers.Providers).get("airpay")
    const submits = Effect.map(handle.stats, (s) => s.requests.refund ?? 0)
    return { handle, refunds, provider, submits }
  })

const refund = (...transactions: ReadonlyArray<readonly [number, string]>) => ({
  transactions: transactions.map(([ap_transactionid, amount]) => ({ ap_transactionid, amount }))
})
const create = (request: unknown, idempotencyKey: string) => ({ provider: "airpay", request, idempotencyKey })

/**
 * Airpay answering from a script, in its own encrypted envelope: for documented shapes the sandbox does not
 * produce. `refund` is the refund endpoint's answers in turn (an HTTP status alone, or an envelope);
 * `tokenData` is the `data` of the token endpoint's "success" envelope.
 */
const scripted = (
  refund: ReadonlyArray<number | { readonly status: number; readonly headers: Record<string, string> } | Record<string, unknown> | { readonly unsealed: string } | { readonly sealed: string }>,
  tokenData: Record<string, unknown> = { access_token: "a".repeat(40), expires_in: "300", scope: null }
) =>
  Effect.gen(function*() {
    const { handle } = yield* setup()
    const key = AirpayCrypto.encryptionKey(Redacted.make(handle.env.REFUNDKIT_AIRPAY_USERNAME!), Redacted.make(handle.env.REFUNDKIT_AIRPAY_PASSWORD!))
    const sealedText = (text: string) => ({ body: { response: Effect.runSync(AirpayCrypto.encrypt(text, key)) } })
    const sealed = (envelope: Record<string, unknown>) => sealedText(JSON.stringify(envelope))
    const token = sealed({ status_code: "200", response_code: "00", status: "success", message: "success", data: tokenData })
    const server = yield* ScriptedServer.make({
      [`POST ${AirpaySandbox.basePath}/oauth2/`]: [token],
      [`POST ${AirpaySandbox.basePath}/refund/`]: refund.map((answer) =>
        typeof answer === "number"
          ? { status: answer, body: "" }
          : "headers" in answer && typeof answer.status === "number"
          ? { status: answer.status, body: "", headers: answer.headers as Record<string, string> }
          : "unsealed" in answer && typeof answer.unsealed === "string"
          ? { body: answer.unsealed }
          : "sealed" in answer && typeof answer.sealed === "string"
          ? sealedText(answer.sealed)
          : sealed(answer)
      )
    })
    const { refunds } = yield* setup({ REFUNDKIT_AIRPAY_BASE_URL: `${server.url}${AirpaySandbox.basePath}` })
    const refundCalls = () => server.calls.filter((c) => c.path.endsWith("/refund/")).length
    /** The transactions JSON each refund call carried, decrypted as Airpay reads it. */
    const sentTransactions = () =>
      server.calls.filter((c) => c.path.endsWith("/refund/")).map((c) => {
        const data = JSON.parse(Either.getOrThrow(AirpayCrypto.decrypt(new URLSearchParams(c.body).get("encdata") ?? "", key))) as { transactions: string }
        return Either.getOrThrow(AirpayCrypto.decodeTransactions(data.transactions))
      })
    return { refunds, refundCalls, sentTransactions }
  })

describe("Airpay plugin", () => {
  it.scopedLive("'already initiated' in answer to a resend may be the refund's own first attempt: unknown, not failed", () =>
    Effect.gen(function*() {
      const already = {
        status_code: "200",
        response_code: "00",
        status: "Success",
        message: "success",
        data: { transactions: [{ ap_transactionid: "10264", success: "false", message: AirpaySandbox.alreadyInitiatedMessage, refund_id: "12090" }] }
      }
      // A 503 that says when to come back did nothing: the resend goes, and meets the refund Airpay holds.
      const { refunds, refundCalls } = yield* scripted([{ status: 503, headers: { "retry-after": "0" } }, already])
      const resent = yield* refunds.create(create(refund([10264, "10.00"]), "resent"))
      assert.strictEqual(refundCalls(), 2)
      assert.strictEqual(resent.refund.status, "unknown")
      assert.include(resent.refund.items[0]!.message ?? "", "refund_id 12090")
      // Maybe its own, maybe another's: not recorded as this refund's reference.
      assert.isUndefined(resent.refund.providerReference)
      assert.isUndefined(resent.refund.items[0]!.providerReference)

      // On a first attempt the existing refund is another one's: this request refunded nothing.
      const first = yield* scripted([already])
      const declined = yield* first.refunds.create(create(refund([10264, "10.00"]), "first"))
      assert.strictEqual(declined.refund.status, "failed")
    }))

  it.scopedLive("a failure envelope that lists per-transaction results is read item by item; a status_code outside 4xx and 5xx is unknown", () =>
    Effect.gen(function*() {
      const { refunds } = yield* scripted([{
        status_code: "400",
        response_code: "02",
        status: "fail",
        message: "Some transactions could not be refunded",
        data: {
          transactions: [
            { ap_transactionid: 10265, success: "true", message: "Transaction accepted for refund", refund_id: "12080" },
            { ap_transactionid: 10264, success: "false", message: "Refund amount exceeds the transaction amount" }
          ]
        }
      }])
      const mixed = yield* refunds.create(create(refund([10265, "5.00"], [10264, "900.00"]), "mixed"))
      assert.strictEqual(mixed.refund.status, "requires_action")
      assert.deepStrictEqual(mixed.refund.items.map((i) => [i.target, i.status]), [["10265", "succeeded"], ["10264", "failed"]])

      const processing = yield* scripted([{ status_code: "211", response_code: "211", status: "processing", message: "Refund request is being processed" }])
      const error = yield* Effect.flip(processing.refunds.create(create(refund([10266, "5.00"]), "processing")))
      assert.strictEqual(error._tag, "UnexpectedResponse")
      assert.strictEqual((yield* processing.refunds.get(error._tag === "UnexpectedResponse" ? error.refundId ?? "" : "")).status, "unknown")
    }))

  it.scopedLive("a granted token with a malformed expires_in is named by that field and its rule, not by data.success", () =>
    Effect.gen(function*() {
      const { refunds, refundCalls } = yield* scripted([], { success: true, access_token: "a".repeat(40), expires_in: "5m", token_type: "Bearer", scope: null })
      const error = yield* Effect.flip(refunds.create(create(refund([10265, "5.00"]), "bad-expiry")))
      // Core reads a broken token answer as "not sent", naming the field the answer broke.
      assert.strictEqual(error._tag, "ProviderUnavailable")
      assert.include(error.message, "field data.expires_in: ")
      assert.include(error.message, "must be a number of seconds")
      assert.notInclude(error.message, "data.success")
      assert.notInclude(error.message, "a".repeat(40), "the token is never echoed")
      assert.strictEqual(refundCalls(), 0)

      // A refused token is read as refused whatever else its data holds.
      const { refunds: refused } = yield* scripted([], { success: "false", msg: "Invalid client id or secret", expires_in: "5m" })
      const denied = yield* Effect.flip(refused.create(create(refund([10265, "5.00"]), "refused")))
      assert.strictEqual(denied._tag, "ProviderAuthFailed")
      assert.include(denied.message, "Invalid client id or secret")
      // A success flag that is neither true nor false is named itself.
      const { refunds: garbled } = yield* scripted([], { success: "maybe", access_token: "a".repeat(40), expires_in: "300" })
      const odd = yield* Effect.flip(garbled.create(create(refund([10265, "5.00"]), "garbled")))
      assert.include(odd.message, "field data.success: ")
    }))

  it.scopedLive("an ap_transactionid written as digits is refunded exactly, past 2^53 too, and sent as the JSON number Airpay documents", () =>
    Effect.gen(function*() {
      const { handle, refunds } = yield* setup()
      // 2^53 + 1: a JSON number would be read as 2^53, its neighbour.
      yield* handle.seed("9007199254740993", "50.00")
      yield* handle.seed("9007199254740992", "50.00")
      const { refund: big } = yield* refunds.create(create({ transactions: [{ ap_transactionid: "9007199254740993", amount: "10.00" }] }, "big-id"))
      assert.strictEqual(big.status, "succeeded")
      assert.deepStrictEqual(big.items.map((i) => i.target), ["9007199254740993"])
      assert.deepStrictEqual(big.request, { transactions: [{ ap_transactionid: "9007199254740993", amount: "10.00" }], currency: "INR" })
      assert.deepStrictEqual((yield* handle.stats).refundsByTransaction, { "9007199254740993": 1 })
      // A digit string is the same transaction as the number: one refund, and the stored request reads as before.
      const { refund: small } = yield* refunds.create(create({ transactions: [{ ap_transactionid: "20003", amount: "5.00" }] }, "small-id"))
      assert.deepStrictEqual(small.request, { transactions: [{ ap_transactionid: 20003, amount: "5.00" }], currency: "INR" })
      const again = yield* refunds.create(create(refund([20003, "5.00"]), "small-id"))
      assert.strictEqual(again.refund.id, small.id, "the same key and the same request, however the id was written, replay")

      // Airpay answers a refused item with the id as a JSON number; read digit for digit, it is that item's outcome.
      const answer = `{"status_code":"200","response_code":"00","status":"Success","message":"success","data":{"transactions":[` +
        `{"ap_transactionid":9007199254740993,"amount":"10.00","success":"false","message":"Refund amount exceeds the transaction amount"}]}}`
      const { refunds: scriptedRefunds, sentTransactions } = yield* scripted([{ sealed: answer }])
      const { refund: refused } = yield* scriptedRefunds.create(create({ transactions: [{ ap_transactionid: "9007199254740993", amount: "10.00" }] }, "big-refused"))
      assert.strictEqual(refused.status, "failed")
      assert.strictEqual(refused.items[0]!.message, "Refund amount exceeds the transaction amount")
      assert.deepStrictEqual(sentTransactions(), ['[{"ap_transactionid":9007199254740993,"amount":"10.00"}]'])
    }))

  it.scopedLive("layerConfig: empty settings (a template's unset variables) are missing, so Airpay is skipped; a malformed one is named", () =>
    Effect.gen(function*() {
      const build = (env: Record<string, string>) =>
        Effect.flip(Layer.build(Airpay.layerConfig.pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
          Layer.provide(Providers.layer),
          Layer.provide(NodeHttpClient.layerUndici)
        )))
      const names = ["MERCHANT_ID", "USERNAME", "PASSWORD", "SECRET", "CLIENT_ID", "CLIENT_SECRET"].map((n) => `REFUNDKIT_AIRPAY_${n}`)
      const empty = yield* build(Object.fromEntries(names.map((n) => [n, ""])))
      assert.isTrue(ConfigError.isConfigError(empty) && ConfigError.isMissingDataOnly(empty), String(empty))
      for (const name of names) assert.include(String(empty), name)
      const { handle } = yield* setup()
      const malformed = yield* build({ ...handle.env, REFUNDKIT_AIRPAY_MERCHANT_ID: "m-42" })
      assert.strictEqual(malformed._tag, "ConfigurationError")
      assert.include(ConfigError.isConfigError(malformed) ? "" : malformed.message, "REFUNDKIT_AIRPAY_MERCHANT_ID")
    }))

  it.scopedLive("capabilities tell the truth; maxTargetsPerCall comes from the config", () =>
    Effect.gen(function*() {
      const { provider } = yield* setup({ REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL: "20" })
      assert.deepStrictEqual(provider.capabilities, {
        partialRefunds: true,
        maxTargetsPerCall: 20,
        statusQuery: false,
        webhooks: false,
        idempotentSubmit: false,
        updates: false,
        settlement: "money"
      })
    }))

  it.scopedLive("createMany packs several refunds into ONE Airpay call, each with its own outcome", () =>
    Effect.gen(function*() {
      const { handle, refunds, submits } = yield* setup()
      const earlier = yield* refunds.create(create(refund([20001, "100.00"]), "earlier"))
      assert.strictEqual(earlier.refund.status, "succeeded")
      assert.strictEqual(yield* submits, 1)

      const results = yield* refunds.createMany([
        create(refund([20001, "100.00"]), "again-20001"),
        create(refund([1_000_001, "10.00"]), "fresh"),
        create(refund([20002, "600.00"]), "too-much"),
        create(refund([1_000_002, "5.00"], [1_000_003, "7.50"]), "two-at-once"),
        create(refund([1_000_004, "5.00"], [424242, "1.00"]), "half-refused")
      ])
      assert.strictEqual(yield* submits, 2, "the five refunds went in one call")
      const [again, fresh, tooMuch, two, half] = results.map((r) => Either.getOrThrow(r).refund)

      // A repeat of a refunded transaction refunds nothing: Airpay names its existing refund, which is another refund's,
      // so it is named in the message and is not this refund's reference (packed or not).
      assert.strictEqual(again!.status, "failed")
      assert.strictEqual(again!.providerStatus, "already_initiated")
      assert.isUndefined(again!.providerReference)
      assert.include(again!.items[0]!.message, `refund_id ${earlier.refund.providerReference}`)
      assert.deepStrictEqual(again!.items.map((i) => i.target), ["20001"])

      assert.strictEqual(fresh!.status, "succeeded")
      assert.strictEqual(fresh!.providerStatus, "accepted")
      assert.notStrictEqual(fresh!.providerReference, earlier.refund.providerReference)

      // The over-refund fails alone; its neighbours in the same call are untouched.
      assert.strictEqual(tooMuch!.status, "failed")
      assert.strictEqual(tooMuch!.items[0]!.message, "Refund amount exceeds the transaction amount")

      assert.strictEqual(two!.status, "succeeded")
      assert.deepStrictEqual(two!.items.map((i) => [i.target, i.status, i.amount]), [["1000002", "succeeded", "5.00"], ["1000003", "succeeded", "7.50"]])
      assert.strictEqual(two!.amount, "12.50")
      assert.isUndefined(two!.providerFinal)

      // Half accepted, half refused: a person settles it; Airpay's words are final, whichever call carried them.
      assert.strictEqual(half!.status, "requires_action")
      assert.strictEqual(half!.providerFinal, true)

      const stats = yield* handle.stats
      assert.strictEqual(stats.refundsPerformed, 5)
      assert.deepStrictEqual(stats.refundsByTransaction, { "20001": 1, "1000001": 1, "1000002": 1, "1000003": 1, "1000004": 1 })
    }))

  it.scopedLive("createMany never puts more transactions in a call than configured", () =>
    Effect.gen(function*() {
      const { refunds, submits } = yield* setup({ REFUNDKIT_AIRPAY_MAX_TRANSACTIONS_PER_CALL: "2" })
      const results = yield* refunds.createMany([1, 2, 3].map((n) => create(refund([2_000_000 + n, "1.00"]), `k${n}`)))
      assert.isTrue(results.every((r) => Either.isRight(r) && r.right.refund.status === "succeeded"))
      assert.strictEqual(yield* submits, 2)
    }))

  it.scopedLive("one refund of several transactions: each has its own item; one refused does not fail the other", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup()
      const { refund: mixed } = yield* refunds.create(create(refund([20003, "75.50"], [424242, "1.00"]), "mixed"))
      assert.strictEqual(mixed.status, "requires_action")
      assert.strictEqual(mixed.providerFinal, true)
      assert.deepStrictEqual(mixed.items.map((i) => [i.target, i.status, i.providerStatus]), [["20003", "succeeded", "accepted"], ["424242", "failed", "refused"]])
      assert.match(mixed.items[0]!.providerReference ?? "", /^\d+$/)
      assert.strictEqual(mixed.items[1]!.message, "Invalid transaction id")
    }))

  it.scopedLive("a refund whose every transaction is refused is failed with Airpay's message", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup()
      const { refund: refused } = yield* refunds.create(create(refund([424242, "1.00"]), "unknown-txn"))
      assert.strictEqual(refused.status, "failed")
      assert.strictEqual(refused.error?.code, "provider_declined")
      assert.include(refused.error?.message, "Invalid transaction id")
    }))

  it.scopedLive("the seed's example: refunded once; the same transactions again are the existing refunds", () =>
    Effect.gen(function*() {
      const { handle, refunds } = yield* setup()
      const first = yield* refunds.create(create(refund([10265, "100.00"], [10264, "10.00"]), "seed-1"))
      assert.strictEqual(first.refund.status, "succeeded")
      const again = yield* refunds.create(create(refund([10265, "100.00"], [10264, "10.00"]), "seed-2"))
      assert.strictEqual(again.refund.status, "failed")
      assert.deepStrictEqual(again.refund.items.map((i) => i.providerStatus), ["already_initiated", "already_initiated"])
      assert.deepStrictEqual(again.refund.items.map((i) => i.providerReference), [undefined, undefined])
      again.refund.items.forEach((item, n) => assert.include(item.message, `refund_id ${first.refund.items[n]!.providerReference}`))
      // A different amount on an already-refunded transaction is not that refund.
      const other = yield* refunds.create(create(refund([10264, "3.00"]), "seed-3"))
      assert.strictEqual(other.refund.status, "failed")
      assert.include(other.refund.items[0]!.message, "10.00")
      assert.strictEqual((yield* handle.stats).refundsPerformed, 2)
    }))

  it.scopedLive("a refund refused as 'already initiated' carries no providerReference: the refund_id Airpay names is the other refund's", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup()
      const { refund: t1 } = yield* refunds.create(create(refund([20003, "75.50"]), "t1"))
      assert.strictEqual(t1.status, "succeeded")
      assert.match(t1.providerReference ?? "", /^\d+$/)
      const { refund: t2 } = yield* refunds.create(create(refund([20003, "75.50"]), "t2"))
      assert.strictEqual(t2.status, "failed")
      assert.strictEqual(t2.providerStatus, "already_initiated")
      assert.isUndefined(t2.providerReference)
      assert.isUndefined(t2.items[0]!.providerReference)
      assert.include(t2.items[0]!.message, `refund_id ${t1.providerReference} of 75.50, is another refund's`)
    }))

  it.scopedLive("a 'success' token envelope with data.success false is refused credentials; no refund call is made", () =>
    Effect.gen(function*() {
      const { handle, refunds, submits } = yield* setup({ REFUNDKIT_AIRPAY_CLIENT_SECRET: "not-the-secret" })
      const error = yield* Effect.flip(refunds.create(create(refund([20001, "1.00"]), "bad-client")))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      assert.include(error.message, "Invalid client id or secret")
      assert.notInclude(error.message, "not-the-secret")
      assert.strictEqual(yield* submits, 0)
      assert.strictEqual((yield* handle.stats).requests.auth, 1)
      if (error._tag === "ProviderAuthFailed") assert.strictEqual((yield* refunds.get(error.refundId!)).status, "failed")
    }))

  it.scopedLive("a plain (unencrypted) 'Invalid Merchant Id' answer is refused credentials", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup({ REFUNDKIT_AIRPAY_MERCHANT_ID: "999" })
      const error = yield* Effect.flip(refunds.create(create(refund([20001, "1.00"]), "bad-merchant")))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      assert.include(error.message, "Invalid Merchant Id")
    }))

  it.scopedLive("a wrong privatekey is refused by the sandbox; the token never appears in the error or the refund", () =>
    Effect.gen(function*() {
      const { handle, refunds } = yield* setup({ REFUNDKIT_AIRPAY_SECRET: "wrong-secret" })
      const error = yield* Effect.flip(refunds.create(create(refund([20001, "1.00"]), "bad-key")))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      assert.include(error.message, "Invalid private key")
      assert.strictEqual((yield* handle.stats).refundsPerformed, 0)
      const stored = yield* refunds.get(error._tag === "ProviderAuthFailed" ? error.refundId! : "")
      const everything = `${error.message}\n${JSON.stringify(error)}\n${JSON.stringify(stored)}`
      const tokens = yield* handle.issuedTokens
      assert.strictEqual(tokens.length, 1)
      for (const token of tokens) assert.notInclude(everything, token)
      assert.notInclude(everything, "token=")
    }))

  it.scopedLive("a token refused twice gets exactly one re-auth, then ProviderAuthFailed", () =>
    Effect.gen(function*() {
      const { handle, refunds } = yield* setup()
      yield* handle.faults.inject({ fault: { _tag: "ExpiredToken" }, route: "refund", times: 2 })
      const error = yield* Effect.flip(refunds.create(create(refund([20001, "1.00"]), "expired-twice")))
      assert.strictEqual(error._tag, "ProviderAuthFailed")
      assert.include(error.message, "freshly issued")
      const stats = yield* handle.stats
      assert.strictEqual(stats.requests.auth, 2)
      assert.strictEqual(stats.requests.refund, 2)
      assert.strictEqual(stats.refundsPerformed, 0)
    }))

  it.scopedLive("status queries are unsupported, with a hint", () =>
    Effect.gen(function*() {
      const { refunds } = yield* setup()
      const { refund: done } = yield* refunds.create(create(refund([20001, "1.00"]), "sync-me"))
      const error = yield* Effect.flip(refunds.sync(done.id))
      assert.strictEqual(error._tag, "UnsupportedOperation")
      assert.include(error.message, "dashboard")
    }))

  it("combine packs same-currency requests without a repeated transaction, within the limit", () => {
    const a = { transactions: [{ ap_transactionid: "1", amount: "1.00" }], currency: "INR" }
    const b = { transactions: [{ ap_transactionid: "2", amount: "2.00" }], currency: "INR" }
    assert.deepStrictEqual(Option.getOrUndefined(Airpay.combine(5)([a, b])), { transactions: [...a.transactions, ...b.transactions], currency: "INR" })
    assert.isTrue(Option.isNone(Airpay.combine(1)([a, b])))
    assert.isTrue(Option.isNone(Airpay.combine(5)([a, { ...b, currency: "USD" }])))
    assert.isTrue(Option.isNone(Airpay.combine(5)([a, a])))
    assert.isTrue(Option.isNone(Airpay.combine(5)([])))
  })
  it.scopedLive("a failure envelope listing an accepted transaction is an answer, never a refused token to resend with a fresh one", () =>
    Effect.gen(function*() {
      const partial = {
        status_code: "401",
        response_code: "02",
        status: "fail",
        message: "Some transactions could not be refunded: invalid token",
        data: {
          transactions: [
            { ap_transactionid: 10265, success: "true", message: "Transaction accepted for refund", refund_id: "12080" },
            { ap_transactionid: 10264, success: "false", message: "Refund amount exceeds the transaction amount" }
          ]
        }
      }
      const already = {
        status_code: "200",
        response_code: "00",
        status: "Success",
        message: "success",
        data: { transactions: [{ ap_transactionid: 10265, success: "false", message: AirpaySandbox.alreadyInitiatedMessage, refund_id: "12080" }, { ap_transactionid: 10264, success: "false", message: "Refund amount exceeds the transaction amount" }] }
      }
      const { refunds, refundCalls } = yield* scripted([partial, already])
      const created = yield* refunds.create(create(refund([10265, "5.00"], [10264, "900.00"]), "partial"))
      assert.strictEqual(refundCalls(), 1, "Airpay accepted 10265: the call is not sent again")
      assert.strictEqual(created.refund.status, "requires_action")
      assert.deepStrictEqual(created.refund.items.map((i) => [i.target, i.status]), [["10265", "succeeded"], ["10264", "failed"]])
    }))

  describe("answers not encrypted", () => {
    // The docs' PHP reads `json_decode($result)->response` and some pages say answers are not encrypted:
    // `response` may then hold the envelope itself. The error example prints that as `{ {...} }`.
    for (const answers of ["plain", "wrapped", "double-braced"] as const) {
      it.scopedLive(`${answers}: outcomes and refusals are read as from an encrypted answer`, () =>
        Effect.gen(function*() {
          const { handle, refunds } = yield* setup({}, { answers })
          const { refund: mixed } = yield* refunds.create(create(refund([20003, "75.50"], [424242, "1.00"]), `mixed-${answers}`))
          assert.strictEqual(mixed.status, "requires_action")
          assert.deepStrictEqual(mixed.items.map((i) => [i.target, i.status, i.providerStatus]), [["20003", "succeeded", "accepted"], ["424242", "failed", "refused"]])
          assert.strictEqual((yield* handle.stats).refundsPerformed, 1)
          const bad = yield* setup({ REFUNDKIT_AIRPAY_MERCHANT_ID: "999" }, { answers })
          const error = yield* Effect.flip(bad.refunds.create(create(refund([20001, "1.00"]), `bad-merchant-${answers}`)))
          assert.strictEqual(error._tag, "ProviderAuthFailed")
          assert.include(error.message, "Invalid Merchant Id")
          if (error._tag === "ProviderAuthFailed") assert.strictEqual((yield* bad.refunds.get(error.refundId!)).status, "failed")
        }))
    }

    it.scopedLive("a `response` object that is not Airpay's envelope is UnexpectedResponse naming the field; the refund is unknown", () =>
      Effect.gen(function*() {
        const { refunds } = yield* scripted([{ unsealed: JSON.stringify({ response: { code: "200", data: { transactions: [] } } }) }])
        const error = yield* Effect.flip(refunds.create(create(refund([10265, "5.00"]), "not-an-envelope")))
        assert.strictEqual(error._tag, "UnexpectedResponse")
        if (error._tag === "UnexpectedResponse") {
          assert.strictEqual(error.path, "response.status_code")
          assert.strictEqual((yield* refunds.get(error.refundId ?? "")).status, "unknown")
        }
        const { refunds: listed } = yield* scripted([{ unsealed: JSON.stringify({ response: ["tok-3f9a-secret"] }) }])
        const listError = yield* Effect.flip(listed.create(create(refund([10265, "5.00"]), "listed")))
        assert.strictEqual(listError._tag === "UnexpectedResponse" ? listError.path : listError._tag, "response")
        assert.notInclude(listError.message, "tok-3f9a-secret", "a body may carry a token: never echoed")
        const { refunds: braced } = yield* scripted([{ unsealed: "{ {\"status_code\": \"200\"} x }" }])
        const garbled = yield* Effect.flip(braced.create(create(refund([10265, "5.00"]), "garbled")))
        assert.strictEqual(garbled._tag, "UnexpectedResponse")
        assert.include(garbled.message, "not valid JSON")
      }))
  })
})
