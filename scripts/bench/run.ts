// What the benchmark scripts share to set up a run and keep its results: the sidecar as it was at
// a git commit (for a before/after comparison inside one workerd), the one workerd process whose
// CPU time they read, admin calls to the control plane, and the results file.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ROOT, WORKER_BUNDLE_OPTIONS } from "../build.ts";
import { DEFAULT_ADMIN_TOKEN } from "../mesh.ts";
import { findDescendants } from "./process-cpu.ts";

/**
 * Bundles the sidecar as it was at `ref` (the tree of a commit, so a stash commit made by
 * `git stash create` works too) into a temp folder, with this checkout's node_modules.
 */
export async function bundleSidecarAt(ref: string, tempPrefix = "edgemesh-baseline-"): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), tempPrefix));
  const tar = execFileSync("git", ["archive", "--format=tar", ref], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
  const outfile = path.join(dir, "sidecar-baseline.js");
  await build({ ...WORKER_BUNDLE_OPTIONS, entryPoints: [path.join(dir, "workers/sidecar/index.ts")], outfile, nodePaths: [path.join(ROOT, "node_modules")] });
  return outfile;
}

/** The pid of the one workerd process under this one (the Miniflare the benchmark started). */
export function onlyWorkerdPid(): number {
  const pids = findDescendants("workerd");
  if (pids.length !== 1) throw new Error(`expected one workerd process under this one, found ${pids.length}`);
  return pids[0]!;
}

/** Admin API calls with the local admin token, answering the JSON body; a refused call throws. */
export function adminClient(controlUrl: URL, token = DEFAULT_ADMIN_TOKEN): (pathname: string, init?: RequestInit) => Promise<any> {
  return async (pathname, init = {}) => {
    const res = await fetch(new URL(pathname, controlUrl), { ...init, headers: { ...init.headers, authorization: `Bearer ${token}`, "content-type": "application/json" } });
    const text = await res.text();
    if (!res.ok) throw new Error(`${pathname}: ${res.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Writes a run's results as JSON to bench/results/<file> and says so. */
export async function writeBenchResults(file: string, results: unknown): Promise<void> {
  const out = path.join(ROOT, "bench", "results", file);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(results, null, 2) + "\n");
  console.log(`wrote ${path.relative(ROOT, out)}`);
}
