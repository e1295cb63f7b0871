import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, FiberRef } from "effect"
import * as CallSlots from "../src/internal/callSlots.js"
import { eventually } from "./waiting.js"

// Runs `body` in a slot, records when it started, and waits for `gate`.
const gated = (slots: CallSlots.CallSlots, started: Array<string>, name: string, gate: Deferred.Deferred<void>) =>
  slots.withSlot(Effect.zipRight(Effect.sync(() => started.push(name)), Deferred.await(gate)))

// Until `n` fibers have either started their call or joined the queue: each new one has reached the slot.
const arrived = (slots: CallSlots.CallSlots, started: Array<string>, n: number) =>
  eventually(() => started.length + slots.waiting() === n, `${n} fibers have a slot or wait for one`)

describe("CallSlots", () => {
  it.live("runs at most its size at once and hands freed slots on in arrival order", () =>
    Effect.gen(function*() {
      const slots = CallSlots.make(2)
      const started: Array<string> = []
      const gates = yield* Effect.forEach(["a", "b", "c", "d", "e"], () => Deferred.make<void>())
      const fibers: Array<Fiber.RuntimeFiber<void>> = []
      for (const [i, name] of ["a", "b", "c", "d", "e"].entries()) {
        fibers.push(yield* Effect.fork(gated(slots, started, name, gates[i]!)))
        yield* arrived(slots, started, i + 1)
      }
      assert.deepStrictEqual(started, ["a", "b"])
      assert.strictEqual(slots.free(), 0)
      assert.strictEqual(slots.waiting(), 3)
      // "b" ends first: its slot goes to "c", the oldest waiter.
      yield* Deferred.succeed(gates[1]!, void 0)
      yield* Fiber.join(fibers[1]!)
      yield* eventually(() => started.length === 3, "a waiter is handed the freed slot")
      assert.deepStrictEqual(started, ["a", "b", "c"])
      yield* Effect.forEach(gates, (gate) => Deferred.succeed(gate, void 0))
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(started, ["a", "b", "c", "d", "e"])
      assert.strictEqual(slots.free(), 2)
      assert.strictEqual(slots.waiting(), 0)
    }))

  it.live("a call that fails or dies frees its slot", () =>
    Effect.gen(function*() {
      const slots = CallSlots.make(1)
      const failed = yield* Effect.exit(slots.withSlot(Effect.fail("refused")))
      assert.deepStrictEqual(failed, Exit.fail("refused"))
      const died = yield* Effect.exit(slots.withSlot(Effect.die(new Error("boom"))))
      assert.isTrue(Exit.isFailure(died))
      assert.strictEqual(slots.free(), 1)
      assert.strictEqual(yield* slots.withSlot(Effect.succeed(42)), 42)
    }))

  it.live("interrupting the holder frees its slot for the next waiter", () =>
    Effect.gen(function*() {
      const slots = CallSlots.make(1)
      const started: Array<string> = []
      const never = yield* Deferred.make<void>()
      const open = yield* Deferred.make<void>()
      yield* Deferred.succeed(open, void 0)
      const holder = yield* Effect.fork(gated(slots, started, "holder", never))
      yield* arrived(slots, started, 1)
      const next = yield* Effect.fork(gated(slots, started, "next", open))
      yield* arrived(slots, started, 2)
      assert.deepStrictEqual(started, ["holder"])
      yield* Fiber.interrupt(holder)
      yield* Fiber.join(next)
      assert.deepStrictEqual(started, ["holder", "next"])
      assert.strictEqual(slots.free(), 1)
    }))

  it.live("an interrupted waiter is skipped: it never runs and its turn goes to the one behind it", () =>
    Effect.gen(function*() {
      const slots = CallSlots.make(1)
      const started: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(gated(slots, started, "holder", gate))
      yield* arrived(slots, started, 1)
      const quitter = yield* Effect.fork(gated(slots, started, "quitter", gate))
      yield* arrived(slots, started, 2)
      const patient = yield* Effect.fork(gated(slots, started, "patient", gate))
      yield* arrived(slots, started, 3)
      yield* Fiber.interrupt(quitter)
      assert.strictEqual(slots.waiting(), 2)
      yield* Deferred.succeed(gate, void 0)
      yield* Fiber.join(holder)
      yield* Fiber.join(patient)
      assert.deepStrictEqual(started, ["holder", "patient"])
      assert.strictEqual(slots.free(), 1)
      assert.strictEqual(slots.waiting(), 0)
    }))

  it.live("a waiter in an uninterruptible region keeps its turn", () =>
    Effect.gen(function*() {
      const slots = CallSlots.make(1)
      const started: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(gated(slots, started, "holder", gate))
      yield* arrived(slots, started, 1)
      const stubborn = yield* Effect.fork(Effect.uninterruptible(slots.withSlot(Effect.sync(() => started.push("stubborn")))))
      yield* arrived(slots, started, 2)
      const interrupting = yield* Effect.fork(Fiber.interrupt(stubborn))
      // The request has reached the waiter before its turn comes: it is what `withSlot` sees then.
      yield* eventually(() => !Cause.isEmpty(stubborn.getFiberRef(FiberRef.interruptedCause)), "the waiter is asked to stop")
      yield* Deferred.succeed(gate, void 0)
      yield* Fiber.join(holder)
      yield* Fiber.join(interrupting)
      assert.deepStrictEqual(started, ["holder", "stubborn"])
      assert.strictEqual(slots.free(), 1)
    }))

  it.live("under churn with interruptions the limit holds and every slot comes back", () =>
    Effect.gen(function*() {
      const size = 4
      const slots = CallSlots.make(size)
      let running = 0
      let most = 0
      let completed = 0
      let interruptedRunning = 0
      // Mid-churn: a third of the calls are done, the rest run or wait.
      const midway = yield* Deferred.make<void>()
      const call = (i: number) =>
        slots.withSlot(Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          yield* Effect.sleep(`${i % 3} millis`)
          running--
          if (++completed === 100) yield* Deferred.succeed(midway, void 0)
        }).pipe(Effect.onInterrupt(() => Effect.sync(() => (running--, interruptedRunning++)))))
      const fibers = yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) => Effect.fork(call(i)))
      // Every seventh is interrupted, waiting or running, whichever it is by then.
      yield* Deferred.await(midway)
      yield* Effect.forEach(fibers.filter((_, i) => i % 7 === 0), Fiber.interruptFork, { discard: true })
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      assert.strictEqual(most, size)
      const interrupted = exits.filter(Exit.isInterrupted).length
      assert.strictEqual(completed, 300 - interrupted)
      assert.isAtLeast(interrupted - interruptedRunning, 10, "waiters were interrupted, not only finished calls")
      assert.strictEqual(running, 0)
      assert.strictEqual(slots.free(), size)
      assert.strictEqual(slots.waiting(), 0)
    }))
})
