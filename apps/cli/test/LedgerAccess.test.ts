import { assert, describe, it } from "@effect/vitest"
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { run, tempDir } from "./support.js"

// A ledger the process may read but not write. Root writes through a file's mode, so a test
// running as root runs the CLI as `nobody`, over files `nobody` owns.
const root = process.getuid?.() === 0
const user = root ? { uid: 65534, gid: 65534 } : {}
const own = (path: string) => {
  if (root) chownSync(path, 65534, 65534)
}

const keys = { REFUNDKIT_API_KEYS: "test-key-0123456789" }

const refused = (result: { readonly code: number | null; readonly stderr: string; readonly stdout: string }, named: string) => {
  assert.strictEqual(result.code, 1, result.stderr)
  assert.include(result.stderr, `cannot be written: ${named} is not writable by this process (EACCES)`)
  // One line for a person, not a stack trace.
  assert.notMatch(result.stderr + result.stdout, /^\s+at /m)
}

describe("a SQLite ledger this process cannot write", () => {
  const setup = async () => {
    const dir = tempDir()
    chmodSync(dir, 0o755)
    const ledgerDir = join(dir, "ledger")
    mkdirSync(ledgerDir)
    const file = join(ledgerDir, "ledger.db")
    assert.strictEqual((await run(["list", "--ledger", file])).code, 0)
    for (const path of [ledgerDir, file]) own(path)
    return { dir, ledgerDir, file }
  }

  it("a read-only file: list and serve refuse to start, naming it, and leave the ledger as it was", async () => {
    const { dir, file } = await setup()
    chmodSync(file, 0o444)
    refused(await run(["list", "--ledger", file], { cwd: dir, ...user }), file)
    // The gateway refuses before it listens: it never accepts a request it cannot record.
    refused(await run(["serve", "--port", "0", "--ledger", file], { cwd: dir, env: keys, ...user }), file)
    // SQLite created its -wal and -shm with the file's read-only mode, and the -shm kept the
    // ledger failing after the file was made writable again.
    assert.isFalse(existsSync(`${file}-wal`) || existsSync(`${file}-shm`), "no WAL files created")
    chmodSync(file, 0o644)
    const fixed = await run(["list", "--ledger", file], { cwd: dir, ...user })
    assert.strictEqual(fixed.code, 0, fixed.stderr)
    rmSync(dir, { recursive: true, force: true })
  })

  it("a read-only directory, where SQLite cannot create the WAL: refused naming the directory", async () => {
    const { dir, ledgerDir, file } = await setup()
    chmodSync(ledgerDir, 0o555)
    if (root) chownSync(ledgerDir, 0, 0)
    for (const args of [["list"], ["serve", "--port", "0"]]) {
      const result = await run([...args, "--ledger", file], { cwd: dir, env: keys, ...user })
      refused(result, `its directory ${ledgerDir}`)
      assert.include(result.stderr, "ledger.db-wal and -shm")
    }
    chmodSync(ledgerDir, 0o755)
    rmSync(dir, { recursive: true, force: true })
  })
})
