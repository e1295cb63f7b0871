/**
 * Airpay v4's request and response crypto: the AES-256-CBC `encdata` envelope, the
 * dated SHA-256 `checksum` and the `privatekey`, exactly as Airpay's v4 docs (and the
 * integrations that work against the live gateway) compute them.
 *
 * - key: `md5(username~:~password)` as lowercase hex, its 32 characters used as the
 *   32 ASCII bytes of the AES-256 key (PHP `openssl_encrypt` semantics);
 * - encdata: a 16-hex-character IV (used as its 16 ASCII bytes) followed by the base64
 *   of the PKCS#7-padded ciphertext;
 * - checksum: SHA-256 of the data's values concatenated in byte-wise key order, then
 *   the date in Asia/Kolkata as YYYY-MM-DD;
 * - privatekey: SHA-256 of `secret@username:|:password`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"

const md5Hex = (text: string) => createHash("md5").update(text, "utf8").digest("hex")
const sha256Hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex")

/**
 * The AES key Airpay calls "encryptionkey": the md5 hex of `username~:~password`.
 * It is as secret as the password it is made of.
 *
 * @since 0.1.0
 */
export const encryptionKey = (username: Redacted.Redacted<string>, password: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(md5Hex(`${Redacted.value(username)}~:~${Redacted.value(password)}`))

/**
 * The `privatekey` form field of authenticated calls: sha256 hex of `secret@username:|:password`.
 * It authenticates the merchant, so it is kept redacted like the credentials.
 *
 * @since 0.1.0
 */
export const privateKey = (
  secret: Redacted.Redacted<string>,
  username: Redacted.Redacted<string>,
  password: Redacted.Redacted<string>
): Redacted.Redacted<string> => Redacted.make(sha256Hex(`${Redacted.value(secret)}@${Redacted.value(username)}:|:${Redacted.value(password)}`))

const ivPattern = /^[0-9a-f]{16}$/

/**
 * A fresh IV as Airpay wants it: 8 random bytes written as 16 lowercase hex characters.
 *
 * @since 0.1.0
 */
export const randomIv: Effect.Effect<string> = Effect.sync(() => randomBytes(8).toString("hex"))

/**
 * Encrypts `plaintext` into Airpay's `encdata`: the IV's 16 characters, then the
 * base64 ciphertext. `iv` must be 16 lowercase hex characters (tests pin it).
 *
 * @since 0.1.0
 */
export const encryptWith = (plaintext: string, key: Redacted.Redacted<string>, iv: string): Either.Either<string, string> => {
  if (!ivPattern.test(iv)) return Either.left("the IV must be 16 lowercase hex characters")
  return Either.right(seal(plaintext, key, iv))
}

const seal = (plaintext: string, key: Redacted.Redacted<string>, iv: string): string => {
  const cipher = createCipheriv("aes-256-cbc", Buffer.from(Redacted.value(key), "utf8"), Buffer.from(iv, "utf8"))
  return iv + Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]).toString("base64")
}

/**
 * Encrypts with a fresh random IV.
 *
 * @since 0.1.0
 */
export const encrypt = (plaintext: string, key: Redacted.Redacted<string>): Effect.Effect<string> =>
  Effect.map(randomIv, (iv) => seal(plaintext, key, iv))

const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Decrypts an `encdata` or a response's `response` value. Left says why it cannot
 * be read (never echoing the input, which may be a secret-bearing payload).
 *
 * @since 0.1.0
 */
export const decrypt = (encdata: string, key: Redacted.Redacted<string>): Either.Either<string, string> => {
  if (encdata.length < 16 + 24) return Either.left("too short to be an IV followed by a ciphertext")
  const iv = encdata.slice(0, 16)
  const body = encdata.slice(16)
  if (!base64Pattern.test(body) || body.length % 4 !== 0) return Either.left("the ciphertext after the 16-character IV is not base64")
  try {
    const decipher = createDecipheriv("aes-256-cbc", Buffer.from(Redacted.value(key), "utf8"), Buffer.from(iv, "utf8"))
    return Either.right(Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8"))
  } catch {
    // A wrong key or a damaged ciphertext both end in a padding failure.
    return Either.left("it does not decrypt with the configured key (wrong credentials or damaged data)")
  }
}

// India has one offset and no daylight saving, so IST is plain arithmetic.
const istOffsetMillis = (5 * 60 + 30) * 60 * 1000

/**
 * The calendar date in Asia/Kolkata (IST, UTC+05:30) as YYYY-MM-DD: Airpay's servers
 * compute the checksum date there, so a UTC server between 00:00 and 05:30 IST must
 * not use its own date.
 *
 * @since 0.1.0
 */
export const kolkataDate = (epochMillis: number): string => new Date(epochMillis + istOffsetMillis).toISOString().slice(0, 10)

/**
 * Airpay's checksum of a request's data on a given date (YYYY-MM-DD): sha256 hex of the
 * values in byte-wise key order, concatenated without separator, then the date.
 * Values are strings: refundkit never sends a PHP float, whose string form differs.
 *
 * @since 0.1.0
 */
export const checksum = (data: Readonly<Record<string, string>>, date: string): string => {
  const keys = Object.keys(data).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))))
  return sha256Hex(keys.map((key) => data[key]!).join("") + date)
}

/**
 * The checksum for today in Asia/Kolkata, read from effect's `Clock` so tests can pin the date.
 *
 * @since 0.1.0
 */
export const checksumNow = (data: Readonly<Record<string, string>>): Effect.Effect<string> =>
  Effect.map(Clock.currentTimeMillis, (now) => checksum(data, kolkataDate(now)))

/**
 * The `transactions` field of a refund: base64 of the JSON array.
 *
 * @since 0.1.0
 */
export const encodeTransactions = (json: string): string => Buffer.from(json, "utf8").toString("base64")

/**
 * Reads a base64 `transactions` field back to its JSON text.
 *
 * @since 0.1.0
 */
export const decodeTransactions = (base64: string): Either.Either<string, string> =>
  base64Pattern.test(base64) && base64.length % 4 === 0
    ? Either.right(Buffer.from(base64, "base64").toString("utf8"))
    : Either.left("transactions is not valid base64")
