import { conformance } from "@refundkit/testkit"
import { ConfigProvider, Layer, Redacted } from "effect"
import * as Airpay from "../src/Airpay.js"
import * as AirpayCrypto from "../src/AirpayCrypto.js"
import * as AirpaySandbox from "../src/sandbox.js"

const credentials = AirpaySandbox.defaultCredentials

conformance({
  provider: "airpay",
  sandbox: AirpaySandbox.make(),
  plugin: (handle) => Airpay.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(handle.env)))))),
  validRequest: (n) => ({ transactions: [{ ap_transactionid: 1_000_000 + n, amount: "10.00" }] }),
  invalidRequest: { input: { transactions: [{ ap_transactionid: -5, amount: "10.00" }] }, field: "ap_transactionid" },
  routes: { auth: "auth", submit: "refund" },
  secrets: [
    credentials.username,
    credentials.password,
    credentials.secret,
    credentials.clientSecret,
    Redacted.value(AirpayCrypto.encryptionKey(Redacted.make(credentials.username), Redacted.make(credentials.password))),
    Redacted.value(AirpayCrypto.privateKey(Redacted.make(credentials.secret), Redacted.make(credentials.username), Redacted.make(credentials.password)))
  ]
})
