/**
 * The options every command takes (`--json`, `--ledger`, `--sandbox`), accepted both
 * before and after the command name, and the root command that carries them.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Flags from "./Flags.js"

/**
 * The resolved global settings of one invocation.
 *
 * @since 0.1.0
 */
export interface Globals {
  readonly json: boolean
  /** `--ledger`; when absent the ledger reads `REFUNDKIT_LEDGER`, then its default. */
  readonly ledger: Option.Option<string>
  /** `--sandbox`; `REFUNDKIT_SANDBOX=1` is read where the stack is built. */
  readonly sandbox: boolean
}

/**
 * The global options, to spread into each command's config.
 *
 * @since 0.1.0
 */
export const options = {
  json: Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON on stdout (errors too, as the gateway's error objects).")),
  ledger: Flags.nonEmpty("ledger", "give a SQLite file path, :memory: or a postgres:// URL (without the flag, REFUNDKIT_LEDGER, else ./.refundkit/ledger.db)").pipe(
    Options.withDescription("The ledger: a SQLite file (default ./.refundkit/ledger.db), :memory:, or a postgres:// URL. Overrides REFUNDKIT_LEDGER."),
    Options.optional
  ),
  sandbox: Options.boolean("sandbox").pipe(
    Options.withDescription("Start every installed provider's sandbox in this process and use them (also REFUNDKIT_SANDBOX=1).")
  )
} as const

/**
 * The root command, `refundkit`, holding the global options given before a command name.
 *
 * @since 0.1.0
 */
export const root = Command.make("refundkit", options)

/**
 * The global settings of a command: its own flags, or the same flags given before its name.
 *
 * @since 0.1.0
 */
export const resolve = (own: Globals): Effect.Effect<Globals, never, Command.Command.Context<"refundkit">> =>
  Effect.map(root, (parent) => ({
    json: own.json || parent.json,
    ledger: Option.orElse(own.ledger, () => parent.ledger),
    sandbox: own.sandbox || parent.sandbox
  }))

/**
 * No `--ledger` given: for commands that do not use the ledger.
 *
 * @since 0.1.0
 */
export const noLedger: Option.Option<string> = Option.none()
