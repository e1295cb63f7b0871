#!/usr/bin/env node
// `bench/floor.mjs`: a reference, not refundkit. The least a Node gateway in front of the Exirom
// sandbox has to do for a refund, written plainly (no Effect, no Schema), so that `bench/ab.mjs` can
// show how far the real gateway is from what Node itself costs on the machine at hand:
//
//   node bench/ab.mjs --variant=gateway --variant='floor;bin=bench/floor.mjs' --rounds=6
//
// It keeps the rules that cost something: an API key and an Idempotency-Key on every request, the
// body parsed and checked, the refund id and request fingerprint hashed, a claim (the refund row and
// its first event, unique on the key) committed and fsynced before Exirom is called, the outcome
// (an update and a second event) committed and fsynced before the answer, writes grouped into one
// transaction per event-loop turn with one fsync in flight, keep-alive to Exirom with a cached
// token. It leaves out what refundkit adds beyond that: the over-refund guard, retries and the
// call timeout, the refund cache, response schemas, replays, logs and every other route.
//
// Started like refundkit-server by bench/lib.mjs: REFUNDKIT_LEDGER (a SQLite file),
// REFUNDKIT_API_KEYS (one key), REFUNDKIT_EXIROM_*; it prints "listening on <url>".
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import { createRequire } from "node:module"
import { join } from "node:path"
import { ROOT } from "./lib.mjs"

const Database = createRequire(join(ROOT, "packages/ledger-sql/package.json"))("better-sqlite3")
const { Pool } = createRequire(join(ROOT, "apps/server/package.json"))("@effect/platform-node/Undici").default

const env = process.env
const base = new URL(env.REFUNDKIT_EXIROM_BASE_URL)
const apiKey = env.REFUNDKIT_API_KEYS

const db = new Database(env.REFUNDKIT_LEDGER)
db.pragma("journal_mode = WAL")
db.pragma("synchronous = NORMAL")
db.exec(`CREATE TABLE IF NOT EXISTS refunds (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, provider TEXT NOT NULL, idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, request TEXT NOT NULL, status TEXT NOT NULL, provider_reference TEXT,
    amount TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1,
    UNIQUE (provider, idempotency_key));
  CREATE INDEX IF NOT EXISTS refunds_status_updated ON refunds (status, updated_at, seq);
  CREATE TABLE IF NOT EXISTS refund_events (refund_id TEXT NOT NULL REFERENCES refunds (id), sequence INTEGER NOT NULL,
    at TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL, provider_status TEXT, PRIMARY KEY (refund_id, sequence));`)
const walFd = fs.openSync(`${env.REFUNDKIT_LEDGER}-wal`, "r+")
const statement = {
  begin: db.prepare("BEGIN IMMEDIATE"),
  commit: db.prepare("COMMIT"),
  insert: db.prepare(`INSERT INTO refunds (id, provider, idempotency_key, fingerprint, request, status, amount, created_at, updated_at)
    VALUES (?, 'exirom', ?, ?, ?, 'requested', ?, ?, ?) ON CONFLICT (provider, idempotency_key) DO NOTHING`),
  event: db.prepare("INSERT INTO refund_events (refund_id, sequence, at, from_status, to_status, provider_status) VALUES (?, ?, ?, ?, ?, ?)"),
  update: db.prepare("UPDATE refunds SET status = ?, provider_reference = ?, updated_at = ?, version = version + 1 WHERE id = ?")
}

// Group commit: the writes of one event-loop turn share a transaction, answered after its fsync;
// writes made while an fsync runs wait for the next one.
let queue = []
let scheduled = false
let syncing = false
const flush = () => {
  scheduled = false
  if (syncing || queue.length === 0) return
  const batch = queue
  queue = []
  statement.begin.run()
  const results = batch.map((write) => write.body())
  statement.commit.run()
  syncing = true
  fs.fsync(walFd, (error) => {
    syncing = false
    if (error) {
      console.error(`floor: fsync of the WAL failed: ${error.message}`)
      process.exit(1)
    }
    batch.forEach((write, i) => write.done(results[i]))
    flush()
  })
}
const write = (body) =>
  new Promise((done) => {
    queue.push({ body, done })
    if (!scheduled && !syncing) {
      scheduled = true
      setImmediate(flush)
    }
  })

const exirom = new Pool(base.origin, { connections: 64 })
const post = async (path, body, headers = {}) => {
  const response = await exirom.request({ method: "POST", path: `${base.pathname}${path}`, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })
  return { status: response.statusCode, json: await response.body.json() }
}
const auth = await post("/v1/auth", { merchantKey: env.REFUNDKIT_EXIROM_MERCHANT_KEY, merchantSecret: env.REFUNDKIT_EXIROM_MERCHANT_SECRET })
const token = typeof auth.json === "string" ? auth.json : auth.json.token

const sha256 = (text) => createHash("sha256").update(text).digest("hex")
const decimal = /^\d{1,15}(\.\d{1,2})?$/
// Timed as the gateway times itself: `app` is the whole request minus the provider call.
const answer = (response, status, body, started, providerMillis = 0) => {
  const text = JSON.stringify(body)
  const total = performance.now() - started
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "server-timing": `app;dur=${(total - providerMillis).toFixed(2)}, provider;dur=${providerMillis.toFixed(2)}`
  })
  response.end(text)
}

const refund = async (key, body, timing) => {
  const id = `rfd_${sha256(`exirom\u0000${key}`).slice(0, 26)}`
  const request = { transactionId: body.transactionId, amount: body.amount, reason: body.reason }
  const requestText = JSON.stringify(request)
  const at = new Date().toISOString()
  const claimed = await write(() => {
    if (statement.insert.run(id, key, sha256(requestText), requestText, body.amount, at, at).changes === 0) return false
    statement.event.run(id, 1, at, null, "requested", null)
    return true
  })
  if (!claimed) return { status: 409, body: { error: { code: "refund_in_progress_or_replay" } } }
  const calling = performance.now()
  const sent = await post("/v1/refunds/card", { requestId: id, mid: env.REFUNDKIT_EXIROM_MID, ...request }, { authorization: `Bearer ${token}` })
  timing.providerMillis = performance.now() - calling
  const word = typeof sent.json?.transactionStatus === "string" ? sent.json.transactionStatus : "UNKNOWN"
  const status = sent.status === 200 && word !== "FAILED" ? "pending" : "failed"
  const reference = sent.json?.refundId ?? sent.json?.refundTransactionId ?? null
  const done = new Date().toISOString()
  await write(() => {
    statement.update.run(status, reference, done, id)
    statement.event.run(id, 2, done, "requested", status, word)
  })
  return {
    status: 201,
    body: {
      id, provider: "exirom", idempotencyKey: key, status, providerStatus: word, providerReference: reference, request, amount: body.amount,
      createdAt: at, updatedAt: done, events: [{ sequence: 1, at, to: "requested" }, { sequence: 2, at: done, from: "requested", to: status }]
    }
  }
}

const server = http.createServer((request, response) => {
  const started = performance.now()
  if (request.method !== "POST" || request.url !== "/v1/refunds") return answer(response, 404, { error: { code: "not_found" } }, started)
  if (request.headers.authorization !== `Bearer ${apiKey}`) return answer(response, 401, { error: { code: "unauthorized" } }, started)
  const key = request.headers["idempotency-key"]
  if (typeof key !== "string" || !/^[\x20-\x7e]{1,255}$/.test(key)) return answer(response, 400, { error: { code: "missing_idempotency_key" } }, started)
  const chunks = []
  request.on("data", (chunk) => chunks.push(chunk))
  request.on("end", () => {
    let body
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      return answer(response, 400, { error: { code: "invalid_request" } }, started)
    }
    const valid = body !== null && typeof body === "object" && body.provider === "exirom" && Number.isSafeInteger(body.transactionId) &&
      body.transactionId > 0 && typeof body.amount === "string" && decimal.test(body.amount) && typeof body.reason === "string" && body.reason.trim() !== ""
    if (!valid) return answer(response, 400, { error: { code: "invalid_request" } }, started)
    const timing = { providerMillis: 0 }
    refund(key, body, timing).then(
      (result) => answer(response, result.status, result.body, started, timing.providerMillis),
      () => answer(response, 500, { error: { code: "internal_error" } }, started, timing.providerMillis)
    )
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`))
process.on("SIGTERM", () => {
  server.close(() => exirom.close().then(() => process.exit(0)))
  server.closeAllConnections()
})
