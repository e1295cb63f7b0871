// refundkit demo: starts the Exirom sandbox, submits three refunds through core's
// Refunds service (in-memory ledger) and prints what happened.
//
//   pnpm demo        (builds @refundkit/exirom and its dependencies first)
//
// The workspace root does not depend on the packages, so they are imported from their
// build output; effect and @effect/platform-node come from the plugin's own node_modules,
// which resolves to the same module instances the packages use.
import { Context, ConfigProvider, Effect, Layer } from "../packages/exirom/node_modules/effect/dist/esm/index.js"
import * as NodeHttpClient from "../packages/exirom/node_modules/@effect/platform-node/dist/esm/NodeHttpClient.js"
import { Ledger, Providers, Refunds } from "../packages/core/dist/index.js"
import { Exirom } from "../packages/exirom/dist/index.js"
import * as ExiromSandbox from "../packages/exirom/dist/sandbox.js"

const attempts = [
  {
    label: "accepted",
    idempotencyKey: "demo-order-1001",
    request: { transactionId: 20001, amount: "25.5", reason: "customer_request", currency: "EUR", metadata: { order: "1001" } }
  },
  {
    label: "declined by Exirom",
    idempotencyKey: "demo-order-1002",
    // Payment 12345 captured 100.00 USD: refunding 150.00 is an over-refund.
    request: { transactionId: 12345, amount: "150.00", reason: "customer_request", currency: "USD" }
  },
  {
    label: "invalid",
    idempotencyKey: "demo-order-1003",
    // Three decimals: refused before anything is sent, never rounded.
    request: { transactionId: 20001, amount: "10.005", reason: "customer_request" }
  }
]

const program = Effect.gen(function*() {
  const sandbox = yield* ExiromSandbox.make()
  // Exactly how the CLI and the gateway configure a plugin: from REFUNDKIT_EXIROM_* settings.
  const settings = Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(sandbox.env))))
  const stack = Refunds.layer().pipe(
    Layer.provideMerge(Layer.provideMerge(Exirom.layerConfig.pipe(Layer.provide(settings)), Providers.layer)),
    Layer.provideMerge(Ledger.layerMemory),
    Layer.provide(NodeHttpClient.layerUndici)
  )
  const refunds = Context.get(yield* Layer.build(stack), Refunds.Refunds)

  const rows = []
  let accepted
  for (const attempt of attempts) {
    const result = yield* Effect.either(refunds.create({ provider: "exirom", request: attempt.request, idempotencyKey: attempt.idempotencyKey }))
    const { amount, currency, transactionId } = attempt.request
    const base = { refund: attempt.label, transaction: String(transactionId), amount: `${amount} ${currency ?? ""}`.trim() }
    if (result._tag === "Right") {
      const { refund } = result.right
      if (refund.status === "pending") accepted = refund
      rows.push({
        ...base,
        amount: `${refund.amount} ${refund.currency ?? ""}`.trim(),
        status: refund.status,
        exirom: refund.providerStatus ?? "",
        detail: refund.error?.message ?? `Exirom refundId ${refund.providerReference}`
      })
    } else {
      const error = result.left
      const detail = error._tag === "InvalidRequest" ? error.issues.map((i) => `${i.path}: ${i.message}`).join("; ") : error.message
      rows.push({ ...base, status: error._tag === "InvalidRequest" ? "not sent" : error.code, exirom: "", detail })
    }
  }

  print(rows)
  if (accepted !== undefined) {
    yield* sandbox.settle
    const synced = yield* refunds.sync(accepted.id)
    console.log(`\nExirom settled the accepted refund; a status sync moved ${synced.id} to ${synced.status} (${synced.providerStatus}).`)
  }
  const stats = yield* sandbox.stats
  console.log(`The sandbox saw ${stats.requests.auth ?? 0} auth and ${stats.requests.refund ?? 0} refund calls and performed ${stats.refundsPerformed} refund.`)
})

function print(rows) {
  const columns = ["refund", "transaction", "amount", "status", "exirom", "detail"]
  const clip = (text) => (text.length > 100 ? `${text.slice(0, 97)}...` : text)
  const cells = rows.map((row) => columns.map((c) => clip(String(row[c]))))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)))
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd()
  console.log(line(columns))
  console.log(line(widths.map((w) => "-".repeat(w))))
  for (const row of cells) console.log(line(row))
}

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
