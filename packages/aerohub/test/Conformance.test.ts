import { conformance } from "@refundkit/testkit"
import { ConfigProvider, Layer } from "effect"
import { AeroHub } from "../src/index.js"
import * as AeroHubSandbox from "../src/sandbox.js"

const repeats = (orders: unknown): number =>
  Object.values(orders as Record<string, { readonly repeats: number }>).reduce((n, order) => n + order.repeats, 0)

conformance({
  provider: "aerohub",
  sandbox: AeroHubSandbox.make(),
  // An AeroHub refund's first update is a progress report (PROCESSING, a quote, ...), not a
  // reimbursement: the provider acted on it once when it moved the order once. A resent update
  // for the state the order is already in is accepted as a repeat and changes nothing.
  performed: (stats) => Number(stats["updatesAccepted"]) - repeats(stats["orders"]),
  plugin: (handle) => Layer.provide(AeroHub.layerConfig, Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(handle.env))))),
  validRequest: (n) =>
    n % 2 === 0
      ? { refundOrderNo: `FBRF${String(700000 + n)}`, purchaseOrderNo: `F17455532578346${String(10000 + n)}`, refundStatus: "PROCESSING" }
      : {
        refundOrderNo: `FBRF${String(700000 + n)}`,
        purchaseOrderNo: `F17455532578346${String(10000 + n)}`,
        refundStatus: "QUOTE_COMPLETED",
        refundFeePricing: [{ amount: "300.00", isRefundVoucher: 1, refundPolicyDetail: [{ ageType: 0, refundFeePolicy: "100.00" }] }]
      },
  invalidRequest: {
    input: { refundOrderNo: "FBRF700001", purchaseOrderNo: "F1745553257834610001", refundStatus: "QUOTE_COMPLETED" },
    field: "refundFeePricing"
  },
  routes: { submit: "update_refund" },
  secrets: [AeroHubSandbox.defaultApiKey]
})
