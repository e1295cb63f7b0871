import { HttpClient, HttpClientError, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import * as ProviderHttp from "@refundkit/core/ProviderHttp"
import { Deferred, Effect, Either, Exit, Fiber, Layer, Option, Scope } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as ProviderClient from "../src/ProviderClient.js"
import { eventually } from "@refundkit/testkit/Waiting"

// A node:http server on 127.0.0.1 that answers by path and remembers what it saw.
interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly socket: number
}

interface TestServer {
  readonly url: string
  readonly seen: Array<Seen>
  /** Sockets the server has accepted so far. */
  readonly connections: () => number
  /** Sockets the server has accepted that are now closed. */
  readonly closedConnections: () => number
  /** Completed when the server sees a request to /hang closed before it answered. */
  readonly hangClosed: Deferred.Deferred<void>
}

const startServer: Effect.Effect<TestServer, never, Scope.Scope> = Effect.gen(function*() {
  const seen: Array<Seen> = []
  const socketIds = new WeakMap<object, number>()
  let connections = 0
  let closed = 0
  const hangClosed = yield* Deferred.make<void>()
  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, socket: socketIds.get(req.socket) ?? -1 })
      const path = (req.url ?? "").split("?")[0] ?? ""
      if (path === "/echo") {
        res.writeHead(200, { "content-type": "application/json", "x-reply": "pong", "set-cookie": ["a=1", "b=2"] })
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }))
      } else if (path.startsWith("/status/")) {
        const status = Number(path.slice("/status/".length))
        res.writeHead(status, { "content-type": "application/json", "retry-after": "7" })
        res.end(JSON.stringify({ status }))
      } else if (path === "/destroy") {
        // The request was read whole: the provider may have acted on it.
        req.socket.destroy()
      } else if (path === "/partial") {
        res.writeHead(200, { "content-type": "application/json", "content-length": "100" })
        res.write("{\"cut\":")
        setTimeout(() => req.socket.destroy(), 10)
      } else if (path === "/hang") {
        res.on("close", () => Deferred.unsafeDone(hangClosed, Exit.void))
      } else {
        res.writeHead(404)
        res.end()
      }
    })
  })
  // Idle sockets stay open for a minute (Node's default is 5 s, and undici closes at the hint less
  // 2 s): a socket the test sees closed was closed by the client, not by an idle timeout.
  server.keepAliveTimeout = 60_000
  server.on("connection", (socket) => {
    socketIds.set(socket, connections++)
    socket.on("close", () => void closed++)
  })
  yield* Effect.acquireRelease(
    Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
    () =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, seen, connections: () => connections, closedConnections: () => closed, hangClosed }
})

// A port nothing listens on: bound once, then released.
const freePort = Effect.async<number>((resume) => {
  const server = http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const client = ProviderClient.layer()

describe("ProviderClient", () => {
  it.scopedLive("GET with query parameters and headers: both directions, status, body", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      const response = yield* http.execute(
        HttpClientRequest.get(`${server.url}/echo?fixed=1`).pipe(
          HttpClientRequest.setUrlParams({ a: "1", b: "two words&more" }),
          HttpClientRequest.setHeader("x-custom", "hello"),
          HttpClientRequest.acceptJson
        )
      )
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers["x-reply"], "pong")
      assert.strictEqual(response.headers["content-type"], "application/json")
      assert.deepStrictEqual(Object.keys(response.cookies.cookies).sort(), ["a", "b"])
      const echoed = JSON.parse(yield* response.text)
      assert.strictEqual(echoed.method, "GET")
      assert.strictEqual(echoed.url, "/echo?fixed=1&a=1&b=two+words%26more")
      assert.strictEqual(echoed.headers["x-custom"], "hello")
      assert.strictEqual(echoed.headers.accept, "application/json")
      assert.deepStrictEqual(yield* response.json, echoed, "the body can be read again")
    }).pipe(Effect.provide(client)))

  it.scopedLive("POST bodies the plugins send: JSON, URL-encoded, text", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      const json = yield* http.execute(HttpClientRequest.post(`${server.url}/echo`).pipe(HttpClientRequest.bodyUnsafeJson({ amount: "10.00", n: 1 })))
      assert.strictEqual(json.status, 200)
      const form = yield* http.execute(
        HttpClientRequest.post(`${server.url}/echo`).pipe(
          HttpClientRequest.setUrlParam("token", "t/1"),
          HttpClientRequest.bodyUrlParams({ merchant_id: "42", encdata: "a+b=" })
        )
      )
      assert.strictEqual(form.status, 200)
      const viaSchema = yield* HttpClientRequest.post(`${server.url}/echo`).pipe(HttpClientRequest.bodyJson({ ok: true }))
      yield* http.execute(viaSchema)
      yield* http.execute(HttpClientRequest.post(`${server.url}/echo`).pipe(HttpClientRequest.bodyText("plain words")))
      const [first, second, third, fourth] = server.seen
      assert.strictEqual(first?.method, "POST")
      assert.strictEqual(first?.headers["content-type"], "application/json")
      assert.deepStrictEqual(JSON.parse(first?.body ?? ""), { amount: "10.00", n: 1 })
      assert.strictEqual(first?.headers["content-length"], String(Buffer.byteLength(first?.body ?? "")))
      assert.strictEqual(second?.url, "/echo?token=t%2F1")
      assert.strictEqual(second?.headers["content-type"], "application/x-www-form-urlencoded")
      assert.strictEqual(second?.body, "merchant_id=42&encdata=a%2Bb%3D")
      assert.strictEqual(third?.body, "{\"ok\":true}")
      assert.strictEqual(fourth?.headers["content-type"], "text/plain")
      assert.strictEqual(fourth?.body, "plain words")
    }).pipe(Effect.provide(client)))

  it.scopedLive("non-2xx statuses are answers, not failures", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      for (const status of [400, 401, 404, 429, 500, 503]) {
        const received = yield* ProviderHttp.send("test", HttpClientRequest.post(`${server.url}/status/${status}`))
        assert.strictEqual(received.status, status)
        assert.deepStrictEqual(Option.getOrUndefined(received.json), { status })
      }
      const limited = yield* ProviderHttp.send("test", HttpClientRequest.get(`${server.url}/status/429`))
      assert.strictEqual(ProviderHttp.retryAfterMillis(limited.headers), 7000)
    }).pipe(Effect.provide(client)))

  it.scopedLive("connection refused: a Transport RequestError with ECONNREFUSED, and not processed", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const http = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(http.execute(HttpClientRequest.post(`http://127.0.0.1:${port}/refund`)))
      assert.strictEqual(error._tag, "RequestError")
      assert.strictEqual(error.reason, "Transport")
      assert.strictEqual((error.cause as NodeJS.ErrnoException | undefined)?.code, "ECONNREFUSED")
      const unavailable = yield* Effect.flip(ProviderHttp.send("test", HttpClientRequest.post(`http://127.0.0.1:${port}/refund`)))
      assert.strictEqual(unavailable._tag, "ProviderUnavailable")
      assert.isFalse(unavailable.maybeProcessed)
      assert.include(unavailable.detail, "ECONNREFUSED")
    }).pipe(Effect.provide(client)))

  it.scopedLive("a URL sent before goes to the same place again, and with query parameters added they are sent", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      for (let i = 0; i < 3; i++) yield* http.execute(HttpClientRequest.get(`${server.url}/echo`))
      yield* http.execute(HttpClientRequest.get(`${server.url}/echo`).pipe(HttpClientRequest.setUrlParam("page", "2")))
      yield* http.execute(HttpClientRequest.get(`${server.url}/echo?fixed=1`))
      yield* http.execute(HttpClientRequest.get(`${server.url}/echo`))
      assert.deepStrictEqual(server.seen.map((s) => s.url), ["/echo", "/echo", "/echo", "/echo?page=2", "/echo?fixed=1", "/echo"])
    }).pipe(Effect.provide(client)))

  it.scopedLive("an invalid URL is a RequestError that was never sent", () =>
    Effect.gen(function*() {
      const http = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(http.execute(HttpClientRequest.get("not a url")))
      assert.strictEqual(error._tag, "RequestError")
      assert.strictEqual(error.reason, "InvalidUrl")
      const unavailable = yield* Effect.flip(ProviderHttp.send("test", HttpClientRequest.get("not a url")))
      assert.isFalse(unavailable.maybeProcessed)
    }).pipe(Effect.provide(client)))

  it.scopedLive("the connection cut after the request was read: maybe processed", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(http.execute(HttpClientRequest.post(`${server.url}/destroy`).pipe(HttpClientRequest.bodyUnsafeJson({ a: 1 }))))
      assert.strictEqual(error._tag, "RequestError")
      assert.strictEqual(error.reason, "Transport")
      assert.include(["UND_ERR_SOCKET", "ECONNRESET"], (error.cause as NodeJS.ErrnoException | undefined)?.code)
      const unavailable = yield* Effect.flip(ProviderHttp.send("test", HttpClientRequest.post(`${server.url}/destroy`)))
      assert.isTrue(unavailable.maybeProcessed)
      assert.strictEqual(server.seen.length, 2)
    }).pipe(Effect.provide(client)))

  it.scopedLive("a body cut short is a ResponseError: maybe processed", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(Effect.flatMap(http.execute(HttpClientRequest.get(`${server.url}/partial`)), (r) => r.text))
      assert.strictEqual(error._tag, "ResponseError")
      assert.strictEqual(error.reason, "Decode")
      assert.strictEqual(error._tag === "ResponseError" ? error.response.status : 0, 200)
      const unavailable = yield* Effect.flip(ProviderHttp.send("test", HttpClientRequest.get(`${server.url}/partial`)))
      assert.isTrue(unavailable.maybeProcessed)
      assert.include(unavailable.detail, "body could not be read")
    }).pipe(Effect.provide(client)))

  it.scopedLive("interruption (a timeout) aborts the request: the server sees it closed, later calls still work", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      const timedOut = yield* http.execute(HttpClientRequest.post(`${server.url}/hang`).pipe(HttpClientRequest.bodyUnsafeJson({ a: 1 }))).pipe(
        Effect.timeoutFail({ duration: "200 millis", onTimeout: () => "timeout" as const }),
        Effect.either
      )
      assert.deepStrictEqual(timedOut, Either.left("timeout"))
      yield* Deferred.await(server.hangClosed).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "the server never saw the request closed" }))
      assert.strictEqual(server.closedConnections(), 1, "the aborted request's socket is destroyed, not returned to the pool")
      const after = yield* http.execute(HttpClientRequest.get(`${server.url}/echo`))
      assert.strictEqual(after.status, 200)
    }).pipe(Effect.provide(client)))

  it.scopedLive("a request interrupted while queued for a connection is never sent", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = yield* HttpClient.HttpClient
      const first = yield* Effect.fork(http.execute(HttpClientRequest.post(`${server.url}/hang`)))
      yield* eventually(() => server.seen.length === 1, "the first request holds the only connection")
      const queued = yield* Effect.fork(http.execute(HttpClientRequest.post(`${server.url}/echo`)))
      // Suspended in its callback: it has been handed to undici, which queues it behind /hang.
      yield* eventually(Effect.map(queued.status, (status) => status._tag === "Suspended"), "the second request was handed to undici")
      yield* Fiber.interrupt(queued)
      yield* Fiber.interrupt(first)
      yield* Deferred.await(server.hangClosed)
      // On the one connection a request still queued would go out before this one, and be seen first.
      const after = yield* http.execute(HttpClientRequest.get(`${server.url}/echo`))
      assert.strictEqual(after.status, 200)
      assert.deepStrictEqual(server.seen.map((s) => `${s.method} ${s.url}`), ["POST /hang", "GET /echo"])
    }).pipe(Effect.provide(ProviderClient.layer({ connections: 1 }))))

  it.scopedLive("sequential requests reuse kept-alive connections", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const call = (i: number) => ProviderHttp.send("test", HttpClientRequest.post(`${server.url}/echo`).pipe(HttpClientRequest.bodyUnsafeJson({ i })))
      for (let i = 0; i < 5; i++) {
        assert.strictEqual((yield* call(i)).status, 200)
        // undici hands a socket back to its pool one event-loop turn after the response ends.
        yield* Effect.sleep("5 millis")
      }
      assert.strictEqual(server.connections(), 1)
      assert.deepStrictEqual(server.seen.map((s) => s.socket), [0, 0, 0, 0, 0])
      // Back to back, the next request may start before that turn and take a second socket: never more.
      for (let i = 0; i < 20; i++) assert.strictEqual((yield* call(i)).status, 200)
      assert.isAtMost(server.connections(), 2)
      assert.strictEqual(server.closedConnections(), 0)
    }).pipe(Effect.provide(client)))

  it.scopedLive("closing the layer's scope closes its connections", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(client, scope)
      const response = yield* HttpClient.execute(HttpClientRequest.get(`${server.url}/echo`)).pipe(Effect.provide(context))
      assert.strictEqual(response.status, 200)
      assert.strictEqual(server.closedConnections(), 0)
      yield* Scope.close(scope, Exit.void)
      yield* eventually(() => server.closedConnections() === 1, "the server saw the connection closed")

      // Afterwards the client sends nothing: a request fails as a transport error, unsent.
      const late = yield* Effect.flip(HttpClient.execute(HttpClientRequest.get(`${server.url}/echo`)).pipe(Effect.provide(context)))
      assert.strictEqual(late._tag, "RequestError")
      assert.strictEqual(late.reason, "Transport")
      // Likewise for a client closed before its first request, whose agent was never made.
      const unused = yield* Scope.make()
      const never = yield* Layer.buildWithScope(client, unused)
      yield* Scope.close(unused, Exit.void)
      const first = yield* Effect.flip(HttpClient.execute(HttpClientRequest.get(`${server.url}/echo`)).pipe(Effect.provide(never)))
      assert.strictEqual(first._tag, "RequestError")
      assert.strictEqual(first.reason, "Transport")
      assert.strictEqual(server.connections(), 1, "no connection after the scopes closed")
    }))

  it.scopedLive("it is an HttpClient: combinators apply", () =>
    Effect.gen(function*() {
      const server = yield* startServer
      const http = (yield* HttpClient.HttpClient).pipe(
        HttpClient.mapRequest(HttpClientRequest.setHeader("x-custom", "mapped")),
        HttpClient.filterStatusOk
      )
      const ok = yield* http.get(`${server.url}/echo`)
      assert.strictEqual(JSON.parse(yield* ok.text).headers["x-custom"], "mapped")
      const notFound = yield* Effect.flip(http.get(`${server.url}/status/404`))
      assert.isTrue(HttpClientError.isHttpClientError(notFound))
      assert.strictEqual(notFound._tag, "ResponseError")
    }).pipe(Effect.provide(client)))
})
