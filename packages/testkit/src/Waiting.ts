/**
 * Waiting for an event in a test instead of sleeping: a fixed sleep is too short on a loaded
 * CI machine, and a "nothing happened within 20 ms" check passes when the code is wrong but
 * slow. The deadline only turns a hang into a failure that names what never happened.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * Polls `condition` every millisecond until it holds; dies naming `what` if it does not within
 * `within` (default 10 seconds). The polling and the deadline run on the real clock, so it
 * works the same under `TestClock`.
 *
 * @since 0.2.0
 */
export const eventually = <E = never, R = never>(
  condition: Effect.Effect<boolean, E, R> | (() => boolean),
  what: string,
  within: Duration.DurationInput = "10 seconds"
): Effect.Effect<void, E, R> => {
  const check = typeof condition === "function" ? Effect.sync(condition) : condition
  const poll = Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep("1 millis")
  })
  return Effect.withClock(
    Effect.timeoutFailCause(poll, { duration: within, onTimeout: () => Cause.die(new Error(`timed out after ${within} waiting until ${what}`)) }),
    Clock.make()
  )
}
