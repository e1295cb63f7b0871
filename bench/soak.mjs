#!/usr/bin/env node
// `node bench/soak.mjs`: a soak run of one gateway (the BUILT apps/server), to see whether anything
// grows without bound under sustained load. Not part of `pnpm bench` nor of CI.
//
//   node bench/soak.mjs                                   200,000 Exirom refunds on SQLite (~10 minutes)
//   node bench/soak.mjs --ledger=postgres --chunks=5      a fresh schema of the local PostgreSQL, dropped afterwards
//   node bench/soak.mjs --chunks=3 --chunk=2000           a smoke run
//
// It sends --chunks chunks of --chunk refunds at --concurrency through one gateway (its sync loop
// every --sync-interval; every --callback-every'th refund asks the sandbox for a signed callback to
// the gateway's webhook; --syncs POST /v1/refunds/{id}/sync per chunk) and after each chunk prints
// one row: refunds/s, the gateway's CPU per refund (process / main thread, from /proc), RSS, the V8
// heap used after a full GC (a preload answers SIGUSR2 with process.memoryUsage() after gc()), the
// ledger file and its WAL, open fds and sockets, threads, active libuv resources, and median
// timings of a few reads (GET /v1/refunds pages with filters, ten pages of 500, /readyz, one refund).
// Compare rows, not absolute numbers: on a shared 2-core machine the rates drift by 30%.
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  cpuSeconds,
  createRefund,
  load,
  mainThreadCpuSeconds,
  makeAgent,
  markdownTable,
  median,
  pgAvailable,
  pgSchema,
  postgresCpuSeconds,
  removeDir,
  request,
  scriptArgs,
  sleep,
  startGateway,
  startSandbox,
  tempDir
} from "./lib.mjs"

const usage =
  "usage: node bench/soak.mjs [--ledger=sqlite|postgres] [--chunks=10] [--chunk=20000] [--concurrency=32] [--callback-every=20] [--syncs=100] [--sync-interval='2 seconds']"
const { fail, text: option, integer } = scriptArgs({
  script: "soak",
  usage,
  allowed: /^--(chunks|chunk|concurrency|callback-every|syncs)=\d+$|^--ledger=(sqlite|postgres)$|^--sync-interval=.+$/
})
const positive = (name, fallback) => integer(name, fallback, name === "syncs" ? 0 : 1)
const postgres = option("ledger", "sqlite") === "postgres"
const CHUNKS = positive("chunks", 10)
const CHUNK = positive("chunk", 20_000)
const CONCURRENCY = positive("concurrency", 32)
const CALLBACK_EVERY = positive("callback-every", 20)
const SYNCS = positive("syncs", 100)
const SYNC_INTERVAL = option("sync-interval", "2 seconds")
if (postgres && !pgAvailable()) fail("--ledger=postgres, but no PostgreSQL answers at the configured URL")
// Auto-seeded Exirom payments run from 1,000,000 to 9,999,999, one refund each.
if (CHUNKS * CHUNK > 8_000_000) fail("at most 8,000,000 refunds in one run")

const tmp = tempDir("refundkit-soak-")
const memoryFile = join(tmp, "memory.json")
const preload = join(tmp, "memory-preload.mjs")
writeFileSync(
  preload,
  `import { writeFileSync } from "node:fs"
process.on("SIGUSR2", () => {
  globalThis.gc?.()
  const resources = {}
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1
  writeFileSync(${JSON.stringify(memoryFile)}, JSON.stringify({ ...process.memoryUsage(), resources }))
})
`
)
let ledger = join(tmp, "ledger.db")
let schema
if (postgres) {
  schema = pgSchema(`refundkit_soak_${Date.now().toString(36)}`)
  ledger = schema.url
}

const sandbox = await startSandbox()
let gateway
const mib = (bytes) => bytes / 2 ** 20
try {
  gateway = await startGateway({
    sandbox,
    ledger,
    env: { REFUNDKIT_SYNC_INTERVAL: SYNC_INTERVAL, REFUNDKIT_ACCESS_LOG: "false" },
    nodeArgs: ["--expose-gc", "--import", preload]
  })
  const pid = gateway.proc.pid
  const auth = { authorization: `Bearer ${gateway.apiKey}` }
  const agent = makeAgent(CONCURRENCY + 4)
  const runId = Date.now().toString(36)
  const firstTx = 1_000_000 + Math.floor(Math.random() * 1_000) * 1_000
  const ids = []

  const rssMiB = () => Number(/VmRSS:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024
  const openFds = () => {
    let all = 0
    let sockets = 0
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      all++
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++
      } catch {}
    }
    return `${all}/${sockets}`
  }
  const fileMiB = (file) => (existsSync(file) ? mib(statSync(file).size) : 0)
  const memoryAfterGc = async () => {
    const before = existsSync(memoryFile) ? statSync(memoryFile).mtimeMs : 0
    process.kill(pid, "SIGUSR2")
    for (let i = 0; i < 100; i++) {
      await sleep(50)
      if (existsSync(memoryFile) && statSync(memoryFile).mtimeMs !== before) {
        try {
          return JSON.parse(readFileSync(memoryFile, "utf8"))
        } catch {}
      }
    }
    return undefined
  }
  const get = async (path) => {
    const t0 = performance.now()
    const r = await request(`${gateway.url}${path}`, { headers: auth, agent })
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text.slice(0, 300)}`)
    return { ms: performance.now() - t0, json: r.json }
  }
  const timed = async (path, times = 5) => {
    const ms = []
    for (let i = 0; i < times; i++) ms.push((await get(path)).ms)
    return median(ms)
  }
  const tenPages = async () => {
    const t0 = performance.now()
    let cursor
    for (let page = 0; page < 10; page++) {
      cursor = (await get(`/v1/refunds?limit=500${cursor === undefined ? "" : `&cursor=${encodeURIComponent(cursor)}`}`)).json.nextCursor
      if (cursor === undefined) break
    }
    return performance.now() - t0
  }
  const reads = [
    ["list 50", () => timed("/v1/refunds?limit=50")],
    ["pending 50", () => timed("/v1/refunds?status=pending&limit=50")],
    ["failed 50", () => timed("/v1/refunds?status=failed&limit=50")],
    ["exirom 500", () => timed("/v1/refunds?provider=exirom&limit=500", 3)],
    ["airalo pending 50", () => timed("/v1/refunds?provider=airalo&status=pending&limit=50")],
    ["10 pages of 500", async () => median([await tenPages(), await tenPages(), await tenPages()])],
    ["readyz", () => timed("/readyz")],
    ["one refund", () => timed(`/v1/refunds/${ids[Math.floor(Math.random() * ids.length)]}`)]
  ]

  const rows = [[
    "chunk",
    "refunds",
    "refunds/s",
    "gateway CPU µs/refund (process/main)",
    ...(postgres ? ["postgres CPU µs/refund"] : []),
    "RSS MiB",
    "heap after GC MiB",
    ...(postgres ? [] : ["ledger MiB", "WAL MiB"]),
    "fds/sockets",
    "threads",
    "active resources",
    "status+info calls",
    `ms: ${reads.map(([name]) => name).join(" / ")}`
  ]]
  let total = 0
  for (let c = 0; c < CHUNKS; c++) {
    const first = firstTx + c * CHUNK
    const main0 = mainThreadCpuSeconds(pid)
    const all0 = cpuSeconds(pid)
    const pg0 = postgres ? postgresCpuSeconds() : NaN
    const calls0 = await sandbox.requests()
    const r = await load({
      count: CHUNK,
      concurrency: CONCURRENCY,
      maxMillis: 1_800_000,
      task: (i) =>
        createRefund(gateway, {
          key: `soak-${runId}-${first + i}`,
          transactionId: first + i,
          agent,
          extra: i % CALLBACK_EVERY === 0 ? { callbackUrl: `${gateway.url}/v1/webhooks/exirom` } : {}
        }),
      isOk: (res) => res.status === 201,
      onResponse: (i, res) => {
        if (i % 50 === 0 && typeof res.json?.id === "string") ids.push(res.json.id)
      }
    })
    for (let k = 0; k < SYNCS && ids.length > 0; k++) {
      await request(`${gateway.url}/v1/refunds/${ids[Math.floor(Math.random() * ids.length)]}/sync`, { method: "POST", headers: auth, agent })
    }
    await sleep(1000)
    const main1 = mainThreadCpuSeconds(pid)
    const all1 = cpuSeconds(pid)
    const pg1 = postgres ? postgresCpuSeconds() : NaN
    const calls1 = await sandbox.requests()
    total += r.ok
    if (r.ok !== CHUNK) process.stderr.write(`[soak] chunk ${c + 1}: ${r.done - r.ok} not 201: ${JSON.stringify(r.statuses)} ${r.firstErrors.join(" | ")}\n`)
    const timings = []
    for (const [, read] of reads) timings.push(await read())
    const memory = await memoryAfterGc()
    const perRefund = (seconds) => Math.round((seconds / Math.max(1, r.ok)) * 1e6)
    const calls = ["status", "info"].reduce((sum, route) => sum + (calls1[route] ?? 0) - (calls0[route] ?? 0), 0)
    rows.push([
      String(c + 1),
      String(total),
      r.rps.toFixed(0),
      `${perRefund(all1 - all0)}/${perRefund(main1 - main0)}`,
      ...(postgres ? [String(perRefund(pg1 - pg0))] : []),
      rssMiB().toFixed(0),
      memory === undefined ? "?" : mib(memory.heapUsed).toFixed(1),
      ...(postgres ? [] : [fileMiB(ledger).toFixed(1), fileMiB(`${ledger}-wal`).toFixed(1)]),
      openFds(),
      String(readdirSync(`/proc/${pid}/task`).length),
      memory === undefined ? "?" : Object.entries(memory.resources).map(([k, n]) => `${k} ${n}`).join(", "),
      String(calls),
      timings.map((ms) => ms.toFixed(1)).join(" / ")
    ])
    process.stderr.write(`[soak] ${rows.at(-1).join(" | ")}\n`)
  }
  agent.destroy()
  console.log(`\n${CHUNKS} chunks of ${CHUNK} Exirom refunds at concurrency ${CONCURRENCY}, ledger on ${postgres ? "PostgreSQL" : "SQLite"}\n`)
  console.log(markdownTable(rows))
} finally {
  if (gateway !== undefined) await gateway.stop()
  await sandbox.stop()
  schema?.drop()
  removeDir(tmp)
}
