// Bundles every Worker of the local mesh into dist/ with esbuild (the bundler wrangler uses), so
// Miniflare runs the same JavaScript that `wrangler deploy` would upload.
import { build, type BuildOptions } from "esbuild";
import { fileURLToPath } from "node:url";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// One output folder per process: test files and benchmarks build in parallel without reading
// each other's half-written bundles. `npm run build` writes dist/.
export const DIST = process.env.EDGEMESH_DIST ?? path.join(os.tmpdir(), `edgemesh-build-${process.pid}`);

/** Worker name in dist/ -> its entry module. */
export const WORKER_ENTRIES: Record<string, string> = {
  control: "workers/control/index.ts",
  sidecar: "workers/sidecar/index.ts",
  "bookinfo-productpage": "examples/bookinfo/productpage.ts",
  "bookinfo-details": "examples/bookinfo/details.ts",
  "bookinfo-reviews": "examples/bookinfo/reviews.ts",
  "bookinfo-ratings": "examples/bookinfo/ratings.ts",
  "grpc-greeter": "examples/grpc/greeter.ts",
  "test-echo": "test/workers/echo.ts",
  "test-flaky": "test/workers/flaky.ts",
  "test-load-client": "test/workers/load-client.ts",
  "test-health-target": "test/workers/health-target.ts",
  "test-control-harness": "test/workers/control-harness.ts",
  "test-broken-telemetry-store": "test/workers/broken-telemetry-store.ts",
  "test-telemetry-store-client": "test/workers/telemetry-store-client.ts",
  "bench-client": "scripts/bench/client-worker.ts",
  "bench-propagation-client": "scripts/bench/propagation-client.ts",
  "bench-control-load": "scripts/bench/control-load.ts",
  "bench-upstream": "scripts/bench/upstream-worker.ts",
  "bench-proxy": "scripts/bench/proxy-worker.ts",
};

export function distPath(worker: string): string {
  return path.join(DIST, `${worker}.js`);
}

/** How every Worker is bundled, as wrangler would: one ES module for workerd. */
export const WORKER_BUNDLE_OPTIONS = {
  bundle: true,
  format: "esm",
  platform: "browser",
  conditions: ["workerd", "worker", "browser"],
  target: "es2022",
  external: ["cloudflare:*"],
  logLevel: "error",
} satisfies BuildOptions;

export async function buildWorkers(names: string[] = Object.keys(WORKER_ENTRIES)): Promise<void> {
  await Promise.all(
    names.map((name) =>
      build({ ...WORKER_BUNDLE_OPTIONS, entryPoints: [path.join(ROOT, WORKER_ENTRIES[name]!)], outfile: distPath(name), sourcemap: "linked" }),
    ),
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const started = performance.now();
  await buildWorkers();
  console.log(`built ${Object.keys(WORKER_ENTRIES).length} workers into ${DIST} in ${Math.round(performance.now() - started)} ms`);
}
