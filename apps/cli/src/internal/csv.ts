/**
 * A streaming RFC 4180 CSV parser: quoted fields, doubled quotes, CRLF or LF, and
 * newlines inside quotes. It is fed text chunks and hands back finished records, so a
 * file of any size is parsed in constant memory.
 */

/** A CSV record and the physical line it started on (1-based). */
export interface CsvRecord {
  readonly fields: ReadonlyArray<string>
  readonly line: number
}

/** A parser fed with chunks; `end` flushes the last record. */
export interface CsvParser {
  readonly push: (chunk: string) => ReadonlyArray<CsvRecord>
  readonly end: () => ReadonlyArray<CsvRecord>
}

/** A new parser. */
export const make = (): CsvParser => {
  let field = ""
  let fields: Array<string> = []
  let quoted = false
  // After a closing quote inside a quoted field we cannot know yet whether it is an escape ("").
  let quotePending = false
  let fieldStarted = false
  let line = 1
  let recordLine = 1
  let pendingCR = false

  const endField = () => {
    fields.push(field)
    field = ""
    fieldStarted = false
  }
  const endRecord = (out: Array<CsvRecord>) => {
    endField()
    // A blank line is no record.
    if (!(fields.length === 1 && fields[0] === "")) out.push({ fields, line: recordLine })
    fields = []
  }

  const push = (chunk: string): ReadonlyArray<CsvRecord> => {
    const out: Array<CsvRecord> = []
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!
      if (pendingCR) {
        pendingCR = false
        if (c === "\n") continue
      }
      if (quoted) {
        if (quotePending) {
          quotePending = false
          if (c === "\"") {
            field += "\""
            continue
          }
          quoted = false
        } else if (c === "\"") {
          quotePending = true
          continue
        } else {
          if (c === "\n") line++
          field += c
          continue
        }
      }
      if (c === ",") endField()
      else if (c === "\n" || c === "\r") {
        endRecord(out)
        line++
        recordLine = line
        if (c === "\r") pendingCR = true
      } else if (c === "\"" && !fieldStarted && field === "") {
        quoted = true
        fieldStarted = true
      } else {
        field += c
        fieldStarted = true
      }
    }
    return out
  }

  const end = (): ReadonlyArray<CsvRecord> => {
    const out: Array<CsvRecord> = []
    if (quotePending) quoted = false
    if (field !== "" || fields.length > 0 || fieldStarted) endRecord(out)
    return out
  }

  return { push, end }
}
