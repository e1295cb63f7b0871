/**
 * The background sync loop: moves `pending`, `unknown` and `requires_action` refunds
 * forward at providers with a status API, backing off per provider while one fails,
 * and moves refunds a crash left in `requested` to `unknown`. On a SQL ledger each
 * sweep leases its refunds (`claimForSync`), so instances sharing PostgreSQL never
 * sync the same refund at once; the lease also spaces out repeated syncs of a refund.
 *
 * @since 0.1.0
 */
import { Ledger } from "@refundkit/core/Ledger"
import { Providers } from "@refundkit/core/Providers"
import type { Refund } from "@refundkit/core/Refund"
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
  /** The longest a failing provider is left alone. */
  readonly maxBackoff: Duration.DurationInput
  /** Refunds in `requested` for longer than this are moved to `unknown`. */
  readonly recoveryGrace: Duration.DurationInput
}

/**
 * Every 10 s, 50 refunds, each at most every 30 s; a failing provider backs off up to 5 minutes.
 *
 * @since 0.1.0
 */
export const defaultOptions: Options = {
  interval: "10 seconds",
  batchSize: 50,
  spacing: "30 seconds",
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
      const maxBackoff = Duration.toMillis(options.maxBackoff)
      const backoff = new Map<string, { failures: number; until: number }>()
      const nextSync = new Map<string, number>()
      const wakeups = yield* Queue.dropping<string>(1)

      const due = (able: ReadonlyArray<string>, now: number): Effect.Effect<ReadonlyArray<Refund>, unknown> =>
        Option.match(sql, {
          onSome: (ledgerSql) =>
            ledgerSql.claimForSync({
              owner,
              at: new Date(now).toISOString(),
              until: new Date(now + spacing).toISOString(),
              providers: able,
              limit: options.batchSize
            }),
          onNone: () =>
            Effect.map(ledger.needingSync({ providers: able, limit: options.batchSize * 10 }), (refundsDue) => {
              for (const [id, at] of nextSync) if (at <= now) nextSync.delete(id)
              const picked = refundsDue.filter((r) => !nextSync.has(r.id)).slice(0, options.batchSize)
              for (const r of picked) nextSync.set(r.id, now + spacing)
              return picked
            })
        })

      const sweep: Effect.Effect<ReadonlyArray<SyncResult>> = Effect.gen(function*() {
        yield* refunds.recover(options.recoveryGrace)
        const now = yield* Clock.currentTimeMillis
        const able = (yield* providers.all)
          .filter((p) => p.capabilities.statusQuery && (backoff.get(p.id)?.until ?? 0) <= now)
          .map((p) => p.id)
        if (able.length === 0) return []
        const refundsDue = yield* due(able, now)
        const results = yield* Effect.forEach(refundsDue, (refund) =>
          refunds.sync(refund.id).pipe(
            Effect.map((after): SyncResult => ({ refundId: refund.id, before: refund.status, after: after.status, refund: after })),
            Effect.catchAll((error) =>
              Effect.succeed<SyncResult>({ refundId: refund.id, before: refund.status, after: refund.status, error: { code: error.code, message: error.message } })
            ),
            Effect.map((result) => [refund.provider, result] as const)
          ), { concurrency: 4 })
        const troubled = new Set<string>()
        const fine = new Set<string>()
        for (const [provider, result] of results) {
          if (result.error !== undefined && providerTrouble.has(result.error.code)) troubled.add(provider)
          else fine.add(provider)
        }
        for (const provider of troubled) {
          const failures = (backoff.get(provider)?.failures ?? 0) + 1
          const wait = Math.min(maxBackoff, 1000 * 2 ** Math.min(failures, 20))
          backoff.set(provider, { failures, until: now + wait })
          yield* Effect.logWarning(`sync: ${provider} is failing; next try in ${Math.round(wait / 1000)} s`)
        }
        for (const provider of fine) if (!troubled.has(provider)) backoff.delete(provider)
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
