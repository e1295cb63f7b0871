/**
 * The slots of a pipeline (`Refunds.pipeline`): at most `size` fibers run their provider
 * call at once, the others wait in arrival order, and a freed slot is handed straight to
 * the next waiter.
 *
 * Not `Effect.Semaphore`: a release there wakes every waiter while a permit is free,
 * and each woken fiber takes again; with a bulk run's 64 fibers on 32 calls that was
 * five takes per row, each an `Effect.async` with a canceler in an uninterruptible
 * region, and about 90 of a row's 175 Effect operations went to the semaphore.
 *
 * No uninterruptible region and no canceler here either. A slot belongs to a fiber:
 * the holder gets an observer that frees the slot if the fiber ends while holding it
 * (interrupted in its call, or between being handed the slot and starting), and a call
 * that ends normally frees it and drops the observer. A waiter that is interrupted is
 * skipped when its turn comes, the way the SQLite writer skips an interrupted write
 * (handing it the slot would be safe too, since the observer of a fiber that has ended
 * runs at once, but each would free the slot from inside the last hand-over: a
 * recursion as deep as the queue when Ctrl-C interrupts every waiter).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as RuntimeFlags from "effect/RuntimeFlags"

/** @internal */
export interface CallSlots {
  /** Runs `self` once a slot is free, holding the slot until `self` ends. */
  readonly withSlot: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Slots nobody holds. */
  readonly free: () => number
  /** Fibers in the queue, counting interrupted ones not yet skipped. */
  readonly waiting: () => number
}

type Holder = Fiber.RuntimeFiber<unknown, unknown>

interface Waiter {
  readonly fiber: Holder
  readonly cancelled: () => boolean
  readonly resume: (effect: Effect.Effect<Release>) => void
}

/** Frees the slot a fiber holds; idempotent, so the exit observer and the normal end cannot free it twice. */
type Release = () => void

/** @internal */
export const make = (size: number): CallSlots => {
  let free = Number.isNaN(size) ? 1 : Math.max(1, Math.floor(size))
  let queue: Array<Waiter | undefined> = []
  let head = 0

  const hold = (fiber: Holder): Release => {
    let held = true
    const observer = () => release()
    const release = () => {
      if (!held) return
      held = false
      fiber.removeObserver(observer)
      handOn()
    }
    fiber.addObserver(observer)
    return release
  }

  const handOn = () => {
    while (head < queue.length) {
      const waiter = queue[head]!
      queue[head++] = undefined
      if (waiter.cancelled()) continue
      waiter.resume(Effect.succeed(hold(waiter.fiber)))
      compact()
      return
    }
    compact()
    free++
  }

  const compact = () => {
    if (head === queue.length) {
      queue = []
      head = 0
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
  }

  const holding = <A, E, R>(release: Release, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(Effect.exit(self), (exit: Exit.Exit<A, E>) => {
      release()
      return exit
    })

  const withSlot = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber, status) => {
      const holder = fiber as Holder
      if (free > 0) {
        free--
        return holding(hold(holder), self)
      }
      const interruptible = RuntimeFlags.interruptible(status.runtimeFlags)
      const cancelled = () => interruptible && !Cause.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))
      return Effect.flatMap(
        Effect.async<Release>((resume) => {
          queue.push({ fiber: holder, cancelled, resume })
        }),
        (release) => holding(release, self)
      )
    })

  return { withSlot, free: () => free, waiting: () => queue.length - head }
}
