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
 * `purchaseOrderNo` and the refund-order state machine, and answers `{code, msg}` with
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
import * as AeroHubRequest from "./AeroHubRequest.js"
import * as AeroHubTransitions from "./AeroHubTransitions.js"
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
    const decodeRules = Schema.decodeUnknownEither(AeroHubRequest.make(set).update, { errors: "first", onExcessProperty: "ignore" })
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
      const ruled = decodeRules(fields)
      if (Either.isLeft(ruled)) return failed(firstIssue(ruled.left))
      const update = ruled.right
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
      const refusal = AeroHubTransitions.refusal(order.status, update.refundStatus)
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
