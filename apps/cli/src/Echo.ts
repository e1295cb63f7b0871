/**
 * A command echoed back for the user to run next (a bulk run's resume line, a list's next
 * page): each argument quoted for a POSIX shell, and no secret printed.
 *
 * @since 0.1.0
 */

/**
 * One argument as a POSIX shell reads it back: bare when it is plain, single-quoted otherwise.
 *
 * @since 0.1.0
 */
export const quote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)

/**
 * The argument with a postgres:// ledger URL's password masked, also where the URL is an
 * option's inline value (`--ledger=postgres://...`), which is no URL as a whole.
 *
 * @since 0.1.0
 */
export const masked = (arg: string): string => {
  const inline = /^(--[^=]+=)(.*)$/s.exec(arg)
  if (inline !== null) return `${inline[1]}${masked(inline[2]!)}`
  if (!arg.includes("://") || !URL.canParse(arg)) return arg
  const url = new URL(arg)
  if (url.password === "" && ![...url.searchParams.keys()].some((name) => name.toLowerCase() === "password")) return arg
  if (url.password !== "") url.password = "***"
  for (const name of [...url.searchParams.keys()]) if (name.toLowerCase() === "password") url.searchParams.set(name, "***")
  return url.toString()
}
