import { assert, describe, it } from "@effect/vitest"
import { canonicalJson, deriveId, fingerprint } from "../src/Refund.js"

// The definition canonicalJson had when the first ledgers were written. Fingerprints are
// stored: a replay of the same body must print exactly the same text forever, or it would
// be refused as a reused idempotency key.
const reference = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

// A small deterministic generator of JSON-like values, with the awkward cases: undefined
// members and elements, keys that sort differently by code unit than by code point,
// numeric-looking keys (which objects enumerate first), escapes, nesting.
const generator = (seed: number) => {
  let state = seed
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
  const keys = ["a", "b", "B", "10", "2", "é", "\u{1F600}", "\uFFFD", "", "key with space", "quote\"", "z", "amount", "transactionId"]
  const strings = ["", "x", "25.50", "line\nbreak", "tab\t", "\u0000", "é", "\u{1F600}", "\\"]
  const value = (depth: number): unknown => {
    const pick = Math.floor(next() * (depth > 3 ? 6 : 9))
    switch (pick) {
      case 0:
        return null
      case 1:
        return undefined
      case 2:
        return next() < 0.5
      case 3:
        return Math.floor(next() * 1e6) - 5e5
      case 4:
        return next() * 1e3
      case 5:
        return strings[Math.floor(next() * strings.length)]
      case 6:
      case 7: {
        const out: Record<string, unknown> = {}
        const count = Math.floor(next() * 6)
        for (let i = 0; i < count; i++) out[keys[Math.floor(next() * keys.length)]!] = value(depth + 1)
        return out
      }
      default:
        return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1))
    }
  }
  return () => value(0)
}

describe("canonicalJson", () => {
  it("prints exactly what the first ledgers' definition printed, for 20,000 generated values", () => {
    const make = generator(42)
    for (let i = 0; i < 20_000; i++) {
      const value = make()
      assert.strictEqual(canonicalJson(value), reference(value), JSON.stringify(value))
    }
  })

  it("is independent of key order and drops undefined members", () => {
    const a = { transactionId: 12345, amount: "25.50", metadata: { b: "2", a: "1" }, callbackUrl: undefined }
    const b = { metadata: { a: "1", b: "2" }, amount: "25.50", transactionId: 12345 }
    assert.strictEqual(canonicalJson(a), canonicalJson(b))
    assert.strictEqual(canonicalJson(a), `{"amount":"25.50","metadata":{"a":"1","b":"2"},"transactionId":12345}`)
    assert.strictEqual(fingerprint("exirom", a), fingerprint("exirom", b))
    assert.notStrictEqual(fingerprint("exirom", a), fingerprint("airalo", a))
  })

  it("keeps refund ids as they were", () => {
    assert.strictEqual(deriveId("exirom", "order-42"), deriveId("exirom", "order-42"))
    assert.match(deriveId("exirom", "order-42"), /^rfd_[0-9a-z]{26}$/)
    assert.notStrictEqual(deriveId("exirom", "order-42"), deriveId("exirom", "order-43"))
  })
})
