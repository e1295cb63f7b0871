import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck, ParseResult, Schema } from "effect"
import * as Money from "../src/Money.js"

const parseOk = (input: string, currency: string) => {
  const result = Money.parse(input, currency)
  assert.isTrue(Either.isRight(result), `${input} ${currency} should parse`)
  return Either.getOrThrow(result)
}

const parseError = (input: string, currency: string) => {
  const result = Money.parse(input, currency)
  assert.isTrue(Either.isLeft(result), `${input} ${currency} should be refused`)
  return Either.isLeft(result) ? result.left.message : ""
}

describe("Money", () => {
  it("parses exact decimal strings into minor units by the currency's exponent", () => {
    assert.strictEqual(parseOk("100.00", "USD").minor, 10000n)
    assert.strictEqual(parseOk("0.5", "USD").minor, 50n)
    assert.strictEqual(parseOk("10", "USD").minor, 1000n)
    assert.strictEqual(parseOk("1500", "JPY").minor, 1500n)
    assert.strictEqual(parseOk("1.234", "KWD").minor, 1234n)
    assert.strictEqual(parseOk("10.500", "USD").minor, 1050n)
  })

  it("refuses amounts finer than the currency allows instead of rounding", () => {
    assert.include(parseError("1.005", "USD"), "at most 2 decimal places")
    assert.include(parseError("1.5", "JPY"), "whole number")
    assert.include(parseError("0.0001", "KWD"), "at most 3 decimal places")
  })

  it("refuses malformed strings and unknown currencies", () => {
    for (const bad of ["", "1,00", "1e3", "0x10", " 1.00", "1.", ".5", "NaN", "Infinity", "1.0.0"]) {
      assert.include(parseError(bad, "USD"), "decimal string", bad)
    }
    assert.include(parseError("1.00", "XXX"), "unknown currency")
  })

  it("prints exactly", () => {
    assert.strictEqual(Money.format(Money.make(1050n, "USD")), "10.50")
    assert.strictEqual(Money.format(Money.make(5n, "USD")), "0.05")
    assert.strictEqual(Money.format(Money.make(-5n, "USD")), "-0.05")
    assert.strictEqual(Money.format(Money.make(1500n, "JPY")), "1500")
    assert.strictEqual(Money.format(Money.make(1n, "KWD")), "0.001")
  })

  it("parse(format(x)) == x for any amount in any exponent", () => {
    const currencies = ["USD", "JPY", "KWD", "CLF", "EUR"]
    FastCheck.assert(
      FastCheck.property(FastCheck.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), FastCheck.constantFrom(...currencies), (minor, currency) => {
        const money = Money.make(minor, currency)
        const back = Money.parse(Money.format(money), currency)
        return Either.isRight(back) && Money.equals(back.right, money)
      })
    )
  })

  it("adds and subtracts exactly without overflow, refusing mixed currencies", () => {
    const big = Money.make(2n ** 80n, "USD")
    const sum = Either.getOrThrow(Money.add(big, big))
    assert.strictEqual(sum.minor, 2n ** 81n)
    assert.strictEqual(Either.getOrThrow(Money.subtract(Money.make(100n, "USD"), Money.make(1n, "USD"))).minor, 99n)
    assert.isTrue(Either.isLeft(Money.add(Money.make(1n, "USD"), Money.make(1n, "EUR"))))
    assert.strictEqual(Either.getOrThrow(Money.compare(Money.make(1n, "USD"), Money.make(2n, "USD"))), -1)
  })

  it("prints a JSON number from the exact value, refusing more digits than a double holds", () => {
    assert.strictEqual(Either.getOrThrow(Money.toJsonNumber(Money.make(25050n, "USD"))), 250.5)
    assert.isTrue(Either.isLeft(Money.toJsonNumber(Money.make(10n ** 16n, "USD"))))
  })

  it("DecimalAmount normalises to fixed places and names the rule it breaks", () => {
    const decode = Schema.decodeUnknownEither(Money.DecimalAmount(2))
    assert.deepStrictEqual(decode("10.5"), Either.right("10.50"))
    assert.deepStrictEqual(decode("7"), Either.right("7.00"))
    const tooFine = decode("1.005")
    assert.isTrue(Either.isLeft(tooFine) && tooFine.left.message.includes("at most 2 decimal places"))
    const zero = decode("0.00")
    assert.isTrue(Either.isLeft(zero) && zero.left.message.includes("greater than zero"))
    assert.isTrue(Either.isLeft(decode(10.5)))
    assert.deepStrictEqual(decode("999999999999999.99"), Either.right("999999999999999.99"))
    const huge = decode("1".repeat(500))
    assert.isTrue(Either.isLeft(huge) && huge.left.message.includes("at most 15 digits"))
    assert.isTrue(Either.isLeft(decode("1000000000000000")))
  })

  it("DecimalAmount given a JSON number says it must be a quoted decimal string, not only 'Expected string'", () => {
    const decode = Schema.decodeUnknownEither(Money.DecimalAmount(2))
    const number = decode(10.5)
    assert.isTrue(Either.isLeft(number))
    if (Either.isLeft(number)) {
      const message = ParseResult.ArrayFormatter.formatErrorSync(number.left)[0]!.message
      assert.strictEqual(message, `must be a decimal string such as "10.00" (in quotes: a JSON number is not accepted, it could be rounded), got 10.5`)
    }
    const object = decode({ amount: "x".repeat(100) })
    assert.isTrue(Either.isLeft(object) && ParseResult.ArrayFormatter.formatErrorSync(object.left)[0]!.message.endsWith("got an object"))
  })

  it("Currency names the rule it breaks: a lower-case code is refused as not known in capitals", () => {
    const refused = Schema.decodeUnknownEither(Money.Currency)("usd")
    assert.isTrue(Either.isLeft(refused))
    if (Either.isLeft(refused)) {
      assert.strictEqual(
        ParseResult.ArrayFormatter.formatErrorSync(refused.left)[0]!.message,
        `must be a known ISO 4217 currency code in capitals (such as USD, EUR, JPY), got "usd"`
      )
    }
  })

  it("MoneyFromJson decodes and encodes the boundary shape", () => {
    const decoded = Schema.decodeUnknownSync(Money.MoneyFromJson)({ amount: "12.34", currency: "EUR" })
    assert.strictEqual(decoded.minor, 1234n)
    assert.deepStrictEqual(Schema.encodeSync(Money.MoneyFromJson)(decoded), { amount: "12.34", currency: "EUR" })
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(Money.MoneyFromJson)({ amount: "1.234", currency: "EUR" })))
  })
})
