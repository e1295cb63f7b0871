// A scripted provider for Refunds' tests: like Airalo (whole targets: ICCIDs named without an amount,
// "accepted for review" until decided by email), with a status query and an update that tests script, so
// one provider shows every path; and a refund of it made through Refunds.
import { type Duration, Effect, Layer, Schedule, Schema } from "effect"
import * as Ledger from "../src/Ledger.js"
import * as Provider from "../src/Provider.js"
import * as Providers from "../src/Providers.js"
import type { OutcomeUnknown, ProviderUnavailable, UnexpectedResponse } from "../src/RefundError.js"
import * as Refunds from "../src/Refunds.js"

export const Request = Schema.Struct({ targets: Schema.Array(Schema.String).pipe(Schema.minItems(1)), step: Schema.optional(Schema.String) })

type Answer = Effect.Effect<Provider.Outcome, ProviderUnavailable | OutcomeUnknown | UnexpectedResponse>

export const toy = (options: { readonly callTimeout?: Duration.DurationInput } = {}) => {
  const submits: Array<Answer> = []
  const statuses: Array<Answer> = []
  const updates: Array<Answer> = []
  const review = (request: typeof Request.Type): Provider.Outcome => ({
    status: "pending",
    providerStatus: "accepted_for_review",
    items: request.targets.map((target) => ({ target, status: "pending" as const, providerStatus: "accepted_for_review" }))
  })
  const provider = Provider.make({
    id: "toy",
    displayName: "Toy",
    capabilities: { partialRefunds: false, maxTargetsPerCall: 5, statusQuery: true, webhooks: false, idempotentSubmit: true, updates: true, settlement: "credits" },
    requestSchema: Request,
    describe: (request) => ({ targets: request.targets.map((target) => ({ target })) }),
    submit: (request) => submits.shift() ?? Effect.succeed(review(request)),
    status: () => statuses.shift() ?? Effect.succeed({ status: "pending", providerStatus: "accepted_for_review" }),
    update: (refund, input) =>
      Effect.map(Schema.decodeUnknown(Request)(input).pipe(Effect.orDie), (request) => ({
        request,
        targets: refund.targets,
        submit: () => updates.shift() ?? Effect.succeed({ status: "pending" as const, providerStatus: request.step ?? "STEP" })
      }))
  })
  const layer = Refunds.layer({ callTimeout: options.callTimeout ?? "1 minute", retrySchedule: Schedule.recurs(0), maxRetryAfter: "1 second" }).pipe(
    Layer.provideMerge(Layer.provideMerge(Providers.plugin(Effect.succeed(provider)), Providers.layer)),
    Layer.provideMerge(Ledger.layerMemory)
  )
  return { submits, statuses, updates, layer }
}

export const create = (key: string, ...targets: ReadonlyArray<string>) =>
  Effect.flatMap(Refunds.Refunds, (refunds) => Effect.map(refunds.create({ provider: "toy", idempotencyKey: key, request: { targets } }), (c) => c.refund))
