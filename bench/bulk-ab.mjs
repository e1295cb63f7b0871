#!/usr/bin/env node
// `node bench/bulk-ab.mjs`: an A/B run of `refundkit bulk` builds or settings, the bulk section of
// `bench/run.mjs` for a change whose effect is smaller than the machine's drift.
//
//   node bench/bulk-ab.mjs --variant=new --variant='old;bin=/tmp/base/apps/cli/dist/bin.js'
//   node bench/bulk-ab.mjs --variant=file --variant='memory;ledger=:memory:' --pairs=4
//
// One Exirom sandbox adds --latency ms (default 50) to every refund call. Each pair runs every
// variant once on --rows fresh rows (default 10,000) at --concurrency 32, one after the other,
// the order alternating from pair to pair; nothing else runs meanwhile. Each run prints its rows/s
// while sending (timed from the sandbox's refund-call counter, first call to last, as in
// `bench/run.mjs`), that rate over Little's bound (concurrency / latency), and the CLI's whole CPU
// per row (user + system, every thread, start-up and validation included: /usr/bin/time).
//
// A variant is `name[;env=K=V,K=V][;node=--flag --flag][;bin=path/to/cli/bin.js][;ledger=path or :memory:]`;
// without `ledger` each run gets a fresh SQLite file.
import { join } from "node:path"
import { CLI, median, parseVariant, removeDir, scriptArgs, spawnProcess, startSandbox, tempDir, watchRefunds, writeLines } from "./lib.mjs"

const usage =
  "usage: node bench/bulk-ab.mjs --variant=name[;env=K=V,...][;node=--flag ...][;bin=path][;ledger=path] --variant=... [--pairs=3] [--rows=10000] [--latency=50] [--concurrency=32]"
const { args, fail, integer: option } = scriptArgs({ script: "bulk-ab", usage, allowed: /^--(variant|pairs|rows|latency|concurrency)=./ })
const variants = args.filter((a) => a.startsWith("--variant=")).map((a) => {
  // `ledger=` is this tool's own part; the rest is the A/B variant syntax of bench/ab.mjs.
  const text = a.slice("--variant=".length)
  const ledger = /;ledger=([^;]*)/.exec(text)?.[1]
  return { ...parseVariant(text.replace(/;ledger=[^;]*/, ""), fail), ledger }
})
if (variants.length < 2) fail("give at least two variants")
const pairs = option("pairs", 3)
const rows = option("rows", 10_000)
const latency = option("latency", 50, 0)
const concurrency = option("concurrency", 32)

const sandbox = await startSandbox()
const tmp = tempDir("refundkit-bulk-ab-")
// Distinct auto-seeded transactions for every run (the sandbox refunds each once).
let nextTransaction = 1_000_000 + Math.floor(Math.random() * 4_000_000)
const results = variants.map(() => ({ rates: [], cpu: [] }))

try {
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 === 0 ? variants.map((_, i) => i) : variants.map((_, i) => variants.length - 1 - i)
    for (const i of order) {
      const v = variants[i]
      const file = join(tmp, `${v.name}-${pair}.csv`)
      const first = nextTransaction
      nextTransaction += rows
      await writeLines(file, "transactionId,amount,reason", rows, (k) => `${first + k},1.00,customer_request`)
      if (latency > 0) await sandbox.faults({ fault: { _tag: "Latency", millis: latency }, route: "refund", times: 0 })
      const watch = watchRefunds(sandbox)
      const ledger = v.ledger ?? join(tmp, `${v.name}-${pair}.db`)
      const proc = spawnProcess(
        "/usr/bin/time",
        ["-f", "cpu %U %S", process.execPath, ...v.nodeArgs, v.bin ?? CLI, "bulk", file, "--provider", "exirom", "--concurrency", String(concurrency), "--json", "--ledger", ledger],
        { env: { ...sandbox.env, ...v.env } }
      )
      const { code } = await proc.exited
      const { firstAt, lastAt, calls } = await watch.stop()
      const rate = calls / ((lastAt - firstAt) / 1000)
      await sandbox.clearFaults()
      if (code !== 0) throw new Error(`${v.name}: refundkit bulk exited ${code}: ${proc.err().slice(-500)}`)
      const time = /cpu ([\d.]+) ([\d.]+)/.exec(proc.err())
      const cpu = time === null ? NaN : ((Number(time[1]) + Number(time[2])) / rows) * 1e6
      results[i].rates.push(rate)
      results[i].cpu.push(cpu)
      const bound = latency > 0 ? ` (${(rate / (concurrency / (latency / 1000))).toFixed(3)} of ${concurrency / (latency / 1000)})` : ""
      console.log(`pair ${pair} ${v.name}: ${rate.toFixed(1)} rows/s while sending${bound}, CLI CPU ${cpu.toFixed(0)} us/row`)
    }
  }
  console.log("")
  for (const [i, v] of variants.entries()) {
    const r = results[i]
    console.log(`${v.name}: median ${median(r.rates).toFixed(1)} rows/s (${r.rates.map((x) => x.toFixed(0)).join(", ")}), CLI CPU median ${median(r.cpu).toFixed(0)} us/row (${r.cpu.map((x) => x.toFixed(0)).join(", ")})`)
  }
} finally {
  await sandbox.stop()
  removeDir(tmp)
}
