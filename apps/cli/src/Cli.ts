/**
 * The `refundkit` command tree and how one invocation runs: parse, dispatch, and turn
 * usage errors into exit code 2 (the parser has already printed them with help).
 *
 * @since 0.1.0
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as bulk from "./commands/bulk.js"
import * as create from "./commands/create.js"
import * as get from "./commands/get.js"
import * as list from "./commands/list.js"
import * as providers from "./commands/providers.js"
import * as reconcile from "./commands/reconcile.js"
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
      onNone: () => (argv.includes("--wizard") && process.stdin.isTTY !== true ? wizardWithoutTerminal(argv) : dispatch(argv, version))
    })
  ).pipe(
    Effect.provideService(CliConfig.CliConfig, config),
    Styling.forStreams("refundkit")
  )
