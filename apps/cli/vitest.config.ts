import { defineConfig, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// The tests run the built CLI as a subprocess, several times per test, on a shared machine.
// Three files at a time even on two cores (vitest's default there is one): a test mostly waits
// for the processes it started (and the Airalo ones for rate-limit windows), and one at a time
// made this suite CI's longest (about 6 minutes); two at a time still left a core idle half the
// time (CPU 177 s in 202 s) and kept it the last task of `pnpm test`.
export default mergeConfig(shared, defineConfig({ test: { testTimeout: 120_000, hookTimeout: 60_000, maxWorkers: 3, minWorkers: 3 } }))
