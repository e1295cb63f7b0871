import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// The reliability suite: black-box, against the BUILT binaries (apps/*/dist), over 127.0.0.1.
// Two files at a time, each in a process of its own (forks): a file mostly waits (on its sandbox's
// faults, its gateways, PostgreSQL), and one at a time used under half of CI's 2 cores (about 240 s,
// 110 s of CPU; two at a time about 175 s). Files share nothing: each starts its own sandbox and
// gateways on free ports, its own ledger files or PostgreSQL schema (dbrestart its own server), and
// takes its own block of transaction ids.
export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: {
    include: ["reliability/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    minWorkers: 2,
    reporters: ["default"],
    // As every package's tests (vitest.shared.ts): a failing Effect must fail the run, not hang it.
    setupFiles: [fileURLToPath(new URL("../vitest.setup.ts", import.meta.url))]
  }
})
