// GET /v1/refunds?createdFrom=…&createdTo=…: what an operator asks after an incident. The
// ledger holds refunds created at chosen instants (two gateways' clocks disagree, so they were
// recorded in another order than created); the gateway reads the same SQLite file.
import { assert, describe, it } from "@effect/vitest"
import { Ledger } from "@refundkit/core"
import type { Refund as RefundType } from "@refundkit/core/Refund"
import * as LedgerSql from "@refundkit/ledger-sql"
import * as Recorded from "@refundkit/testkit/Recorded"
import { Context, Effect, Layer } from "effect"
import * as path from "node:path"
import * as Gateway from "./support/Gateway.js"

/** A refund as the gateway would have recorded it, created at `createdAt`. */
const recorded = (key: string, createdAt: string, provider = "exirom"): RefundType =>
  Recorded.requested({ provider, key, createdAt, request: { transactionId: 12345, amount: "1.00", currency: "USD", reason: "customer_request" } })

// In the order the ledger records them: the last two come from a gateway whose clock is behind.
const seeded: ReadonlyArray<readonly [string, string, string?]> = [
  ["before", "2026-12-06T13:59:59.999Z"],
  ["at-14", "2026-12-06T14:00:00.000Z"],
  ["just-after-14", "2026-12-06T14:00:00.001Z"],
  ["half-past", "2026-12-06T14:30:00.000Z", "airalo"],
  ["at-15", "2026-12-06T15:00:00.000Z"],
  ["late-clock-1459", "2026-12-06T14:59:59.999Z"],
  ["late-clock-1415", "2026-12-06T14:15:00.000Z"],
  ["next-day", "2026-12-07T00:00:00.000Z"]
]

/** A gateway on a SQLite ledger that already holds `seeded`. */
const gatewayWithSeeded = Effect.gen(function*() {
  const file = path.join(yield* Gateway.tempDir, "ledger.db")
  yield* Effect.scoped(Effect.gen(function*() {
    const ledger = Context.get(yield* Layer.build(LedgerSql.layerSqlite(file)), Ledger.Ledger)
    for (const [key, createdAt, provider] of seeded) {
      const refund = recorded(key, createdAt, provider)
      yield* ledger.claim(refund)
      // Sent: recovery leaves it alone.
      yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: createdAt })
    }
  }))
  return yield* Gateway.start({ ledger: LedgerSql.layerSqlite(file) })
})

const keys = (page: { readonly body: { readonly items: ReadonlyArray<{ readonly idempotencyKey: string }> } }) => page.body.items.map((r) => r.idempotencyKey)

describe("GET /v1/refunds by creation time", () => {
  it.scopedLive("selects by instant whatever the offset and fraction digits, newest created first, page after page", () =>
    Effect.gen(function*() {
      const gw = yield* gatewayWithSeeded
      const list = (query: string) => gw.fetch("GET", `/v1/refunds?${query}`)
      const hour = ["late-clock-1459", "half-past", "late-clock-1415", "just-after-14", "at-14"]
      // 14:00 to 15:00 UTC, spelled in UTC, at +01:00 (which sorts after every 14:xx as text) and at -05:30.
      for (const [from, to] of [
        ["2026-12-06T14:00:00Z", "2026-12-06T15:00:00Z"],
        ["2026-12-06T15:00:00%2B01:00", "2026-12-06T16:00:00%2B01:00"],
        ["2026-12-06T08:30:00-05:30", "2026-12-06T09:30:00.000000-05:30"]
      ]) {
        const page = yield* list(`createdFrom=${from}&createdTo=${to}`)
        assert.strictEqual(page.status, 200, page.text)
        assert.deepStrictEqual(keys(page), hour, `${from} to ${to}`)
      }
      // Finer than the ledger's milliseconds: .0005 is after 14:00:00.000 and not after .001.
      assert.deepStrictEqual(keys(yield* list("createdFrom=2026-12-06T14:00:00.0005Z&createdTo=2026-12-06T14:00:00.0015Z")), ["just-after-14"])
      // A date alone is midnight UTC.
      assert.deepStrictEqual(keys(yield* list("createdFrom=2026-12-07")), ["next-day"])
      assert.lengthOf(keys(yield* list("createdFrom=2026-12-06&createdTo=2026-12-07")), 7)
      // Page after page with the cursor, and with the other filters.
      const walked: Array<string> = []
      let page = yield* list("createdFrom=2026-12-06T14:00:00Z&createdTo=2026-12-06T15:00:00Z&limit=2")
      for (;;) {
        assert.strictEqual(page.status, 200, page.text)
        walked.push(...keys(page))
        if (page.body.nextCursor === undefined) break
        page = yield* list(`createdFrom=2026-12-06T14:00:00Z&createdTo=2026-12-06T15:00:00Z&limit=2&cursor=${encodeURIComponent(page.body.nextCursor)}`)
      }
      assert.deepStrictEqual(walked, hour)
      assert.deepStrictEqual(keys(yield* list("createdFrom=2026-12-06T14:00:00Z&createdTo=2026-12-06T15:00:00Z&provider=airalo")), ["half-past"])
      assert.deepStrictEqual(keys(yield* list("createdTo=2026-12-06T14:00:00Z&status=pending&provider=exirom")), ["before"])
      // The typed client sends them too.
      const typed = yield* gw.client.refunds.list({ urlParams: { createdFrom: "2026-12-06T15:00:00+01:00", createdTo: "2026-12-06T16:00:00+01:00" } })
      assert.deepStrictEqual(typed.items.map((r) => r.idempotencyKey), hour)
    }))

  it.scopedLive("400 invalid_request naming the field: not a timestamp with an offset, no such day, or the bounds the wrong way round", () =>
    Effect.gen(function*() {
      const gw = yield* gatewayWithSeeded
      for (const [query, field, rule] of [
        ["createdFrom=yesterday", "createdFrom", "RFC 3339 timestamp with an offset"],
        ["createdTo=2026-12-06T14:00:00", "createdTo", "RFC 3339 timestamp with an offset"],
        ["createdFrom=1733493600", "createdFrom", "RFC 3339 timestamp with an offset"],
        ["createdFrom=2026-02-30", "createdFrom", "has no day 30"],
        ["createdTo=2026-12-06T24:00:00Z", "createdTo", "not a time of day"],
        ["createdFrom=2026-12-06T15:00:00Z&createdTo=2026-12-06T14:00:00Z", "createdFrom", "must not be after createdTo"],
        ["createdFrom=2026-12-06T15:00:00%2B01:00&createdTo=2026-12-06T13:59:00Z", "createdFrom", "must not be after createdTo"]
      ] as const) {
        const refused = yield* gw.fetch("GET", `/v1/refunds?${query}`)
        assert.strictEqual(refused.status, 400, `${query}: ${refused.text}`)
        assert.strictEqual(refused.body.error.code, "invalid_request")
        assert.deepStrictEqual(refused.body.error.issues.map((i: { readonly path: string }) => i.path), [field], `${query}: ${refused.text}`)
        assert.include(refused.body.error.issues[0].message, rule, query)
      }
      // A cursor goes on with a list of its own kind only.
      const plain = yield* gw.fetch("GET", "/v1/refunds?limit=1")
      const mixed = yield* gw.fetch("GET", `/v1/refunds?createdFrom=2026-12-06&cursor=${encodeURIComponent(plain.body.nextCursor)}`)
      assert.strictEqual(mixed.status, 400, mixed.text)
      assert.deepStrictEqual(mixed.body.error.issues.map((i: { readonly path: string }) => i.path), ["cursor"])
    }))

  it.scopedLive("/openapi.json describes createdFrom and createdTo on the list", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const spec = yield* gw.fetch("GET", "/openapi.json", { auth: false })
      const parameters: ReadonlyArray<{ readonly name: string; readonly in: string; readonly description?: string }> = spec.body.paths["/v1/refunds"].get.parameters
      for (const name of ["createdFrom", "createdTo"]) {
        const parameter = parameters.find((p) => p.name === name)
        assert.strictEqual(parameter?.in, "query", JSON.stringify(parameters))
        assert.include(parameter?.description, "2026-12-06T15:00:00+01:00", name)
      }
      assert.include(spec.body.paths["/v1/refunds"].get.description, "`createdFrom` (inclusive) and `createdTo` (exclusive)")
    }))
})
