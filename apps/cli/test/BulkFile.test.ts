import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as BulkFile from "../src/BulkFile.js"
import { tempDir } from "./support.js"

// A request schema shaped like the plugins' (JSON Schema draft-07 with $defs), to pin the CSV typing rule.
const schema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $ref: "#/$defs/Request",
  $defs: {
    Id: { type: "integer" },
    Request: {
      type: "object",
      properties: {
        transactions: { type: "array", items: { type: "object", properties: { id: { $ref: "#/$defs/Id" }, amount: { type: "string" } } } },
        note: { anyOf: [{ type: "string" }, { type: "null" }] },
        tags: { type: "array", items: { type: "string" } },
        urgent: { type: "boolean" },
        metadata: { type: "object", additionalProperties: { type: "string" } }
      }
    }
  }
}

const rows = (name: string, text: string, format: BulkFile.Format = "csv") =>
  Effect.gen(function*() {
    const path = join(tempDir(), name)
    writeFileSync(path, text)
    const pass = BulkFile.read(path, format, schema)
    const collected = Chunk.toReadonlyArray(yield* Stream.runCollect(pass.rows))
    return { rows: collected, digest: yield* pass.digest }
  })

describe("BulkFile", () => {
  it.effect("maps dotted columns to nested fields and types cells by the provider's schema", () =>
    Effect.gen(function*() {
      const { rows: [row] } = yield* rows("a.csv", 'transactions.0.id,transactions.0.amount,note,tags,urgent,metadata.order\n12345,10.50,007,"[""a"",""b""]",true,42\n')
      assert.deepStrictEqual(row!.request, {
        transactions: [{ id: 12345, amount: "10.50" }],
        note: "007",
        tags: ["a", "b"],
        urgent: true,
        metadata: { order: "42" }
      })
    }))

  it.effect("reads quoted cells with commas, quotes and newlines, CRLF, and leaves empty cells out", () =>
    Effect.gen(function*() {
      const { rows: parsed } = yield* rows("b.csv", '\uFEFFnote,transactions.0.amount,idempotency_key\r\n"a, ""quoted""\nline",1.00,k-1\r\n,2.00,\r\n')
      assert.deepStrictEqual(parsed.map((r) => [r.row, r.line, r.request, r.idempotencyKey]), [
        [1, 2, { note: "a, \"quoted\"\nline", transactions: [{ amount: "1.00" }] }, "k-1"],
        [2, 4, { transactions: [{ amount: "2.00" }] }, undefined]
      ])
    }))

  it.effect("reports a row with the wrong number of cells, and keeps an id too large to be exact as text", () =>
    Effect.gen(function*() {
      const { rows: [short, big] } = yield* rows("c.csv", "transactions.0.id,note\n1\n90071992547409931,x\n")
      assert.deepStrictEqual(short!.issues, [{ path: "", message: "has 1 cells but the header has 2 columns" }])
      assert.deepStrictEqual(big!.request, { transactions: [{ id: "90071992547409931" }], note: "x" })
    }))

  it.effect("keeps a spreadsheet's exponent or decimal id as text, for the schema to refuse: read as a number it would be another payment", () =>
    Effect.gen(function*() {
      const { rows: parsed } = yield* rows("e.csv", "transactions.0.id\n1.23457E+6\n1.2e6\n12.5\n1234570\n")
      assert.deepStrictEqual(parsed.map((r) => r.request), [
        { transactions: [{ id: "1.23457E+6" }] },
        { transactions: [{ id: "1.2e6" }] },
        { transactions: [{ id: "12.5" }] },
        { transactions: [{ id: 1234570 }] }
      ])
    }))

  it.effect("derives a key per row from the file's SHA-256 unless the row has its own", () =>
    Effect.gen(function*() {
      const { rows: [a, b], digest } = yield* rows("d.jsonl", '{"note":"x","idempotency_key":"mine"}\n\n{"note":"y"}\n', "jsonl")
      assert.match(digest, /^[0-9a-f]{64}$/)
      assert.strictEqual(BulkFile.keyOf(a!, digest), "mine")
      assert.deepStrictEqual(a!.request, { note: "x" })
      assert.strictEqual(b!.row, 3)
      assert.strictEqual(BulkFile.keyOf(b!, digest), `bulk:${digest}:3`)
    }))

  it.effect("reads rows that straddle read buffers: quoted newlines, CRLF and long lines across 16 KiB boundaries", () =>
    Effect.gen(function*() {
      const lines = ["note,transactions.0.amount"]
      const expected: Array<string> = []
      for (let i = 0; i < 3000; i++) {
        // Cells of varying length so quotes, CR and LF fall on every position of a read buffer.
        const note = i % 7 === 0 ? `multi\nline ${"x".repeat(i % 50)} "q"` : `n${i}${"y".repeat(i % 37)}`
        expected.push(note)
        lines.push(`"${note.replace(/"/g, "\"\"")}",${i}.00`)
      }
      lines.push(`"${"z".repeat(40_000)}",1.00`)
      expected.push("z".repeat(40_000))
      const { rows: parsed } = yield* rows("straddle.csv", lines.join("\r\n"))
      assert.deepStrictEqual(parsed.map((r) => r.request?.["note"]), expected)
      assert.strictEqual(parsed.length, 3001)
      let line = 2
      for (const [i, row] of parsed.entries()) {
        assert.strictEqual(row.row, i + 1)
        assert.strictEqual(row.line, line)
        line += (expected[i]!.match(/\n/g) ?? []).length + 1
      }

      const long = JSON.stringify({ note: "w".repeat(50_000) })
      const { rows: jsonl } = yield* rows("straddle.jsonl", `{"note":"a"}\r\n\n${long}\n{"note":"b"}`, "jsonl")
      assert.deepStrictEqual(jsonl.map((r) => [r.row, r.request?.["note"]]), [[1, "a"], [3, "w".repeat(50_000)], [4, "b"]])
    }))

  it.effect("pulls rows a few at a time, the same rows as the stream, and the file's digest after the last", () =>
    Effect.gen(function*() {
      const lines = ["note"]
      for (let i = 0; i < 5000; i++) lines.push(`r${i}`)
      const path = join(tempDir(), "pull.csv")
      writeFileSync(path, `${lines.join("\n")}\n`)
      const streamed = yield* rows("pull-stream.csv", `${lines.join("\n")}\n`)
      const pass = BulkFile.read(path, "csv", schema)
      const pulled = yield* Effect.scoped(Effect.gen(function*() {
        const pull = yield* pass.pull
        const out: Array<BulkFile.Row> = []
        let largest = 0
        for (let batch = yield* pull; batch.length > 0; batch = yield* pull) {
          largest = Math.max(largest, batch.length)
          out.push(...batch)
        }
        assert.deepStrictEqual(yield* pull, [], "the end stays the end")
        assert.isAtMost(largest, 256, "rows are built as they are asked for, not a whole read buffer at once")
        return out
      }))
      assert.deepStrictEqual(pulled, streamed.rows)
      assert.strictEqual(yield* pass.digest, streamed.digest)
    }))

  it.effect("fails on an unusable header row whichever way the file is read", () =>
    Effect.gen(function*() {
      const path = join(tempDir(), "header.csv")
      writeFileSync(path, "note,,amount\nx,y,z\n")
      const pass = BulkFile.read(path, "csv", schema)
      const pulled = yield* Effect.scoped(Effect.flatMap(pass.pull, (pull) => pull)).pipe(Effect.flip)
      assert.include(pulled.message, "column 2 of the header row has no name")
      const streamed = yield* Stream.runCollect(BulkFile.read(path, "csv", schema).rows).pipe(Effect.flip)
      assert.strictEqual(streamed.message, pulled.message)
    }))

  it.effect("refuses once, for the header, a column the request cannot have, and a file without a header row", () =>
    Effect.gen(function*() {
      const closed = { ...schema, $defs: { ...schema.$defs, Request: { ...schema.$defs.Request, additionalProperties: false } } }
      const read = (name: string, text: string) => {
        const path = join(tempDir(), name)
        writeFileSync(path, text)
        return Stream.runCollect(BulkFile.read(path, "csv", closed).rows).pipe(Effect.map(Chunk.toReadonlyArray))
      }
      // Every row would fail on it alike: one message for the header, naming the column and the fields there are.
      const stray = yield* Effect.flip(read("stray.csv", "transactions.0.amount,nte,idempotency_key\n1.00,x,k-1\n2.00,y,k-2\n"))
      assert.include(stray.message, 'column "nte" is not a field of the provider\'s request; its fields are transactions, note, tags, urgent, metadata')
      // Known fields (nested ones by their first segment) and the key column pass.
      assert.strictEqual((yield* read("known.csv", "transactions.0.amount,metadata.order,idempotency_key\n1.00,7,k-1\n")).length, 1)
      // A header without rows is an empty batch; no header at all is a file that is not what was meant.
      assert.deepStrictEqual(yield* read("header-only.csv", "transactions.0.amount,note\n"), [])
      const empty = yield* Effect.flip(read("empty.csv", ""))
      assert.include(empty.message, "is empty: a CSV file starts with a header row")
      // A schema that takes other fields (no additionalProperties: false) leaves the column to each row, as before.
      assert.strictEqual((yield* rows("open.csv", "transactions.0.amount,nte\n1.00,x\n")).rows.length, 1)
    }))

  it.effect("reports a quoted cell the file never closes instead of reading the rows after it into it", () =>
    Effect.gen(function*() {
      const { rows: parsed } = yield* rows("u.csv", 'note,transactions.0.amount\n"open,1.00\nx,2.00\ny,3.00')
      assert.strictEqual(parsed.length, 1)
      assert.isUndefined(parsed[0]!.request)
      assert.match(parsed[0]!.issues[0]!.message, /closing quote is missing/)
      const header = yield* Effect.either(rows("uh.csv", '"note,transactions.0.amount\nx,1.00\n'))
      assert.isTrue(header._tag === "Left" && header.left.message.includes("closing quote is missing"))
    }))

  it.effect("reads a JSONL file that starts with a UTF-8 byte order mark", () =>
    Effect.gen(function*() {
      const { rows: parsed } = yield* rows("bom.jsonl", '\uFEFF{"note":"x"}\r\n{"note":"y"}\r\n', "jsonl")
      assert.deepStrictEqual(parsed.map((r) => [r.row, r.request, r.issues]), [[1, { note: "x" }, []], [2, { note: "y" }, []]])
    }))

  it.effect("reads the rows' original amounts beside the request: originalAmounts.<target> columns, an originalAmounts column of JSON, a JSONL field", () =>
    Effect.gen(function*() {
      const closed = { ...schema, $defs: { ...schema.$defs, Request: { ...schema.$defs.Request, additionalProperties: false } } }
      const path = join(tempDir(), "originals.csv")
      // The target after "originalAmounts." is a name, digits included: not an array index.
      writeFileSync(path, [
        "transactions.0.id,transactions.0.amount,originalAmounts.12345,originalAmounts",
        "12345,10.00,100.00,",
        '12345,10.00,,"{""12345"":""100.00"",""678"":""5.00""}"',
        '12345,10.00,100.00,"{""12345"":""90.00""}"',
        "12345,10.00,,not json",
        '12345,10.00,,"{""12345"":100}"'
      ].join("\n"))
      const parsed = Chunk.toReadonlyArray(yield* Stream.runCollect(BulkFile.read(path, "csv", closed).rows))
      assert.deepStrictEqual(parsed.map((r) => [r.request, r.originalAmounts]), [
        [{ transactions: [{ id: 12345, amount: "10.00" }] }, { "12345": "100.00" }],
        [{ transactions: [{ id: 12345, amount: "10.00" }] }, { "12345": "100.00", "678": "5.00" }],
        [undefined, undefined],
        [undefined, undefined],
        [undefined, undefined]
      ])
      assert.deepStrictEqual(parsed.slice(2).map((r) => r.issues), [
        [{ path: "originalAmounts.12345", message: "is given twice: give each target's original amount once" }],
        [{ path: "originalAmounts", message: 'must be a JSON object of target id to original amount, such as {"12345":"100.00"}' }],
        [{ path: "originalAmounts.12345", message: "Expected string, actual 100" }]
      ])
      const { rows: lines } = yield* rows("originals.jsonl", '{"note":"x","originalAmounts":{"12345":"100.00"}}\n{"note":"y","originalAmounts":[1]}\n', "jsonl")
      assert.deepStrictEqual(lines.map((r) => [r.request, r.originalAmounts]), [[{ note: "x" }, { "12345": "100.00" }], [undefined, undefined]])
      assert.deepStrictEqual(lines[1]!.issues.map((i) => i.path), ["originalAmounts"])
      // `create --data` and `--field` take them the same way, beside the request.
      const built = BulkFile.fromFields({ note: "x", originalAmounts: { "12345": "100.00" } }, [["originalAmounts.678", "5.00"]], closed)
      assert.deepStrictEqual([built.request, built.originalAmounts, built.issues], [{ note: "x" }, { "12345": "100.00", "678": "5.00" }, []])
    }))
})
