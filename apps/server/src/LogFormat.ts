/**
 * The gateway's general log in the access log's shape, so one stream has one shape: each line
 * starts with `timestamp`, `level` and `message`, then the entry's annotations (`requestId`, …)
 * as fields of their own, then `cause` when there is one. Effect's own JSON logger nested them
 * (`logLevel`, `annotations`, `spans`, `fiberId`) beside the access lines' flat fields, and a log
 * shipper had to read two shapes from one stream.
 *
 * @since 0.4.0
 */
import * as Cause from "effect/Cause"
import * as HashMap from "effect/HashMap"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import { logfmtValue } from "./RequestMiddleware.js"

const reserved = new Set(["timestamp", "level", "message", "cause"])

const messageText = (message: unknown): string =>
  (Array.isArray(message) ? message : [message])
    .map((part) => (typeof part === "string" ? part : Redacted.isRedacted(part) ? String(part) : Inspectable.toStringUnknown(part, 0)))
    .join(" ")

/**
 * A logger writing one line per entry to stdout, in `format`.
 *
 * @since 0.4.0
 */
export const make = (format: "json" | "logfmt"): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, cause, date, logLevel, message }) => {
    const fields: Record<string, unknown> = { timestamp: date.toISOString(), level: logLevel.label, message: messageText(message) }
    for (const [key, value] of HashMap.toEntries(annotations)) if (!reserved.has(key)) fields[key] = value
    if (!Cause.isEmpty(cause)) fields.cause = Cause.pretty(cause, { renderErrorCause: true })
    const line = format === "json"
      ? JSON.stringify(fields)
      : Object.entries(fields).map(([key, value]) =>
        `${key}=${logfmtValue(typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? value : Inspectable.toStringUnknown(value, 0))}`
      ).join(" ")
    process.stdout.write(`${line}\n`)
  })
