import { conformance } from "@refundkit/testkit"
import { ConfigProvider, Layer } from "effect"
import { Exirom } from "../src/index.js"
import * as ExiromSandbox from "../src/sandbox.js"

conformance({
  provider: "exirom",
  sandbox: ExiromSandbox.make(),
  // Exactly how the CLI and the gateway start it: the plugin configured from the sandbox's env.
  plugin: (handle) => Exirom.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(handle.env)))))),
  // Auto-seeded payments (1,000,000 and up), so every n is a fresh refundable transaction.
  validRequest: (n) => ({ transactionId: 1_000_000 + n, amount: "10.00", reason: "customer_request", currency: "EUR" }),
  invalidRequest: { input: { transactionId: 12345, amount: "10.005", reason: "customer_request" }, field: "amount" },
  routes: { auth: "auth", submit: "refund" },
  secrets: ["sandbox-merchant-secret", "sandbox-merchant-key"]
})
