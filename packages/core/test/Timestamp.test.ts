import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck, Schema } from "effect"
import * as Timestamp from "../src/Timestamp.js"

const parsed = (text: string) => {
  const result = Timestamp.parse(text)
  assert.isTrue(Either.isRight(result), `${text} should parse: ${Either.isLeft(result) ? result.left : ""}`)
  return Either.getOrThrow(result)
}

const refused = (text: string) => {
  const result = Timestamp.parse(text)
  assert.isTrue(Either.isLeft(result), `${text} should be refused, got ${Either.getOrUndefined(result)}`)
  return Either.isLeft(result) ? result.left : ""
}

describe("Timestamp", () => {
  it("writes every spelling of one instant the way the ledger writes createdAt", () => {
    for (
      const text of [
        "2026-12-06T14:00:00Z",
        "2026-12-06T14:00:00.000Z",
        "2026-12-06t14:00:00z",
        "2026-12-06T15:00:00+01:00",
        "2026-12-06T08:30:00.000000-05:30",
        "2026-12-07T00:00:00+10:00",
        "2026-12-06T14:00:00-00:00",
        " 2026-12-06T14:00:00Z "
      ]
    ) assert.strictEqual(parsed(text), "2026-12-06T14:00:00.000Z", text)
    assert.strictEqual(parsed("2026-12-06"), "2026-12-06T00:00:00.000Z")
    assert.strictEqual(parsed("2024-02-29"), "2024-02-29T00:00:00.000Z")
    assert.strictEqual(parsed("2026-12-31T23:30:00-01:00"), "2027-01-01T00:30:00.000Z")
  })

  it("rounds an instant finer than a millisecond up to the next one, so it bounds the stored milliseconds exactly", () => {
    assert.strictEqual(parsed("2026-12-06T14:00:00.0005Z"), "2026-12-06T14:00:00.001Z")
    assert.strictEqual(parsed("2026-12-06T14:00:00.1234Z"), "2026-12-06T14:00:00.124Z")
    assert.strictEqual(parsed("2026-12-06T14:00:00.1230000Z"), "2026-12-06T14:00:00.123Z")
    assert.strictEqual(parsed("2026-12-06T23:59:59.9999Z"), "2026-12-07T00:00:00.000Z")
    assert.strictEqual(parsed("2026-12-06T14:00:00.5Z"), "2026-12-06T14:00:00.500Z")
  })

  it("refuses what is not an instant, saying why", () => {
    for (const text of ["", "yesterday", "1733493600", "2026-12-06T14:00:00", "2026-12-06T14:00Z", "2026-12-06 14:00:00Z", "2026-12-06T14:00:00+0100", "26-12-06"]) {
      assert.include(refused(text), "RFC 3339 timestamp with an offset", text)
    }
    assert.include(refused("2026-13-01"), "month 13 is not 01 to 12")
    assert.include(refused("2026-02-29"), "2026-02 has no day 29")
    assert.include(refused("2026-04-31T00:00:00Z"), "has no day 31")
    assert.include(refused("2026-12-06T24:00:00Z"), "not a time of day")
    assert.include(refused("2026-12-06T23:59:60Z"), "not a time of day")
    assert.include(refused("2026-12-06T14:00:00+24:00"), "offset +24:00")
    assert.include(refused("9999-12-31T23:00:00-02:00"), "outside the years 0000 to 9999")
  })

  it("orders as text exactly as the instants it writes", () =>
    FastCheck.assert(
      FastCheck.property(
        FastCheck.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }),
        FastCheck.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }),
        FastCheck.integer({ min: -23 * 60, max: 23 * 60 }),
        (a, b, offsetMinutes) => {
          // `a` spelled at an offset, `b` as the ledger stores it.
          const local = new Date(a.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23)
          const sign = offsetMinutes < 0 ? "-" : "+"
          const abs = Math.abs(offsetMinutes)
          const text = `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`
          const bound = parsed(text)
          const stored = b.toISOString()
          return (bound < stored) === (a.getTime() < b.getTime()) && (bound === stored) === (a.getTime() === b.getTime())
        }
      )
    ))

  it("FromText decodes to the ledger's form and fails with the rule", () => {
    assert.strictEqual(Schema.decodeUnknownSync(Timestamp.FromText)("2026-12-06T15:00:00+01:00"), "2026-12-06T14:00:00.000Z")
    const failure = Schema.decodeUnknownEither(Timestamp.FromText)("2026-12-06T14:00:00")
    assert.isTrue(Either.isLeft(failure))
    if (Either.isLeft(failure)) assert.include(failure.left.message, "RFC 3339 timestamp with an offset")
    assert.isTrue(Timestamp.isCanonical("2026-12-06T14:00:00.000Z"))
    assert.isFalse(Timestamp.isCanonical("2026-12-06T14:00:00Z"))
  })
})
