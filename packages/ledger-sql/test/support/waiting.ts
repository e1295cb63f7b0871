import { assert } from "@effect/vitest"
import { Effect, Fiber } from "effect"

// Beside `@refundkit/testkit/Waiting`'s `eventually`: the waits only the ledger's tests need. A
// "nothing happened within 10 ms" check passes when the code is wrong but slow; these wait for the
// point where it would have happened.

/** Whether `fiber` is still waiting (has not ended). */
export const isPending = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(Fiber.poll(fiber), (exit) => exit._tag === "None")

// A timer, then an immediate: by then every timer of 0 ms (Effect's scheduler yields on those) and
// every `setImmediate` set before it (the SQLite writer flushes from one) has run.
const loopTurn = Effect.async<void>((resume) => {
  let immediate: NodeJS.Immediate | undefined
  const timer = setTimeout(() => (immediate = setImmediate(() => resume(Effect.void))), 0)
  return Effect.sync(() => (clearTimeout(timer), immediate !== undefined && clearImmediate(immediate)))
})

const blocked = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
  Effect.map(Effect.forEach(fibers, (fiber) => fiber.status), (states) => states.every((status) => status._tag !== "Running"))

/**
 * Waits until every one of `fibers` is blocked or done, twice, with a trip round the event loop
 * after each: the point by which the SQLite writer has acted on what they asked of it (a write is
 * queued as its fiber blocks, and flushed from the next `setImmediate`). A check made here that
 * nothing was committed or that a fiber still waits fails when the code does commit or answer.
 */
export const quiet = (...fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    for (let round = 0; round < 2; round++) {
      const deadline = Date.now() + 10_000
      while (!(yield* blocked(fibers))) {
        if (Date.now() > deadline) return assert.fail("timed out after 10 s waiting for the test's fibers to block")
        yield* Effect.yieldNow()
      }
      yield* loopTurn
    }
  })
