// Summarises a V8 .cpuprofile (node --cpu-prof): self time by package and by function.
// usage: node bench/cpuprofile.mjs bench/profiles/CPU.*.cpuprofile
import { readFileSync } from "node:fs"
const p = JSON.parse(readFileSync(process.argv[2], "utf8"))
const self = new Map(); const byPkg = new Map()
const dt = new Map(); for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0))
let total = 0
for (const n of p.nodes) {
  const t = dt.get(n.id) ?? 0; total += t
  const cf = n.callFrame; const key = `${cf.functionName || "(anon)"} ${cf.url.replace(/.*node_modules\/\.pnpm\/([^/]+).*\/dist\/esm\//, "$1:").replace("file:///work/main/", "")}:${cf.lineNumber}`
  self.set(key, (self.get(key) ?? 0) + t)
  const pkg = cf.url === "" ? `(${cf.functionName})` : cf.url.includes(".pnpm/") ? cf.url.replace(/.*\.pnpm\/([^@/]*@?[^@/]+)@.*/, "$1") : cf.url.startsWith("node:") ? "node-internal" : cf.url.replace(/file:\/\/\/work\/main\/(packages|apps)\/([^/]+).*/, "$1/$2")
  byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + t)
}
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`).join("\n")
console.log("by package:\n" + top(byPkg, 15) + "\n\nself time:\n" + top(self, 25))
