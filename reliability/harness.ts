// Typed re-export of the black-box helpers shared with the benchmarks (bench/lib.mjs).
// @ts-ignore: plain ESM without declarations
import * as lib from "../bench/lib.mjs"
import { afterAll, beforeAll, expect } from "vitest"

export interface Response {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  readonly json: any
}
export interface Proc {
  readonly pid: number
  readonly exitCode: number | null | undefined
  readonly signal: string | null | undefined
  readonly exited: Promise<{ code: number | null; signal: string | null }>
  out(): string
  err(): string
  kill(signal?: string): Promise<{ code: number | null; signal: string | null }>
  waitFor(regex: RegExp, ms?: number, stream?: "stdout" | "stderr"): Promise<RegExpExecArray | null>
}
export interface Sandbox {
  readonly proc: Proc
  readonly env: Record<string, string>
  readonly exirom: { url: string; baseUrl: string }
  stats(): Promise<{ refundsPerformed: number; requests: Record<string, number>; refundsPerTransaction: Record<string, number> }>
  faults(rules: unknown): Promise<unknown>
  clearFaults(): Promise<unknown>
  seed(seed: number): Promise<unknown>
  stop(): Promise<void>
}
export interface Gateway {
  readonly proc: Proc
  readonly url: string
  readonly apiKey: string
  stop(): Promise<void>
}
export interface RunResult {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly millis: number
}

export const L = lib as {
  ROOT: string
  CLI: string
  SERVER: string
  PG_URL: string
  spawnProcess(command: string, args: string[], options?: { env?: Record<string, string>; cwd?: string; nodeArgs?: string[] }): Proc
  run(command: string, args: string[], options?: { env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult>
  cli(args: string[], options?: { env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult>
  makeAgent(maxSockets?: number): import("node:http").Agent
  request(url: string, options?: { method?: string; headers?: Record<string, string>; body?: unknown; agent?: import("node:http").Agent; timeoutMs?: number; raw?: boolean }): Promise<Response>
  startSandbox(options?: { env?: Record<string, string> }): Promise<Sandbox>
  startGateway(options: { sandbox?: Sandbox; ledger: string; apiKey?: string; env?: Record<string, string>; nodeArgs?: string[]; providers?: string }): Promise<Gateway>
  createRefund(gateway: Gateway, options: { key: string; transactionId: number; amount?: string; agent?: import("node:http").Agent | undefined; extra?: Record<string, unknown>; timeoutMs?: number }): Promise<Response>
  psql(sql: string, url?: string): string
  pgAvailable(): boolean
  pgSchema(name: string): { url: string; drop(): void }
  sleep(ms: number): Promise<void>
  writeLines(path: string, header: string | undefined, count: number, line: (i: number) => string): Promise<void>
  tempDir(prefix: string): string
  removeDir(dir: string): void
  prng(seed: number): () => number
  listLedger(ledger: string, env?: Record<string, string>, options?: { status?: string }): Promise<Array<any>>
}

/**
 * A seeded case's seed: `fallback` (what CI runs, the same run every time) unless
 * RELIABILITY_SEED names another, to explore beyond it and to replay a run that failed.
 */
export const seedOr = (fallback: number): number => {
  const given = process.env.RELIABILITY_SEED
  if (given === undefined || given === "") return fallback
  const seed = Number(given)
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`RELIABILITY_SEED must be a non-negative integer, not ${JSON.stringify(given)}`)
  return seed
}

/**
 * The fault storm's rules on a sandbox's `refund` route. The sandbox applies the first matching
 * non-latency rule, drawing each rule's probability in order; these conditional probabilities give
 * 20% 5xx (10% 500, 5% 502, 5% 503) and 5% each of resets, hangs of `hangMillis` and lost answers, of
 * all refund calls (half the 503s bare, half with `Retry-After: 0`). A 500, a 502 or a bare 503 (a proxy sends one
 * after its upstream took the request) may have been processed; a 503 with `Retry-After` was not.
 */
export const stormRules = (hangMillis: number) => [
  { fault: { _tag: "ServerError", status: 500 }, route: "refund", times: 0, probability: 0.1 },
  { fault: { _tag: "ServerError", status: 502 }, route: "refund", times: 0, probability: 0.05 / 0.9 },
  { fault: { _tag: "ServerError", status: 503 }, route: "refund", times: 0, probability: 0.025 / 0.85 },
  { fault: { _tag: "ServerError", status: 503, retryAfterSeconds: 0 }, route: "refund", times: 0, probability: 0.025 / 0.825 },
  { fault: { _tag: "Reset" }, route: "refund", times: 0, probability: 0.05 / 0.8 },
  { fault: { _tag: "Hang", millis: hangMillis }, route: "refund", times: 0, probability: 0.05 / 0.75 },
  { fault: { _tag: "LostResponse" }, route: "refund", times: 0, probability: 0.05 / 0.7 }
]

/** Transaction ids (auto-seeded refundable payments) unique to this process and call. */
// Auto-seeded range is 1,000,000-9,999,999; each test file takes a random 20,000-id block of 2M-9.9M.
let nextTx = 2_000_000 + Math.floor(Math.random() * 395) * 20_000
export const takeTx = (n: number): number => {
  const first = nextTx
  nextTx += n
  return first
}

/** Asserts the sandbox never refunded one transaction twice; returns the counts. */
export const perTransaction = async (sandbox: Sandbox) => (await sandbox.stats()).refundsPerTransaction ?? {}

export const doubleRefunds = (counts: Record<string, number>) => Object.entries(counts).filter(([, n]) => n > 1)

/** Lines of a crash: a Node stack trace or an uncaught error banner. */
export const crashTrace = (text: string) => /(^|\n)\s+at [\w.<>]+ \(|Uncaught|FATAL ERROR|UnhandledPromiseRejection|node:internal\/process/.test(text)

/**
 * A test file's shared Exirom sandbox, temp directory and clean-up: the sandbox starts before
 * the file's tests; afterwards what the tests pushed onto `stops` runs newest first (failures
 * ignored), then the sandbox stops and the directory is removed.
 */
export const useSuite = (prefix: string) => {
  const stops: Array<() => Promise<void> | void> = []
  const dir: string = L.tempDir(prefix)
  let sandbox: Sandbox | undefined
  beforeAll(async () => {
    const started = await L.startSandbox()
    sandbox = started
    stops.push(() => started.stop())
  })
  afterAll(async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => {})
    L.removeDir(dir)
  })
  return {
    dir,
    stops,
    sandbox: (): Sandbox => {
      if (sandbox === undefined) throw new Error("the suite's sandbox is used before it started")
      return sandbox
    }
  }
}

/** A gateway's API key as the Authorization header. */
export const auth = (g: Gateway) => ({ authorization: `Bearer ${g.apiKey}` })

/** Every refund in the ledger (optionally of one status), read through a gateway page by page. */
export const listAll = async (g: Gateway, status?: string) => {
  const items: Array<any> = []
  let cursor: string | undefined
  do {
    const query = new URLSearchParams({ limit: "500", ...(status === undefined ? {} : { status }), ...(cursor === undefined ? {} : { cursor }) })
    const r = await L.request(`${g.url}/v1/refunds?${query}`, { headers: auth(g) })
    expect(r.status, r.text).toBe(200)
    items.push(...r.json.items)
    cursor = r.json.nextCursor
  } while (cursor !== undefined)
  return items
}

/**
 * Settles what a database fault left in doubt, as an operator would: waits (up to 20 s) until
 * recovery has moved every refund left `requested` (its claim or outcome write was cut) to `unknown`,
 * gives the sync loops `pauseMillis`, then syncs what is still `unknown` by hand, alternating between
 * the gateways (a loop's sync the fault interrupted leaves its refund leased for 90 s). Returns what
 * stayed `requested` and each refund a sync could not settle.
 */
export const settleInDoubt = async (gateways: ReadonlyArray<Gateway>, pauseMillis: number) => {
  const started = Date.now()
  let requested: Array<string> = []
  do {
    requested = (await listAll(gateways[0]!, "requested")).map((r) => r.id)
    if (requested.length > 0) await L.sleep(250)
  } while (requested.length > 0 && Date.now() < started + 20_000)
  if (requested.length > 0) return { requested, stuck: [] as Array<string> }
  await L.sleep(pauseMillis)
  const unknown = await listAll(gateways[0]!, "unknown")
  const stuck: Array<string> = []
  for (const [i, r] of unknown.entries()) {
    const g = gateways[i % gateways.length]!
    const synced = await L.request(`${g.url}/v1/refunds/${r.id}/sync`, { method: "POST", headers: auth(g) })
    if (synced.status !== 200 || !["pending", "succeeded"].includes(synced.json?.status)) stuck.push(`${r.id}: ${synced.status} ${synced.text.slice(0, 300)}`)
  }
  console.log(`settled in ${Date.now() - started} ms, ${unknown.length} refund(s) synced by hand`)
  return { requested, stuck }
}
