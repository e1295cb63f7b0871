import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Ledger from "@refundkit/core/Ledger"
import * as Providers from "@refundkit/core/Providers"
import * as RefundError from "@refundkit/core/RefundError"
import * as Refund from "@refundkit/core/Refund"
import * as Refunds from "@refundkit/core/Refunds"
import { Cause, ConfigProvider, Context, type Duration, Effect, Either, Exit, Fiber, Layer, Logger, LogLevel, Option, Schedule } from "effect"
import { readFileSync } from "node:fs"
import { AeroHub } from "../src/index.js"
import * as AeroHubSandbox from "../src/sandbox.js"
import { ScriptedServer } from "@refundkit/testkit"
import { updateRefundPath } from "../src/AeroHubConfig.js"

const seedSample: Record<string, unknown> = JSON.parse(readFileSync(new URL("./fixtures/seed-sample-request.json", import.meta.url), "utf8"))

/** The whole stack against a fresh sandbox, configured the way the CLI and the gateway do it: from `handle.env`. */
const setup = (options: { readonly env?: Record<string, string>; readonly callTimeout?: Duration.DurationInput } = {}) =>
  Effect.gen(function*() {
    const sandbox = yield* AeroHubSandbox.make()
    const env = { ...sandbox.env, ...options.env }
    const layer = Refunds.layer({
      callTimeout: options.callTimeout ?? "2 seconds",
      retrySchedule: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
      maxRetryAfter: "1 second"
    }).pipe(
      Layer.provideMerge(Layer.provideMerge(AeroHub.layerConfig, Providers.layer)),
      Layer.provideMerge(Ledger.layerMemory),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
    )
    const context = yield* Layer.build(layer)
    const refunds = Context.get(context, Refunds.Refunds)
    const sent = Effect.map(sandbox.stats, (stats) => stats.requests["update_refund"] ?? 0)
    return { sandbox, refunds, sent, ledger: Context.get(context, Ledger.Ledger) }
  })

const order = (n: number) => ({ refundOrderNo: `FBRF${800000 + n}`, purchaseOrderNo: `F${200000 + n}` })
const quote = [{ amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }]
const paid = [{ refundCost: "250.00", refundVoucher: "50.00", voucherCurrency: "USD" }]

/** The sandbox's own tallies, read over HTTP (`GET /__sandbox/stats`). */
const statsOverHttp = (sandbox: AeroHubSandbox.AeroHubSandbox) =>
  Effect.promise(async () =>
    (await (await fetch(`${sandbox.url}/__sandbox/stats`)).json()) as {
      readonly requests: Record<string, number>
      readonly orders: Record<string, { readonly status?: string; readonly repeats: number }>
    }
  )

/** UpdateRefund calls the sandbox counted, over HTTP. */
const receivedOverHttp = (sandbox: AeroHubSandbox.AeroHubSandbox) => Effect.map(statsOverHttp(sandbox), (stats) => stats.requests["update_refund"] ?? 0)

/** The one issue of an InvalidRequest (anything else fails the test). */
const issueOf = (error: { readonly _tag: string }) => {
  assert.strictEqual(error._tag, "InvalidRequest", JSON.stringify(error))
  const issues = error instanceof RefundError.InvalidRequest ? error.issues : []
  assert.strictEqual(issues.length, 1, JSON.stringify(issues))
  return issues[0]!
}

/**
 * A refund as an earlier version recorded an order's first update that AeroHub accepted: the request on
 * the refund, the answer in a "submit" event, and no reference of what a repeat must replay.
 */
const recordedByAnEarlierVersion = (ledger: Ledger.Ledger.Service, key: string, request: Record<string, unknown> & { readonly refundOrderNo: string; readonly purchaseOrderNo: string; readonly refundStatus: string }, to: "pending" | "failed") =>
  Effect.gen(function*() {
    const at = new Date().toISOString()
    const id = Refund.deriveId("aerohub", key)
    yield* ledger.claim({
      id,
      provider: "aerohub",
      idempotencyKey: key,
      fingerprint: Refund.fingerprint("aerohub", { request }),
      request,
      status: "requested",
      references: {},
      targets: [{ target: request.refundOrderNo }],
      items: [],
      createdAt: at,
      updatedAt: at,
      events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }]
    })
    return yield* ledger.transition(id, {
      to,
      source: "submit",
      at,
      providerStatus: request.refundStatus,
      providerReference: request.refundOrderNo,
      references: { refundOrderNo: request.refundOrderNo, purchaseOrderNo: request.purchaseOrderNo }
    })
  })

/**
 * An operator's verdict as an earlier version recorded it, unasked: `Refunds.resolve` now refuses a
 * `succeeded` AeroHub was never told, and such refunds are in ledgers already.
 */
const resolvedByAnEarlierVersion = (ledger: Ledger.Ledger.Service, id: string, to: "succeeded" | "failed", note: string) =>
  ledger.transition(id, { to, source: "operator", at: new Date().toISOString(), detail: `operator: ${note}`, ...(to === "succeeded" ? { error: null } : {}) })

/** The refund a create left in doubt: its first update's answers lost, so the create was answered with its id. */
const createdInDoubt = (
  refunds: Refunds.Refunds.Service,
  sandbox: AeroHubSandbox.AeroHubSandbox,
  request: Record<string, unknown>,
  idempotencyKey: string
) =>
  Effect.gen(function*() {
    yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 10 })
    const error = yield* Effect.flip(refunds.create({ provider: "aerohub", request, idempotencyKey }))
    yield* sandbox.faults.clear
    assert.strictEqual(error._tag, "ProviderUnavailable", JSON.stringify(error))
    const id = error._tag === "ProviderUnavailable" ? error.refundId ?? "" : ""
    assert.strictEqual((yield* refunds.get(id)).status, "unknown")
    return { error, id }
  })

/** The CLI command an AeroHub message gives for sending `request` as an update of refund `id`. */
const updateCommand = (id: string, request: unknown) => `refundkit update ${id} --data '${JSON.stringify(request)}'`

const bodies = (sandbox: AeroHubSandbox.AeroHubSandbox) =>
  Effect.map(sandbox.calls, (calls) => calls.map((call) => JSON.parse(call.body) as Record<string, unknown>))

describe("AeroHub plugin end to end", () => {
  it.scopedLive("a refusal of a retry after an attempt that may have been applied leaves the refund unknown, not failed", () =>
    Effect.gen(function*() {
      // AeroHub's documented shapes: "System busy" (a 500 in the body) and then the 400 "Failed" to the retry,
      // which carries a fresh requestId, so it speaks for the retry alone.
      const busy = { body: { code: 500, msg: "System busy" } }
      const refused = { body: { code: 400, msg: "Failed" } }
      const provider = yield* ScriptedServer.make({ [`POST ${updateRefundPath}`]: [busy, refused] })
      const { refunds } = yield* setup({ env: { REFUNDKIT_AEROHUB_BASE_URL: provider.url } })
      const error = yield* Effect.flip(refunds.create({ provider: "aerohub", request: { ...order(90), refundStatus: "PROCESSING" }, idempotencyKey: "retry-refused" }))
      assert.strictEqual(error._tag, "OutcomeUnknown")
      assert.strictEqual(provider.calls.length, 2)
      const refund = yield* refunds.get(error._tag === "OutcomeUnknown" ? error.refundId ?? "" : "")
      assert.strictEqual(refund.status, "unknown")

      // A first attempt's 400 is still AeroHub's answer to that update: a decline.
      const direct = yield* ScriptedServer.make({ [`POST ${updateRefundPath}`]: [refused] })
      const again = yield* setup({ env: { REFUNDKIT_AEROHUB_BASE_URL: direct.url } })
      const declined = yield* again.refunds.create({ provider: "aerohub", request: { ...order(91), refundStatus: "PROCESSING" }, idempotencyKey: "first-refused" })
      assert.strictEqual(declined.refund.status, "failed")
      assert.strictEqual(direct.calls.length, 1)
    }))

  it.scopedLive("a refusal of a retry after attempts AeroHub did nothing with (429, 503) is still a decline, not unknown", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup()
      // The customer withdrew this order: AeroHub refuses every update, and a 429 before that applied nothing.
      const withdrawn = { refundOrderNo: "FBRF2403110003", purchaseOrderNo: "F1745553257834610003" }
      yield* sandbox.faults.inject({ fault: { _tag: "RateLimited", retryAfterSeconds: 0 }, route: "update_refund" })
      const created = yield* refunds.create({ provider: "aerohub", request: { ...withdrawn, refundStatus: "PROCESSING" }, idempotencyKey: "rate-limited-then-refused" })
      assert.strictEqual(created.refund.status, "failed")
      assert.strictEqual(created.refund.error?.code, "provider_declined")
      assert.include(created.refund.error?.message ?? "", "withdrawn")
      assert.strictEqual(yield* sent, 2)

      // The same for an update: the order was closed meanwhile (by another system on the same AeroHub account:
      // this ledger refuses a second refund of one order), then a 503 with Retry-After (not processed) and
      // AeroHub's refusal of the retry: the update is declined, as it would be without the 503.
      const o = order(92)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "update-first" })
      const elsewhere = yield* setup({ env: sandbox.env })
      yield* elsewhere.refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "update-closer" })
      yield* sandbox.faults.inject({ fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "update_refund" })
      const error = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" }))
      assert.strictEqual(error._tag, "ProviderDeclined")
      if (error._tag === "ProviderDeclined") assert.include(error.reason, "nothing leaves REFUNDED, CLOSED or QUOTE_REJECTED")
      // An update has no idempotency key to renew, and its refusal leaves the refund as it was.
      assert.include(error.message, "aerohub declined the update")
      assert.include(error.message, "The refund keeps its status.")
      assert.notInclude(error.message, "new idempotency key", error.message)
    }))

  it.scopedLive("creates a refund from a refund order's first update and moves it to succeeded with Refunds.update", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const o = order(1)
      const created = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "order-1" })
      assert.strictEqual(created.refund.status, "pending")
      assert.strictEqual(created.refund.providerStatus, "PROCESSING")
      assert.strictEqual(created.refund.providerReference, o.refundOrderNo)
      assert.deepStrictEqual(created.refund.references, { refundOrderNo: o.refundOrderNo, purchaseOrderNo: o.purchaseOrderNo })
      assert.deepStrictEqual(created.refund.targets, [{ target: o.refundOrderNo }])
      assert.deepStrictEqual(created.refund.request, { ...o, refundStatus: "PROCESSING" }, "the stored request has no apiKey or requestId")

      const step2 = yield* refunds.update(created.refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      assert.strictEqual(step2.status, "pending")
      assert.strictEqual(step2.providerStatus, "REFUNDED_PENDING")
      const done = yield* refunds.update(created.refund.id, { ...o, refundStatus: "REFUNDED", refundAmount: paid })
      assert.strictEqual(done.status, "succeeded")
      assert.strictEqual(done.providerStatus, "REFUNDED")
      assert.deepStrictEqual(done.events.map((e) => [e.source, e.to, e.providerStatus]), [
        ["submit", "requested", undefined],
        ["submit", "pending", "PROCESSING"],
        ["operator", "pending", "REFUNDED_PENDING"],
        ["operator", "succeeded", "REFUNDED"]
      ])
      assert.include(done.events[3]!.detail ?? "", "\"refundCost\":\"250.00\"", "the update is kept in the history, without secrets")

      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 1)
      const sent = yield* bodies(sandbox)
      assert.deepStrictEqual(sent.map((b) => b["refundStatus"]), ["PROCESSING", "REFUNDED_PENDING", "REFUNDED"])
      assert.deepStrictEqual(sent[2]!["refundAmount"], [{ refundCost: 250, refundVoucher: 50, voucherCurrency: "USD" }], "amounts travel as JSON numbers")
      for (const body of sent) {
        assert.strictEqual(body["apiKey"], sandbox.apiKey)
        assert.match(String(body["requestId"]), /^[0-9a-f]{32}$/)
      }
      assert.strictEqual(new Set(sent.map((b) => b["requestId"])).size, 3, "a fresh requestId per call")
    }))

  it.scopedLive("every legal path is accepted by the plugin and the sandbox alike", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const paths: ReadonlyArray<readonly [string, ReadonlyArray<Record<string, unknown>>, string]> = [
        ["quote, then refund", [{ refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote }, { refundStatus: "PROCESSING" }, { refundStatus: "REFUNDED_PENDING" }, { refundStatus: "REFUNDED", refundAmount: paid }], "succeeded"],
        ["quote rejected", [{ refundStatus: "QUOTE_REJECTED", rejectReason: 2 }], "failed"],
        ["closed at once", [{ refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA1234" }], "failed"],
        ["quote, then closed", [{ refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote }, { refundStatus: "CLOSED", rejectReason: 4 }], "failed"],
        ["processing, then closed", [{ refundStatus: "PROCESSING" }, { refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "10.00" }], "failed"],
        ["refunded pending, then closed", [{ refundStatus: "PROCESSING" }, { refundStatus: "REFUNDED_PENDING" }, { refundStatus: "CLOSED", rejectReason: 1, refundDate: "2024-05-01" }], "failed"],
        ["repeats", [{ refundStatus: "PROCESSING" }, { refundStatus: "PROCESSING" }, { refundStatus: "REFUNDED_PENDING" }, { refundStatus: "REFUNDED_PENDING" }], "pending"]
      ]
      for (const [i, [name, steps, final]] of paths.entries()) {
        const o = order(100 + i)
        const [first, ...rest] = steps
        const created = yield* refunds.create({ provider: "aerohub", request: { ...o, ...first }, idempotencyKey: `path-${i}` })
        let refund = created.refund
        for (const step of rest) refund = yield* refunds.update(refund.id, { ...o, ...step })
        assert.strictEqual(refund.status, final, name)
        assert.strictEqual(refund.providerStatus, steps[steps.length - 1]!["refundStatus"], name)
      }
      const stats = yield* sandbox.stats
      assert.strictEqual(stats["updatesRefused"], 0)
      assert.strictEqual(stats.refundsPerformed, 1)
    }))

  it.scopedLive("an illegal move is InvalidRequest naming refundStatus, and nothing is sent", () =>
    Effect.gen(function*() {
      const { refunds, sent } = yield* setup()
      const o = order(2)
      const notFirst = yield* Effect.flip(refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "REFUNDED", refundAmount: paid }, idempotencyKey: "bad-first" }))
      assert.strictEqual(notFirst._tag, "InvalidRequest")
      assert.strictEqual(yield* sent, 0)
      assert.strictEqual((yield* refunds.list({ limit: 10 })).items.length, 0, "nothing recorded")

      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "order-2" })
      assert.strictEqual(yield* sent, 1)
      const illegal: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote }, "PROCESSING cannot be undone"],
        [{ refundStatus: "REFUNDED", refundAmount: paid }, "skips a step"]
      ]
      for (const [step, rule] of illegal) {
        const error = yield* Effect.flip(refunds.update(refund.id, { ...o, ...step }))
        assert.strictEqual(error._tag, "InvalidRequest")
        if (error._tag === "InvalidRequest") {
          assert.deepStrictEqual(error.issues.map((i) => i.path), ["refundStatus"])
          assert.include(error.issues[0]!.message, rule)
        }
      }
      assert.strictEqual(yield* sent, 1, "no illegal update reached AeroHub")

      yield* refunds.update(refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 3 })
      assert.strictEqual(yield* sent, 2)
      const afterFinal = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" }))
      assert.strictEqual(afterFinal._tag, "InvalidRequest")
      if (afterFinal._tag === "InvalidRequest") assert.include(afterFinal.issues[0]!.message, "nothing leaves REFUNDED, CLOSED or QUOTE_REJECTED")
      const otherOrder = yield* Effect.flip(refunds.update(refund.id, { ...order(3), refundStatus: "CLOSED" }))
      assert.strictEqual(otherOrder._tag, "InvalidRequest")
      if (otherOrder._tag === "InvalidRequest") assert.deepStrictEqual(otherOrder.issues.map((i) => i.path), ["refundOrderNo"])
      const otherPurchase = yield* Effect.flip(refunds.update(refund.id, { ...o, purchaseOrderNo: "F1", refundStatus: "CLOSED" }))
      if (otherPurchase._tag === "InvalidRequest") assert.deepStrictEqual(otherPurchase.issues.map((i) => i.path), ["purchaseOrderNo"])
      const broken = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 7 }))
      if (broken._tag === "InvalidRequest") assert.deepStrictEqual(broken.issues.map((i) => i.path), ["flightNumber"])
      assert.strictEqual(yield* sent, 2, "none of these reached AeroHub")
    }))

  it.scopedLive("AeroHub's sample request finishes the sample's refund order as a later update", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const { apiKey: _apiKey, requestId: _requestId, ...sample } = seedSample
      const o = { refundOrderNo: "FBRF2403112526", purchaseOrderNo: "F1745553257834618888" }
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "sample" })
      yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      const done = yield* refunds.update(refund.id, sample)
      assert.strictEqual(done.status, "succeeded")
      const last = (yield* bodies(sandbox)).at(-1)!
      assert.deepStrictEqual(last["refundAmount"], [{ refundCost: 250, refundVoucher: 50, voucherCurrency: "USD", voucherNote: "Expired on January 31, 2025, for personal use only." }])
      assert.strictEqual(last["documentationNote"], "Please provide necessary documentation.")
      assert.isFalse("rejectReason" in last, "the sample's nulls are left out")
      assert.notStrictEqual(last["apiKey"], seedSample["apiKey"])
      assert.strictEqual(Option.getOrUndefined(yield* sandbox.order("FBRF2403112526"))?.status, "REFUNDED")
    }))

  it.scopedLive("a repeated REFUNDED with the same money is a replay; other money is InvalidRequest naming the field, not sent", () =>
    Effect.gen(function*() {
      const { refunds, sent } = yield* setup()
      const o = order(5)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "repeat-money" })
      yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      const done = yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED", refundAmount: paid })
      assert.deepStrictEqual(JSON.parse(done.references["refundAmount"] ?? "null"), paid, "the money AeroHub was told is kept on the refund")
      // The same money, spelled as AeroHub's sample spells it, with a voucher note (text, not money).
      const replay = yield* refunds.update(refund.id, {
        ...o,
        refundStatus: "REFUNDED",
        refundAmount: [{ refundCost: 250, refundVoucher: 50.0, voucherCurrency: "USD", voucherNote: "valid one year" }]
      })
      assert.strictEqual(replay.status, "succeeded")
      const before = yield* sent
      const conflicts: Array<[unknown, string]> = [
        [[{ ...paid[0], refundCost: "999.00" }], "refundAmount.0.refundCost"],
        [[{ refundCost: "250.00", refundVoucher: "50.00", voucherCurrency: "EUR" }], "refundAmount.0.voucherCurrency"],
        [[{ refundCost: "250.00" }], "refundAmount.0.refundVoucher"],
        [[...paid, { refundCost: "1.00" }], "refundAmount"]
      ]
      for (const [refundAmount, path] of conflicts) {
        const error = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED", refundAmount }))
        assert.strictEqual(error._tag, "InvalidRequest")
        const issues = error._tag === "InvalidRequest" ? error.issues : []
        assert.deepStrictEqual(issues.map((i) => i.path), [path])
        assert.include(issues[0]!.message, "already REFUNDED")
      }
      assert.strictEqual(yield* sent, before, "no conflicting REFUNDED reached AeroHub")
      const after = yield* refunds.get(refund.id)
      assert.deepStrictEqual(JSON.parse(after.references["refundAmount"] ?? "null"), paid)
    }))

  it.scopedLive("a refund recorded REFUNDED before its money was kept is checked against the REFUNDED update in its history", () =>
    Effect.gen(function*() {
      const { refunds, ledger, sent } = yield* setup()
      const o = order(6)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "repeat-money-old" })
      yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      // What an earlier version recorded for an accepted REFUNDED: the update in the event's detail, no money reference.
      const request = { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] }
      yield* ledger.transition(refund.id, { to: "succeeded", source: "operator", at: new Date().toISOString(), providerStatus: "REFUNDED", detail: `update ${JSON.stringify(request)}` })
      const before = yield* sent
      const error = yield* Effect.flip(refunds.update(refund.id, { ...request, refundAmount: [{ refundCost: "999.00" }] }))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.strictEqual(error._tag === "InvalidRequest" ? error.issues[0]?.path : undefined, "refundAmount.0.refundCost")
      assert.strictEqual(yield* sent, before)
      const replay = yield* refunds.update(refund.id, request)
      assert.strictEqual(replay.status, "succeeded")
    }))

  it.scopedLive("a refund whose history holds a later REFUNDED with other money (an earlier version sent it) is checked against the first", () =>
    Effect.gen(function*() {
      const { refunds, ledger, sent } = yield* setup()
      const o = order(7)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "repeat-money-older" })
      yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      // An earlier version recorded REFUNDED 250, then sent and recorded a repeat with 999: AeroHub kept 250.
      const request = { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] }
      for (const recorded of [request, { ...request, refundAmount: [{ refundCost: "999.00" }] }]) {
        yield* ledger.transition(refund.id, { to: "succeeded", source: "operator", at: new Date().toISOString(), providerStatus: "REFUNDED", detail: `update ${JSON.stringify(recorded)}` })
      }
      const before = yield* sent
      const issue = issueOf(yield* Effect.flip(refunds.update(refund.id, { ...request, refundAmount: [{ refundCost: "999.00" }] })))
      assert.strictEqual(issue.path, "refundAmount.0.refundCost")
      assert.include(issue.message, "250.00")
      assert.strictEqual(yield* sent, before)
      assert.strictEqual((yield* refunds.update(refund.id, request)).status, "succeeded")
    }))

  it.scopedLive("a repeated CLOSED or QUOTE_REJECTED with the same rejection is a replay; another reason or other fields are InvalidRequest naming the field, not sent", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      // CLOSED as the order's first update, with the field its reason (6) requires.
      const o = order(10)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "10.00" }, idempotencyKey: "repeat-closed" })
      assert.strictEqual(refund.status, "failed")
      assert.deepStrictEqual(JSON.parse(refund.references["rejection"] ?? "null"), { rejectReason: 6, refundableAmount: "10.00" }, "the rejection AeroHub was told is kept on the refund")
      // The same rejection, its amount spelled as AeroHub's sample spells amounts: sent, AeroHub counts a repeat.
      const replay = yield* refunds.update(refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: 10 })
      assert.strictEqual(replay.status, "failed")
      assert.strictEqual(replay.providerStatus, "CLOSED")
      assert.strictEqual((yield* statsOverHttp(sandbox)).orders[o.refundOrderNo]?.repeats, 1)

      // CLOSED as a later step, with the field its reason (7) requires.
      const p = order(11)
      const later = yield* refunds.create({ provider: "aerohub", request: { ...p, refundStatus: "PROCESSING" }, idempotencyKey: "repeat-closed-later" })
      yield* refunds.update(later.refund.id, { ...p, refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA1234" })
      // A reason refused as its own quote: QUOTE_REJECTED with a reason.
      const q = order(12)
      const rejected = yield* refunds.create({ provider: "aerohub", request: { ...q, refundStatus: "QUOTE_REJECTED", rejectReason: 2 }, idempotencyKey: "repeat-quote-rejected" })
      const again = yield* refunds.update(rejected.refund.id, { ...q, refundStatus: "QUOTE_REJECTED", rejectReason: 2 })
      assert.strictEqual(again.status, "failed")

      const before = yield* receivedOverHttp(sandbox)
      const conflicts: ReadonlyArray<readonly [string, Record<string, unknown>, string, string, string]> = [
        [refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 4 }, "rejectReason", "rejectReason 6", "got 4"],
        [refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "99.00" }, "refundableAmount", "refundableAmount 10.00", "got 99.00"],
        [later.refund.id, { ...p, refundStatus: "CLOSED", rejectReason: 7, flightNumber: "CA9999" }, "flightNumber", "flightNumber CA1234", "got CA9999"],
        [later.refund.id, { ...p, refundStatus: "CLOSED", rejectReason: 1, refundDate: "2024-05-01" }, "rejectReason", "rejectReason 7", "got 1"],
        [rejected.refund.id, { ...q, refundStatus: "QUOTE_REJECTED", rejectReason: 3 }, "rejectReason", "rejectReason 2", "got 3"],
        [rejected.refund.id, { ...q, refundStatus: "QUOTE_REJECTED" }, "rejectReason", "rejectReason 2", "got absent"]
      ]
      for (const [id, request, path, recorded, sent] of conflicts) {
        const issue = issueOf(yield* Effect.flip(refunds.update(id, request)))
        assert.strictEqual(issue.path, path)
        assert.include(issue.message, `already ${String(request["refundStatus"])} with ${recorded}`)
        assert.include(issue.message, sent)
        assert.include(issue.message, "it was not sent")
      }
      assert.strictEqual(yield* receivedOverHttp(sandbox), before, "no conflicting repeat reached AeroHub")
      assert.deepStrictEqual(JSON.parse((yield* refunds.get(later.refund.id)).references["rejection"] ?? "null"), { rejectReason: 7, flightNumber: "CA1234" })
      assert.deepStrictEqual(JSON.parse((yield* refunds.get(refund.id)).references["rejection"] ?? "null"), { rejectReason: 6, refundableAmount: "10.00" })
    }))

  it.scopedLive("a repeated QUOTE_COMPLETED with the same quote is a replay; other pricing is InvalidRequest naming the field, not sent", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const o = order(13)
      const pricing = [{ amount: "300.00", isRefundVoucher: 0, voucherCurrency: "USD", refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }, { ageType: 1, refundFeePolicy: "150.00" }] }]
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "QUOTE_COMPLETED", refundFeePricing: pricing }, idempotencyKey: "repeat-quote" })
      assert.deepStrictEqual(JSON.parse(refund.references["refundFeePricing"] ?? "null"), pricing, "the quote AeroHub was told is kept on the refund")
      // The same quote spelled as AeroHub's sample spells it (JSON numbers).
      const replay = yield* refunds.update(refund.id, {
        ...o,
        refundStatus: "QUOTE_COMPLETED",
        refundFeePricing: [{ amount: 300.0, isRefundVoucher: 0, voucherCurrency: "USD", refundPolicyDetail: [{ ageType: 0, refundFeePolicy: 100 }, { ageType: 1, refundFeePolicy: 150.0 }] }]
      })
      assert.strictEqual(replay.providerStatus, "QUOTE_COMPLETED")
      assert.strictEqual((yield* statsOverHttp(sandbox)).orders[o.refundOrderNo]?.repeats, 1)

      const before = yield* receivedOverHttp(sandbox)
      const conflicts: ReadonlyArray<readonly [unknown, string, string]> = [
        [[{ ...pricing[0], amount: "350.00" }], "refundFeePricing.0.amount", "refundFeePricing.0.amount 300.00; a repeated QUOTE_COMPLETED replays the same quote, got 350.00"],
        [[{ ...pricing[0], refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }, { ageType: 1, refundFeePolicy: "120.00" }] }],
          "refundFeePricing.0.refundPolicyDetail.1.refundFeePolicy", "refundFeePricing.0.refundPolicyDetail.1.refundFeePolicy 150.00"],
        [[{ ...pricing[0], isRefundVoucher: 1 }], "refundFeePricing.0.isRefundVoucher", "refundFeePricing.0.isRefundVoucher 0"],
        [[...pricing, { amount: "10.00" }], "refundFeePricing", "refundFeePricing of 1 element"]
      ]
      for (const [refundFeePricing, path, said] of conflicts) {
        const issue = issueOf(yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "QUOTE_COMPLETED", refundFeePricing })))
        assert.strictEqual(issue.path, path)
        assert.include(issue.message, `already QUOTE_COMPLETED with ${said}`)
      }
      assert.strictEqual(yield* receivedOverHttp(sandbox), before, "no conflicting quote reached AeroHub")
      // The order goes on with the quote AeroHub has, which the refund still names.
      const processing = yield* refunds.update(refund.id, { ...o, refundStatus: "PROCESSING" })
      assert.strictEqual(processing.providerStatus, "PROCESSING")
      assert.deepStrictEqual(JSON.parse(processing.references["refundFeePricing"] ?? "null"), pricing)
    }))

  it.scopedLive("a refund recorded before its rejection or quote was kept is checked against its history; with nothing there, a repeat is sent as before and not kept", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, ledger } = yield* setup()
      // The same AeroHub account, another ledger: what brings each order to its state at the sandbox.
      const elsewhere = yield* setup({ env: sandbox.env })

      // First update CLOSED, recorded as an earlier version did: the request on the refund, no "rejection".
      const o = order(14)
      const closedFirst = { ...o, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "10.00" }
      yield* elsewhere.refunds.create({ provider: "aerohub", request: closedFirst, idempotencyKey: "old-closed" })
      const old = yield* recordedByAnEarlierVersion(ledger, "old-closed", closedFirst, "failed")
      assert.isUndefined(old.references["rejection"])
      // First update QUOTE_COMPLETED, the same way.
      const q = order(15)
      const quotedFirst = { ...q, refundStatus: "QUOTE_COMPLETED", refundFeePricing: quote }
      yield* elsewhere.refunds.create({ provider: "aerohub", request: quotedFirst, idempotencyKey: "old-quote" })
      const oldQuote = yield* recordedByAnEarlierVersion(ledger, "old-quote", quotedFirst, "pending")
      // CLOSED as an update, then a conflicting repeat that an earlier version sent and recorded: AeroHub kept the first.
      const p = order(16)
      const later = yield* refunds.create({ provider: "aerohub", request: { ...p, refundStatus: "PROCESSING" }, idempotencyKey: "old-closed-later" })
      const closedLater = { ...p, refundStatus: "CLOSED", rejectReason: 4 }
      yield* elsewhere.refunds.create({ provider: "aerohub", request: closedLater, idempotencyKey: "old-closed-later" })
      for (const recorded of [closedLater, { ...closedLater, rejectReason: 5 }]) {
        yield* ledger.transition(later.refund.id, { to: "failed", source: "operator", at: new Date().toISOString(), providerStatus: "CLOSED", detail: `update ${JSON.stringify(recorded)}` })
      }

      const before = yield* receivedOverHttp(sandbox)
      const conflicts: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
        [old.id, { ...closedFirst, refundableAmount: "99.00" }, "refundableAmount"],
        [oldQuote.id, { ...quotedFirst, refundFeePricing: [{ ...quote[0], amount: "999.00" }] }, "refundFeePricing.0.amount"],
        [later.refund.id, { ...closedLater, rejectReason: 5 }, "rejectReason"]
      ]
      for (const [id, request, path] of conflicts) {
        assert.strictEqual(issueOf(yield* Effect.flip(refunds.update(id, request))).path, path)
      }
      assert.strictEqual(yield* receivedOverHttp(sandbox), before, "no conflicting repeat reached AeroHub")
      for (const [id, request] of [[old.id, { ...closedFirst, refundableAmount: 10 }], [oldQuote.id, quotedFirst], [later.refund.id, closedLater]] as const) {
        assert.strictEqual((yield* refunds.update(id, request)).providerStatus, request.refundStatus, "the same content is a replay")
      }
      assert.strictEqual(yield* receivedOverHttp(sandbox), before + 3)

      // A CLOSED whose history does not say with what (recorded by hand): nothing to compare with.
      const n = order(17)
      const bare = yield* refunds.create({ provider: "aerohub", request: { ...n, refundStatus: "PROCESSING" }, idempotencyKey: "old-closed-bare" })
      yield* elsewhere.refunds.create({ provider: "aerohub", request: { ...n, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "old-closed-bare" })
      yield* ledger.transition(bare.refund.id, { to: "failed", source: "operator", at: new Date().toISOString(), providerStatus: "CLOSED" })
      const unchecked = yield* receivedOverHttp(sandbox)
      const repeated = yield* refunds.update(bare.refund.id, { ...n, refundStatus: "CLOSED", rejectReason: 2 })
      assert.strictEqual(repeated.status, "failed")
      assert.strictEqual(yield* receivedOverHttp(sandbox), unchecked + 1, "sent, as before")
      assert.isUndefined(repeated.references["rejection"], "AeroHub kept the first rejection, whatever it was: the repeat's is not recorded as it")
      assert.strictEqual((yield* refunds.update(bare.refund.id, { ...n, refundStatus: "CLOSED", rejectReason: 3 })).status, "failed")
    }))

  it.scopedLive("a lost response is retried and the repeat is idempotent at AeroHub: refunded once", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup()
      const o = order(4)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "lost" })
      yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund" })
      const done = yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED", refundAmount: paid })
      assert.strictEqual(done.status, "succeeded")
      assert.strictEqual(yield* sent, 4)
      const stats = yield* sandbox.stats
      assert.strictEqual(stats.refundsPerformed, 1)
      assert.deepStrictEqual(Option.getOrUndefined(Option.map(yield* sandbox.order(o.refundOrderNo), (x) => x.repeats)), 1)
    }))

  it.scopedLive("an update whose every answer was lost is recorded in the refund's history as in doubt, and its repeat settles it", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const o = order(93)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "update-lost" })
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 0 })
      const error = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" }))
      assert.strictEqual(error._tag, "ProviderUnavailable")
      if (error._tag === "ProviderUnavailable") {
        assert.strictEqual(error.refundId, refund.id)
        assert.strictEqual(error.status, "pending")
      }
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* sandbox.order(o.refundOrderNo), (x) => x.status)), "REFUNDED_PENDING")
      const inDoubt = yield* refunds.get(refund.id)
      assert.strictEqual(inDoubt.providerStatus, "PROCESSING")
      assert.strictEqual(inDoubt.error?.code, "provider_unavailable")
      assert.include(inDoubt.events.at(-1)?.detail ?? "", "REFUNDED_PENDING")
      assert.include(inDoubt.events.at(-1)?.detail ?? "", "may have been applied")
      yield* sandbox.faults.clear
      const settled = yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      assert.strictEqual(settled.providerStatus, "REFUNDED_PENDING")
      assert.isUndefined(settled.error)
    }))

  it.scopedLive("a REFUNDED in doubt binds its repeat: other money is InvalidRequest naming the field and the money sent before, not sent; the same money settles it", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup()
      const o = order(96)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "money-in-doubt" })
      yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" })
      // Every answer lost (the first attempt and both retries): AeroHub applied it, the refund cannot know.
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 4 })
      const lost = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] }))
      assert.strictEqual(lost._tag, "ProviderUnavailable")
      assert.include(lost.message, "may have been applied")
      yield* sandbox.faults.clear
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* sandbox.order(o.refundOrderNo), (x) => x.status)), "REFUNDED")
      const before = yield* sent

      const issue = issueOf(yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "999.00" }] })))
      assert.strictEqual(issue.path, "refundAmount.0.refundCost")
      assert.include(issue.message, "refundCost 250.00")
      assert.include(issue.message, "got 999.00")
      assert.include(issue.message, "outcome is not known")
      assert.strictEqual(yield* sent, before, "the other money never reached AeroHub")
      const unchanged = yield* refunds.get(refund.id)
      assert.strictEqual(unchanged.providerStatus, "REFUNDED_PENDING")
      assert.isUndefined(unchanged.references["refundAmount"])

      // The same money (spelled as AeroHub's sample spells it) is sent: that is how the doubt is settled.
      const settled = yield* refunds.update(refund.id, { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 250 }] })
      assert.strictEqual(yield* sent, before + 1)
      assert.strictEqual(settled.status, "succeeded")
      assert.deepStrictEqual(JSON.parse(settled.references["refundAmount"] ?? "null"), [{ refundCost: "250.00" }])
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("a CLOSED in doubt binds its repeat (an update's, or a create's left unknown): another rejection is InvalidRequest naming the field, not sent; the same one settles it", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent, ledger } = yield* setup()
      const o = order(97)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "rejection-in-doubt" })
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 4 })
      const lost = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 4 }))
      assert.strictEqual(lost._tag, "ProviderUnavailable")
      yield* sandbox.faults.clear
      const before = yield* sent
      const issue = issueOf(yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "55.00" })))
      assert.strictEqual(issue.path, "rejectReason")
      assert.include(issue.message, "rejectReason 4")
      assert.include(issue.message, "got 6")
      assert.strictEqual(yield* sent, before, "the other rejection never reached AeroHub")
      const settled = yield* refunds.update(refund.id, { ...o, refundStatus: "CLOSED", rejectReason: 4 })
      assert.strictEqual(yield* sent, before + 1)
      assert.strictEqual(settled.providerStatus, "CLOSED")
      assert.deepStrictEqual(JSON.parse(settled.references["rejection"] ?? "null"), { rejectReason: 4 })

      // The order's first update in doubt: the refund is `unknown`, and its request is what AeroHub may hold.
      const first = order(98)
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 4 })
      yield* Effect.flip(refunds.create({ provider: "aerohub", request: { ...first, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "first-in-doubt" }))
      const inDoubt = Option.getOrThrow(yield* ledger.findByKey("aerohub", "first-in-doubt"))
      assert.strictEqual(inDoubt.status, "unknown")
      const id = inDoubt.id
      yield* sandbox.faults.clear
      const beforeFirst = yield* sent
      const refused = issueOf(yield* Effect.flip(refunds.update(id, { ...first, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "55.00" })))
      assert.strictEqual(refused.path, "rejectReason")
      assert.include(refused.message, "rejectReason 4")
      assert.strictEqual(yield* sent, beforeFirst)
      const resent = yield* refunds.update(id, { ...first, refundStatus: "CLOSED", rejectReason: 4 })
      assert.strictEqual(resent.providerStatus, "CLOSED")
      assert.deepStrictEqual(JSON.parse(resent.references["rejection"] ?? "null"), { rejectReason: 4 })
    }))

  it.scopedLive("a refund settled by hand (resolve) refuses an update before sending it: AeroHub would take it, the refund could not", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent, ledger } = yield* setup()
      const o = order(94)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "resolved" })
      // This version refuses that verdict (below); an earlier one recorded it.
      yield* resolvedByAnEarlierVersion(ledger, refund.id, "succeeded", "reimbursed, seen in the supplier's books")
      const error = yield* Effect.flip(refunds.update(refund.id, { ...o, refundStatus: "REFUNDED_PENDING" }))
      assert.strictEqual(error._tag, "InvalidRequest")
      if (error._tag === "InvalidRequest") {
        assert.strictEqual(error.issues[0]!.path, "refundStatus")
        assert.include(error.issues[0]!.message, "settled by an operator")
      }
      assert.strictEqual(yield* sent, 1, "only the first update reached AeroHub")
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* sandbox.order(o.refundOrderNo), (x) => x.status)), "PROCESSING")
      // Closing a refund an operator settled failed is still a move the refund can record.
      const closedByHand = yield* refunds.create({ provider: "aerohub", request: { ...order(95), refundStatus: "PROCESSING" }, idempotencyKey: "resolved-failed" })
      yield* refunds.resolve(closedByHand.refund.id, "failed", "the airline refused")
      const closed = yield* refunds.update(closedByHand.refund.id, { ...order(95), refundStatus: "CLOSED", rejectReason: 2 })
      assert.strictEqual(closed.providerStatus, "CLOSED")
    }))

  it.scopedLive("a first update in doubt is settled by sending it again, as its error says (not by resolve, which refuses succeeded naming that update); the order then goes on to REFUNDED", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup()
      const o = { refundOrderNo: "FBRF2403119001", purchaseOrderNo: "F1745553257834619001" }
      const first = { ...o, refundStatus: "PROCESSING" }
      const { error, id } = yield* createdInDoubt(refunds, sandbox, first, "ah-1")
      // AeroHub took it (only its answers were lost), and the error says how that is learnt: the same update again.
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* sandbox.order(o.refundOrderNo), (x) => x.status)), "PROCESSING")
      assert.include(error.message, `It may have reached aerohub. The refund ${id} is kept as "unknown" and refundkit will not resend it by itself:`)
      assert.include(error.message, `send the same update again and its answer is recorded on the refund: ${updateCommand(id, first)} (on the gateway: POST /v1/refunds/${id}/events with that body).`)
      assert.notInclude(error.message, "resolve")
      assert.strictEqual((yield* refunds.get(id)).error?.message, error.message, "the refund shows the same advice")

      // A verdict AeroHub was not told is refused, naming the update to send; nothing is recorded or sent.
      const before = yield* sent
      for (const to of ["succeeded", "pending"] as const) {
        const refused = issueOf(yield* Effect.flip(refunds.resolve(id, to, "operator: the portal shows PROCESSING")))
        assert.strictEqual(refused.path, "status")
        assert.include(refused.message, `refund ${id} is not resolved ${to} by hand:`)
        assert.include(refused.message, `its PROCESSING update's outcome is not known`)
        assert.include(refused.message, `send that update again, the same (AeroHub takes a repeat, and its answer is recorded): ${updateCommand(id, first)}`)
      }
      assert.include(
        issueOf(yield* Effect.flip(refunds.resolve(id, "succeeded", "operator: x"))).message,
        "Resolved succeeded, it would take no further update, and the order could not be reported REFUNDED_PENDING or REFUNDED through refundkit."
      )
      assert.strictEqual((yield* refunds.get(id)).status, "unknown")
      assert.strictEqual(yield* sent, before)

      // The same update again: AeroHub takes it as a repeat, and its answer settles the refund.
      const settled = yield* refunds.update(id, first)
      assert.deepStrictEqual([settled.status, settled.providerStatus, settled.error], ["pending", "PROCESSING", undefined])
      // At PROCESSING, succeeded by hand is still refused, naming the next step.
      const atProcessing = issueOf(yield* Effect.flip(refunds.resolve(id, "succeeded", "operator: reimbursed")))
      assert.include(atProcessing.message, "AeroHub has it at PROCESSING")
      assert.include(atProcessing.message, `report the order's next steps (REFUNDED_PENDING, then REFUNDED) as updates, the next one: ${updateCommand(id, { ...o, refundStatus: "REFUNDED_PENDING" })}`)
      yield* refunds.update(id, { ...o, refundStatus: "REFUNDED_PENDING" })

      // A REFUNDED in doubt: its error gives the same advice, and AeroHub having been told REFUNDED, succeeded by hand is taken.
      const refunded = { ...o, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] }
      yield* sandbox.faults.inject({ fault: { _tag: "LostResponse" }, route: "update_refund", times: 10 })
      const lost = yield* Effect.flip(refunds.update(id, refunded))
      yield* sandbox.faults.clear
      assert.strictEqual(lost._tag, "ProviderUnavailable")
      assert.include(lost.message, `the update may have been applied. AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${updateCommand(id, refunded)}`)
      const resolved = yield* refunds.resolve(id, "succeeded", "operator: the portal shows REFUNDED")
      assert.strictEqual(resolved.status, "succeeded")
      // The repeat is still taken, and records AeroHub's word and money.
      const repeated = yield* refunds.update(id, refunded)
      assert.deepStrictEqual([repeated.status, repeated.providerStatus, repeated.references["refundAmount"]], ["succeeded", "REFUNDED", JSON.stringify([{ refundCost: "250.00" }])])
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)
    }))

  it.scopedLive("a refund an earlier version let an operator resolve while its first update was in doubt: an update says what happened and what to do, a new create says the order is refunded", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent, ledger } = yield* setup()
      const o = order(130)
      const { id } = yield* createdInDoubt(refunds, sandbox, { ...o, refundStatus: "PROCESSING" }, "resolved-in-doubt")
      yield* resolvedByAnEarlierVersion(ledger, id, "succeeded", "portal shows PROCESSING")
      const before = yield* sent
      const refused = issueOf(yield* Effect.flip(refunds.update(id, { ...o, refundStatus: "REFUNDED_PENDING" })))
      assert.strictEqual(refused.path, "refundStatus")
      assert.include(refused.message, `refund ${id} was resolved succeeded by an operator (refundkit resolve, `)
      assert.include(refused.message, "while its first update (PROCESSING) was in doubt, so it records no AeroHub word")
      assert.include(refused.message, "This cannot be undone through refundkit: report the order's progress at AeroHub directly")
      assert.notInclude(refused.message, "before AeroHub accepted", "AeroHub did accept it")
      const held = yield* Effect.flip(refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "resolved-in-doubt-again" }))
      assert.strictEqual(held._tag, "TargetAlreadyRefunded")
      assert.include(held.message, `${o.refundOrderNo} is already refunded by refund ${id} (status succeeded, which is final).`)
      assert.include(held.message, `${id} is finished`)
      assert.notInclude(held.message, "resolve", "a verdict on a final refund is refused")
      assert.strictEqual(yield* sent, before, "nothing reached AeroHub")

      // Resolved failed instead (still allowed): it holds nothing, and the update's refusal says to create a new refund.
      const f = order(131)
      const failed = yield* createdInDoubt(refunds, sandbox, { ...f, refundStatus: "PROCESSING" }, "failed-in-doubt")
      const given = yield* refunds.resolve(failed.id, "failed", "operator: giving this order up in refundkit")
      assert.deepStrictEqual([given.status, given.holdsTarget], ["failed", undefined])
      const moved = issueOf(yield* Effect.flip(refunds.update(failed.id, { ...f, refundStatus: "REFUNDED_PENDING" })))
      assert.include(moved.message, `refund ${failed.id} was resolved failed by an operator while its first update (PROCESSING) was in doubt`)
      assert.include(moved.message, "create a new refund for this refund order with its first update again")
      const anew = yield* refunds.create({ provider: "aerohub", request: { ...f, refundStatus: "PROCESSING" }, idempotencyKey: "failed-in-doubt-anew" })
      assert.deepStrictEqual([anew.refund.status, anew.refund.providerStatus], ["pending", "PROCESSING"], "AeroHub took it as a repeat")
      assert.strictEqual((yield* refunds.update(anew.refund.id, { ...f, refundStatus: "REFUNDED_PENDING" })).providerStatus, "REFUNDED_PENDING")
    }))

  it.scopedLive("a refund whose first update timed out can still move on", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup({ callTimeout: "300 millis" })
      const o = order(5)
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 1_000 }, route: "update_refund" })
      const error = yield* Effect.flip(refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "hang" }))
      assert.strictEqual(error._tag, "OutcomeUnknown")
      const id = error._tag === "OutcomeUnknown" ? error.refundId ?? "" : ""
      assert.strictEqual((yield* refunds.get(id)).status, "unknown")
      const illegal = yield* Effect.flip(refunds.update(id, { ...o, refundStatus: "REFUNDED", refundAmount: paid }))
      assert.strictEqual(illegal._tag, "InvalidRequest", "neither a new order nor PROCESSING may jump to REFUNDED")
      const resent = yield* refunds.update(id, { ...o, refundStatus: "PROCESSING" })
      assert.strictEqual(resent.status, "pending")
      assert.strictEqual(resent.providerStatus, "PROCESSING")
    }))

  it.scopedLive("a later update that times out gets AeroHub's advice, the exact update to send again, and the refund keeps its status; that update then settles it", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup({ callTimeout: "300 millis" })
      const o = order(7)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "later-hang" })
      assert.strictEqual(refund.providerStatus, "PROCESSING")
      const next = { ...o, refundStatus: "REFUNDED_PENDING" }
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 1_000 }, route: "update_refund" })
      const late = yield* Effect.flip(refunds.update(refund.id, next))
      yield* sandbox.faults.clear
      assert.strictEqual(late._tag, "OutcomeUnknown")
      if (late._tag === "OutcomeUnknown") assert.deepStrictEqual([late.refundId, late.status], [refund.id, "pending"])
      assert.strictEqual(
        late.message,
        "The outcome at aerohub is unknown: no answer within 300ms; the update may have been applied. " +
          `AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${updateCommand(refund.id, next)} ` +
          `(on the gateway: POST /v1/refunds/${refund.id}/events with that body).`
      )
      assert.notInclude(late.message, "kept as", "the refund is pending, not unknown")
      assert.notInclude(late.message, "resolve", "a verdict by hand records no AeroHub word")
      const inDoubt = yield* refunds.get(refund.id)
      assert.deepStrictEqual([inDoubt.status, inDoubt.providerStatus], ["pending", "PROCESSING"])
      assert.deepStrictEqual(inDoubt.error, { code: "outcome_unknown", message: late.message }, "the refund shows the same advice")
      assert.include(inDoubt.events.at(-1)?.detail ?? "", "REFUNDED_PENDING")

      // The command the advice names, as `refundkit update` reads its --data: AeroHub's answer settles the doubt.
      const before = yield* sent
      const data = /--data '([^']*)'/.exec(late.message)?.[1] ?? ""
      const settled = yield* refunds.update(refund.id, JSON.parse(data))
      assert.strictEqual(yield* sent, before + 1)
      assert.deepStrictEqual([settled.status, settled.providerStatus, settled.error], ["pending", "REFUNDED_PENDING", undefined])

      // A refund whose first update is in doubt (unknown) and whose repeat times out too is still kept unknown, with the same advice.
      const u = order(8)
      const first = { ...u, refundStatus: "PROCESSING" }
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 1_000 }, route: "update_refund", times: 2 })
      const created = yield* Effect.flip(refunds.create({ provider: "aerohub", request: first, idempotencyKey: "first-hang" }))
      const id = created._tag === "OutcomeUnknown" ? created.refundId ?? "" : ""
      const again = yield* Effect.flip(refunds.update(id, first))
      yield* sandbox.faults.clear
      assert.strictEqual(again._tag, "OutcomeUnknown")
      if (again._tag === "OutcomeUnknown") assert.strictEqual(again.status, "unknown")
      assert.include(
        again.message,
        `The refund ${id} is kept as "unknown" and refundkit will not resend it by itself: AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${updateCommand(id, first)}`
      )
      assert.notInclude(again.message, "resolve")
    }))

  it.scopedLive("a later update whose answer AeroHub applied but the plugin cannot read names the field, may have been applied, and says to send it again; that update then settles it, applied once", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup()
      const o = order(9)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "later-unread" })
      const next = { ...o, refundStatus: "REFUNDED_PENDING" }
      const advice = `AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${updateCommand(refund.id, next)} ` +
        `(on the gateway: POST /v1/refunds/${refund.id}/events with that body).`
      // AeroHub applies the update and answers `{"success": true, ...}`: no `code`, which the plugin reads.
      yield* sandbox.faults.inject({ fault: { _tag: "SchemaViolation", afterProcessing: true }, route: "update_refund" })
      const unread = yield* Effect.flip(refunds.update(refund.id, next))
      assert.strictEqual(yield* sent, 2, "an unreadable answer is not retried")
      assert.strictEqual(unread._tag, "UnexpectedResponse")
      if (unread._tag === "UnexpectedResponse") assert.deepStrictEqual([unread.path, unread.refundId, unread.status], ["code", refund.id, "pending"])
      assert.strictEqual(unread.message, `aerohub sent a response refundkit does not understand (field code: is missing); the update may have been applied. ${advice}`)
      const inDoubt = yield* refunds.get(refund.id)
      assert.deepStrictEqual([inDoubt.status, inDoubt.providerStatus], ["pending", "PROCESSING"], "the refund cannot say which it is")
      assert.deepStrictEqual(inDoubt.error, { code: "unexpected_response", message: unread.message })
      assert.include(inDoubt.events.at(-1)?.detail ?? "", "may have been applied by aerohub (an answer refundkit does not understand, field code: is missing)")
      assert.strictEqual(Option.getOrUndefined(Option.map(yield* sandbox.order(o.refundOrderNo), (x) => x.status)), "REFUNDED_PENDING", "AeroHub did apply it")

      // The update the advice names: AeroHub takes it as a repeat, and its answer settles the doubt.
      const data = /--data '([^']*)'/.exec(unread.message)?.[1] ?? ""
      const settled = yield* refunds.update(refund.id, JSON.parse(data))
      assert.deepStrictEqual([settled.status, settled.providerStatus, settled.error], ["pending", "REFUNDED_PENDING", undefined])
      const held = Option.getOrThrow(yield* sandbox.order(o.refundOrderNo))
      assert.deepStrictEqual([held.transitions, held.repeats], [["NEW -> PROCESSING", "PROCESSING -> REFUNDED_PENDING"], 1], "applied once, the repeat taken as one")

      // A body that is not JSON at all: the same, naming the body.
      yield* sandbox.faults.inject({ fault: { _tag: "Malformed", afterProcessing: true }, route: "update_refund" })
      const refunded = { ...o, refundStatus: "REFUNDED", refundAmount: paid }
      const garbled = yield* Effect.flip(refunds.update(refund.id, refunded))
      assert.strictEqual(garbled._tag, "UnexpectedResponse")
      assert.include(garbled.message, "aerohub sent a response refundkit does not understand (body: the body is not valid JSON); the update may have been applied. ")
      assert.include(garbled.message, updateCommand(refund.id, refunded))
      assert.strictEqual((yield* refunds.update(refund.id, refunded)).status, "succeeded")
      assert.strictEqual((yield* sandbox.stats).refundsPerformed, 1)

      // A documented refusal (AeroHub's 400 "Failed", under HTTP 400 too) is still a decline of the update: nothing in doubt.
      const refusing = yield* ScriptedServer.make({
        [`POST ${updateRefundPath}`]: [{ body: { code: 200, msg: "Successful" } }, { status: 400, body: { code: 400, msg: "Failed" } }]
      })
      const elsewhere = yield* setup({ env: { REFUNDKIT_AEROHUB_BASE_URL: refusing.url } })
      const u = order(10)
      const accepted = yield* elsewhere.refunds.create({ provider: "aerohub", request: { ...u, refundStatus: "PROCESSING" }, idempotencyKey: "later-refused" })
      const declined = yield* Effect.flip(elsewhere.refunds.update(accepted.refund.id, { ...u, refundStatus: "REFUNDED_PENDING" }))
      assert.strictEqual(declined._tag, "ProviderDeclined")
      assert.strictEqual(refusing.calls.length, 2)
      assert.notInclude(declined.message, "may have been applied")
    }))

  it.scopedLive("a refusal written as AeroHub's error example writes it (curly quotes, not JSON) is a decline, not an update in doubt; other bodies that are not JSON stay unreadable", () =>
    Effect.gen(function*() {
      const refusing = yield* ScriptedServer.make({
        [`POST ${updateRefundPath}`]: [
          { body: { code: 200, msg: "Successful" } },
          { body: "{\n\u201Ccode\u201D: 400,\n\u201Cmsg\u201D: \u201CFailed\u201D\n}" },
          { body: "{\u201Ccode\u201D: 400, \u201Cmsg\u201D: \u201CFailed: the \u201Creason\u201D\u201D}" }
        ]
      })
      const { refunds } = yield* setup({ env: { REFUNDKIT_AEROHUB_BASE_URL: refusing.url } })
      const o = order(12)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "curly-refusal" })
      const next = { ...o, refundStatus: "REFUNDED_PENDING" }
      const declined = yield* Effect.flip(refunds.update(refund.id, next))
      assert.strictEqual(declined._tag, "ProviderDeclined", declined.message)
      if (declined._tag === "ProviderDeclined") assert.deepStrictEqual([declined.providerCode, declined.reason], ["400", "Failed"])
      const kept = yield* refunds.get(refund.id)
      assert.deepStrictEqual([kept.status, kept.providerStatus, kept.error], ["pending", "PROCESSING", undefined], "a refused update changes nothing and leaves nothing in doubt")
      // Quotes inside its text make it ambiguous: it stays an answer refundkit cannot read, in doubt.
      const unread = yield* Effect.flip(refunds.update(refund.id, next))
      assert.strictEqual(unread._tag, "UnexpectedResponse")
      assert.include(unread.message, "the update may have been applied")
      assert.strictEqual(refusing.calls.length, 3)
    }))

  it.scopedLive("a later update whose connection is reset on every attempt is in doubt as a lost answer is: the same advice, the refund keeps its status", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent } = yield* setup()
      const o = order(11)
      const { refund } = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "later-reset" })
      const next = { ...o, refundStatus: "REFUNDED_PENDING" }
      yield* sandbox.faults.inject({ fault: { _tag: "Reset" }, route: "update_refund", times: 0 })
      const reset = yield* Effect.flip(refunds.update(refund.id, next))
      yield* sandbox.faults.clear
      assert.strictEqual(yield* sent, 4, "a reset is retried under core's schedule")
      assert.strictEqual(reset._tag, "ProviderUnavailable")
      if (reset._tag === "ProviderUnavailable") assert.deepStrictEqual([reset.maybeProcessed, reset.refundId, reset.status], [true, refund.id, "pending"])
      assert.include(reset.message, "the connection failed after the request was sent")
      assert.include(reset.message, `the update may have been applied. AeroHub takes a repeated update and changes nothing, so send the same update again and its answer is recorded on the refund: ${updateCommand(refund.id, next)}`)
      assert.deepStrictEqual((yield* refunds.get(refund.id)).error, { code: "provider_unavailable", message: reset.message })
      assert.strictEqual((yield* refunds.update(refund.id, next)).providerStatus, "REFUNDED_PENDING")
    }))

  it.scopedLive("an update while the refund's first update is still out is refused and not sent: it could reach AeroHub first", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, sent, ledger } = yield* setup({ callTimeout: "5 seconds" })
      const o = order(6)
      yield* sandbox.faults.inject({ fault: { _tag: "Hang", millis: 3_000 }, route: "update_refund" })
      const first = yield* Effect.fork(refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "PROCESSING" }, idempotencyKey: "in-flight" }))
      // Claimed, and its call at AeroHub (which holds it for 3 s).
      const id = yield* Effect.flatMap(Effect.zip(ledger.findByKey("aerohub", "in-flight"), sent), ([found, calls]) =>
        Option.isSome(found) && calls === 1 ? Effect.succeed(found.value.id) : Effect.fail("not out yet")).pipe(
          Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(250))))
        )
      const refused = yield* Effect.flip(refunds.update(id, { ...o, refundStatus: "REFUNDED_PENDING" }))
      assert.strictEqual(refused._tag, "UnsupportedOperation")
      assert.include(refused.message, "in flight")
      assert.strictEqual(yield* sent, 1, "only the first update reached AeroHub")
      const created = yield* Fiber.join(first)
      assert.strictEqual(created.refund.providerStatus, "PROCESSING")
      // Once the first has its outcome (its hung attempt retried), the next is checked against it and sent.
      const before = yield* sent
      const next = yield* refunds.update(id, { ...o, refundStatus: "REFUNDED_PENDING" })
      assert.strictEqual(next.providerStatus, "REFUNDED_PENDING")
      assert.strictEqual(yield* sent, before + 1)
    }))

  it.scopedLive("AeroHub's refusal of a first update is a failed refund that cannot be moved", () =>
    Effect.gen(function*() {
      const { refunds, sent } = yield* setup()
      const reimbursed = { refundOrderNo: "FBRF2403110001", purchaseOrderNo: "F1745553257834610001" }
      const created = yield* refunds.create({ provider: "aerohub", request: { ...reimbursed, refundStatus: "PROCESSING" }, idempotencyKey: "declined" })
      assert.strictEqual(created.refund.status, "failed")
      assert.strictEqual(created.refund.error?.code, "provider_declined")
      assert.include(created.refund.error?.message ?? "", "nothing leaves REFUNDED")
      const error = yield* Effect.flip(refunds.update(created.refund.id, { ...reimbursed, refundStatus: "CLOSED" }))
      assert.strictEqual(error._tag, "InvalidRequest")
      if (error._tag === "InvalidRequest") assert.include(error.issues[0]!.message, "create a new refund")
      assert.strictEqual(yield* sent, 1)
    }))

  it.scopedLive("an order AeroHub closed or whose quote it refused stays held: a second create under another key is refused naming the refund, and nothing is sent", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const secondCreateOf = (o: { readonly refundOrderNo: string; readonly purchaseOrderNo: string }, key: string, request: Record<string, unknown>) =>
        Effect.gen(function*() {
          const before = yield* receivedOverHttp(sandbox)
          const result = yield* Effect.either(refunds.create({ provider: "aerohub", request: { ...o, ...request }, idempotencyKey: key }))
          assert.strictEqual(yield* receivedOverHttp(sandbox), before, `${key}: nothing reached AeroHub`)
          if (Either.isLeft(result) && result.left._tag === "TargetAlreadyRefunded") return result.left
          return yield* Effect.die(`${key}: expected TargetAlreadyRefunded, got ${JSON.stringify(result)}`)
        })

      // Created CLOSED: failed, and the order held.
      const o = order(120)
      const closed = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "closed-first" })
      assert.strictEqual(yield* receivedOverHttp(sandbox), 1)
      // The same rejection under another key (AeroHub would take it as a repeat), or another first update: refused unsent.
      for (const [key, request] of [["closed-again", { refundStatus: "CLOSED", rejectReason: 4 }], ["closed-then-processing", { refundStatus: "PROCESSING" }]] as const) {
        const refused = yield* secondCreateOf(o, key, request)
        assert.deepStrictEqual([refused.target, refused.refundId, refused.status, refused.code], [o.refundOrderNo, closed.refund.id, "failed", "target_already_refunded"])
        assert.include(refused.message, `${o.refundOrderNo} is held by refund ${closed.refund.id} (status failed)`)
        assert.include(refused.message, "would reach the provider as a repeat of it. Nothing was sent.")
        assert.include(refused.message, `refundkit resolve ${closed.refund.id} --status failed --release-targets`)
      }
      assert.deepStrictEqual([closed.refund.status, closed.refund.providerStatus, closed.refund.holdsTarget], ["failed", "CLOSED", true])
      const tracked = yield* refunds.list({ provider: "aerohub", target: o.refundOrderNo, limit: 5 })
      assert.deepStrictEqual(tracked.items.map((r) => r.idempotencyKey), ["closed-first"], "the ledger holds one refund for the order")
      const atAeroHub = (yield* statsOverHttp(sandbox)).orders[o.refundOrderNo]
      assert.deepStrictEqual([atAeroHub?.status, atAeroHub?.repeats], ["CLOSED", 0], "AeroHub saw no repeat")
      // The first create's own key still replays it, without a call.
      assert.isTrue((yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "closed-first" })).replayed)
      assert.strictEqual(yield* receivedOverHttp(sandbox), 1)

      // A quote AeroHub refused holds its order the same way.
      const q = order(121)
      const rejected = yield* refunds.create({ provider: "aerohub", request: { ...q, refundStatus: "QUOTE_REJECTED", rejectReason: 4 }, idempotencyKey: "quote-rejected" })
      assert.strictEqual(rejected.refund.holdsTarget, true)
      assert.strictEqual((yield* secondCreateOf(q, "quote-rejected-again", { refundStatus: "QUOTE_REJECTED", rejectReason: 4 })).refundId, rejected.refund.id)

      // So does a CLOSED reached by a later update.
      const u = order(122)
      const processing = yield* refunds.create({ provider: "aerohub", request: { ...u, refundStatus: "PROCESSING" }, idempotencyKey: "closed-by-update" })
      const closedLater = yield* refunds.update(processing.refund.id, { ...u, refundStatus: "CLOSED", rejectReason: 2 })
      assert.deepStrictEqual([closedLater.status, closedLater.holdsTarget], ["failed", true])
      assert.strictEqual((yield* secondCreateOf(u, "closed-by-update-again", { refundStatus: "CLOSED", rejectReason: 2 })).refundId, processing.refund.id)

      // An operator's failed keeps the hold; releasing it in so many words lets a new refund for the order go out.
      yield* refunds.resolve(closed.refund.id, "failed", "operator: AeroHub shows the order closed")
      yield* secondCreateOf(o, "after-note", { refundStatus: "CLOSED", rejectReason: 4 })
      const released = yield* refunds.resolve(closed.refund.id, "failed", "operator: AeroHub reopened the order", { releaseTargets: true })
      assert.isUndefined(released.holdsTarget)
      const before = yield* receivedOverHttp(sandbox)
      const resent = yield* refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "after-release" })
      assert.strictEqual(yield* receivedOverHttp(sandbox), before + 1)
      assert.notStrictEqual(resent.refund.id, closed.refund.id)
    }))

  it.scopedLive("a first update AeroHub refused holds nothing: a new refund for the order is sent", () =>
    Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup()
      const withdrawn = { refundOrderNo: "FBRF2403110003", purchaseOrderNo: "F1745553257834610003" }
      const declined = yield* refunds.create({ provider: "aerohub", request: { ...withdrawn, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "declined-close" })
      assert.deepStrictEqual([declined.refund.status, declined.refund.error?.code, declined.refund.holdsTarget], ["failed", "provider_declined", undefined])
      const again = yield* refunds.create({ provider: "aerohub", request: { ...withdrawn, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "declined-close-again" })
      assert.strictEqual(again.refund.error?.code, "provider_declined")
      assert.strictEqual(yield* receivedOverHttp(sandbox), 2, "the second create was sent")
    }))

  it.scopedLive("a CLOSED recorded before refunds held their order takes the hold when the same CLOSED is sent again as an update", () =>
    Effect.gen(function*() {
      const { refunds, sandbox, ledger } = yield* setup()
      const o = order(123)
      const earlier = yield* recordedByAnEarlierVersion(ledger, "closed-earlier", { ...o, refundStatus: "CLOSED", rejectReason: 4 }, "failed")
      assert.isUndefined(earlier.holdsTarget)
      const repeated = yield* refunds.update(earlier.id, { ...o, refundStatus: "CLOSED", rejectReason: 4 })
      assert.deepStrictEqual([repeated.status, repeated.providerStatus, repeated.holdsTarget], ["failed", "CLOSED", true])
      const before = yield* receivedOverHttp(sandbox)
      const refused = yield* Effect.flip(refunds.create({ provider: "aerohub", request: { ...o, refundStatus: "CLOSED", rejectReason: 4 }, idempotencyKey: "closed-later" }))
      assert.deepStrictEqual(refused._tag === "TargetAlreadyRefunded" ? [refused.refundId, refused.status] : refused, [earlier.id, "failed"])
      assert.strictEqual(yield* receivedOverHttp(sandbox), before)
    }))

  it.scopedLive("a wrong apiKey is ProviderAuthFailed; the key appears in no refund, error or log line", () => {
    const lines: Array<string> = []
    const capture = Logger.make(({ annotations, message }) => {
      lines.push(JSON.stringify({ message, annotations: [...annotations] }))
    })
    const wrongKey = "wrong-aerohub-key-never-printed-42"
    return Effect.gen(function*() {
      const { refunds, sandbox } = yield* setup({ env: { REFUNDKIT_AEROHUB_API_KEY: wrongKey } })
      const exit = yield* Effect.exit(refunds.create({ provider: "aerohub", request: { ...order(6), refundStatus: "PROCESSING" }, idempotencyKey: "auth" }))
      assert.isTrue(Exit.isFailure(exit))
      const seen: Array<string> = []
      if (Exit.isFailure(exit)) {
        seen.push(Cause.pretty(exit.cause))
        for (const failure of Cause.failures(exit.cause)) {
          assert.strictEqual(failure._tag, "ProviderAuthFailed")
          if (RefundError.isRefundError(failure)) seen.push(failure.message, JSON.stringify(failure))
        }
      }
      yield* Effect.logInfo("after auth failure")
      for (const refund of (yield* refunds.list({ limit: 10 })).items) seen.push(JSON.stringify(refund))
      const everything = [...seen, ...lines].join("\n")
      assert.include(everything, "Invalid API Key")
      assert.notInclude(everything, wrongKey)
      assert.notInclude(everything, sandbox.apiKey)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)), Logger.withMinimumLogLevel(LogLevel.All))
  })
})
