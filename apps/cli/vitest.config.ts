import { defineConfig, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// The tests run the built CLI as a subprocess, several times per test, on a shared machine.
// Two files at a time even on two cores (vitest's default there is one): a test mostly waits
// for the processes it started, and one at a time made this suite CI's longest (about 6 minutes).
export default mergeConfig(shared, defineConfig({ test: { testTimeout: 120_000, hookTimeout: 60_000, maxWorkers: 2, minWorkers: 1 } }))
