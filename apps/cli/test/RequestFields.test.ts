// The fields the CLI offers a user are the ones a request may carry: a field the plugin fills in
// itself (Exirom's requestId, from the idempotency key) is refused whenever it is sent, so it is
// never listed as one of "its fields".
import { assert, describe, it } from "@effect/vitest"
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { run, tempDir } from "./support.js"

describe("refundkit bulk: the header check", () => {
  it("names Exirom's fields without requestId, for a stray column and for a requestId column alike", async () => {
    const dir = tempDir()
    try {
      const fields = "its fields are transactionId, amount, reason, callbackUrl, metadata, mid, currency (and idempotency_key for each row's idempotency key, originalAmounts.<target> for a target's original amount)"
      for (const column of ["foo", "requestId"]) {
        writeFileSync(join(dir, `${column}.csv`), `transactionId,amount,reason,${column}\n12345,1.00,customer_request,x\n`)
        const result = await run(["bulk", `${column}.csv`, "--provider", "exirom", "--sandbox", "--dry-run"], { cwd: dir })
        assert.strictEqual(result.code, 2, result.stderr)
        assert.include(result.stderr, `column "${column}" is not a field of the provider's request; ${fields}.`)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
