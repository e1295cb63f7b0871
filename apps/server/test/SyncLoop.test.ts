import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Providers, Refunds } from "@refundkit/core"
import { Exirom } from "@refundkit/exirom"
import * as ExiromSandbox from "@refundkit/exirom/sandbox"
import * as LedgerSql from "@refundkit/ledger-sql"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import * as path from "node:path"
import * as SyncLoop from "../src/SyncLoop.js"
import * as Gateway from "./support/Gateway.js"

describe("the sync loop", () => {
  it.scopedLive("a sweep syncs at most REFUNDKIT_SYNC_BATCH refunds, even fewer than its four workers", () =>
    Effect.gen(function*() {
      const sandbox = yield* ExiromSandbox.make({ settleAfterMillis: 600_000 })
      const settings = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(sandbox.env))))
      const stack = Refunds.layer().pipe(
        Layer.provideMerge(Layer.provideMerge(Exirom.layerConfig.pipe(Layer.provide(settings)), Providers.layer)),
        Layer.provideMerge(LedgerSql.layerSqlite(path.join(yield* Gateway.tempDir, "ledger.db"))),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const loop = SyncLoop.layer({ ...SyncLoop.defaultOptions, interval: "1 hour", batchSize: 1 }).pipe(Layer.provideMerge(stack))
      const context = yield* Layer.build(loop)
      const refunds = Context.get(context, Refunds.Refunds)
      for (let i = 0; i < 6; i++) {
        const { refund } = yield* refunds.create({ provider: "exirom", idempotencyKey: `batch-${i}`, request: { transactionId: 5_000_000 + i, amount: "1.00", reason: "x" } })
        assert.strictEqual(refund.status, "pending")
      }
      yield* sandbox.settle
      const swept = yield* Context.get(context, SyncLoop.SyncLoop).sweep
      assert.strictEqual(swept.length, 1)
      assert.strictEqual((yield* sandbox.stats).requests["info"], 1)
    }))
})
