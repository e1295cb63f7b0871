import { Effect } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"

/** What the proxy knows of a request when it decides whether to answer it itself. */
export interface Seen {
  readonly method: string
  readonly path: string
  /** Refund POSTs seen so far, this one included. */
  readonly refundPosts: number
}

/**
 * A real HTTP peer in front of a sandbox, as a load balancer or an API gateway stands in front of
 * Exirom: it forwards every request, unless `notFound` says to answer it 404 itself (a misroute, a
 * stale route table) without the sandbox seeing it. An upstream that drops the connection has it
 * dropped downstream too.
 */
export const proxy = (target: string): Effect.Effect<{ readonly url: string; notFound: (seen: Seen) => boolean }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const control = { url: "", notFound: (_: Seen): boolean => false }
    let refundPosts = 0
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer((request, response) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            const path = request.url ?? "/"
            if (request.method === "POST" && path.endsWith("/v1/refunds/card")) refundPosts += 1
            if (control.notFound({ method: request.method ?? "GET", path, refundPosts })) {
              response.writeHead(404, { "content-type": "text/html" }).end("<html><head><title>404 Not Found</title></head><body>404 Not Found</body></html>")
              return
            }
            const headers: Record<string, string> = {}
            for (const [name, value] of Object.entries(request.headers)) {
              if (typeof value === "string" && name !== "host" && name !== "content-length" && name !== "connection") headers[name] = value
            }
            const body = Buffer.concat(chunks)
            fetch(`${target}${path}`, { method: request.method ?? "GET", headers, ...(body.length === 0 ? {} : { body }) }).then(
              async (upstream) => {
                const text = await upstream.text()
                response.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" }).end(text)
              }
            ).catch(() => response.destroy())
          })
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    control.url = `http://127.0.0.1:${port}`
    return control
  })
