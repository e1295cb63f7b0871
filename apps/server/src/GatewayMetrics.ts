/**
 * The gateway's metrics in Prometheus' text format, for `GET /metrics`: requests by route and
 * status with their durations and provider time, the process's CPU, memory and event-loop
 * delay, and, counted at each scrape, the ledger's refunds that wait on someone.
 *
 * @since 0.4.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import { Api } from "@refundkit/api"
import type { StatusCount } from "@refundkit/core/Ledger"
import type { RefundStatus } from "@refundkit/core/RefundStatus"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { RequestEntry } from "./RequestMiddleware.js"

/**
 * The statuses `refundkit_refunds` counts: refunds in them wait on the provider's answer
 * (`requested`: in flight, or left by a crash until recovery), on a sync (`unknown`) or on a
 * person (`requires_action`). Each should stay few, so counting them on every scrape stays
 * cheap; `pending`, `succeeded` and `failed` grow with the ledger and are not counted.
 *
 * @since 0.4.0
 */
export const watchedStatuses: ReadonlyArray<RefundStatus> = ["requested", "unknown", "requires_action"]

/**
 * Seconds; the last bucket is `+Inf`.
 *
 * @since 0.4.0
 */
export const durationBuckets: ReadonlyArray<number> = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * What a scrape learned from the ledger: the counts, or why there are none.
 *
 * @since 0.4.0
 */
export type LedgerCounts =
  | { readonly _tag: "Counted"; readonly counts: ReadonlyArray<StatusCount>; readonly providers: ReadonlyArray<string> }
  | { readonly _tag: "Failed" }
  | { readonly _tag: "Unsupported" }

/**
 * @since 0.4.0
 */
export interface Metrics {
  /** Counts one answered request (every answer the access log would log, also with the log off). */
  readonly observe: (entry: RequestEntry) => void
  /** Counts a refund this gateway created (answered 201), by provider and the status it was answered with. */
  readonly created: (refund: { readonly provider: string; readonly status: string }) => void
  /** The exposition, with what this scrape learned from the ledger. */
  readonly render: (ledger: LedgerCounts) => string
}

/**
 * The gateway's metrics as a service, for the `/metrics` handler.
 *
 * @since 0.4.0
 */
export class GatewayMetrics extends Context.Tag("@refundkit/server/GatewayMetrics")<GatewayMetrics, Metrics>() {}

const methods = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
// The labels are the contract's own paths, read from the HttpApi: a route added to it is counted under its
// own name, never as `other` because this list was not told.
const contractPaths = ((): ReadonlyArray<string> => {
  const paths = new Set<string>()
  HttpApi.reflect(Api.Api, { onGroup: () => {}, onEndpoint: ({ endpoint }) => void paths.add(endpoint.path) })
  return [...paths]
})()
// The documentation the gateway serves beside the contract.
const fixedRoutes = new Set(["/openapi.json", "/docs", ...contractPaths.filter((path) => !path.includes("/:"))])
const paramRoutes = contractPaths.filter((path) => path.includes("/:")).map((route) => ({
  route,
  pattern: new RegExp(`^${route.split("/").map((part) => part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("/")}$`)
}))

/**
 * The route a request went to, as a label: the contract's path for it, ids and provider names
 * as `:id` and `:provider`, and any other path is `other`, so no caller can grow the number of series.
 *
 * @since 0.4.0
 */
export const routeOf = (url: string): string => {
  if (url === "-" || fixedRoutes.has(url)) return url === "-" ? "-" : url
  const query = url.search(/[?#]/)
  const path = (query === -1 ? url : url.slice(0, query)).toLowerCase().replace(/\/{2,}/g, "/").replace(/(.)\/$/, "$1")
  if (fixedRoutes.has(path)) return path
  for (const { pattern, route } of paramRoutes) if (pattern.test(path)) return route
  return "other"
}

const labelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  `{${pairs.map(([name, value]) => `${name}="${labelValue(value)}"`).join(",")}}`

// A number as Prometheus reads it: no exponent for counts, seconds to the microsecond.
const seconds = (value: number): string => String(Math.round(value * 1e6) / 1e6)

interface RouteTally {
  readonly buckets: Array<number>
  sum: number
  count: number
  providerSeconds: number
  providerCalls: number
  clientsGone: number
}

/**
 * Fresh metrics; the event-loop delay monitor stops with the scope.
 *
 * @since 0.4.0
 */
export const make: Effect.Effect<Metrics, never, Scope.Scope> = Effect.gen(function*() {
  const loopDelay = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const histogram = monitorEventLoopDelay({ resolution: 20 })
      histogram.enable()
      return histogram
    }),
    (histogram) => Effect.sync(() => histogram.disable())
  )
  const requests = new Map<string, { readonly method: string; readonly route: string; readonly code: string; count: number }>()
  const routes = new Map<string, RouteTally>()
  // Providers are the installed plugins' ids (a create for another is refused before it counts).
  const createdCounts = new Map<string, { readonly provider: string; readonly status: string; count: number }>()
  const startSeconds = Math.floor(Date.now() / 1000 - process.uptime())

  const observe = (entry: RequestEntry): void => {
    const method = methods.has(entry.method) ? entry.method : entry.method === "-" ? "-" : "other"
    const route = routeOf(entry.url)
    const code = String(entry.status)
    const key = `${method} ${route} ${code}`
    const seen = requests.get(key)
    if (seen === undefined) requests.set(key, { method, route, code, count: 1 })
    else seen.count++
    let tally = routes.get(route)
    if (tally === undefined) {
      tally = { buckets: durationBuckets.map(() => 0), sum: 0, count: 0, providerSeconds: 0, providerCalls: 0, clientsGone: 0 }
      routes.set(route, tally)
    }
    const duration = entry.totalMillis / 1000
    for (let i = 0; i < durationBuckets.length; i++) if (duration <= durationBuckets[i]!) tally.buckets[i]!++
    tally.sum += duration
    tally.count++
    tally.providerSeconds += entry.providerMillis / 1000
    tally.providerCalls += entry.timing.calls
    if (entry.clientGone === true) tally.clientsGone++
  }

  const created = (refund: { readonly provider: string; readonly status: string }): void => {
    const key = `${refund.provider} ${refund.status}`
    const seen = createdCounts.get(key)
    if (seen === undefined) createdCounts.set(key, { provider: refund.provider, status: refund.status, count: 1 })
    else seen.count++
  }

  const render = (ledger: LedgerCounts): string => {
    const lines: Array<string> = []
    const family = (name: string, type: "counter" | "gauge" | "histogram", help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)

    family("refundkit_http_requests_total", "counter", "Requests answered, by method, route and status code (a client that hung up counts with the status it would have been told).")
    for (const r of requests.values()) lines.push(`refundkit_http_requests_total${labels([["method", r.method], ["route", r.route], ["code", r.code]])} ${r.count}`)

    family("refundkit_http_request_duration_seconds", "histogram", "Time from a request's arrival to its answer, by route, provider time included.")
    for (const [route, tally] of routes) {
      durationBuckets.forEach((bound, i) => lines.push(`refundkit_http_request_duration_seconds_bucket${labels([["route", route], ["le", String(bound)]])} ${tally.buckets[i]}`))
      lines.push(`refundkit_http_request_duration_seconds_bucket${labels([["route", route], ["le", "+Inf"]])} ${tally.count}`)
      lines.push(`refundkit_http_request_duration_seconds_sum${labels([["route", route]])} ${seconds(tally.sum)}`)
      lines.push(`refundkit_http_request_duration_seconds_count${labels([["route", route]])} ${tally.count}`)
    }
    family("refundkit_http_provider_seconds_total", "counter", "Time requests spent waiting on providers, by route.")
    for (const [route, tally] of routes) lines.push(`refundkit_http_provider_seconds_total${labels([["route", route]])} ${seconds(tally.providerSeconds)}`)
    family("refundkit_http_provider_calls_total", "counter", "Provider calls made while answering requests, by route.")
    for (const [route, tally] of routes) lines.push(`refundkit_http_provider_calls_total${labels([["route", route]])} ${tally.providerCalls}`)
    family("refundkit_http_clients_gone_total", "counter", "Requests whose client hung up before the answer, by route; their refunds went on and are in the ledger.")
    for (const [route, tally] of routes) lines.push(`refundkit_http_clients_gone_total${labels([["route", route]])} ${tally.clientsGone}`)

    family(
      "refundkit_refunds_created_total",
      "counter",
      "Refunds this gateway created (answered 201), by provider and the status they were answered with (failed: the provider declined)."
    )
    for (const c of createdCounts.values()) lines.push(`refundkit_refunds_created_total${labels([["provider", c.provider], ["status", c.status]])} ${c.count}`)

    family("refundkit_ledger_up", "gauge", "1 if the ledger answered this scrape's count of refunds, 0 if it failed or cannot count.")
    lines.push(`refundkit_ledger_up ${ledger._tag === "Counted" ? 1 : 0}`)
    if (ledger._tag === "Counted") {
      family(
        "refundkit_refunds",
        "gauge",
        "Refunds in the ledger waiting on someone, counted at this scrape, by provider and status: requested (in flight, or left by a crash until recovery), unknown (in doubt until a sync or a person settles it), requires_action (needs a person)."
      )
      const counted = new Map(ledger.counts.map((c) => [`${c.provider} ${c.status}`, c.count]))
      const providers = [...new Set([...ledger.providers, ...ledger.counts.map((c) => c.provider)])].sort()
      for (const provider of providers) {
        for (const status of watchedStatuses) {
          lines.push(`refundkit_refunds${labels([["provider", provider], ["status", status]])} ${counted.get(`${provider} ${status}`) ?? 0}`)
        }
      }
    }

    const cpu = process.cpuUsage()
    family("process_cpu_user_seconds_total", "counter", "User CPU time of the process.")
    lines.push(`process_cpu_user_seconds_total ${seconds(cpu.user / 1e6)}`)
    family("process_cpu_system_seconds_total", "counter", "System CPU time of the process.")
    lines.push(`process_cpu_system_seconds_total ${seconds(cpu.system / 1e6)}`)
    family("process_resident_memory_bytes", "gauge", "Resident memory of the process.")
    lines.push(`process_resident_memory_bytes ${process.memoryUsage.rss()}`)
    family("process_start_time_seconds", "gauge", "When the process started, in seconds since the Unix epoch.")
    lines.push(`process_start_time_seconds ${startSeconds}`)
    family("nodejs_heap_used_bytes", "gauge", "V8 heap in use.")
    lines.push(`nodejs_heap_used_bytes ${process.memoryUsage().heapUsed}`)
    // Since the previous scrape: a delay long past is not this scrape's news.
    family("nodejs_eventloop_delay_p99_seconds", "gauge", "99th percentile of the event loop's delay since the previous scrape.")
    lines.push(`nodejs_eventloop_delay_p99_seconds ${seconds(loopDelay.count === 0 ? 0 : loopDelay.percentile(99) / 1e9)}`)
    family("nodejs_eventloop_delay_max_seconds", "gauge", "Longest event loop delay since the previous scrape.")
    lines.push(`nodejs_eventloop_delay_max_seconds ${seconds(loopDelay.count === 0 ? 0 : loopDelay.max / 1e9)}`)
    loopDelay.reset()
    return `${lines.join("\n")}\n`
  }

  return { observe, created, render }
})
