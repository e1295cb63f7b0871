/**
 * The refund request a caller writes, in Airalo's own field names (`POST /v2/refund`):
 * `iccids`, `reason`, `notes`, `email`. Every documented rule is checked here, before
 * anything is sent, with a message that names the rule.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The 23 reasons Airalo accepts, in the order its documentation lists them.
 *
 * @since 0.1.0
 */
export const reasons = [
  "INSTALLATION_FAILURE",
  "NO_COVERAGE",
  "APN_FAILURE",
  "TRIP_CANCELLATION",
  "INTERMITTENT_CONNECTION",
  "BLOCKED_NETWORK",
  "CHANGE_OF_PLAN",
  "DELETED_ESIM",
  "EARLY_EXPIRY",
  "HOTSPOT_NOT_WORKING",
  "IMSI_CHANGE",
  "INCOMPATIBLE_DEVICE",
  "LOCKED_DEVICE",
  "NO_VOICE_TEXT_SERVICES",
  "OVERCHARGED",
  "SLOW_SPEED",
  "TOP_UP_PACKAGE_FAILURE",
  "UNKNOWN_CHARGES",
  "WRONG_PURCHASE",
  "UNABLE_TO_ACCESS_APPS",
  "SERVICE_DEGRADATION",
  "QR_ISSUE_PARTNERS",
  "OTHERS"
] as const

/**
 * At most this many ICCIDs in one refund request.
 *
 * @since 0.1.0
 */
export const maxIccids = 5

/**
 * The longest `notes` Airalo accepts, in characters.
 *
 * @since 0.1.0
 */
export const maxNotesLength = 255

/**
 * The message for a reason outside the accepted list; it lists them all so the caller can pick one.
 *
 * @since 0.1.0
 */
export const reasonMessage = `must be one of the reasons Airalo accepts: ${reasons.join(", ")}`

const describe = (actual: unknown): string => (typeof actual === "string" ? JSON.stringify(actual) : actual === undefined ? "nothing" : typeof actual)

/**
 * One ICCID: a non-empty string of digits. Airalo documents no length; real ICCIDs
 * have 19 or 20 digits, the docs' examples 15, so none is imposed.
 *
 * @since 0.1.0
 */
export const Iccid = Schema.String.annotations({ message: (issue) => `an ICCID must be a string of digits, got ${describe(issue.actual)}` }).pipe(
  Schema.pattern(/^[0-9]+$/, { message: (issue) => `an ICCID must be a string of digits, got ${describe(issue.actual)}` }),
  Schema.annotations({ identifier: "AiraloIccid", description: "An eSIM's ICCID: a string of digits" })
)

/**
 * A refund reason: one of {@link reasons}.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Literal(...reasons).annotations({
  identifier: "AiraloRefundReason",
  // override: the Literal is a union of 23 members, and one message listing them beats 23 "Expected ..." lines.
  message: (issue) => ({ message: `${describe(issue.actual)} is not an accepted reason; reason ${reasonMessage}`, override: true })
})

/**
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

const codePoints = (text: string) => [...text].length

const Iccids = Schema.Array(Iccid).annotations({
  message: (issue) => ({ message: `iccids must be an array of 1 to ${maxIccids} ICCIDs, got ${describe(issue.actual)}`, override: false })
}).pipe(
  Schema.minItems(1, { message: () => `iccids must name at least 1 ICCID (1 to ${maxIccids})` }),
  Schema.maxItems(maxIccids, { message: (issue) => `iccids may name at most ${maxIccids} ICCIDs per request, got ${Array.isArray(issue.actual) ? issue.actual.length : "more"}` }),
  // A repeated ICCID would be sent to Airalo twice in one call, as two refund requests for one eSIM.
  Schema.filter((iccids) => {
    const seen = new Set<string>()
    for (const [index, iccid] of iccids.entries()) {
      if (seen.has(iccid)) return { path: [index], message: `iccids names ${iccid} twice: each ICCID once per request` }
      seen.add(iccid)
    }
    return true
  })
)

const Notes = Schema.String.annotations({ message: () => "notes must be a string" }).pipe(
  Schema.filter((notes) => codePoints(notes) <= maxNotesLength, {
    message: (issue) => `notes must be at most ${maxNotesLength} characters, got ${typeof issue.actual === "string" ? codePoints(issue.actual) : "more"}`
  })
)

// Airalo documents only "a valid email"; this is the practical reading (one @, no spaces,
// a dot in the domain), not the full RFC 5322 grammar.
const emailPattern = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/

const Email = Schema.String.annotations({ message: () => "email must be a string" }).pipe(
  Schema.filter((email) => emailPattern.test(email), { message: (issue) => `email must be a valid email address, got ${describe(issue.actual)}` })
)

/**
 * The refund request. `notes` is required when `reason` is `OTHERS` (a blank note
 * counts as missing, as Airalo trims input); `email` is where Airalo may follow up.
 *
 * @since 0.1.0
 */
export const AiraloRefundRequest = Schema.Struct({
  iccids: Schema.propertySignature(Iccids).annotations({ missingMessage: () => `iccids is required: 1 to ${maxIccids} ICCIDs` }),
  reason: Schema.propertySignature(Reason).annotations({ missingMessage: () => `reason is required and ${reasonMessage}` }),
  notes: Schema.optionalWith(Notes, { exact: true }),
  email: Schema.optionalWith(Email, { exact: true })
}).pipe(
  Schema.filter((request) =>
    request.reason === "OTHERS" && (request.notes === undefined || request.notes.trim() === "")
      ? { path: ["notes"], message: "notes is required when reason is OTHERS" }
      : undefined
  ),
  Schema.annotations({
    identifier: "AiraloRefundRequest",
    description: "An Airalo eSIM refund request (POST /v2/refund), in Airalo's field names"
  })
)

/**
 * @since 0.1.0
 */
export type AiraloRefundRequest = typeof AiraloRefundRequest.Type

/**
 * @since 0.1.0
 */
export type AiraloRefundRequestEncoded = typeof AiraloRefundRequest.Encoded
