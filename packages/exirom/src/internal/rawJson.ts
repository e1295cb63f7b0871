// The top-level members of a JSON object as their raw source text. Exirom signs numbers
// as they appear in the body ("200.0"); JSON.parse would turn that into 200 and break
// the checksum, so signature fields are read from the text itself.

const isSpace = (c: string | undefined) => c === " " || c === "\n" || c === "\r" || c === "\t"

export const members = (text: string): ReadonlyMap<string, string> | undefined => {
  let i = 0
  const skip = () => {
    while (isSpace(text[i])) i++
  }
  const string = (): string | undefined => {
    if (text[i] !== "\"") return undefined
    const start = i++
    while (i < text.length && text[i] !== "\"") i += text[i] === "\\" ? 2 : 1
    if (i >= text.length) return undefined
    return text.slice(start, ++i)
  }
  const value = (): string | undefined => {
    if (text[i] === "\"") return string()
    const start = i
    if (text[i] === "{" || text[i] === "[") {
      let depth = 0
      while (i < text.length) {
        const c = text[i]
        if (c === "\"") {
          if (string() === undefined) return undefined
          continue
        }
        if (c === "{" || c === "[") depth++
        if (c === "}" || c === "]") depth--
        i++
        if (depth === 0) return text.slice(start, i)
      }
      return undefined
    }
    while (i < text.length && text[i] !== "," && text[i] !== "}" && !isSpace(text[i])) i++
    return i > start ? text.slice(start, i) : undefined
  }
  const out = new Map<string, string>()
  skip()
  if (text[i++] !== "{") return undefined
  skip()
  if (text[i] === "}") return out
  while (i < text.length) {
    skip()
    const key = string()
    if (key === undefined) return undefined
    skip()
    if (text[i++] !== ":") return undefined
    skip()
    const raw = value()
    if (raw === undefined) return undefined
    try {
      out.set(JSON.parse(key) as string, raw)
    } catch {
      return undefined
    }
    skip()
    const next = text[i++]
    if (next === "}") {
      skip()
      return i === text.length ? out : undefined
    }
    if (next !== ",") return undefined
  }
  return undefined
}

// A member as it is signed: a string's value, any other literal's source text, "" when absent or null.
export const signed = (fields: ReadonlyMap<string, string>, key: string): string | undefined => {
  const raw = fields.get(key)
  if (raw === undefined || raw === "null") return undefined
  if (raw.startsWith("\"")) {
    try {
      return JSON.parse(raw) as string
    } catch {
      return undefined
    }
  }
  return raw
}
