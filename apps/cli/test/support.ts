import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

/** The built executable: the tests run what users run. */
export const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

/** A fresh directory for a test's ledger and files. */
export const tempDir = (): string => mkdtempSync(join(tmpdir(), "refundkit-cli-"))

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

// Only what the CLI reads: no REFUNDKIT_* from the developer's shell leaks into a test.
const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("REFUNDKIT_")) env[key] = value
  }
  return env
}

/** Runs `refundkit <args>` to completion, as another user where `uid` and `gid` say (the tests must run as root for that). */
export const run = (
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string
    readonly env?: Record<string, string>
    readonly uid?: number
    readonly gid?: number
    /** Give the command a stdin pipe that is never written to nor closed, as a script's would be. */
    readonly openStdin?: boolean
  } = {}
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const spawnOptions = {
      cwd: options.cwd,
      env: { ...baseEnv(), ...options.env },
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid })
    }
    const child = options.openStdin === true
      ? spawn(process.execPath, [bin, ...args], { ...spawnOptions, stdio: ["pipe", "pipe", "pipe"] })
      : spawn(process.execPath, [bin, ...args], { ...spawnOptions, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

/** Starts `refundkit <args>` and leaves it running. */
export const start = (args: ReadonlyArray<string>, options: { readonly cwd?: string; readonly env?: Record<string, string> } = {}): ChildProcess =>
  spawn(process.execPath, [bin, ...args], { cwd: options.cwd, env: { ...baseEnv(), ...options.env }, stdio: ["ignore", "pipe", "pipe"] })

/** The first JSON line `refundkit sandbox --json` prints. */
export interface SandboxInfo {
  readonly sandboxes: ReadonlyArray<{ readonly provider: string; readonly baseUrl: string; readonly url: string }>
  readonly env: Record<string, string>
}

/** Sandboxes in a process of their own, so they outlive a CLI process that is killed. */
export const startSandboxes = (): Promise<{
  readonly info: SandboxInfo
  readonly stop: () => void
  /** SIGKILL: the system closes the sandboxes' connections at once, calls still held in them included. */
  readonly kill: () => void
  readonly url: (provider: string) => string
}> =>
  new Promise((resolve, reject) => {
    const child = start(["sandbox", "--json"])
    const lines = createInterface({ input: child.stdout! })
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("exit", (code) => reject(new Error(`refundkit sandbox exited with ${code}: ${stderr}`)))
    lines.once("line", (line) => {
      const info = JSON.parse(line) as SandboxInfo
      resolve({
        info,
        stop: () => void child.kill("SIGTERM"),
        kill: () => void child.kill("SIGKILL"),
        url: (provider) => info.sandboxes.find((s) => s.provider === provider)!.url
      })
    })
  })

/** The sandbox's own tallies (`GET /__sandbox/stats`). */
export const stats = async <Extra extends object = {}>(url: string): Promise<{ readonly requests: Record<string, number>; readonly refundsPerformed: number } & Extra> => {
  const response = await fetch(`${url}/__sandbox/stats`)
  return (await response.json()) as { requests: Record<string, number>; refundsPerformed: number } & Extra
}

/** Injects a fault rule into a running sandbox. */
export const fault = async (url: string, rule: unknown): Promise<void> => {
  const response = await fetch(`${url}/__sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(rule) })
  if (!response.ok) throw new Error(`fault injection failed: ${response.status} ${await response.text()}`)
}

/** Clears every fault rule of a sandbox. */
export const clearFaults = async (url: string): Promise<void> => {
  await fetch(`${url}/__sandbox/faults`, { method: "DELETE" })
}

/** Parses JSON Lines. */
export const jsonLines = <A>(text: string): Array<A> =>
  text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as A)
