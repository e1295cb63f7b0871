import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as Provider from "@refundkit/core/Provider"
import type * as RefundError from "@refundkit/core/RefundError"
import { Effect, Layer, Option, Redacted } from "effect"
import * as Airalo from "../src/Airalo.js"
import * as AiraloRequest from "../src/AiraloRequest.js"
import * as AiraloSandbox from "../src/sandbox.js"

// The plugin pointed at a sandbox that counts requests: validation must never reach it.
const withPlugin = <A, E>(body: (provider: Provider.Provider, sandbox: AiraloSandbox.AiraloSandbox) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const sandbox = yield* AiraloSandbox.make({ rateLimit: false })
    const provider = yield* getProvider(sandbox)
    const result = yield* body(provider, sandbox)
    const stats = yield* sandbox.stats
    assert.deepStrictEqual(stats.requests, {}, "nothing was sent to Airalo")
    return result
  })

const getProvider = (sandbox: AiraloSandbox.AiraloSandbox) =>
  Effect.flatMap(Layer.build(NodeHttpClient.layerUndici), (http) =>
    Airalo.make({ baseUrl: sandbox.baseUrl, clientId: sandbox.clientId, clientSecret: Redacted.make(sandbox.clientSecret), rateLimit: undefined }).pipe(
      Effect.provide(http)
    ))

const issuesOf = (input: unknown) =>
  withPlugin((provider) => Effect.flip(provider.prepare(input))).pipe(
    Effect.map((error: RefundError.InvalidRequest) => {
      assert.strictEqual(error._tag, "InvalidRequest")
      return error
    })
  )

const valid = { iccids: ["8910300000000000011"], reason: "NO_COVERAGE" }

describe("AiraloRequest", () => {
  it.scopedLive("the seed's example request is refused for its reason, listing the 23 accepted values, before any network call", () =>
    Effect.gen(function*() {
      const seedExample = {
        iccids: ["894000000000001", "894000000000002"],
        reason: "SERVICE_ISSUES",
        notes: "Connection issues in the region."
      }
      const error = yield* issuesOf(seedExample)
      assert.deepStrictEqual(error.issues.map((i) => i.path), ["reason"])
      const message = error.issues[0]!.message
      assert.include(message, "\"SERVICE_ISSUES\" is not an accepted reason")
      for (const reason of AiraloRequest.reasons) assert.include(message, reason)
      assert.strictEqual(AiraloRequest.reasons.length, 23)
      assert.include(error.message, "was not sent to airalo")
    }))

  it.scopedLive("the seed's example with an accepted reason is valid and targets each ICCID without an amount", () =>
    withPlugin((provider) =>
      Effect.gen(function*() {
        const prepared = yield* provider.prepare({ iccids: ["894000000000001", "894000000000002"], reason: "NO_COVERAGE", notes: "Connection issues in the region." })
        assert.deepStrictEqual(prepared.targets, [{ target: "894000000000001" }, { target: "894000000000002" }])
        assert.isUndefined(prepared.amount)
        assert.isUndefined(prepared.currency)
        assert.deepStrictEqual(prepared.request, { iccids: ["894000000000001", "894000000000002"], reason: "NO_COVERAGE", notes: "Connection issues in the region." })
      })))

  it.scopedLive("iccids: required, 1 to 5, each a string of digits, none twice", () =>
    Effect.gen(function*() {
      const missing = yield* issuesOf({ reason: "NO_COVERAGE" })
      assert.deepStrictEqual(missing.issues, [{ path: "iccids", message: "iccids is required: 1 to 5 ICCIDs" }])
      const empty = yield* issuesOf({ ...valid, iccids: [] })
      assert.deepStrictEqual(empty.issues, [{ path: "iccids", message: "iccids must name at least 1 ICCID (1 to 5)" }])
      const six = yield* issuesOf({ ...valid, iccids: ["1", "2", "3", "4", "5", "6"] })
      assert.deepStrictEqual(six.issues, [{ path: "iccids", message: "iccids may name at most 5 ICCIDs per request, got 6" }])
      const notArray = yield* issuesOf({ ...valid, iccids: "8910300000000000011" })
      assert.deepStrictEqual(notArray.issues.map((i) => i.path), ["iccids"])
      assert.include(notArray.issues[0]!.message, "iccids must be an array of 1 to 5 ICCIDs")
      const digits = yield* issuesOf({ ...valid, iccids: ["8910300000000000011", "89103000-0001", "", 8910300000000000011] })
      assert.deepStrictEqual(digits.issues, [
        { path: "iccids.1", message: "an ICCID must be a string of digits, got \"89103000-0001\"" },
        { path: "iccids.2", message: "an ICCID must be a string of digits, got \"\"" },
        { path: "iccids.3", message: "an ICCID must be a string of digits, got number" }
      ])
      const twice = yield* issuesOf({ ...valid, iccids: ["894000000000001", "894000000000002", "894000000000001"] })
      assert.deepStrictEqual(twice.issues, [{ path: "iccids.2", message: "iccids names 894000000000001 twice: each ICCID once per request" }])
      yield* withPlugin((provider) => provider.prepare({ ...valid, iccids: ["1", "22", "333", "4444", "894000000000001"] }))
    }))

  it.scopedLive("reason: required, one of the accepted values", () =>
    Effect.gen(function*() {
      const missing = yield* issuesOf({ iccids: valid.iccids })
      assert.strictEqual(missing.issues[0]!.path, "reason")
      assert.include(missing.issues[0]!.message, "reason is required and must be one of the reasons Airalo accepts: INSTALLATION_FAILURE, ")
      const lower = yield* issuesOf({ ...valid, reason: "no_coverage" })
      assert.include(lower.issues[0]!.message, "\"no_coverage\" is not an accepted reason; reason must be one of the reasons Airalo accepts:")
      assert.include(lower.issues[0]!.message, "QR_ISSUE_PARTNERS, OTHERS")
      for (const reason of AiraloRequest.reasons) {
        const notes = reason === "OTHERS" ? { notes: "other" } : {}
        yield* withPlugin((provider) => provider.prepare({ ...valid, reason, ...notes }))
      }
    }))

  it.scopedLive("notes: at most 255 characters (counted as characters, not UTF-16 units), required when reason is OTHERS", () =>
    Effect.gen(function*() {
      const long = yield* issuesOf({ ...valid, notes: "x".repeat(256) })
      assert.deepStrictEqual(long.issues, [{ path: "notes", message: "notes must be at most 255 characters, got 256" }])
      yield* withPlugin((provider) => provider.prepare({ ...valid, notes: "x".repeat(255) }))
      yield* withPlugin((provider) => provider.prepare({ ...valid, notes: "📶".repeat(255) }))
      const others = yield* issuesOf({ ...valid, reason: "OTHERS" })
      assert.deepStrictEqual(others.issues, [{ path: "notes", message: "notes is required when reason is OTHERS" }])
      const blank = yield* issuesOf({ ...valid, reason: "OTHERS", notes: "   " })
      assert.deepStrictEqual(blank.issues, [{ path: "notes", message: "notes is required when reason is OTHERS" }])
      const notString = yield* issuesOf({ ...valid, notes: 5 })
      assert.deepStrictEqual(notString.issues, [{ path: "notes", message: "notes must be a string" }])
      yield* withPlugin((provider) => provider.prepare({ ...valid, reason: "OTHERS", notes: "customer changed plans" }))
    }))

  it.scopedLive("email: optional, a valid address when present", () =>
    Effect.gen(function*() {
      for (const email of ["support", "a@b", "a b@example.com", "a@@example.com", "a@example."]) {
        const error = yield* issuesOf({ ...valid, email })
        assert.deepStrictEqual(error.issues, [{ path: "email", message: `email must be a valid email address, got ${JSON.stringify(email)}` }])
      }
      yield* withPlugin((provider) => provider.prepare({ ...valid, email: "ops+esim@reseller.example.com" }))
    }))

  it.scopedLive("unknown fields are refused (refundkit fills in nothing for Airalo but the token)", () =>
    Effect.gen(function*() {
      const error = yield* issuesOf({ ...valid, iccid: "8910300000000000011" })
      assert.deepStrictEqual(error.issues.map((i) => i.path), ["iccid"])
    }))

  it.scopedLive("every rule is reported at once", () =>
    Effect.gen(function*() {
      const error = yield* issuesOf({ iccids: ["x"], reason: "NOPE", notes: "y".repeat(300), email: "nope" })
      assert.deepStrictEqual(error.issues.map((i) => i.path), ["iccids.0", "reason", "notes", "email"])
    }))
})

describe("Airalo.combine", () => {
  const request = (iccids: ReadonlyArray<string>, extra: Partial<AiraloRequest.AiraloRefundRequest> = {}): AiraloRequest.AiraloRefundRequest => ({
    iccids,
    reason: "NO_COVERAGE",
    ...extra
  })

  it("packs requests sharing reason, notes and email into one call of up to 5 ICCIDs", () => {
    const packed = Airalo.combine([request(["1"], { notes: "n" }), request(["2", "3"], { notes: "n" })])
    assert.deepStrictEqual(Option.getOrUndefined(packed), { iccids: ["1", "2", "3"], reason: "NO_COVERAGE", notes: "n" })
    assert.isTrue(Option.isSome(Airalo.combine([request(["1", "2"]), request(["3", "4", "5"])])))
  })

  it("refuses to pack different reasons, notes or emails, more than 5 ICCIDs, or a repeated ICCID", () => {
    assert.isTrue(Option.isNone(Airalo.combine([request(["1"]), request(["2"], { reason: "SLOW_SPEED" })])))
    assert.isTrue(Option.isNone(Airalo.combine([request(["1"], { notes: "a" }), request(["2"], { notes: "b" })])))
    assert.isTrue(Option.isNone(Airalo.combine([request(["1"]), request(["2"], { notes: "b" })])))
    assert.isTrue(Option.isNone(Airalo.combine([request(["1"], { email: "a@x.io" }), request(["2"])])))
    assert.isTrue(Option.isNone(Airalo.combine([request(["1", "2", "3"]), request(["4", "5", "6"])])))
    assert.isTrue(Option.isNone(Airalo.combine([request(["1"]), request(["1"])])))
    assert.isTrue(Option.isNone(Airalo.combine([])))
  })

  it("declares Airalo's capabilities, the rate limit with its guard", () => {
    assert.deepStrictEqual(Airalo.capabilities, {
      partialRefunds: false,
      maxTargetsPerCall: 5,
      statusQuery: false,
      webhooks: false,
      idempotentSubmit: false,
      updates: false,
      settlement: "credits",
      rateLimit: { requests: 1, perMillis: 300_000 + 5_000 }
    })
    assert.isUndefined(Airalo.capabilitiesFor(undefined).rateLimit)
    assert.deepStrictEqual(Airalo.capabilitiesFor({ requests: 5, perMillis: 60_000 }).rateLimit, { requests: 5, perMillis: 63_000 })
    assert.deepStrictEqual(Airalo.capabilitiesFor({ requests: 1, perMillis: 1_000 }).rateLimit, { requests: 1, perMillis: 1_500 })
  })
})

