import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import * as ScriptedServer from "../src/ScriptedServer.js"

const post = (url: string, body: string) =>
  Effect.promise(() => fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } }).then(async (r) => ({ status: r.status, text: await r.text() })))

describe("ScriptedServer", () => {
  it.scopedLive("answers in turn, repeats the last answer, and 404s a path not in the script", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedServer.make({
        "POST /refund": [{ status: 503, body: { error: "busy" } }, (body) => ({ body: { echoed: JSON.parse(body).n } })]
      })
      const first = yield* post(`${server.url}/refund`, JSON.stringify({ n: 1 }))
      const second = yield* post(`${server.url}/refund?x=1`, JSON.stringify({ n: 2 }))
      const third = yield* post(`${server.url}/refund`, JSON.stringify({ n: 3 }))
      const other = yield* post(`${server.url}/other`, "{}")
      assert.deepStrictEqual([first.status, second.status, third.status, other.status], [503, 200, 200, 404])
      assert.deepStrictEqual(JSON.parse(third.text), { echoed: 3 })
      assert.deepStrictEqual(server.calls.map((c) => `${c.method} ${c.path}`), ["POST /refund", "POST /refund", "POST /refund", "POST /other"])
    }))

  it.scopedLive("records a body whose chunks split a multi-byte character exactly as sent", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedServer.make({ "POST /refund": [{ body: { ok: true } }] })
      const body = JSON.stringify({ reason: "Rückerstattung" })
      const bytes = Buffer.from(body, "utf8")
      const cut = bytes.indexOf(Buffer.from("ü", "utf8")) + 1
      // Two writes a moment apart arrive as two chunks, the first ending inside "ü".
      yield* Effect.async<void>((resume) => {
        const request = Http.request(`${server.url}/refund`, { method: "POST", headers: { "content-length": bytes.length } }, (response) => {
          response.resume()
          response.on("end", () => resume(Effect.void))
        })
        request.write(bytes.subarray(0, cut))
        setTimeout(() => request.end(bytes.subarray(cut)), 50)
      })
      assert.strictEqual(server.calls[0]!.body, body)
    }))

  // A plain Node script (a demo, a benchmark) must be able to import it without vitest in the process.
  it.live("its own entry point loads outside vitest", () =>
    Effect.gen(function*() {
      const script = `
        import { Effect } from "effect"
        import * as ScriptedServer from "@refundkit/testkit/ScriptedServer"
        const answer = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
          const server = yield* ScriptedServer.make({ "GET /ping": [{ body: { pong: true } }] })
          return yield* Effect.promise(() => fetch(server.url + "/ping").then((r) => r.text()))
        })))
        console.log(answer, "loaded vitest:", Object.keys(globalThis).some((k) => k.startsWith("__vitest")))
      `
      const output = yield* Effect.async<string, Error>((resume) => {
        execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: fileURLToPath(new URL("..", import.meta.url)) }, (error, stdout, stderr) =>
          resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout.trim())))
      })
      assert.strictEqual(output, `{"pong":true} loaded vitest: false`)
    }))
})
