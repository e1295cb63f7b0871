// One provider callback delivered many times at once, as a provider retrying and two gateways sharing one ledger
// see it: the ledger decides a repeat (its `callbackKey` on one of the refund's events) under the lock its write
// takes, so the callback is recorded once, where reading the history first and writing after let two deliveries
// racing each other both in.
import { assert, describe, it } from "@effect/vitest"
import { Provider, Providers, Refunds } from "@refundkit/core"
import { Context, Effect, Layer, Schema } from "effect"
import * as path from "node:path"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, pgSchema, rawSql, tempDir } from "./support/databases.js"
import { at, draft } from "./support/refunds.js"

const RequestSchema = Schema.Struct({ target: Schema.String })

// A toy plugin: its submit leaves the refund pending under reference `R-<target>`; a callback's body names the
// reference, the provider's word and, where it has them, its own words about it.
const toy = Provider.make({
  id: "toy",
  displayName: "Toy",
  capabilities: { partialRefunds: true, maxTargetsPerCall: 1, statusQuery: false, webhooks: true, idempotentSubmit: true, updates: false, settlement: "money" },
  requestSchema: RequestSchema,
  describe: (request) => ({ targets: [{ target: request.target }] }),
  submit: (request) => Effect.succeed({ status: "pending", providerStatus: "PENDING", providerReference: `R-${request.target}` }),
  webhook: (request) => {
    const body = JSON.parse(request.body) as { readonly ref: string; readonly status: "DONE" | "FAILED"; readonly said?: string }
    return Effect.succeed([{
      providerReference: body.ref,
      dedupeKey: `${body.ref}:${body.status}`,
      outcome: { status: body.status === "DONE" ? "succeeded" : "failed", providerStatus: body.status, ...(body.said === undefined ? {} : { detail: body.said }) }
    }])
  }
})

const locations = [
  { name: "SQLite", url: Effect.map(tempDir, (dir) => path.join(dir, "ledger.db")), layer: (url: string) => SqlLedger.layerSqlite(url) },
  { name: "PostgreSQL", url: pgSchema, layer: (url: string) => SqlLedger.layerPg(url) }
] as const

/** One gateway's Refunds on the ledger at `url`: each call builds its own connection, as another process would. */
const gateway = (location: (typeof locations)[number], url: string) =>
  Effect.map(
    Layer.build(
      Refunds.layer().pipe(
        Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(toy)), Providers.layer)),
        Layer.provideMerge(location.layer(url))
      )
    ),
    (context) => Context.get(context, Refunds.Refunds)
  )

describe("a provider callback delivered again and again", () => {
  for (const location of locations) {
    describe(location.name, () => {
      it.scopedLive("twenty deliveries at once through two gateways on one ledger record it once; the others are duplicates", () =>
        Effect.gen(function*() {
          const url = yield* location.url
          const [one, two] = [yield* gateway(location, url), yield* gateway(location, url)]
          const { refund } = yield* one.create({ provider: "toy", idempotencyKey: "burst", request: { target: "t-1" } })
          const body = JSON.stringify({ ref: "R-t-1", status: "DONE", said: "the toy bank paid the card back" })

          const results = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? one : two).webhook("toy", { headers: {}, body })),
            { concurrency: "unbounded" }
          )
          const answers = results.map(([result]) => result)
          assert.strictEqual(answers.filter((a) => a?.applied === true).length, 1, JSON.stringify(answers))
          for (const answer of answers.filter((a) => a?.applied !== true)) {
            assert.deepStrictEqual(answer, { refundId: refund.id, applied: false, reason: "duplicate callback" })
          }
          const stored = yield* two.get(refund.id)
          assert.deepStrictEqual(stored.events.map((e) => [e.source, e.to, e.callbackKey]), [
            ["submit", "requested", undefined],
            ["submit", "pending", undefined],
            ["webhook", "succeeded", "R-t-1:DONE"]
          ])
          assert.strictEqual(stored.events.at(-1)!.detail, "the toy bank paid the card back")
          const sql = yield* rawSql(url)
          const rows = yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM refund_events WHERE callback_key = ${"R-t-1:DONE"}`
          assert.strictEqual(Number(rows[0]!.n), 1)
        }))

      it.scopedLive("twenty changes with one callback key at once, straight to two ledgers: one is recorded, nineteen are DuplicateCallback", () =>
        Effect.gen(function*() {
          const url = yield* location.url
          const [one, two] = [yield* build(location.layer(url)), yield* build(location.layer(url))]
          const { refund } = yield* one.claim(draft("straight"))
          yield* one.transition(refund.id, { to: "pending", source: "submit", at: at(1), providerStatus: "PENDING" })
          const change = { to: "failed", source: "webhook", at: at(2), providerStatus: "FAILED", callbackKey: "R-2:FAILED", detail: "card closed" } as const
          const outcomes = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => Effect.either((i % 2 === 0 ? one : two).transition(refund.id, change))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(outcomes.filter((o) => o._tag === "Right").length, 1)
          assert.deepStrictEqual(
            [...new Set(outcomes.flatMap((o) => (o._tag === "Left" ? [o.left._tag] : [])))],
            ["DuplicateCallback"]
          )
          const stored = yield* one.get(refund.id)
          assert.deepStrictEqual(stored.events.map((e) => e.callbackKey), [undefined, undefined, "R-2:FAILED"])
          assert.deepStrictEqual(yield* two.get(refund.id), stored)
        }))
    })
  }
})
