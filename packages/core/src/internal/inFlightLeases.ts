/**
 * The lease a process keeps on the refunds it has in flight (claimed, their first call out),
 * so that recovery in another process sharing the ledger, or in a command started meanwhile,
 * does not take a refund whose answer can still come for one whose process died.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Ledger } from "../Ledger.js"

/**
 * How many heartbeats a lease outlasts: a beat delayed by a busy ledger or a stalled event loop
 * does not let the lease run out.
 */
export const beatsPerLease = 4

/**
 * How many heartbeats recovery leaves a refund alone for after its last update, leased or not:
 * a refund claimed since its process's last beat has no lease yet, and is leased by the next.
 */
export const beatsUnleased = 2

/**
 * Leases the ids of `inFlight` every `heartbeatMillis`, in a fiber that ends with the scope.
 * A lease that cannot be written is logged and tried again at the next beat: the refunds keep
 * their status, and only recovery's view of them is at stake.
 */
export const keepInFlightAlive = (
  ledger: Ledger.Service,
  inFlight: ReadonlyMap<string, unknown>,
  heartbeatMillis: number
): Effect.Effect<void, never, Scope.Scope> => {
  const keepAlive = ledger.keepAlive
  if (keepAlive === undefined) return Effect.void
  const forMillis = heartbeatMillis * beatsPerLease
  const beat = Effect.suspend(() =>
    inFlight.size === 0
      ? Effect.void
      : Effect.flatMap(Clock.currentTimeMillis, (now) => keepAlive({ ids: [...inFlight.keys()], at: new Date(now).toISOString(), forMillis }))
  ).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning(
        `refundkit: the refunds in flight could not be leased (${error.detail}); recovery in another process may make them unknown once its grace has passed`
      )
    )
  )
  return Effect.asVoid(Effect.forkScoped(Effect.repeat(beat, Schedule.spaced(Duration.millis(heartbeatMillis)))))
}
