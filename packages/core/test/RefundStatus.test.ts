import { assert, describe, it } from "@effect/vitest"
import * as RefundStatus from "../src/RefundStatus.js"

describe("RefundStatus", () => {
  it("never leaves a final status", () => {
    for (const from of ["succeeded", "failed"] as const) {
      for (const to of RefundStatus.all) {
        assert.strictEqual(RefundStatus.canTransition(from, to), from === to, `${from} -> ${to}`)
      }
    }
  })

  it("lets an unknown refund resolve either way, but never back to requested", () => {
    assert.isTrue(RefundStatus.canTransition("unknown", "succeeded"))
    assert.isTrue(RefundStatus.canTransition("unknown", "failed"))
    assert.isFalse(RefundStatus.canTransition("unknown", "requested"))
    assert.isFalse(RefundStatus.canTransition("pending", "requested"))
    assert.isFalse(RefundStatus.canTransition("pending", "unknown"))
    assert.isTrue(RefundStatus.canTransition("requested", "unknown"))
  })

  it("aggregates item outcomes honestly", () => {
    assert.strictEqual(RefundStatus.aggregate(["succeeded", "succeeded"]), "succeeded")
    assert.strictEqual(RefundStatus.aggregate(["succeeded", "pending"]), "pending")
    assert.strictEqual(RefundStatus.aggregate(["succeeded", "failed"]), "requires_action")
    assert.strictEqual(RefundStatus.aggregate(["failed", "unknown"]), "unknown")
    assert.strictEqual(RefundStatus.aggregate(["failed"]), "failed")
  })
})
