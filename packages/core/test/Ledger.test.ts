import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Ledger from "../src/Ledger.js"
import type { Refund } from "../src/Refund.js"

const draft = (n: number, at = new Date(1_700_000_000_000 + n * 1000).toISOString()): Refund => ({
  id: `rfd_${String(n).padStart(26, "0")}`,
  provider: n % 2 === 0 ? "even" : "odd",
  idempotencyKey: `key-${n}`,
  fingerprint: "f",
  request: {},
  status: "requested",
  references: {},
  targets: [],
  items: [],
  createdAt: at,
  updatedAt: at,
  events: [{ sequence: 1, at, source: "submit", from: null, to: "requested", accepted: true }]
})

describe("Ledger (in memory)", () => {
  it.effect("claims a key once", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const results = yield* Effect.all([ledger.claim(draft(1)), ledger.claim({ ...draft(1), id: "rfd_x" })], { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => r._tag).sort(), ["Claimed", "Existing"])
    }))

  it.effect("refuses an illegal transition and keeps the refusal in the history", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      yield* ledger.claim(draft(1))
      yield* ledger.transition(draft(1).id, { to: "failed", source: "submit", at: "2024-01-01T00:00:00.000Z" })
      const error = yield* Effect.flip(ledger.transition(draft(1).id, { to: "succeeded", source: "webhook", at: "2024-01-01T00:00:01.000Z" }))
      assert.strictEqual(error._tag, "IllegalTransition")
      const stored = yield* ledger.get(draft(1).id)
      assert.strictEqual(stored.status, "failed")
      assert.deepStrictEqual(stored.events.map((e) => e.accepted), [true, true, false])
    }))

  it.effect("pages newest first with a cursor that survives inserts", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      for (let n = 1; n <= 5; n++) yield* ledger.claim(draft(n))
      const first = yield* ledger.list({ limit: 2 })
      assert.deepStrictEqual(first.items.map((r) => r.idempotencyKey), ["key-5", "key-4"])
      yield* ledger.claim(draft(6))
      const second = yield* ledger.list({ limit: 2, cursor: first.nextCursor })
      assert.deepStrictEqual(second.items.map((r) => r.idempotencyKey), ["key-3", "key-2"])
      const third = yield* ledger.list({ limit: 2, cursor: second.nextCursor })
      assert.deepStrictEqual(third.items.map((r) => r.idempotencyKey), ["key-1"])
      assert.isUndefined(third.nextCursor)
      const odd = yield* ledger.list({ limit: 10, provider: "odd" })
      assert.deepStrictEqual(odd.items.map((r) => r.idempotencyKey), ["key-5", "key-3", "key-1"])
      const refused = yield* Effect.flip(ledger.list({ limit: 2, cursor: "nope" }))
      assert.strictEqual(refused._tag === "InvalidRequest" ? refused.issues[0]?.path : refused._tag, "cursor")
    }))

  it.effect("refuses a plain list's cursor for a list with creation bounds, and the reverse, saying which list it continues", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      for (let n = 1; n <= 3; n++) yield* ledger.claim(draft(n))
      const plain = yield* ledger.list({ limit: 1 })
      const bounded = yield* ledger.list({ limit: 1, createdFrom: "2000-01-01T00:00:00.000Z" })
      for (const query of [{ limit: 1, createdFrom: "2000-01-01T00:00:00.000Z", cursor: plain.nextCursor }, { limit: 1, cursor: bounded.nextCursor }]) {
        const refused = yield* Effect.flip(ledger.list(query))
        assert.strictEqual(refused._tag, "InvalidRequest")
        if (refused._tag === "InvalidRequest") {
          assert.deepStrictEqual(refused.issues, [{
            path: "cursor",
            message: "is not a cursor of this list: pass the nextCursor of its previous page, asked with the same creation bounds (or none)"
          }])
        }
      }
    }))

  it.effect("guards a refund that names one target twice by the sum of its lines", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const twice: Refund = {
        ...draft(1),
        currency: "USD",
        targets: [
          { target: "tx-1", amount: "60.00", originalAmount: "100.00" },
          { target: "tx-1", amount: "60.00", originalAmount: "100.00" }
        ]
      }
      assert.deepStrictEqual(Ledger.guardedTargets(twice).map((g) => [g.target, g.amount, g.original]), [["tx-1", 12000n, 10000n]])
      const refused = yield* Effect.flip(ledger.claim(twice))
      assert.strictEqual(refused._tag, "OverRefund")
      const fits: Refund = { ...twice, targets: [{ target: "tx-1", amount: "30.00", originalAmount: "100.00" }, { target: "tx-1", amount: "30.00", originalAmount: "100.00" }] }
      assert.strictEqual((yield* ledger.claim(fits))._tag, "Claimed")
      assert.strictEqual(Ledger.reservedAgainst(fits, "tx-1"), 6000n)
      const over = yield* Effect.flip(ledger.claim({ ...draft(2), provider: "odd", currency: "USD", targets: [{ target: "tx-1", amount: "40.01", originalAmount: "100.00" }] }))
      assert.strictEqual(over._tag, "OverRefund")
    }))

  it.effect("refuses a whole refund while another refund against its target has not failed; a failed one frees it", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const whole = (n: number, target: string): Refund => ({ ...draft(n), provider: "airalo", targets: [{ target }] })
      assert.deepStrictEqual(Ledger.targetGuards(whole(1, "iccid-1")), [{ _tag: "Whole", target: "iccid-1" }])
      const steps = {
        requested: [],
        pending: ["pending"],
        unknown: ["unknown"],
        requires_action: ["requires_action"],
        succeeded: ["pending", "succeeded"]
      } as const
      let n = 10
      for (const [status, path] of Object.entries(steps)) {
        const first = whole(n++, `iccid-${status}`)
        assert.strictEqual((yield* ledger.claim(first))._tag, "Claimed")
        for (const to of path) yield* ledger.transition(first.id, { to, source: "sync", at: "2024-01-01T00:00:01.000Z" })
        const second = whole(n++, `iccid-${status}`)
        const refused = yield* Effect.flip(ledger.claim(second))
        assert.deepStrictEqual(
          refused._tag === "TargetAlreadyRefunded" ? [refused.target, refused.refundId, refused.status, refused.code] : refused,
          [`iccid-${status}`, first.id, status, "target_already_refunded"]
        )
        assert.isTrue((yield* ledger.findByKey("airalo", second.idempotencyKey))._tag === "None", "nothing recorded for the refused claim")
        if (status !== "succeeded") {
          yield* ledger.transition(first.id, { to: "failed", source: "sync", at: "2024-01-01T00:00:02.000Z" })
          assert.strictEqual((yield* ledger.claim(second))._tag, "Claimed", `a failed ${status} refund frees the target`)
        }
      }
      // Amounts without original amounts are not guarded, against each other or against a whole refund.
      const part = (m: number): Refund => ({ ...draft(m), provider: "airalo", currency: "USD", amount: "5.00", targets: [{ target: "iccid-requested", amount: "5.00" }] })
      assert.strictEqual((yield* ledger.claim(part(100)))._tag, "Claimed")
      assert.strictEqual((yield* ledger.claim(part(101)))._tag, "Claimed")
      // And with one, the whole refund's reservation still refuses them as OverRefund.
      const guarded: Refund = { ...part(102), targets: [{ target: "iccid-requested", amount: "5.00", originalAmount: "100.00" }] }
      assert.strictEqual((yield* Effect.flip(ledger.claim(guarded)))._tag, "OverRefund")
    }))
})
