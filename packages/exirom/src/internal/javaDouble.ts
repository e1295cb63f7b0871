// An amount as Java's Double.toString prints it, the form Exirom's callbacks carry and its
// X-Checksum covers: plain with at least one decimal from 10^-3 up to 10^7 ("200.0", "10.5",
// "9999999.99"), computerized scientific notation from 10^7 up ("1.0E7", "1.2345678E7").
// Amounts here are whole hundredths, so none is below 10^-3 but zero, which Java prints "0.0".
// The digits are the exact amount's, never a float's: for up to 15 significant digits (every
// amount below 10^13) they are also the Double's shortest digits, which Java prints.
import * as Money from "@refundkit/core/Money"

const sevenDigits = 1_000_000_000n // 10^7 in hundredths

export const javaDouble = (minor: bigint): string => {
  const sign = minor < 0n ? "-" : ""
  const magnitude = minor < 0n ? -minor : minor
  const [whole = "0", cents = "00"] = Money.formatMinor(magnitude, 2).split(".")
  if (magnitude < sevenDigits) return `${sign}${whole}.${cents.replace(/0$/, "")}`
  const digits = `${whole}${cents}`.replace(/0+$/, "")
  return `${sign}${digits[0]}.${digits.length > 1 ? digits.slice(1) : "0"}E${whole.length - 1}`
}
