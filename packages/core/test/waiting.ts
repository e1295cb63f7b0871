import type { Duration } from "effect"
import { Clock, Effect, Fiber, Option, Supervisor, TestClock } from "effect"

// Tests wait for events, not for time: a fixed sleep is too short on a loaded CI machine, and a
// "nothing happened within 20 ms" check passes when the code is wrong but slow. The deadlines here
// only turn a hang into a failure that says what never happened; they run on the real clock, so
// they hold under `TestClock` too.

// `@refundkit/testkit/Waiting`'s own module, by path: the package depends on core, so core cannot
// depend on it, but this module needs nothing but `effect`.
export { eventually } from "../../testkit/src/Waiting.js"

const deadline = <A, E, R>(self: Effect.Effect<A, E, R>, what: string, within: Duration.DurationInput) =>
  Effect.withClock(
    Effect.timeoutFail(self, { duration: within, onTimeout: () => new Error(`timed out after ${within} waiting until ${what}`) }),
    Clock.make()
  ).pipe(Effect.orDie)

const macrotask = Effect.async<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(timer))
})

/** The fibers a test starts through `fork`, and a wait until all of them are blocked. */
export interface Tracked {
  /** Forks `self`; it and every fiber it starts are watched by `settled`. */
  readonly fork: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<Fiber.RuntimeFiber<A, E>, never, R>
  /**
   * Waits until every watched fiber is done or suspended, twice in a row across a macrotask
   * (a fiber between two steps is neither). Under `TestClock` nothing more happens after this
   * until the clock is moved: the point where a wrong "it did not happen" would have happened.
   */
  readonly settled: Effect.Effect<void>
  /** Once `settled`, what `fiber` ended with; dies naming `what` when it is still blocked instead. */
  readonly result: <A, E>(fiber: Fiber.RuntimeFiber<A, E>, what: string) => Effect.Effect<A, E>
  /** Moves `TestClock` on by `duration`, then waits until `settled`. */
  readonly advance: (duration: Duration.DurationInput) => Effect.Effect<void>
}

/** Starts watching the fibers a test forks (`Effect.supervised` with `Supervisor.track`). */
export const track: Effect.Effect<Tracked> = Effect.map(Supervisor.track, (supervisor) => {
  // A snapshot of the watched fibers' states, or none while any of them runs.
  const snapshot = Effect.flatMap(supervisor.value, (fibers) =>
    Effect.map(Effect.forEach(fibers, (fiber) => Effect.map(fiber.status, (status) => [fiber, status] as const)), (states) =>
      states.some(([, status]) => status._tag === "Running")
        ? Option.none()
        : Option.some(states.map(([fiber, status]) => `${fiber.id().id}:${status._tag}`).join(","))))
  const settledOnce = Effect.gen(function*() {
    for (;;) {
      const before = yield* snapshot
      yield* macrotask
      const after = yield* snapshot
      if (Option.isSome(before) && Option.isSome(after) && before.value === after.value) return
    }
  })
  const settled = deadline(settledOnce, "every fiber of the test is blocked", "10 seconds")
  return {
    fork: (self) => Effect.supervised(Effect.fork(self), supervisor),
    settled,
    result: (fiber, what) =>
      Effect.flatMap(Effect.zipRight(settled, Fiber.poll(fiber)), (exit) =>
        Option.isSome(exit) ? exit.value : Effect.dieMessage(`${what} is still waiting`)),
    advance: (duration) => Effect.zipRight(TestClock.adjust(duration), settled)
  }
})
