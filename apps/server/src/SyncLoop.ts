/**
 * The background sync loop: moves `pending`, `unknown` and `requires_action` refunds
 * forward at providers with a status API, backing off per provider while one fails,
 * and moves refunds a crash left in `requested` to `unknown`. On a ledger that leases (the
 * SQL ledger and core's in-memory one) each refund is leased (`claimForSync`) right
 * before its sync, for as long as a sync may run (`syncTimeout`, after which it is
 * interrupted) plus `spacing`, so instances sharing
 * PostgreSQL never sync the same refund at once, and a synced refund is left alone for
 * at least `spacing`. Leasing a whole batch up front let its lease run out while the
 * batch's later refunds waited behind slow calls, and another instance took them too.
 *
 * @since 0.1.0
 */
import { Ledger } from "@refundkit/core/Ledger"
import { Providers } from "@refundkit/core/Providers"
import type { Refund } from "@refundkit/core/Refund"
import { OutcomeUnknown } from "@refundkit/core/RefundError"
import { Refunds, type SyncResult } from "@refundkit/core/Refunds"
import { SqlLedger } from "@refundkit/ledger-sql"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { randomUUID } from "node:crypto"

/**
 * @since 0.1.0
 */
export interface Options {
  /** Time between sweeps (a webhook that fails verification wakes the loop early). */
  readonly interval: Duration.DurationInput
  /** Refunds synced per sweep. */
  readonly batchSize: number
  /** How long a synced refund is left alone before the next sync of it. */
  readonly spacing: Duration.DurationInput
  /** The longest one sync may run (a rate-limit wait and the status call); it is interrupted after that. */
  readonly syncTimeout: Duration.DurationInput
  /** The longest a failing provider is left alone. */
  readonly maxBackoff: Duration.DurationInput
  /** Refunds in `requested` for longer than this are moved to `unknown`. */
  readonly recoveryGrace: Duration.DurationInput
}

/**
 * Every 10 s, 50 refunds, each at most every 30 s; a sync runs at most 60 s (the default
 * call timeout is 30 s); a failing provider backs off up to 5 minutes.
 *
 * @since 0.1.0
 */
export const defaultOptions: Options = {
  interval: "10 seconds",
  batchSize: 50,
  spacing: "30 seconds",
  syncTimeout: "60 seconds",
  maxBackoff: "5 minutes",
  recoveryGrace: "2 minutes"
}

/**
 * The running loop.
 *
 * @since 0.1.0
 */
export class SyncLoop extends Context.Tag("@refundkit/server/SyncLoop")<SyncLoop, SyncLoop.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace SyncLoop {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /** Runs a sweep soon, e.g. after a callback from `provider` failed verification. */
    readonly wake: (provider: string) => Effect.Effect<void>
    /** One sweep now; what the loop runs on each tick. */
    readonly sweep: Effect.Effect<ReadonlyArray<SyncResult>>
  }
}

// Errors that say the provider itself is in trouble, not the refund.
const providerTrouble = new Set(["provider_unavailable", "provider_auth_failed", "outcome_unknown"])

/**
 * The loop, forked for the lifetime of the Layer.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = defaultOptions): Layer.Layer<SyncLoop, never, Refunds | Providers | Ledger> =>
  Layer.scoped(
    SyncLoop,
    Effect.gen(function*() {
      const refunds = yield* Refunds
      const providers = yield* Providers
      const ledger = yield* Ledger
      const sql = yield* Effect.serviceOption(SqlLedger.SqlLedger)
      const owner = `refundkit-server-${randomUUID()}`
      const spacing = Duration.toMillis(options.spacing)
      const syncTimeout = Duration.toMillis(options.syncTimeout)
      const maxBackoff = Duration.toMillis(options.maxBackoff)
      const backoff = new Map<string, { failures: number; until: number }>()
      const nextSync = new Map<string, number>()
      const wakeups = yield* Queue.dropping<string>(1)

      // The SQL ledger always leases; core's in-memory one does too. Picking by `needingSync`
      // alone (oldest update first) is left for a ledger that cannot.
      const claimForSync = Option.match(sql, { onSome: (ledgerSql) => ledgerSql.claimForSync, onNone: () => ledger.claimForSync })

      /** The sweep's source of refunds to sync: `next` hands out one at a time, leased where the ledger can. */
      const due = (able: ReadonlyArray<string>, now: number): Effect.Effect<Effect.Effect<Option.Option<Refund>, unknown>, unknown> =>
        claimForSync !== undefined
          ? Effect.succeed(Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.map(
              claimForSync({
                owner,
                at: new Date(at).toISOString(),
                until: new Date(at + syncTimeout + spacing).toISOString(),
                providers: able,
                limit: 1
              }),
              (claimed) => Option.fromNullable(claimed[0])
            )))
          // One process owns a ledger without leases: the batch is picked at once.
          : Effect.map(ledger.needingSync({ providers: able, limit: options.batchSize * 10 }), (refundsDue) => {
            for (const [id, at] of nextSync) if (at <= now) nextSync.delete(id)
            const picked = refundsDue.filter((r) => !nextSync.has(r.id)).slice(0, options.batchSize)
            for (const r of picked) nextSync.set(r.id, now + syncTimeout + spacing)
            return Effect.sync(() => Option.fromNullable(picked.shift()))
          })

      const syncOne = (refund: Refund) =>
        refunds.sync(refund.id).pipe(
          Effect.timeoutFail({
            duration: syncTimeout,
            onTimeout: () => new OutcomeUnknown({ provider: refund.provider, refundId: refund.id, detail: `the sync ran longer than ${Duration.format(options.syncTimeout)}` })
          }),
          Effect.map((after): SyncResult => ({ refundId: refund.id, before: refund.status, after: after.status, refund: after })),
          Effect.catchAll((error) =>
            Effect.succeed<SyncResult>({ refundId: refund.id, before: refund.status, after: refund.status, error: { code: error.code, message: error.message } })
          ),
          Effect.map((result) => [refund.provider, result] as const)
        )

      const sweep: Effect.Effect<ReadonlyArray<SyncResult>> = Effect.gen(function*() {
        yield* refunds.recover(options.recoveryGrace)
        const now = yield* Clock.currentTimeMillis
        const able = (yield* providers.all)
          .filter((p) => p.capabilities.statusQuery && (backoff.get(p.id)?.until ?? 0) <= now)
          .map((p) => p.id)
        if (able.length === 0) return []
        const next = yield* due(able, now)
        const results: Array<readonly [string, SyncResult]> = []
        // A lease lasts syncTimeout + spacing from when it was taken. A sweep that runs longer (slow
        // answers, or more refunds than its workers) finds its first refunds due again; a refund coming
        // round a second time means the sweep has been through what was due, so the worker stops there.
        const seen = new Set<string>()
        let taken = 0
        // Four workers, each taking the next refund only when it is free to sync it.
        // A worker counts its refund as taken before it asks for one: counted once it arrived, the
        // four workers all passed the check while the first lease was on its way, and a sweep of
        // REFUNDKIT_SYNC_BATCH=1 synced four refunds (each batch up to three more than asked).
        const worker: Effect.Effect<void, unknown> = Effect.suspend(() => {
          if (results.length + taken >= options.batchSize) return Effect.void
          taken += 1
          return Effect.flatMap(next, Option.match({
            onNone: () => Effect.sync(() => void (taken -= 1)),
            onSome: (refund) => {
              if (seen.has(refund.id)) return Effect.sync(() => void (taken -= 1))
              seen.add(refund.id)
              return Effect.flatMap(syncOne(refund), (result) => {
                taken -= 1
                results.push(result)
                return worker
              })
            }
          }))
        })
        yield* Effect.all(Array.from({ length: 4 }, () => worker), { concurrency: "unbounded", discard: true })
        const troubled = new Set<string>()
        const fine = new Set<string>()
        for (const [provider, result] of results) {
          if (result.error !== undefined && providerTrouble.has(result.error.code)) troubled.add(provider)
          else fine.add(provider)
        }
        for (const provider of troubled) {
          // One refund's trouble (a resend Exirom answers 404, kept in doubt) is not the provider's when
          // it answered others in the same sweep: backing off would hold every other refund back with it.
          if (fine.has(provider)) continue
          const failures = (backoff.get(provider)?.failures ?? 0) + 1
          const wait = Math.min(maxBackoff, 1000 * 2 ** Math.min(failures, 20))
          backoff.set(provider, { failures, until: now + wait })
          yield* Effect.logWarning(`sync: ${provider} is failing; next try in ${Math.round(wait / 1000)} s`)
        }
        for (const provider of fine) backoff.delete(provider)
        const moved = results.filter(([, r]) => r.after !== r.before).length
        if (moved > 0) yield* Effect.logInfo(`sync: ${moved} of ${results.length} refund(s) moved`)
        return results.map(([, r]) => r)
      }).pipe(
        Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("sync sweep failed", cause), []))
      )

      const tick = Effect.race(Effect.sleep(options.interval), Queue.take(wakeups)).pipe(Effect.zipRight(sweep))
      yield* Effect.forkScoped(Effect.forever(tick))

      return SyncLoop.of({
        wake: (provider) => Effect.asVoid(Queue.offer(wakeups, provider)),
        sweep
      })
    })
  )
