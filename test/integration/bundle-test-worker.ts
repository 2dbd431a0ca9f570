// Bundles one test Worker (not one of scripts/build.ts's WORKER_ENTRIES) with the options the
// mesh's Workers are built with, and returns it as a Miniflare module.
import { build } from "esbuild";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ROOT } from "../../scripts/build.ts";

export async function bundleTestWorker(entry: string): Promise<{ modulesRoot: string; modules: { type: "ESModule"; path: string; contents: string }[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-test-worker-"));
  try {
    const outfile = path.join(dir, "worker.js");
    await build({
      entryPoints: [path.join(ROOT, entry)],
      outfile,
      bundle: true,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      target: "es2022",
      external: ["cloudflare:*"],
      logLevel: "error",
    });
    return { modulesRoot: dir, modules: [{ type: "ESModule", path: outfile, contents: await readFile(outfile, "utf8") }] };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
