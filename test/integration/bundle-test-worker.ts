// Bundles one test Worker (not one of scripts/build.ts's WORKER_ENTRIES) with the options the
// mesh's Workers are built with, and returns it as a Miniflare module.
import { build } from "esbuild";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ROOT, WORKER_BUNDLE_OPTIONS } from "../../scripts/build.ts";
import { moduleOptions } from "../../scripts/mesh.ts";

export async function bundleTestWorker(entry: string): ReturnType<typeof moduleOptions> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-test-worker-"));
  try {
    const outfile = path.join(dir, "worker.js");
    await build({ ...WORKER_BUNDLE_OPTIONS, entryPoints: [path.join(ROOT, entry)], outfile });
    return await moduleOptions(outfile);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
