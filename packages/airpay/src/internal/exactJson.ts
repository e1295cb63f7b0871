/**
 * JSON read so that no integer changes on the way in. Airpay writes its ids as JSON
 * numbers (the docs' `"ap_transactionid": 10265`, PHP's `json_encode` of an integer),
 * and `JSON.parse` reads one past 2^53 as a neighbour: 9007199254740993 becomes
 * 9007199254740992, another transaction. Such a literal is read as its digit string,
 * which the wire schemas take as an id; everything else reads as `JSON.parse` reads it.
 */
import * as Either from "effect/Either"

// A JSON string (skipped whole, so digits inside one are never touched) or a number literal.
const token = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g

const integer = /^-?\d+$/

/** The JSON value of `text`, with every integer literal a double cannot hold as its digit string. */
export const parse = (text: string): Either.Either<unknown, void> => {
  const exact = text.replace(token, (literal) =>
    literal.startsWith("\"") || !integer.test(literal) || Number.isSafeInteger(Number(literal)) ? literal : `"${literal}"`)
  try {
    return Either.right(JSON.parse(exact) as unknown)
  } catch {
    return Either.left(undefined)
  }
}
