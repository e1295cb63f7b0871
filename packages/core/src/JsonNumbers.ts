/**
 * JSON numbers a double cannot carry: `JSON.parse` reads `250.000000000000001` as 250 and
 * `9007199254740993` as 9007199254740992 without a word, so a request could be checked and
 * sent with a value its author never wrote. The entry points (the gateway's bodies, the
 * CLI's `--data`) look at the number literals in the text before they trust the parse.
 *
 * @since 0.4.0
 */

/**
 * A number literal whose value the parsed double does not hold: where it is (the path of
 * keys and array indexes, joined with "." as request issues name fields), what was
 * written, and what `JSON.parse` made of it.
 *
 * @since 0.4.0
 */
export interface InexactNumber {
  readonly path: string
  readonly literal: string
  readonly parsed: number
}

interface Decimal {
  readonly negative: boolean
  readonly digits: string
  readonly exponent: bigint
}

const numberText = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

/** A decimal's value as sign, significant digits and exponent, with no leading or trailing zeros. */
const decimalOf = (text: string): Decimal | undefined => {
  const match = numberText.exec(text)
  if (match === null) return undefined
  const fraction = match[3] ?? ""
  let digits = `${match[2]}${fraction}`.replace(/^0+/, "")
  let exponent = BigInt(match[4] ?? "0") - BigInt(fraction.length)
  const trailing = digits.length - digits.replace(/0+$/, "").length
  digits = digits.slice(0, digits.length - trailing)
  exponent += BigInt(trailing)
  // Zero has one spelling, whatever its sign or exponent.
  return digits === "" ? { negative: false, digits: "", exponent: 0n } : { negative: match[1] === "-", digits, exponent }
}

/**
 * Whether a JSON number literal reads back as itself: the double `JSON.parse` makes of it
 * prints (shortest round trip) as the same decimal value. `0.1`, `250.00` and `2.5e2` do;
 * `250.000000000000001`, `9007199254740993` and `1e400` do not.
 *
 * @since 0.4.0
 */
export const isExact = (literal: string): boolean => {
  const parsed = Number(literal)
  if (!Number.isFinite(parsed)) return false
  const written = decimalOf(literal)
  const read = decimalOf(String(parsed))
  return written !== undefined && read !== undefined && written.negative === read.negative && written.digits === read.digits &&
    written.exponent === read.exponent
}

interface Frame {
  readonly array: boolean
  key: string | number | undefined
  expectingKey: boolean
}

const number = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y

/** The index just past the string literal that opens at `start`. */
const endOfString = (text: string, start: number): number => {
  let i = start + 1
  while (i < text.length && text[i] !== "\"") i += text[i] === "\\" ? 2 : 1
  return i + 1
}

// A double carries any decimal of at most 15 significant digits exactly, so only a literal with
// 16 or more digits, or an exponent, can be inexact; most request bodies have neither, and the
// gateway runs this on every create. Digits in strings may match too, and then the text is walked.
const mayBeInexact = /\d[\d.]{15}|\d[eE]/

/**
 * The number literals of a JSON text that `JSON.parse` would not read exactly, in text
 * order. The text must be valid JSON (parse it first); this walks it without recursion, so
 * a deeply nested body cannot exhaust the stack.
 *
 * @since 0.4.0
 */
export const inexactNumbers = (text: string): ReadonlyArray<InexactNumber> => {
  if (!mayBeInexact.test(text)) return []
  const found: Array<InexactNumber> = []
  const frames: Array<Frame> = []
  const pathHere = () => frames.map((f) => String(f.key)).join(".")
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    const top = frames[frames.length - 1]
    if (c === "{" || c === "[") {
      frames.push({ array: c === "[", key: c === "[" ? 0 : undefined, expectingKey: c === "{" })
      i += 1
    } else if (c === "}" || c === "]") {
      frames.pop()
      i += 1
    } else if (c === ",") {
      if (top !== undefined) {
        if (top.array) top.key = (top.key as number) + 1
        else top.expectingKey = true
      }
      i += 1
    } else if (c === "\"") {
      const end = endOfString(text, i)
      if (top !== undefined && !top.array && top.expectingKey) {
        top.key = JSON.parse(text.slice(i, end)) as string
        top.expectingKey = false
      }
      i = end
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      number.lastIndex = i
      const literal = number.exec(text)?.[0] ?? c
      if (!isExact(literal)) found.push({ path: pathHere(), literal, parsed: Number(literal) })
      i += literal.length
    } else {
      i += 1
    }
  }
  return found
}

/**
 * What an inexact number is, naming what was written and what it would be read as.
 *
 * @since 0.4.0
 */
export const describe = (inexact: InexactNumber): string =>
  `the JSON number ${inexact.literal} has more digits than a JSON number carries exactly (it would be read as ${inexact.parsed})`

/**
 * {@link describe}, with what the author of a request can do about it.
 *
 * @since 0.4.0
 */
export const refusal = (inexact: InexactNumber): string =>
  `${describe(inexact)}; send it as a string, an amount as a decimal string such as "250.00"`
