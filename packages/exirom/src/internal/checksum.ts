import { createHmac, timingSafeEqual } from "node:crypto"
import * as RawJson from "./rawJson.js"

// The field set a refund callback's X-Checksum covers: Exirom's card rule
// `mid|orderAmount|orderCurrency|transactionId`, where a refund callback that carries
// `totalAmount` instead of `orderAmount` puts it in the amount slot, and
// `processedCurrency` stands in for a missing `orderCurrency`. Absent values are "".
export const message = (fields: ReadonlyMap<string, string>, read: (fields: ReadonlyMap<string, string>, key: string) => string | undefined = RawJson.signed): string =>
  [
    read(fields, "mid") ?? "",
    read(fields, "orderAmount") ?? read(fields, "totalAmount") ?? "",
    read(fields, "orderCurrency") ?? read(fields, "processedCurrency") ?? "",
    read(fields, "transactionId") ?? ""
  ].join("|")

const numberLiteral = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/

// A number as JavaScript prints the parsed value: "200.0" is "200".
const parsedForm = (fields: ReadonlyMap<string, string>, key: string): string | undefined => {
  const raw = RawJson.signed(fields, key)
  return raw !== undefined && fields.get(key) === raw && numberLiteral.test(raw) ? String(Number(raw)) : raw
}

// The messages a genuine callback may be signed over. The docs say to sign the exact callback
// value ("200.0"), but Exirom's own Node quick start verifies `${p.orderAmount}` of the parsed
// body, which is "200": a signer matching that example signs "200", and every callback of a
// whole amount was refused. Either form is accepted; the callback is only a hint anyway, confirmed
// with Exirom before anything is recorded.
export const messages = (fields: ReadonlyMap<string, string>): ReadonlyArray<string> => {
  const raw = message(fields)
  const parsed = message(fields, parsedForm)
  return parsed === raw ? [raw] : [raw, parsed]
}

export const sign = (secret: string, text: string): string => createHmac("sha256", secret).update(text, "utf8").digest("base64")

export const verify = (secret: string, text: string, checksum: string): boolean => {
  const expected = Buffer.from(sign(secret, text), "utf8")
  const given = Buffer.from(checksum.trim(), "utf8")
  return expected.length === given.length && timingSafeEqual(expected, given)
}
