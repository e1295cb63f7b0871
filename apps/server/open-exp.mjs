import { SqlLedger } from "@refundkit/ledger-sql"
import { Effect } from "effect"
const url = process.argv[2]
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const l = yield* SqlLedger.SqlLedger
  yield* l.ready
  console.log("ok", process.pid)
}).pipe(Effect.provide(SqlLedger.layer({ url }))))).catch((e) => console.log("FAIL", String(e).slice(0, 300)))
