import { OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Api, ApiError, ApiModel } from "../src/index.js"

describe("Api", () => {
  it("generates an OpenAPI document whose component names are plain identifiers", () => {
    const spec = OpenApi.fromApi(Api.Api)
    assert.strictEqual(spec.openapi, "3.1.0")
    const names = Object.keys(spec.components.schemas)
    assert.isTrue(names.length > 0)
    for (const name of names) assert.match(name, /^[a-zA-Z0-9.\-_]+$/)
    assert.notInclude(names, "HttpApiDecodeError")
    assert.include(names, "IdempotencyKeyReusedError")
    assert.notInclude(JSON.stringify(spec), "HttpApiDecodeError")
    assert.notInclude(JSON.stringify(spec), "/schemas/unknown", "an $id repeated would make the document invalid")
    const create = spec.paths["/v1/refunds"]?.post
    assert.isDefined(create)
    assert.deepStrictEqual(Object.keys(create!.responses).sort(), ["200", "201", "400", "401", "404", "409", "413", "415", "422", "431", "500", "502", "503", "504"])
    // 415 where a JSON body is read: create and events; not sync, which reads none, nor a callback, taken as its provider sends it.
    assert.include(Object.keys(spec.paths["/v1/refunds/{id}/events"]?.post?.responses ?? {}), "415")
    assert.notInclude(Object.keys(spec.paths["/v1/refunds/{id}/sync"]?.post?.responses ?? {}), "415")
    assert.notInclude(Object.keys(spec.paths["/v1/webhooks/{provider}"]?.post?.responses ?? {}), "415")
    assert.include(JSON.stringify(create!.responses["415"]), "UnsupportedMediaTypeError")
    // An operator's verdict: a JSON body (415 otherwise), its own errors declared, a repeat marked as one.
    const resolve = spec.paths["/v1/refunds/{id}/resolve"]?.post
    assert.isDefined(resolve)
    assert.deepStrictEqual(Object.keys(resolve!.responses).sort(), ["200", "400", "401", "404", "409", "413", "415", "431", "500", "503"])
    assert.include(JSON.stringify(resolve!.responses["409"]), "IllegalTransitionError")
    // A correction to succeeded refused because another refund holds a target answers as a create refused so does.
    assert.include(JSON.stringify(resolve!.responses["409"]), "TargetAlreadyRefundedError")
    assert.include(JSON.stringify(resolve!.responses["409"]), "OverRefundError")
    assert.include(JSON.stringify(resolve!.responses["404"]), "RefundNotFoundError")
    assert.include(JSON.stringify(resolve!.requestBody), "ResolveRefund")
    assert.deepStrictEqual(resolve!.security, [{ bearer: [] }])
    const reopen = spec.paths["/v1/refunds/{id}/reopen"]?.post
    assert.isDefined(reopen)
    assert.deepStrictEqual(Object.keys(reopen!.responses).sort(), ["200", "400", "401", "404", "409", "413", "415", "431", "500", "503"])
    assert.include(JSON.stringify(reopen!.responses["409"]), "TargetAlreadyRefundedError")
    assert.include(JSON.stringify(reopen!.requestBody), "ReopenRefund")
    assert.deepStrictEqual(reopen!.security, [{ bearer: [] }])
    const verdict = spec.components.schemas["ResolveRefund"] as { required?: ReadonlyArray<string>; properties?: Record<string, { maxLength?: number; enum?: ReadonlyArray<string> }> }
    assert.sameMembers([...verdict.required ?? []], ["status", "note"])
    assert.sameMembers(Object.keys(verdict.properties ?? {}), ["status", "note", "releaseTargets", "failedTargets", "correct"])
    assert.strictEqual((verdict.properties?.["correct"] as { type?: string } | undefined)?.type, "boolean")
    assert.strictEqual(verdict.properties?.["note"]?.maxLength, ApiModel.maxNoteLength)
    // A refund's history carries each operator's verdict as it was asked for, every field of it always there.
    const event = spec.components.schemas["RefundEvent"] as { required?: ReadonlyArray<string>; properties?: Record<string, unknown> }
    assert.include(JSON.stringify(event.properties?.["verdict"]), "#/components/schemas/OperatorVerdict")
    assert.notInclude(event.required ?? [], "verdict")
    // A provider's callback carries the key a repeat of it is known by, beside the words of its detail.
    const callbackKey = event.properties?.["callbackKey"] as { type?: string; description?: string } | undefined
    assert.strictEqual(callbackKey?.type, "string")
    assert.include(callbackKey?.description, "duplicate")
    assert.notInclude(event.required ?? [], "callbackKey")
    const recorded = spec.components.schemas["OperatorVerdict"] as { required?: ReadonlyArray<string>; properties?: Record<string, unknown> }
    assert.sameMembers([...recorded.required ?? []], ["note", "releaseTargets", "failedTargets", "correct"])
    // `reopen` only on an operator's reopen: optional, so a verdict recorded before it reads the same.
    assert.sameMembers(Object.keys(recorded.properties ?? {}), ["note", "releaseTargets", "failedTargets", "correct", "reopen"])
    assert.deepStrictEqual(create!.security, [{ bearer: [] }])
    assert.deepStrictEqual(spec.paths["/v1/webhooks/{provider}"]?.post?.security, [])

    // The headers the gateway sends, which HttpApi cannot declare, are in the document.
    const headersOf = (response: unknown) => Object.keys((response as { headers?: object }).headers ?? {})
    assert.includeMembers(headersOf(create!.responses["201"]), ["X-Request-Id", "Server-Timing", "Location"])
    assert.include(headersOf(create!.responses["200"]), "Idempotent-Replayed")
    assert.notInclude(headersOf(create!.responses["200"]), "Location")
    assert.include(headersOf(create!.responses["502"]), "Retry-After")
    // A replay of a create answered 502 or 504 answers the same again, marked as a replay.
    assert.include(headersOf(create!.responses["502"]), "Idempotent-Replayed")
    assert.include(headersOf(create!.responses["504"]), "Idempotent-Replayed")
    assert.notInclude(headersOf(spec.paths["/v1/refunds/{id}/sync"]?.post?.responses["502"]), "Idempotent-Replayed")
    assert.include(headersOf(spec.paths["/v1/refunds/{id}/resolve"]?.post?.responses["200"]), "Idempotent-Replayed")
    assert.include(headersOf(spec.paths["/v1/refunds/{id}/reopen"]?.post?.responses["200"]), "Idempotent-Replayed")
    assert.include(headersOf(create!.responses["401"]), "WWW-Authenticate")
    assert.notInclude(headersOf(spec.paths["/v1/webhooks/{provider}"]?.post?.responses["401"]), "WWW-Authenticate", "a webhook is not refused for an API key")
    const declared = Object.keys((spec.components as { headers?: object }).headers ?? {})
    for (const [, operations] of Object.entries(spec.paths)) {
      for (const [, operation] of Object.entries(operations as Record<string, { responses: Record<string, { headers?: Record<string, { $ref: string }> }> }>)) {
        for (const response of Object.values(operation.responses)) {
          for (const ref of Object.values(response.headers ?? {})) assert.include(declared, ref.$ref.replace("#/components/headers/", ""))
        }
      }
    }
  })

  it.effect("errors travel as {error: {code, message, ...}} and decode back to their class", () =>
    Effect.gen(function*() {
      const wire = ApiError.Wire.IdempotencyKeyReused
      const error = new ApiError.IdempotencyKeyReused({ message: "used before", refundId: "rfd_x" })
      const encoded = yield* Schema.encode(wire)(error)
      assert.deepStrictEqual(encoded, { error: { code: "idempotency_key_reused", message: "used before", refundId: "rfd_x" } })
      const decoded = yield* Schema.decodeUnknown(wire)(encoded)
      assert.instanceOf(decoded, ApiError.IdempotencyKeyReused)
      assert.strictEqual(decoded.refundId, "rfd_x")
      const other = yield* Effect.flip(Schema.decodeUnknown(wire)({ error: { code: "refund_in_progress", message: "", refundId: "x" } }))
      assert.strictEqual(other._tag, "ParseError")
    }))

  it.effect("a create body keeps the provider's own fields beside `provider`", () =>
    Effect.gen(function*() {
      const body = yield* Schema.decodeUnknown(ApiModel.CreateRefund)({ provider: "exirom", transactionId: "t1", amount: "1.00" })
      assert.strictEqual(body.provider, "exirom")
      assert.strictEqual(body["transactionId"], "t1")
      const missing = yield* Effect.flip(Schema.decodeUnknown(ApiModel.CreateRefund)({ transactionId: "t1" }))
      assert.include(missing.message, "provider")
      const query = yield* Schema.decodeUnknown(ApiModel.ListQuery)({ limit: "20", status: "pending" })
      assert.strictEqual(query.limit, 20)
      const tooMany = yield* Effect.flip(Schema.decodeUnknown(ApiModel.ListQuery)({ limit: "501" }))
      assert.include(tooMany.message, "1 to 500")
      const verdict = yield* Schema.decodeUnknown(ApiModel.ResolveRefund)({ status: "failed", note: "checked", releaseTargets: true })
      assert.deepStrictEqual(verdict, { status: "failed", note: "checked", releaseTargets: true })
      const released = yield* Effect.flip(Schema.decodeUnknown(ApiModel.ResolveRefund)({ status: "succeeded", note: "checked", releaseTargets: true }))
      assert.include(released.message, "goes with status \"failed\"")
      const correction = yield* Schema.decodeUnknown(ApiModel.ResolveRefund)({ status: "succeeded", note: "credited after all", correct: true })
      assert.deepStrictEqual(correction, { status: "succeeded", note: "credited after all", correct: true })
      const notBoolean = yield* Effect.flip(Schema.decodeUnknown(ApiModel.ResolveRefund)({ status: "succeeded", note: "x", correct: "true" }))
      assert.include(notBoolean.message, "must be true or false, got \"true\"")
      // A note is counted in characters, as JSON Schema's maxLength counts them: 1000 emoji are a note.
      assert.isTrue(Schema.is(ApiModel.ResolveRefund)({ status: "failed", note: "💸".repeat(ApiModel.maxNoteLength) }))
      assert.isFalse(Schema.is(ApiModel.ResolveRefund)({ status: "failed", note: "💸".repeat(ApiModel.maxNoteLength + 1) }))
    }))
})
