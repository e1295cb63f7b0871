import { assert, describe, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect } from "effect"
import * as GatewayMetrics from "../src/GatewayMetrics.js"
import * as Gateway from "./support/Gateway.js"

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

/** Reads the exposition as Prometheus would, failing on any line it would refuse. */
const parse = (text: string): ReadonlyArray<Sample> => {
  const samples: Array<Sample> = []
  const typed = new Set<string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line)
    if (type !== null) {
      assert.isFalse(typed.has(type[1]!), `a second TYPE line for ${type[1]}`)
      typed.add(type[1]!)
      continue
    }
    if (line.startsWith("# HELP ")) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.]+(?:e-?[0-9]+)?|\+Inf)$/.exec(line)
    assert.isNotNull(sample, `not an exposition line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const pair of (sample![2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    const family = sample![1]!.replace(/_(bucket|sum|count)$/, "")
    assert.isTrue(typed.has(sample![1]!) || typed.has(family), `${sample![1]} has no TYPE line before it`)
    samples.push({ name: sample![1]!, labels, value: Number(sample![3]) })
  }
  return samples
}

const valueOf = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value

describe("GET /metrics", () => {
  it.scopedLive("counts requests by route and status, with durations; counts refunds in doubt; behind the API key", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      assert.strictEqual((yield* gw.fetch("GET", "/metrics", { auth: false })).status, 401)

      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.status, 201, created.text)
      const refused = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund({ amount: "-1" }), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(refused.status, 400, refused.text)
      assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`)).status, 200)
      assert.strictEqual((yield* gw.fetch("GET", "/v1/refunds/rfd_nope")).status, 404)
      assert.strictEqual((yield* gw.fetch("GET", "/no/such/route/rfd_secret")).status, 404)
      // A refund left in doubt: its answer never came.
      yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "refund" })
      const timedOut = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(timedOut.status, 504, timedOut.text)
      yield* gw.exirom.faults.clear

      const scraped = yield* gw.fetch("GET", "/metrics")
      assert.strictEqual(scraped.status, 200, scraped.text)
      assert.strictEqual(scraped.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
      const samples = parse(scraped.text)

      const requests = (method: string, route: string, code: string) => valueOf(samples, "refundkit_http_requests_total", { method, route, code })
      assert.strictEqual(requests("POST", "/v1/refunds", "201"), 1)
      assert.strictEqual(requests("POST", "/v1/refunds", "400"), 1)
      assert.strictEqual(requests("POST", "/v1/refunds", "504"), 1)
      assert.strictEqual(requests("GET", "/v1/refunds/:id", "200"), 1)
      assert.strictEqual(requests("GET", "/v1/refunds/:id", "404"), 1)
      assert.strictEqual(requests("GET", "other", "404"), 1)
      assert.strictEqual(requests("GET", "/metrics", "401"), 1)
      // Ids never become labels: the number of series does not grow with the refunds.
      assert.notInclude(scraped.text, "rfd_")

      // The histogram of POST /v1/refunds: cumulative buckets ending at the count; the timed-out call took at least its second.
      const buckets = samples.filter((s) => s.name === "refundkit_http_request_duration_seconds_bucket" && s.labels.route === "/v1/refunds")
      assert.deepStrictEqual(buckets.map((b) => b.labels.le), [...GatewayMetrics.durationBuckets.map(String), "+Inf"])
      for (let i = 1; i < buckets.length; i++) assert.isAtLeast(buckets[i]!.value, buckets[i - 1]!.value)
      assert.strictEqual(buckets.at(-1)!.value, 3)
      assert.strictEqual(valueOf(samples, "refundkit_http_request_duration_seconds_count", { route: "/v1/refunds" }), 3)
      assert.isAtLeast(valueOf(samples, "refundkit_http_request_duration_seconds_sum", { route: "/v1/refunds" })!, 1)
      assert.isAtMost(buckets.find((b) => b.labels.le === "0.5")!.value, 2)
      assert.isAtLeast(valueOf(samples, "refundkit_http_provider_calls_total", { route: "/v1/refunds" })!, 2)
      assert.isAtLeast(valueOf(samples, "refundkit_http_provider_seconds_total", { route: "/v1/refunds" })!, 1)

      // The ledger's refunds waiting on someone: every enabled provider and watched status, zeros included.
      assert.strictEqual(valueOf(samples, "refundkit_ledger_up"), 1)
      assert.strictEqual(valueOf(samples, "refundkit_refunds", { provider: "exirom", status: "unknown" }), 1)
      assert.strictEqual(valueOf(samples, "refundkit_refunds", { provider: "exirom", status: "requested" }), 0)
      assert.strictEqual(valueOf(samples, "refundkit_refunds", { provider: "airalo", status: "requires_action" }), 0)
      assert.isAbove(valueOf(samples, "process_resident_memory_bytes")!, 0)
      assert.isAbove(valueOf(samples, "process_cpu_user_seconds_total")!, 0)
      // The API key and the sandbox's secrets are nowhere in it.
      assert.notInclude(scraped.text, Gateway.apiKey)

      // Refunds created, by provider and the status answered: the 201 above (a 504 is not one).
      assert.strictEqual(
        samples.filter((x) => x.name === "refundkit_refunds_created_total").reduce((n, x) => n + x.value, 0),
        1,
        scraped.text
      )
      assert.strictEqual(valueOf(samples, "refundkit_refunds_created_total", { provider: "exirom", status: created.body.status }), 1)

      // The next scrape counts the first.
      const again = parse((yield* gw.fetch("GET", "/metrics")).text)
      assert.strictEqual(valueOf(again, "refundkit_http_requests_total", { method: "GET", route: "/metrics", code: "200" }), 1)
    }))

  for (const createRoute of ["direct", "httpapi"] as const) {
    it.scopedLive(`counts created refunds by provider and status, a decline as failed, a replay not at all (${createRoute} route)`, () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ server: { createRoute } })
        const key = Gateway.key()
        const first = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": key } })
        assert.strictEqual(first.status, 201, first.text)
        const replay = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": key } })
        assert.strictEqual(replay.status, 200, replay.text)
        // 30001 is a FAILED payment at the sandbox: Exirom refuses to refund it, a 201 refund in status failed.
        const declined = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund({ transactionId: 30001 }), headers: { "idempotency-key": Gateway.key() } })
        assert.strictEqual(declined.status, 201, declined.text)
        assert.strictEqual(declined.body.status, "failed")
        const samples = parse((yield* gw.fetch("GET", "/metrics")).text)
        assert.strictEqual(valueOf(samples, "refundkit_refunds_created_total", { provider: "exirom", status: "failed" }), 1)
        assert.strictEqual(valueOf(samples, "refundkit_refunds_created_total", { provider: "exirom", status: first.body.status }), 1)
      }))
  }

  it.scopedLive("a ledger that cannot count leaves the gauge out and says so, and the scrape still answers", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      // Another process damaging the ledger file.
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("ALTER TABLE refunds RENAME TO refunds_gone")).pipe(
        Effect.provide(SqliteClient.layer({ filename: gw.ledgerFile })),
        Effect.orDie
      )
      const scraped = yield* gw.fetch("GET", "/metrics")
      assert.strictEqual(scraped.status, 200, scraped.text)
      const samples = parse(scraped.text)
      assert.strictEqual(valueOf(samples, "refundkit_ledger_up"), 0)
      assert.isUndefined(samples.find((s) => s.name === "refundkit_refunds"))
      assert.isAbove(valueOf(samples, "process_resident_memory_bytes")!, 0)
    }))
})

describe("the route label", () => {
  it("keeps every path to a known route or 'other'", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["/v1/refunds", "/v1/refunds"],
      ["//V1//refunds/?x=1", "/v1/refunds"],
      ["/v1/refunds/rfd_0123/sync", "/v1/refunds/:id/sync"],
      ["/v1/refunds/rfd_0123/events#x", "/v1/refunds/:id/events"],
      ["/v1/refunds/rfd_0123/resolve", "/v1/refunds/:id/resolve"],
      ["/v1/refunds/rfd_0123/reopen", "/v1/refunds/:id/reopen"],
      ["/v1/refunds/rfd_0123/unknown", "other"],
      ["/v1/providers", "/v1/providers"],
      ["/metrics", "/metrics"],
      ["/openapi.json", "/openapi.json"],
      ["/v1/refunds/rfd_0123", "/v1/refunds/:id"],
      ["/v1/webhooks/exirom", "/v1/webhooks/:provider"],
      ["/v1/webhooks/exirom/more", "other"],
      ["/healthz", "/healthz"],
      ["/wp-admin/rfd_x", "other"],
      ["-", "-"]
    ]
    for (const [url, route] of cases) assert.strictEqual(GatewayMetrics.routeOf(url), route, url)
  })
})
