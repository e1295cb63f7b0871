/**
 * `refundkit sandbox`: every installed provider's sandbox, running until Ctrl-C.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Environment from "../Environment.js"
import * as ExitCode from "../ExitCode.js"
import * as Globals from "../Globals.js"
import * as Output from "../Output.js"
import * as Run from "../Run.js"

/**
 * The `refundkit sandbox` command, its options and its handler.
 *
 * @since 0.1.0
 */
export const command = Command.make("sandbox", { json: Globals.options.json }, (own) =>
  Run.handler({ ...own, ledger: Globals.noLedger, sandbox: true }, (globals) =>
    Effect.scoped(Effect.gen(function*() {
      const handles = yield* Environment.startSandboxes
      const env = Environment.sandboxEnv(handles)
      if (globals.json) {
        yield* Output.json({ sandboxes: handles.map((h) => ({ provider: h.provider, baseUrl: h.baseUrl, url: h.url })), env })
      } else {
        for (const h of handles) yield* Output.text(`# ${h.provider.padEnd(8)} ${h.baseUrl}`)
        yield* Output.text("# Point the plugins at these sandboxes (sandbox credentials only):")
        for (const [key, value] of Object.entries(env)) yield* Output.text(`export ${key}=${JSON.stringify(value)}`)
        yield* Output.note("Sandboxes are running; Ctrl-C stops them. Control routes: <url>/__sandbox/stats, /__sandbox/faults.")
      }
      yield* Effect.never
      return ExitCode.ok
    })), { interrupted: ExitCode.ok })
).pipe(Command.withDescription(
  "Run every installed provider's sandbox on 127.0.0.1 until Ctrl-C.\n\n" +
    "Prints their base URLs and the environment lines that point the plugins at them.\n\n" +
    "Example: refundkit sandbox > sandbox.env   # then: source sandbox.env"
))
