import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import * as Waiting from "../src/Waiting.js"

describe("Waiting.eventually", () => {
  it.effect("returns once the condition holds, polling on the real clock even under TestClock", () =>
    Effect.gen(function*() {
      const started = Date.now()
      yield* Waiting.eventually(() => Date.now() - started >= 20, "20 ms have passed")
      assert.isAtLeast(Date.now() - started, 20)
    }))

  it.effect("dies naming what never happened once its deadline passes, and keeps the condition's own failure", () =>
    Effect.gen(function*() {
      const never = yield* Effect.exit(Waiting.eventually(() => false, "the sandbox counted a call", "30 millis"))
      assert.isTrue(Exit.isFailure(never) && Cause.isDie(never.cause))
      assert.include(String(Exit.isFailure(never) ? Cause.squash(never.cause) : ""), "timed out after 30 millis waiting until the sandbox counted a call")
      const failing = yield* Effect.exit(Waiting.eventually(Effect.fail("unreachable" as const), "never checked"))
      assert.deepStrictEqual(failing, Exit.fail("unreachable"))
    }))
})
