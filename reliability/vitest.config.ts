import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// The reliability suite: black-box, against the BUILT binaries (apps/*/dist), over 127.0.0.1.
// Files run one after another: each starts its own sandbox and gateways on a 2-core machine.
export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: {
    include: ["reliability/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: "forks",
    reporters: ["default"],
    // As every package's tests (vitest.shared.ts): a failing Effect must fail the run, not hang it.
    setupFiles: [fileURLToPath(new URL("../vitest.setup.ts", import.meta.url))]
  }
})
