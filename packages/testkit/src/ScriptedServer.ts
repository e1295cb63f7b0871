/**
 * A provider that answers from a script: for shapes a sandbox does not produce (a
 * provider's documented odd answers, a sequence of answers to a retried call). Real
 * HTTP on 127.0.0.1, so the plugin under test runs its whole client.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/**
 * One answer: a status (default 200), a body (an object is sent as JSON) and any headers beside its content type.
 *
 * @since 0.2.0
 */
export interface Answer {
  readonly status?: number | undefined
  readonly body: unknown
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A request the server received.
 *
 * @since 0.2.0
 */
export interface Call {
  readonly method: string
  readonly path: string
  readonly body: string
}

/**
 * @since 0.2.0
 */
export interface ScriptedServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly calls: ReadonlyArray<Call>
}

/**
 * Serves `script`: for `"METHOD /path"`, its answers in turn, the last one repeated.
 * An answer may be a function of the request's body. A path not in the script is 404.
 *
 * @since 0.2.0
 */
export const make = (
  script: Readonly<Record<string, ReadonlyArray<Answer | ((body: string) => Answer)>>>
): Effect.Effect<ScriptedServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly handle: ScriptedServer }>((resume) => {
      const calls: Array<Call> = []
      const served = new Map<string, number>()
      const server = Http.createServer((request, response) => {
        // Decoded once whole: a chunk may end inside a multi-byte character.
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const path = (request.url ?? "/").split("?")[0]!
          const key = `${request.method} ${path}`
          calls.push({ method: request.method ?? "", path, body })
          const answers = script[key]
          if (answers === undefined || answers.length === 0) {
            response.writeHead(404, { "content-type": "text/html" }).end("<html><body>Not Found</body></html>")
            return
          }
          const turn = served.get(key) ?? 0
          served.set(key, turn + 1)
          const next = answers[Math.min(turn, answers.length - 1)]!
          const answer = typeof next === "function" ? next(body) : next
          const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body)
          response.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers }).end(text)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ server, handle: { url: `http://127.0.0.1:${port}`, calls } }))
      })
    }),
    // A keep-alive client holds its connection open, and close() would wait for it.
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ handle }) => handle))
