// The exit codes scripts branch on, for the two cases an operator's audit found wrong: a refund an
// operator resolved failed read as a provider failure (1) when an earlier build left its in-doubt error on
// it, and an update whose answers were lost read as a provider failure rather than in doubt (3).
import { assert, describe, it } from "@effect/vitest"
import type { Refund } from "@refundkit/core/Refund"
import { ProviderUnavailable } from "@refundkit/core/RefundError"
import * as ExitCode from "../src/ExitCode.js"

const at = (n: number) => new Date(Date.UTC(2026, 11, 7) + n * 1000).toISOString()
const inDoubt = { code: "outcome_unknown", message: "The outcome at exirom is unknown: … is kept as \"unknown\" …" }

const failed = (by: "operator" | "submit" | "recovery"): Refund => ({
  id: "rfd_00000000000000000000000001",
  provider: "exirom",
  idempotencyKey: "k",
  fingerprint: "f",
  request: {},
  status: "failed",
  references: {},
  targets: [],
  items: [],
  error: by === "recovery" ? { code: "not_sent", message: "never sent" } : inDoubt,
  createdAt: at(0),
  updatedAt: at(2),
  events: [
    { sequence: 1, at: at(0), source: "submit", from: null, to: "requested", accepted: true },
    { sequence: 2, at: at(1), source: "submit", from: "requested", to: by === "submit" ? "failed" : "unknown", accepted: true },
    ...(by === "submit" ? [] : [{ sequence: 3, at: at(2), source: by, from: "unknown" as const, to: "failed" as const, accepted: true }])
  ]
})

describe("ExitCode", () => {
  it("a refund an operator resolved failed exits 0, whatever error it still carries; one failed by the provider's unavailability 1", () => {
    assert.strictEqual(ExitCode.ofRefund(failed("operator")), ExitCode.ok)
    assert.strictEqual(ExitCode.ofRefund(failed("submit")), ExitCode.failure)
    assert.strictEqual(ExitCode.ofRefund(failed("recovery")), ExitCode.failure)
  })

  it("a call about a refund that may have been processed is in doubt, though the refund keeps its status", () => {
    const lost = (options: { readonly maybeProcessed: boolean; readonly refundId?: string; readonly status?: "pending" | "failed" }) =>
      ExitCode.ofError(new ProviderUnavailable({ provider: "aerohub", detail: "the connection failed after the request was sent", ...options }))
    assert.strictEqual(lost({ maybeProcessed: true, refundId: "rfd_1", status: "pending" }), ExitCode.inDoubt, "an update whose answer was lost")
    assert.strictEqual(lost({ maybeProcessed: false, refundId: "rfd_1", status: "pending" }), ExitCode.failure, "a 503 with Retry-After: nothing applied")
    assert.strictEqual(lost({ maybeProcessed: true }), ExitCode.failure, "a status query's 500 recorded nothing")
    assert.strictEqual(lost({ maybeProcessed: true, refundId: "rfd_1", status: "failed" }), ExitCode.failure)
  })
})
