import { beforeEach, onTestFailed } from "vitest"

// An Effect that fails with a value that is not an Error (a test that flips a claim that
// succeeded) reaches vitest as an error whose stack is one line: its message, the value as
// JSON. With no "at" frame vitest 3 reads it as a Firefox stack, whose regular expression
// backtracks without end on a long line full of quotes: the failing test hung the run at
// 100% CPU instead of failing it. A frame line sends the stack to the V8 parser, which
// passes over the message line.
const frameless = /\n\s+at /

beforeEach(() => {
  onTestFailed(({ task }) => {
    for (const error of task.result?.errors ?? []) {
      if (typeof error.stack === "string" && !frameless.test(error.stack)) error.stack += "\n    at <a failed Effect> (effect:1:1)"
    }
  })
})
