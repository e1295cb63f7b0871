// `pnpm -r publish --dry-run`: what `pnpm release` (changeset publish) would do, minus the upload.
import { Report, run, tail, workspacePackages } from "../lib.mjs"

/**
 * `--force` makes pnpm go through packages whose version is already on the registry too (it
 * skips them otherwise), so the check covers every package before and after a first release.
 * `--no-git-checks`: CI and work in progress are not on a clean `main`.
 */
export const checkPublishDryRun = async () => {
  const report = new Report("pnpm -r publish --dry-run")
  const result = run("pnpm", ["-r", "publish", "--dry-run", "--no-git-checks", "--force"], { timeoutMs: 600_000 })
  if (result.status !== 0) {
    report.item("pnpm -r publish --dry-run --no-git-checks --force", [`exit ${result.status}:\n${tail(result.text, 40)}`])
    return report.done()
  }
  const published = new Set([...result.text.matchAll(/^\+ (@?[^@\s]+)@(\S+)$/gm)].map((m) => `${m[1]}@${m[2]}`))
  for (const p of workspacePackages()) {
    const id = `${p.name}@${p.pkg.version}`
    report.item(id, published.has(id) ? [] : [`not in the dry run's output ("+ ${id}" missing)`], published.has(id) ? "would publish" : "")
  }
  return report.done()
}
