/**
 * The `refundkit` command tree and how one invocation runs: parse, dispatch, and turn
 * usage errors into exit code 2 (the parser has already printed them with help).
 *
 * @since 0.1.0
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as CommandDescriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"
import * as bulk from "./commands/bulk.js"
import * as create from "./commands/create.js"
import * as get from "./commands/get.js"
import * as list from "./commands/list.js"
import * as providers from "./commands/providers.js"
import * as reconcile from "./commands/reconcile.js"
import * as reopen from "./commands/reopen.js"
import * as resolve from "./commands/resolve.js"
import * as sandbox from "./commands/sandbox.js"
import * as serve from "./commands/serve.js"
import * as sync from "./commands/sync.js"
import * as update from "./commands/update.js"
import { UsageError } from "./CliError.js"
import * as ExitCode from "./ExitCode.js"
import * as Globals from "./Globals.js"
import * as Help from "./Help.js"
import * as Output from "./Output.js"
import { ExitStatus } from "./Run.js"
import * as Styling from "./Styling.js"

const commands = [
  providers.command,
  create.command,
  get.command,
  list.command,
  sync.command,
  update.command,
  bulk.command,
  reconcile.command,
  resolve.command,
  reopen.command,
  sandbox.command,
  serve.command
] as const

/**
 * The whole command tree.
 *
 * @since 0.1.0
 */
export const command = Globals.root.pipe(
  Command.withDescription("refundkit: issue, track and reconcile refunds across providers. Run `refundkit <command> --help` for a command's options and an example."),
  Command.withSubcommands(commands)
)

const config = CliConfig.make({ showBuiltIns: false })

const dispatch = (argv: ReadonlyArray<string>, version: string) =>
  Command.run(command, { name: "refundkit", version })(argv).pipe(
    Effect.catchIf(ValidationError.isValidationError, (error) =>
      Effect.zipRight(
        // The parser printed the reason on stderr; with --json a script also gets it as an error object on stdout.
        argv.includes("--json") && "error" in error
          ? Output.json({ error: { code: "usage_error", message: HelpDoc.toAnsiText(error.error).replace(/\x1b\[[0-9;]*m/g, "").trim() } })
          : Effect.void,
        Effect.flatMap(ExitStatus, (status) => status.set(ExitCode.usage))
      ))
  )

// --- A command line the parser refuses, said as every other usage error is ---

// The parser's own words were `Received unknown argument: '--status'` for a flag given without its
// value (an optional flag lets the parse go on without it, and the flag is left over), and for a
// `--log-level` it does not take, printed without `error:` and without the rule.

// The global flags that take a value: the word after one is not the command's name.
const valued = new Set(["--ledger", "--log-level"])

/** The command the line names, or the program itself when it names none. */
const invoked = (args: ReadonlyArray<string>): { readonly name: string; readonly descriptor: CommandDescriptor.Command<unknown> } => {
  for (let i = 1; i < args.length; i++) {
    const word = args[i]!
    if (valued.has(word)) i++
    else if (!word.startsWith("-")) {
      const found = commands.find((c) => HashSet.has(CommandDescriptor.getNames(c.descriptor), word))
      return found === undefined ? { name: "refundkit", descriptor: command.descriptor } : { name: `refundkit ${word}`, descriptor: found.descriptor }
    }
  }
  return { name: "refundkit", descriptor: command.descriptor }
}

/**
 * What a flag's values are, in words: `one of a, b`, `a whole number`, a placeholder of its own as
 * written (`path=value`); `undefined` for any text.
 */
const valuesRule = (values: string): string | undefined =>
  values.includes(" | ")
    ? `one of ${values.split(" | ").join(", ")}`
    : values === "integer"
    ? "a whole number"
    : values === "timestamp"
    ? "a timestamp with an offset, such as 2026-12-06T14:00:00Z, or a date"
    : values === "text"
    ? undefined
    : values

/** The refusal of a flag given without its value, by its long name (`-f` is `--field`) and its rule. */
const needsValue = (flag: Help.Flag, name: string): string => {
  const shown = flag.names.find((n) => n.startsWith("--")) ?? name
  const rule = Option.getOrUndefined(Option.flatMapNullable(flag.values, valuesRule))
  return `${shown}: needs a value${rule === undefined ? "" : ` (${rule})`}`
}

/** The option a word names, as `--flag` or `--flag=value`, among `flags`. */
const flagNamed = (flags: ReadonlyArray<Help.Flag>, word: string): { readonly flag: Help.Flag; readonly name: string; readonly inline: string | undefined } | undefined => {
  if (!word.startsWith("-")) return undefined
  const at = word.indexOf("=")
  const name = at > 0 ? word.slice(0, at) : word
  const flag = flags.find((f) => f.names.includes(name))
  return flag === undefined ? undefined : { flag, name, inline: at > 0 ? word.slice(at + 1) : undefined }
}

/**
 * The first flag on the line that takes a value and is given none: `--flag=` with nothing after it,
 * or `--flag` last on the line or followed by another of the command's flags. The parser answered
 * each in its own way, none of which named the flag: a repeated `-f` at the end was dropped (and
 * create said a request is required), a value-taking flag took the next flag for its value
 * (`--data --json`), `--ledger=` before the command left it no command ("Invalid subcommand"), and
 * after `get` it was taken for the refund id. A value that merely starts with `-` (`-5`) is left
 * to the flag's own rule.
 */
const valueMissing = (args: ReadonlyArray<string>): Option.Option<string> => {
  const flags = Help.flagsOf(invoked(args).descriptor, config)
  for (let i = 1; i < args.length; i++) {
    if (args[i] === "--") break
    const named = flagNamed(flags, args[i]!)
    if (named === undefined || Option.isNone(named.flag.values)) continue
    if (named.inline !== undefined) {
      if (named.inline === "") return Option.some(needsValue(named.flag, named.name))
      continue
    }
    const next = args[i + 1]
    if (next === undefined || flagNamed(flags, next) !== undefined) return Option.some(needsValue(named.flag, named.name))
    i++
  }
  return Option.none()
}

/** The refusal of a word left over after the parse: a flag missing its value, a value a built-in flag does not take, or a word no option has. */
const leftOver = (words: ReadonlyArray<string>, args: ReadonlyArray<string>): string => {
  const [head = "", next] = words
  const target = invoked(args)
  const at = head.indexOf("=")
  const name = at > 0 ? head.slice(0, at) : head
  const flag = head.startsWith("-") ? Help.flagsOf(target.descriptor, config).find((f) => f.names.includes(name)) : undefined
  const values = flag === undefined ? Option.none<string>() : flag.values
  if (flag !== undefined && Option.isSome(values)) {
    const shown = flag.names.find((n) => n.startsWith("--")) ?? name
    const rule = valuesRule(values.value)
    const given = at > 0 ? head.slice(at + 1) : next !== undefined && !next.startsWith("-") ? next : undefined
    if (given === undefined || given === "") return needsValue(flag, name)
    return `${shown}: must be ${rule ?? "a value it takes"}, got ${JSON.stringify(given)}`
  }
  const help = `\`${target.name} --help\` lists what it takes`
  return head.startsWith("-") ? `${name}: is not an option of ${target.name}; ${help}` : `${JSON.stringify(head)} is not an argument ${target.name} takes; ${help}`
}

const missingValue = /^Expected a value following option: '(.+)'$/

/**
 * Why the parser refuses `args` (the program's name, then what follows it), or `None` when it
 * takes them (a help request and the built-ins included): said here as one line, since the
 * parser's own output is `Received unknown argument: '--status'` for a flag missing its value.
 */
const refusal = (args: ReadonlyArray<string>): Effect.Effect<Option.Option<string>, never, CliApp.CliApp.Environment> =>
  Option.match(valueMissing(args), {
    onSome: (message) => Effect.succeed(Option.some(message)),
    onNone: () => parsed(args)
  })

/** Why the parser itself refuses `args`, as {@link refusal} says it. */
const parsed = (args: ReadonlyArray<string>): Effect.Effect<Option.Option<string>, never, CliApp.CliApp.Environment> =>
  CommandDescriptor.parse(command.descriptor, args, config).pipe(
    Effect.either,
    Effect.flatMap((parsed): Effect.Effect<Option.Option<string>, never, CliApp.CliApp.Environment> => {
      if (Either.isLeft(parsed)) {
        const error = parsed.left
        if (ValidationError.isHelpRequested(error)) return Effect.succeed(Option.none())
        const text = Styling.strip(HelpDoc.toAnsiText(error.error)).trim()
        const missing = missingValue.exec(text)
        return Effect.succeed(Option.some(missing === null ? text : leftOver([missing[1]!], args)))
      }
      const directive = parsed.right
      // `--log-level` is taken first, and `Command.run` parses the rest of the line again without it.
      if (directive._tag === "BuiltIn") return directive.option._tag === "SetLogLevel" ? refusal(Help.withoutLogLevel(args)) : Effect.succeed(Option.none())
      return Effect.succeed(directive.leftover.length === 0 ? Option.none() : Option.some(leftOver(directive.leftover, args)))
    })
  )

const refuse = (argv: ReadonlyArray<string>, message: string) =>
  Effect.zipRight(
    Output.error(argv.includes("--json"), { code: "usage_error", message }),
    Effect.flatMap(ExitStatus, (status) => status.set(ExitCode.usage))
  )

// The wizard reads its answers from a terminal: from a pipe it waited for ever, and from an empty
// stdin it failed with the parser's "Invalid subcommand".
const wizardWithoutTerminal = (argv: ReadonlyArray<string>) =>
  Effect.zipRight(
    Output.error(argv.includes("--json"), new UsageError({ field: "--wizard", detail: "asks its questions at a terminal, and stdin is not one", hint: "Give the command its flags instead (see `refundkit <command> --help`)." })),
    Effect.flatMap(ExitStatus, (status) => status.set(ExitCode.usage))
  )

/**
 * Runs the CLI on `process.argv`-shaped arguments; the exit code is left in {@link ExitStatus}.
 *
 * @since 0.1.0
 */
export const run = (argv: ReadonlyArray<string>, version: string) =>
  // `Command.run` would print the library's own help page, with no way to render it otherwise, so a help
  // request is found first. Parsing twice costs a few milliseconds, against a start of a second.
  Effect.flatMap(
    Help.requested(command, ["refundkit", ...argv.slice(2)], config),
    Option.match({
      onSome: (request) => Console.log(Help.page(request, { name: "refundkit", version, command, commands }, config, Help.width(process.stdout))),
      onNone: () =>
        argv.includes("--wizard") && process.stdin.isTTY !== true
          ? wizardWithoutTerminal(argv)
          : Effect.flatMap(refusal(["refundkit", ...argv.slice(2)]), Option.match({ onSome: (message) => refuse(argv, message), onNone: () => dispatch(argv, version) }))
    })
  ).pipe(
    Effect.provideService(CliConfig.CliConfig, config),
    Styling.forStreams("refundkit")
  )
