/**
 * Whether what the CLI prints may carry ANSI styling. `@effect/cli` styles its help and
 * usage errors with escape codes whatever the stream is, so `refundkit list --help | less`
 * or `> help.txt` showed `[0;1m` among the words. The CLI prints through Effect's
 * `Console`, so one wrapped `Console` decides for everything: styling stays on a terminal,
 * and goes on a pipe or a file, or wherever `NO_COLOR` is set (no-color.org);
 * `FORCE_COLOR` keeps it on a pipe.
 *
 * @since 0.1.0
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

const escapes = /\x1b\[[0-9;]*[A-Za-z]/g

/**
 * `text` without its ANSI escape sequences.
 *
 * @since 0.1.0
 */
export const strip = (text: string): string => text.replace(escapes, "")

/**
 * Whether a stream gets styling: `FORCE_COLOR` (set, not `0`) says yes, then `NO_COLOR`
 * (set, not empty) says no, then whether the stream is a terminal.
 *
 * @since 0.1.0
 */
export const styled = (stream: { readonly isTTY?: boolean | undefined }, env: Readonly<Record<string, string | undefined>>): boolean => {
  const force = env.FORCE_COLOR
  if (force !== undefined && force !== "" && force !== "0") return true
  const none = env.NO_COLOR
  if (none !== undefined && none !== "") return false
  return stream.isTTY === true
}

// `@effect/cli` shows a subcommand's usage under its own name (`$ list [--json] ...`),
// which is not what anyone types: its help documents open with the program's banner line.
const usageLine = /^((?:\x1b\[[0-9;]*m)*)\$ (?!refundkit\b)/gm
const namesTheProgram = (name: string, text: string) => {
  const firstLine = strip(text).split("\n", 1)[0]
  return firstLine !== undefined && firstLine.trim() === name
}

/**
 * `text` as it should reach a stream: a help document's usage lines name the program, and
 * the escapes go where the stream is not styled.
 *
 * @since 0.1.0
 */
export const render = (text: string, options: { readonly name: string; readonly styled: boolean }): string => {
  const named = namesTheProgram(options.name, text) ? text.replace(usageLine, `$1$ ${options.name} `) : text
  return options.styled ? named : strip(named)
}

const renderAll = (args: ReadonlyArray<unknown>, options: { readonly name: string; readonly styled: boolean }) =>
  args.map((arg) => (typeof arg === "string" ? render(arg, options) : arg))

/**
 * Runs `self` with a `Console` whose `log` (stdout) and `error` (stderr) render their text
 * for the stream they write to.
 *
 * @since 0.1.0
 */
export const forStreams = (name: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) => {
    const out = { name, styled: styled(process.stdout, process.env) }
    const err = { name, styled: styled(process.stderr, process.env) }
    const wrapped: Console.Console = {
      ...console,
      log: (...args) => console.log(...renderAll(args, out)),
      error: (...args) => console.error(...renderAll(args, err)),
      unsafe: {
        ...console.unsafe,
        log: (...args) => console.unsafe.log(...renderAll(args, out)),
        error: (...args) => console.unsafe.error(...renderAll(args, err))
      }
    }
    return Console.withConsole(self, wrapped)
  })
