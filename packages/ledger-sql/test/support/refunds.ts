import type { Refund as RefundType } from "@refundkit/core/Refund"
import * as Recorded from "@refundkit/testkit/Recorded"

/** A timestamp `n` seconds after a fixed origin, so tests control time and order. */
export const at = (n: number): string => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString()

export interface DraftOptions {
  readonly provider?: string
  readonly n?: number
  readonly currency?: string
  readonly amount?: string
  readonly targets?: RefundType["targets"]
  readonly request?: unknown
}

/** A refund as core's Refunds service would hand it to `claim`. */
export const draft = (key: string, options: DraftOptions = {}): RefundType =>
  Recorded.requested({
    provider: options.provider ?? "toy",
    key,
    createdAt: at(options.n ?? 0),
    request: options.request ?? { key, lines: [{ target: "pay-1", amount: options.amount ?? "1.00" }], note: "ünïcode ✓" },
    targets: options.targets,
    currency: options.currency,
    amount: options.amount
  })

/** A partial refund of `amount` against `target`, whose original amount is `original`. */
export const partial = (key: string, target: string, amount: string, original: string, n = 0): RefundType =>
  draft(key, { n, currency: "USD", amount, targets: [{ target, amount, originalAmount: original }] })
