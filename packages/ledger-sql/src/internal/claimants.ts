/**
 * Who claimed a refund: the process that wrote its row, named so that another process on the
 * same machine can tell whether it has ended. Recovery otherwise has to wait out a grace and
 * the claimant's last lease before it may take a refund left in `requested`, since a live
 * process's call may still be out; a claimant known to have ended will never record an answer,
 * so its refunds are in doubt at once (a gateway restarted after a crash, a bulk file re-run
 * after a kill).
 *
 * A process is named by the kernel's boot id, its pid namespace, its pid and its start time
 * (from `/proc`, so Linux only): the pid alone could since belong to another process, and pids
 * of another namespace (another container) or another boot say nothing here. Where `/proc`
 * cannot be read, a process is not named and its refunds are recovered by grace and lease only.
 *
 * @internal
 */
import * as fs from "node:fs"

/** How far a ledger's claimants may be: on one machine (a SQLite file), or anywhere (PostgreSQL). */
export type Reach = "machine" | "anywhere"

interface Named {
  readonly boot: string
  readonly pidNamespace: string
  readonly pid: number
  readonly start: string
}

const prefix = "linux"

const format = (named: Named): string => `${prefix}:${named.boot}:${named.pidNamespace}:${named.pid}:${named.start}`

const parse = (text: string): Named | undefined => {
  const parts = text.split(":")
  if (parts.length !== 5 || parts[0] !== prefix) return undefined
  const pid = Number(parts[3])
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  return { boot: parts[1]!, pidNamespace: parts[2]!, pid, start: parts[4]! }
}

const readOrUndefined = (read: () => string): string | undefined => {
  try {
    return read()
  } catch {
    return undefined
  }
}

// `/proc/<pid>/stat`: the command name is in parentheses and may hold spaces, so fields are
// counted after its closing one; the state is field 3 and the start time (clock ticks since
// boot) field 22.
const statOf = (pid: number | "self"): { readonly state: string; readonly start: string } | undefined => {
  const text = readOrUndefined(() => fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  if (text === undefined) return undefined
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
  const state = fields[0]
  const start = fields[19]
  return state === undefined || start === undefined || !/^\d+$/.test(start) ? undefined : { state, start }
}

const bootId = (): string | undefined =>
  readOrUndefined(() => fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()) || undefined

const pidNamespaceOf = (pid: number | "self"): string | undefined => {
  const link = readOrUndefined(() => fs.readlinkSync(`/proc/${pid}/ns/pid`))
  return link === undefined ? undefined : /^pid:\[(\d+)\]$/.exec(link)?.[1]
}

/** The name of process `pid` as this process sees it (a child, in tests), or `undefined` off Linux. */
export const nameOf = (pid: number | "self"): string | undefined => {
  const boot = bootId()
  const pidNamespace = pidNamespaceOf(pid)
  const stat = statOf(pid)
  if (boot === undefined || pidNamespace === undefined || stat === undefined) return undefined
  return format({ boot, pidNamespace, pid: pid === "self" ? process.pid : pid, start: stat.start })
}

let own: { readonly name: string | undefined } | undefined

/** This process's name, read once: what a claim writes as `claimed_by`. */
export const self = (): string | undefined => (own ??= { name: nameOf("self") }).name

// Signal 0 checks that the pid exists without sending anything; only ESRCH says it does not
// (EPERM: it exists, and belongs to another user).
const exists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return !(typeof error === "object" && error !== null && "code" in error && error.code === "ESRCH")
  }
}

/**
 * Whether the process `claimedBy` names has ended, as far as this process can tell; `false`
 * when it cannot (another machine, another pid namespace, `/proc` unreadable). With `reach`
 * "machine" (a SQLite ledger, only ever opened on one machine), a claimant of another boot
 * has ended: the machine restarted since.
 */
export const hasEnded = (claimedBy: string, reach: Reach): boolean => {
  const them = parse(claimedBy)
  const us = parse(self() ?? "")
  if (them === undefined || us === undefined) return false
  if (them.boot !== us.boot) return reach === "machine"
  if (them.pidNamespace !== us.pidNamespace) return false
  if (them.pid === us.pid) return them.start !== us.start
  if (!exists(them.pid)) return true
  // The pid exists: ended only if it now names another process, or a zombie its parent has not reaped yet.
  const stat = statOf(them.pid)
  return stat !== undefined && (stat.start !== them.start || stat.state === "Z" || stat.state === "X")
}

/** `hasEnded` over many refunds' claimants, each looked up once. */
export const endedAmong = <A extends { readonly claimedBy: string | null }>(rows: ReadonlyArray<A>, reach: Reach): ReadonlyArray<A> => {
  const verdicts = new Map<string, boolean>()
  return rows.filter((row) => {
    if (row.claimedBy === null) return false
    let ended = verdicts.get(row.claimedBy)
    if (ended === undefined) {
      ended = hasEnded(row.claimedBy, reach)
      verdicts.set(row.claimedBy, ended)
    }
    return ended
  })
}
