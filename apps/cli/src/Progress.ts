/**
 * Progress of a bulk run on stderr: a redrawn bar on a terminal (done / failed / in
 * doubt, rate, ETA), plain periodic lines when stderr is a file or a pipe.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/**
 * The running tallies a bulk run updates as rows finish.
 *
 * @since 0.1.0
 */
export interface Tally {
  ok: number
  declined: number
  failed: number
  inDoubt: number
  invalid: number
}

/**
 * An empty tally.
 *
 * @since 0.1.0
 */
export const emptyTally = (): Tally => ({ ok: 0, declined: 0, failed: 0, inDoubt: 0, invalid: 0 })

const doneOf = (t: Tally) => t.ok + t.declined + t.failed + t.inDoubt + t.invalid

const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "--"
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

/**
 * One progress line: counts, rate and ETA (`total` is the row count from the validation pass).
 *
 * @since 0.1.0
 */
export const line = (tally: Tally, total: number, elapsedMillis: number, bar: boolean): string => {
  const done = doneOf(tally)
  const rate = elapsedMillis > 0 ? (done * 1000) / elapsedMillis : 0
  const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY
  const share = total === 0 ? 1 : done / total
  const width = 24
  const filled = Math.min(width, Math.round(share * width))
  const head = bar ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : ""
  return `${head}${done}/${total} rows (${Math.floor(share * 100)}%)  ok ${tally.ok}  declined ${tally.declined}  failed ${tally.failed}  in doubt ${tally.inDoubt}  ${Math.round(rate * 10) / 10} rows/s  ETA ${duration(eta)}`
}

/**
 * Reports `tally` on stderr until the scope closes, then prints the final line.
 *
 * @since 0.1.0
 */
export const report = (tally: Tally, total: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const tty = process.stderr.isTTY === true
    const started = Date.now()
    const draw = Effect.sync(() => {
      const text = line(tally, total, Date.now() - started, tty)
      // Cut to the terminal's width so the bar redraws in place instead of wrapping.
      const columns = process.stderr.columns
      if (tty) process.stderr.write(`\r\x1b[2K${columns !== undefined && columns > 20 ? text.slice(0, columns - 1) : text}`)
      else process.stderr.write(`progress: ${text}\n`)
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        const text = line(tally, total, Date.now() - started, tty)
        process.stderr.write(tty ? `\r\x1b[2K${text}\n` : `progress: ${text}\n`)
      })
    )
    yield* draw.pipe(Effect.repeat(Schedule.spaced(tty ? "200 millis" : "5 seconds")), Effect.delay(tty ? "200 millis" : "5 seconds"), Effect.forkScoped)
  })
