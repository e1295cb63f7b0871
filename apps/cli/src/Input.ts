/**
 * Reading a refund request from the command line: `--data '<json>'` or
 * `--data @file.json` (`@-` reads stdin).
 *
 * @since 0.1.0
 */
import * as JsonNumbers from "@refundkit/core/JsonNumbers"
import * as Effect from "effect/Effect"
import { readFile } from "node:fs/promises"
import { UsageError } from "./CliError.js"

const hint = `Pass a JSON object, e.g. --data '{"field":"value"}', or a file with --data @refund.json.`

const readSource = (data: string): Effect.Effect<string, UsageError> => {
  if (!data.startsWith("@")) return Effect.succeed(data)
  const path = data.slice(1)
  return Effect.tryPromise({
    try: () => (path === "-" ? readStdin() : readFile(path, "utf8")),
    catch: (error) => new UsageError({ field: "--data", detail: `cannot read ${path === "-" ? "stdin" : path} (${error instanceof Error ? error.message : String(error)})`, hint })
  })
}

const readStdin = async (): Promise<string> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks).toString("utf8")
}

/**
 * The JSON object given with `--data`.
 *
 * @since 0.1.0
 */
export const data = (value: string): Effect.Effect<Record<string, unknown>, UsageError> =>
  Effect.flatMap(readSource(value), (text) =>
    Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (error) => new UsageError({ field: "--data", detail: `is not valid JSON (${error instanceof Error ? error.message : String(error)})`, hint })
    }).pipe(
      Effect.filterOrFail(
        (parsed): parsed is Record<string, unknown> => typeof parsed === "object" && parsed !== null && !Array.isArray(parsed),
        () => new UsageError({ field: "--data", detail: "must be a JSON object with the provider's request fields", hint })
      ),
      // JSON.parse rounds what a double cannot hold (250.000000000000001 is 250): refused, not sent rounded.
      Effect.filterOrFail(
        () => JsonNumbers.inexactNumbers(text).length === 0,
        () =>
          new UsageError({
            field: "--data",
            detail: JsonNumbers.inexactNumbers(text).map((n) => `${n.path}: ${JsonNumbers.refusal(n)}`).join("; "),
            hint
          })
      )
    ))
