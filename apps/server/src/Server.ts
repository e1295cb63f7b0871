/**
 * The gateway as a Layer: sandboxes (in sandbox mode), the refund stack, the HTTP
 * server with the API, `/openapi.json`, `/docs`, the request middleware and the
 * background sync loop. `refundkit-server` and `refundkit serve` both start this.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiScalar from "@effect/platform/HttpApiScalar"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Api } from "@refundkit/api"
import { ConfigurationError } from "@refundkit/core/RefundError"
import type * as Sandbox from "@refundkit/core/Sandbox"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as ApiKeys from "./ApiKeys.js"
import * as ClientErrors from "./ClientErrors.js"
import * as CreateRoute from "./CreateRoute.js"
import * as GatewayMetrics from "./GatewayMetrics.js"
import * as Handlers from "./Handlers.js"
import * as Installed from "./Installed.js"
import * as ProviderClient from "./ProviderClient.js"
import * as RequestMiddleware from "./RequestMiddleware.js"
import * as Sandboxes from "./Sandboxes.js"
import * as ServerConfig from "./ServerConfig.js"
import * as Stack from "./Stack.js"
import * as SyncLoop from "./SyncLoop.js"

/**
 * The server's settings plus what embedding code (the CLI, tests) may replace.
 *
 * @since 0.1.0
 */
export interface Options extends ServerConfig.ServerConfig {
  /** Plugins, ledger and Refunds options of the stack; defaults come from the environment. */
  readonly stack?: Stack.Options | undefined
  /**
   * Who answers `POST /v1/refunds`: `"direct"` (default), the lean route in `CreateRoute`,
   * or `"httpapi"`, the HttpApi handler with the same logic (tests keep the two alike).
   */
  readonly createRoute?: "direct" | "httpapi" | undefined
}

/**
 * Where the started gateway listens, and in sandbox mode its key and sandboxes.
 *
 * @since 0.1.0
 */
export interface Info {
  /** `http://<host>:<port>` */
  readonly url: string
  readonly port: number
  readonly docsUrl: string
  readonly openApiUrl: string
  /** The key generated for sandbox mode; shown once, accepted until the process ends. */
  readonly sandboxKey: Option.Option<Redacted.Redacted<string>>
  readonly sandboxes: ReadonlyArray<Sandbox.Handle>
  /** The plugins this gateway was built with, for examples. */
  readonly plugins: ReadonlyArray<Installed.Plugin>
}

/**
 * The started gateway.
 *
 * @since 0.1.0
 */
export class Started extends Context.Tag("@refundkit/server/Started")<Started, Info>() {}

/**
 * A reason to refuse to start that is not a configuration value's fault alone. `setting` names
 * the setting whose absence is the reason, when it is one (`REFUNDKIT_API_KEYS`), so that a
 * caller can tell a missing setting from a failure (`refundkit serve` exits 2 for it, as for any
 * other setting).
 *
 * @since 0.1.0
 */
export class StartupError extends Schema.TaggedError<StartupError>()("StartupError", {
  message: Schema.String,
  /** @since 0.6.0 */
  setting: Schema.optional(Schema.String)
}) {}

/**
 * Why the gateway did not start.
 *
 * @since 0.1.0
 */
export type StartError = StartupError | Stack.StackError | ServeError

const displayHost = (host: string) => (host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host)

/**
 * The gateway. It refuses to start without API keys outside sandbox mode; in sandbox
 * mode it generates a key (see {@link Info.sandboxKey}).
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Started, StartError> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const plugins = options.stack?.plugins ?? Installed.plugins
      const sandboxKey = options.sandbox ? Option.some(ApiKeys.generate()) : Option.none()
      const keys = [...options.apiKeys, ...Option.toArray(sandboxKey)]
      if (keys.length === 0) {
        return yield* new StartupError({
          message: "no API keys: set REFUNDKIT_API_KEYS to one or more comma separated keys, or run with --sandbox (REFUNDKIT_SANDBOX=1)",
          setting: "REFUNDKIT_API_KEYS"
        })
      }
      const running = options.sandbox ? Option.some(yield* Sandboxes.start(plugins)) : Option.none<Sandboxes.Running>()
      const stackLayer = Stack.layer({ defaultRateLimitWait: "10 seconds", ...options.stack, plugins })
      const stack = Option.match(running, {
        onNone: () => stackLayer,
        onSome: (sandboxes) => stackLayer.pipe(Layer.provide(Layer.setConfigProvider(sandboxes.configProvider)))
      })

      const metrics = yield* GatewayMetrics.make
      const observed = { ...options, metrics }
      const nodeServer = Http.createServer()
      nodeServer.on("clientError", ClientErrors.listener({ maxHeaderBytes: Http.maxHeaderSize, accessLog: options.accessLog, metrics }))
      const groups = Layer.mergeAll(Handlers.refunds(plugins.map((plugin) => plugin.id)), Handlers.providers, Handlers.metrics).pipe(
        Layer.provide(ApiKeys.layer(keys)),
        Layer.provide(Layer.succeed(GatewayMetrics.GatewayMetrics, metrics))
      )
      const api = HttpApiBuilder.api(Api.Api).pipe(Layer.provide([groups, Handlers.webhooks, Handlers.health]))
      const http = HttpApiBuilder.serve(RequestMiddleware.make(observed)).pipe(
        Layer.provide(HttpApiScalar.layer({ path: "/docs" })),
        Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
        Layer.provide(RequestMiddleware.apiLayer(options.bodyLimitBytes)),
        Layer.provide(api),
        // The router refuses a path segment over 100 characters by default, which answered a
        // long refund id as an unknown route (405 "This path takes GET only" to a GET). The request
        // line is already bounded by Node's header limit, so no segment is refused for its length.
        Layer.provide(HttpRouter.setRouterConfig({ maxParamLength: Http.maxHeaderSize }))
      )
      const started = Layer.scoped(
        Started,
        Effect.gen(function*() {
          const server = yield* HttpServer.HttpServer
          const port = server.address._tag === "TcpAddress" ? server.address.port : options.port
          const url = `http://${displayHost(options.host)}:${port}`
          // Runs before the server closes: in-flight requests get the grace period, then their connections are cut.
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => void setTimeout(() => nodeServer.closeAllConnections(), Duration.toMillis(options.shutdownGrace)).unref())
          )
          yield* Effect.forkScoped(ProviderClient.preload)
          return {
            url,
            port,
            docsUrl: `${url}/docs`,
            openApiUrl: `${url}/openapi.json`,
            sandboxKey,
            sandboxes: Option.match(running, { onNone: () => [], onSome: (r) => r.handles }),
            plugins
          }
        })
      )
      const listen = { port: options.port, host: options.host }
      const server = options.createRoute === "httpapi"
        ? NodeHttpServer.layer(() => nodeServer, listen)
        : Layer.provideMerge(serverWithRoute(nodeServer, listen, CreateRoute.make({ ...observed, apiKeys: keys })), NodeHttpServer.layerContext)
      const sync = options.sync === undefined ? Layer.empty : SyncLoop.layer(options.sync)
      // No tracer is ever installed, yet every request would still build an HTTP server span
      // and every SQL statement a span of its own: about a tenth of the gateway's CPU for
      // nothing. Request fibers inherit these settings from the layer that starts the server.
      return Layer.merge(http, started).pipe(
        HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(server),
        Layer.provide(sync),
        Layer.provide(stack),
        Layer.provide(Layer.setTracerEnabled(false))
      )
    })
  )

/**
 * Node's HTTP server answering one route directly and handing every other request to
 * the platform's handler for the HttpApi app.
 */
const serverWithRoute = <R>(
  nodeServer: Http.Server,
  listen: Net.ListenOptions,
  makeRoute: Effect.Effect<CreateRoute.Route, never, R>
): Layer.Layer<HttpServer.HttpServer, ServeError, R> =>
  Layer.scoped(
    HttpServer.HttpServer,
    Effect.gen(function*() {
      const route = yield* makeRoute
      const base = yield* NodeHttpServer.make(() => nodeServer, listen)
      return HttpServer.make({
        address: base.address,
        serve: (app, middleware) =>
          Effect.gen(function*() {
            const handler = yield* (middleware === undefined ? NodeHttpServer.makeHandler(app) : NodeHttpServer.makeHandler(app, middleware))
            const onRequest = (request: Http.IncomingMessage, response: Http.ServerResponse) =>
              route.matches(request) ? route.handle(request, response) : handler(request, response)
            yield* Effect.acquireRelease(
              Effect.sync(() => nodeServer.on("request", onRequest)),
              () => Effect.sync(() => nodeServer.off("request", onRequest))
            )
          })
      })
    })
  )

/**
 * The gateway configured from the environment (see `ServerConfig.config`).
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<Started, StartError> = Layer.unwrapEffect(Effect.map(ServerConfig.config, (config) => layer(config)))

/**
 * What to print once the gateway is up: where the docs are and, in sandbox mode, the
 * generated key (printed once) and a request to paste.
 *
 * @since 0.1.0
 */
export const banner = (info: Info): string => {
  const lines = [`refundkit gateway listening on ${info.url}`, `  docs:    ${info.docsUrl}`, `  openapi: ${info.openApiUrl}`]
  if (Option.isSome(info.sandboxKey)) {
    const key = Redacted.value(info.sandboxKey.value)
    const example = info.plugins.find((p) => p.example !== undefined)?.example
    lines.push(
      "",
      `sandbox mode: ${info.sandboxes.map((s) => `${s.provider} at ${s.url}`).join(", ")}`,
      `sandbox API key (shown once): ${key}`
    )
    if (example !== undefined) {
      lines.push(
        "",
        "try it:",
        `  curl -sS -X POST ${info.url}/v1/refunds \\`,
        `    -H 'Authorization: Bearer ${key}' \\`,
        `    -H 'Content-Type: application/json' \\`,
        `    -H "Idempotency-Key: $(uuidgen 2>/dev/null || date +%s%N)" \\`,
        `    -d '${JSON.stringify(example)}'`
      )
    }
  }
  return lines.join("\n")
}

/**
 * A one-line explanation of why the gateway did not start, for the terminal.
 *
 * @since 0.1.0
 */
export const explain = (error: StartError): string => {
  if (ConfigError.isConfigError(error)) return `invalid configuration: ${ConfigurationError.fromConfigError(error).sentence}`
  switch (error._tag) {
    case "StartupError":
      return error.message
    case "ServeError": {
      const cause: unknown = error.cause
      const code = cause !== null && typeof cause === "object" && "code" in cause ? String(cause.code) : undefined
      return `could not listen${code === undefined ? "" : ` (${code})`}: ${cause instanceof Error ? cause.message : String(cause)}`
    }
    default:
      return error.message
  }
}
