// Runs the wrangler that edgemesh is pinned to (never a global one), with metrics off. Dry runs
// also hide the banner, whose update check would reach the npm registry.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

export function wranglerPackageDir(): string {
  return path.dirname(require.resolve("wrangler/package.json"));
}

export interface WranglerRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface WranglerOptions {
  cwd: string;
  /** Capture stdout/stderr (default); false hands the terminal to wrangler (logins, prompts). */
  capture?: boolean;
  /** No network at all: no banner, so no update check. */
  offline?: boolean;
}

export function runWrangler(args: readonly string[], opts: WranglerOptions): Promise<WranglerRun> {
  const capture = opts.capture ?? true;
  const env: NodeJS.ProcessEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };
  if (opts.offline) env.WRANGLER_HIDE_BANNER = "true";
  if (capture) env.FORCE_COLOR = "0";
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(wranglerPackageDir(), "bin/wrangler.js"), ...args], {
      cwd: opts.cwd,
      env,
      stdio: capture ? ["ignore", "pipe", "pipe"] : "inherit",
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
