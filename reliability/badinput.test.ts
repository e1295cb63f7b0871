// Bad input: 10,000 generated invalid or hostile requests (bodies, headers, query strings)
// against the gateway -> zero 5xx, zero provider calls, every 400 names a field.
// Generated from a seeded PRNG (SEED below): the same run every time, unless RELIABILITY_SEED names another.
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Gateway, L, type Response, type Sandbox, seedOr, takeTx } from "./harness.js"

const SEED = seedOr(0x5eed_0009)
const CASES = 10_000
const CONCURRENCY = 8

let sandbox: Sandbox
let gateway: Gateway
const dir = L.tempDir("refundkit-rel-bad-")

beforeAll(async () => {
  sandbox = await L.startSandbox()
  gateway = await L.startGateway({ sandbox, ledger: join(dir, "ledger.db"), env: { REFUNDKIT_SYNC_INTERVAL: "off" } })
})
afterAll(async () => {
  await gateway?.stop()
  await sandbox?.stop()
  L.removeDir(dir)
})

type Case = {
  kind: string
  method: string
  path: string
  headers: Record<string, string>
  body?: string | Buffer
  chunked?: boolean
  /** The fields/headers this case broke: a 400 must name one of them (an issue path's first segment, or a word of the message). */
  want?: ReadonlyArray<string>
}

// encodeURIComponent throws on a lone surrogate: send those as invalid UTF-8 percent escapes.
const enc = (s: string) => {
  try {
    return encodeURIComponent(s)
  } catch {
    return `%ED%A0%80${encodeURIComponent(s.replace(/[\ud800-\udfff]/g, ""))}`
  }
}

const deep = (depth: number, open: string, close: string, leaf = "1") => open.repeat(depth) + leaf + close.repeat(depth)

const make = (seed: number) => {
  const rnd = L.prng(seed)
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rnd() * xs.length)]!
  const int = (n: number) => Math.floor(rnd() * n)
  const tx = takeTx(1) // a real refundable payment: a request that got through would refund it
  const unicode = ["💸", "\u202eRTL", "\u0000", "\ud800", "\udfff", "Ω≈ç√", "𝕿𝖊𝖘𝖙", "\u00a0", "ｆｕｌｌ", "\u200b", "é", "\ufeff"]
  const str = () => pick([() => "", () => "x".repeat(1 + int(300_000)), () => pick(unicode).repeat(1 + int(2000)), () => "__proto__", () => "constructor", () => "<script>alert(1)</script>", () => "'; DROP TABLE refunds; --", () => "${jndi:ldap://x}", () => "%00%ff", () => "../../etc/passwd"])()
  // Values no field accepts for its type, per field.
  const invalid: Record<string, ReadonlyArray<() => unknown>> = {
    provider: [() => 123, () => null, () => "", () => "EXIROM", () => "exirom\u0000", () => "__proto__", () => "constructor", () => "toString", () => "hasOwnProperty", () => [], () => ({}), () => ["exirom"], () => true, () => str()],
    transactionId: [() => "abc", () => -5, () => 0, () => 1.5, () => "12a", () => "", () => null, () => [], () => ({}), () => true, () => -0.0001, () => "0x10", () => "１２３", () => ({ __proto__: { a: 1 } }), () => [tx]],
    amount: [() => 1, () => 1.0, () => "1.001", () => "-1.00", () => "", () => "abc", () => "1e2", () => "١٫٠٠", () => null, () => [], () => ({}), () => "0x10", () => "1,00", () => "NaN", () => "Infinity", () => ["1.00"], () => true,
      // 500 digits: no currency has such an amount; it must be refused, not forwarded to the provider
      () => "9".repeat(500)],
    reason: [() => "", () => 42, () => null, () => [], () => ({}), () => true, () => ["customer_request"]],
    currency: [() => "EURO", () => "eu", () => 978, () => null, () => "€", () => ""],
    callbackUrl: [() => "not a url", () => "", () => 12, () => "javascript:alert(1)", () => "http://"],
    metadata: [() => ({ a: 1 }), () => "meta", () => [1, 2], () => ({ nested: { deep: true } }), () => null]
  }
  const valid = () => ({ provider: "exirom", transactionId: tx, amount: "1.00", reason: "customer_request" } as Record<string, unknown>)
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${gateway.apiKey}`, "idempotency-key": `bad-${int(1e9)}`, "content-type": "application/json", ...extra })
  // Decorations: hostile, but they do not make a request invalid by themselves.
  let touched: Array<string> = []
  const decorate = (body: Record<string, unknown>) => {
    touched = []
    const n = int(3)
    for (let i = 0; i < n; i++) {
      const d = int(5)
      touched.push(d === 0 ? "__proto__" : d === 1 ? "constructor" : d === 4 ? "metadata" : "")
      if (d === 0) Object.defineProperty(body, "__proto__", { value: { amount: "1.00", polluted: true }, enumerable: true, configurable: true, writable: true })
      if (d === 1) body["constructor"] = { prototype: { polluted: true } }
      if (d === 2) { const k = pick(["reason", "x", "prototype"]); touched[touched.length - 1] = k; body[k] = str() }
      if (d === 3) { const k = `k${int(100)}`; touched[touched.length - 1] = k; touched.push("body"); body[k] = JSON.parse(deep(1 + int(200), "[", "]")) }
      if (d === 4) body["metadata"] = { [pick(["__proto__", "constructor", "hasOwnProperty"])]: str().slice(0, 1000) }
    }
    return body
  }
  const json = (body: unknown) => JSON.stringify(body)
  const generators: Array<[string, number, () => Case]> = [
    ["field: wrong value", 30, () => {
      const body = decorate(valid())
      const fields = Object.keys(invalid)
      const want = [...touched]
      for (let i = 0, n = 1 + int(3); i < n; i++) {
        const f = pick(fields)
        body[f] = pick(invalid[f]!)()
        want.push(f)
      }
      return { kind: "field", method: "POST", path: "/v1/refunds", headers: headers(), body: json(body), want }
    }],
    ["field: missing", 10, () => {
      const body = decorate(valid())
      const f = pick(["provider", "transactionId", "amount", "reason"])
      delete body[f]
      // the missing field smuggled in through __proto__ must not count
      const want = [f, ...touched]
      if (rnd() < 0.5) return { kind: "missing+proto", method: "POST", path: "/v1/refunds", headers: headers(), body: json(body).replace(/^\{/, `{"__proto__":{${JSON.stringify(f)}:${JSON.stringify(valid()[f])}},`), want: [...want, "__proto__"] }
      return { kind: "missing", method: "POST", path: "/v1/refunds", headers: headers(), body: json(body), want }
    }],
    ["body: not an object or not JSON", 12, () => {
      const bodies = [
        () => "", () => "null", () => "[]", () => "\"exirom\"", () => "42", () => "true", () => "{", () => json(valid()).slice(0, int(60)),
        () => "{'provider':'exirom'}", () => "{\"provider\":\"exirom\",}", () => Buffer.from(Array.from({ length: 1 + int(4000) }, () => int(256))),
        () => Buffer.concat([Buffer.from("{\"provider\":\"exirom\",\"amount\":\""), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from("\"")]),
        () => deep(1_000 + int(30_000), "[", "]"), () => deep(1_000 + int(30_000), "{\"a\":", "}"), () => "\u0000", () => json([valid()]), () => `${json(valid())}garbage`,
        () => "NaN", () => "undefined", () => json(valid()).replace(/"/g, "'")
      ]
      return { kind: "body", method: "POST", path: "/v1/refunds", headers: headers(), body: pick(bodies)() }
    }],
    ["body: deep nesting in a field", 3, () => {
      const body = valid()
      const f = pick(["metadata", "amount", "transactionId", "reason", "provider"])
      body[f] = "__DEEP__"
      const nested = pick([() => deep(1_000 + int(40_000), "[", "]"), () => deep(1_000 + int(20_000), "{\"a\":", "}", "{}")])()
      return { kind: "deep", method: "POST", path: "/v1/refunds", headers: headers(), body: json(body).replace("\"__DEEP__\"", nested), want: [f, "body"] }
    }],
    ["header: idempotency key", 10, () => {
      const variants: Array<() => Record<string, string>> = [
        () => { const h = headers(); delete (h as Record<string, string>)["idempotency-key"]; return h },
        () => headers({ "idempotency-key": "" }), () => headers({ "idempotency-key": "k".repeat(256 + int(10_000)) }),
        () => headers({ "idempotency-key": "é\u00ff".repeat(1 + int(10)) }), () => headers({ "idempotency-key": "\t" }), () => headers({ "idempotency-key": " " })
      ]
      const body = rnd() < 0.5 ? json(valid()) : json(decorate(valid()))
      return { kind: "idempotency-key", method: "POST", path: "/v1/refunds", headers: pick(variants)(), body, want: ["Idempotency-Key"] }
    }],
    ["header: authorization", 8, () => {
      const variants: Array<() => Record<string, string>> = [
        () => { const h = headers(); delete (h as Record<string, string>)["authorization"]; return h },
        () => headers({ authorization: "Bearer " }), () => headers({ authorization: `Bearer ${gateway.apiKey}x` }), () => headers({ authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }),
        () => headers({ authorization: `bearer ${"x".repeat(int(20_000))}` }), () => headers({ authorization: `Bearer ${gateway.apiKey.slice(0, -1)}` }), () => headers({ authorization: "Bearer __proto__" })
      ]
      return { kind: "authorization", method: "POST", path: "/v1/refunds", headers: pick(variants)(), body: json(valid()) }
    }],
    ["header: content type", 4, () => {
      const body = valid()
      const f = pick(["amount", "provider", "transactionId", "reason"])
      delete body[f]
      return { kind: "content-type", method: "POST", path: "/v1/refunds", headers: headers({ "content-type": pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "", "application/xml"]) }), body: json(body), want: ["Content-Type", f] }
    }],
    ["query strings", 15, () => {
      const bad = () => enc(pick([() => "abc", () => "-1", () => "0", () => "501", () => "1e3", () => "99999999999999999999", () => str().slice(0, 3000), () => "__proto__", () => "[]", () => "1.5", () => "%zz"])())
      const param = pick(["limit", "status", "cursor", "provider"])
      const extraName = rnd() < 0.3 ? pick(["__proto__[x]", "constructor[prototype][x]", "limit"]) : undefined
      const extra = extraName !== undefined ? `&${extraName}=${bad()}` : ""
      return { kind: `query-${param}`, method: "GET", path: `/v1/refunds?${param}=${bad()}${extra}`, headers: headers(), want: [param, ...(extraName === undefined ? [] : [extraName.replace(/\[.*$/, "")])] }
    }],
    ["path ids", 6, () => {
      const id = enc(pick([() => "rfd_doesnotexist00000000000000", () => "__proto__", () => "constructor", () => str().slice(0, 2000), () => "../../etc/passwd", () => "%00", () => "rfd_" + "z".repeat(int(5000))])())
      return pick([
        () => ({ kind: "get-id", method: "GET", path: `/v1/refunds/${id}`, headers: headers() }),
        () => ({ kind: "sync-id", method: "POST", path: `/v1/refunds/${id}/sync`, headers: headers(), body: "" }),
        () => ({ kind: "events-id", method: "POST", path: `/v1/refunds/${id}/events`, headers: headers(), body: json({ status: "x" }) }),
        () => ({ kind: "resolve-id", method: "POST", path: `/v1/refunds/${id}/resolve`, headers: headers(), body: json({ status: "failed", note: "checked with the provider" }) }),
        () => ({ kind: "reopen-id", method: "POST", path: `/v1/refunds/${id}/reopen`, headers: headers(), body: json({ note: "reversed in the dashboard" }) })
      ])()
    }],
    ["reopen: not a reopen", 5, () => {
      // An operator's reopen of a refund this ledger does not have: a body that is not a reopen is the body's 400
      // naming the field, a reopen the 404; neither reaches a provider.
      const id = pick(["rfd_doesnotexist00000000000000", "__proto__", "constructor", enc(str().slice(0, 200))])
      const body: Record<string, unknown> = { note: pick(["reversed in the dashboard", "💸 charged back", "<script>alert(1)</script>", "'; DROP TABLE refunds; --"]) }
      const f = pick(["note", "missing", "extra"])
      let want: Array<string>
      if (f === "missing") {
        delete body["note"]
        want = ["note"]
      } else if (f === "extra") {
        const k = pick(["status", "releaseTargets", "correct", "x", "__proto__", "constructor", "prototype", "notes"])
        Object.defineProperty(body, k, { value: pick([() => "failed", () => true, () => str().slice(0, 1000), () => ({ polluted: true })])(), enumerable: true, configurable: true, writable: true })
        want = [k]
      } else {
        body["note"] = pick([() => "", () => " \t\n ", () => null, () => 42, () => [], () => ({ text: "x" }), () => "x".repeat(1001 + int(5000)), () => `checked\u0000`, () => true])()
        want = ["note"]
      }
      if (rnd() < 0.15) {
        const type = pick(["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16", ""])
        return { kind: "reopen-content-type", method: "POST", path: `/v1/refunds/${id}/reopen`, headers: headers({ "content-type": type }), body: json(body), want: ["Content-Type"] }
      }
      return { kind: "reopen-body", method: "POST", path: `/v1/refunds/${id}/reopen`, headers: headers(), body: json(body), want }
    }],
    ["webhook: unverified or unreadable", 5, () => {
      // A callback nobody signed (or signed wrongly), or one that is not a callback at all: refused before anything
      // is asked of the provider, whose callbacks are confirmed with a call only once they verify.
      const provider = pick(["exirom", "exirom", "exirom", "airalo", "airpay", "aerohub", "__proto__", "constructor", enc(str().slice(0, 300))])
      const callback = { transactionId: tx, refundId: "rf-1", requestId: "rfd_doesnotexist00000000000000", mid: "sandbox_mid", transactionStatus: pick(["SUCCEED", "FAILED", "CHARGEBACK"]), declineCode: null, totalAmount: 1.0, orderCurrency: "EUR", processedCurrency: "EUR" }
      const body = pick([() => json(callback), () => json({ ...callback, __proto__: { transactionStatus: "SUCCEED" } }), () => "", () => "{", () => deep(1_000 + int(20_000), "[", "]"), () => json([callback]), () => str().slice(0, 5000)])()
      const signed = pick([() => ({}), () => ({ "x-checksum": "" }), () => ({ "x-checksum": Buffer.from(str().slice(0, 100)).toString("base64") }), () => ({ "x-checksum": "x".repeat(int(20_000)) })])()
      return { kind: "webhook", method: "POST", path: `/v1/webhooks/${provider}`, headers: { "content-type": "application/json", ...signed }, body }
    }],
    ["resolve: not a verdict", 8, () => {
      // An operator's verdict on a refund this ledger does not have (nothing here creates one): a body that is not a
      // verdict must be the body's 400 naming the field, a verdict the 404; neither reaches a provider.
      const id = pick(["rfd_doesnotexist00000000000000", "__proto__", "constructor", enc(str().slice(0, 200))])
      const verdictInvalid: Record<string, ReadonlyArray<() => unknown>> = {
        status: [() => "", () => "pending", () => "SUCCEEDED", () => "unknown", () => null, () => 1, () => ["failed"], () => ({}), () => true, () => str().slice(0, 500)],
        note: [() => "", () => " \t\n ", () => null, () => 42, () => [], () => ({ text: "x" }), () => "x".repeat(1001 + int(5000)), () => `checked\u0000`, () => true],
        releaseTargets: [() => "true", () => 1, () => null, () => [], () => ({}), () => "yes"]
      }
      const body: Record<string, unknown> = { status: "failed", note: pick(["checked with the provider", "💸 seen in the dashboard", "<script>alert(1)</script>", "'; DROP TABLE refunds; --"]) }
      const want: Array<string> = []
      for (let i = 0, n = 1 + int(2); i < n; i++) {
        const f = pick(["status", "note", "releaseTargets", "missing", "extra"])
        if (f === "missing") {
          const gone = pick(["status", "note"])
          delete body[gone]
          want.push(gone)
        } else if (f === "extra") {
          const k = pick(["release_targets", "x", "__proto__", "constructor", "prototype", "statuss"])
          // Defined, not assigned: `body.__proto__ = …` would set the prototype and send nothing.
          Object.defineProperty(body, k, { value: pick([() => true, () => str().slice(0, 1000), () => ({ polluted: true })])(), enumerable: true, configurable: true, writable: true })
          want.push(k)
        } else {
          body[f] = pick(verdictInvalid[f]!)()
          want.push(f)
        }
      }
      if (body["releaseTargets"] === undefined && rnd() < 0.2) {
        body["status"] = "succeeded"
        body["releaseTargets"] = true
        want.push("releaseTargets")
      }
      if (rnd() < 0.15) {
        const type = pick(["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16", ""])
        return { kind: "resolve-content-type", method: "POST", path: `/v1/refunds/${id}/resolve`, headers: headers({ "content-type": type }), body: json(body), want: ["Content-Type"] }
      }
      return { kind: "resolve-body", method: "POST", path: `/v1/refunds/${id}/resolve`, headers: headers(), body: json(body), want }
    }],
    ["oversized", 1, () => {
      const size = (1 << 20) + 1 + int(1 << 19)
      const body = `{"provider":"exirom","reason":"${"y".repeat(size)}"}`
      return { kind: rnd() < 0.5 ? "oversized" : "oversized-chunked", method: "POST", path: "/v1/refunds", headers: headers(), body, chunked: false }
    }]
  ]
  const total = generators.reduce((n, [, w]) => n + w, 0)
  return (): Case => {
    let r = rnd() * total
    for (const [, w, g] of generators) {
      if ((r -= w) < 0) {
        const c = g()
        if (c.kind === "oversized-chunked") c.chunked = true
        return c
      }
    }
    return generators[0]![2]()
  }
}

const send = (c: Case, agent: import("node:http").Agent): Promise<Response> => {
  const headers = { ...c.headers }
  if (c.chunked) headers["transfer-encoding"] = "chunked"
  else if (c.body !== undefined) headers["content-length"] = String(Buffer.byteLength(c.body))
  return L.request(`${gateway.url}${c.path}`, { method: c.method, headers, body: c.body, agent, raw: true, timeoutMs: 30_000 })
}

// A 400 must say which field or header is wrong: an issue with a path, or the message names it.
const names = /\b(provider|transactionId|amount|reason|currency|callbackUrl|metadata|mid|Idempotency-Key|limit|status|cursor|body|Content-Type|id|note|releaseTargets)\b/i
const namesAField = (r: Response) => {
  const error = r.json?.error
  if (error === undefined) return false
  if (Array.isArray(error.issues) && error.issues.some((i: { path?: unknown }) => typeof i.path === "string" && i.path !== "")) return true
  return typeof error.message === "string" && names.test(error.message)
}

/** The 400 names one of `want`: an issue whose path starts with it, or the message mentions it as a word. */
const namesOneOf = (r: Response, want: ReadonlyArray<string>) => {
  const error = r.json?.error
  const wanted = new Set(want.filter((w) => w !== "").map((w) => w.toLowerCase()))
  if (Array.isArray(error?.issues) && error.issues.some((i: { path?: unknown }) => typeof i.path === "string" && wanted.has(i.path.split(".")[0]!.toLowerCase()))) return true
  const message = typeof error?.message === "string" ? error.message.toLowerCase() : ""
  return [...wanted].some((w) => new RegExp(`(^|[^\\w-])${w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([^\\w-]|$)`).test(message))
}

describe("hostile and invalid input against the gateway", () => {
  it(`${CASES} generated requests (seed ${SEED}): zero 5xx, zero provider calls, every 400 names a field`, async () => {
    const next = make(SEED)
    const cases = Array.from({ length: CASES }, next)
    const before = await sandbox.stats()
    const agent = L.makeAgent(CONCURRENCY)
    const byKind: Record<string, Record<string, number>> = {}
    const fiveHundreds: Array<string> = []
    const transport: Array<string> = []
    const unnamed: Array<string> = []
    const accepted: Array<string> = []
    const oddities: Array<string> = []
    let i = 0
    const started = Date.now()
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (i < cases.length && Date.now() - started < 240_000) {
        const index = i++
        const c = cases[index]!
        let r: Response
        try {
          r = await send(c, agent)
        } catch (e) {
          transport.push(`#${index} ${c.kind} ${c.method} ${c.path.slice(0, 80)}: ${(e as Error).message}`)
          continue
        }
        const k = (byKind[c.kind] ??= {})
        k[r.status] = (k[r.status] ?? 0) + 1
        const sample = `#${index} ${c.kind} ${c.method} ${c.path.slice(0, 80)} body ${String(c.body ?? "").slice(0, 120)} -> ${r.status} ${r.text.slice(0, 300)}`
        if (r.status >= 500) fiveHundreds.push(sample)
        if (r.status === 400 && !namesAField(r)) unnamed.push(sample)
        else if (r.status === 400 && c.want !== undefined && !namesOneOf(r, c.want)) unnamed.push(`(names none of ${c.want.join(", ")}) ${sample}`)
        if (r.status >= 200 && r.status < 300 && c.method === "POST") accepted.push(sample)
        if (r.status === 200 && c.kind === "get-id") oddities.push(sample)
        if (r.status >= 300 && r.json?.error?.code === undefined) unnamed.push(`(not the JSON error shape) ${sample}`)
      }
    }))
    agent.destroy()
    const after = await sandbox.stats()
    console.log(`statuses by kind: ${JSON.stringify(byKind)}`)
    console.log(`5xx: ${fiveHundreds.length}, transport errors: ${transport.length}, 400s without a field: ${unnamed.length}, accepted: ${accepted.length}`)
    for (const s of fiveHundreds.slice(0, 5)) console.log(`5xx sample: ${s}`)
    for (const s of accepted.slice(0, 10)) console.log(`accepted sample: ${s}`)
    const seenUnnamed = new Set<string>()
    for (const s of unnamed) {
      const shape = s.replace(/^#\d+ /, "").replace(/body .* -> /, "-> ").slice(0, 200)
      if (!seenUnnamed.has(shape.slice(0, 60)) && seenUnnamed.size < 12) {
        seenUnnamed.add(shape.slice(0, 60))
        console.log(`unnamed sample: ${s.slice(0, 600)}`)
      }
    }
    if (process.env.RK_DEBUG) for (const s of oddities) console.log(`odd: ${s}`)

    expect(Object.values(byKind).reduce((n, k) => n + Object.values(k).reduce((a, b) => a + b, 0), 0) + transport.length).toBe(CASES)
    // One assertion, so a failure shows every kind of problem at once (counts and first samples).
    const providerCalls = Object.entries(after.requests).reduce((n, [route, count]) => n + count - (before.requests[route] ?? 0), 0)
    const clip = (xs: Array<string>) => xs.slice(0, 3).map((x) => x.slice(0, 400))
    expect({
      serverErrors: { count: fiveHundreds.length, samples: clip(fiveHundreds) },
      transportErrors: { count: transport.length, samples: clip(transport) },
      acceptedInvalid: { count: accepted.length, samples: clip(accepted) },
      unnamed400s: { count: unnamed.length, samples: clip(unnamed) },
      providerCalls,
      providerRefunds: after.refundsPerformed - before.refundsPerformed
    }).toEqual({
      serverErrors: { count: 0, samples: [] },
      transportErrors: { count: 0, samples: [] },
      acceptedInvalid: { count: 0, samples: [] },
      unnamed400s: { count: 0, samples: [] },
      providerCalls: 0,
      providerRefunds: 0
    })
    // The gateway is still up and well.
    expect(gateway.proc.exitCode).toBeUndefined()
    expect((await L.request(`${gateway.url}/healthz`)).status).toBe(200)
  })
})
