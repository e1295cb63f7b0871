/**
 * A stateful simulator of Airalo's Partner API refund surface on 127.0.0.1, built on
 * core's `Sandbox.serve` (fault injection, `/__sandbox/*` control routes, request counts).
 *
 * - `POST /v2/token`: client credentials as form (`application/x-www-form-urlencoded`,
 *   or `multipart/form-data` as the docs' curl `--form` sends them) or JSON; 200 with a
 *   bearer token, 422 for a missing field or unknown `client_id`, 401 "Client
 *   authentication failed" for a wrong secret.
 * - `POST /v2/refund`: bearer token required (401 otherwise); Airalo's refund rate limit
 *   per client IP (429 `{"message":"Too Many Attempts."}` with `Retry-After`); the
 *   documented validation in Airalo's two 422 shapes; the ownership check ("The following
 *   ICCIDs do not belong to your company: ..."); 202 with a `refund_id` for the whole call.
 *   The body may be JSON (whatever the content type, as the docs' curl sends JSON as
 *   `text/plain`) or form fields, urlencoded or multipart (`iccids[]` repeated, or `iccids`
 *   as a JSON list, as the fragment's multipart example writes it).
 *
 * Seeded eSIMs owned by the calling company: the docs' two example ICCIDs
 * (`894000000000001`, `894000000000002`), {@link seededIccids}, anything passed in
 * `ownedIccids`, and by rule every 19-digit ICCID starting with `8910` ({@link ownedIccid}
 * makes the n-th one). Any other ICCID belongs to someone else.
 *
 * Airalo keeps no duplicate check: a second request for an ICCID is accepted again and
 * shows in `stats.refundRequestsPerIccid` and `stats.duplicateIccids`.
 * `stats.refundsPerformed` counts refund requests Airalo accepted (one per call, however
 * many ICCIDs it names).
 *
 * @since 0.1.0
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Sandbox from "@refundkit/core/Sandbox"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { defaultRateLimit, formatRateLimit, type RateLimit } from "./AiraloConfig.js"
import { maxIccids, maxNotesLength, reasons } from "./AiraloRequest.js"
import { providerId } from "./internal/provider.js"

/**
 * How to start the sandbox. Every field is optional.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Port on 127.0.0.1; an ephemeral one when absent. */
  readonly port?: number | undefined
  readonly clientId?: string | undefined
  readonly clientSecret?: string | undefined
  /**
   * The refund rate limit per client IP, or `false` for none. Default: Airalo's
   * documented 1 request per 5 minutes. Tests and bulk runs pass a higher limit or `false`.
   */
  readonly rateLimit?: RateLimit | false | undefined
  /** The token endpoint's limit per client IP, or `false` (the default). Airalo documents 3 per minute. */
  readonly tokenRateLimit?: RateLimit | false | undefined
  /** More ICCIDs owned by the calling company, beyond the seeded ones and the `8910` rule. */
  readonly ownedIccids?: ReadonlyArray<string> | undefined
  /** `expires_in` of issued tokens, in seconds. Default 31622400 (366 days), Airalo's example. */
  readonly tokenLifetimeSeconds?: number | undefined
  /** When set, only these client IPs are served; others get Airalo's 403 with code 89. */
  readonly ipAllowlist?: ReadonlyArray<string> | undefined
}

/**
 * A refund request the sandbox accepted.
 *
 * @since 0.1.0
 */
export interface AcceptedRefund {
  readonly refund_id: string
  readonly created_at: string
  readonly iccids: ReadonlyArray<string>
  readonly reason: string
  readonly notes?: string | undefined
  readonly email?: string | undefined
}

/**
 * The running sandbox: core's handle plus Airalo's state.
 *
 * @since 0.1.0
 */
export interface AiraloSandbox extends Sandbox.Handle {
  readonly clientId: string
  readonly clientSecret: string
  /** The refund rate limit it started with, undefined when off. */
  readonly rateLimit: RateLimit | undefined
  /**
   * Changes the refund rate limit from the next request on (`undefined`: none). A test that needs a slow
   * limit for one phase only (a kill that must land between two calls) need not wait it out in the next.
   * `env` keeps the first limit: give a process started afterwards the new one yourself (`formatRateLimit`).
   */
  readonly setRateLimit: (limit: RateLimit | undefined) => Effect.Effect<void>
  /** Every refund request accepted so far, oldest first. */
  readonly accepted: Effect.Effect<ReadonlyArray<AcceptedRefund>>
  /** Gives the calling company one more eSIM. */
  readonly own: (iccid: string) => Effect.Effect<void>
  /** Whether an ICCID belongs to the calling company. */
  readonly owns: (iccid: string) => boolean
}

/**
 * ICCIDs seeded as owned: the docs' two examples and five 19-digit ones.
 *
 * @since 0.1.0
 */
export const seededIccids: ReadonlyArray<string> = [
  "894000000000001",
  "894000000000002",
  "8910300000000000011",
  "8910300000000000029",
  "8910300000000000037",
  "8910300000000000045",
  "8910300000000000052"
]

/**
 * The n-th ICCID owned by rule (19 digits starting with `8910`), for tests and benchmarks.
 *
 * @since 0.1.0
 */
export const ownedIccid = (n: number): string => `8910${String(n).padStart(15, "0")}`

/**
 * An ICCID that never belongs to the calling company (it does not start with `8910`).
 *
 * @since 0.1.0
 */
export const foreignIccid = (n: number): string => `8944${String(n).padStart(15, "0")}`

/**
 * The sandbox's default credentials (sandbox values, not secrets of anyone's).
 *
 * @since 0.1.0
 */
export const defaultCredentials = { clientId: "refundkit-sandbox", clientSecret: "airalo-sandbox-secret-3f9c2e7a" } as const

/** Airalo's message for an expired or unknown token (its exact 401 body for /refund is not documented). */
const unauthenticated = "Authentication failed. This could be due to an expired token, please generate a new token."

const invalidReason = `The selected reason is invalid. It must be one of the following: ${reasons.join(", ")}`

const emailPattern = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/

type Answer = HttpServerResponse.HttpServerResponse

const answer = (body: unknown, status: number, headers: Record<string, string> = {}): Answer =>
  HttpServerResponse.unsafeJson(body, { status, headers })

const parameterError = (data: Readonly<Record<string, string>>) => answer({ data, meta: { message: "the parameter is invalid" } }, 422)

const messageError = (message: string, status = 422) => answer({ data: [], meta: { message } }, status)

const pad = (n: number) => String(n).padStart(2, "0")

const airaloTime = (millis: number) => {
  const d = new Date(millis)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
}

/** A fixed-window counter per key, as Laravel's throttle keeps it: the window opens with the first hit. */
const makeLimiter = (limitNow: () => RateLimit | undefined) => {
  // A window belongs to the limit it was opened under: a limit set anew counts from its own first call.
  const windows = new Map<string, { start: number; count: number; limit: RateLimit }>()
  return (key: string, now: number): { readonly allowed: boolean; readonly headers: Record<string, string> } => {
    const limit = limitNow()
    if (limit === undefined) return { allowed: true, headers: {} }
    let window = windows.get(key)
    if (window === undefined || window.limit !== limit || now - window.start >= limit.perMillis) {
      window = { start: now, count: 0, limit }
      windows.set(key, window)
    }
    if (window.count >= limit.requests) {
      const retryAfter = Math.max(1, Math.ceil((window.start + limit.perMillis - now) / 1000))
      return { allowed: false, headers: { "retry-after": String(retryAfter), "x-ratelimit-limit": String(limit.requests), "x-ratelimit-remaining": "0" } }
    }
    window.count += 1
    return { allowed: true, headers: { "x-ratelimit-limit": String(limit.requests), "x-ratelimit-remaining": String(limit.requests - window.count) } }
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Form fields as Laravel reads them: `name[]` or `name[n]` fields gather into a list, and
 * `iccids` may hold a JSON list in one field (the refund fragment's multipart example).
 */
const fromFields = (fields: Iterable<readonly [string, unknown]>): Record<string, unknown> => {
  const input: Record<string, unknown> = {}
  for (const [key, value] of fields) {
    const list = /^(\w+)\[\d*\]$/.exec(key)
    if (list !== null) {
      const name = list[1]!
      const existing = input[name]
      input[name] = Array.isArray(existing) ? [...existing, value] : [value]
    } else if (key === "iccids" && typeof value === "string" && value.trim().startsWith("[")) {
      try {
        input[key] = JSON.parse(value) as unknown
      } catch {
        input[key] = value
      }
    } else {
      input[key] = value
    }
  }
  return input
}

// The docs' token curl sends --form and the refund fragment declares multipart/form-data. A body
// that is not valid multipart reads as no fields, so Airalo's "field is required" answers it.
const readMultipart = (bytes: ArrayBuffer, contentType: string) =>
  Effect.tryPromise(() => new Request("http://sandbox", { method: "POST", headers: { "content-type": contentType }, body: bytes }).formData()).pipe(
    Effect.map((form) => fromFields(form.entries())),
    Effect.orElseSucceed((): Record<string, unknown> => ({}))
  )

/** The request input as Laravel would see it: JSON whatever the content type, or form fields (urlencoded or multipart). */
const readInput = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.flatMap(request.arrayBuffer, (bytes): Effect.Effect<Record<string, unknown>> => {
    const contentType = request.headers["content-type"] ?? ""
    const type = contentType.toLowerCase()
    if (type.includes("multipart/form-data")) return readMultipart(bytes, contentType)
    const text = new TextDecoder().decode(bytes)
    if (type.includes("application/x-www-form-urlencoded")) return Effect.succeed(fromFields(new URLSearchParams(text)))
    try {
      const parsed = JSON.parse(text) as unknown
      return Effect.succeed(isRecord(parsed) ? parsed : {})
    } catch {
      return Effect.succeed({})
    }
  })

const present = (value: unknown) => value !== undefined && value !== null && !(typeof value === "string" && value.trim() === "")

/**
 * Starts the sandbox. `handle.env` points `Airalo.layerConfig` at it.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<AiraloSandbox, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const clientId = options.clientId ?? defaultCredentials.clientId
    const clientSecret = options.clientSecret ?? defaultCredentials.clientSecret
    const rateLimit = options.rateLimit === false ? undefined : options.rateLimit ?? defaultRateLimit
    const tokenLifetime = options.tokenLifetimeSeconds ?? 31_622_400
    const allowlist = options.ipAllowlist === undefined ? undefined : new Set(options.ipAllowlist)
    const owned = new Set([...seededIccids, ...(options.ownedIccids ?? [])])
    const owns = (iccid: string) => owned.has(iccid) || /^8910[0-9]{15}$/.test(iccid)
    const tokens = new Map<string, number>()
    const accepted: Array<AcceptedRefund> = []
    const perIccid = new Map<string, number>()
    let refundLimit = rateLimit
    const refundLimiter = makeLimiter(() => refundLimit)
    const tokenLimit = options.tokenRateLimit === false ? undefined : options.tokenRateLimit
    const tokenLimiter = makeLimiter(() => tokenLimit)
    const tally = { tokensIssued: 0, rateLimited: 0, rejected: 0, unauthorized: 0 }
    let nextRefundId = 100_001

    const clientIp = (request: HttpServerRequest.HttpServerRequest) =>
      Option.getOrElse(request.remoteAddress, () => "unknown").replace(/^::ffff:/, "")

    const forbidden = () => answer({ code: 89, reason: "Access denied: this IP address is not on the company's IP allowlist." }, 403)

    const token = (request: HttpServerRequest.HttpServerRequest, now: number) =>
      Effect.gen(function*() {
        const limited = tokenLimiter(clientIp(request), now)
        if (!limited.allowed) {
          tally.rateLimited += 1
          return answer({ message: "Too Many Attempts." }, 429, limited.headers)
        }
        const input = yield* readInput(request)
        const missing: Record<string, string> = {}
        for (const field of ["client_id", "client_secret", "grant_type"] as const) {
          if (!present(input[field])) missing[field] = `The ${field.replace(/_/g, " ")} field is required.`
        }
        if (Object.keys(missing).length > 0) return parameterError(missing)
        if (input["grant_type"] !== "client_credentials") return parameterError({ grant_type: "The selected grant type is invalid." })
        if (input["client_id"] !== clientId) return parameterError({ client_id: "The selected client id is invalid." })
        if (input["client_secret"] !== clientSecret) return messageError("Client authentication failed", 401)
        const issued = `sbx_${randomBytes(24).toString("hex")}`
        tokens.set(issued, now + tokenLifetime * 1000)
        tally.tokensIssued += 1
        return answer({ data: { token_type: "Bearer", expires_in: tokenLifetime, access_token: issued }, meta: { message: "success" } }, 200, limited.headers)
      })

    const validate = (input: Record<string, unknown>): Answer | { readonly iccids: ReadonlyArray<string>; readonly reason: string; readonly notes?: string; readonly email?: string } => {
      const { email, iccids, notes, reason } = input
      // Airalo answers a missing required field with the message-only shape.
      if (!present(iccids) || (Array.isArray(iccids) && iccids.length === 0)) return messageError("The iccids field is required.")
      if (!present(reason)) return messageError("The reason field is required.")
      const errors: Record<string, string> = {}
      if (!Array.isArray(iccids)) errors["iccids"] = "The iccids field must be an array."
      else {
        if (iccids.length > maxIccids) errors["iccids"] = `The iccids field must not have more than ${maxIccids} items.`
        iccids.forEach((iccid, i) => {
          if (typeof iccid !== "string" || !/^[0-9]+$/.test(iccid)) errors[`iccids.${i}`] = `The iccids.${i} field must be a string of digits.`
        })
      }
      if (typeof reason !== "string" || !(reasons as ReadonlyArray<string>).includes(reason)) errors["reason"] = invalidReason
      if (present(notes)) {
        if (typeof notes !== "string") errors["notes"] = "The notes field must be a string."
        else if ([...notes].length > maxNotesLength) errors["notes"] = `The notes field must not be greater than ${maxNotesLength} characters.`
      } else if (reason === "OTHERS") errors["notes"] = "The notes field is required when reason is OTHERS."
      if (present(email) && (typeof email !== "string" || !emailPattern.test(email))) errors["email"] = "The email field must be a valid email address."
      if (Object.keys(errors).length > 0) return parameterError(errors)
      return {
        iccids: iccids as ReadonlyArray<string>,
        reason: reason as string,
        ...(present(notes) ? { notes: notes as string } : {}),
        ...(present(email) ? { email: email as string } : {})
      }
    }

    const refund = (request: HttpServerRequest.HttpServerRequest, now: number) =>
      Effect.gen(function*() {
        const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers["authorization"] ?? "")
        const expiry = bearer === null ? undefined : tokens.get(bearer[1]!)
        if (expiry === undefined || expiry <= now) {
          tally.unauthorized += 1
          return messageError(unauthenticated, 401)
        }
        const limited = refundLimiter(clientIp(request), now)
        if (!limited.allowed) {
          tally.rateLimited += 1
          return answer({ message: "Too Many Attempts." }, 429, limited.headers)
        }
        const checked = validate(yield* readInput(request))
        if (HttpServerResponse.isServerResponse(checked)) {
          tally.rejected += 1
          return HttpServerResponse.setHeaders(checked, limited.headers)
        }
        const foreign = checked.iccids.filter((iccid) => !owns(iccid))
        if (foreign.length > 0) {
          tally.rejected += 1
          return HttpServerResponse.setHeaders(messageError(`The following ICCIDs do not belong to your company: ${foreign.join(", ")}`), limited.headers)
        }
        const record: AcceptedRefund = { refund_id: String(nextRefundId++), created_at: airaloTime(now), ...checked }
        accepted.push(record)
        for (const iccid of checked.iccids) perIccid.set(iccid, (perIccid.get(iccid) ?? 0) + 1)
        return answer({ data: { refund_id: record.refund_id, created_at: record.created_at }, meta: { message: "success" } }, 202, limited.headers)
      })

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const now = yield* Clock.currentTimeMillis
      const path = new URL(request.url, "http://sandbox").pathname.replace(/\/+$/, "")
      if (allowlist !== undefined && !allowlist.has(clientIp(request))) return forbidden()
      if (path === "/v2/token" || path === "/v2/refund") {
        if (request.method !== "POST") return answer({ message: `The ${request.method} method is not supported for route ${path.slice(1)}. Supported methods: POST.` }, 405)
        return path === "/v2/token" ? yield* token(request, now) : yield* refund(request, now)
      }
      return answer({ message: "Not Found" }, 404)
    })

    const server = yield* Sandbox.serve(Sandbox.orServerError(app), {
      port: options.port,
      routeOf: (path) => (path.endsWith("/token") ? "token" : path.endsWith("/refund") ? "refund" : "other"),
      expireTokens: Effect.sync(() => tokens.clear()),
      stats: Effect.sync(() => {
        const requestsPerIccid = Object.fromEntries([...perIccid.entries()].sort(([a], [b]) => a.localeCompare(b)))
        return {
          refundsPerformed: accepted.length,
          iccidsRequested: perIccid.size,
          refundRequestsPerIccid: requestsPerIccid,
          duplicateIccids: Object.keys(requestsPerIccid).filter((iccid) => requestsPerIccid[iccid]! > 1),
          ...tally
        }
      }),
      schemaViolation: { data: { created_at: "2024-10-12 09:30" }, meta: { message: "success" } }
    })
    const baseUrl = `${server.url}/v2`
    return {
      ...server,
      provider: providerId,
      baseUrl,
      env: {
        REFUNDKIT_AIRALO_BASE_URL: baseUrl,
        REFUNDKIT_AIRALO_CLIENT_ID: clientId,
        REFUNDKIT_AIRALO_CLIENT_SECRET: clientSecret,
        REFUNDKIT_AIRALO_RATE_LIMIT: formatRateLimit(rateLimit)
      },
      clientId,
      clientSecret,
      rateLimit,
      setRateLimit: (limit) => Effect.sync(() => void (refundLimit = limit)),
      accepted: Effect.sync(() => [...accepted]),
      own: (iccid) => Effect.sync(() => void owned.add(iccid)),
      owns
    }
  })
