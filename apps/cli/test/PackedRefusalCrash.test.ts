// When Airalo refuses a packed call as a whole, core records each member `not_sent` in a write of
// its own before sending it alone. A process that dies between those writes leaves some members
// marked and some not. This proves that state is safe on every ledger, through `bulk`'s own calls
// (`createMany`) against the Airalo sandbox over HTTP: recovery fails the marked ones (nothing
// reached Airalo; a `--retry-failed` sends them) and leaves the unmarked ones `unknown` (in doubt,
// never resent, their eSIMs still held), which is exactly what a death one write earlier, before
// any mark, leaves. No member is refunded twice and none is lost.
import * as Reactivity from "@effect/experimental/Reactivity"
import { NodeHttpClient } from "@effect/platform-node"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Airalo } from "@refundkit/airalo"
import * as AiraloSandbox from "@refundkit/airalo/sandbox"
import { Ledger, Providers, Refunds } from "@refundkit/core"
import * as LedgerSql from "@refundkit/ledger-sql"
import { ConfigProvider, Context, Deferred, Effect, Either, Fiber, Layer, Redacted, Schedule, type Scope } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A fresh PostgreSQL schema, dropped at the end of the scope; a URL whose connections use it. */
const pgSchema = Effect.gen(function*() {
  const url = process.env.REFUNDKIT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const admin = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
  const schema = `rk_cli_packed_${process.pid}_${Date.now().toString(36)}`
  yield* Effect.acquireRelease(admin.unsafe(`CREATE SCHEMA ${schema}`), () => Effect.orDie(admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)))
  const scoped = new URL(url)
  scoped.searchParams.set("options", `-c search_path=${schema}`)
  return scoped.toString()
})

const sqliteFile = Effect.map(
  Effect.acquireRelease(Effect.sync(() => mkdtempSync(join(tmpdir(), "refundkit-cli-packed-"))), (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))),
  (dir) => join(dir, "ledger.db")
)

const ledgers: ReadonlyArray<{ readonly name: string; readonly layer: Effect.Effect<Layer.Layer<Ledger.Ledger, unknown>, unknown, Scope.Scope> }> = [
  { name: "memory", layer: Effect.succeed(Ledger.layerMemory) },
  { name: "SQLite", layer: Effect.map(sqliteFile, (file) => LedgerSql.layerSqlite(file)) },
  { name: "PostgreSQL", layer: Effect.map(pgSchema, (url) => LedgerSql.layerPg(url)) }
]

// The ledger of a process that dies right after its first `not_sent` mark is written: every
// later mark never reaches the ledger, and `died` completes when the second is asked for.
// Everything else is the ledger itself.
const diesAfterFirstMark = (ledger: Ledger.Ledger.Service) =>
  Effect.map(Deferred.make<void>(), (died) => {
    let marks = 0
    const transition: Ledger.Ledger.Service["transition"] = (id, change) =>
      Effect.suspend(() =>
        change.error?.code === Ledger.notSentCode && ++marks > 1 ? Effect.zipRight(Deferred.succeed(died, undefined), Effect.never) : ledger.transition(id, change)
      )
    return { ledger: { ...ledger, transition }, died }
  })

const refundsOver = (ledger: Ledger.Ledger.Service, env: Record<string, string>) =>
  Effect.map(
    Layer.build(
      Refunds.layer({
        callTimeout: "5 seconds",
        retrySchedule: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
        maxRetryAfter: "1 second",
        // Leases of 200 ms: the dead process's run out soon after it (see the recovery below).
        heartbeat: "50 millis"
      }).pipe(
        Layer.provideMerge(Layer.provideMerge(Airalo.layerConfig, Providers.layer)),
        Layer.provide(Layer.succeed(Ledger.Ledger, ledger)),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
      )
    ),
    (context) => Context.get(context, Refunds.Refunds)
  )

describe("a packed Airalo call refused as a whole, the process dying between its members' not_sent marks", () => {
  for (const ledger of ledgers) {
    it.scopedLive(`recovers the marked members failed and the others in doubt; none is resent or lost (${ledger.name})`, () =>
      Effect.gen(function*() {
        const airalo = yield* AiraloSandbox.make({ rateLimit: false })
        const refundCalls = Effect.map(airalo.stats, (stats) => stats.requests["refund"] ?? 0)
        const base = Context.get(yield* Layer.build(yield* ledger.layer), Ledger.Ledger)
        // One eSIM of another company makes Airalo refuse the packed call of all four.
        const iccids = [AiraloSandbox.ownedIccid(701), AiraloSandbox.ownedIccid(702), AiraloSandbox.ownedIccid(703), AiraloSandbox.foreignIccid(7)]
        const rows = iccids.map((iccid) => ({ provider: "airalo", request: { iccids: [iccid], reason: "TRIP_CANCELLATION" }, idempotencyKey: `row-${iccid}` }))

        const dies = yield* diesAfterFirstMark(base)
        const dying = yield* refundsOver(dies.ledger, airalo.env)
        const run = yield* Effect.fork(dying.createMany(rows))
        // The packed call's refusal is in, the first mark written and the second asked for; the process dies.
        const marked = (refund: { readonly error?: { readonly code: string } | undefined }) => refund.error?.code === Ledger.notSentCode
        const claimed = Effect.flatMap(Effect.forEach(rows, (row) => base.findByKey("airalo", row.idempotencyKey)), (found) =>
          Effect.succeed(found.flatMap((f) => (f._tag === "Some" ? [f.value] : []))))
        yield* Deferred.await(dies.died).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "the second not_sent mark was never asked for" }))
        for (let i = 0; i < 2000 && (yield* claimed).filter(marked).length === 0; i++) yield* Effect.sleep("10 millis")
        yield* Fiber.interrupt(run)
        assert.strictEqual(yield* refundCalls, 1, "only the packed call was sent")
        assert.strictEqual((yield* airalo.stats).refundsPerformed, 0, "and Airalo refused it")
        const left = yield* claimed
        assert.strictEqual(left.length, 4, "all four claimed")
        assert.isTrue(left.every((r) => r.status === "requested"))
        assert.strictEqual(left.filter(marked).length, 1, "one marked not sent, the others not yet")

        // The next process: recovery (what `bulk`'s re-run and the gateway's start do), once the dead
        // process's last leases (four heartbeats) have run out.
        yield* Effect.sleep("300 millis")
        const refunds = yield* refundsOver(base, airalo.env)
        const recovered = yield* refunds.recover("0 millis")
        const after = new Map(recovered.map((r) => [r.id, r]))
        assert.strictEqual(after.size, 4, "every member recovered")
        const failed = [...after.values()].filter((r) => r.status === "failed")
        const inDoubt = [...after.values()].filter((r) => r.status === "unknown")
        assert.deepStrictEqual(failed.map((r) => r.id), left.filter(marked).map((r) => r.id), "the marked one failed: provably never sent")
        assert.strictEqual(failed[0]!.error?.code, Ledger.notSentCode)
        assert.sameMembers(inDoubt.map((r) => r.id), left.filter((r) => !marked(r)).map((r) => r.id), "the unmarked ones in doubt, not failed")

        // Never lost: the ones in doubt are there for a sync or a person.
        const due = yield* base.needingSync({ providers: ["airalo"], limit: 10 })
        assert.sameMembers(due.map((r) => r.id), inDoubt.map((r) => r.id))
        // Never resent: the same rows again replay what is recorded, and a sync at Airalo (no status API) sends nothing.
        const rerun = yield* refunds.createMany(rows)
        assert.isTrue(rerun.every((r) => Either.isRight(r) && r.right.replayed), "every row replayed")
        const synced = yield* Effect.either(refunds.sync(inDoubt[0]!.id))
        assert.isTrue(Either.isLeft(synced) && synced.left._tag === "UnsupportedOperation")
        // Never refunded twice: a new key for an eSIM in doubt is refused before any call.
        const doubted = inDoubt.find((r) => (r.targets[0]?.target ?? "").startsWith("8910"))!
        const again = yield* Effect.either(refunds.create({ provider: "airalo", request: doubted.request, idempotencyKey: "new-key" }))
        assert.isTrue(Either.isLeft(again) && again.left._tag === "TargetAlreadyRefunded", "the eSIM in doubt is still held")
        assert.strictEqual(yield* refundCalls, 1, "nothing was sent since the packed call")

        // The failed one is what `--retry-failed` sends (under a new key): its eSIM was freed by the failure.
        const retried = yield* refunds.createMany([{ provider: "airalo", request: failed[0]!.request, idempotencyKey: "retry-1" }])
        assert.isTrue(Either.isRight(retried[0]!))
        assert.strictEqual(yield* refundCalls, 2)
        // Airalo counts only the requests it accepted: the retried eSIM once (unless it is the foreign one), no other.
        const target = failed[0]!.targets[0]!.target
        const accepted = target.startsWith("8910") ? [target] : []
        const stats = (yield* airalo.stats) as unknown as { readonly refundRequestsPerIccid: Record<string, number>; readonly duplicateIccids: ReadonlyArray<string> }
        assert.deepStrictEqual(Object.keys(stats.refundRequestsPerIccid), accepted)
        assert.deepStrictEqual(stats.duplicateIccids, [], "no eSIM accepted twice")
      }), 30_000)
  }
})
