// Whether a refund's claimant has ended, judged from /proc against real processes: a child
// that is running, then killed; a zombie; children in namespaces of their own; pids, boots and
// machines that are not its own.
import { afterAll, afterEach, assert, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Claimants from "../src/internal/claimants.js"

/** A process as /proc shows it: its state letter, parent and start time (clock ticks after boot). */
const stat = (pid: number): { readonly state: string; readonly ppid: number; readonly start: string } | undefined => {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0]!, ppid: Number(fields[1]), start: fields[19]! }
  } catch {
    return undefined
  }
}

/** The processes below `root`, itself included, each with its start time. */
const tree = (root: number): ReadonlyArray<{ readonly pid: number; readonly start: string }> => {
  const parents = new Map<number, number>()
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const found = stat(Number(entry))
    if (found !== undefined) parents.set(Number(entry), found.ppid)
  }
  const below = new Set([root])
  for (let grew = true; grew;) {
    grew = false
    for (const [pid, ppid] of parents) {
      if (!below.has(pid) && below.has(ppid)) {
        below.add(pid)
        grew = true
      }
    }
  }
  return [...below].flatMap((pid) => {
    const found = stat(pid)
    return found === undefined ? [] : [{ pid, start: found.start }]
  })
}

/** Whether that process (same pid, same start time) still runs; a zombie has ended. */
const stillRuns = (seen: { readonly pid: number; readonly start: string }): boolean => {
  const found = stat(seen.pid)
  return found !== undefined && found.start === seen.start && found.state !== "Z"
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()))

const children: Array<ChildProcess> = []
// Every process the tests started, and those their children started (in namespaces of their own too),
// seen while they ran: afterAll checks that none outlived the tests.
const started: Array<{ readonly pid: number; readonly start: string; readonly command: string }> = []

/**
 * Kills `child` and its process group. Killing `unshare` alone left what it forked running, reparented,
 * in its namespaces (`--kill-child` ends those too; the group reaches them even without it).
 */
const stop = (child: ChildProcess): Promise<void> => {
  // Never started (its spawn failed): nothing to kill, and no exit to wait for.
  if (child.pid === undefined) return Promise.resolve()
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, "SIGKILL")
    } catch {
      child.kill("SIGKILL")
    }
  }
  return exited(child)
}

afterEach(async () => {
  await Promise.all(children.splice(0).map(stop))
})

afterAll(async () => {
  let left = started.filter(stillRuns)
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    left = left.filter(stillRuns)
  }
  assert.deepStrictEqual(left.map((p) => `${p.pid} ${p.command}`), [], "processes the tests started still run")
})

/**
 * A child, running until killed, once it has printed its first line (returned), with how many
 * processes it and what it started then made.
 */
const running = (
  command: string,
  args: ReadonlyArray<string>
): Promise<{ readonly child: ChildProcess; readonly line: string; readonly processes: number }> =>
  new Promise((resolve, reject) => {
    // Its own process group, which `stop` kills whole.
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], detached: true })
    children.push(child)
    child.once("error", reject)
    let out = ""
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (!out.includes("\n")) return
      child.stdout!.off("data", onData)
      const below = tree(child.pid!)
      for (const found of below) started.push({ ...found, command: [command, ...args].join(" ").slice(0, 80) })
      resolve({ child, line: out.slice(0, out.indexOf("\n")), processes: below.length })
    }
    child.stdout!.on("data", onData)
  })

const sleeper = async (): Promise<ChildProcess> =>
  (await running(process.execPath, ["-e", "setInterval(() => {}, 1000); process.stdout.write('up\\n')"])).child

// The name's fields: linux, boot, host, pid namespace, time namespace, pid, start time.
const field = { boot: 1, host: 2, pidNamespace: 3, timeNamespace: 4, pid: 5, start: 6 } as const

/** `name` with some of its fields replaced. */
const withFields = (name: string, replaced: Partial<Record<keyof typeof field, string>>) => {
  const parts = name.split(":")
  for (const [key, value] of Object.entries(replaced)) parts[field[key as keyof typeof field]] = value
  return parts.join(":")
}

const onLinux = process.platform === "linux"

// The built module, for children that name themselves as a claiming process would.
const built = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "internal", "claimants.js")
const namesItself = `import(${JSON.stringify(built)}).then((c) => { process.stdout.write(String(c.self()) + "\\n"); setInterval(() => {}, 1000) })`
const canUnshare = (flags: ReadonlyArray<string>) => onLinux && fs.existsSync(built) && spawnSync("unshare", [...flags, "true"]).status === 0

describe("claimants", () => {
  it.runIf(onLinux)("names this process by boot, machine, pid and time namespaces, pid and start time, and never takes it for ended", () => {
    const self = Claimants.self()
    assert.isDefined(self)
    const parts = self!.split(":")
    assert.strictEqual(parts.length, 7)
    assert.strictEqual(parts[0], "linux")
    assert.strictEqual(parts[field.pid], String(process.pid))
    assert.isFalse(Claimants.hasEnded(self!, "machine"))
    assert.isFalse(Claimants.hasEnded(self!, "anywhere"))
  })

  it.runIf(onLinux)("a child is alive while it runs and has ended once killed, on both reaches", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)
    assert.isDefined(name)
    assert.strictEqual(name!.split(":")[field.pid], String(child.pid))
    assert.isFalse(Claimants.hasEnded(name!, "machine"))
    assert.isFalse(Claimants.hasEnded(name!, "anywhere"))
    child.kill("SIGKILL")
    await exited(child)
    assert.isTrue(Claimants.hasEnded(name!, "machine"))
    assert.isTrue(Claimants.hasEnded(name!, "anywhere"))
  })

  it.runIf(onLinux)("a pid that now names another process (another start time) has ended, this process's pid included", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)!
    assert.isTrue(Claimants.hasEnded(withFields(name, { start: "1" }), "anywhere"), "a live pid, started at another time")
    assert.isTrue(Claimants.hasEnded(withFields(Claimants.self()!, { start: "1" }), "anywhere"), "this process's pid, an earlier process")
  })

  it.runIf(onLinux)("a zombie its parent has not reaped has ended", async () => {
    // The short sleep exits once the shell has exec'd the long one in its place, which never reaps it.
    const { line } = await running("sh", ["-c", "sleep 0.3 & echo $!; exec sleep 30"])
    const pid = Number(line)
    let stat = ""
    for (let i = 0; i < 200 && !/\) Z /.test(stat); i++) {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.match(stat, /\) Z /, "the child is a zombie")
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!
    assert.isTrue(Claimants.hasEnded(withFields(Claimants.self()!, { pid: String(pid), start }), "anywhere"))
  })

  it.runIf(onLinux)("another boot has ended on one machine (a SQLite file in WAL mode) and cannot be judged anywhere else", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)!
    const otherBoot = withFields(name, { boot: "00000000-0000-0000-0000-000000000000" })
    assert.isTrue(Claimants.hasEnded(otherBoot, "machine"))
    assert.isFalse(Claimants.hasEnded(otherBoot, "anywhere"))
  })

  it.runIf(onLinux)("another machine sharing the boot id (a clone of one snapshot), pid namespace or time namespace cannot be judged, even when its pid is gone here", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)!
    // Alive, and read through another time namespace's clock: its start time would differ.
    assert.isFalse(Claimants.hasEnded(withFields(name, { timeNamespace: "1", start: "1" }), "anywhere"))
    child.kill("SIGKILL")
    await exited(child)
    assert.isTrue(Claimants.hasEnded(name, "machine"))
    for (const other of [{ host: "0123@elsewhere" }, { pidNamespace: "1" }, { timeNamespace: "1" }]) {
      assert.isFalse(Claimants.hasEnded(withFields(name, other), "machine"), JSON.stringify(other))
    }
  })

  it.runIf(canUnshare(["--time", "--boottime", "1000", "--kill-child"]))("a live process in a time namespace of its own names itself, and is not taken for ended", async () => {
    const { child, line, processes } = await running("unshare", ["--time", "--boottime", "1000", "--kill-child", process.execPath, "-e", namesItself])
    assert.strictEqual(processes, 2, "unshare and the node it forked")
    assert.match(line, /^linux:/)
    assert.isFalse(Claimants.hasEnded(line, "machine"), line)
    await stop(child)
  })

  it.runIf(canUnshare(["--pid", "--kill-child"]))("a process whose /proc is another pid namespace's names nothing", async () => {
    // A new pid namespace without its own /proc (`--mount-proc`): /proc/self is not its pid there. Node runs as
    // pid 2 of it, under `sh` (1), so that the /proc it sees has a pid 2 of another process to mistake for it.
    const { child, line, processes } = await running("unshare", ["--pid", "--kill-child", "sh", "-c", "\"$1\" -e \"$2\"; true", "sh", process.execPath, namesItself])
    assert.strictEqual(processes, 3, "unshare, and sh and node in the namespace")
    assert.strictEqual(line, "undefined")
    await stop(child)
  })

  it("a name it does not read is never taken for ended", () => {
    for (const text of ["", "linux", "darwin:a:b:c:d:1:2", "linux:a:b:c:d:0:2", "linux:a:b:c:d:x:2", "linux:a:b:c:d:1", "linux:a:b:1:2"]) {
      assert.isFalse(Claimants.hasEnded(text, "machine"), text)
    }
  })

  it.runIf(onLinux)("endedAmong keeps the rows whose claimant has ended, skipping unnamed ones", async () => {
    const alive = await sleeper()
    const dead = await sleeper()
    const aliveName = Claimants.nameOf(alive.pid!)!
    const deadName = Claimants.nameOf(dead.pid!)!
    dead.kill("SIGKILL")
    await exited(dead)
    const rows = [
      { id: "a", claimedBy: aliveName },
      { id: "b", claimedBy: deadName },
      { id: "c", claimedBy: null },
      { id: "d", claimedBy: deadName }
    ]
    assert.deepStrictEqual(Claimants.endedAmong(rows, "anywhere").map((r) => r.id), ["b", "d"])
  })
})
