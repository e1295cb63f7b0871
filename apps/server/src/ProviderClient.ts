/**
 * The `HttpClient` the provider plugins send through: undici's dispatcher under the
 * thinnest layer that is still an `HttpClient`. Through `NodeHttpClient.layerUndici`
 * a provider call spent more CPU in the client than in the request itself: a merged
 * context, an `AbortController` and its listener, a finalization registry entry, a
 * Node stream for the body and two wrappers around each response. Provider answers
 * are small JSON documents read whole, so this client keeps none of that and reads
 * each body to its end before it answers.
 *
 * What it keeps: transport failures are `RequestError`s with `reason: "Transport"`
 * and undici's error (with its `code`) as `cause`, so `ProviderHttp.transportError`
 * can tell a request that never left; a body cut short is a `ResponseError`;
 * interruption aborts the request in flight (its socket is destroyed); connections
 * are kept alive and pooled per origin. It builds no spans: the gateway and the CLI
 * run with tracing off.
 *
 * undici is loaded at the first request, not with this module: it is 1.1 MB of code
 * (about 75 ms to load, bundled), and most CLI commands (`providers`, `list`, `get`)
 * build the plugins' stack without ever calling a provider.
 *
 * @since 0.1.0
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import type * as Undici from "@effect/platform-node/Undici"
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Readable } from "node:stream"

/**
 * An `HttpClient` over an undici dispatcher (an `Agent`, a `Pool`...). The caller owns
 * the dispatcher and closes it.
 *
 * @since 0.1.0
 */
export const make = (dispatcher: Undici.Dispatcher): HttpClient.HttpClient => over(() => dispatcher)

/**
 * The client over an undici `Agent` made for this layer at its first request and
 * destroyed when its scope closes. Timeouts are left to the caller's Effect (core
 * bounds every provider call).
 *
 * @since 0.1.0
 */
export const layer = (options: Undici.Agent.Options = {}): Layer.Layer<HttpClient.HttpClient> =>
  Layer.scoped(
    HttpClient.HttpClient,
    Effect.gen(function*() {
      let agent: Undici.Agent | undefined
      let closed = false
      yield* Effect.addFinalizer(() => {
        closed = true
        const made = agent
        return made === undefined ? Effect.void : Effect.promise(() => made.destroy())
      })
      return over((undici) => {
        if (agent !== undefined) return agent
        const made = new undici.Agent({ headersTimeout: 0, bodyTimeout: 0, ...options })
        // After the scope closed, as with an agent made before: destroyed, it refuses every request unsent.
        if (closed) void made.destroy()
        return agent = made
      })
    })
  )

type UndiciModule = typeof Undici.default

// Set once the first request has loaded it; from then on a request costs no more than with a static import.
// The default export is undici's own exports object: bundled, the chunk re-exports nothing else by name.
let loaded: UndiciModule | undefined
const load: Effect.Effect<UndiciModule> = Effect.promise(() => import("@effect/platform-node/Undici")).pipe(
  Effect.map((undici) => loaded = undici.default)
)

/**
 * Loads undici ahead of the first request: the gateway does so once it listens, so
 * that its first refund does not wait for it.
 *
 * @since 0.1.0
 */
export const preload: Effect.Effect<void> = Effect.suspend(() => loaded === undefined ? Effect.asVoid(load) : Effect.void)

const over = (dispatcherOf: (undici: UndiciModule) => Undici.Dispatcher): HttpClient.HttpClient =>
  HttpClient.makeWith(
    (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) =>
      Effect.flatMap(request, (request) => {
        const undici = loaded
        return undici !== undefined
          ? send(undici, dispatcherOf(undici), request)
          : Effect.flatMap(load, (undici) => send(undici, dispatcherOf(undici), request))
      }),
    Effect.succeed
  )

type Body = Exclude<Undici.Dispatcher.DispatchOptions["body"], undefined>

/** Where a request goes, as undici takes it. */
interface Target {
  readonly origin: string
  readonly path: string
}

const targetOf = (url: URL): Target => ({ origin: url.origin, path: url.pathname + url.search })

// The targets of URLs parsed before, for requests with no query parameters or fragment added: a
// provider's refund calls all go to one URL, and parsing it (a `URL`) cost about a microsecond
// per call. Parsing is a function of the text alone, so a target found here is the one parsing
// would give. Bounded: emptied when full (status lookups name a refund each).
const parsed = new Map<string, Target>()
const maxParsed = 256

const targetOfRequest = (request: HttpClientRequest.HttpClientRequest): Either.Either<Target, unknown> => {
  const plain = request.urlParams.length === 0 && request.hash._tag === "None"
  const known = plain ? parsed.get(request.url) : undefined
  if (known !== undefined) return Either.right(known)
  const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
  if (url._tag === "Left") return Either.left(url.left)
  const target = targetOf(url.right)
  if (plain) {
    if (parsed.size >= maxParsed) parsed.clear()
    parsed.set(request.url, target)
  }
  return Either.right(target)
}

const send = (
  undici: UndiciModule,
  dispatcher: Undici.Dispatcher,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> => {
  const url = targetOfRequest(request)
  if (url._tag === "Left") return Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left }))
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return dispatch(undici, dispatcher, request, url.right, null)
    case "Uint8Array":
      return dispatch(undici, dispatcher, request, url.right, body.body)
    case "FormData":
      // Encoded here: the global FormData is not the one the bundled undici types accept.
      return Effect.flatMap(
        Effect.tryPromise({
          try: async () => {
            const encoded = new Response(body.formData)
            return { type: encoded.headers.get("content-type") ?? "", bytes: new Uint8Array(await encoded.arrayBuffer()) }
          },
          catch: (cause) => new HttpClientError.RequestError({ request, reason: "Encode", cause })
        }),
        ({ bytes, type }) => dispatch(undici, dispatcher, HttpClientRequest.setHeader(request, "content-type", type), url.right, bytes)
      )
    case "Stream":
      return dispatch(undici, dispatcher, request, url.right, NodeStream.toReadableNever(body.stream))
    case "Raw": {
      const raw = body.body
      return typeof raw === "string" || raw instanceof Uint8Array || raw instanceof Readable
        ? dispatch(undici, dispatcher, request, url.right, raw)
        : Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", description: "a raw body must be a string, bytes or a Readable" }))
    }
  }
}

const dispatch = (
  undici: UndiciModule,
  dispatcher: Undici.Dispatcher,
  request: HttpClientRequest.HttpClientRequest,
  url: Target,
  body: Body
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
  // An interrupted exchange is aborted by an observer of its fiber, which the fiber calls as it
  // ends, rather than by a canceler: `Effect.async` runs a step with a canceler inside an
  // uninterruptible region, about 8 more Effect operations on every provider call. An interrupted
  // fiber ends once its finalizers have run, so the socket is destroyed then; the observer is
  // removed as soon as the exchange has settled, so a fiber that makes many calls keeps none.
  // One parameter: `Effect.async` makes an AbortController only for callbacks that take a signal.
  Effect.withFiberRuntime((fiber) =>
    Effect.async((resume) => {
      const abort = () => handler.interrupt()
      const handler = new Handler(undici.errors.RequestAbortedError, request, (effect) => {
        fiber.removeObserver(abort)
        resume(effect)
      })
      fiber.addObserver(abort)
      dispatcher.dispatch(
        { origin: url.origin, path: url.path, method: request.method, headers: request.headers, body },
        handler
      )
    })
  )

// Collects one exchange: the status and headers, then every chunk of the body, and
// answers once the body has ended (or the exchange failed).
class Handler implements Undici.Dispatcher.DispatchHandler {
  private controller: Undici.Dispatcher.DispatchController | undefined = undefined
  private interrupted = false
  private status = 0
  private headers: Record<string, string | Array<string> | undefined> = {}
  private readonly chunks: Array<Buffer> = []
  private length = 0

  constructor(
    private readonly Aborted: UndiciModule["errors"]["RequestAbortedError"],
    private readonly request: HttpClientRequest.HttpClientRequest,
    private readonly resume: (effect: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>) => void
  ) {}

  interrupt(): void {
    this.interrupted = true
    this.controller?.abort(new this.Aborted())
  }

  onRequestStart(controller: Undici.Dispatcher.DispatchController): void {
    // Interrupted while queued for a connection: abort before anything is written.
    if (this.interrupted) controller.abort(new this.Aborted())
    else this.controller = controller
  }

  onResponseStart(_: Undici.Dispatcher.DispatchController, status: number, headers: Record<string, string | Array<string> | undefined>): void {
    this.status = status
    this.headers = headers
  }

  onResponseData(_: Undici.Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk)
    this.length += chunk.length
  }

  onResponseEnd(): void {
    const chunks = this.chunks
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.length)
    this.resume(Effect.succeed(new BufferedResponse(this.request, this.status, this.headers, body)))
  }

  onResponseError(_: Undici.Dispatcher.DispatchController | null, cause: Error): void {
    // After the status line the request was answered: what failed is reading the body.
    this.resume(Effect.fail(
      this.status >= 200
        ? new HttpClientError.ResponseError({
          request: this.request,
          response: new BufferedResponse(this.request, this.status, this.headers, Buffer.alloc(0)),
          reason: "Decode",
          cause
        })
        : new HttpClientError.RequestError({ request: this.request, reason: "Transport", cause })
    ))
  }
}

// A response whose body has been read whole.
class BufferedResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  private decodedHeaders: Headers.Headers | undefined = undefined
  private decodedText: string | undefined = undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly status: number,
    private readonly rawHeaders: Record<string, string | Array<string> | undefined>,
    private readonly body: Buffer
  ) {
    super()
  }

  get headers(): Headers.Headers {
    return this.decodedHeaders ??= Headers.fromInput(this.rawHeaders)
  }

  get cookies(): Cookies.Cookies {
    const header = this.rawHeaders["set-cookie"]
    return header === undefined ? Cookies.empty : Cookies.fromSetCookie(typeof header === "string" ? [header] : header)
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  private textValue(): string {
    if (this.decodedText === undefined) {
      const text = this.body.toString("utf8")
      // As `Response.text()` does: a byte order mark is not part of the text.
      this.decodedText = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
    }
    return this.decodedText
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.sync(() => this.textValue())
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.try({
      try: (): unknown => {
        const text = this.textValue()
        return text === "" ? null : JSON.parse(text)
      },
      catch: (cause) => this.decodeError(cause)
    })
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.try({
      try: () => UrlParams.fromInput(new URLSearchParams(this.textValue())),
      catch: (cause) => this.decodeError(cause)
    })
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.sync(() => new Uint8Array(this.body).buffer)
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.tryPromise({
      try: () => new Response(this.body, { headers: { "content-type": this.headers["content-type"] ?? "" } }).formData(),
      catch: (cause) => this.decodeError(cause)
    })
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return this.body.length === 0 ? Stream.empty : Stream.succeed(this.body)
  }

  toJSON(): unknown {
    return HttpIncomingMessage.inspect(this, { _id: "@effect/platform/HttpClientResponse", request: this.request.toJSON(), status: this.status })
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }
}
