// `refundkit list --target` finds a refund by any spelling of its target the plugin accepts:
// Airpay's "010264" and 10264 are one transaction, recorded as "10264".
import { assert, describe, it } from "@effect/vitest"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { run, tempDir } from "./support.js"

describe("refundkit list --target", () => {
  it("finds an Airpay refund by its ap_transactionid with or without leading zeros", async () => {
    const dir = tempDir()
    try {
      const ledger = join(dir, "ledger.db")
      const created = await run([
        "create", "airpay", "--json", "--sandbox", "--ledger", ledger, "--idempotency-key", "padded-1",
        "--data", JSON.stringify({ transactions: [{ ap_transactionid: "010264", amount: "1.00" }] })
      ], { cwd: dir })
      assert.strictEqual(created.code, 0, created.stderr)
      const id = (JSON.parse(created.stdout) as { readonly id: string }).id
      for (const target of ["010264", "10264"]) {
        const listed = await run(["list", "--provider", "airpay", "--target", target, "--json", "--sandbox", "--ledger", ledger], { cwd: dir })
        assert.strictEqual(listed.code, 0, listed.stderr)
        assert.deepStrictEqual((JSON.parse(listed.stdout) as { readonly items: ReadonlyArray<{ readonly id: string }> }).items.map((r) => r.id), [id], target)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
