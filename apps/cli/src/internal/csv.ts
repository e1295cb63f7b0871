/**
 * A streaming RFC 4180 CSV parser: quoted fields, doubled quotes, CRLF or LF, and
 * newlines inside quotes. It is fed text chunks and hands back one finished record
 * per `next()`, so a file of any size is parsed in constant memory and each record is
 * built only when its reader is ready for it (a whole chunk's worth of records built
 * at once outlives several young-generation collections and ends up as old-space
 * garbage).
 */

/** A CSV record and the physical line it started on (1-based). */
export interface CsvRecord {
  readonly fields: ReadonlyArray<string>
  readonly line: number
  /** The file ended inside a quoted cell: its closing quote is missing, and every line after it was read into it. */
  readonly unterminated?: boolean
}

/**
 * A pull parser. `feed` hands it the next chunk once `next` has returned undefined
 * (the previous chunk is used up); `end` says no chunk will follow, after which
 * `next` also returns the last record when the file does not end with a newline.
 */
export interface CsvParser {
  readonly feed: (chunk: string) => void
  readonly end: () => void
  readonly next: () => CsvRecord | undefined
}

const COMMA = 44
const LF = 10
const CR = 13
const QUOTE = 34

/** A new parser. */
export const make = (): CsvParser => {
  let text = ""
  let pos = 0
  let ended = false
  let flushed = false
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
  // A blank line is no record.
  const endRecord = (): CsvRecord | undefined => {
    endField()
    const record = fields.length === 1 && fields[0] === "" ? undefined : { fields, line: recordLine }
    fields = []
    return record
  }

  const next = (): CsvRecord | undefined => {
    const length = text.length
    while (pos < length) {
      const c = text.charCodeAt(pos)
      if (pendingCR) {
        pendingCR = false
        if (c === LF) {
          pos++
          continue
        }
      }
      if (quoted) {
        if (quotePending) {
          quotePending = false
          if (c === QUOTE) {
            field += "\""
            pos++
            continue
          }
          // The quote closed the field; this character is read as outside quotes.
          quoted = false
        } else {
          const close = text.indexOf("\"", pos)
          const stop = close === -1 ? length : close
          for (let i = text.indexOf("\n", pos); i !== -1 && i < stop; i = text.indexOf("\n", i + 1)) line++
          field += text.slice(pos, stop)
          pos = stop
          if (close !== -1) {
            quotePending = true
            pos++
          }
          continue
        }
      }
      if (c === COMMA) {
        endField()
        pos++
      } else if (c === LF || c === CR) {
        pos++
        const record = endRecord()
        line++
        recordLine = line
        if (c === CR) pendingCR = true
        if (record !== undefined) return record
      } else if (c === QUOTE && !fieldStarted && field === "") {
        quoted = true
        fieldStarted = true
        pos++
      } else {
        // A run of plain characters in one slice; a quote inside an unquoted field is kept as text.
        let stop = pos + 1
        while (stop < length) {
          const d = text.charCodeAt(stop)
          if (d === COMMA || d === LF || d === CR) break
          stop++
        }
        field += text.slice(pos, stop)
        fieldStarted = true
        pos = stop
      }
    }
    if (!ended || flushed) return undefined
    flushed = true
    if (quotePending) quoted = false
    const unterminated = quoted
    const record = field !== "" || fields.length > 0 || fieldStarted ? endRecord() : undefined
    return record !== undefined && unterminated ? { ...record, unterminated } : record
  }

  const feed = (chunk: string) => {
    text = pos < text.length ? text.slice(pos) + chunk : chunk
    pos = 0
  }

  return { feed, end: () => void (ended = true), next }
}
