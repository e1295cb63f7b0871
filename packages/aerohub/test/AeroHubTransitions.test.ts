import { assert, describe, it } from "@effect/vitest"
import { AeroHubRequest, AeroHubTransitions } from "../src/index.js"

type S = AeroHubRequest.RefundStatus

const legal: ReadonlyArray<readonly [S | undefined, S]> = [
  [undefined, "QUOTE_COMPLETED"],
  [undefined, "QUOTE_REJECTED"],
  [undefined, "PROCESSING"],
  [undefined, "CLOSED"],
  ["QUOTE_COMPLETED", "PROCESSING"],
  ["QUOTE_COMPLETED", "CLOSED"],
  ["PROCESSING", "REFUNDED_PENDING"],
  ["PROCESSING", "CLOSED"],
  ["REFUNDED_PENDING", "REFUNDED"],
  ["REFUNDED_PENDING", "CLOSED"],
  // repeats
  ...AeroHubRequest.refundStatuses.map((s) => [s, s] as const)
]

describe("AeroHubTransitions", () => {
  it("allows exactly the documented moves", () => {
    const allowed = new Set(legal.map(([from, to]) => `${from ?? "NEW"}->${to}`))
    for (const from of [undefined, ...AeroHubRequest.refundStatuses]) {
      for (const to of AeroHubRequest.refundStatuses) {
        const key = `${from ?? "NEW"}->${to}`
        assert.strictEqual(AeroHubTransitions.canMove(from, to), allowed.has(key), key)
      }
    }
  })

  it("names the rule an illegal move breaks", () => {
    const cases: ReadonlyArray<readonly [S | undefined, S, string]> = [
      [undefined, "REFUNDED", "a new refund order's first update must be one of"],
      [undefined, "REFUNDED_PENDING", "a new refund order's first update must be one of"],
      ["REFUNDED", "CLOSED", "nothing leaves REFUNDED, CLOSED or QUOTE_REJECTED"],
      ["CLOSED", "PROCESSING", "nothing leaves"],
      ["QUOTE_REJECTED", "QUOTE_COMPLETED", "nothing leaves"],
      ["PROCESSING", "QUOTE_COMPLETED", "PROCESSING cannot be undone"],
      ["REFUNDED_PENDING", "QUOTE_REJECTED", "PROCESSING cannot be undone"],
      ["REFUNDED_PENDING", "PROCESSING", "only moves forward"],
      ["PROCESSING", "REFUNDED", "skips a step"],
      ["QUOTE_COMPLETED", "REFUNDED_PENDING", "skips a step"],
      ["QUOTE_COMPLETED", "QUOTE_REJECTED", "the quote phase ends once"]
    ]
    for (const [from, to, fragment] of cases) {
      const refusal = AeroHubTransitions.refusal(from, to)
      assert.isDefined(refusal, `${from} -> ${to}`)
      assert.include(refusal!, fragment, `${from} -> ${to}`)
    }
  })

  it("final states are REFUNDED, CLOSED and QUOTE_REJECTED", () => {
    assert.deepStrictEqual(AeroHubRequest.refundStatuses.filter(AeroHubTransitions.isFinal), ["QUOTE_REJECTED", "REFUNDED", "CLOSED"])
  })
})
