// `npm run deploy:check`: `wrangler deploy --dry-run` for the control plane, every sidecar and
// every example Worker, offline. Exits non-zero if any would not deploy.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./build.ts";

const targets: { config: string; env: string }[] = [
  { config: "wrangler.toml", env: "" },
  ...["productpage", "details", "reviews", "ratings", "greeter"].map((env) => ({ config: "wrangler.toml", env })),
  ...["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"].map((env) => ({ config: "examples/bookinfo/wrangler.toml", env })),
  ...["greeter-v1", "greeter-v2"].map((env) => ({ config: "examples/grpc/wrangler.toml", env })),
];

let failed = 0;
for (const t of targets) {
  const outdir = mkdtempSync(path.join(os.tmpdir(), "edgemesh-deploy-"));
  const args = ["wrangler", "deploy", "--dry-run", "--outdir", outdir, "-c", t.config, `--env=${t.env}`];
  try {
    const out = execFileSync("npx", args, { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const size = /Total Upload: ([^\n]+)/.exec(out)?.[1] ?? "?";
    console.log(`ok   ${t.config} ${t.env || "(control)"}: ${size}`);
  } catch (err) {
    failed++;
    console.error(`FAIL ${t.config} ${t.env || "(control)"}:\n${(err as { stderr?: string }).stderr ?? err}`);
  }
}
process.exit(failed ? 1 : 0);
