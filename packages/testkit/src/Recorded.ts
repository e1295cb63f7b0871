/**
 * Refunds as a ledger holds them, for tests that fill a ledger directly (a page of a list,
 * a walk by creation time, a recovery) instead of sending each refund through a provider.
 *
 * @since 0.2.0
 */
import * as Refund from "@refundkit/core/Refund"
import type { Refund as RefundType } from "@refundkit/core/Refund"

/**
 * What a recorded refund is made of; the rest is derived as core derives it.
 *
 * @since 0.2.0
 */
export interface RequestedOptions {
  readonly provider: string
  readonly key: string
  /** The provider request as sent (its fingerprint is derived from it). */
  readonly request: unknown
  /** When it was created and recorded, in the ledger's form (`toISOString`). */
  readonly createdAt: string
  readonly targets?: RefundType["targets"] | undefined
  readonly currency?: string | undefined
  readonly amount?: string | undefined
}

/**
 * A refund in `requested`, as core's Refunds service hands it to `Ledger.claim`: its id and
 * fingerprint derived from the provider, key and request, and one `submit` event.
 *
 * @since 0.2.0
 */
export const requested = (options: RequestedOptions): RefundType => ({
  id: Refund.deriveId(options.provider, options.key),
  provider: options.provider,
  idempotencyKey: options.key,
  fingerprint: Refund.fingerprint(options.provider, options.request),
  request: options.request,
  status: "requested",
  references: {},
  targets: options.targets ?? [],
  items: [],
  ...(options.currency === undefined ? {} : { currency: options.currency }),
  ...(options.amount === undefined ? {} : { amount: options.amount }),
  createdAt: options.createdAt,
  updatedAt: options.createdAt,
  events: [{ sequence: 1, at: options.createdAt, source: "submit", from: null, to: "requested", accepted: true }]
})
