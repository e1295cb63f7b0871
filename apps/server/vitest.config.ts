import { defineConfig, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// Two files at a time even on two cores (vitest's default there is one): a file mostly waits for
// its gateways, sandboxes and ledgers (117 s alone for 16 s of CPU; two at a time 45 s). Each file
// starts its own on port 0, with its own temp SQLite file or PostgreSQL schema. As many workers at
// least as at most: with fewer, vitest 3's fork pool has ended a worker still running a file (seen with
// apps/cli at three workers and minWorkers 1).
export default mergeConfig(shared, defineConfig({ test: { maxWorkers: 2, minWorkers: 2 } }))
