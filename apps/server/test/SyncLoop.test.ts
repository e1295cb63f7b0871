import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import { Exirom } from "@refundkit/exirom"
import * as ExiromSandbox from "@refundkit/exirom/sandbox"
import * as LedgerSql from "@refundkit/ledger-sql"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import * as path from "node:path"
import * as SyncLoop from "../src/SyncLoop.js"
import * as Gateway from "./support/Gateway.js"

/** Exirom's sandbox (refunds stay PROCESSING until `settle`), its plugin, Refunds and a sync loop over `ledger`. */
const withLoop = <E>(ledger: Layer.Layer<Ledger.Ledger, E>, options: Partial<SyncLoop.Options>) =>
  Effect.gen(function*() {
    const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
    const settings = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(sandbox.env))))
    const stack = Refunds.layer().pipe(
      Layer.provideMerge(Layer.provideMerge(Exirom.layerConfig.pipe(Layer.provide(settings)), Providers.layer)),
      Layer.provideMerge(ledger),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    const context = yield* Layer.build(SyncLoop.layer({ ...SyncLoop.defaultOptions, interval: "1 hour", ...options }).pipe(Layer.provideMerge(stack)))
    return { sandbox, refunds: Context.get(context, Refunds.Refunds), loop: Context.get(context, SyncLoop.SyncLoop) }
  })

describe("the sync loop", () => {
  it.scopedLive("a sweep syncs at most REFUNDKIT_SYNC_BATCH refunds, even fewer than its four workers", () =>
    Effect.gen(function*() {
      const { loop, refunds, sandbox } = yield* withLoop(LedgerSql.layerSqlite(path.join(yield* Gateway.tempDir, "ledger.db")), { batchSize: 1 })
      for (let i = 0; i < 6; i++) {
        const { refund } = yield* refunds.create({ provider: "exirom", idempotencyKey: `batch-${i}`, request: { transactionId: 5_000_000 + i, amount: "1.00", reason: "x" } })
        assert.strictEqual(refund.status, "pending")
      }
      yield* sandbox.settle
      const swept = yield* loop.sweep
      assert.strictEqual(swept.length, 1)
      assert.strictEqual((yield* sandbox.stats).requests["info"], 1)
    }))

  it.scopedLive("a sweep that outlasts its leases syncs each refund once, not again when its lease runs out mid-sweep", () =>
    Effect.gen(function*() {
      // Leases of 250 ms, status answers of 150 ms, six refunds for four workers: the two refunds taken
      // second finish after the first four's leases ran out, so those four are due again mid-sweep.
      const ledger = LedgerSql.layerSqlite(path.join(yield* Gateway.tempDir, "ledger.db"))
      const { loop, refunds, sandbox } = yield* withLoop(ledger, { spacing: "0 millis", syncTimeout: "250 millis" })
      const created: Array<string> = []
      for (let i = 0; i < 6; i++) {
        const { refund } = yield* refunds.create({ provider: "exirom", idempotencyKey: `lease-${i}`, request: { transactionId: 5_200_000 + i, amount: "1.00", reason: "x" } })
        created.push(refund.id)
      }
      yield* sandbox.faults.inject({ fault: { _tag: "Latency", millis: 150 }, route: "info", times: 0 })
      const swept = yield* loop.sweep
      assert.sameMembers(swept.map((r) => r.refundId), created, "each refund once")
      assert.strictEqual((yield* sandbox.stats).requests["info"], 6, "Exirom was asked once per refund")
    }))

  it.scopedLive("one refund's failed status query does not back the provider off while it answered the others", () =>
    Effect.gen(function*() {
      const { loop, refunds, sandbox } = yield* withLoop(LedgerSql.layerSqlite(path.join(yield* Gateway.tempDir, "ledger.db")), { spacing: "0 millis", syncTimeout: "100 millis" })
      for (let i = 0; i < 3; i++) {
        yield* refunds.create({ provider: "exirom", idempotencyKey: `mixed-${i}`, request: { transactionId: 5_300_000 + i, amount: "1.00", reason: "x" } })
      }
      yield* sandbox.faults.inject({ fault: { _tag: "ServerError", status: 500 }, route: "info", times: 1 })
      const first = yield* loop.sweep
      assert.deepStrictEqual(first.map((r) => r.error?.code).filter((code) => code !== undefined), ["provider_unavailable"])
      const asked = (yield* sandbox.stats).requests["info"] ?? 0
      yield* Effect.sleep("150 millis") // the first sweep's leases run out
      const second = yield* loop.sweep
      assert.strictEqual(second.length, 3, "the next sweep asks Exirom again")
      assert.strictEqual((yield* sandbox.stats).requests["info"], asked + 3)
    }))

  // Exirom's CHARGEBACK is final there: the refund waits for a person (`requires_action`), and no sweep asks Exirom again.
  const ledgers = [
    { name: "in memory", ledger: () => Effect.succeed(Ledger.layerMemory) },
    { name: "on SQLite", ledger: () => Effect.map(Gateway.tempDir, (dir) => LedgerSql.layerSqlite(path.join(dir, "ledger.db"))) },
    { name: "on PostgreSQL", ledger: () => Effect.map(Gateway.pgSchema, (url) => LedgerSql.layerPg(url)) }
  ]
  for (const { ledger, name } of ledgers) {
    it.scopedLive(`${name}: a refund Exirom reports CHARGEBACK is requires_action and synced no more; an open one still is`, () =>
      Effect.gen(function*() {
        // A refund is left alone for syncTimeout + spacing after its sync: 300 ms here, so each pass below may take it again.
        const { loop, refunds, sandbox } = yield* withLoop(yield* ledger(), { spacing: "0 millis", syncTimeout: "300 millis" })
        const sweep = Effect.zipRight(Effect.sleep("350 millis"), loop.sweep)
        const info = Effect.map(sandbox.stats, (s) => s.requests["info"] ?? 0)
        const { refund: charged } = yield* refunds.create({ provider: "exirom", idempotencyKey: "charged", request: { transactionId: 30004, amount: "5.00", reason: "x" } })
        yield* sandbox.settle
        // Created after the settle: still PROCESSING at Exirom, so every pass asks about it.
        const { refund: open } = yield* refunds.create({ provider: "exirom", idempotencyKey: "open", request: { transactionId: 5_100_000, amount: "1.00", reason: "x" } })
        const first = yield* sweep
        assert.sameMembers(first.map((r) => r.refundId), [charged.id, open.id])
        const after = yield* refunds.get(charged.id)
        assert.strictEqual(after.status, "requires_action")
        assert.strictEqual(after.providerStatus, "CHARGEBACK")
        assert.strictEqual(after.providerFinal, true)
        assert.strictEqual(yield* info, 2)
        for (let pass = 1; pass <= 3; pass++) {
          const swept = yield* sweep
          assert.deepStrictEqual(swept.map((r) => r.refundId), [open.id], `pass ${pass}`)
        }
        assert.strictEqual(yield* info, 5, "three more passes asked Exirom about the open refund only")
        assert.strictEqual((yield* refunds.get(charged.id)).events.length, after.events.length)
        // A sync a person asks for still asks Exirom; a person settles the refund.
        assert.strictEqual((yield* refunds.sync(charged.id)).providerFinal, true)
        assert.strictEqual(yield* info, 6)
        const resolved = yield* refunds.resolve(charged.id, "succeeded", "refunded; the bank reversed the chargeback")
        assert.isUndefined(resolved.providerFinal)
      }), 30_000)
  }
})

describe("the sync loop on an in-memory ledger", () => {
  it.scopedLive("still reaches a new refund when more old ones than its batch never move", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger.makeMemory
      const stackOn = (sandbox: ExiromSandbox.ExiromSandbox) =>
        Refunds.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(
            Exirom.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(sandbox.env)))))),
            Providers.layer
          )),
          Layer.provideMerge(Layer.succeed(Ledger.Ledger, ledger)),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      const first = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
      const seeding = Context.get(yield* Layer.build(stackOn(first)), Refunds.Refunds)
      for (let i = 0; i < 12; i++) {
        const { refund } = yield* seeding.create({ provider: "exirom", idempotencyKey: `old-${i}`, request: { transactionId: 6_000_000 + i, amount: "1.00", reason: "x" } })
        assert.strictEqual(refund.status, "pending")
      }
      // An Exirom that knows none of them: every lookup of the 12 is a 404 and they stay pending for good.
      const elsewhere = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
      const loop = SyncLoop.layer({ ...SyncLoop.defaultOptions, interval: "1 hour", batchSize: 1, spacing: "0 millis", syncTimeout: "200 millis" })
        .pipe(Layer.provideMerge(stackOn(elsewhere)))
      const context = yield* Layer.build(loop)
      const { refund: fresh } = yield* Context.get(context, Refunds.Refunds).create({
        provider: "exirom",
        idempotencyKey: "new",
        request: { transactionId: 6_100_000, amount: "2.00", reason: "x" }
      })
      yield* elsewhere.settle
      const sweep = Context.get(context, SyncLoop.SyncLoop).sweep
      let reached = false
      // Twelve sweeps reach the twelve old ones; the thirteenth the new one. Picked oldest first, the
      // loop saw only ten old ones (ten batches' worth) and nothing newer ever again.
      for (let i = 0; i < 30 && !reached; i++) reached = (yield* sweep).some((r) => r.refundId === fresh.id)
      assert.isTrue(reached, "the new refund was synced")
      assert.strictEqual((yield* ledger.get(fresh.id)).status, "succeeded")
    }))
})
