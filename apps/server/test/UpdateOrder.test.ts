// Updates to one AeroHub refund order run one at a time, through one gateway and through
// gateways sharing a SQLite file or a PostgreSQL ledger: the second of two concurrent updates is decided
// from what the first left, so a move the first made illegal never reaches AeroHub.
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Effect, Option, Redacted } from "effect"
import * as Gateway from "./support/Gateway.js"

const pgUrl = process.env.REFUNDKIT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** A fresh PostgreSQL schema, dropped with the scope; a URL whose connections use it. */
const pgSchema = Effect.gen(function*() {
  const admin = yield* PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
  const schema = `rk_aerohub_updates_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* Effect.acquireRelease(admin.unsafe(`CREATE SCHEMA ${schema}`), () => Effect.orDie(admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)))
  const url = new URL(pgUrl)
  url.searchParams.set("options", `-c search_path=${schema}`)
  return url.toString()
})

const post = (gw: Gateway.Gateway, body: unknown) => gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": Gateway.key("aerohub") } })
const update = (gw: Gateway.Gateway, id: string, body: unknown) => gw.fetch("POST", `/v1/refunds/${id}/events`, { body })

/** The UpdateRefund calls the sandbox received for one refund order. */
const callsFor = (gw: Gateway.Gateway, refundOrderNo: string) =>
  Effect.map(gw.aerohub.calls, (calls) => calls.filter((call) => (JSON.parse(call.body) as { refundOrderNo?: string }).refundOrderNo === refundOrderNo))

/** An order brought to REFUNDED_PENDING through `gw`, where both REFUNDED and CLOSED are legal. */
const awaitingReimbursement = (gw: Gateway.Gateway, order: { readonly refundOrderNo: string; readonly purchaseOrderNo: string }) =>
  Effect.gen(function*() {
    const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "PROCESSING" })
    assert.strictEqual(created.status, 201, created.text)
    const step = yield* update(gw, created.body.id, { ...order, refundStatus: "REFUNDED_PENDING" })
    assert.strictEqual(step.status, 200, step.text)
    return created.body.id as string
  })

const refunded = (order: object) => ({ ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "250.00" }] })
const closed = (order: object) => ({ ...order, refundStatus: "CLOSED", rejectReason: 4 })

/** Two final updates sent at once: one is taken, the other refused before it is sent. */
const race = (first: Gateway.Gateway, second: Gateway.Gateway, order: { readonly refundOrderNo: string; readonly purchaseOrderNo: string }) =>
  Effect.gen(function*() {
    const id = yield* awaitingReimbursement(first, order)
    const before = (yield* callsFor(first, order.refundOrderNo)).length
    const answers = yield* Effect.all([update(first, id, refunded(order)), update(second, id, closed(order))], { concurrency: "unbounded" })
    const sent = (yield* callsFor(first, order.refundOrderNo)).slice(before)
    assert.strictEqual(sent.length, 1, `both final updates reached AeroHub: ${sent.map((c) => `${c.body} -> ${JSON.stringify(c.answer)}`).join("; ")}`)
    const taken = answers.filter((a) => a.status === 200)
    const refused = answers.filter((a) => a.status !== 200)
    assert.strictEqual(taken.length, 1, answers.map((a) => a.text).join("\n"))
    assert.strictEqual(refused.length, 1)
    assert.strictEqual(refused[0]!.status, 400, refused[0]!.text)
    assert.strictEqual(refused[0]!.body.error.code, "invalid_request")
    assert.include(refused[0]!.text, "refundStatus")
    assert.include(refused[0]!.body.error.message, "final state")
    // What the ledger says last is what AeroHub last took.
    const atAeroHub = Option.getOrUndefined(Option.map(yield* first.aerohub.order(order.refundOrderNo), (o) => o.status))
    const recorded = yield* second.fetch("GET", `/v1/refunds/${id}`)
    assert.strictEqual(recorded.body.providerStatus, atAeroHub)
    assert.strictEqual(recorded.body.providerStatus, taken[0]!.body.providerStatus)
  })

describe("concurrent updates to one AeroHub refund", () => {
  it.scopedLive("through one gateway: the second is decided after the first and refused without a call", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      yield* race(gw, gw, { refundOrderNo: "FBRF910001", purchaseOrderNo: "F310001" })
    }))

  it.scopedLive("through two gateways sharing a SQLite ledger file: the same", () =>
    Effect.gen(function*() {
      const a = yield* Gateway.start()
      const b = yield* Gateway.start({ shareWith: a })
      for (let round = 0; round < 3; round++) {
        yield* race(a, b, { refundOrderNo: `FBRF95000${round}`, purchaseOrderNo: `F35000${round}` })
      }
    }), 30_000)

  it.scopedLive("through two gateways sharing a PostgreSQL ledger: the same", () =>
    Effect.gen(function*() {
      const url = yield* pgSchema
      const a = yield* Gateway.start({ ledger: LedgerSql.layerPg(url) })
      const b = yield* Gateway.start({ shareWith: a, ledger: LedgerSql.layerPg(url) })
      for (let round = 0; round < 3; round++) {
        yield* race(a, b, { refundOrderNo: `FBRF92000${round}`, purchaseOrderNo: `F32000${round}` })
      }
    }), 30_000)
})

describe("a repeated REFUNDED", () => {
  it.scopedLive("with the same money is a replay; with other money it is refused naming the field, and not sent", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF930001", purchaseOrderNo: "F330001" }
      const id = yield* awaitingReimbursement(gw, order)
      const done = yield* update(gw, id, refunded(order))
      assert.strictEqual(done.status, 200, done.text)
      const sent = (yield* callsFor(gw, order.refundOrderNo)).length
      // The same money spelled as AeroHub's sample spells it.
      const replay = yield* update(gw, id, { ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: 250 }] })
      assert.strictEqual(replay.status, 200, replay.text)
      assert.strictEqual(replay.body.status, "succeeded")
      const conflict = yield* update(gw, id, { ...order, refundStatus: "REFUNDED", refundAmount: [{ refundCost: "999.00" }] })
      assert.strictEqual(conflict.status, 400, conflict.text)
      assert.strictEqual(conflict.body.error.code, "invalid_request")
      assert.include(conflict.text, "refundAmount.0.refundCost")
      assert.include(conflict.text, "250.00")
      assert.strictEqual((yield* callsFor(gw, order.refundOrderNo)).length, sent + 1, "only the replay was sent")
      const after = yield* gw.fetch("GET", `/v1/refunds/${id}`)
      assert.strictEqual(after.body.status, "succeeded")
    }))
})

/** UpdateRefund calls the sandbox counted, read over HTTP (`GET /__sandbox/stats`). */
const received = (gw: Gateway.Gateway) =>
  Effect.promise(async () => ((await (await fetch(`${gw.aerohub.url}/__sandbox/stats`)).json()) as { requests: Record<string, number> }).requests["update_refund"] ?? 0)

describe("a repeated CLOSED or QUOTE_COMPLETED", () => {
  it.scopedLive("with the same rejection is a replay; with another it is refused naming the field, not sent, also by another gateway on the ledger", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF940001", purchaseOrderNo: "F340001" }
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "10.00" })
      assert.strictEqual(created.status, 201, created.text)
      const id = created.body.id as string
      const replay = yield* update(gw, id, { ...order, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: 10 })
      assert.strictEqual(replay.status, 200, replay.text)
      assert.strictEqual(replay.body.status, "failed")
      // Another instance on the same ledger file reads the rejection the first recorded.
      const other = yield* Gateway.start({ shareWith: gw })
      const before = yield* received(gw)
      for (const [body, path, recorded] of [
        [{ ...order, refundStatus: "CLOSED", rejectReason: 4 }, "rejectReason", "rejectReason 6"],
        [{ ...order, refundStatus: "CLOSED", rejectReason: 6, refundableAmount: "99.00" }, "refundableAmount", "refundableAmount 10.00"]
      ] as const) {
        const conflict = yield* update(other, id, body)
        assert.strictEqual(conflict.status, 400, conflict.text)
        assert.strictEqual(conflict.body.error.code, "invalid_request")
        assert.deepStrictEqual(conflict.body.error.issues.map((i: { path: string }) => i.path), [path])
        assert.include(conflict.text, recorded)
      }
      assert.strictEqual(yield* received(gw), before, "no conflicting CLOSED reached AeroHub")
      const after = yield* other.fetch("GET", `/v1/refunds/${id}`)
      assert.deepStrictEqual(JSON.parse(after.body.references.rejection), { rejectReason: 6, refundableAmount: "10.00" })
    }))

  it.scopedLive("with the same quote is a replay; with other pricing it is refused naming the field, and not sent", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF940002", purchaseOrderNo: "F340002" }
      const pricing = [{ amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }]
      const created = yield* post(gw, { provider: "aerohub", ...order, refundStatus: "QUOTE_COMPLETED", refundFeePricing: pricing })
      assert.strictEqual(created.status, 201, created.text)
      const id = created.body.id as string
      const replay = yield* update(gw, id, { ...order, refundStatus: "QUOTE_COMPLETED", refundFeePricing: [{ ...pricing[0], amount: 300 }] })
      assert.strictEqual(replay.status, 200, replay.text)
      const before = yield* received(gw)
      const conflict = yield* update(gw, id, { ...order, refundStatus: "QUOTE_COMPLETED", refundFeePricing: [{ ...pricing[0], amount: "350.00" }] })
      assert.strictEqual(conflict.status, 400, conflict.text)
      assert.strictEqual(conflict.body.error.code, "invalid_request")
      assert.deepStrictEqual(conflict.body.error.issues.map((i: { path: string }) => i.path), ["refundFeePricing.0.amount"])
      assert.include(conflict.text, "300.00")
      assert.include(conflict.text, "350.00")
      assert.strictEqual(yield* received(gw), before, "the other quote did not reach AeroHub")
      const after = yield* gw.fetch("GET", `/v1/refunds/${id}`)
      assert.strictEqual(after.body.providerStatus, "QUOTE_COMPLETED")
    }))
})
