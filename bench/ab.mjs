#!/usr/bin/env node
// `node bench/ab.mjs`: an A/B run of gateway builds or settings, for a change whose effect is
// smaller than the machine's drift (on a shared 2-core machine one gateway load can run 30%
// faster or slower than the same load a minute later).
//
//   node bench/ab.mjs --variant=base --variant='semi32;node=--max-semi-space-size=32'
//   node bench/ab.mjs --variant=new --variant='old;bin=/tmp/base/apps/server/dist/bin.js' --rounds=12
//
// Every variant's gateway runs at once against one Exirom sandbox, each on its own SQLite
// ledger (or, with --ledger=postgres, its own fresh schema of the local PostgreSQL, dropped
// afterwards; REFUNDKIT_TEST_PG_URL overrides the server); after a warm-up, each round sends --count refunds at --concurrency to every variant
// in turn, the order rotating from round to round. Per variant it prints the median refunds/s,
// the median over rounds of its ratio to the first variant in the same round, how many rounds
// it beat the first variant in, its CPU per refund (main thread, and the whole process), the
// median of its own time per request (`Server-Timing: app`, the median of each round's p50:
// the figure to compare at --concurrency=1) and its peak resident memory.
// Repeat the first variant (`--variant=base --variant=x --variant=base`) for a control: what
// the harness reports for no change at all.
//
// A variant is `name[;env=K=V,K=V][;node=--flag --flag][;bin=path/to/server/bin.js]`.
//
// --ops also counts, per refund, the Effect operations and fibers each gateway runs (through
// bench/effect-ops.mjs): unlike CPU time, those counts do not drift with the machine. A gateway
// bundle carries its own Effect, out of the counter's reach, so with --ops a server's `dist/bin.js`
// is run from its compiled modules instead (bench/server-unbundled.mjs); its CPU figures are then
// those of the unbundled build, alike for every such variant. A variant with no Effect to count
// (the plain-Node floor) shows "-".
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
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
  percentile,
  removeDir,
  ROOT,
  scriptArgs,
  SERVER,
  serverTiming,
  sleep,
  startGateway,
  startSandbox,
  parseVariant,
  tempDir
} from "./lib.mjs"

const usage =
  "usage: node bench/ab.mjs --variant=name[;env=K=V,...][;node=--flag ...][;bin=path] --variant=... [--rounds=10] [--count=3000] [--concurrency=32] [--ledger=sqlite|postgres] [--ops]"
const { args, fail, integer: option } = scriptArgs({
  script: "ab",
  usage,
  allowed: /^--(variant|rounds|count|concurrency)=.|^--ledger=(sqlite|postgres)$|^--ops$/
})

const variants = args.filter((a) => a.startsWith("--variant=")).map((a) => parseVariant(a.slice("--variant=".length), fail))
if (variants.length < 2) fail("give at least two variants")
const postgres = args.includes("--ledger=postgres")
if (postgres && !pgAvailable()) fail("--ledger=postgres, but no PostgreSQL answers at the configured URL")
const countOps = args.includes("--ops")
const ROUNDS = option("rounds", 10)
const COUNT = option("count", 3000)
const CONCURRENCY = option("concurrency", 32)

const peakRssMiB = (pid) => Number(/VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024

const tmp = tempDir("refundkit-ab-")
const sandbox = await startSandbox()
const gateways = []
const schemas = []
let nextTx = 1_000_000 + Math.floor(Math.random() * 1_000) * 1_000
const runId = Date.now().toString(36)
try {
  for (const [i, v] of variants.entries()) {
    let ledger = join(tmp, `${i}.db`)
    if (postgres) {
      const schema = pgSchema(`refundkit_ab_${runId}_${i}`)
      schemas.push(schema)
      ledger = schema.url
    }
    const opsFile = join(tmp, `ops-${i}.txt`)
    const bin = v.bin ?? SERVER
    const compiled = dirname(bin)
    const unbundled = countOps && bin.endsWith("bin.js") && existsSync(join(compiled, "Main.js"))
    const env = countOps ? { ...v.env, REFUNDKIT_EFFECT_OPS_FILE: opsFile, ...(unbundled ? { REFUNDKIT_SERVER_DIST: compiled } : {}) } : v.env
    const nodeArgs = countOps ? [...v.nodeArgs, "--import", join(ROOT, "bench/effect-ops.mjs")] : v.nodeArgs
    gateways.push({ opsFile, ...(await startGateway({ sandbox, ledger, env, nodeArgs, bin: unbundled ? join(ROOT, "bench/server-unbundled.mjs") : bin })) })
  }
  const send = async (gateway, count) => {
    const agent = makeAgent(CONCURRENCY)
    const first = nextTx
    nextTx += count
    const app = []
    const r = await load({
      count,
      concurrency: CONCURRENCY,
      task: (i) => createRefund(gateway, { key: `ab-${runId}-${first + i}`, transactionId: first + i, agent }),
      isOk: (res) => res.status === 201,
      onResponse: (_i, res) => app.push(serverTiming(res.headers["server-timing"]).app ?? NaN)
    })
    agent.destroy()
    if (r.ok !== count) throw new Error(`${r.done - r.ok} of ${count} requests were not 201: ${JSON.stringify(r.statuses)} ${r.firstErrors.join(" | ")}`)
    return { ...r, appP50: percentile(app.sort((a, b) => a - b), 50) }
  }
  for (const g of gateways) await send(g, Math.min(2_000, COUNT))
  // [operations, fibers] so far; the preload rewrites its file every 100 ms. NaN: nothing counted.
  const opsOf = async (gateway) => {
    await sleep(150)
    const text = existsSync(gateway.opsFile) ? readFileSync(gateway.opsFile, "utf8") : "unavailable"
    return text === "unavailable" ? [NaN, NaN] : text.split(" ").map(Number)
  }
  const results = variants.map(() => ({ rps: [], mainMicros: [], processMicros: [], appP50: [], ops: [], fibers: [] }))
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (k + round) % variants.length
      const pid = gateways[i].proc.pid
      const main0 = mainThreadCpuSeconds(pid)
      const all0 = cpuSeconds(pid)
      const ops0 = countOps ? await opsOf(gateways[i]) : undefined
      const r = await send(gateways[i], COUNT)
      results[i].rps.push(r.rps)
      results[i].appP50.push(r.appP50)
      results[i].mainMicros.push(((mainThreadCpuSeconds(pid) - main0) / r.ok) * 1e6)
      results[i].processMicros.push(((cpuSeconds(pid) - all0) / r.ok) * 1e6)
      if (ops0 !== undefined) {
        const [ops, fibers] = await opsOf(gateways[i])
        results[i].ops.push((ops - ops0[0]) / r.ok)
        results[i].fibers.push((fibers - ops0[1]) / r.ok)
      }
    }
    process.stderr.write(`[ab] round ${round + 1}/${ROUNDS}: ${variants.map((v, i) => `${v.name} ${Math.round(results[i].rps.at(-1))}`).join(", ")} refunds/s\n`)
  }
  const rows = [["variant", "refunds/s (median)", "ratio to first (median of rounds)", "rounds ahead of first", "CPU us/refund: main thread / process", "app p50 (ms)", "peak RSS", ...(countOps ? ["Effect ops / fibers per refund"] : [])]]
  for (const [i, v] of variants.entries()) {
    const ratios = results[i].rps.map((x, round) => x / results[0].rps[round])
    rows.push([
      v.name,
      String(Math.round(median(results[i].rps))),
      median(ratios).toFixed(3),
      i === 0 ? "-" : `${ratios.filter((x) => x > 1).length}/${ROUNDS}`,
      `${Math.round(median(results[i].mainMicros))} / ${Math.round(median(results[i].processMicros))}`,
      median(results[i].appP50).toFixed(2),
      `${Math.round(peakRssMiB(gateways[i].proc.pid))} MiB`,
      ...(countOps ? [results[i].ops.some(Number.isNaN) ? "-" : `${median(results[i].ops).toFixed(1)} / ${median(results[i].fibers).toFixed(2)}`] : [])
    ])
  }
  console.log(`\n${ROUNDS} rounds of ${COUNT} refunds at concurrency ${CONCURRENCY}, order rotating, ledger on ${postgres ? "PostgreSQL" : "SQLite"}\n`)
  console.log(markdownTable(rows))
} finally {
  for (const g of gateways) await g.stop()
  await sandbox.stop()
  for (const schema of schemas) schema.drop()
  removeDir(tmp)
}
