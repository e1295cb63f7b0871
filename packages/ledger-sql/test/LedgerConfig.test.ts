import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Exit, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as LedgerConfig from "../src/LedgerConfig.js"
import * as SqlLedger from "../src/SqlLedger.js"
import { build, tempDir } from "./support/databases.js"

const withEnv = (env: Record<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("LedgerConfig", () => {
  it("reads a file path, :memory: and PostgreSQL URLs", () => {
    assert.deepStrictEqual(LedgerConfig.parse("./data/ledger.db"), Either.right({ _tag: "Sqlite", filename: "./data/ledger.db" } as const))
    assert.deepStrictEqual(LedgerConfig.parse(":memory:"), Either.right({ _tag: "Sqlite", filename: ":memory:" } as const))
    // Empty is not unset: a URL that did not arrive must not become a SQLite file of this process's own.
    for (const empty of ["", "  "]) {
      const refused = LedgerConfig.parse(empty)
      assert.isTrue(Either.isLeft(refused), JSON.stringify(empty))
      if (Either.isLeft(refused)) {
        assert.strictEqual(refused.left.key, "REFUNDKIT_LEDGER")
        assert.include(refused.left.message, "Configuration problem in REFUNDKIT_LEDGER: is empty; give a SQLite file path, :memory: or a postgres:// URL")
      }
    }
    for (const url of ["postgres://u:pw@db:5432/ledger", "postgresql://db/ledger", "POSTGRES://db/ledger"]) {
      const parsed = LedgerConfig.parse(Redacted.make(url))
      assert.isTrue(Either.isRight(parsed) && parsed.right._tag === "Postgres" && Redacted.value(parsed.right.url) === url)
    }
  })

  it("refuses other URL schemes and unparseable URLs without echoing them", () => {
    const mysql = LedgerConfig.parse("mysql://u:pw@db/x")
    assert.isTrue(Either.isLeft(mysql) && mysql.left._tag === "ConfigurationError" && mysql.left.key === "REFUNDKIT_LEDGER")
    // A PostgreSQL URL missing its slashes is not a SQLite file name (each instance would get its own ledger).
    for (const typo of ["postgres:/u:pw@db/ledger", "postgresql:db/ledger", "Postgres:u:pw@db"]) {
      const parsed = LedgerConfig.parse(typo)
      assert.isTrue(Either.isLeft(parsed) && parsed.left._tag === "ConfigurationError", typo)
      if (Either.isLeft(parsed)) assert.notInclude(parsed.left.message, "pw")
    }
    const broken = LedgerConfig.parse("postgres://u:pw@[bad/x")
    assert.isTrue(Either.isLeft(broken))
    if (Either.isLeft(broken)) assert.notInclude(broken.left.message, "pw")
  })

  it("masks the password when describing a location", () => {
    const location = Either.getOrThrow(LedgerConfig.parse("postgres://refundkit:s3cr%40t@db.internal:5432/ledger?sslmode=require"))
    const text = LedgerConfig.describe(location)
    assert.strictEqual(text, "PostgreSQL postgres://refundkit:***@db.internal:5432/ledger?sslmode=require")
    assert.notInclude(String(location), "s3cr")
    assert.strictEqual(LedgerConfig.describe({ _tag: "Sqlite", filename: "x.db" }), "SQLite file x.db")
  })

  it.effect("defaults to ./.refundkit/ledger.db", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* LedgerConfig.load, { _tag: "Sqlite", filename: "./.refundkit/ledger.db" })
      const fromEnv = yield* Effect.provide(LedgerConfig.load, withEnv({ REFUNDKIT_LEDGER: "postgres://db/x" }))
      assert.strictEqual(fromEnv._tag, "Postgres")
      // Set but empty is not unset: refused, naming the setting.
      const empty = yield* Effect.flip(Effect.provide(LedgerConfig.load, withEnv({ REFUNDKIT_LEDGER: "" })))
      assert.strictEqual(empty.key, "REFUNDKIT_LEDGER")
    }).pipe(Effect.provide(withEnv({}))))

  it.scopedLive("layerConfig opens the ledger REFUNDKIT_LEDGER names, creating its directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "deep", "er", "ledger.db")
      const ledger = yield* build(SqlLedger.layerConfig().pipe(Layer.provide(withEnv({ REFUNDKIT_LEDGER: file }))))
      yield* ledger.ready
      assert.isTrue(fs.existsSync(file))
      assert.strictEqual(ledger.dialect, "sqlite")
    }))

  it.scopedLive("layerConfig fails with a ConfigurationError on an unsupported value", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(build(SqlLedger.layerConfig().pipe(Layer.provide(withEnv({ REFUNDKIT_LEDGER: "redis://cache" })))))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "ConfigurationError")
    }))

  it.scopedLive("layerConfig refuses a REFUNDKIT_LEDGER_STATEMENT_TIMEOUT that is not a positive duration, naming it", () =>
    Effect.gen(function*() {
      for (const value of ["soon", "0 seconds"]) {
        const env = withEnv({ REFUNDKIT_LEDGER: ":memory:", REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: value })
        const exit = yield* Effect.exit(build(SqlLedger.layerConfig().pipe(Layer.provide(env))))
        assert.isTrue(Exit.isFailure(exit), value)
        if (Exit.isFailure(exit)) {
          assert.include(String(exit.cause), "ConfigurationError")
          assert.include(String(exit.cause), "REFUNDKIT_LEDGER_STATEMENT_TIMEOUT")
        }
      }
    }))

  it.scopedLive("REFUNDKIT_LEDGER_STATEMENT_TIMEOUT's refusal is one sentence naming the setting and the rule", () =>
    Effect.gen(function*() {
      const refusal = (value: string) =>
        Effect.flip(build(SqlLedger.layerConfig().pipe(Layer.provide(withEnv({ REFUNDKIT_LEDGER: ":memory:", REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: value })))))
      const unitless = yield* refusal("5")
      assert.strictEqual(
        unitless.message,
        `Configuration problem in REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: must be a duration with its unit, such as "30 seconds" or "500 millis", got "5".`
      )
      const zero = yield* refusal("0 seconds")
      assert.strictEqual(zero.message, `Configuration problem in REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: must be a positive duration such as "30 seconds".`)
    }))

  it.scopedLive("refuses a REFUNDKIT_LEDGER_STATEMENT_TIMEOUT longer than Node's timers hold, which would bound every statement at 1 ms", () =>
    Effect.gen(function*() {
      const env = (value: string) => withEnv({ REFUNDKIT_LEDGER: ":memory:", REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: value })
      const error = yield* Effect.flip(build(SqlLedger.layerConfig().pipe(Layer.provide(env("100 days")))))
      assert.strictEqual(
        error.message,
        `Configuration problem in REFUNDKIT_LEDGER_STATEMENT_TIMEOUT: must be at most 24 days (Node's timers hold no longer), such as "30 seconds".`
      )
      yield* build(SqlLedger.layerConfig().pipe(Layer.provide(env("24 days"))))
    }))
})
