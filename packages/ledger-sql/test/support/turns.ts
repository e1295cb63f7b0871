import type { Ledger } from "@refundkit/core"
import { assert } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"

/**
 * Forks a turn on refund `id` that runs `first`, then `hold` (by default for good: interrupt the
 * fiber returned), and returns once `first` is done: from then on the turn is held, and whatever
 * `first` wrote (a row lock on PostgreSQL) is held with it. A fixed wait may end before a loaded
 * machine has taken the turn.
 */
export const holdTurn = <E1, E2>(
  ledger: Ledger.Ledger.Service,
  id: string,
  options: { readonly first?: Effect.Effect<unknown, E1>; readonly hold?: Effect.Effect<unknown, E2> } = {}
) =>
  Effect.gen(function*() {
    assert.isDefined(ledger.serialise, "the ledger serialises refund turns")
    const taken = yield* Deferred.make<void>()
    const held = yield* Effect.fork(ledger.serialise!(
      id,
      (options.first ?? Effect.void).pipe(Effect.zipRight(Deferred.succeed(taken, undefined)), Effect.zipRight(options.hold ?? Effect.never))
    ))
    yield* Effect.raceFirst(
      Deferred.await(taken),
      Effect.flatMap(Fiber.await(held), (exit) => Effect.dieMessage(`the turn on ${id} ended before it was held: ${String(exit)}`))
    )
    return held
  })
