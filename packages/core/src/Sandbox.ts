/**
 * What every provider sandbox shares: the fault model (latency, 5xx, connection
 * reset, malformed or schema-violating bodies, rate limiting, hangs, lost responses,
 * expired tokens), the `/__sandbox/*` control routes, request counting, and serving
 * an `HttpApp` on 127.0.0.1. Each plugin's `./sandbox` builds its provider's API on
 * top of this.
 *
 * Needs `@effect/platform-node` (an optional peer dependency of core), and only this
 * module does.
 *
 * @since 0.1.0
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"

/**
 * One way a sandbox can misbehave.
 *
 * @since 0.1.0
 */
export const Fault = Schema.Union(
  Schema.TaggedStruct("Latency", { millis: Schema.NonNegativeInt }),
  Schema.TaggedStruct("ServerError", {
    status: Schema.Int.pipe(Schema.between(500, 599)),
    /** Sent as `Retry-After`: a server down for a time, which says when to come back. */
    retryAfterSeconds: Schema.optional(Schema.NonNegativeInt)
  }),
  Schema.TaggedStruct("Reset", {}),
  /**
   * A 200 body that is not JSON. With `afterProcessing` the request is handled first (what it
   * asks is done) and only its answer is replaced (since 0.6.0): a provider that applied a
   * request and answered in words the plugin cannot read, as `LostResponse` is one whose
   * answer never arrived. Without it, nothing is done.
   */
  Schema.TaggedStruct("Malformed", { afterProcessing: Schema.optional(Schema.Boolean) }),
  /** A 200 JSON body of the wrong shape (`ServeOptions.schemaViolation`); `afterProcessing` as for `Malformed`. */
  Schema.TaggedStruct("SchemaViolation", { afterProcessing: Schema.optional(Schema.Boolean) }),
  Schema.TaggedStruct("RateLimited", { retryAfterSeconds: Schema.NonNegativeInt }),
  Schema.TaggedStruct("Hang", { millis: Schema.NonNegativeInt }),
  Schema.TaggedStruct("LostResponse", {}),
  Schema.TaggedStruct("ExpiredToken", {})
).annotations({ identifier: "SandboxFault" })

/**
 * @since 0.1.0
 */
export type Fault = typeof Fault.Type

/**
 * When a fault applies: to requests on `route` (the sandbox's name for an endpoint,
 * e.g. "auth", "refund"; "*" for all), the next `times` matching requests (0: every
 * one), each with `probability` (default 1).
 *
 * @since 0.1.0
 */
export const FaultRule = Schema.Struct({
  fault: Fault,
  route: Schema.optionalWith(Schema.String, { default: () => "*" }),
  times: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 1 }),
  probability: Schema.optional(Schema.Number.pipe(Schema.between(0, 1)))
}).annotations({ identifier: "SandboxFaultRule" })

/**
 * @since 0.1.0
 */
export type FaultRule = typeof FaultRule.Type

/**
 * The faults a sandbox will inject, and the random source that decides probabilistic ones.
 *
 * @since 0.1.0
 */
export interface Faults {
  readonly inject: (rule: typeof FaultRule.Encoded) => Effect.Effect<void>
  readonly clear: Effect.Effect<void>
  /** Reseeds the random source so a fault storm is repeatable. */
  readonly seed: (seed: number) => Effect.Effect<void>
  /** The latency to add and the fault (other than latency) to apply to one request on `route`. */
  readonly pick: (route: string) => Effect.Effect<{ readonly latency: number; readonly fault: Option.Option<Fault> }>
}

// mulberry32: small, fast and seedable; the fault storm must be reproducible.
const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A fault schedule, empty to start with.
 *
 * @since 0.1.0
 */
export const makeFaults = (seed = 1): Faults => {
  const rules: Array<{ rule: FaultRule; remaining: number }> = []
  let next = random(seed)
  const decode = Schema.decodeSync(FaultRule)
  return {
    inject: (rule) => Effect.sync(() => void rules.push({ rule: decode(rule), remaining: decode(rule).times })),
    clear: Effect.sync(() => void rules.splice(0, rules.length)),
    seed: (value) => Effect.sync(() => void (next = random(value))),
    pick: (route) =>
      Effect.sync(() => {
        let latency = 0
        let fault = Option.none<Fault>()
        for (let i = 0; i < rules.length; i++) {
          const entry = rules[i]!
          if (entry.rule.route !== "*" && entry.rule.route !== route) continue
          if (entry.rule.fault._tag !== "Latency" && Option.isSome(fault)) continue
          if (entry.rule.probability !== undefined && next() >= entry.rule.probability) continue
          if (entry.rule.fault._tag === "Latency") latency += entry.rule.fault.millis
          else fault = Option.some(entry.rule.fault)
          if (entry.rule.times > 0 && --entry.remaining === 0) {
            rules.splice(i, 1)
            i--
          }
        }
        return { latency, fault }
      })
  }
}

/**
 * What a sandbox counts, as `GET /__sandbox/stats` shows it: requests per route, and
 * the provider-specific tallies (refunds performed per target, ...).
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly requests: Readonly<Record<string, number>>
  /** Refunds the simulated provider actually performed: the number that proves no double refund. */
  readonly refundsPerformed: number
  readonly [extra: string]: unknown
}

/**
 * What a plugin's sandbox tells the shared server.
 *
 * @since 0.1.0
 */
export interface ServeOptions {
  readonly port?: number | undefined
  readonly host?: string | undefined
  /** The route name of a request path ("auth", "refund", ...), used by fault rules and counts. */
  readonly routeOf: (path: string) => string
  /** Invalidates every token issued so far (the `ExpiredToken` fault). */
  readonly expireTokens: Effect.Effect<void>
  /** Provider-specific tallies for `/__sandbox/stats`. */
  readonly stats: Effect.Effect<{ readonly refundsPerformed: number; readonly [extra: string]: unknown }>
  /** A 200 body that is valid JSON of the wrong shape for this provider. */
  readonly schemaViolation?: unknown
  /**
   * The provider's own control routes beside the shared ones, by method and path (`"POST /__sandbox/chargeback"`):
   * what a test in another process (the CLI's `refundkit sandbox`) asks the simulated provider to do that its API
   * offers no way to ask (Exirom's chargeback of a refund it made). Not counted, never faulted; a failure is
   * answered 400 with its words, as the shared routes' are (since 0.6.0).
   */
  readonly controls?: Readonly<Record<string, Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>>> | undefined
}

/**
 * A running sandbox.
 *
 * @since 0.1.0
 */
export interface Server {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly faults: Faults
  readonly stats: Effect.Effect<Stats>
  readonly expireTokens: Effect.Effect<void>
}

/**
 * What every plugin's sandbox handle offers, so the testkit, the CLI and the
 * benchmarks can drive any of them.
 *
 * @since 0.1.0
 */
export interface Handle extends Server {
  readonly provider: string
  /** The base URL the plugin should be configured with. */
  readonly baseUrl: string
  /** The environment lines that point the plugin at this sandbox (secrets included: sandbox values only). */
  readonly env: Readonly<Record<string, string>>
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

// Loaded when a sandbox starts, not with this module: every plugin's `./sandbox` imports
// this one, and a CLI command that starts no sandbox would otherwise load Node's whole
// HTTP server stack (ws, multipart, mime: about 15 ms of a short command's start).
const loadNodeServer = Effect.promise(() =>
  Promise.all([import("@effect/platform-node/NodeHttpServer"), import("@effect/platform-node/NodeHttpServerRequest")])
)

const destroySocket = (toIncomingMessage: typeof NodeHttpServerRequest.toIncomingMessage, request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => toIncomingMessage(request).socket.destroy())

/**
 * Serves a provider's simulated API on 127.0.0.1 (an ephemeral port unless one is
 * given), with fault injection in front of it and the control routes beside it.
 *
 * @since 0.1.0
 */
// Note for sandbox authors: request handlers run uninterruptibly, and fibers they fork
// inherit that. Wrap background work a handler starts (a delayed callback) in
// `Effect.interruptible`, or it will hang timeouts and scope closing.
export const serve = <E>(
  app: HttpApp.Default<E, never>,
  options: ServeOptions
): Effect.Effect<Server, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const [NodeHttpServer, { toIncomingMessage }] = yield* loadNodeServer
    const faults = makeFaults()
    const requests: Record<string, number> = {}
    const stats: Effect.Effect<Stats> = Effect.map(options.stats, (extra) => ({ ...extra, requests: { ...requests } }))

    const control = (request: HttpServerRequest.HttpServerRequest, path: string) =>
      Effect.gen(function*() {
        if (path === "/__sandbox/stats" && request.method === "GET") return json(yield* stats)
        // The request counts alone: the provider tallies grow with every target ever refunded,
        // and a benchmark polling them several times a second would load the machine it measures.
        if (path === "/__sandbox/requests" && request.method === "GET") return json({ requests: { ...requests } })
        if (path === "/__sandbox/faults" && request.method === "DELETE") {
          yield* faults.clear
          return json({ cleared: true })
        }
        if (path === "/__sandbox/faults" && request.method === "POST") {
          const body = yield* request.json
          const rules = yield* Schema.decodeUnknown(Schema.Union(FaultRule, Schema.Array(FaultRule)))(body)
          for (const rule of Array.isArray(rules) ? rules : [rules]) yield* faults.inject(Schema.encodeSync(FaultRule)(rule))
          return json({ injected: true })
        }
        if (path === "/__sandbox/seed" && request.method === "POST") {
          const body = yield* Schema.decodeUnknown(Schema.Struct({ seed: Schema.Int }))(yield* request.json)
          yield* faults.seed(body.seed)
          return json({ seeded: body.seed })
        }
        if (path === "/__sandbox/expire-tokens" && request.method === "POST") {
          yield* options.expireTokens
          return json({ expired: true })
        }
        const own = options.controls?.[`${request.method} ${path}`]
        if (own !== undefined) return yield* own
        return json({ error: "unknown sandbox control route" }, 404)
      }).pipe(Effect.catchAll((error) => Effect.succeed(json({ error: String(error) }, 400))))

    const handler = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://sandbox").pathname
      if (path.startsWith("/__sandbox/")) return yield* control(request, path)
      const route = options.routeOf(path)
      requests[route] = (requests[route] ?? 0) + 1
      const { fault, latency } = yield* faults.pick(route)
      if (latency > 0) yield* Effect.sleep(Duration.millis(latency))
      if (Option.isNone(fault)) return yield* app
      switch (fault.value._tag) {
        case "ServerError":
          return json(
            { message: "sandbox: injected server error" },
            fault.value.status,
            fault.value.retryAfterSeconds === undefined ? undefined : { "retry-after": String(fault.value.retryAfterSeconds) }
          )
        case "Reset":
          yield* destroySocket(toIncomingMessage, request)
          return HttpServerResponse.empty({ status: 500 })
        case "Malformed":
          if (fault.value.afterProcessing === true) yield* app
          return HttpServerResponse.text("<html><body>502 Bad Gateway</body></html>{", { status: 200, contentType: "application/json" })
        case "SchemaViolation":
          if (fault.value.afterProcessing === true) yield* app
          return json(options.schemaViolation ?? { unexpected: "shape" })
        case "RateLimited":
          return json({ message: "Too Many Requests" }, 429, { "retry-after": String(fault.value.retryAfterSeconds) })
        case "Hang":
          yield* Effect.sleep(Duration.millis(fault.value.millis))
          yield* destroySocket(toIncomingMessage, request)
          return HttpServerResponse.empty({ status: 500 })
        case "LostResponse": {
          const response = yield* app
          yield* destroySocket(toIncomingMessage, request)
          return response
        }
        case "ExpiredToken":
          yield* options.expireTokens
          return yield* app
        case "Latency":
          return yield* app
      }
    })

    const server = yield* NodeHttpServer.make(() => Http.createServer(), { port: options.port ?? 0, host: options.host ?? "127.0.0.1" })
    yield* HttpServer.serveEffect(handler).pipe(Effect.provideService(HttpServer.HttpServer, server))
    const address = server.address
    const port = address._tag === "TcpAddress" ? address.port : 0
    const host = address._tag === "TcpAddress" ? address.hostname : "127.0.0.1"
    return { url: `http://${host}:${port}`, port, faults, stats, expireTokens: options.expireTokens }
  })

/**
 * The control client for a sandbox running in another process (the CLI's
 * `refundkit sandbox`, benchmarks): the same operations over `/__sandbox/*`.
 *
 * @since 0.1.0
 */
export const controlPaths = {
  stats: "/__sandbox/stats",
  requests: "/__sandbox/requests",
  faults: "/__sandbox/faults",
  seed: "/__sandbox/seed",
  expireTokens: "/__sandbox/expire-tokens"
} as const

/**
 * Reads a request body as text and JSON together, for sandboxes that must see both
 * (signature checks are over bytes).
 *
 * @since 0.1.0
 */
export const bodyText = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.text)

/**
 * Applies `HttpApp.toHandled`-free error handling for sandboxes: any defect becomes a
 * 500 with a JSON body, as a real provider's edge would answer.
 *
 * @since 0.1.0
 */
export const orServerError = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  app.pipe(Effect.catchAllCause(() => Effect.succeed(json({ message: "Internal Server Error" }, 500))))
