import { assert, describe, it } from "@effect/vitest"
import * as JsonNumbers from "../src/JsonNumbers.js"

describe("JsonNumbers", () => {
  it("a literal is exact when the double reads back as the same decimal, however it is spelled", () => {
    for (const literal of ["0", "-0", "0.0", "0.1", "250", "250.00", "2.5e2", "2.50E+2", "25000e-2", "9007199254740991", "999999999999999.9", "1e21", "5e-324"]) {
      assert.isTrue(JsonNumbers.isExact(literal), literal)
    }
    for (const literal of ["250.000000000000001", "9007199254740993", "12345678901234567890", "0.1000000000000000055511151231257827", "1e400", "-1e400", "1e-400"]) {
      assert.isFalse(JsonNumbers.isExact(literal), literal)
    }
  })

  it("names each inexact number by its path of keys and indexes, in text order", () => {
    const text = `{"a\\"b": 1, "refundAmount": [{"refundCost": 250.000000000000001, "x": "9007199254740993"}, {"refundCost": 1}],
      "nested": {"deep": [[0, 9007199254740993]]}, "after": 2.5e2}`
    assert.deepStrictEqual(JsonNumbers.inexactNumbers(text).map((n) => [n.path, n.literal, n.parsed]), [
      ["refundAmount.0.refundCost", "250.000000000000001", 250],
      ["nested.deep.0.1", "9007199254740993", 9007199254740992]
    ])
    assert.include(JsonNumbers.describe(JsonNumbers.inexactNumbers(text)[0]!), "read as 250")
    assert.deepStrictEqual(JsonNumbers.inexactNumbers(`{"ok": [1, 2.50, -0.1, true, null, "1e400"]}`), [])
    // Digits on both sides of the point count together; an exponent alone is enough to look closer.
    assert.deepStrictEqual(JsonNumbers.inexactNumbers(`{"a": 1234567890.12345678, "b": 1e400, "c": 123456789012345}`).map((n) => n.path), ["a", "b"])
  })

  it("walks a deeply nested text without recursion", () => {
    const depth = 200_000
    const text = `${"[".repeat(depth)}1e400${"]".repeat(depth)}`
    const found = JsonNumbers.inexactNumbers(text)
    assert.strictEqual(found.length, 1)
    assert.strictEqual(found[0]!.path.split(".").length, depth)
  })
})
