/**
 * Which JSON types a provider's request JSON Schema accepts at a field path, so a CSV
 * cell (always text) can be given the type the provider expects.
 */

/** A JSON type name as JSON Schema spells it. */
export type JsonType = "string" | "number" | "integer" | "boolean" | "array" | "object" | "null"

type Node = { readonly [key: string]: unknown }

const isNode = (u: unknown): u is Node => typeof u === "object" && u !== null && !Array.isArray(u)

const resolveRef = (root: Node, node: Node, seen: number): Node => {
  const ref = node["$ref"]
  if (typeof ref !== "string" || !ref.startsWith("#/") || seen > 32) return node
  let target: unknown = root
  for (const part of ref.slice(2).split("/")) {
    target = isNode(target) ? target[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined
  }
  return isNode(target) ? resolveRef(root, target, seen + 1) : node
}

// Unions and intersections are flattened: a cell may take any type one of the branches accepts.
const expand = (root: Node, node: Node, seen = 0): ReadonlyArray<Node> => {
  const resolved = resolveRef(root, node, 0)
  if (seen > 32) return [resolved]
  const branches = [resolved["anyOf"], resolved["oneOf"], resolved["allOf"]].flatMap((b) => (Array.isArray(b) ? b.filter(isNode) : []))
  return branches.length === 0 ? [resolved] : [resolved, ...branches.flatMap((b) => expand(root, b, seen + 1))]
}

const child = (node: Node, segment: string): ReadonlyArray<Node> => {
  const out: Array<Node> = []
  const properties = node["properties"]
  if (isNode(properties) && isNode(properties[segment])) out.push(properties[segment])
  if (/^\d+$/.test(segment)) {
    const items = node["items"]
    const prefix = node["prefixItems"]
    if (isNode(items)) out.push(items)
    if (Array.isArray(items) && isNode(items[Number(segment)])) out.push(items[Number(segment)])
    if (Array.isArray(prefix) && isNode(prefix[Number(segment)])) out.push(prefix[Number(segment)])
    const additional = node["additionalItems"]
    if (isNode(additional)) out.push(additional)
  }
  const additional = node["additionalProperties"]
  if (out.length === 0 && isNode(additional)) out.push(additional)
  const patterns = node["patternProperties"]
  if (out.length === 0 && isNode(patterns)) {
    for (const [pattern, schema] of Object.entries(patterns)) {
      if (isNode(schema) && new RegExp(pattern).test(segment)) out.push(schema)
    }
  }
  return out
}

const typeOfValue = (value: unknown): JsonType =>
  value === null ? "null" : Array.isArray(value) ? "array" : typeof value === "number" ? "number" : typeof value === "boolean" ? "boolean" : typeof value === "object" ? "object" : "string"

const typesOf = (node: Node): ReadonlyArray<JsonType> => {
  const type = node["type"]
  if (typeof type === "string") return [type as JsonType]
  if (Array.isArray(type)) return type.filter((t): t is JsonType => typeof t === "string")
  if (Array.isArray(node["enum"])) return node["enum"].map(typeOfValue)
  if ("const" in node) return [typeOfValue(node["const"])]
  return []
}

/**
 * The JSON types accepted at `path` (e.g. ["transactions", "0", "ap_transactionid"]);
 * empty when the schema does not say (the field is unknown or takes anything).
 */
export const typesAt = (schema: unknown, path: ReadonlyArray<string>): ReadonlySet<JsonType> => {
  if (!isNode(schema)) return new Set()
  let nodes: ReadonlyArray<Node> = expand(schema, schema)
  for (const segment of path) {
    nodes = nodes.flatMap((node) => child(node, segment)).flatMap((node) => expand(schema, node))
    if (nodes.length === 0) return new Set()
  }
  return new Set(nodes.flatMap(typesOf))
}

/**
 * The top-level fields a request may have, when the schema refuses every other (each branch
 * with properties says `additionalProperties: false`); undefined when it takes others too.
 */
export const topLevelFields = (schema: unknown): ReadonlyArray<string> | undefined => {
  if (!isNode(schema)) return undefined
  const fields = new Set<string>()
  for (const node of expand(schema, schema)) {
    const properties = node["properties"]
    if (!isNode(properties)) continue
    // JSON Schema allows other fields unless told not to.
    if (node["additionalProperties"] !== false || node["patternProperties"] !== undefined) return undefined
    for (const name of Object.keys(properties)) fields.add(name)
  }
  return fields.size === 0 ? undefined : [...fields]
}
