import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { ViteUserConfig } from "vitest/config"

const root = path.dirname(fileURLToPath(import.meta.url))

// Tests import sibling packages from their sources, so a test run never needs a prior build.
export const shared: ViteUserConfig = {
  resolve: {
    alias: [
      { find: /^@refundkit\/([a-z-]+)$/, replacement: path.join(root, "packages/$1/src/index.ts") },
      { find: /^@refundkit\/([a-z-]+)\/([A-Za-z]+)$/, replacement: path.join(root, "packages/$1/src/$2.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    // One module graph per worker, not one per test file: each file used to load `effect` and our
    // sources again, most of a package's CPU in CI (core's tests: 17 s of CPU isolated, 6.6 s not).
    // Nothing in our tests keeps state in a module, and every file starts and stops what it uses.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fakeTimers: { toFake: undefined },
    setupFiles: [path.join(root, "vitest.setup.ts")]
  }
}
