/**
 * The help pages (`refundkit --help`, `refundkit <command> --help`). `@effect/cli` prints
 * every option as three paragraphs ("A user-defined piece of text.", its description, "This
 * setting is optional.") and lists the commands with their whole usage lines; a page of `list`
 * ran past 100 lines. These pages list each option once, as gh and cargo do: the flag with its
 * placeholder, then its description, then only what is unusual about it (required, a default,
 * repeatable).
 *
 * `@effect/cli` prints its help inside `Command.run` with no way to render it otherwise, so the
 * CLI asks the parser first whether an invocation is a help request ({@link requested}) and
 * prints the page itself ({@link page}), from the same parts the library would have printed:
 * the command's `Usage` (names, placeholders, what is optional or repeated) and its `HelpDoc`
 * (the descriptions); the text is wrapped here and only styled with `@effect/printer-ansi`.
 *
 * @since 0.4.0
 */
import * as Args from "@effect/cli/Args"
import type * as CliApp from "@effect/cli/CliApp"
import * as BuiltInOptions from "@effect/cli/BuiltInOptions"
import type * as CliConfig from "@effect/cli/CliConfig"
import type * as Command from "@effect/cli/Command"
import * as CommandDescriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as Primitive from "@effect/cli/Primitive"
import * as Usage from "@effect/cli/Usage"
import * as Doc from "@effect/printer/Doc"
import * as Ansi from "@effect/printer-ansi/Ansi"
import * as AnsiDoc from "@effect/printer-ansi/AnsiDoc"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/**
 * What a help page is made of: the command's usage and its help document, as the parser
 * hands them over.
 *
 * @since 0.4.0
 */
export interface Request {
  readonly usage: Usage.Usage
  readonly help: HelpDoc.HelpDoc
}

/**
 * The line `Command.run` runs again after taking `--log-level <level>` or `--log-level=<level>`.
 *
 * @since 0.6.0
 */
export const withoutLogLevel = (args: ReadonlyArray<string>): Array<string> =>
  args.filter((arg, i) => !(arg === "--log-level" || arg.startsWith("--log-level=") || args[i - 1] === "--log-level"))

/**
 * Whether `args` (the program's name, then what follows it on the command line) ask for help:
 * `--help` or `-h` wherever the parser takes it, or the program's name with no command. Anything
 * else, a usage error included, is `None`, and `Command.run` runs it as before.
 *
 * @since 0.4.0
 */
export const requested = <Name extends string, R, E, A extends { readonly subcommand: Option.Option<unknown> }>(
  command: Command.Command<Name, R, E, A>,
  args: ReadonlyArray<string>,
  config: CliConfig.CliConfig
): Effect.Effect<Option.Option<Request>, never, CliApp.CliApp.Environment> =>
  CommandDescriptor.parse(command.descriptor, args, config).pipe(
    Effect.flatMap((directive): Effect.Effect<Option.Option<Request>, never, CliApp.CliApp.Environment> => {
      if (directive._tag === "BuiltIn") {
        // `--log-level` is taken first: `Command.run` runs the rest of the line again without it, so the
        // question is asked of the rest too (`refundkit --log-level debug list --help`).
        if (directive.option._tag === "SetLogLevel") return requested(command, withoutLogLevel(args), config)
        return Effect.succeed(
          BuiltInOptions.isShowHelp(directive.option) ? Option.some({ usage: directive.option.usage, help: directive.option.helpDoc }) : Option.none()
        )
      }
      return Effect.succeed(
        Option.isNone(directive.value.subcommand) && directive.leftover.length === 0
          ? Option.some({ usage: CommandDescriptor.getUsage(command.descriptor), help: CommandDescriptor.getHelp(command.descriptor, config) })
          : Option.none()
      )
    }),
    Effect.orElseSucceed(() => Option.none<Request>())
  )

/**
 * The width a page is laid out for: the terminal's, within 40 to 100 columns (longer lines are
 * hard to read), or 80 on a pipe or a file.
 *
 * @since 0.4.0
 */
export const width = (stream: { readonly isTTY?: boolean | undefined; readonly columns?: number | undefined }): number =>
  stream.isTTY === true && stream.columns !== undefined ? Math.max(40, Math.min(stream.columns, 100)) : 80

// --- What the library writes, asked of the library ---

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    default:
      return spanText(span.value)
  }
}

/** The blocks of a document in order, sequences taken apart. */
const blocks = (doc: HelpDoc.HelpDoc): Array<HelpDoc.HelpDoc> =>
  doc._tag === "Sequence" ? [...blocks(doc.left), ...blocks(doc.right)] : doc._tag === "Empty" ? [] : [doc]

const paragraphs = (doc: HelpDoc.HelpDoc): Array<string> => blocks(doc).flatMap((block) => (block._tag === "Paragraph" ? [spanText(block.value)] : []))

/** The paragraphs of the one entry of a one-option (or one-argument) help document. */
const described = (doc: HelpDoc.HelpDoc): Array<string> => (doc._tag === "DescriptionList" ? paragraphs(doc.definitions[0][1]) : [])

/** The paragraphs the library adds to a plain entry when it is wrapped (made optional, repeated...). */
const addedBy = (plain: HelpDoc.HelpDoc, wrapped: HelpDoc.HelpDoc): Array<string> => described(wrapped).slice(described(plain).length)

// The library's sentences, learnt from the library rather than copied, so a rewording in a later
// @effect/cli is still recognised. A sentence not recognised is printed, never lost. (The library
// states no default value: `Options.withDefault` adds only "This setting is optional.", so a default
// is for the description to give, as "(default 8)".)
const saysOptional = new Set([
  ...addedBy(Options.getHelp(Options.text("x")), Options.getHelp(Options.optional(Options.text("x")))),
  ...addedBy(Args.getHelp(Args.text()), Args.getHelp(Args.optional(Args.text())))
])
const saysRepeated = new Set([
  ...addedBy(Options.getHelp(Options.text("x")), Options.getHelp(Options.repeated(Options.text("x")))),
  ...addedBy(Args.getHelp(Args.text()), Args.getHelp(Args.repeated(Args.text())))
])
// A type sentence the placeholder already says (`<text>`, `<integer>`, no placeholder for a flag).
const placeholderSays = new Set([
  Primitive.getHelp(Primitive.text),
  Primitive.getHelp(Primitive.boolean(Option.none())),
  Primitive.getHelp(Primitive.integer),
  Primitive.getHelp(Primitive.float)
].map(spanText))

// --- The entries of a page ---

/** An option or argument as the usage describes it. */
interface Leaf {
  readonly names: ReadonlyArray<string>
  readonly values: Option.Option<string>
  readonly optional: boolean
  readonly repeated: boolean
}

const leaves = (usage: Usage.Usage, optional = false, repeated = false): Array<Leaf> => {
  switch (usage._tag) {
    case "Empty":
    case "Mixed":
      return []
    case "Named":
      return [{ names: usage.names, values: usage.acceptedValues, optional, repeated }]
    case "Optional":
      return leaves(usage.usage, true, repeated)
    case "Repeated":
      return leaves(usage.usage, optional, true)
    // Either side of an alternation may be left out, as long as the other is given.
    case "Alternation":
      return [...leaves(usage.left, true, repeated), ...leaves(usage.right, true, repeated)]
    case "Concat":
      return [...leaves(usage.left, optional, repeated), ...leaves(usage.right, optional, repeated)]
  }
}

/**
 * One option a command takes, as its usage names it: its names and the values it takes (`None`
 * for a flag without a value; choices as the library writes them, `a | b | c`).
 *
 * @since 0.6.0
 */
export interface Flag {
  readonly names: ReadonlyArray<string>
  readonly values: Option.Option<string>
}

/**
 * The options of `command` (its own, and the global ones it takes) and the built-in ones every
 * command takes (`--log-level`, `--completions`, ...).
 *
 * @since 0.6.0
 */
export const flagsOf = (command: CommandDescriptor.Command<unknown>, config: CliConfig.CliConfig): ReadonlyArray<Flag> => {
  const usage = CommandDescriptor.getUsage(command)
  const builtIns = BuiltInOptions.builtInOptions(command, usage, CommandDescriptor.getHelp(command, config))
  return [...leaves(usage), ...leaves(Options.getUsage(builtIns))].filter((leaf) => leaf.names.some((name) => name.startsWith("-")))
}

/** `<a|b|c>` for choices (which the library writes `a | b | c`), `<text>`, or nothing for a flag. */
const placeholder = (values: Option.Option<string>): string =>
  Option.match(values, { onNone: () => "", onSome: (v) => ` <${v.split(" | ").join("|")}>` })

/** How the library labels the entry of `leaf` in a description list. */
const libraryLabel = (leaf: Leaf): string => spanText(HelpDoc.getSpan(Usage.getHelp(Usage.named(leaf.names, leaf.values))))

interface Entry {
  readonly label: string
  /** The description, the facts worth a reader's attention (`[required]`, `[repeatable]`) at its end. */
  readonly text: ReadonlyArray<string>
}

const entry = (leaf: Leaf, block: HelpDoc.HelpDoc, kind: "option" | "argument"): Entry => {
  const [typeSentence = "", ...rest] = paragraphs(block)
  const choices = Option.map(leaf.values, (values) => spanText(Primitive.getHelp(Primitive.choice(values.split(" | ").map((v) => [v, v] as [string, string])))))
  const kept = [
    ...(placeholderSays.has(typeSentence) || Option.contains(choices, typeSentence) ? [] : [typeSentence]),
    ...rest.filter((sentence) => !saysOptional.has(sentence) && !saysRepeated.has(sentence))
  ]
  // A repeated option may be given no times at all; one that must be given at least once keeps the library's sentence.
  const facts = [
    ...(kind === "option" && !leaf.optional && !leaf.repeated ? ["[required]"] : []),
    ...(kind === "argument" && leaf.optional ? ["[optional]"] : []),
    ...(leaf.repeated ? ["[repeatable]"] : [])
  ]
  const label = kind === "argument" ? leaf.names.join(", ") : `${leaf.names.join(", ")}${placeholder(leaf.values)}`
  return { label, text: facts.length === 0 ? kept : [...kept.slice(0, -1), [...kept.slice(-1), ...facts].join(" ")] }
}

/** The entries of a description list, each matched to its option or argument in the usage. */
const entries = (list: HelpDoc.DescriptionList, usage: Usage.Usage, kind: "option" | "argument"): Array<Entry> => {
  const known = leaves(usage).map((leaf) => ({ leaf, label: libraryLabel(leaf) }))
  return list.definitions.map(([span, block]) => {
    const label = spanText(span)
    // The library writes `(-f, --field text)...` for a repeated option with an alias: the label starts with the leaf's.
    const match = known.find((k) => label === k.label || label.startsWith(`${k.label}...`) || label.startsWith(`${k.label} `))
    return match === undefined ? { label, text: paragraphs(block) } : entry(match.leaf, block, kind)
  })
}

// --- Layout ---

// The lines are laid out here, not with @effect/printer's `reflow`: its layout of a long paragraph takes
// time exponential in the number of words (a 60-word summary took 0.2 s, 200 words never finished).

/**
 * `words` in lines of at most `width` columns: the first line starts with `first`, the others
 * with `rest`; a word longer than a line gets a line of its own.
 */
const wrap = (words: ReadonlyArray<string>, width: number, first: string, rest: string): Array<string> => {
  const lines: Array<string> = []
  let line = first
  let started = false
  for (const word of words) {
    if (started && line.length + 1 + word.length > width) {
      lines.push(line)
      line = rest + word
    } else line = started ? `${line} ${word}` : line + word
    started = true
  }
  return [...lines, line]
}

const wordsOf = (text: string) => text.split(" ").filter((word) => word !== "")

// A command to copy (`Example: refundkit ...`, `Or field by field: refundkit ...`) must stay one line.
const command = /(?:^|: )refundkit /

/** A description's paragraph: its prose wrapped to `width`, its example commands as written. */
const prose = (text: string, width: number): string =>
  text.split("\n").flatMap((line) => (command.test(line) ? [line] : wrap(wordsOf(line), width, "", ""))).join("\n")

const bold = (text: string) => AnsiDoc.render(Doc.annotate(Doc.text(text), Ansi.bold), { style: "pretty" })

const section = (title: string, lines: ReadonlyArray<string>) => [bold(title), ...lines].join("\n")

/** A label on its line, its text under it: labels as long as `--status <requested|pending|...>` fit any terminal. */
const entryLines = (list: ReadonlyArray<Entry>, width: number) =>
  list.flatMap((e) => [`  ${bold(e.label)}`, ...e.text.flatMap((paragraph) => wrap(wordsOf(paragraph), width, "      ", "      "))])

/**
 * The names of the options a command may give any number of times, none included. The usage says
 * only "repeated" (`--field <text>...`, which reads as required); the help list tells them apart:
 * the library labels such an option `(-f, --field text)...`, and one needed at least once `... 1+`.
 */
const repeatableFromNone = (help: HelpDoc.HelpDoc, usage: Usage.Usage): ReadonlySet<string> => {
  const labels = new Set(
    blocks(help).flatMap((block) => (block._tag === "DescriptionList" ? block.definitions.map(([span]) => spanText(span)) : []))
  )
  return new Set(leaves(usage).filter((leaf) => leaf.repeated && labels.has(`${libraryLabel(leaf)}...`)).flatMap((leaf) => leaf.names))
}

/**
 * A usage line as one types it, wrapped between its options: `$ refundkit list [--json] ...`; an
 * option that may be left out or repeated ({@link repeatableFromNone}) is `[--field <path=value>]...`.
 */
const usageLines = (usage: Usage.Usage, program: string, extra: ReadonlyArray<string>, width: number, anyTimes: ReadonlySet<string>) => {
  const words = (u: Usage.Usage): Array<string> => {
    switch (u._tag) {
      case "Empty":
        return []
      case "Mixed":
        return ["<command>"]
      case "Named":
        return [`${u.names.find((n) => n.startsWith("--")) ?? u.names.join(", ")}${placeholder(u.acceptedValues)}`]
      case "Optional":
        return [`[${words(u.usage).join(" ")}]`]
      case "Repeated": {
        const repeated = words(u.usage).join(" ")
        return [u.usage._tag === "Named" && u.usage.names.some((name) => anyTimes.has(name)) ? `[${repeated}]...` : `${repeated}...`]
      }
      case "Alternation":
        return [`${words(u.left).join(" ")} | ${words(u.right).join(" ")}`]
      case "Concat":
        return [...words(u.left), ...words(u.right)]
    }
  }
  const all = [...words(usage), ...extra]
  // A subcommand's usage starts with its own name (`list ...`), not with what one types.
  return wrap(all[0] === program ? all : [program, ...all], width, "$ ", "    ")
}

/** The program, as the page names it; `commands` are listed on the page of the program itself. */
export interface Program {
  readonly name: string
  readonly version: string
  /** The whole command tree. */
  readonly command: { readonly descriptor: CommandDescriptor.Command<unknown> }
  /** Its commands, in the order the page lists them. */
  readonly commands: ReadonlyArray<{ readonly descriptor: CommandDescriptor.Command<unknown> }>
}

const summaryOf = (command: CommandDescriptor.Command<unknown>, config: CliConfig.CliConfig): string => {
  const sections = blocks(CommandDescriptor.getHelp(command, config))
  const description = sections.findIndex((block) => block._tag === "Header" && spanText(block.value) === "DESCRIPTION")
  const first = sections[description + 1]
  return description >= 0 && first !== undefined && first._tag === "Paragraph" ? (spanText(first.value).split("\n", 1)[0] ?? "") : ""
}

const commandLines = (program: Program, config: CliConfig.CliConfig, width: number) => {
  const rows = program.commands.map((command) => ({
    name: [...CommandDescriptor.getNames(command.descriptor)].join(", "),
    summary: summaryOf(command.descriptor, config)
  }))
  const column = Math.max(...rows.map((row) => row.name.length)) + 4
  return rows.flatMap((row) => wrap(wordsOf(row.summary), width, `  ${row.name}`.padEnd(column), " ".repeat(column)))
}

/** The sections of a help document: each header with the blocks under it. */
const sectionsOf = (help: HelpDoc.HelpDoc) =>
  blocks(help).reduce<Array<{ readonly title: string; readonly body: Array<HelpDoc.HelpDoc> }>>((sections, block) => {
    if (block._tag === "Header") sections.push({ title: spanText(block.value), body: [] })
    else sections.at(-1)?.body.push(block)
    return sections
  }, [])

const listed = (body: ReadonlyArray<HelpDoc.HelpDoc>, usage: Usage.Usage, kind: "option" | "argument") =>
  body.flatMap((block) => (block._tag === "DescriptionList" ? entries(block, usage, kind) : []))

/**
 * The page for `request`, laid out for a terminal `width` columns wide, with ANSI styling (the
 * CLI's `Console` removes it where the stream is not a terminal).
 *
 * @since 0.4.0
 */
export const page = (request: Request, program: Program, config: CliConfig.CliConfig, width: number): string => {
  const sections = sectionsOf(request.help)
  // The program's own page is the one listing the commands.
  const top = sections.some((s) => s.title === "COMMANDS")
  const banner = HelpDoc.toAnsiText(HelpDoc.h1(Span.code(`${program.name} ${program.version}`))).trimEnd()
  const rendered = sections.map(({ body, title }) =>
    title === "COMMANDS"
      ? section(title, commandLines(program, config, width))
      : title === "OPTIONS" || title === "ARGUMENTS"
      ? section(title, entryLines(listed(body, request.usage, title === "OPTIONS" ? "option" : "argument"), width))
      : section(title, body.flatMap(paragraphs).map((text) => prose(text, width)))
  )
  // `--help`, `--version`, `--completions`, `--log-level` and `--wizard` work with every command: the program's page says so once.
  const builtIns = BuiltInOptions.builtInOptions(program.command.descriptor, request.usage, request.help)
  const builtInSection = section("BUILT-IN OPTIONS (any command)", entryLines(listed(blocks(Options.getHelp(builtIns)), Options.getUsage(builtIns), "option"), width))
  return [
    banner,
    section("USAGE", usageLines(request.usage, program.name, top ? ["<command>"] : [], width, repeatableFromNone(request.help, request.usage))),
    ...rendered,
    ...(top ? [builtInSection] : [])
  ].join("\n\n")
}
