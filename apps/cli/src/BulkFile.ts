/**
 * Reading a bulk file row by row in constant memory: CSV with a header row, or JSON
 * Lines. Each row becomes the provider's request object plus an optional idempotency
 * key; the file's SHA-256 is computed on the way, for the keys derived per row.
 *
 * CSV conventions: a column name is a dotted path into the request
 * (`metadata.order`, `transactions.0.ap_transactionid`; a numeric segment is an array
 * index); an empty cell leaves the field out; a cell keeps its text unless the
 * provider's JSON Schema does not accept a string at that path, in which case it is read
 * as a number, a boolean or JSON (`["a","b"]`) as the schema asks. So `10.50` stays the
 * string "10.50" for an amount field, and `12345` becomes the number 12345 for an
 * integer id. The column `idempotency_key` is the row's key, not a request field, and
 * `originalAmounts` beside the request is the row's original amounts, as the gateway's body
 * takes them (`originalAmounts.<target>` columns, or one `originalAmounts` column of JSON).
 *
 * @since 0.1.0
 */
import * as JsonNumbers from "@refundkit/core/JsonNumbers"
import { type FieldIssue, InvalidRequest } from "@refundkit/core/RefundError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash, type Hash } from "node:crypto"
import { createReadStream, statSync } from "node:fs"
import { stat } from "node:fs/promises"
import { extname } from "node:path"
import { StringDecoder } from "node:string_decoder"
import { UsageError } from "./CliError.js"
import * as Csv from "./internal/csv.js"
import * as JsonSchema from "./internal/jsonSchema.js"

/**
 * The file formats `bulk` reads, chosen by extension.
 *
 * @since 0.1.0
 */
export type Format = "csv" | "jsonl"

/**
 * The column (CSV) or top-level field (JSONL) holding a row's own idempotency key.
 *
 * @since 0.1.0
 */
export const keyColumn = "idempotency_key"

/**
 * The field beside the provider's request that `POST /v1/refunds` takes too: the original amount
 * of each target (keyed by the target's provider id), for the ledger's over-refund guard. In
 * `create --data` and a JSON Lines row it is the same top-level object as in the gateway's body;
 * a CSV row gives it as `originalAmounts.<target>` columns (the rest of the name is the target, a
 * number included: not an array index) or as one `originalAmounts` column holding the JSON object.
 *
 * @since 0.6.0
 */
export const originalAmountsField = "originalAmounts"

// The gateway's rule for the field (`ApiModel.CreateRefund`), so both refuse the same values alike.
const OriginalAmounts = Schema.Struct({ [originalAmountsField]: Schema.Record({ key: Schema.String, value: Schema.String }) })
const decodeOriginalAmounts = Schema.decodeUnknownEither(OriginalAmounts, { errors: "all" })

/**
 * An `originalAmounts` value checked as the gateway checks its body's: an object of target id to a
 * decimal string; issues name `originalAmounts.<target>`. Core checks the rest (a target of the
 * refund, a positive amount in its currency: `Refunds.withOriginalAmounts`).
 *
 * @since 0.6.0
 */
export const originalAmountsOf = (value: unknown): Either.Either<Readonly<Record<string, string>>, ReadonlyArray<FieldIssue>> =>
  Either.mapBoth(decodeOriginalAmounts({ [originalAmountsField]: value }), {
    onLeft: (error) => InvalidRequest.fromParseError(error).issues,
    onRight: (decoded) => decoded[originalAmountsField]
  })

const originalsPrefix = `${originalAmountsField}.`

const notAnObject = `must be a JSON object of target id to original amount, such as {"12345":"100.00"}`

/** The original amounts a row gives, gathered from its cells or fields; a target given twice is an issue. */
class Originals {
  amounts: Record<string, string> | undefined = undefined
  add(target: string, amount: unknown, issues: Array<FieldIssue>): void {
    this.amounts ??= {}
    if (Object.hasOwn(this.amounts, target)) issues.push({ path: `${originalsPrefix}${target}`, message: "is given twice: give each target's original amount once" })
    // defineProperty, not assignment: a "__proto__" target stays a plain key.
    else Object.defineProperty(this.amounts, target, { value: amount, writable: true, enumerable: true, configurable: true })
  }
  /** Every target of a whole `originalAmounts` object. */
  addAll(value: unknown, issues: Array<FieldIssue>): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      issues.push({ path: originalAmountsField, message: notAnObject })
      return
    }
    for (const [target, amount] of Object.entries(value)) this.add(target, amount, issues)
  }
  /** The amounts, checked; `undefined` when the row gives none. */
  checked(issues: Array<FieldIssue>): Readonly<Record<string, string>> | undefined {
    if (this.amounts === undefined) return undefined
    const decoded = originalAmountsOf(this.amounts)
    if (Either.isLeft(decoded)) {
      issues.push(...decoded.left)
      return undefined
    }
    return decoded.right
  }
}

/**
 * One data row: its number (1 = the first data row), the line it starts on, the
 * request built from it or why it could not be built, and its own key if it has one.
 *
 * @since 0.1.0
 */
export interface Row {
  readonly row: number
  readonly line: number
  readonly request: Record<string, unknown> | undefined
  readonly issues: ReadonlyArray<FieldIssue>
  readonly idempotencyKey: string | undefined
  /** The row's `originalAmounts` (see {@link originalAmountsField}), checked. */
  readonly originalAmounts: Readonly<Record<string, string>> | undefined
}

/**
 * The format of a file, from its extension.
 *
 * @since 0.1.0
 */
export const formatOf = (path: string): Effect.Effect<Format, UsageError> => {
  const ext = extname(path).toLowerCase()
  if (ext === ".csv") return Effect.succeed("csv")
  if (ext === ".jsonl" || ext === ".ndjson") return Effect.succeed("jsonl")
  return Effect.fail(new UsageError({ field: "file", detail: `${path} has extension "${ext}"; bulk reads .csv (with a header row) or .jsonl (one JSON object per line)`, hint: "Rename the file to match its format." }))
}

/**
 * Fails unless the file exists and is a regular file.
 *
 * @since 0.1.0
 */
export const check = (path: string): Effect.Effect<void, UsageError> =>
  Effect.tryPromise({
    try: () => stat(path),
    catch: (error) => new UsageError({ field: "file", detail: `cannot read ${path} (${error instanceof Error ? error.message : String(error)})` })
  }).pipe(Effect.filterOrFail((s) => s.isFile(), () => new UsageError({ field: "file", detail: `${path} is not a file` })), Effect.asVoid)

/**
 * Whether two paths name the same existing file (through links too).
 *
 * @since 0.1.0
 */
export const sameFile = (a: string, b: string): boolean => {
  try {
    const x = statSync(a)
    const y = statSync(b)
    return x.dev === y.dev && x.ino === y.ino
  } catch {
    return false
  }
}

const printable = /^[\x20-\x7e]{1,255}$/

const keyIssue = (key: unknown): ReadonlyArray<FieldIssue> =>
  typeof key === "string" && printable.test(key) ? [] : [{ path: keyColumn, message: "must be 1 to 255 printable ASCII characters" }]

// No exponent: a spreadsheet writes a long id as "1.23457E+11", and read as a number that is
// another id (123457000000). Such a cell stays text and the provider's schema refuses it.
const numeric = /^-?(0|[1-9]\d*)(\.\d+)?$/
const integral = /^-?(0|[1-9]\d*)$/

/** A CSV cell as the type the schema asks for at its path (see the module comment). */
const coerce = (cell: string, types: ReadonlySet<JsonSchema.JsonType>): unknown => {
  if (types.size === 0 || types.has("string")) return cell
  if ((types.has("number") && numeric.test(cell)) || (types.has("integer") && integral.test(cell))) {
    const n: unknown = JSON.parse(cell)
    // An id past 2^53 would silently change; left as text, the schema reports it.
    if (typeof n === "number" && (types.has("number") || Number.isSafeInteger(n))) return n
  }
  if (types.has("boolean") && (cell === "true" || cell === "false")) return cell === "true"
  if (types.has("null") && cell === "null") return null
  if (types.has("array") || types.has("object")) {
    try {
      const parsed: unknown = JSON.parse(cell)
      if (typeof parsed === "object" && parsed !== null) return parsed
    } catch {
      // Not JSON: the provider's schema names the rule it breaks.
    }
  }
  return cell
}

type Container = Record<string, unknown> | Array<unknown>

const setPath = (target: Record<string, unknown>, path: ReadonlyArray<string>, value: unknown): boolean => {
  let node: Container = target
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!
    const last = i === path.length - 1
    const index = Array.isArray(node) ? Number(segment) : undefined
    if (Array.isArray(node) && (index === undefined || !Number.isInteger(index))) return false
    const current: unknown = Array.isArray(node) ? node[index!] : node[segment]
    if (last) {
      if (current !== undefined) return false
      if (Array.isArray(node)) node[index!] = value
      else node[segment] = value
      return true
    }
    let next: unknown = current
    if (next === undefined) {
      next = /^\d+$/.test(path[i + 1]!) ? [] : {}
      if (Array.isArray(node)) node[index!] = next
      else node[segment] = next
    }
    if (typeof next !== "object" || next === null) return false
    node = next as Container
  }
  return false
}

// Arrays filled by index may have holes (a row with columns 0 and 2 only); JSON has none. Containers are
// fixed in place: a row's request is rebuilt only where an array had a hole.
const compact = (value: unknown): unknown => {
  if (Array.isArray(value)) {
    let holes = false
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item === undefined) holes = true
      else {
        const next = compact(item)
        if (next !== item) value[i] = next
      }
    }
    return holes ? value.filter((item) => item !== undefined) : value
  }
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      const item = record[key]
      const next = compact(item)
      // defineProperty, not assignment: a "__proto__" key stays a plain field.
      if (next !== item) Object.defineProperty(record, key, { value: next, writable: true, enumerable: true, configurable: true })
    }
    return record
  }
  return value
}

interface Column {
  readonly name: string
  /** A request field; the row's key; one target's original amount (`originalAmounts.<target>`); or all of them as JSON. */
  readonly role: "request" | "key" | "original" | "originals"
  readonly path: ReadonlyArray<string>
  readonly types: ReadonlySet<JsonSchema.JsonType>
}

const roleOf = (name: string): Column["role"] =>
  name === keyColumn ? "key" : name === originalAmountsField ? "originals" : name.startsWith(originalsPrefix) ? "original" : "request"

interface Columns {
  readonly list: ReadonlyArray<Column>
  /** Some column fills an array by index, so a row's arrays may have holes to close. */
  readonly indexed: boolean
}

const digits = /^\d+$/

const columnsOf = (header: ReadonlyArray<string>, schema: unknown): Columns | string => {
  const names = header.map((name, i) => (i === 0 ? name.replace(/^\uFEFF/, "") : name).trim())
  const seen = new Set<string>()
  for (const [i, name] of names.entries()) {
    if (name === "") return `column ${i + 1} of the header row has no name`
    if (seen.has(name)) return `the header row names column "${name}" twice`
    if (name.split(".").some((s) => s === "")) return `column "${name}" is not a dotted path (empty segment)`
    seen.add(name)
  }
  // A column no request can have (a typo: "reasn") would fail every row alike: said once, for the header.
  const fields = JsonSchema.topLevelFields(schema)
  const stray = fields === undefined ? undefined : names.find((name) => roleOf(name) === "request" && !fields.includes(name.split(".")[0]!))
  if (stray !== undefined && fields !== undefined) {
    return `column "${stray}" is not a field of the provider's request; its fields are ${fields.join(", ")} ` +
      `(and ${keyColumn} for each row's idempotency key, ${originalsPrefix}<target> for a target's original amount)`
  }
  const list = names.map((name): Column => {
    const role = roleOf(name)
    return role === "request"
      ? { name, role, path: name.split("."), types: JsonSchema.typesAt(schema, name.split(".")) }
      : { name, role, path: role === "original" ? [name.slice(originalsPrefix.length)] : [], types: new Set() }
  })
  return { list, indexed: list.some((column) => column.role === "request" && column.path.some((segment, i) => i > 0 && digits.test(segment))) }
}

const csvRow = (columns: Columns, record: Csv.CsvRecord, row: number): Row => {
  const issues: Array<FieldIssue> = []
  const request: Record<string, unknown> = {}
  let idempotencyKey: string | undefined
  let originals: Originals | undefined
  if (record.unterminated === true) {
    issues.push({ path: "", message: `has a quoted cell whose closing quote is missing: every line after line ${record.line} was read into it` })
  }
  if (record.fields.length !== columns.list.length) {
    issues.push({ path: "", message: `has ${record.fields.length} cells but the header has ${columns.list.length} columns` })
  }
  for (let i = 0; i < columns.list.length; i++) {
    const column = columns.list[i]!
    const cell = record.fields[i]
    if (cell === undefined || cell === "") continue
    if (column.role === "request") {
      if (!setPath(request, column.path, coerce(cell, column.types))) issues.push({ path: column.name, message: "clashes with another column's path" })
    } else if (column.role === "key") {
      idempotencyKey = cell
      issues.push(...keyIssue(cell))
    } else {
      originals ??= new Originals()
      if (column.role === "original") originals.add(column.path[0]!, cell, issues)
      else {
        const parsed = parseJson(cell)
        if (parsed === undefined) issues.push({ path: originalAmountsField, message: notAnObject })
        else originals.addAll(parsed.value, issues)
      }
    }
  }
  const originalAmounts = originals?.checked(issues)
  const valid = issues.length === 0
  return {
    row,
    line: record.line,
    request: valid ? (columns.indexed ? (compact(request) as Record<string, unknown>) : request) : undefined,
    issues,
    idempotencyKey,
    originalAmounts: valid ? originalAmounts : undefined
  }
}

const parseJson = (text: string): { readonly value: unknown } | undefined => {
  try {
    return { value: JSON.parse(text) }
  } catch {
    return undefined
  }
}

const jsonlRow = (text: string, line: number): Row => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return {
      row: line,
      line,
      request: undefined,
      issues: [{ path: "", message: `is not valid JSON (${error instanceof Error ? error.message : String(error)})` }],
      idempotencyKey: undefined,
      originalAmounts: undefined
    }
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { row: line, line, request: undefined, issues: [{ path: "", message: "must be a JSON object with the provider's request fields" }], idempotencyKey: undefined, originalAmounts: undefined }
  }
  // As `create --data`: JSON.parse rounds what a double cannot hold (9007199254740993 is read as
  // ...992), and the row would be refused quoting a number it does not hold, or sent rounded.
  const inexact = JsonNumbers.inexactNumbers(text)
  if (inexact.length > 0) {
    return { row: line, line, request: undefined, issues: inexact.map((n) => ({ path: n.path, message: JsonNumbers.refusal(n) })), idempotencyKey: undefined, originalAmounts: undefined }
  }
  const { [keyColumn]: key, [originalAmountsField]: originals, ...request } = parsed as Record<string, unknown>
  if (key === undefined && originals === undefined) return { row: line, line, request, issues: [], idempotencyKey: undefined, originalAmounts: undefined }
  const issues = key === undefined ? [] : [...keyIssue(key)]
  const decoded = originals === undefined ? undefined : originalAmountsOf(originals)
  if (decoded !== undefined && Either.isLeft(decoded)) issues.push(...decoded.left)
  return {
    row: line,
    line,
    request: issues.length === 0 ? request : undefined,
    issues,
    idempotencyKey: typeof key === "string" ? key : undefined,
    originalAmounts: issues.length === 0 && decoded !== undefined && Either.isRight(decoded) ? decoded.right : undefined
  }
}

interface HeaderError {
  readonly _tag: "HeaderError"
  readonly detail: string
}

/** A few rows, or why the header row is unusable (then nothing follows). */
type Batch = ReadonlyArray<Row> | HeaderError

/**
 * Rows are built this many at a time, as the reader asks for them. A step per row (a
 * promise and a few Effect steps) costs more than parsing the row; a whole read
 * buffer's worth (thousands of rows) built ahead of the reader outlives a
 * young-generation collection and piles up in old space as garbage.
 */
const batchRows = 64

// Small reads: a read buffer decoded to a string lives until its last row has been validated; at 64 KiB that
// spans a young-generation collection or two and every buffer ended up in old space.
async function* chunks(path: string, hash: Hash): AsyncGenerator<string> {
  const decoder = new StringDecoder("utf8")
  for await (const buffer of createReadStream(path, { highWaterMark: 16 * 1024 })) {
    const bytes = buffer as Buffer
    hash.update(bytes)
    yield decoder.write(bytes)
  }
  const rest = decoder.end()
  if (rest !== "") yield rest
}

async function* csvBatches(path: string, hash: Hash, schema: unknown): AsyncGenerator<Batch> {
  const parser = Csv.make()
  let columns: Columns | undefined
  let row = 0
  const take = (): Batch => {
    const out: Array<Row> = []
    while (out.length < batchRows) {
      const record = parser.next()
      if (record === undefined) break
      if (columns === undefined) {
        const parsed = record.unterminated === true ? "the header row has a quoted cell whose closing quote is missing" : columnsOf(record.fields, schema)
        if (typeof parsed === "string") return { _tag: "HeaderError", detail: parsed }
        columns = parsed
      } else out.push(csvRow(columns, record, ++row))
    }
    return out
  }
  for await (const chunk of chunks(path, hash)) {
    parser.feed(chunk)
    for (let batch = take(); "_tag" in batch || batch.length > 0; batch = take()) {
      yield batch
      if ("_tag" in batch) return
    }
  }
  parser.end()
  for (let batch = take(); "_tag" in batch || batch.length > 0; batch = take()) {
    yield batch
    if ("_tag" in batch) return
  }
  // Not even a header row: an export that failed, or the wrong file. A header without rows is an empty batch.
  if (columns === undefined) yield { _tag: "HeaderError", detail: "is empty: a CSV file starts with a header row naming the request's fields" }
}

async function* jsonlBatches(path: string, hash: Hash): AsyncGenerator<Batch> {
  let text = ""
  let pos = 0
  // Where to look for the next newline: text before it (a line still being read) has none.
  let scanned = 0
  let line = 0
  let ended = false
  const take = (): ReadonlyArray<Row> => {
    const out: Array<Row> = []
    while (out.length < batchRows) {
      const newline = text.indexOf("\n", scanned)
      if (newline === -1 && !(ended && pos < text.length)) {
        scanned = text.length
        break
      }
      const stop = newline === -1 ? text.length : newline
      const part = text.slice(pos, stop)
      pos = scanned = stop + 1
      line++
      if (part.trim() !== "") out.push(jsonlRow(part, line))
    }
    return out
  }
  let first = true
  for await (const chunk of chunks(path, hash)) {
    // A UTF-8 byte order mark (Windows tools write one) is no part of the first object, as in a CSV file.
    text = text.slice(pos) + (first ? chunk.replace(/^\uFEFF/, "") : chunk)
    first = false
    scanned -= pos
    pos = 0
    for (let items = take(); items.length > 0; items = take()) yield items
  }
  ended = true
  for (let items = take(); items.length > 0; items = take()) yield items
}

/**
 * A pass over a file: its rows, and the SHA-256 of its bytes once they have all been read.
 *
 * @since 0.1.0
 */
export interface Pass {
  /** The rows as a stream, a few per chunk. */
  readonly rows: Stream.Stream<Row, UsageError>
  /**
   * The rows without a stream: each run of the inner effect gives the next few rows,
   * and an empty array at the end. The file stays open until the scope closes. Long
   * passes use this: a stream's per-chunk bookkeeping keeps each chunk reachable from
   * garbage already in the old generation, so nearly every row read through it is
   * promoted there too, and the heap grows with the file until a full collection.
   */
  readonly pull: Effect.Effect<Effect.Effect<ReadonlyArray<Row>, UsageError>, never, Scope.Scope>
  readonly digest: Effect.Effect<string>
}

const noRows: ReadonlyArray<Row> = []

/**
 * Reads `path` as `format`; `schema` is the provider's request JSON Schema (for CSV typing).
 *
 * @since 0.1.0
 */
export const read = (path: string, format: Format, schema: unknown): Pass => {
  const hash = createHash("sha256")
  let digest: string | undefined
  const cannotRead = (error: unknown) => new UsageError({ field: "file", detail: `cannot read ${path} (${error instanceof Error ? error.message : String(error)})` })
  const pull = Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => (format === "csv" ? csvBatches(path, hash, schema) : jsonlBatches(path, hash))),
      (batches) => Effect.promise(() => batches.return(undefined))
    ),
    (batches) => {
      let done = false
      return Effect.suspend((): Effect.Effect<ReadonlyArray<Row>, UsageError> =>
        done ? Effect.succeed(noRows) : Effect.flatMap(
          Effect.tryPromise({ try: () => batches.next(), catch: cannotRead }),
          (result) => {
            if (result.done === true) {
              done = true
              return Effect.succeed(noRows)
            }
            const batch = result.value
            if ("_tag" in batch) {
              done = true
              return Effect.fail(new UsageError({ field: "file", detail: `${path}: ${batch.detail}`, hint: "The first row must name the columns." }))
            }
            return Effect.succeed(batch)
          }
        )
      )
    }
  )
  return {
    rows: Stream.unwrapScoped(Effect.map(pull, (next) =>
      Stream.repeatEffectChunkOption(Effect.flatMap(Effect.mapError(next, Option.some), (rows) =>
        rows.length === 0 ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(rows)))))),
    pull,
    digest: Effect.sync(() => (digest ??= hash.digest("hex")))
  }
}

/**
 * The idempotency key of a row: its own, or `bulk:<sha256 of the file>:<row>`, so a
 * re-run of the same file never refunds a row twice.
 *
 * @since 0.1.0
 */
export const keyOf = (row: Row, fileDigest: string): string => row.idempotencyKey ?? `bulk:${fileDigest}:${row.row}`

/**
 * A request from `path=value` pairs with the CSV rules (dotted paths, a value typed by
 * the provider's schema): what `create --field` builds on top of `--data`. `originalAmounts`
 * is taken out of both as the CSV does it (`--data`'s object, `-f originalAmounts.<target>=<amount>`,
 * or `-f originalAmounts=<JSON>`): it goes beside the request, not into it.
 *
 * @since 0.1.0
 */
export const fromFields = (
  base: Record<string, unknown>,
  pairs: ReadonlyArray<readonly [string, string]>,
  schema: unknown
): { readonly request: Record<string, unknown>; readonly issues: ReadonlyArray<FieldIssue>; readonly originalAmounts: Readonly<Record<string, string>> | undefined } => {
  const { [originalAmountsField]: given, ...rest } = base
  const request: Record<string, unknown> = structuredClone(rest)
  const issues: Array<FieldIssue> = []
  const originals = new Originals()
  if (given !== undefined) originals.addAll(given, issues)
  for (const [name, value] of pairs) {
    const path = name.split(".")
    if (path.some((segment) => segment === "")) {
      issues.push({ path: name, message: "is not a dotted field path such as amount or metadata.order" })
    } else if (name.startsWith(originalsPrefix)) {
      originals.add(name.slice(originalsPrefix.length), value, issues)
    } else if (name === originalAmountsField) {
      const parsed = parseJson(value)
      if (parsed === undefined) issues.push({ path: originalAmountsField, message: notAnObject })
      else originals.addAll(parsed.value, issues)
    } else if (!setPath(request, path, coerce(value, JsonSchema.typesAt(schema, path)))) {
      issues.push({ path: name, message: "is given twice (in --data or another --field)" })
    }
  }
  const originalAmounts = originals.checked(issues)
  return { request: compact(request) as Record<string, unknown>, issues, originalAmounts }
}
