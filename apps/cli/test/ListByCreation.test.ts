// `refundkit list --created-from … --created-to …`: what an operator asks after an incident. The
// ledger file holds refunds created at chosen instants, recorded in another order than created
// (two gateways' clocks disagree); the built CLI reads it.
import { assert, describe, it } from "@effect/vitest"
import { Ledger, Refund } from "@refundkit/core"
import type { Refund as RefundType } from "@refundkit/core/Refund"
import * as LedgerSql from "@refundkit/ledger-sql"
import * as Recorded from "@refundkit/testkit/Recorded"
import { Context, Effect, Layer } from "effect"
import { join } from "node:path"
import { run, tempDir } from "./support.js"

type Page = { readonly items: ReadonlyArray<{ readonly idempotencyKey: string }>; readonly nextCursor?: string }
type ErrorBody = { readonly error: { readonly code: string; readonly message: string } }

const recorded = (key: string, createdAt: string, provider: string): RefundType =>
  Recorded.requested({ provider, key, createdAt, request: { transactionId: 12345, amount: "1.00", reason: "customer_request" } })

// In the order the ledger records them; the last two come from a gateway whose clock is behind.
const seeded: ReadonlyArray<readonly [string, string, string]> = [
  ["before", "2026-12-06T13:59:59.999Z", "exirom"],
  ["at-14", "2026-12-06T14:00:00.000Z", "exirom"],
  ["half-past", "2026-12-06T14:30:00.000Z", "airalo"],
  ["at-15", "2026-12-06T15:00:00.000Z", "exirom"],
  ["late-clock-1459", "2026-12-06T14:59:59.999Z", "exirom"],
  ["late-clock-1415", "2026-12-06T14:15:00.000Z", "exirom"]
]
const hour = ["late-clock-1459", "half-past", "late-clock-1415", "at-14"]

/** A ledger file holding `seeded`, each sent (pending), so the CLI's recovery leaves them alone. */
const ledgerFile = Effect.gen(function*() {
  const file = join(tempDir(), "ledger.db")
  yield* Effect.scoped(Effect.gen(function*() {
    const ledger = Context.get(yield* Layer.build(LedgerSql.layerSqlite(file)), Ledger.Ledger)
    for (const [key, createdAt, provider] of seeded) {
      const refund = recorded(key, createdAt, provider)
      yield* ledger.claim(refund)
      yield* ledger.transition(refund.id, { to: "pending", source: "submit", at: createdAt })
    }
  }))
  return file
})

const list = (file: string, args: ReadonlyArray<string>) => Effect.promise(() => run(["list", ...args, "--ledger", file]))
const keysOf = (stdout: string) => (JSON.parse(stdout) as Page).items.map((r) => r.idempotencyKey)

describe("refundkit list by creation time", () => {
  it.scopedLive("lists the refunds created in the range whatever the offset, newest created first, and pages on with the filters kept", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      for (const range of [["2026-12-06T14:00:00Z", "2026-12-06T15:00:00Z"], ["2026-12-06T15:00:00+01:00", "2026-12-06T16:00:00+01:00"]]) {
        const listed = yield* list(file, ["--created-from", range[0]!, "--created-to", range[1]!, "--json"])
        assert.strictEqual(listed.code, 0, listed.stderr)
        assert.deepStrictEqual(keysOf(listed.stdout), hour, range.join(" to "))
      }
      const day = yield* list(file, ["--created-from", "2026-12-06", "--provider", "exirom", "--json"])
      assert.deepStrictEqual(keysOf(day.stdout), ["at-15", "late-clock-1459", "late-clock-1415", "at-14", "before"])
      // The human table says how to go on, with the same filters: the next page's command, as printed, lists it.
      const walked: Array<string> = []
      // The printed line alone lists the next page: it names the ledger too (it did not, and the
      // default ledger answered "No refunds match.").
      let args: ReadonlyArray<string> = ["--ledger", file, "--created-from", "2026-12-06T14:00:00Z", "--created-to", "2026-12-06T15:00:00Z", "--limit", "3"]
      for (;;) {
        const page = yield* Effect.promise(() => run(["list", ...args]))
        assert.strictEqual(page.code, 0, page.stderr)
        walked.push(...page.stdout.split("\n").slice(1).filter((line) => line.startsWith("rfd_")).map((line) => line.split(/\s+/)[0]!))
        const more = /More: refundkit list (.*)$/m.exec(page.stderr)
        if (more === null) break
        args = more[1]!.split(" ")
        assert.includeMembers([...args], ["--ledger", file, "--created-from", "2026-12-06T14:00:00.000Z", "--created-to", "2026-12-06T15:00:00.000Z"], more[0])
      }
      assert.deepStrictEqual(walked, hour.map((key) => Refund.deriveId(key === "half-past" ? "airalo" : "exirom", key)))
    }))

  it.scopedLive("--all reads every page to the end: JSON Lines with --json, one table otherwise, with or without filters", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const range = ["--created-from", "2026-12-06T14:00:00Z", "--created-to", "2026-12-06T15:00:00Z"]
      // Pages of one: every page is read, and each refund is a line of its own.
      const lines = yield* list(file, [...range, "--all", "--limit", "1", "--json"])
      assert.strictEqual(lines.code, 0, lines.stderr)
      const keys = lines.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { readonly idempotencyKey: string }).idempotencyKey)
      assert.deepStrictEqual(keys, hour)
      // Without filters, in the order the ledger recorded them, newest first, past the default page size's end too.
      const everything = yield* list(file, ["--all", "--limit", "4", "--json"])
      assert.deepStrictEqual(everything.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { readonly idempotencyKey: string }).idempotencyKey), seeded.map(([key]) => key).reverse())
      // The table: one header, every row, and no "More:" hint.
      const table = yield* list(file, [...range, "--all", "--limit", "3"])
      assert.strictEqual(table.code, 0, table.stderr)
      const rows = table.stdout.trim().split("\n")
      assert.match(rows[0]!, /^ID\s+PROVIDER\s+STATUS/)
      assert.deepStrictEqual(rows.slice(1).map((line) => line.split(/\s+/)[0]), hour.map((key) => Refund.deriveId(key === "half-past" ? "airalo" : "exirom", key)))
      assert.notInclude(table.stderr, "More:")
      // Nothing matching: a note on stderr, nothing on stdout (and an empty JSON Lines stream).
      const none = yield* list(file, ["--all", "--created-from", "2027-01-01"])
      assert.strictEqual(none.stdout, "")
      assert.include(none.stderr, "No refunds match.")
      const noLines = yield* list(file, ["--all", "--created-from", "2027-01-01", "--json"])
      assert.strictEqual(noLines.stdout, "")
      // A page size out of range is refused as before.
      const tooBig = yield* list(file, ["--all", "--limit", "1001"])
      assert.strictEqual(tooBig.code, 2)
      assert.include(tooBig.stderr, "--limit: must be between 1 and 1000, got 1001")
    }))

  it.scopedLive("refuses a bound that is not an instant, bounds the wrong way round, and a cursor of another list, naming the flag (exit 2)", () =>
    Effect.gen(function*() {
      const file = yield* ledgerFile
      const cases: Array<readonly [ReadonlyArray<string>, string]> = []
      for (const [args, message] of [
        [["--created-from", "yesterday"], '--created-from: must be an RFC 3339 timestamp with an offset (2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00) or a date (2026-12-06, midnight UTC), got "yesterday"'],
        [["--created-to", "2026-12-06T14:00:00"], "--created-to: must be an RFC 3339 timestamp with an offset"],
        [["--created-to", "2026-02-30"], "--created-to: must be an RFC 3339 timestamp with an offset (2026-12-06T14:00:00Z, 2026-12-06T15:00:00+01:00) or a date (2026-12-06, midnight UTC): 2026-02 has no day 30"],
        [["--created-from", "2026-12-06T15:00:00Z", "--created-to", "2026-12-06T15:00:00+01:00"], "--created-from: must not be after --created-to (2026-12-06T15:00:00.000Z is after 2026-12-06T14:00:00.000Z)"]
      ] as const) {
        cases.push([args, message])
      }
      const results = yield* Effect.forEach(cases, ([args]) => list(file, [...args, "--json"]), { concurrency: 4 })
      for (const [i, refused] of results.entries()) {
        const [args, message] = cases[i]!
        assert.strictEqual(refused.code, 2, `${args.join(" ")}: ${refused.stderr}`)
        assert.include(refused.stderr, message, args.join(" "))
        assert.strictEqual((JSON.parse(refused.stdout) as ErrorBody).error.code, "usage_error")
      }
      const plain = JSON.parse((yield* list(file, ["--limit", "1", "--json"])).stdout) as Page
      const mixed = yield* list(file, ["--created-from", "2026-12-06", "--cursor", plain.nextCursor!, "--json"])
      assert.strictEqual(mixed.code, 2, mixed.stderr)
      assert.include(mixed.stderr, "--cursor: is not a cursor of this list: pass the nextCursor of its previous page, asked with the same creation bounds")
    }))
})
