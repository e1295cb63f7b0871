import { createHmac, timingSafeEqual } from "node:crypto"
import * as RawJson from "./rawJson.js"

// The field set a refund callback's X-Checksum covers: Exirom's card rule
// `mid|orderAmount|orderCurrency|transactionId`, where a refund callback that carries
// `totalAmount` instead of `orderAmount` puts it in the amount slot, and
// `processedCurrency` stands in for a missing `orderCurrency`. Absent values are "".
export const message = (fields: ReadonlyMap<string, string>): string =>
  [
    RawJson.signed(fields, "mid") ?? "",
    RawJson.signed(fields, "orderAmount") ?? RawJson.signed(fields, "totalAmount") ?? "",
    RawJson.signed(fields, "orderCurrency") ?? RawJson.signed(fields, "processedCurrency") ?? "",
    RawJson.signed(fields, "transactionId") ?? ""
  ].join("|")

export const sign = (secret: string, text: string): string => createHmac("sha256", secret).update(text, "utf8").digest("base64")

export const verify = (secret: string, text: string, checksum: string): boolean => {
  const expected = Buffer.from(sign(secret, text), "utf8")
  const given = Buffer.from(checksum.trim(), "utf8")
  return expected.length === given.length && timingSafeEqual(expected, given)
}
