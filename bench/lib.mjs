// Shared black-box helpers for `pnpm bench` (bench/run.mjs) and the reliability suite
// (reliability/*.test.ts): spawn the BUILT binaries, talk HTTP over 127.0.0.1, drive the
// sandbox's /__sandbox/* control routes. node: built-ins only.
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, createWriteStream, existsSync, fsyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..")
// The built binaries; REFUNDKIT_CLI_BIN / REFUNDKIT_SERVER_BIN point elsewhere (e.g. a copy of
// a known-good dist while apps/ is being rebuilt).
export const CLI = process.env.REFUNDKIT_CLI_BIN ?? join(ROOT, "apps/cli/dist/bin.js")
export const SERVER = process.env.REFUNDKIT_SERVER_BIN ?? join(ROOT, "apps/server/dist/bin.js")
export const PG_URL = process.env.REFUNDKIT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

// ---------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed when this process exits.

const tracked = new Set()
const killAll = () => {
  for (const p of tracked) {
    try {
      p.child.kill("SIGKILL")
    } catch {}
  }
}
process.once("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

/**
 * Spawns `node <script> ...args` (or any command) with its output captured.
 * Returns { child, pid, out(), err(), waitFor(regex, ms), exited, kill(signal) }.
 */
export const spawnProcess = (command, args, { env = {}, cwd = ROOT, inheritEnv = true, nodeArgs = [] } = {}) => {
  const fullEnv = { ...(inheritEnv ? cleanEnv() : {}), ...env }
  const child = spawn(command, [...nodeArgs, ...args], { cwd, env: fullEnv, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  const waiters = []
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]
      const m = w.regex.exec(w.stream === "stderr" ? stderr : stdout)
      if (m !== null) {
        waiters.splice(i, 1)
        clearTimeout(w.timer)
        w.resolve(m)
      }
    }
  }
  child.stdout.setEncoding("utf8")
  child.stderr.setEncoding("utf8")
  child.stdout.on("data", (d) => {
    stdout += d
    check()
  })
  child.stderr.on("data", (d) => {
    stderr += d
    check()
  })
  const handle = {
    child,
    pid: child.pid,
    out: () => stdout,
    err: () => stderr,
    exitCode: undefined,
    signal: undefined,
    exited: null,
    waitFor: (regex, ms = 20_000, stream = "stdout") =>
      new Promise((resolve, reject) => {
        const w = {
          regex,
          stream,
          resolve,
          timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1)
            reject(new Error(`timed out after ${ms} ms waiting for ${regex} from ${command} ${args.join(" ")}\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`))
          }, ms)
        }
        waiters.push(w)
        check()
      }),
    kill: (signal = "SIGTERM") => {
      if (handle.exitCode === undefined && handle.signal === undefined) {
        try {
          child.kill(signal)
        } catch {}
      }
      return handle.exited
    }
  }
  handle.exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      tracked.delete(handle)
      handle.exitCode = code
      handle.signal = signal
      for (const w of waiters.splice(0)) {
        clearTimeout(w.timer)
        w.resolve(null)
      }
      // let the pipes drain
      setTimeout(() => resolve({ code, signal }), 20)
    })
  })
  tracked.add(handle)
  return handle
}

/** This process's environment without any REFUNDKIT_* settings, so a developer's shell cannot leak in. */
export const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REFUNDKIT_")))

/** Runs a command to completion: { code, signal, stdout, stderr, millis }. */
export const run = async (command, args, options = {}) => {
  const started = performance.now()
  const p = spawnProcess(command, args, options)
  const timeout = options.timeoutMs ?? 600_000
  const timer = setTimeout(() => p.kill("SIGKILL"), timeout)
  const { code, signal } = await p.exited
  clearTimeout(timer)
  return { code, signal, stdout: p.out(), stderr: p.err(), millis: performance.now() - started, pid: p.pid }
}

/** `node apps/cli/dist/bin.js ...args` to completion. */
export const cli = (args, options = {}) => run(process.execPath, [CLI, ...args], options)

// ---------------------------------------------------------------------------------------
// HTTP over loopback with keep-alive.

export const makeAgent = (maxSockets = 64) => new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })

/**
 * One HTTP request. `body` may be a string, a Buffer or an object (sent as JSON).
 * Resolves { status, headers, text, json } ; rejects on a transport error (tagged `.transport = true`).
 */
export const request = (url, { method = "GET", headers = {}, body, agent, timeoutMs = 30_000, raw = false } = {}) =>
  new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body)
    const u = new URL(url)
    const h = { ...headers }
    if (payload !== undefined && !raw) {
      if (!Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["content-type"] = "application/json"
      h["content-length"] = Buffer.byteLength(payload)
    }
    const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: agent ?? false }, (res) => {
      const chunks = []
      res.on("data", (c) => chunks.push(c))
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        let json
        try {
          json = text === "" ? undefined : JSON.parse(text)
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json })
      })
      res.on("error", (e) => {
        e.transport = true
        reject(e)
      })
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms: ${method} ${url}`)))
    req.on("error", (e) => {
      e.transport = true
      reject(e)
    })
    if (payload !== undefined) req.write(payload)
    req.end()
  })

// ---------------------------------------------------------------------------------------
// The sandboxes (`refundkit sandbox --json`) and their control routes.

/**
 * Starts `refundkit sandbox --json` in its own process. Returns
 * { proc, exirom: { url, baseUrl }, env, stats(), requests(), faults(rules), clearFaults(), seed(n), stop() }.
 */
export const startSandbox = async ({ env = {} } = {}) => {
  const proc = spawnProcess(process.execPath, [CLI, "sandbox", "--json"], { env })
  // The JSON document ends with the env map; wait until stdout parses.
  const deadline = Date.now() + 30_000
  let info
  while (Date.now() < deadline) {
    if (proc.exitCode !== undefined) break
    try {
      info = JSON.parse(proc.out())
      break
    } catch {}
    await sleep(50)
  }
  if (info === undefined) {
    proc.kill("SIGKILL")
    throw new Error(`refundkit sandbox did not print its JSON: stdout ${proc.out().slice(0, 2000)} stderr ${proc.err().slice(0, 2000)}`)
  }
  const exirom = info.sandboxes.find((s) => s.provider === "exirom")
  const control = (path, method = "GET", body) => request(`${exirom.url}${path}`, { method, body }).then((r) => {
    if (r.status !== 200) throw new Error(`sandbox ${method} ${path}: ${r.status} ${r.text}`)
    return r.json
  })
  return {
    proc,
    info,
    exirom,
    env: info.env,
    stats: () => control("/__sandbox/stats"),
    requests: () => control("/__sandbox/requests").then((r) => r.requests),
    faults: (rules) => control("/__sandbox/faults", "POST", rules),
    clearFaults: () => control("/__sandbox/faults", "DELETE"),
    seed: (seed) => control("/__sandbox/seed", "POST", { seed }),
    stop: async () => {
      proc.kill("SIGTERM")
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000)
      await proc.exited
      clearTimeout(t)
    }
  }
}

/** Exirom's own API, for the direct baseline: a token once, then refunds. */
export const exiromDirect = async (sandbox, agent) => {
  const base = sandbox.exirom.baseUrl
  const env = sandbox.env
  const auth = await request(`${base}/v1/auth`, {
    method: "POST",
    agent,
    body: { merchantKey: env.REFUNDKIT_EXIROM_MERCHANT_KEY, merchantSecret: env.REFUNDKIT_EXIROM_MERCHANT_SECRET }
  })
  if (auth.status !== 200) throw new Error(`exirom auth: ${auth.status} ${auth.text}`)
  const token = typeof auth.json === "string" ? auth.json : auth.json.token
  return (transactionId, requestId) =>
    request(`${base}/v1/refunds/card`, {
      method: "POST",
      agent,
      headers: { authorization: `Bearer ${token}` },
      body: { requestId, mid: env.REFUNDKIT_EXIROM_MID, transactionId, amount: "1.00", reason: "customer_request" }
    })
}

// ---------------------------------------------------------------------------------------
// The gateway (`refundkit-server`).

/**
 * Starts the gateway on a free port pointed at `sandbox`. Returns { proc, url, apiKey, stop(), kill() }.
 */
export const startGateway = async ({ sandbox, ledger, apiKey = `rk-bench-${randomBytes(8).toString("hex")}`, env = {}, nodeArgs = [], providers = "exirom", cwd = ROOT, bin = SERVER }) => {
  const proc = spawnProcess(process.execPath, [bin, "--port", "0"], {
    nodeArgs,
    cwd,
    env: {
      ...(sandbox === undefined ? {} : sandbox.env),
      REFUNDKIT_API_KEYS: apiKey,
      REFUNDKIT_LEDGER: ledger,
      ...(providers === undefined ? {} : { REFUNDKIT_PROVIDERS: providers }),
      ...env
    }
  })
  const m = await proc.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000)
  if (m === null) throw new Error(`refundkit-server exited before listening (code ${proc.exitCode}): ${proc.err().slice(0, 3000)} ${proc.out().slice(0, 1000)}`)
  const url = m[1]
  return {
    proc,
    url,
    apiKey,
    stop: async () => {
      proc.kill("SIGTERM")
      const t = setTimeout(() => proc.kill("SIGKILL"), 15_000)
      await proc.exited
      clearTimeout(t)
    }
  }
}

export const createRefund = (gateway, { key, transactionId, amount = "1.00", agent, extra = {}, timeoutMs }) =>
  request(`${gateway.url}/v1/refunds`, {
    method: "POST",
    agent,
    timeoutMs,
    headers: { authorization: `Bearer ${gateway.apiKey}`, "idempotency-key": key },
    body: { provider: "exirom", transactionId, amount, reason: "customer_request", ...extra }
  })

/** `Server-Timing: app;dur=1.23, provider;dur=35.04` -> { app, provider } in ms. */
export const serverTiming = (header) => {
  const out = {}
  for (const part of String(header ?? "").split(",")) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)/.exec(part)
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

// ---------------------------------------------------------------------------------------
// PostgreSQL: a fresh schema per run, through the psql client.

export const psql = (sql, url = PG_URL) => {
  const r = spawnSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-q", "-t", "-A", "-c", sql], { encoding: "utf8", timeout: 30_000 })
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr || r.error}`)
  return r.stdout.trim()
}
export const pgAvailable = () => {
  try {
    return psql("select 1") === "1"
  } catch {
    return false
  }
}
/** Creates schema `name` and returns { url (with search_path), drop() }. */
export const pgSchema = (name) => {
  psql(`DROP SCHEMA IF EXISTS ${name} CASCADE; CREATE SCHEMA ${name}`)
  const sep = PG_URL.includes("?") ? "&" : "?"
  return { url: `${PG_URL}${sep}options=-c%20search_path%3D${name}`, drop: () => psql(`DROP SCHEMA IF EXISTS ${name} CASCADE`) }
}

// ---------------------------------------------------------------------------------------
// Load generation, statistics, files.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Rows of strings (the first is the header) as a Markdown table with padded columns. */
export const markdownTable = (rows) => {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  const line = (r) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`
  return [line(rows[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n")
}

export const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))])
export const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50)

// ---------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux): where a load's CPU went, per process.

const clockTicks = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" })
  const n = Number(r.stdout?.trim())
  return Number.isInteger(n) && n > 0 ? n : 100
})()

/** CPU seconds (user + system, all threads) process `pid` has used; NaN when /proc cannot tell. */
export const cpuSeconds = (pid) => statCpuSeconds(`/proc/${pid}/stat`)

/** CPU seconds (user + system) of a process's main thread so far; NaN once it has exited. */
export const mainThreadCpuSeconds = (pid) => statCpuSeconds(`/proc/${pid}/task/${pid}/stat`)

const statCpuSeconds = (file, { reapedChildren = false } = {}) => {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th,
    // then cutime and cstime, the CPU of the children it has waited for.
    const fields = readFileSync(file, "utf8").split(") ").at(-1).split(" ")
    const own = Number(fields[11]) + Number(fields[12])
    return (reapedChildren ? own + Number(fields[13]) + Number(fields[14]) : own) / clockTicks
  } catch {
    return NaN
  }
}

/**
 * CPU seconds of every `postgres` process on this machine (a local server), and of those
 * that have exited: the postmaster adds a reaped backend's CPU to its own `cutime` and
 * `cstime`. Without them a backend that ends during a measurement (a pool closing an idle
 * connection) would take its CPU out of the sum. NaN when there is none.
 */
export const postgresCpuSeconds = () => {
  let total = NaN
  let entries = []
  try {
    entries = readdirSync("/proc")
  } catch {
    return NaN
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    let comm
    try {
      comm = readFileSync(`/proc/${entry}/comm`, "utf8")
    } catch {
      continue
    }
    if (!comm.startsWith("postgres")) continue
    const seconds = statCpuSeconds(`/proc/${entry}/stat`, { reapedChildren: true })
    if (Number.isFinite(seconds)) total = (Number.isFinite(total) ? total : 0) + seconds
  }
  return total
}

/**
 * Starts measuring the CPU of `pids` (named), of this process (`loadgen`) and, with
 * `postgres`, of a local PostgreSQL. `stop(refunds)` returns microseconds per refund
 * for each, and how many cores the machine was kept busy by them on average (and the
 * raw seconds, so that `mergeCpu` can add up several measurements).
 */
/**
 * CPU seconds the hypervisor ran something else while this machine's cores wanted to run (the
 * `steal` column of /proc/stat, all cores); NaN when /proc cannot tell. On a shared host it is
 * what makes one hour's run half as fast as another's: every process here was simply not running.
 */
export const stolenSeconds = () => {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/)
    return Number(fields[8]) / clockTicks
  } catch {
    return NaN
  }
}

export const cpuMeter = (pids, { postgres = false } = {}) => {
  const read = () => {
    const own = process.cpuUsage()
    const out = { loadgen: (own.user + own.system) / 1e6 }
    for (const [name, list] of Object.entries(pids)) out[name] = list.reduce((sum, pid) => sum + cpuSeconds(pid), 0)
    if (postgres) out.postgres = postgresCpuSeconds()
    return out
  }
  const before = read()
  const stealBefore = stolenSeconds()
  const started = performance.now()
  return {
    stop: (refunds) => {
      const after = read()
      const used = {}
      for (const name of Object.keys(after)) {
        const seconds = after[name] - before[name]
        if (Number.isFinite(seconds)) used[name] = seconds
      }
      return cpuSummary({ used, seconds: (performance.now() - started) / 1000, refunds, stolen: stolenSeconds() - stealBefore })
    }
  }
}

const cpuSummary = ({ used, seconds, refunds, stolen }) => {
  const perRefund = {}
  let busy = 0
  for (const [name, s] of Object.entries(used)) {
    perRefund[name] = Math.round((s / refunds) * 1e6)
    busy += s
  }
  const cores = (s) => Math.round((s / seconds) * 100) / 100
  return { microsPerRefund: perRefund, coresBusy: cores(busy), coresStolen: Number.isFinite(stolen) ? cores(stolen) : undefined, used, stolen, seconds, refunds }
}

/** Several `cpuMeter` measurements as one. */
export const mergeCpu = (list) => {
  const used = {}
  for (const cpu of list) for (const [name, s] of Object.entries(cpu.used)) used[name] = (used[name] ?? 0) + s
  return cpuSummary({
    used,
    seconds: list.reduce((a, c) => a + c.seconds, 0),
    refunds: list.reduce((a, c) => a + c.refunds, 0),
    stolen: list.reduce((a, c) => a + c.stolen, 0)
  })
}

/**
 * The disk's fsync latency in `dir` (milliseconds, p50 of `count`), after writing 36 KiB
 * (about one refund's WAL frames) at the end of a growing file and over a file's
 * existing blocks: every refund waits for an fsync of its claim and of its outcome.
 * The third figure overwrites after the thread slept 3 ms, as a gateway at concurrency 1
 * does between its fsyncs: a virtual disk can answer much later after an idle gap.
 */
export const fsyncProbe = (dir, count = 200) => {
  const file = join(dir, "fsync-probe")
  const chunk = Buffer.alloc(36 * 1024, 1)
  const fd = openSync(file, "w")
  const idle = new Int32Array(new SharedArrayBuffer(4))
  const time = (position, idleMs = 0) => {
    const out = []
    for (let i = 0; i < count; i++) {
      if (idleMs > 0) Atomics.wait(idle, 0, 0, idleMs)
      writeSync(fd, chunk, 0, chunk.length, position(i))
      const t0 = performance.now()
      fsyncSync(fd)
      out.push(performance.now() - t0)
    }
    return median(out)
  }
  try {
    const append = time((i) => i * chunk.length)
    const overwrite = time((i) => (i % 16) * chunk.length)
    const afterIdle = time((i) => (i % 16) * chunk.length, 3)
    return { appendMs: append, overwriteMs: overwrite, afterIdleMs: afterIdle }
  } finally {
    closeSync(fd)
    rmSync(file, { force: true })
  }
}

/**
 * Runs `task(i)` for i in [0, count) with `concurrency` workers, stopping at `count` or
 * `maxMillis`, whichever first. `task` resolves a response ({ status, headers }).
 * Returns { done, ok, statuses, errors, millis, rps, p50, p99, latencies (sorted), responses? }.
 */
export const load = async ({ count, concurrency, maxMillis = 300_000, task, isOk = (r) => r.status >= 200 && r.status < 300, onResponse }) => {
  let next = 0
  let ok = 0
  let errors = 0
  const statuses = {}
  const latencies = new Float64Array(count)
  let recorded = 0
  const firstErrors = []
  const started = performance.now()
  const deadline = started + maxMillis
  const worker = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++
      const t0 = performance.now()
      try {
        const r = await task(i)
        const dt = performance.now() - t0
        latencies[recorded++] = dt
        statuses[r.status] = (statuses[r.status] ?? 0) + 1
        if (isOk(r)) ok++
        else if (firstErrors.length < 5) firstErrors.push(`${r.status} ${String(r.text).slice(0, 300)}`)
        if (onResponse) onResponse(i, r, dt)
      } catch (e) {
        errors++
        if (firstErrors.length < 5) firstErrors.push(String(e?.message ?? e))
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const millis = performance.now() - started
  const sorted = Array.from(latencies.subarray(0, recorded)).sort((a, b) => a - b)
  return { done: recorded + errors, ok, errors, statuses, firstErrors, millis, rps: (ok / millis) * 1000, p50: percentile(sorted, 50), p99: percentile(sorted, 99), latencies: sorted }
}

/** Writes `lines(i)` for i in [0, count) to `path` with back-pressure (constant memory). */
export const writeLines = (path, header, count, line) =>
  new Promise((resolve, reject) => {
    const out = createWriteStream(path)
    out.on("error", reject)
    let i = 0
    const pump = () => {
      let okToWrite = true
      if (i === 0 && header !== undefined) okToWrite = out.write(`${header}\n`)
      while (i < count && okToWrite) {
        let chunk = ""
        const end = Math.min(count, i + 1000)
        for (; i < end; i++) chunk += `${line(i)}\n`
        okToWrite = out.write(chunk)
      }
      if (i < count) out.once("drain", pump)
      else out.end(resolve)
    }
    pump()
  })

export const tempDir = (prefix) => mkdtempSync(join(tmpdir(), prefix))
export const removeDir = (dir) => rmSync(dir, { recursive: true, force: true })
export { existsSync, readFileSync }

/** A seeded PRNG (mulberry32), for reproducible generated inputs. */
export const prng = (seed) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** All refunds in a ledger via `refundkit list --json` (paged). */
export const listLedger = async (ledger, env = {}, { status } = {}) => {
  const items = []
  let cursor
  for (let page = 0; page < 10_000; page++) {
    const args = ["list", "--json", "--ledger", ledger, "--limit", "1000", ...(status ? ["--status", status] : []), ...(cursor ? ["--cursor", cursor] : [])]
    const r = await cli(args, { env, timeoutMs: 120_000 })
    if (r.code !== 0) throw new Error(`refundkit ${args.join(" ")} exited ${r.code}: ${r.stderr.slice(0, 2000)}`)
    const doc = JSON.parse(r.stdout)
    items.push(...doc.items)
    cursor = doc.nextCursor
    if (cursor === undefined) break
  }
  return items
}

/**
 * A bench script's command line: `--help` prints `usage` and exits 0; an argument `allowed` does not
 * match, or a bad number, prints the problem and `usage` and exits 2. `fail` does the same for the
 * script's own checks.
 */
export const scriptArgs = ({ script, usage, allowed }) => {
  const args = process.argv.slice(2)
  if (args.includes("--help")) {
    console.log(usage)
    process.exit(0)
  }
  const fail = (problem) => {
    console.error(`bench/${script}: ${problem}\n${usage}`)
    process.exit(2)
  }
  for (const a of args) if (!allowed.test(a)) fail(`unknown argument ${a}`)
  /** The text of `--name=…`, or `fallback`. */
  const text = (name, fallback) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
  /** The integer of `--name=…` (at least `min`), or `fallback`. */
  const integer = (name, fallback, min = 1) => {
    const found = text(name, undefined)
    if (found === undefined) return fallback
    const n = Number(found)
    if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer of at least ${min}`)
    return n
  }
  return { args, fail, text, integer }
}

/**
 * A variant of an A/B run (`bench/ab.mjs`, `bench/bulk-ab.mjs`): `name[;env=K=V,K=V][;node=--flag --flag][;bin=path]`.
 * `onError` is told what is wrong with `text` and must not return.
 */
export const parseVariant = (text, onError) => {
  const [name, ...parts] = text.split(";")
  const variant = { name, env: {}, nodeArgs: [], bin: undefined }
  for (const part of parts) {
    const eq = part.indexOf("=")
    const key = part.slice(0, eq)
    const value = part.slice(eq + 1)
    if (key === "env") {
      for (const pair of value.split(",").filter(Boolean)) {
        const at = pair.indexOf("=")
        variant.env[pair.slice(0, at)] = pair.slice(at + 1)
      }
    } else if (key === "node") variant.nodeArgs = value.split(" ").filter(Boolean)
    else if (key === "bin") variant.bin = value
    else onError(`unknown part "${part}" in --variant=${text}`)
  }
  return variant
}

/** Polls the sandbox's refund-route count while a bulk run is going, to time the sending phase. */
export const watchRefunds = (sandbox) => {
  let firstAt
  let lastAt
  let lastN
  let stopped = false
  let base
  const done = (async () => {
    while (!stopped) {
      // Request counts only: the full stats grow with every transaction refunded and cost the sandbox real CPU.
      const n = (await sandbox.requests()).refund ?? 0
      base ??= n
      const now = performance.now()
      if (firstAt === undefined && n > base) firstAt = now
      if (n !== (lastN ?? base)) {
        lastN = n
        lastAt = now
      }
      await sleep(100)
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await done
      return { firstAt, lastAt, calls: (lastN ?? base) - base }
    }
  }
}
