// POST /v1/refunds/{id}/resolve: an operator's verdict over HTTP, with the rules `refundkit resolve` applies,
// against the real gateway, its sandboxes and a SQLite ledger file. A verdict sends nothing to any provider.
import { assert, describe, it } from "@effect/vitest"
import { eventually } from "@refundkit/testkit/Waiting"
import { Effect, Fiber } from "effect"
import * as Http from "node:http"
import * as LedgerSql from "@refundkit/ledger-sql"
import * as Main from "../src/Main.js"
import * as Gateway from "./support/Gateway.js"

const create = (gw: Gateway.Gateway, body: unknown, key = Gateway.key("resolve")) =>
  gw.fetch("POST", "/v1/refunds", { body, headers: { "idempotency-key": key } })

const resolve = (gw: Gateway.Gateway, id: string, body: unknown) => gw.fetch("POST", `/v1/refunds/${id}/resolve`, { body })

/** Every call a sandbox has received, all routes together. */
const calls = (sandbox: Gateway.Gateway["exirom"] | Gateway.Gateway["aerohub"]) =>
  Effect.map(sandbox.stats, (stats) => Object.values(stats.requests).reduce((n, count) => n + count, 0))

/** An Exirom refund left `unknown`: its call hangs past the call timeout (504 outcome_unknown). */
const inDoubt = (gw: Gateway.Gateway, transactionId: number, key = Gateway.key("in-doubt")) =>
  Effect.gen(function*() {
    yield* gw.exirom.faults.inject({ fault: { _tag: "Hang", millis: 3000 }, route: "refund" })
    const timedOut = yield* create(gw, Gateway.exiromRefund({ transactionId, currency: "EUR", amount: "1.00" }), key)
    yield* gw.exirom.faults.clear
    assert.strictEqual(timedOut.status, 504, timedOut.text)
    assert.strictEqual(timedOut.body.error.status, "unknown")
    return timedOut
  })

/** One request with exactly these headers (the helper's client always sends a JSON Content-Type). */
const send = (gw: Gateway.Gateway, path: string, body: string, contentType: string | undefined) =>
  Effect.async<{ readonly status: number; readonly body: any; readonly text: string }>((resume) => {
    const headers: Record<string, string> = { authorization: `Bearer ${Gateway.apiKey}`, "content-length": String(Buffer.byteLength(body)) }
    if (contentType !== undefined) headers["content-type"] = contentType
    const request = Http.request(`${gw.info.url}${path}`, { method: "POST", headers, agent: false }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (text += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: text === "" ? undefined : JSON.parse(text), text })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end(body)
  })

describe("POST /v1/refunds/{id}/resolve", () => {
  it.scopedLive("settles an Exirom refund in doubt succeeded, and another failed: 200 with the refund as GET shows it, nothing sent, the verdict logged", () =>
    Effect.gen(function*() {
      const stdout = yield* Gateway.captureStdout
      const gw = yield* Gateway.start({ callTimeout: "1 second", exirom: { settleAfterMillis: 60_000 } }).pipe(Effect.provide(Main.loggerLayer))
      const key = Gateway.key("in-doubt")
      const first = yield* inDoubt(gw, 1000001, key)
      const id: string = first.body.error.refundId
      // The gateway's advice for a refund in doubt names its own route beside the CLI's command, in the
      // first answer and in its replay.
      assert.include(first.body.error.message, `record what happened (refundkit resolve, or POST /v1/refunds/${id}/resolve).`)
      const replayed = yield* create(gw, Gateway.exiromRefund({ transactionId: 1000001, currency: "EUR", amount: "1.00" }), key)
      assert.strictEqual(replayed.status, 504, replayed.text)
      assert.deepStrictEqual(replayed.body, first.body)

      const sent = yield* calls(gw.exirom)
      const settled = yield* resolve(gw, id, { status: "succeeded", note: "  credited, seen in the Exirom back office  " })
      assert.strictEqual(settled.status, 200, settled.text)
      assert.isUndefined(settled.headers["idempotent-replayed"])
      assert.strictEqual(settled.body.status, "succeeded")
      assert.isUndefined(settled.body.error, "a success clears the error that left it in doubt")
      assert.deepInclude(settled.body.events.at(-1), { source: "operator", from: "unknown", to: "succeeded", accepted: true, detail: "operator: credited, seen in the Exirom back office" })
      assert.deepStrictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body, settled.body, "the same body as GET /v1/refunds/{id}")

      const second = yield* inDoubt(gw, 1000002)
      const failed = yield* resolve(gw, second.body.error.refundId, { status: "failed", note: "not in the Exirom back office" })
      assert.strictEqual(failed.status, 200, failed.text)
      assert.strictEqual(failed.body.status, "failed")
      assert.deepInclude(failed.body.events.at(-1), { source: "operator", from: "unknown", to: "failed", detail: "operator: not in the Exirom back office" })
      assert.strictEqual(yield* calls(gw.exirom), sent + 1, "only the second refund's create reached Exirom, no verdict")

      // One info line per verdict, naming the refund and the status; never the API key, nor the note.
      const lines = () => stdout.text().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
      yield* eventually(() => lines().some((l) => l["refundId"] === second.body.error.refundId), "the second verdict was logged")
      const verdicts = lines().filter((l) => typeof l["message"] === "string" && (l["message"] as string).startsWith("resolve: "))
      assert.deepStrictEqual(verdicts.map((l) => [l["level"], l["refundId"], l["status"]]), [["INFO", id, "succeeded"], ["INFO", second.body.error.refundId, "failed"]])
      assert.strictEqual(verdicts[0]!["message"], `resolve: operator verdict recorded on ${id}: succeeded`)
      assert.isString(verdicts[0]!["requestId"])
      assert.notInclude(stdout.text(), Gateway.apiKey)
      assert.notInclude(stdout.text(), "back office")
    }))

  it.scopedLive("a body that is not a verdict is 400 naming the field and its rule, before the refund is looked up; nothing changes", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const id: string = (yield* inDoubt(gw, 1000003)).body.error.refundId
      const before = (yield* gw.fetch("GET", `/v1/refunds/${id}`)).body
      const cases: ReadonlyArray<readonly [unknown, string, string]> = [
        [{ status: "succeeded" }, "note", "is required: say how the outcome was checked with the provider"],
        [{ status: "succeeded", note: "   " }, "note", "not be blank"],
        [{ status: "succeeded", note: "x".repeat(1001) }, "note", "must be at most 1000 characters, got 1001"],
        [{ status: "succeeded", note: "nul\u0000" }, "note", "must not contain a NUL character"],
        [{ status: "succeeded", note: 7 }, "note", "must be a string"],
        [{ note: "checked" }, "status", "is required: \"succeeded\" or \"failed\""],
        [{ status: "done", note: "checked" }, "status", "must be \"succeeded\" or \"failed\" (what the provider says happened), got \"done\""],
        [{ status: "pending", note: "checked" }, "status", "must be \"succeeded\" or \"failed\""],
        [{ status: "failed", note: "checked", release_targets: true }, "release_targets", "is unexpected, expected: \"status\" | \"note\" | \"releaseTargets\" | \"failedTargets\" | \"correct\""],
        [{ status: "failed", note: "checked", failedTargets: ["1"] }, "failedTargets", "goes with status \"succeeded\""],
        [{ status: "succeeded", note: "checked", failedTargets: [] }, "failedTargets", "names at least one target"],
        [{ status: "succeeded", note: "checked", failedTargets: [""] }, "failedTargets.0", "not empty"],
        [{ status: "failed", note: "checked", releaseTargets: "yes" }, "releaseTargets", "must be true or false"],
        [{ status: "succeeded", note: "checked", releaseTargets: true }, "releaseTargets", "goes with status \"failed\""],
        ["{oops", "body", "not valid JSON"],
        [[], "body", "must be a JSON object"]
      ]
      for (const [body, path, rule] of cases) {
        const answer = yield* resolve(gw, id, body)
        const label = JSON.stringify(body).slice(0, 60)
        assert.strictEqual(answer.status, 400, `${label}: ${answer.text}`)
        assert.strictEqual(answer.body.error.code, "invalid_request", label)
        assert.include(answer.body.error.issues.map((i: { readonly path: string }) => i.path), path, label)
        assert.include(answer.body.error.issues.map((i: { readonly message: string }) => i.message).join("; "), rule, label)
        assert.notMatch(answer.body.error.message, /was not sent|send it again/, label)
      }
      assert.deepStrictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body, before, "nothing was recorded")
      assert.strictEqual((yield* resolve(gw, id, { status: "succeeded", note: "checked" })).status, 200)
      // A body is checked before the refund is looked up: an unknown id with a bad body is still the body's 400.
      assert.strictEqual((yield* resolve(gw, "rfd_doesnotexist0000000000000", { status: "done", note: "x" })).status, 400)
    }))

  it.scopedLive("404 for an unknown refund; 415 for a body not sent as JSON, with nothing changed", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const missing = yield* resolve(gw, "rfd_doesnotexist0000000000000", { status: "failed", note: "checked" })
      assert.strictEqual(missing.status, 404, missing.text)
      assert.strictEqual(missing.body.error.code, "refund_not_found")
      assert.strictEqual(missing.body.error.refundId, "rfd_doesnotexist0000000000000")

      const id: string = (yield* inDoubt(gw, 1000004)).body.error.refundId
      const verdict = JSON.stringify({ status: "failed", note: "checked" })
      for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
        const refused = yield* send(gw, `/v1/refunds/${id}/resolve`, verdict, type)
        assert.strictEqual(refused.status, 415, `${String(type)}: ${refused.text}`)
        assert.strictEqual(refused.body.error.code, "unsupported_media_type")
        assert.include(refused.body.error.message, "send Content-Type: application/json")
      }
      assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body.status, "unknown", "nothing was recorded")
      const taken = yield* send(gw, `/v1/refunds/${id}/resolve`, verdict, "application/json; charset=utf-8")
      assert.strictEqual(taken.status, 200, taken.text)
    }))

  it.scopedLive("409 illegal_transition, nothing changed: a final refund, one still requested, failed over a target the provider refunded", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "5 seconds" })

      // Its first call is still out (Exirom holds it 1.5 s): its answer settles it.
      yield* gw.exirom.faults.inject({ fault: { _tag: "Latency", millis: 1500 }, route: "refund" })
      const before = (yield* gw.exirom.stats).requests["refund"] ?? 0
      const creating = yield* Effect.fork(create(gw, Gateway.exiromRefund({ transactionId: 1000005, currency: "EUR", amount: "1.00" })))
      yield* eventually(Effect.map(gw.exirom.stats, (s) => (s.requests["refund"] ?? 0) > before), "the create's call reached Exirom")
      const listed = (yield* gw.fetch("GET", "/v1/refunds?status=requested")).body.items as ReadonlyArray<{ readonly id: string }>
      assert.strictEqual(listed.length, 1)
      const requested = yield* resolve(gw, listed[0]!.id, { status: "failed", note: "not seen yet" })
      assert.strictEqual(requested.status, 409, requested.text)
      assert.deepInclude(requested.body.error, { code: "illegal_transition", refundId: listed[0]!.id, from: "requested", to: "failed" })
      assert.include(requested.body.error.message, "its first call to exirom is still out, and its answer will settle it.")
      assert.include(requested.body.error.message, "Nothing was changed.")
      const created = yield* Fiber.join(creating)
      assert.strictEqual(created.status, 201, created.text)
      assert.notStrictEqual(created.body.status, "failed", "the refused verdict did not settle it")
      yield* gw.exirom.faults.clear

      // Final by the provider's word (an Airpay refund made at once): no verdict moves it.
      const airpay = yield* create(gw, { provider: "airpay", transactions: [{ ap_transactionid: 3100001, amount: "2.00" }] })
      assert.strictEqual(airpay.body.status, "succeeded", airpay.text)
      for (const status of ["succeeded", "failed"]) {
        const again = yield* resolve(gw, airpay.body.id, { status, note: "seen in the Airpay dashboard" })
        assert.strictEqual(again.status, 409, again.text)
        assert.deepInclude(again.body.error, { code: "illegal_transition", from: "succeeded", to: status })
        assert.include(again.body.error.message, `Refund ${airpay.body.id} is already succeeded, which is final: nothing was changed.`)
      }
      assert.deepStrictEqual((yield* gw.fetch("GET", `/v1/refunds/${airpay.body.id}`)).body, airpay.body)

      // 20002 refunded, 424242 no Airpay transaction: a mixed answer. Failed would free 20002 for another refund.
      const mixed = yield* create(gw, { provider: "airpay", transactions: [{ ap_transactionid: 20002, amount: "1.00" }, { ap_transactionid: 424242, amount: "1.00" }] })
      assert.strictEqual(mixed.body.status, "requires_action", mixed.text)
      const refused = yield* resolve(gw, mixed.body.id, { status: "failed", note: "Airpay refused one of them" })
      assert.strictEqual(refused.status, 409, refused.text)
      assert.deepInclude(refused.body.error, { code: "illegal_transition", from: "requires_action", to: "failed" })
      assert.include(refused.body.error.message, `The verdict was refused: refund ${mixed.body.id} cannot be failed: the provider reported 20002 succeeded.`)
      assert.notMatch(refused.body.error.message, /was not sent|send it again/)
      const settled = yield* resolve(gw, mixed.body.id, { status: "succeeded", note: "20002 refunded, 424242 is not ours" })
      assert.strictEqual(settled.status, 200, settled.text)
      assert.deepStrictEqual(settled.body.items.map((i: { target: string; status: string }) => [i.target, i.status]), [["20002", "succeeded"], ["424242", "failed"]])
    }))

  it.scopedLive("a retry of the verdict that settled the refund is 200 with the refund, changing nothing; another verdict is 409", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ callTimeout: "1 second" })
      const id: string = (yield* inDoubt(gw, 1000006)).body.error.refundId
      const verdict = { status: "failed", note: "not in the Exirom back office" }
      const first = yield* resolve(gw, id, verdict)
      assert.strictEqual(first.status, 200, first.text)
      for (const retry of [verdict, { ...verdict, note: `  ${verdict.note}\n` }]) {
        const again = yield* resolve(gw, id, retry)
        assert.strictEqual(again.status, 200, again.text)
        assert.strictEqual(again.headers["idempotent-replayed"], "true")
        assert.deepStrictEqual(again.body, first.body, "no second operator event")
      }
      const otherNote = yield* resolve(gw, id, { status: "failed", note: "refused by Exirom support" })
      assert.strictEqual(otherNote.status, 409, otherNote.text)
      assert.include(otherNote.body.error.message, `Refund ${id} is already failed, which is final: nothing was changed. An operator settled it failed at `)
      assert.include(otherNote.body.error.message, "only a repeat of that verdict (the same status, note, releaseTargets, failedTargets and correct) is answered with the refund.")
      const otherStatus = yield* resolve(gw, id, { status: "succeeded", note: verdict.note })
      assert.strictEqual(otherStatus.status, 409, otherStatus.text)
      assert.deepStrictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body, first.body)

      // The typed client has the route, and its errors by tag.
      const secondId: string = (yield* inDoubt(gw, 1000007)).body.error.refundId
      const typed = yield* gw.client.refunds.resolve({ path: { id: secondId }, payload: { status: "succeeded", note: "credited" } })
      assert.strictEqual(typed.status, "succeeded")
      const retried = yield* gw.client.refunds.resolve({ path: { id: secondId }, payload: { status: "succeeded", note: "credited" } })
      assert.deepStrictEqual(retried, typed)
      const conflict = yield* Effect.flip(gw.client.refunds.resolve({ path: { id: secondId }, payload: { status: "failed", note: "credited" } }))
      assert.strictEqual(conflict._tag, "IllegalTransition")
      const unknown = yield* Effect.flip(gw.client.refunds.resolve({ path: { id: "rfd_nope" }, payload: { status: "failed", note: "x" } }))
      assert.strictEqual(unknown._tag, "RefundNotFound")
    }))

  it.scopedLive("failedTargets: an Airalo request Airalo decided apart (one ICCID credited, one refused) is settled per ICCID; the refused one is sent again, the credited one stays held", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start({ airalo: { rateLimit: false } })
      const [credited, refused] = ["8910300000000000052", "8910300000000000060"]
      const created = yield* create(gw, { provider: "airalo", iccids: [credited, refused], reason: "TRIP_CANCELLATION" })
      assert.strictEqual(created.status, 201, created.text)
      assert.strictEqual(created.body.status, "pending")
      const id: string = created.body.id
      const sent = (yield* gw.airalo.stats).refundsPerformed

      const notOurs = yield* resolve(gw, id, { status: "succeeded", note: "by email", failedTargets: ["8910300000000000078"] })
      assert.strictEqual(notOurs.status, 400, notOurs.text)
      assert.deepStrictEqual(notOurs.body.error.issues.map((i: { path: string }) => i.path), ["failedTargets"])
      assert.include(notOurs.body.error.message, `is not a target of refund ${id}`)
      const every = yield* resolve(gw, id, { status: "succeeded", note: "by email", failedTargets: [credited, refused] })
      assert.strictEqual(every.status, 400, every.text)
      assert.include(every.body.error.message, "resolve it failed")
      assert.strictEqual((yield* gw.fetch("GET", `/v1/refunds/${id}`)).body.events.length, created.body.events.length, "nothing was recorded")

      const verdict = { status: "succeeded", note: "Airalo's email: 0052 credited, 0060 refused", failedTargets: [refused] }
      const settled = yield* resolve(gw, id, verdict)
      assert.strictEqual(settled.status, 200, settled.text)
      assert.deepStrictEqual(settled.body.items.map((i: { target: string; status: string }) => [i.target, i.status]), [[credited, "succeeded"], [refused, "failed"]])
      assert.include(settled.body.events.at(-1).detail, `(failed targets, not refunded by airalo: ${refused})`)
      // A client retrying after a lost answer gets the refund, nothing recorded twice.
      const again = yield* resolve(gw, id, verdict)
      assert.strictEqual(again.status, 200, again.text)
      assert.strictEqual(again.headers["idempotent-replayed"], "true")
      assert.strictEqual(again.body.events.length, settled.body.events.length)
      assert.strictEqual((yield* gw.airalo.stats).refundsPerformed, sent, "a verdict sends nothing")

      const resent = yield* create(gw, Gateway.airaloRefund(refused))
      assert.strictEqual(resent.status, 201, resent.text)
      const held = yield* create(gw, Gateway.airaloRefund(credited))
      assert.strictEqual(held.status, 409, held.text)
      assert.strictEqual(held.body.error.code, "target_already_refunded")
      assert.include(held.body.error.message, `(\`refundkit get ${id}\` (over HTTP: \`GET /v1/refunds/${id}\`) shows how it ended)`)
    }))

  it.scopedLive("releaseTargets frees an AeroHub order AeroHub closed, so a new refund of it is sent; the verdict itself sends nothing", () =>
    Effect.gen(function*() {
      const gw = yield* Gateway.start()
      const order = { refundOrderNo: "FBRF2403118881", purchaseOrderNo: "F1745553257834618881" }
      const body = { provider: "aerohub", ...order, refundStatus: "CLOSED", rejectReason: 4 }
      const closed = yield* create(gw, body)
      assert.strictEqual(closed.status, 201, closed.text)
      assert.deepStrictEqual([closed.body.status, closed.body.holdsTarget], ["failed", true])
      const id: string = closed.body.id

      const sent = yield* calls(gw.aerohub)
      const held = yield* create(gw, body)
      assert.strictEqual(held.status, 409, held.text)
      assert.strictEqual(held.body.error.code, "target_already_refunded")
      // The gateway's advice names its own route, with the body that releases the order.
      assert.include(
        held.body.error.message,
        `\`refundkit resolve ${id} --status failed --release-targets --note "..."\` (over HTTP: \`POST /v1/refunds/${id}/resolve\` with \`{"status": "failed", "releaseTargets": true, "note": "..."}\`)`
      )

      const plain = yield* resolve(gw, id, { status: "failed", note: "closed, seen at AeroHub" })
      assert.strictEqual(plain.status, 409, plain.text)
      assert.include(plain.body.error.message, `Refund ${id} is already failed, which is final: nothing was changed. It still holds its targets (aerohub keeps it on them)`)
      assert.include(plain.body.error.message, "\"releaseTargets\": true")

      const verdict = { status: "failed", note: "AeroHub reopened the order", releaseTargets: true }
      const released = yield* resolve(gw, id, verdict)
      assert.strictEqual(released.status, 200, released.text)
      assert.deepStrictEqual([released.body.status, released.body.holdsTarget], ["failed", undefined])
      assert.include(released.body.events.at(-1).detail, "operator: AeroHub reopened the order (targets released")
      // Its retry is the refund again; a release of a refund that holds nothing any more is refused.
      const retry = yield* resolve(gw, id, verdict)
      assert.strictEqual(retry.status, 200, retry.text)
      assert.deepStrictEqual(retry.body, released.body)
      const nothingLeft = yield* resolve(gw, id, { ...verdict, note: "again" })
      assert.strictEqual(nothingLeft.status, 409, nothingLeft.text)
      assert.include(nothingLeft.body.error.message, "holds no target to release: nothing was changed")
      assert.strictEqual(yield* calls(gw.aerohub), sent, "nothing reached AeroHub: not the refused create, not a verdict")

      const after = yield* create(gw, body)
      assert.strictEqual(after.status, 201, after.text)
      assert.strictEqual(yield* calls(gw.aerohub), sent + 1, "the new refund of the order was sent")
    }))

  /** The same verdict sent at once through each of `gateways` (four times each): one operator event, every answer 200. */
  const concurrentRetries = (gateways: ReadonlyArray<Gateway.Gateway>, transactionId: number) =>
    Effect.gen(function*() {
      const id: string = (yield* inDoubt(gateways[0]!, transactionId)).body.error.refundId
      const verdict = { status: "failed", note: "not in the Exirom back office" }
      const all = [...gateways, ...gateways, ...gateways, ...gateways]
      // Connections opened first, so that the verdicts are not queued one behind another on one connection.
      yield* Effect.all(all.map((gw) => gw.fetch("GET", `/v1/refunds/${id}`)), { concurrency: "unbounded" })
      const answers = yield* Effect.all(all.map((gw) => resolve(gw, id, verdict)), { concurrency: "unbounded" })
      assert.deepStrictEqual(answers.map((a) => a.status), answers.map(() => 200), answers.map((a) => a.text).join("\n"))
      assert.strictEqual(answers.filter((a) => a.headers["idempotent-replayed"] === undefined).length, 1, "one recorded it, the others repeated it")
      const after = (yield* gateways[0]!.fetch("GET", `/v1/refunds/${id}`)).body
      assert.strictEqual(after.events.filter((e: { readonly source: string }) => e.source === "operator").length, 1, JSON.stringify(after.events))
      for (const answer of answers) assert.deepStrictEqual(answer.body, after)
    })

  describe("verdicts sent at once (a client retrying before its first attempt was answered) take the refund's turn", () => {
    it.scopedLive("through one gateway", () =>
      Effect.gen(function*() {
        const gw = yield* Gateway.start({ callTimeout: "1 second" })
        yield* concurrentRetries([gw, gw], 1000011)
      }))

    it.scopedLive("through two gateways sharing a SQLite ledger file", () =>
      Effect.gen(function*() {
        const a = yield* Gateway.start({ callTimeout: "1 second" })
        const b = yield* Gateway.start({ callTimeout: "1 second", shareWith: a })
        yield* concurrentRetries([a, b], 1000012)
      }), 30_000)

    it.scopedLive("through two gateways sharing a PostgreSQL ledger", () =>
      Effect.gen(function*() {
        const url = yield* Gateway.pgSchema
        const a = yield* Gateway.start({ callTimeout: "1 second", ledger: LedgerSql.layerPg(url) })
        const b = yield* Gateway.start({ callTimeout: "1 second", shareWith: a, ledger: LedgerSql.layerPg(url) })
        yield* concurrentRetries([a, b], 1000013)
        // An id PostgreSQL cannot hold (a NUL character), or longer than the router's default segment limit, is an
        // unknown refund, answered before any turn is taken.
        for (const id of ["rfd_a%00b", `rfd_${"a".repeat(200)}`]) {
          const missing = yield* resolve(a, id, { status: "failed", note: "checked" })
          assert.strictEqual(missing.status, 404, missing.text)
          assert.strictEqual(missing.body.error.code, "refund_not_found")
        }
      }), 30_000)
  })
})
