import { Effect, Schedule } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"

/** A callback as the local endpoint received it. */
export interface Received {
  readonly headers: Record<string, string>
  readonly body: string
  readonly query: Record<string, string>
}

/** A tiny local endpoint that records what the sandbox POSTs to it. */
export const listener: Effect.Effect<{ readonly url: string; readonly received: Array<Received>; readonly waitFor: (n: number) => Effect.Effect<ReadonlyArray<Received>> }, never, Scope.Scope> =
  Effect.gen(function*() {
    const received: Array<Received> = []
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer((request, response) => {
          let body = ""
          request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
          request.on("end", () => {
            const headers: Record<string, string> = {}
            for (const [k, v] of Object.entries(request.headers)) if (typeof v === "string") headers[k.toLowerCase()] = v
            received.push({ headers, body, query: Object.fromEntries(new URL(request.url ?? "/", "http://x").searchParams) })
            response.writeHead(200).end()
          })
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    const waitFor = (n: number) =>
      Effect.suspend(() => (received.length >= n ? Effect.succeed([...received]) : Effect.fail("waiting"))).pipe(
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(250)))),
        Effect.orDie
      )
    return { url: `http://127.0.0.1:${port}/exirom/callback`, received, waitFor }
  })
