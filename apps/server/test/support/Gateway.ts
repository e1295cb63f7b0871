// Starts the real gateway for a test: every installed sandbox in-process, a SQLite
// ledger in a temp file, port 0 on 127.0.0.1, and a typed client and a raw HTTP helper.
import * as Reactivity from "@effect/experimental/Reactivity"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import * as PgClient from "@effect/sql-pg/PgClient"
import { NodeHttpClient } from "@effect/platform-node"
import { ApiClient } from "@refundkit/api"
import * as AeroHubSandbox from "@refundkit/aerohub/sandbox"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import * as ExiromSandbox from "@refundkit/exirom/sandbox"
import type { Ledger } from "@refundkit/core"
import type * as Sandbox from "@refundkit/core/Sandbox"
import type { ConfigurationError, LedgerError } from "@refundkit/core/RefundError"
import * as LedgerSql from "@refundkit/ledger-sql"
import { Context, Duration, Effect, Layer, Redacted, Schedule, Scope } from "effect"
import { createHmac } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Installed from "../../src/Installed.js"
import * as Server from "../../src/Server.js"
import * as ServerConfig from "../../src/ServerConfig.js"

export const apiKey = "test-key-0123456789"

export interface Gateway {
  readonly info: Server.Info
  readonly context: Context.Context<Server.Started>
  readonly exirom: ExiromSandbox.ExiromSandbox
  readonly aerohub: AeroHubSandbox.AeroHubSandbox
  readonly airalo: AiraloSandbox.AiraloSandbox
  readonly ledgerFile: string
  /** A raw request to the gateway; the answer's status, headers and parsed body. */
  readonly fetch: (
    method: string,
    path: string,
    options?: { readonly body?: unknown; readonly headers?: Record<string, string>; readonly auth?: boolean }
  ) => Effect.Effect<{ readonly status: number; readonly headers: Record<string, string>; readonly body: any; readonly text: string }>
  readonly client: ApiClient.Client
}

/** A fresh PostgreSQL schema at REFUNDKIT_TEST_PG_URL (default the local server), dropped at the end of the scope; a URL whose connections use it. */
export const pgSchema = Effect.gen(function*() {
  const url = process.env.REFUNDKIT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const admin = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
  const schema = `rk_server_test_${process.pid}_${Date.now().toString(36)}`
  yield* Effect.acquireRelease(admin.unsafe(`CREATE SCHEMA ${schema}`), () => Effect.orDie(admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)))
  const scoped = new URL(url)
  scoped.searchParams.set("options", `-c search_path=${schema}`)
  return scoped.toString()
})

export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "refundkit-server-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

export const start = (options: {
  readonly exirom?: ExiromSandbox.Options
  readonly airalo?: AiraloSandbox.Options
  readonly server?: Partial<Server.Options>
  readonly callTimeout?: Duration.DurationInput
  /** Another instance on the same ledger file and Exirom sandbox, as gateways sharing a ledger run. */
  readonly shareWith?: Gateway
  /** The ledger instead of the SQLite file (a PostgreSQL ledger several instances share). */
  readonly ledger?: Layer.Layer<Ledger.Ledger, LedgerError | ConfigurationError>
  /** Settings over the sandboxes' own: `REFUNDKIT_<P>_BASE_URL` points a plugin at a scripted provider. */
  readonly env?: Readonly<Record<string, string>>
} = {}): Effect.Effect<Gateway, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const ledgerFile = options.shareWith?.ledgerFile ?? path.join(yield* tempDir, "ledger.db")
    const exirom = options.shareWith?.exirom ?? (yield* ExiromSandbox.make(options.exirom))
    const aerohub = options.shareWith?.aerohub ?? (yield* AeroHubSandbox.make())
    const airalo = options.shareWith?.airalo ?? (yield* AiraloSandbox.make(options.airalo))
    const withEnv = (handle: Sandbox.Handle): Sandbox.Handle => options.env === undefined ? handle : { ...handle, env: { ...handle.env, ...options.env } }
    const plugins = Installed.plugins.map((plugin) =>
      plugin.id === exirom.provider
        ? { ...plugin, sandbox: Effect.succeed(withEnv(exirom)) }
        : plugin.id === aerohub.provider
        ? { ...plugin, sandbox: Effect.succeed(withEnv(aerohub)) }
        : plugin.id === airalo.provider
        ? { ...plugin, sandbox: Effect.succeed(withEnv(airalo)) }
        : { ...plugin, sandbox: Effect.map(plugin.sandbox, withEnv) }
    )
    const serverOptions: Server.Options = {
      ...ServerConfig.defaults,
      port: 0,
      apiKeys: [Redacted.make(apiKey)],
      sandbox: true,
      sync: undefined,
      accessLog: false,
      shutdownGrace: Duration.seconds(1),
      ...options.server,
      stack: {
        plugins,
        ledger: options.ledger ?? LedgerSql.layerSqlite(ledgerFile),
        refunds: {
          callTimeout: options.callTimeout ?? "2 seconds",
          retrySchedule: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
          maxRetryAfter: "1 second"
        },
        recoveryGrace: "1 minute",
        ...options.server?.stack
      }
    }
    const context = yield* Layer.build(Server.layer(serverOptions))
    const info = Context.get(context, Server.Started)
    const httpContext = yield* Layer.build(NodeHttpClient.layerUndici)
    const http = Context.get(httpContext, HttpClient.HttpClient)
    const client = yield* ApiClient.make({ baseUrl: info.url, apiKey }).pipe(Effect.provide(httpContext))
    const fetch: Gateway["fetch"] = (method, target, request = {}) =>
      Effect.gen(function*() {
        let req = HttpClientRequest.make(method as "GET")(`${info.url}${target}`)
        if (request.auth !== false) req = HttpClientRequest.bearerToken(req, apiKey)
        if (request.headers) req = HttpClientRequest.setHeaders(req, request.headers)
        if (request.body !== undefined) {
          req = typeof request.body === "string" ? HttpClientRequest.bodyText(req, request.body, "application/json") : HttpClientRequest.bodyUnsafeJson(req, request.body)
        }
        const response = yield* http.execute(req)
        const text = yield* response.text
        let body: unknown = undefined
        try {
          body = text === "" ? undefined : JSON.parse(text)
        } catch {
          body = undefined
        }
        return { status: response.status, headers: response.headers as Record<string, string>, body, text }
      }).pipe(Effect.scoped, Effect.orDie)
    return { info, context, exirom, aerohub, airalo, ledgerFile, fetch, client }
  })

let counter = 0
export const key = (label = "k") => `${label}-${process.pid}-${Date.now()}-${++counter}`

/**
 * A callback as the Exirom sandbox signs one about a refund of `exiromRefund`'s payment (12345, 10.00 USD), with
 * its merchant secret: `refundId` is Exirom's, `requestId` ours; the plugin confirms it with Exirom's `info`.
 */
export const exiromCallback = (refundId: string, requestId: string, transactionStatus = "SUCCEED") => {
  const body = `{"transactionId":12345,"refundId":${JSON.stringify(refundId)},"requestId":${JSON.stringify(requestId)},"mid":"sandbox_mid",` +
    `"transactionStatus":${JSON.stringify(transactionStatus)},"declineCode":null,"totalAmount":10.0,"orderCurrency":"USD","processedCurrency":"USD"}`
  return { body, checksum: createHmac("sha256", "sandbox-merchant-secret").update("sandbox_mid|10.0|USD|12345").digest("base64") }
}

export const exiromRefund = (overrides: Record<string, unknown> = {}) => ({
  provider: "exirom",
  transactionId: 12345,
  amount: "10.00",
  currency: "USD",
  reason: "customer_request",
  ...overrides
})

export const airaloRefund = (iccid = "8910300000000000011") => ({
  provider: "airalo",
  iccids: [iccid],
  reason: "TRIP_CANCELLATION"
})

/** What the process writes to stdout (where the access log goes) while the scope is open; still written through. */
export const captureStdout = Effect.gen(function*() {
  const written: Array<string> = []
  const write = process.stdout.write.bind(process.stdout)
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      process.stdout.write = ((chunk: string | Uint8Array, ...rest: Array<never>) => {
        written.push(String(chunk))
        return write(chunk, ...rest)
      }) as typeof process.stdout.write
    }),
    () => Effect.sync(() => void (process.stdout.write = write))
  )
  return { text: () => written.join("") }
})
