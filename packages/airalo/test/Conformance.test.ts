import { conformance } from "@refundkit/testkit"
import { ConfigProvider, Layer } from "effect"
import * as Airalo from "../src/Airalo.js"
import * as AiraloSandbox from "../src/sandbox.js"

// The documented limit (1 refund per 5 minutes) would make the suite wait minutes; the
// limit itself is tested in Airalo.test.ts and Sandbox.test.ts.
conformance({
  provider: Airalo.id,
  sandbox: AiraloSandbox.make({ rateLimit: false }),
  plugin: (handle) => Airalo.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(handle.env)))))),
  validRequest: (n) => ({ iccids: [AiraloSandbox.ownedIccid(n)], reason: "NO_COVERAGE", notes: `conformance ${n}` }),
  invalidRequest: { input: { iccids: [AiraloSandbox.ownedIccid(1)], reason: "SERVICE_ISSUES" }, field: "reason" },
  routes: { auth: "token", submit: "refund" },
  secrets: [AiraloSandbox.defaultCredentials.clientSecret]
})
