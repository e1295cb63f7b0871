// What the executables' bundles (scripts/bundle-bin.mjs) leave outside, shared with the check
// that reads the bundles back (scripts/checks/bundles.mjs).

/** Loaded by name at run time: each must be in the `dependencies` of every app that bundles. */
export const external = ["better-sqlite3"]

/**
 * Packages that bundled code asks for inside a `try` and does without: pg's native driver
 * (only behind `pg.native`, which we never touch) and ws's optional accelerators.
 */
export const optional = ["pg-native", "bufferutil", "utf-8-validate"]
