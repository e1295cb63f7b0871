/**
 * A stateful simulator of AeroHub's FareMarket UpdateRefund on 127.0.0.1, built on
 * core's `Sandbox.serve` (fault injection, `/__sandbox/*` control routes, request
 * counts).
 *
 * It holds the refund orders AeroHub "sent" the supplier: the seeded ones in
 * {@link seededOrders}, plus any refund order number matching {@link orderPattern}
 * (`FBRF` and at least six digits), which exists from its first update on, bound to
 * the `purchaseOrderNo` that update names. It checks the apiKey (code 1000 otherwise),
 * the 32-character `requestId`, the field types and conditional rules, the order's
 * `purchaseOrderNo` and the refund-order state machine, as AeroHub's pages state them
 * (its own reading, not the plugin's stricter one), and answers `{code, msg}` with
 * HTTP 200 as AeroHub does. A repeated update for the state an order is already in is
 * accepted and changes nothing.
 *
 * @since 0.1.0
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Sandbox from "@refundkit/core/Sandbox"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type RejectReasonSet, updateRefundPath } from "./AeroHubConfig.js"
import type * as AeroHubRequest from "./AeroHubRequest.js"
import { failedCode, invalidApiKeyCode, successCode, UpdateRefundBody, type UpdateRefundResponse } from "./AeroHubWire.js"

/**
 * A refund order the sandbox starts with.
 *
 * @since 0.1.0
 */
export interface SeedOrder {
  readonly refundOrderNo: string
  readonly purchaseOrderNo: string
  /** The last state the supplier reported; absent when nothing was reported yet. */
  readonly status?: AeroHubRequest.RefundStatus | undefined
  /** The customer withdrew the refund (BookingRefund `WITHDRAWN`): every update is refused. */
  readonly withdrawn?: boolean | undefined
}

/**
 * The seeded refund orders: the one in AeroHub's own sample (nothing reported yet),
 * one already reimbursed (REFUNDED), one closed, and one the customer withdrew.
 *
 * @since 0.1.0
 */
export const seededOrders: ReadonlyArray<SeedOrder> = [
  { refundOrderNo: "FBRF2403112526", purchaseOrderNo: "F1745553257834618888" },
  { refundOrderNo: "FBRF2403110001", purchaseOrderNo: "F1745553257834610001", status: "REFUNDED" },
  { refundOrderNo: "FBRF2403110002", purchaseOrderNo: "F1745553257834610002", status: "CLOSED" },
  { refundOrderNo: "FBRF2403110003", purchaseOrderNo: "F1745553257834610003", withdrawn: true }
]

/**
 * Refund order numbers that exist without seeding, from their first update on.
 *
 * @since 0.1.0
 */
export const orderPattern = /^FBRF\d{6,}$/

/**
 * The apiKey the sandbox accepts unless told otherwise.
 *
 * @since 0.1.0
 */
export const defaultApiKey = "sandbox-aerohub-supplier-apikey-0001"

/**
 * How to start a sandbox.
 *
 * @since 0.1.0
 */
export interface Options {
  readonly port?: number | undefined
  readonly apiKey?: string | undefined
  /** The `rejectReason` code set it validates, and puts in `env` (default "en"). */
  readonly rejectReasons?: RejectReasonSet | undefined
  /** Orders to hold besides {@link seededOrders}. */
  readonly orders?: ReadonlyArray<SeedOrder> | undefined
}

/**
 * One refund order as the sandbox holds it.
 *
 * @since 0.1.0
 */
export interface Order {
  readonly refundOrderNo: string
  readonly purchaseOrderNo: string
  readonly status: AeroHubRequest.RefundStatus | undefined
  readonly withdrawn: boolean
  /** The state changes applied, as "FROM -> TO" ("NEW" when nothing was reported before). */
  readonly transitions: ReadonlyArray<string>
  /** Accepted updates that repeated the current state. */
  readonly repeats: number
}

/**
 * One UpdateRefund call as the sandbox received and answered it.
 *
 * @since 0.1.0
 */
export interface Call {
  readonly body: string
  readonly answer: UpdateRefundResponse
}

/**
 * A running AeroHub sandbox.
 *
 * @since 0.1.0
 */
export interface AeroHubSandbox extends Sandbox.Handle {
  readonly apiKey: string
  /** A refund order's current state, when the sandbox holds it. */
  readonly order: (refundOrderNo: string) => Effect.Effect<Option.Option<Order>>
  /** Every UpdateRefund call that reached the simulated API (faults aside), oldest first. */
  readonly calls: Effect.Effect<ReadonlyArray<Call>>
}

interface MutableOrder {
  readonly refundOrderNo: string
  readonly purchaseOrderNo: string
  status: AeroHubRequest.RefundStatus | undefined
  readonly withdrawn: boolean
  readonly transitions: Array<string>
  repeats: number
  touched: boolean
}

const failed = (reason: string): UpdateRefundResponse => ({ code: failedCode, msg: `Failed: ${reason}` })

const firstIssue = (error: ParseResult.ParseError): string => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  return issue === undefined ? "the body does not match UpdateRefund" : `${issue.path.map(String).join(".") || "body"}: ${issue.message}`
}

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())

// The sandbox's own reading of AeroHub's documents, written from the UpdateRefund page (and the
// Chinese page where the English one is garbled), not from the plugin's request schema and state
// machine: a test in which the plugin's update is accepted here then says something about the
// plugin. The rules refundkit adds on top (order number bounds, days that exist, two-place amounts,
// a voucher's currency, one step per update) are the plugin's alone.

const documentedStatuses: ReadonlyArray<AeroHubRequest.RefundStatus> = ["QUOTE_COMPLETED", "QUOTE_REJECTED", "PROCESSING", "REFUNDED_PENDING", "REFUNDED", "CLOSED"]

const isDocumentedStatus = (word: string): word is AeroHubRequest.RefundStatus => (documentedStatuses as ReadonlyArray<string>).includes(word)

/** Per code set: its codes, and the codes that make a field required (the English page states them; the Chinese set carries over 27 and 30 by meaning). */
const reasonRules: {
  readonly [Set in RejectReasonSet]: { readonly page: string; readonly from: number; readonly to: number; readonly refundDate: number; readonly flightNumber: number; readonly refundableAmount?: number }
} = {
  en: { page: "English", from: 1, to: 9, refundDate: 1, refundableAmount: 6, flightNumber: 7 },
  cn: { page: "Chinese", from: 20, to: 35, refundDate: 27, flightNumber: 30 }
}

// ISO 8601 as the page asks for it: a date, or a date and time with an optional offset.
const iso8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/

type WireFields = Omit<typeof UpdateRefundBody.Type, "apiKey" | "requestId">

const present = <A>(value: A | null | undefined): value is A => value !== null && value !== undefined

/** Why the documented field rules refuse `fields` (whose `refundStatus` is a documented word); undefined when they pass. */
const fieldRefusal = (fields: WireFields, set: RejectReasonSet): string | undefined => {
  const rules = reasonRules[set]
  const reason = fields.rejectReason
  if (present(reason) && (reason < rules.from || reason > rules.to)) return `rejectReason: must be one of the ${rules.page} page's codes ${rules.from}-${rules.to}; got ${reason}`
  if (present(reason) && reason === rules.refundDate && !present(fields.refundDate)) return `refundDate is required when rejectReason is ${reason}`
  if (present(reason) && reason === rules.refundableAmount && !present(fields.refundableAmount)) return `refundableAmount is required when rejectReason is ${reason}`
  if (present(reason) && reason === rules.flightNumber && !present(fields.flightNumber)) return `flightNumber is required when rejectReason is ${reason}`
  if (present(fields.refundDate) && !iso8601.test(fields.refundDate)) return `refundDate: must be ISO 8601; got ${fields.refundDate}`
  if (present(fields.isDocumentation) && fields.isDocumentation !== 1 && fields.isDocumentation !== 2) return `isDocumentation: must be 1 or 2; got ${fields.isDocumentation}`
  if (fields.refundStatus === "REFUNDED" && (fields.refundAmount ?? []).length === 0) return "refundAmount is required when refundStatus is REFUNDED"
  if (fields.refundStatus === "QUOTE_COMPLETED" && (fields.refundFeePricing ?? []).length === 0) return "refundFeePricing is required when refundStatus is QUOTE_COMPLETED"
  for (const [i, pricing] of (fields.refundFeePricing ?? []).entries()) {
    if (present(pricing.isRefundVoucher) && pricing.isRefundVoucher !== 0 && pricing.isRefundVoucher !== 1) return `refundFeePricing.${i}.isRefundVoucher: must be 0 or 1; got ${pricing.isRefundVoucher}`
    for (const [j, detail] of (pricing.refundPolicyDetail ?? []).entries()) {
      if (detail.ageType < 0 || detail.ageType > 2) return `refundFeePricing.${i}.refundPolicyDetail.${j}.ageType: must be 0, 1 or 2; got ${detail.ageType}`
    }
  }
  return undefined
}

// The Chinese page's steps: PROCESSING first ("lock this status first, cannot be undone"), then
// REFUNDED_PENDING, then REFUNDED; CLOSED "at any step"; the quote phase before all of them.
const phase: { readonly [S in AeroHubRequest.RefundStatus]: number } = {
  QUOTE_COMPLETED: 0,
  QUOTE_REJECTED: 0,
  PROCESSING: 1,
  REFUNDED_PENDING: 2,
  REFUNDED: 3,
  CLOSED: 4
}

const finals: ReadonlyArray<AeroHubRequest.RefundStatus> = ["REFUNDED", "CLOSED", "QUOTE_REJECTED"]

/** Why the order cannot move from `from` (undefined: nothing reported yet) to `to`; undefined when it can. */
const moveRefusal = (from: AeroHubRequest.RefundStatus | undefined, to: AeroHubRequest.RefundStatus): string | undefined => {
  if (from === to) return undefined
  if (from !== undefined && finals.includes(from)) return `the refund order is ${from}: nothing leaves REFUNDED, CLOSED or QUOTE_REJECTED`
  if (to === "CLOSED") return undefined
  if ((from === undefined || phase[from] === 0) && phase[to] > phase.PROCESSING) return `a refund order's first update must be one of QUOTE_COMPLETED, QUOTE_REJECTED, PROCESSING, CLOSED, and its refund starts with PROCESSING; got ${to}`
  if (from !== undefined && phase[to] < phase[from]) return `the refund order is ${from} and cannot go back to ${to}: PROCESSING cannot be undone`
  return undefined
}

/**
 * Starts a sandbox.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<AeroHubSandbox, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const apiKey = options.apiKey ?? defaultApiKey
    const set = options.rejectReasons ?? "en"
    const decodeWire = Schema.decodeUnknownEither(UpdateRefundBody, { errors: "first", onExcessProperty: "ignore" })
    const orders = new Map<string, MutableOrder>()
    for (const seed of [...seededOrders, ...(options.orders ?? [])]) {
      orders.set(seed.refundOrderNo, {
        refundOrderNo: seed.refundOrderNo,
        purchaseOrderNo: seed.purchaseOrderNo,
        status: seed.status,
        withdrawn: seed.withdrawn ?? false,
        transitions: [],
        repeats: 0,
        touched: false
      })
    }
    const calls: Array<Call> = []
    let refunded = 0
    let accepted = 0
    let refused = 0

    // One synchronous step, so a check and its state change can never interleave with another request.
    const updateRefund = (text: string): UpdateRefundResponse => {
      const json = decodeJson(text)
      if (Either.isLeft(json)) return failed("the body is not valid JSON")
      const body = json.right
      if (typeof body !== "object" || body === null) return failed("the body must be a JSON object")
      const key = "apiKey" in body ? body.apiKey : undefined
      if (key !== apiKey) return { code: invalidApiKeyCode, msg: "Invalid API Key" }
      const requestId = "requestId" in body ? body.requestId : undefined
      if (typeof requestId !== "string" || requestId.length !== 32) {
        return failed(`requestId must be 32 characters, got ${typeof requestId === "string" ? requestId.length : typeof requestId}`)
      }
      const wire = decodeWire(body)
      if (Either.isLeft(wire)) return failed(firstIssue(wire.left))
      const { apiKey: _apiKey, requestId: _requestId, ...fields } = wire.right
      const status = fields.refundStatus
      if (!isDocumentedStatus(status)) return failed(`refundStatus: must be one of ${documentedStatuses.join(", ")}; got ${status}`)
      const broken = fieldRefusal(fields, set)
      if (broken !== undefined) return failed(broken)
      const update = { ...fields, refundStatus: status }
      let order = orders.get(update.refundOrderNo)
      if (order === undefined && orderPattern.test(update.refundOrderNo)) {
        order = { refundOrderNo: update.refundOrderNo, purchaseOrderNo: update.purchaseOrderNo, status: undefined, withdrawn: false, transitions: [], repeats: 0, touched: false }
        orders.set(order.refundOrderNo, order)
      }
      if (order === undefined) return failed(`refund order ${update.refundOrderNo} does not exist`)
      if (order.purchaseOrderNo !== update.purchaseOrderNo) {
        return failed(`refund order ${order.refundOrderNo} belongs to purchase order ${order.purchaseOrderNo}, not ${update.purchaseOrderNo}`)
      }
      if (order.withdrawn) return failed(`refund order ${order.refundOrderNo} was withdrawn by the customer`)
      const refusal = moveRefusal(order.status, update.refundStatus)
      if (refusal !== undefined) return failed(refusal)
      order.touched = true
      if (order.status === update.refundStatus) {
        order.repeats += 1
      } else {
        order.transitions.push(`${order.status ?? "NEW"} -> ${update.refundStatus}`)
        order.status = update.refundStatus
        if (update.refundStatus === "REFUNDED") refunded += 1
      }
      return { code: successCode, msg: "Successful" }
    }

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://sandbox").pathname
      if (path !== updateRefundPath) return HttpServerResponse.unsafeJson({ code: 404, msg: "Not Found" }, { status: 404 })
      if (request.method !== "POST") return HttpServerResponse.unsafeJson({ code: 405, msg: "Method Not Allowed" }, { status: 405 })
      const text = yield* request.text
      const answer = updateRefund(text)
      if (answer.code === successCode) accepted += 1
      else refused += 1
      calls.push({ body: text, answer })
      return HttpServerResponse.unsafeJson(answer)
    })

    const view = (order: MutableOrder): Order => ({
      refundOrderNo: order.refundOrderNo,
      purchaseOrderNo: order.purchaseOrderNo,
      status: order.status,
      withdrawn: order.withdrawn,
      transitions: [...order.transitions],
      repeats: order.repeats
    })

    const server = yield* Sandbox.serve(Sandbox.orServerError(app), {
      ...(options.port === undefined ? {} : { port: options.port }),
      routeOf: (path) => (path === updateRefundPath ? "update_refund" : "other"),
      // AeroHub has no tokens: the apiKey is fixed, so the ExpiredToken fault changes nothing.
      expireTokens: Effect.void,
      stats: Effect.sync(() => ({
        refundsPerformed: refunded,
        updatesAccepted: accepted,
        updatesRefused: refused,
        orders: Object.fromEntries(
          [...orders.values()].filter((order) => order.touched).map((order) => [order.refundOrderNo, { status: order.status, transitions: [...order.transitions], repeats: order.repeats }])
        )
      })),
      schemaViolation: { success: true, message: "Successful" }
    })

    return {
      ...server,
      provider: "aerohub",
      baseUrl: server.url,
      apiKey,
      env: {
        REFUNDKIT_AEROHUB_BASE_URL: server.url,
        REFUNDKIT_AEROHUB_API_KEY: apiKey,
        REFUNDKIT_AEROHUB_REJECT_REASONS: set
      },
      order: (refundOrderNo) => Effect.sync(() => Option.map(Option.fromNullable(orders.get(refundOrderNo)), view)),
      calls: Effect.sync(() => [...calls])
    }
  })
