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
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fakeTimers: { toFake: undefined },
    setupFiles: [path.join(root, "vitest.setup.ts")]
  }
}
