// Whether a refund's claimant has ended, judged from /proc against real processes: a child
// that is running, then killed; pids and boots that are not its own.
import { afterEach, assert, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Claimants from "../src/internal/claimants.js"

const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
})

const sleeper = (): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000); process.stdout.write('up\\n')"], { stdio: ["ignore", "pipe", "inherit"] })
    children.push(child)
    child.once("error", reject)
    child.stdout!.once("data", () => resolve(child))
  })

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()))

/** `name` with one of its five fields replaced. */
const withField = (name: string, index: number, value: string) => name.split(":").map((part, i) => (i === index ? value : part)).join(":")

const onLinux = process.platform === "linux"

describe("claimants", () => {
  it.runIf(onLinux)("names this process by boot, pid namespace, pid and start time, and never takes it for ended", () => {
    const self = Claimants.self()
    assert.isDefined(self)
    const parts = self!.split(":")
    assert.strictEqual(parts.length, 5)
    assert.strictEqual(parts[0], "linux")
    assert.strictEqual(parts[3], String(process.pid))
    assert.isFalse(Claimants.hasEnded(self!, "machine"))
    assert.isFalse(Claimants.hasEnded(self!, "anywhere"))
  })

  it.runIf(onLinux)("a child is alive while it runs and has ended once killed, on both reaches", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)
    assert.isDefined(name)
    assert.strictEqual(name!.split(":")[3], String(child.pid))
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
    assert.isTrue(Claimants.hasEnded(withField(name, 4, "1"), "anywhere"), "a live pid, started at another time")
    assert.isTrue(Claimants.hasEnded(withField(Claimants.self()!, 4, "1"), "anywhere"), "this process's pid, an earlier process")
  })

  it.runIf(onLinux)("another boot has ended on one machine (a SQLite file) and cannot be judged anywhere else (PostgreSQL)", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)!
    const otherBoot = withField(name, 1, "00000000-0000-0000-0000-000000000000")
    assert.isTrue(Claimants.hasEnded(otherBoot, "machine"))
    assert.isFalse(Claimants.hasEnded(otherBoot, "anywhere"))
  })

  it.runIf(onLinux)("another pid namespace (another container) cannot be judged, even when its pid is gone here", async () => {
    const child = await sleeper()
    const name = Claimants.nameOf(child.pid!)!
    child.kill("SIGKILL")
    await exited(child)
    assert.isTrue(Claimants.hasEnded(name, "machine"))
    assert.isFalse(Claimants.hasEnded(withField(name, 2, "1"), "machine"))
  })

  it("a name it does not read is never taken for ended", () => {
    for (const text of ["", "linux", "darwin:a:b:1:2", "linux:a:b:0:2", "linux:a:b:x:2", "linux:a:b:1"]) {
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
