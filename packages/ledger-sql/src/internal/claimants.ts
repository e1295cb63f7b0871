/**
 * Who claimed a refund: the process that wrote its row, named so that another process on the
 * same machine can tell whether it has ended. Recovery otherwise has to wait out a grace and
 * the claimant's last lease before it may take a refund left in `requested`, since a live
 * process's call may still be out; a claimant known to have ended will never record an answer,
 * so its refunds are in doubt at once (a gateway restarted after a crash, a bulk file re-run
 * after a kill).
 *
 * A process is named from `/proc` (so Linux only) by the kernel's boot id, the machine (its
 * machine id and host name), its pid and time namespaces, its pid and its start time: the pid
 * alone could since belong to another process, and pids of another namespace (another
 * container) or another machine say nothing here. A start time is only compared within one time
 * namespace, since `/proc` shifts it by the reader's. Where `/proc` cannot be read, or is not
 * this process's own (a `/proc` of another pid namespace mounted here), a process is neither
 * named nor judged, and its refunds are recovered by grace and lease only.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"

/**
 * How far a ledger's claimants may be: on one machine (a SQLite file in WAL mode, which needs
 * one machine's shared memory), or anywhere (PostgreSQL, or a SQLite file not in WAL mode, which
 * may be on a network file system).
 */
export type Reach = "machine" | "anywhere"

interface Named {
  readonly boot: string
  readonly host: string
  readonly pidNamespace: string
  readonly timeNamespace: string
  readonly pid: number
  readonly start: string
}

const prefix = "linux"

const format = (named: Named): string =>
  [prefix, named.boot, named.host, named.pidNamespace, named.timeNamespace, named.pid, named.start].join(":")

const parse = (text: string): Named | undefined => {
  const parts = text.split(":")
  if (parts.length !== 7 || parts[0] !== prefix) return undefined
  const pid = Number(parts[5])
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  return { boot: parts[1]!, host: parts[2]!, pidNamespace: parts[3]!, timeNamespace: parts[4]!, pid, start: parts[6]! }
}

const readOrUndefined = (read: () => string): string | undefined => {
  try {
    return read()
  } catch {
    return undefined
  }
}

// `/proc/<pid>/stat`: the command name is in parentheses and may hold spaces and parentheses, so
// fields are counted after the last closing one; the state is field 3 and the start time (clock
// ticks since boot, shifted by the reader's time namespace) field 22.
const statOf = (pid: number): { readonly state: string; readonly start: string } | undefined => {
  const text = readOrUndefined(() => fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  if (text === undefined) return undefined
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
  const state = fields[0]
  const start = fields[19]
  return state === undefined || start === undefined || !/^\d+$/.test(start) ? undefined : { state, start }
}

// A `/proc` of another pid namespace (the host's, mounted into a container, or one `unshare` left
// unmounted) numbers processes otherwise than `kill` does here: through it no process can be named
// or judged.
const procIsOurs = (): boolean => readOrUndefined(() => fs.readlinkSync("/proc/self")) === String(process.pid)

const namespaceOf = (pid: number, kind: "pid" | "time"): string | undefined => {
  const link = readOrUndefined(() => fs.readlinkSync(`/proc/${pid}/ns/${kind}`))
  return link === undefined ? undefined : new RegExp(`^${kind}:\\[(\\d+)\\]$`).exec(link)?.[1]
}

const oneLine = (path: string): string => readOrUndefined(() => fs.readFileSync(path, "utf8").trim()) ?? ""

// Machines cloned from one running snapshot share a boot id; their machine ids or names tell them apart.
// Hashed, as the boot id loses its dashes: the name is written on every refund.
const hostOf = (): string => createHash("sha256").update(`${oneLine("/etc/machine-id")}\n${os.hostname()}`).digest("hex").slice(0, 12)

/** The name of process `pid` as this process sees it (a child, in tests), or `undefined` where it cannot be named. */
export const nameOf = (pid: number): string | undefined => {
  if (!procIsOurs()) return undefined
  const boot = oneLine("/proc/sys/kernel/random/boot_id").replaceAll("-", "")
  const pidNamespace = namespaceOf(pid, "pid")
  // Kernels before 5.6 have no time namespaces: every process then reads start times alike.
  const timeNamespace = namespaceOf(pid, "time") ?? "-"
  const stat = statOf(pid)
  if (!/^[0-9a-f]+$/.test(boot) || pidNamespace === undefined || stat === undefined) return undefined
  return format({ boot, host: hostOf(), pidNamespace, timeNamespace, pid, start: stat.start })
}

let own: { readonly name: string | undefined } | undefined

/** This process's name, read once: what a claim writes as `claimed_by`. */
export const self = (): string | undefined => (own ??= { name: nameOf(process.pid) }).name

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
 * when it cannot (another machine, another pid or time namespace, `/proc` unreadable or not
 * ours). With `reach` "machine", a claimant of another boot has ended: the machine restarted.
 */
export const hasEnded = (claimedBy: string, reach: Reach): boolean => {
  const them = parse(claimedBy)
  const us = parse(self() ?? "")
  if (them === undefined || us === undefined || !procIsOurs()) return false
  if (them.boot !== us.boot) return reach === "machine"
  if (them.host !== us.host || them.pidNamespace !== us.pidNamespace || them.timeNamespace !== us.timeNamespace) return false
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
