import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted, TestClock } from "effect"
import * as AirpayCrypto from "../src/AirpayCrypto.js"

// Vectors from providers/airpay.md (Node crypto output checked against `openssl enc -aes-256-cbc`).
const seedBase64 =
  "W3siYXBfdHJhbnNhY3Rpb25pZCI6IDEwMjY1LCJhbW91bnQiOiAiMTAwLjAwIn0seyJhcF90cmFuc2FjdGlvbmlkIjogMTAyNjQsImFtb3VudCI6ICIxMC4wMCJ9XQ=="
const plaintext = `{"transactions":"${seedBase64}"}`
const expectedEncdata =
  "0123456789abcdef92B4Qu48AZttGYuSv9f4lyZwYJgAkFA5E4rrvwq/IgyDyorwddetwVHdKxRi+oZU+sV49BcDHftt6dOuCjjwmvWkQpEC8ULX2ieBqGRUsTcauAZ3SFLqUA7jxhm49cLebJXpLRQttEDO9rhpHpXXj6n+wt/N6YUUMuuFX9G53E+ov751PuA59qUPTAGJsDddUI5yyOn1TxVOu++qld1W4w=="
const key = AirpayCrypto.encryptionKey(Redacted.make("USER"), Redacted.make("PASS"))

describe("AirpayCrypto", () => {
  it("the AES key is the md5 hex of username~:~password", () => {
    assert.strictEqual(Redacted.value(key), "5569f00453ecc17a4484cc1ed4d6c5b0")
  })

  it("encdata is the 16-character IV followed by the base64 ciphertext (documented vector)", () => {
    const encdata = AirpayCrypto.encryptWith(plaintext, key, "0123456789abcdef")
    assert.deepStrictEqual(encdata, Either.right(expectedEncdata))
  })

  it("an IV that is not 16 lowercase hex characters is refused", () => {
    assert.isTrue(Either.isLeft(AirpayCrypto.encryptWith(plaintext, key, "0123456789ABCDEF")))
    assert.isTrue(Either.isLeft(AirpayCrypto.encryptWith(plaintext, key, "0123")))
  })

  it("decrypts the documented vector, and a fresh random-IV encryption round-trips", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(AirpayCrypto.decrypt(expectedEncdata, key), Either.right(plaintext))
      const sealed = yield* AirpayCrypto.encrypt(plaintext, key)
      assert.match(sealed, /^[0-9a-f]{16}[A-Za-z0-9+/]+=*$/)
      assert.notStrictEqual(sealed, expectedEncdata)
      assert.deepStrictEqual(AirpayCrypto.decrypt(sealed, key), Either.right(plaintext))
    }).pipe(Effect.runSync))

  it("a wrong key or damaged data is a Left that does not echo the input", () => {
    const wrong = AirpayCrypto.encryptionKey(Redacted.make("USER"), Redacted.make("WRONG"))
    const result = AirpayCrypto.decrypt(expectedEncdata, wrong)
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) assert.notInclude(result.left, "92B4Qu48")
    assert.isTrue(Either.isLeft(AirpayCrypto.decrypt("0123456789abcdef!!!not base64!!!!!!!!!!!!!!!", key)))
    assert.isTrue(Either.isLeft(AirpayCrypto.decrypt("short", key)))
  })

  it("checksum: sha256 of the values in key order plus the date (documented vector)", () => {
    assert.strictEqual(
      AirpayCrypto.checksum({ transactions: seedBase64 }, "2025-01-01"),
      "35de33fc436bbd1c7b7abd19fda94a573debba0d4ded755f615946eb965be7f7"
    )
    // With mode, "mode" sorts before "transactions": sha256("refund" + base64 + date).
    assert.strictEqual(
      AirpayCrypto.checksum({ transactions: seedBase64, mode: "refund" }, "2025-01-01"),
      "a90baddcdbd443f8dfb9df12515520c0c75c114a6abcac280b4a71e923aae67a"
    )
    // The token call's data: client_id, client_secret, grant_type, merchant_id.
    assert.strictEqual(
      AirpayCrypto.checksum({ merchant_id: "335854", grant_type: "client_credentials", client_secret: "secretX", client_id: "e38135" }, "2025-01-01"),
      "c203f5fa53427b064206f128d80af718b70b3230701d6eac3bb8dc17c7d80bbe"
    )
  })

  it("the checksum date is the date in Asia/Kolkata, not UTC", () => {
    assert.strictEqual(AirpayCrypto.kolkataDate(Date.parse("2024-12-31T18:29:59.999Z")), "2024-12-31")
    assert.strictEqual(AirpayCrypto.kolkataDate(Date.parse("2024-12-31T18:30:00.000Z")), "2025-01-01")
    assert.strictEqual(AirpayCrypto.kolkataDate(Date.parse("2025-01-01T12:00:00.000Z")), "2025-01-01")
  })

  it.effect("checksumNow reads effect's Clock, so the date can be pinned", () =>
    Effect.gen(function*() {
      // 20:00 UTC on 31 Dec is already 1 Jan in India.
      yield* TestClock.setTime(Date.parse("2024-12-31T20:00:00.000Z"))
      assert.strictEqual(yield* AirpayCrypto.checksumNow({ transactions: seedBase64 }), "35de33fc436bbd1c7b7abd19fda94a573debba0d4ded755f615946eb965be7f7")
    }))

  it("privatekey is sha256 of secret@username:|:password", () => {
    const privateKey = AirpayCrypto.privateKey(Redacted.make("SECRET"), Redacted.make("USER"), Redacted.make("PASS"))
    assert.strictEqual(Redacted.value(privateKey), "b48b5e2e90a01926f578a607a63cf989ea098cf02cfd5b4bbef35537d2e0b9a6")
    assert.notInclude(String(privateKey), "b48b5e2e")
  })

  it("transactions are base64 of the JSON array; the seed's example decodes to its JSON", () => {
    assert.deepStrictEqual(
      AirpayCrypto.decodeTransactions(seedBase64),
      Either.right('[{"ap_transactionid": 10265,"amount": "100.00"},{"ap_transactionid": 10264,"amount": "10.00"}]')
    )
    assert.deepStrictEqual(AirpayCrypto.decodeTransactions(AirpayCrypto.encodeTransactions("[1]")), Either.right("[1]"))
    // The docs' "Value Like" column is a truncated fragment, not valid base64.
    assert.isTrue(Either.isLeft(AirpayCrypto.decodeTransactions("yJhbW91bnQiOiAiMTAwLjAwIiB9XQ==")))
  })
})
