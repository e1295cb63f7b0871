import type { Duration } from "effect"
import { Cause, Effect, Schedule } from "effect"

// Tests wait for the event they need, not for a time: a fixed sleep is too short on a loaded CI
// machine. The deadline only turns a hang into a failure naming what never happened.

/** Polls `condition` until it holds; dies naming `what` if it does not within `within`. */
export const eventually = <E = never, R = never>(
  condition: Effect.Effect<boolean, E, R> | (() => boolean),
  what: string,
  within: Duration.DurationInput = "10 seconds"
): Effect.Effect<void, E, R> =>
  (typeof condition === "function" ? Effect.sync(condition) : condition).pipe(
    Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (holds) => holds }),
    Effect.timeoutFailCause({ duration: within, onTimeout: () => Cause.die(new Error(`timed out after ${within} waiting until ${what}`)) }),
    Effect.asVoid
  )
