// Secrets: run the gateway and the CLI with distinctive secret values and scan every log
// line (gateway stdout/stderr, at log level ALL), all CLI output, every response body and
// the ledger (SQLite file, WAL and a sqlite3 dump) for them: zero hits.
//
// `refundkit sandbox` cannot be given credentials (it always uses the sandbox defaults), so
// the gateway that makes real refunds uses the sandbox's own secrets (scanned for as well,
// with any JWT bearer token); gateways and CLI runs configured with the canary secrets
// meet the sandbox's 401 and must not echo them on that failure path either.
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Gateway, L, type Response, type Sandbox, takeTx } from "./harness.js"

const tag = randomBytes(6).toString("hex")
const canary = {
  apiKey: `rk-apikey-canary-${tag}`,
  wrongApiKey: `rk-wrongkey-canary-${tag}`,
  merchantKey: `rk-merchantkey-canary-${tag}`,
  merchantSecret: `rk-secret-canary-${tag}`,
  pgPassword: `rkpgcanary${tag}`
}

let sandbox: Sandbox
const gateways: Array<Gateway> = []
const outputs: Array<{ source: string; text: string }> = []
const dir = L.tempDir("refundkit-rel-secrets-")
const schemaName = `refundkit_rel_secrets_${process.pid}`
let schema: { url: string; drop(): void } | undefined

beforeAll(async () => {
  sandbox = await L.startSandbox()
})
afterAll(async () => {
  for (const g of gateways) await g.stop().catch(() => {})
  await sandbox?.stop()
  schema?.drop()
  L.removeDir(dir)
})

const verbose = { REFUNDKIT_LOG_LEVEL: "ALL", REFUNDKIT_ACCESS_LOG: "true", REFUNDKIT_SYNC_INTERVAL: "1 second" }
const keep = (source: string, r: Response) => outputs.push({ source, text: `${JSON.stringify(r.headers)}\n${r.text}` })

describe("secrets never leak", () => {
  it("logs, CLI output, error bodies and the ledger hold no secret", async () => {
    const sandboxSecrets = [sandbox.env.REFUNDKIT_EXIROM_MERCHANT_KEY!, sandbox.env.REFUNDKIT_EXIROM_MERCHANT_SECRET!]
    const ledger = join(dir, "ledger.db")

    // 1. The gateway with the sandbox's credentials, a canary API key, everything logged.
    const gw = await L.startGateway({ sandbox, ledger, apiKey: canary.apiKey, env: verbose })
    gateways.push(gw)
    const auth = { authorization: `Bearer ${canary.apiKey}` }
    const first = takeTx(50)
    for (let i = 0; i < 20; i++) keep("create", await L.createRefund(gw, { key: `sec-${tag}-${i}`, transactionId: first + i }))
    // Force a re-authentication (expired token) and a provider 5xx on the way.
    await sandbox.faults([{ fault: { _tag: "ExpiredToken" }, route: "refund", times: 1 }, { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 2 }])
    for (let i = 20; i < 25; i++) keep("create+faults", await L.createRefund(gw, { key: `sec-${tag}-${i}`, transactionId: first + i }))
    await sandbox.clearFaults()
    // Every other failure path the storm and crash cases take, which no other case scans: answers lost
    // after the provider acted, resets, hangs, bodies that are not JSON or not Exirom's, and a re-authentication that fails.
    const paths = [
      [{ fault: { _tag: "LostResponse" }, route: "refund", times: 1 }],
      [{ fault: { _tag: "Reset" }, route: "refund", times: 1 }],
      [{ fault: { _tag: "Hang", millis: 200 }, route: "refund", times: 1 }],
      [{ fault: { _tag: "Malformed" }, route: "refund", times: 1 }],
      [{ fault: { _tag: "SchemaViolation" }, route: "refund", times: 1 }],
      [{ fault: { _tag: "ExpiredToken" }, route: "refund", times: 1 }, { fault: { _tag: "Reset" }, route: "auth", times: 1 }]
    ]
    for (const [n, rules] of paths.entries()) {
      await sandbox.faults(rules)
      keep(`create+${rules.map((r) => r.fault._tag).join("+")}`, await L.createRefund(gw, { key: `sec-${tag}-path-${n}`, transactionId: first + 41 + n }))
      await sandbox.clearFaults()
    }
    keep("wrong key", await L.request(`${gw.url}/v1/refunds`, { headers: { authorization: `Bearer ${canary.wrongApiKey}` } }))
    keep("wrong key create", await L.request(`${gw.url}/v1/refunds`, { method: "POST", headers: { authorization: `Bearer ${canary.wrongApiKey}`, "idempotency-key": canary.wrongApiKey }, body: { provider: "exirom", transactionId: first + 30, amount: "1.00", reason: canary.wrongApiKey.slice(0, 0) } }))
    keep("list", await L.request(`${gw.url}/v1/refunds?limit=100`, { headers: auth }))
    const someId = JSON.parse(outputs[0]!.text.split("\n").slice(1).join("\n")).id
    keep("get", await L.request(`${gw.url}/v1/refunds/${someId}`, { headers: auth }))
    keep("sync", await L.request(`${gw.url}/v1/refunds/${someId}/sync`, { method: "POST", headers: auth }))
    keep("webhook", await L.request(`${gw.url}/v1/webhooks/exirom`, { method: "POST", headers: { "x-checksum": "bogus" }, body: { refundId: "x", transactionStatus: "SUCCEED", mid: "sandbox_mid", transactionId: first } }))
    keep("providers", await L.request(`${gw.url}/v1/providers`, { headers: auth }))
    const metrics = await L.request(`${gw.url}/metrics`, { headers: auth })
    expect(metrics.status, metrics.text).toBe(200)
    keep("metrics", metrics)
    await L.sleep(1500) // let the sync loop run once
    const created = outputs.filter((o) => o.source === "create").length
    expect(created).toBe(20)

    // 2. A gateway configured with canary merchant credentials: Exirom (the sandbox) refuses them.
    const bad = await L.startGateway({
      sandbox,
      ledger: join(dir, "ledger-bad.db"),
      apiKey: canary.apiKey,
      env: { ...verbose, REFUNDKIT_EXIROM_MERCHANT_KEY: canary.merchantKey, REFUNDKIT_EXIROM_MERCHANT_SECRET: canary.merchantSecret }
    })
    gateways.push(bad)
    const refused = await L.createRefund(bad, { key: `sec-bad-${tag}`, transactionId: first + 31 })
    keep("auth failure", refused)
    expect(refused.status).toBe(502)
    expect(refused.json?.error?.code).toBe("provider_auth_failed")

    // 3. A PostgreSQL ledger URL with a password in it.
    if (L.pgAvailable()) {
      schema = L.pgSchema(schemaName)
      const url = schema.url.replace("postgres://postgres@", `postgres://postgres:${canary.pgPassword}@`)
      try {
        const pg = await L.startGateway({ sandbox, ledger: url, apiKey: canary.apiKey, env: verbose })
        gateways.push(pg)
        keep("pg create", await L.createRefund(pg, { key: `sec-pg-${tag}`, transactionId: first + 32 }))
        keep("pg readyz", await L.request(`${pg.url}/readyz`))
      } catch (e) {
        outputs.push({ source: "pg start failure", text: String((e as Error).message) })
      }
    }

    // 4. The CLI: a refund with canary credentials (refused), and a bulk run with the sandbox's.
    const cliEnv = { ...sandbox.env, REFUNDKIT_EXIROM_MERCHANT_KEY: canary.merchantKey, REFUNDKIT_EXIROM_MERCHANT_SECRET: canary.merchantSecret }
    for (const json of [[], ["--json"]]) {
      const r = await L.cli(["create", "exirom", ...json, "--ledger", join(dir, "cli.db"), "--data", JSON.stringify({ transactionId: first + 33 + json.length, amount: "1.00", reason: "customer_request" })], { env: cliEnv })
      outputs.push({ source: `cli create ${json}`, text: r.stdout + r.stderr })
      expect(r.code).not.toBe(0)
    }
    const file = join(dir, "bulk.csv")
    await L.writeLines(file, "transactionId,amount,reason", 5, (i) => `${first + 35 + i},1.00,customer_request`)
    const bulk = await L.cli(["bulk", file, "--provider", "exirom", "--ledger", join(dir, "cli.db")], { env: sandbox.env })
    outputs.push({ source: "cli bulk", text: bulk.stdout + bulk.stderr + readFileSync(`${file}.results.jsonl`, "utf8") })
    const badBulk = await L.cli(["bulk", file, "--provider", "exirom", "--json", "--ledger", join(dir, "cli-bad.db")], { env: cliEnv })
    outputs.push({ source: "cli bulk refused", text: badBulk.stdout + badBulk.stderr + readFileSync(`${file}.results.jsonl`, "utf8") })
    const list = await L.cli(["list", "--json", "--ledger", join(dir, "cli.db")], { env: sandbox.env })
    outputs.push({ source: "cli list", text: list.stdout + list.stderr })

    // Stop everything so the logs are complete, then read the ledgers (file, WAL, a dump).
    for (const g of gateways.splice(0)) {
      await g.stop()
      outputs.push({ source: `gateway ${g.url} stdout`, text: g.proc.out() }, { source: `gateway ${g.url} stderr`, text: g.proc.err() })
    }
    for (const db of ["ledger.db", "ledger-bad.db", "cli.db", "cli-bad.db"].map((f) => join(dir, f))) {
      for (const f of [db, `${db}-wal`, `${db}-shm`, `${db}-journal`]) {
        if (existsSync(f)) outputs.push({ source: f, text: readFileSync(f).toString("latin1") })
      }
      const dump = spawnSync("sqlite3", [db, ".dump"], { encoding: "utf8" })
      if (dump.status === 0) outputs.push({ source: `${db} (sqlite3 .dump)`, text: dump.stdout })
    }
    if (schema !== undefined) outputs.push({ source: "postgres dump", text: L.psql(`select coalesce(json_agg(t)::text, '') from (select * from ${schemaName}.refunds) t`) })

    // The logs must really be there to be scanned.
    const gatewayLog = outputs.filter((o) => o.source.startsWith("gateway")).map((o) => o.text).join("\n")
    expect(gatewayLog.split("\n").length).toBeGreaterThan(40)
    expect(outputs.some((o) => o.source.endsWith("ledger.db") && o.text.includes(`sec-${tag}-0`))).toBe(true)

    // Each secret as written, and as it would appear encoded: base64 (standard and URL-safe, at each of the
    // three byte alignments, so `key:secret` encoded together is found), hex, URL-encoded, JSON-escaped;
    // and a canary without its last 6 characters, so a truncated secret ("rk-secret-canary-1a2b…") is found too.
    const b64At = (n: string, offset: number, url: boolean) => {
      const enc = Buffer.from("\u0000".repeat(offset) + n, "latin1").toString(url ? "base64url" : "base64").replace(/=+$/, "")
      const skip = offset === 0 ? 0 : Math.ceil((offset * 4) / 3) + 1
      const keep = Math.floor(((offset + n.length) * 4) / 3) - 1
      return enc.slice(skip, keep)
    }
    const forms = (n: string, canaryValue: boolean): Array<[string, string]> => [
      ["plain", n],
      ["json", JSON.stringify(n).slice(1, -1)],
      ["url", encodeURIComponent(n)],
      ["hex", Buffer.from(n).toString("hex")],
      ...[0, 1, 2].flatMap((o): Array<[string, string]> => [[`base64@${o}`, b64At(n, o, false)], [`base64url@${o}`, b64At(n, o, true)]]),
      // a canary's random tail is 12 hex digits: its first 6 still single it out
      ...(canaryValue ? [["prefix", n.slice(0, n.length - 6)] as [string, string]] : [])
    ]
    const needles = [...Object.values(canary).map((n) => [n, true] as const), ...sandboxSecrets.map((n) => [n, false] as const)]
      .flatMap(([n, canaryValue]) => forms(n, canaryValue).map(([how, text]) => ({ n, how, text })))
    const jwt = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/
    const hits: Array<string> = []
    for (const o of outputs) {
      for (const { n, how, text } of needles) {
        const at = o.text.indexOf(text)
        if (at >= 0) hits.push(`${o.source}: "${n}" (${how}) in …${o.text.slice(Math.max(0, at - 120), at + text.length + 40)}…`)
      }
      const m = jwt.exec(o.text)
      if (m !== null) hits.push(`${o.source}: a bearer token (JWT) ${m[0].slice(0, 40)}…`)
    }
    console.log(`scanned ${outputs.length} sources, ${outputs.reduce((n, o) => n + o.text.length, 0)} characters, for ${needles.length} secrets and JWTs`)
    expect(hits).toEqual([])
  })
})
