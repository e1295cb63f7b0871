// A PostgreSQL server of a test's own (initdb into a temp directory, on a free port), so the test can
// stop and start it without touching the machine's shared server on 5432 that other suites use.
import { execFile, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  /** `pg_ctl stop -m fast`: sessions are terminated, then the server shuts down. */
  stop(): Promise<void>
  /** `pg_ctl start -w`: resolves once the server accepts connections. */
  start(): Promise<void>
  /** Stops the server, keeps it down `downMillis`, starts it again. */
  restart(downMillis: number): Promise<void>
  /** Stops the server (if running) and removes its directory; safe to call more than once. */
  close(): Promise<void>
}

const ROOT_DIR = "/usr/lib/postgresql"

/**
 * The server's bin directory: REFUNDKIT_TEST_PG_BINDIR if set (another layout, another version),
 * else the newest under /usr/lib/postgresql; otherwise an error saying what is missing.
 */
const findBin = (): string => {
  const given = process.env.REFUNDKIT_TEST_PG_BINDIR
  if (given !== undefined && given !== "") {
    if (existsSync(join(given, "initdb")) && existsSync(join(given, "pg_ctl"))) return given
    throw new Error(`REFUNDKIT_TEST_PG_BINDIR=${given} holds no initdb and pg_ctl: a private PostgreSQL server needs both`)
  }
  const versions = existsSync(ROOT_DIR) ? readdirSync(ROOT_DIR).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  for (const v of versions) {
    const bin = join(ROOT_DIR, v, "bin")
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "pg_ctl"))) return bin
  }
  throw new Error(
    `a private PostgreSQL server needs initdb and pg_ctl under ${ROOT_DIR}/<version>/bin (found versions: ${JSON.stringify(versions)}); install the PostgreSQL server package (apt-get install postgresql) or set REFUNDKIT_TEST_PG_BINDIR`
  )
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

// initdb and pg_ctl refuse to run as root: as root, run them as the `postgres` OS user.
const asRoot = process.getuid?.() === 0
const command = (bin: string, tool: string, args: ReadonlyArray<string>): [string, Array<string>] =>
  asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, tool), ...args]] : [join(bin, tool), [...args]]

const run = (bin: string, tool: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<string>((resolve, reject) => {
    const [file, argv] = command(bin, tool, args)
    execFile(file, argv, { cwd, timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout)
      else reject(new Error(`${tool} ${args.join(" ")} failed: ${error.message}\n${stdout}\n${stderr}`))
    })
  })

/**
 * Creates and starts a private server. Its clean-up runs on `close()` and, should the test
 * process exit before that, on exit (an immediate stop), so no server outlives the test.
 */
export const startPrivatePostgres = async (): Promise<PrivatePostgres> => {
  const bin = findBin()
  const dir = mkdtempSync(join(tmpdir(), "refundkit-rel-pg-"))
  const data = join(dir, "data")
  const sockets = join(dir, "sockets")
  const log = join(dir, "server.log")
  mkdirSync(sockets)
  if (asRoot) {
    const owner = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" })
    const group = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" })
    if (owner.status !== 0 || group.status !== 0) throw new Error("running as root, a private PostgreSQL server needs the `postgres` OS user, which does not exist")
    for (const path of [dir, sockets]) chownSync(path, Number(owner.stdout.trim()), Number(group.stdout.trim()))
  }
  let closed = false
  let running = false
  // If the test process ends without close(), the server must not be left running.
  const onExit = () => {
    if (running) {
      const [file, argv] = command(bin, "pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
      spawnSync(file, argv, { cwd: dir, timeout: 10_000 })
    }
    rmSync(dir, { recursive: true, force: true })
  }
  process.once("exit", onExit)
  const port = await freePort()
  const start = async () => {
    // fsync off: the restart, not the disk, is under test (a fast stop still writes a checkpoint).
    const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`
    try {
      await run(bin, "pg_ctl", ["-D", data, "-l", log, "-o", options, "-w", "-t", "30", "start"], dir)
    } catch (e) {
      throw new Error(`${(e as Error).message}\nserver log: ${existsSync(log) ? readFileSync(log, "utf8").slice(-3000) : "(none)"}`)
    }
    running = true
  }
  const stop = async () => {
    await run(bin, "pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "30", "stop"], dir)
    running = false
  }
  try {
    await run(bin, "initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-locale", "-E", "UTF8", "--no-sync"], dir)
    await start()
  } catch (e) {
    onExit()
    process.removeListener("exit", onExit)
    throw e
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    restart: async (downMillis) => {
      await stop()
      await new Promise((r) => setTimeout(r, downMillis))
      await start()
    },
    close: async () => {
      if (closed) return
      closed = true
      // If this stop fails, the exit handler stays to try again when the process ends.
      if (running) await run(bin, "pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], dir)
      running = false
      rmSync(dir, { recursive: true, force: true })
      process.removeListener("exit", onExit)
    }
  }
}
