import { Validator } from "@seriousme/openapi-schema-validator"
import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Console, Context, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Schedule, Scope } from "effect"
import type { Ledger } from "@refundkit/core/Ledger"
import * as LedgerSql from "@refundkit/ledger-sql"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Net from "node:net"
import * as Main from "../src/Main.js"
import * as RequestMiddleware from "../src/RequestMiddleware.js"
import * as Server from "../src/Server.js"
import * as ServerConfig from "../src/ServerConfig.js"
import * as SyncLoop from "../src/SyncLoop.js"
import * as ExiromSandbox from "@refundkit/exirom/sandbox"
import * as Gateway from "./support/Gateway.js"
import { eventually } from "@refundkit/testkit/Waiting"

const timingPattern = /^app;dur=\d+\.\d\d, provider;dur=\d+\.\d\d$/

interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** Writes `text` as it is to a new connection and reads every response until the server closes it. */
const rawExchange = (port: number, text: string) =>
  Effect.async<ReadonlyArray<RawResponse>, Error>((resume) => {
    const socket = Net.connect(port, "127.0.0.1", () => socket.end(text))
    let received = ""
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => (received += chunk))
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("close", () => {
      const responses: Array<RawResponse> = []
      let rest = received
      while (rest.length > 0) {
        const end = rest.indexOf("\r\n\r\n")
        const [statusLine = "", ...lines] = rest.slice(0, end).split("\r\n")
        const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]))
        const length = Number(headers["content-length"] ?? "0")
        responses.push({ status: Number(statusLine.split(" ")[1]), headers, body: rest.slice(end + 4, end + 4 + length) })
        rest = rest.slice(end + 4 + length)
      }
      resume(Effect.succeed(responses))
    })
  })

describe("the gateway", () => {
  it.scopedLive("API keys: 401 without or with an unknown key, in the error shape; Server-Timing and X-Request-Id everywhere", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const none = yield* gw.fetch("GET", "/v1/providers", { auth: false })
      assert.strictEqual(none.status, 401)
      assert.strictEqual(none.body.error.code, "unauthorized")
      assert.isString(none.body.error.message)
      const wrong = yield* gw.fetch("GET", "/v1/refunds", { auth: false, headers: { authorization: "Bearer not-a-key" } })
      assert.strictEqual(wrong.status, 401)
      // The challenge a 401 must carry: the scheme, and `invalid_token` only where a key was presented.
      assert.strictEqual(none.headers["www-authenticate"], `Bearer realm="refundkit"`)
      assert.strictEqual(wrong.headers["www-authenticate"], `Bearer realm="refundkit", error="invalid_token"`)
      const wrongCreate = yield* gw.fetch("POST", "/v1/refunds", { auth: false, body: Gateway.exiromRefund(), headers: { authorization: "Bearer not-a-key", "idempotency-key": Gateway.key() } })
      assert.strictEqual(wrongCreate.status, 401)
      assert.strictEqual(wrongCreate.headers["www-authenticate"], `Bearer realm="refundkit", error="invalid_token"`)
      const noneCreate = yield* gw.fetch("POST", "/v1/refunds", { auth: false, body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(noneCreate.headers["www-authenticate"], `Bearer realm="refundkit"`)
      const sandboxKey = Option.getOrThrow(gw.info.sandboxKey)
      // The right key without its scheme: the answer must show the header's shape, not only call the key unknown.
      for (const [method, path] of [["GET", "/v1/refunds"], ["POST", "/v1/refunds"]] as const) {
        const bare = yield* gw.fetch(method, path, { auth: false, headers: { authorization: Redacted.value(sandboxKey), "idempotency-key": Gateway.key() }, ...(method === "POST" ? { body: Gateway.exiromRefund() } : {}) })
        assert.strictEqual(bare.status, 401, `${method} ${path}`)
        assert.include(bare.body.error.message, "send `Authorization: Bearer <key>`", `${method} ${path}`)
      }
      const withSandboxKey = yield* gw.fetch("GET", "/v1/providers", { auth: false, headers: { authorization: `Bearer ${Redacted.value(sandboxKey)}` } })
      assert.strictEqual(withSandboxKey.status, 200)

      const route = yield* gw.fetch("GET", "/v2/nothing", { headers: { "x-request-id": "req-123" } })
      assert.strictEqual(route.status, 404)
      assert.strictEqual(route.body.error.code, "not_found")
      assert.strictEqual(route.headers["x-request-id"], "req-123")
      assert.strictEqual(route.body.error.message, "No such route. See /openapi.json or /docs for the API.")
      // A known path with another method is 405, and says which methods it takes, in Allow and in words.
      for (const [method, path, allowed] of [["DELETE", "/v1/refunds", "GET, POST"], ["GET", "/v1/refunds/rfd_x/sync", "POST"], ["POST", "/healthz", "GET"]] as const) {
        const wrongMethod = yield* gw.fetch(method, path)
        assert.strictEqual(wrongMethod.status, 405, `${method} ${path}`)
        assert.strictEqual(wrongMethod.headers["allow"], allowed)
        assert.strictEqual(wrongMethod.body.error.code, "method_not_allowed")
        assert.strictEqual(wrongMethod.body.error.message, `This path takes ${allowed} only. See /openapi.json or /docs for the API.`)
      }
      for (const answer of [none, wrong, route]) assert.match(answer.headers["server-timing"]!, timingPattern)

      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      const [, provider] = created.headers["server-timing"]!.match(/provider;dur=(\d+\.\d\d)/)!
      assert.isAbove(Number(provider), 0, "the provider's time is reported apart from ours")
      assert.match(created.headers["x-request-id"]!, /^[0-9a-f-]{36}$/)
    }))

  it.scopedLive("/readyz is 503 not_ready once the ledger's migrations are gone, /healthz stays 200", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      assert.strictEqual((yield* gw.fetch("GET", "/readyz", { auth: false })).status, 200)
      // Another process damaging the ledger file: the gateway must stop calling itself ready.
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${LedgerSql.Migrations.table}`)).pipe(
        Effect.provide(SqliteClient.layer({ filename: gw.ledgerFile })),
        Effect.orDie
      )
      const ready = yield* gw.fetch("GET", "/readyz", { auth: false })
      assert.strictEqual(ready.status, 503)
      assert.strictEqual(ready.body.error.code, "not_ready")
      assert.strictEqual((yield* gw.fetch("GET", "/healthz", { auth: false })).status, 200)
    }))

  it.scopedLive("/healthz, /readyz, /v1/providers, /docs, and /openapi.json valid OpenAPI 3.1", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const health = yield* gw.fetch("GET", "/healthz", { auth: false })
      assert.deepStrictEqual([health.status, health.body], [200, { status: "ok" }])
      const ready = yield* gw.fetch("GET", "/readyz", { auth: false })
      assert.deepStrictEqual([ready.status, ready.body], [200, { status: "ready", checks: { ledger: "ok" } }])

      const providers = yield* gw.fetch("GET", "/v1/providers")
      const exirom = providers.body.providers.find((p: { id: string }) => p.id === "exirom")
      assert.strictEqual(exirom.capabilities.statusQuery, true)
      assert.include(Object.keys(exirom.requestSchema.$defs?.ExiromRefundRequest?.properties ?? exirom.requestSchema.properties ?? {}), "transactionId")

      const docs = yield* gw.fetch("GET", "/docs", { auth: false })
      assert.strictEqual(docs.status, 200)
      assert.include(docs.headers["content-type"], "text/html")
      assert.match(docs.headers["server-timing"]!, timingPattern)

      const spec = yield* gw.fetch("GET", "/openapi.json", { auth: false })
      assert.strictEqual(spec.status, 200)
      assert.strictEqual(spec.body.openapi, "3.1.0")
      const result = yield* Effect.promise(() => new Validator().validate(spec.body))
      assert.isTrue(result.valid, JSON.stringify(result.errors))
      for (const name of Object.keys(spec.body.components.schemas)) assert.match(name, /^[a-zA-Z0-9.\-_]+$/)
      assert.deepStrictEqual(spec.body.paths["/v1/refunds"].post.parameters.map((p: { name: string; required: boolean }) => [p.name, p.required]), [["idempotency-key", true]])
    }))

  it.scopedLive("bodies over the limit are 413 payload_too_large, announced or streamed", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ server: { bodyLimitBytes: 1024 } })
      const big = Gateway.exiromRefund({ metadata: { note: "x".repeat(2000) } })
      const announced = yield* gw.fetch("POST", "/v1/refunds", { body: big, headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(announced.status, 413)
      assert.deepStrictEqual(announced.body.error, { code: "payload_too_large", message: "The request body is larger than 1024 bytes.", limitBytes: 1024 })
      assert.match(announced.headers["server-timing"]!, timingPattern)
      const streamed = yield* Effect.promise(() =>
        fetch(`${gw.info.url}/v1/refunds`, {
          method: "POST",
          headers: { authorization: `Bearer ${Gateway.apiKey}`, "idempotency-key": Gateway.key(), "content-type": "application/json" },
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(JSON.stringify(big)))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit).then(async (response) => ({ status: response.status, body: (await response.json()) as { error: { code: string } } }))
      )
      assert.strictEqual(streamed.status, 413)
      assert.strictEqual(streamed.body.error.code, "payload_too_large")
      const webhook = yield* gw.fetch("POST", "/v1/webhooks/exirom", { body: JSON.stringify(big), auth: false })
      assert.strictEqual(webhook.status, 413)
      assert.strictEqual((yield* gw.exirom.stats).requests["refund"] ?? 0, 0)
    }))

  it.scopedLive("requests the HTTP parser refuses are answered in the error shape: 431 headers_too_large, 400 naming the part", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const request = (lines: ReadonlyArray<string>) => `${lines.join("\r\n")}\r\n\r\n`
      // A create's head, with the body's framing header (and any others) after the usual ones.
      const createHead = (framing: string, extra: ReadonlyArray<string> = []) =>
        request([
          "POST /v1/refunds HTTP/1.1",
          "Host: 127.0.0.1",
          `Authorization: Bearer ${Gateway.apiKey}`,
          `Idempotency-Key: ${Gateway.key()}`,
          "Content-Type: application/json",
          framing,
          ...extra
        ])
      const post = (extra: ReadonlyArray<string>) => createHead("Content-Length: 2", extra) + "{}"

      const oversized = yield* rawExchange(gw.info.port, post([`X-Padding: ${"p".repeat(20_000)}`]))
      assert.strictEqual(oversized.length, 1)
      assert.strictEqual(oversized[0]!.status, 431)
      assert.strictEqual(oversized[0]!.headers["content-type"], "application/json")
      assert.strictEqual(oversized[0]!.headers["connection"], "close")
      assert.match(oversized[0]!.headers["x-request-id"]!, /^[0-9a-f-]{36}$/)
      assert.deepStrictEqual(JSON.parse(oversized[0]!.body), {
        error: { code: "headers_too_large", message: "The request line and headers are larger than 16384 bytes.", limitBytes: 16384 }
      })

      const badHeader = yield* rawExchange(gw.info.port, post(["Bad Header: x"]))
      assert.strictEqual(badHeader[0]!.status, 400)
      const invalid = JSON.parse(badHeader[0]!.body).error
      assert.strictEqual(invalid.code, "invalid_request")
      assert.strictEqual(invalid.issues[0].path, "headers")
      assert.match(invalid.message, /^The request is not valid HTTP\/1\.1 \(headers: .+\); nothing was sent to a provider\.$/)

      const badMethod = yield* rawExchange(gw.info.port, request(["P@ST /v1/refunds HTTP/1.1", "Host: 127.0.0.1"]))
      assert.strictEqual(badMethod[0]!.status, 400)
      assert.strictEqual(JSON.parse(badMethod[0]!.body).error.issues[0].path, "method")

      // A broken chunked body is that request's own error: one answer, naming the body.
      const badChunk = yield* rawExchange(gw.info.port, createHead("Transfer-Encoding: chunked") + "zz\r\n{}\r\n0\r\n\r\n")
      assert.deepStrictEqual(badChunk.map((r) => r.status), [400])
      assert.strictEqual(JSON.parse(badChunk[0]!.body).error.issues[0].path, "body")

      // On a keep-alive connection the request before the bad one gets its own answer first.
      const health = request(["GET /healthz HTTP/1.1", "Host: 127.0.0.1"])
      const both = yield* rawExchange(gw.info.port, health + request(["GET /healthz HTTP/1.1", `X-Padding: ${"p".repeat(20_000)}`]))
      assert.deepStrictEqual(both.map((r) => r.status), [200, 431])

      assert.strictEqual((yield* gw.exirom.stats).requests["refund"] ?? 0, 0)
    }))

  it.scopedLive("the background sync loop moves a pending refund forward", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({
        exirom: { settleAfterMillis: 60_000 },
        server: { sync: { ...SyncLoop.defaultOptions, interval: "100 millis", spacing: "50 millis" } }
      })
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(created.body.status, "pending")
      yield* gw.exirom.settle
      const settled = yield* gw.fetch("GET", `/v1/refunds/${created.body.id}`).pipe(
        Effect.filterOrFail((r) => r.body.status === "succeeded", () => "not yet"),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds"))),
        Effect.orDie
      )
      assert.strictEqual(settled.body.events.at(-1).source, "sync")
    }))

  it.scopedLive("the sync loop still reaches a new refund when more old ones than it syncs per lease never move", () =>
    Effect.gen(function*() {
      const first = yield* Gateway.start({ exirom: { settleAfterMillis: 600_000 } })
      for (let i = 0; i < 30; i++) {
        const created = yield* first.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund({ transactionId: 4_000_000 + i, amount: "1.00" }), headers: { "idempotency-key": Gateway.key() } })
        assert.strictEqual(created.body.status, "pending", created.text)
      }
      // An Exirom that knows none of them: every lookup of the 30 is a 404 and they stay pending for good,
      // as refunds Exirom never moves again do (a chargeback is final at Exirom, requires_action here).
      const elsewhere = yield* ExiromSandbox.make()
      const sync: SyncLoop.Options = { ...SyncLoop.defaultOptions, interval: "100 millis", batchSize: 2, spacing: "100 millis", syncTimeout: "300 millis" }
      const second = yield* Gateway.start({ shareWith: { ...first, exirom: elsewhere }, server: { sync } })
      const fresh = yield* second.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund({ amount: "2.00" }), headers: { "idempotency-key": Gateway.key() } })
      assert.strictEqual(fresh.body.status, "pending", fresh.text)
      yield* elsewhere.settle
      const settled = yield* second.fetch("GET", `/v1/refunds/${fresh.body.id}`).pipe(
        Effect.filterOrFail((r) => r.body.status === "succeeded", (r) => `still ${r.body.status}`),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("6 seconds"))),
        Effect.orDie
      )
      assert.strictEqual(settled.body.events.at(-1).source, "sync")
    }))

  it.scopedLive("instances sharing a ledger never sync a refund at once, however long its sync takes", () =>
    Effect.gen(function*() {
      const first = yield* Gateway.start({ exirom: { settleAfterMillis: 600_000 } })
      for (let i = 0; i < 8; i++) {
        const created = yield* first.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund({ transactionId: 3_000_000 + i, amount: "1.00" }), headers: { "idempotency-key": Gateway.key() } })
        assert.strictEqual(created.body.status, "pending", created.text)
      }
      // Each lookup takes 1 s, three times the spacing: a lease of the spacing alone ran out mid-sync.
      yield* first.exirom.faults.inject({ fault: { _tag: "Latency", millis: 1000 }, route: "info", times: 0 })
      // A lease of syncTimeout + spacing (20.3 s) keeps a correct gateway from looking any of them up
      // again for the whole test, however slow the machine.
      const sync: SyncLoop.Options = { ...SyncLoop.defaultOptions, interval: "50 millis", batchSize: 10, spacing: "300 millis", syncTimeout: "20 seconds" }
      yield* Gateway.start({ shareWith: first, server: { sync } })
      yield* Gateway.start({ shareWith: first, server: { sync } })
      const lookups = Effect.map(first.exirom.stats, (stats) => stats.requests["info"] ?? 0)
      yield* eventually(Effect.map(lookups, (n) => n >= 8), "all 8 refunds were looked up")
      // No event marks the moment a lease of the spacing alone would let the other instance in: the
      // first lookups answering (1 s) frees workers that take the next refund at once. 2 s past the
      // 8th lookup covers that twice over; a slower machine only delays the second lookup (the test
      // passes when it should not, never fails when it should not: see the 20 s lease above).
      yield* Effect.sleep("2 seconds")
      assert.strictEqual(yield* lookups, 8, "each refund looked up once: its lease outlasts its sync")
    }))

  it.scopedLive("finishes a request in flight when it shuts down", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const gw = yield* Gateway.start({ callTimeout: "10 seconds", server: { shutdownGrace: Duration.seconds(10) } }).pipe(Scope.extend(scope))
      yield* gw.exirom.faults.inject({ fault: { _tag: "Latency", millis: 1500 }, route: "refund" })
      const inFlight = yield* Effect.fork(Effect.promise(() =>
        fetch(`${gw.info.url}/v1/refunds`, {
          method: "POST",
          // Not kept alive: an idle socket would hold the shutdown until the grace ends.
          headers: { authorization: `Bearer ${Gateway.apiKey}`, "idempotency-key": Gateway.key(), "content-type": "application/json", connection: "close" },
          body: JSON.stringify(Gateway.exiromRefund())
        }).then((response) => response.status)
      ))
      // Shut down while Exirom holds the create's call (1.5 s): the request is in flight.
      yield* eventually(Effect.map(gw.exirom.stats, (stats) => (stats.requests["refund"] ?? 0) >= 1), "the create's call reached Exirom")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Fiber.join(inFlight), 201)
      const after = yield* Effect.promise(() => fetch(`${gw.info.url}/healthz`).then(() => "answered", () => "refused"))
      assert.strictEqual(after, "refused")
    }))
})

describe("starting", () => {
  it.scopedLive("refuses to start without API keys outside sandbox mode, with a one-line reason", () =>
    Effect.gen(function*() {
      const failed = yield* Effect.flip(Layer.build(Server.layer({ ...ServerConfig.defaults, port: 0, apiKeys: [], sandbox: false })))
      assert.strictEqual(failed._tag, "StartupError")
      const base = yield* Effect.console
      const lines: Array<string> = []
      const capture = { ...base, error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" "))) }
      const exit = yield* Main.run([]).pipe(
        Effect.withConsole(capture as Console.Console),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_LOG_LEVEL", "OFF"]]))),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /^refundkit-server: no API keys: set REFUNDKIT_API_KEYS/)
      assert.notInclude(lines[0]!, "\n")

      const usage: Array<string> = []
      const usageConsole = { ...base, error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void usage.push(args.join(" "))) }
      const badFlag = yield* Main.run(["--port", "http"]).pipe(Effect.withConsole(usageConsole as Console.Console), Effect.exit)
      assert.isTrue(Exit.isFailure(badFlag))
      assert.match(usage[0]!, /--port must be a port number/)

      const badLevel: Array<string> = []
      const levelConsole = { ...base, error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void badLevel.push(args.join(" "))) }
      yield* Main.run([]).pipe(
        Effect.withConsole(levelConsole as Console.Console),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_LOG_LEVEL", "loud"]]))),
        Effect.exit
      )
      assert.strictEqual(badLevel.length, 1)
      assert.match(badLevel[0]!, /^refundkit-server: invalid configuration: .*REFUNDKIT_LOG_LEVEL/)
    }))

  it.scopedLive("sandbox mode generates a key and prints the docs URL and a curl example with it", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const text = Server.banner(gw.info)
      const key = Redacted.value(Option.getOrThrow(gw.info.sandboxKey))
      assert.match(key, /^rk_sandbox_[0-9a-f]{32}$/)
      assert.include(text, `${gw.info.url}/docs`)
      assert.include(text, `curl -sS -X POST ${gw.info.url}/v1/refunds`)
      assert.include(text, `Authorization: Bearer ${key}`)
    }))
})

describe("/readyz when the ledger stops answering", () => {
  it.scopedLive("answers 503 not_ready within a few seconds instead of hanging", () =>
    Effect.gen(function*() {
      const dir = yield* Gateway.tempDir
      // The ledger as a blackholed database looks to the gateway: `ready` never completes.
      const hanging = Layer.effectContext(
        Effect.map(Effect.context<Ledger | LedgerSql.SqlLedger.SqlLedger>(), (ctx) =>
          Context.add(ctx, LedgerSql.SqlLedger.SqlLedger, { ...Context.get(ctx, LedgerSql.SqlLedger.SqlLedger), ready: Effect.never }))
      ).pipe(Layer.provide(LedgerSql.layerSqlite(`${dir}/ledger.db`)))
      const gw = yield* Gateway.start({ server: { stack: { ledger: hanging } } as never })
      const started = Date.now()
      const ready = yield* gw.fetch("GET", "/readyz", { auth: false }).pipe(Effect.timeout("10 seconds"), Effect.option)
      assert.isTrue(ready._tag === "Some", `/readyz still had not answered after ${Date.now() - started} ms`)
      if (ready._tag === "Some") {
        assert.strictEqual(ready.value.status, 503, ready.value.text)
        assert.strictEqual(ready.value.body.error.code, "not_ready")
      }
    }), { timeout: 30_000 })
})

/**
 * Runs the gateway's entry point with these flags and settings, which must refuse to start,
 * and returns what it printed on stderr (one line).
 */
const refusedAtStart = (argv: ReadonlyArray<string>, settings: ReadonlyArray<readonly [string, string]>) =>
  Effect.gen(function*() {
    const base = yield* Effect.console
    const lines: Array<string> = []
    const capture = { ...base, error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" "))) }
    const exit = yield* Main.run(["--port", "0", ...argv]).pipe(
      Effect.withConsole(capture as Console.Console),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_LOG_LEVEL", "OFF"], ["REFUNDKIT_SYNC_INTERVAL", "off"], ...settings]))),
      Effect.timeout("20 seconds"),
      Effect.exit
    )
    assert.isTrue(Exit.isFailure(exit), "the gateway started")
    assert.strictEqual(lines.length, 1, lines.join("\n"))
    return lines[0]!
  })

describe("settings refused at start", () => {
  const startWith = (settings: ReadonlyArray<readonly [string, string]>) =>
    refusedAtStart(["--ledger", ":memory:"], [["REFUNDKIT_API_KEYS", "a-key"], ...settings])

  it.scopedLive("a provider named in REFUNDKIT_PROVIDERS without its settings is named with what it lacks, not as \"<redacted>\"", () =>
    Effect.gen(function*() {
      const line = yield* startWith([["REFUNDKIT_PROVIDERS", "exirom"], ["REFUNDKIT_EXIROM_MID", "m-1"]])
      assert.include(line, "REFUNDKIT_PROVIDERS: exirom is enabled but not configured (missing REFUNDKIT_EXIROM_MERCHANT_KEY, REFUNDKIT_EXIROM_MERCHANT_SECRET)")
      assert.notInclude(line, "<redacted>")
    }))

  it.scopedLive("a duration written without its unit is named with the rule and an example", () =>
    Effect.gen(function*() {
      const line = yield* startWith([["REFUNDKIT_CALL_TIMEOUT", "5"]])
      assert.strictEqual(line, `refundkit-server: invalid configuration: REFUNDKIT_CALL_TIMEOUT: must be a duration with its unit, such as "30 seconds" or "500 millis", got "5"`)
    }))
})

describe("API keys outside printable ASCII", () => {
  it.scopedLive("are refused at start, naming the key, rather than accepted and never matched", () =>
    Effect.gen(function*() {
      const line = yield* refusedAtStart(["--ledger", ":memory:"], [["REFUNDKIT_API_KEYS", "plain-key,clé-de-prod"]])
      assert.match(line, /REFUNDKIT_API_KEYS/)
      assert.match(line, /key 2 has a character outside printable ASCII/)
    }))
})

describe("--ledger", () => {
  it.scopedLive("a value the ledger refuses is named as the flag, not as REFUNDKIT_LEDGER", () =>
    Effect.gen(function*() {
      const line = yield* refusedAtStart(["--sandbox", "--ledger", "mysql://db.example/refunds"], [])
      assert.include(line, "--ledger")
      assert.notInclude(line, "REFUNDKIT_LEDGER")
    }))
})

describe("invalid_request messages outside create", () => {
  it.scopedLive("a bad list cursor and an unreadable callback do not speak of a refund request not sent", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const list = yield* gw.fetch("GET", "/v1/refunds?cursor=not-a-cursor")
      assert.strictEqual(list.status, 400, list.text)
      assert.strictEqual(list.body.error.issues[0].path, "cursor")
      assert.notMatch(list.body.error.message, /refund request|was not sent|send it again/, list.body.error.message)
      const hook = yield* gw.fetch("POST", "/v1/webhooks/exirom", { body: "not json", auth: false })
      assert.strictEqual(hook.status, 400, hook.text)
      assert.strictEqual(hook.body.error.code, "webhook_invalid")
      assert.notMatch(hook.body.error.message, /refund request|was not sent|send it again/, hook.body.error.message)
    }))
})

/** A logfmt line's pairs: bare values, or JSON-quoted ones. */
const parseLogfmt = (line: string): Record<string, string> => {
  const pairs: Record<string, string> = {}
  for (const match of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) pairs[match[1]!] = match[2]!.startsWith("\"") ? JSON.parse(match[2]!) as string : match[2]!
  return pairs
}

describe("the access log", () => {
  it.effect("follows REFUNDKIT_LOG_LEVEL and REFUNDKIT_LOG_FORMAT: off above INFO, in the log's own format", () =>
    Effect.gen(function*() {
      const accessLog = (env: ReadonlyArray<readonly [string, string]>) =>
        Effect.map(Effect.withConfigProvider(ServerConfig.config, ConfigProvider.fromMap(new Map(env))), (c) => c.accessLog)
      assert.strictEqual(yield* accessLog([]), "json")
      assert.strictEqual(yield* accessLog([["REFUNDKIT_LOG_FORMAT", "logfmt"]]), "logfmt")
      assert.strictEqual(yield* accessLog([["REFUNDKIT_LOG_FORMAT", "pretty"], ["REFUNDKIT_LOG_LEVEL", "DEBUG"]]), "pretty")
      for (const level of ["WARN", "ERROR", "FATAL", "OFF"]) assert.strictEqual(yield* accessLog([["REFUNDKIT_LOG_LEVEL", level]]), false, level)
      assert.strictEqual(yield* accessLog([["REFUNDKIT_ACCESS_LOG", "false"]]), false)
    }))

  it.scopedLive("writes logfmt lines when the log is logfmt, quoting what would split a value", () =>
    Effect.gen(function*() {
      const stdout = yield* Gateway.captureStdout
      const gw = yield* Gateway.start({ server: { accessLog: "logfmt" } })
      const created = yield* gw.fetch("POST", "/v1/refunds", { body: Gateway.exiromRefund(), headers: { "idempotency-key": Gateway.key(), "x-request-id": 'odd"id=1' } })
      assert.strictEqual(created.status, 201, created.text)
      // Lines go out at the end of the event-loop turn.
      const find = () => stdout.text().split("\n").find((l) => l.includes("requestId=\"odd"))
      yield* eventually(() => find() !== undefined, "the request's log line was written")
      const line = find()
      assert.isFalse(line!.startsWith("{"), line)
      assert.deepInclude(parseLogfmt(line!), { level: "INFO", message: "request", requestId: 'odd"id=1', method: "POST", path: "/v1/refunds", status: "201" })
    }))

  it.scopedLive("the general log has the access log's shape: timestamp, level, message, then its annotations as fields", () =>
    Effect.gen(function*() {
      const stdout = yield* Gateway.captureStdout
      for (const format of ["json", "logfmt"] as const) {
        yield* Effect.logWarning("could not count", Redacted.make("secret-value-123")).pipe(
          Effect.annotateLogs({ requestId: "r-9", message: "an annotation cannot take the message's place" }),
          Effect.provide(Main.loggerLayer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_LOG_FORMAT", format]])))
        )
      }
      yield* Effect.zipRight(Effect.logError("failed"), Effect.logError("with a cause", Cause.die(new Error("boom")))).pipe(
        Effect.annotateLogs("requestId", "r-10"),
        Effect.provide(Main.loggerLayer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_LOG_FORMAT", "json"]])))
      )
      const lines = stdout.text().split("\n").filter((l) => l.includes("could not count") || l.includes("failed") || l.includes("with a cause"))
      const json = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
      assert.deepStrictEqual(Object.keys(json[0]!), ["timestamp", "level", "message", "requestId"], lines[0])
      assert.deepInclude(json[0], { level: "WARN", message: "could not count <redacted>", requestId: "r-9" })
      assert.notInclude(stdout.text(), "secret-value-123")
      for (const line of json) for (const nested of ["logLevel", "annotations", "spans", "fiberId"]) assert.notProperty(line, nested)
      assert.deepInclude(json.find((l) => l["message"] === "failed"), { level: "ERROR", requestId: "r-10" }, lines.join("\n"))
      const caused = json.find((l) => l["message"] === "with a cause")
      assert.deepInclude(caused, { level: "ERROR", requestId: "r-10" })
      assert.include(String(caused?.["cause"]), "boom")
      const logfmt = lines.find((l) => !l.startsWith("{"))
      assert.isDefined(logfmt, stdout.text())
      assert.deepInclude(parseLogfmt(logfmt!), { level: "WARN", message: "could not count <redacted>", requestId: "r-9" })
      assert.notInclude(logfmt!, "fiber=")
    }))

  it("json: the line is JSON.stringify of the entry's fields, in order, whatever they hold", () => {
    const at = new Date("2026-12-06T08:01:02.345Z")
    const entries = [
      { requestId: "r-1", method: "POST", url: "/v1/refunds", status: 201, totalMillis: 12.345, timing: { millis: 3.2, calls: 1 }, providerMillis: 3.26 },
      { requestId: "quote\"back\\slash\u2028", method: "GET", url: "/v1/refunds/rfd_1?token=secret", status: 404, totalMillis: 0, timing: { millis: 0, calls: 0 }, providerMillis: 0 },
      { requestId: "r-2", method: "-", url: "-", status: 400, totalMillis: Number.NaN, timing: { millis: 0, calls: 2 }, providerMillis: -0, clientGone: true },
      { requestId: "r-3", method: "POST", url: "/v1/refunds", status: 502, totalMillis: 1e21, timing: { millis: 0, calls: 3 }, providerMillis: Infinity, clientGone: false }
    ]
    for (const entry of entries) {
      const expected = JSON.stringify({
        timestamp: at.toISOString(),
        level: "INFO",
        message: "request",
        requestId: entry.requestId,
        method: entry.method,
        path: entry.url.split("?")[0],
        status: entry.status,
        durationMs: Math.round(entry.totalMillis * 10) / 10,
        providerMs: Math.round(entry.providerMillis * 10) / 10,
        providerCalls: entry.timing.calls,
        ...(entry.clientGone === true ? { clientGone: true } : {})
      })
      assert.strictEqual(RequestMiddleware.formatRequest("json", entry, at), `${expected}\n`)
    }
  })

  it("pretty: one readable line per request", () => {
    const entry = { requestId: "r-1", method: "GET", url: "/v1/refunds?limit=2", status: 200, totalMillis: 3.14, timing: { millis: 0, calls: 0 }, providerMillis: 0 }
    assert.strictEqual(
      RequestMiddleware.formatRequest("pretty", entry, new Date("2026-12-06T08:01:02.345Z")),
      '[08:01:02.345] INFO request GET "/v1/refunds" 200 3.1ms (provider 0ms, 0 calls) requestId=r-1\n'
    )
  })
})

describe("REFUNDKIT_SYNC_INTERVAL of zero", () => {
  it.effect("turns the loop off in every spelling, as \"0\" does, rather than sweeping back to back", () =>
    Effect.gen(function*() {
      for (const interval of ["0", "0 seconds", "0 millis"]) {
        const config = yield* ServerConfig.config.pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REFUNDKIT_SYNC_INTERVAL", interval]])))
        )
        assert.isUndefined(config.sync, `REFUNDKIT_SYNC_INTERVAL=${interval} started a loop with no pause between sweeps`)
      }
    }))
})

describe("the port setting", () => {
  it.effect("REFUNDKIT_PORT, else the platform's PORT, else 8787: a bad value is named alone", () =>
    Effect.gen(function*() {
      const read = (env: ReadonlyArray<readonly [string, string]>) =>
        Effect.either(Effect.withConfigProvider(ServerConfig.config, ConfigProvider.fromMap(new Map([["REFUNDKIT_SYNC_INTERVAL", "off"], ...env]))))
      const portOf = (env: ReadonlyArray<readonly [string, string]>) => Effect.map(read(env), (r) => (r._tag === "Right" ? r.right.port : String(r.left)))
      assert.strictEqual(yield* portOf([]), 8787)
      assert.strictEqual(yield* portOf([["PORT", "3000"]]), 3000)
      assert.strictEqual(yield* portOf([["REFUNDKIT_PORT", "9000"], ["PORT", "3000"]]), 9000)
      // The platform's PORT is not read when REFUNDKIT_PORT is set, so it cannot break the start.
      assert.strictEqual(yield* portOf([["REFUNDKIT_PORT", "9000"], ["PORT", "abc"]]), 9000)
      const bad = String(yield* portOf([["PORT", "abc"]]))
      assert.include(bad, "PORT")
      assert.include(bad, "must be a port number from 0 to 65535")
      assert.notInclude(bad, "REFUNDKIT_PORT", "a bad PORT was reported as a missing REFUNDKIT_PORT")
      assert.include(String(yield* portOf([["REFUNDKIT_PORT", "70000"]])), "REFUNDKIT_PORT")
    }))
})
