/**
 * AeroHub's wire shapes: the UpdateRefund body as it travels (amounts as JSON
 * numbers, `apiKey` and `requestId` in the body) and the `{code, msg}` answer, which
 * carries failures with HTTP 200 too.
 *
 * @since 0.1.0
 */
import * as Money from "@refundkit/core/Money"
import { InvalidRequest } from "@refundkit/core/RefundError"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { UpdateRefund } from "./AeroHubRequest.js"

// AeroHub's own sample sends null for fields it leaves out.
const nullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/**
 * A `refundAmount` element on the wire.
 *
 * @since 0.1.0
 */
export const RefundAmountWire = Schema.Struct({
  refundCost: nullable(Schema.Number),
  refundVoucher: nullable(Schema.Number),
  voucherCurrency: nullable(Schema.String),
  voucherNote: nullable(Schema.String)
})

/**
 * A `refundFeePricing` element on the wire. `amount` is typed string in AeroHub's
 * table and sent as a number in its sample; both are accepted.
 *
 * @since 0.1.0
 */
export const RefundFeePricingWire = Schema.Struct({
  amount: nullable(Schema.Union(Schema.Number, Schema.String)),
  isRefundVoucher: nullable(Schema.Int),
  voucherCurrency: nullable(Schema.String),
  refundPolicyDetail: nullable(Schema.Array(Schema.Struct({ ageType: Schema.Int, refundFeePolicy: Schema.Number })))
})

/**
 * The UpdateRefund fields other than the credentials refundkit adds.
 *
 * @since 0.1.0
 */
export const UpdateRefundFields = {
  refundOrderNo: Schema.String,
  purchaseOrderNo: Schema.String,
  refundStatus: Schema.String,
  rejectReason: nullable(Schema.Int),
  refundDate: nullable(Schema.String),
  refundableAmount: nullable(Schema.Number),
  flightNumber: nullable(Schema.String),
  isDocumentation: nullable(Schema.Int),
  documentationNote: nullable(Schema.String),
  refundAmount: nullable(Schema.Array(RefundAmountWire)),
  refundFeePricing: nullable(Schema.Array(RefundFeePricingWire))
}

/**
 * The body refundkit builds from a request; the client adds `apiKey` and `requestId`.
 *
 * @since 0.1.0
 */
export const UpdateRefundUpdate = Schema.Struct(UpdateRefundFields)

/**
 * @since 0.1.0
 */
export type UpdateRefundUpdate = typeof UpdateRefundUpdate.Type

/**
 * `POST /supplier/v1/api/update_refund`: the whole body as AeroHub receives it.
 *
 * @since 0.1.0
 */
export const UpdateRefundBody = Schema.Struct({
  apiKey: Schema.String,
  requestId: Schema.String,
  ...UpdateRefundFields
})

/**
 * @since 0.1.0
 */
export type UpdateRefundBody = typeof UpdateRefundBody.Type

/**
 * Every UpdateRefund answer: `{"code":200,"msg":"Successful"}`, or a failure code
 * (400 "Failed", 1000 "Invalid API Key", ...) whatever the HTTP status.
 *
 * @since 0.1.0
 */
export const UpdateRefundResponse = Schema.Struct({
  code: Schema.Int,
  msg: Schema.String
})

/**
 * @since 0.1.0
 */
export type UpdateRefundResponse = typeof UpdateRefundResponse.Type

/**
 * The code of a successful answer.
 *
 * @since 0.1.0
 */
export const successCode = 200

/**
 * The code AeroHub answers when the apiKey is not valid.
 *
 * @since 0.1.0
 */
export const invalidApiKeyCode = 1000

/**
 * The code of AeroHub's documented generic failure ("Failed").
 *
 * @since 0.1.0
 */
export const failedCode = 400

/**
 * An exact two-place amount as the JSON number AeroHub wants. The request schema has
 * already limited it to what a double carries exactly.
 */
const number = (path: string, amount: string): Either.Either<number, InvalidRequest> =>
  Either.flatMap(
    Either.mapLeft(Money.parseMinor(amount, 2), (message) => InvalidRequest.field(path, message, "aerohub")),
    // AeroHub sends every amount with two places; USD only fixes those places here, it is not the currency.
    (minor) => Either.mapLeft(Money.toJsonNumber(Money.make(minor, "USD")), (e) => InvalidRequest.field(path, e.message, "aerohub"))
  )

const optionalNumber = (path: string, amount: string | undefined): Either.Either<number | undefined, InvalidRequest> =>
  amount === undefined ? Either.right(undefined) : number(path, amount)

const all = <A>(items: ReadonlyArray<Either.Either<A, InvalidRequest>>): Either.Either<Array<A>, InvalidRequest> => Either.all(items)

type Defined<A> =
  & { readonly [K in keyof A as undefined extends A[K] ? never : K]: A[K] }
  & { readonly [K in keyof A as undefined extends A[K] ? K : never]?: Exclude<A[K], undefined> }

// Leaves absent fields out of the body rather than sending them as undefined/null.
const defined = <A extends object>(record: A): Defined<A> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Defined<A>

/**
 * The wire body of a decoded request: amounts become JSON numbers, absent fields are left out.
 *
 * @since 0.1.0
 */
export const fromRequest = (request: UpdateRefund): Either.Either<UpdateRefundUpdate, InvalidRequest> =>
  Either.gen(function*() {
    const refundableAmount = yield* optionalNumber("refundableAmount", request.refundableAmount)
    const refundAmount = request.refundAmount === undefined ? undefined : yield* all(request.refundAmount.map((element, i) =>
      Either.gen(function*() {
        return defined({
          refundCost: yield* optionalNumber(`refundAmount.${i}.refundCost`, element.refundCost),
          refundVoucher: yield* optionalNumber(`refundAmount.${i}.refundVoucher`, element.refundVoucher),
          voucherCurrency: element.voucherCurrency,
          voucherNote: element.voucherNote
        })
      })
    ))
    const refundFeePricing = request.refundFeePricing === undefined ? undefined : yield* all(request.refundFeePricing.map((element, i) =>
      Either.gen(function*() {
        const details = element.refundPolicyDetail === undefined ? undefined : yield* all(element.refundPolicyDetail.map((detail, j) =>
          Either.map(number(`refundFeePricing.${i}.refundPolicyDetail.${j}.refundFeePolicy`, detail.refundFeePolicy), (refundFeePolicy) => ({
            ageType: detail.ageType,
            refundFeePolicy
          }))
        ))
        return defined({
          amount: yield* optionalNumber(`refundFeePricing.${i}.amount`, element.amount),
          isRefundVoucher: element.isRefundVoucher,
          voucherCurrency: element.voucherCurrency,
          refundPolicyDetail: details
        })
      })
    ))
    return defined({
      refundOrderNo: request.refundOrderNo,
      purchaseOrderNo: request.purchaseOrderNo,
      refundStatus: request.refundStatus,
      rejectReason: request.rejectReason,
      refundDate: request.refundDate,
      refundableAmount,
      flightNumber: request.flightNumber,
      isDocumentation: request.isDocumentation,
      documentationNote: request.documentationNote,
      refundAmount,
      refundFeePricing
    })
  })
