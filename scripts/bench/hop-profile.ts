// `npx tsx scripts/bench/hop-profile.ts`: prices the pieces a proxying Worker is made of, in
// workerd CPU per request, so the sidecar's cost can be reasoned about (workerd has no CPU
// profiler one can attach here). Each variant of scripts/bench/hop-primitives-worker.ts does one
// piece of work and forwards to the benchmark upstream; the table prints each one's CPU per request
// beyond the bare forward ("proxy"). Interleaved rounds, medians, one run; no assertions.
import { build } from "esbuild";
import { Log, LogLevel, Miniflare } from "miniflare";
import os from "node:os";
import path from "node:path";
import { ROOT } from "../build.ts";
import { COMPATIBILITY_DATE } from "../mesh.ts";
import { findDescendants, processCpuMsFine } from "./process-cpu.ts";
import { percentile } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const BATCH = Number(process.env.BENCH_BATCH ?? 2000);
// BENCH_COMPAT_FLAGS=a,b: compatibility flags of every variant Worker. A variant named
// "<variant>@<flag>" runs with that flag too (the sidecar runs with enable_request_signal), so a
// flag's own price shows beside the same variant without it.
const COMPAT_FLAGS = (process.env.BENCH_COMPAT_FLAGS ?? "").split(",").filter(Boolean);
const VARIANTS = (process.env.BENCH_VARIANTS ?? "proxy,url,headers-access,headers-get-1,headers-get,headers-scan,new-request,new-request-signal,timeout-signal,timer,race,awaits,response-wrap,response-transform,identity-pipe,identity-pipe-deadline,js-pull-stream,buffer-body,peek-two-reads,settle-timer0,signal-read-two").split(",");

process.env.WRANGLER_SEND_METRICS = "false";
const out = path.join(os.tmpdir(), `edgemesh-hop-profile-${process.pid}`);
const bundle = async (entry: string, name: string) => {
  await build({ entryPoints: [path.join(ROOT, entry)], outfile: path.join(out, `${name}.js`), bundle: true, format: "esm", platform: "browser", target: "es2022", logLevel: "error" });
  return path.join(out, `${name}.js`);
};
const upstream = await bundle("scripts/bench/upstream-worker.ts", "upstream");
const primitives = await bundle("scripts/bench/hop-primitives-worker.ts", "primitives");
const client = await bundle("scripts/bench/client-worker.ts", "client");

const binding = (v: string) => `V_${v.toUpperCase().replace(/[-@]/g, "_")}`;
const mf = new Miniflare({
  log: new Log(LogLevel.WARN),
  cf: { colo: "LCL" },
  workers: [
    { name: "client", modules: [{ type: "ESModule", path: client }], modulesRoot: out, compatibilityDate: COMPATIBILITY_DATE, serviceBindings: Object.fromEntries(VARIANTS.map((v) => [binding(v), `variant-${v}`])) },
    { name: "upstream", modules: [{ type: "ESModule", path: upstream }], modulesRoot: out, compatibilityDate: COMPATIBILITY_DATE },
    ...VARIANTS.map((v) => ({ name: `variant-${v}`, modules: [{ type: "ESModule" as const, path: primitives }], modulesRoot: out, compatibilityDate: COMPATIBILITY_DATE, compatibilityFlags: [...COMPAT_FLAGS, ...v.split("@").slice(1)], bindings: { VARIANT: v.split("@")[0]! }, serviceBindings: { UPSTREAM: "upstream" } })),
  ],
});

try {
  await mf.ready;
  const [pid] = findDescendants("workerd");
  if (pid === undefined) throw new Error("no workerd process found");
  const worker = await mf.getWorker("client");
  const run = async (v: string, n: number) => {
    const res = await worker.fetch(`http://bench/run?target=${binding(v)}&requests=${n}&concurrency=1`);
    const body = (await res.json()) as { failures: number };
    if (body.failures > 0) throw new Error(`${v}: ${body.failures} failures`);
  };
  for (const v of VARIANTS) await run(v, 3000);
  const cpu: Record<string, number[]> = Object.fromEntries(VARIANTS.map((v) => [v, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + round) % VARIANTS.length]!;
      const before = processCpuMsFine(pid);
      await run(v, BATCH);
      cpu[v]!.push(((processCpuMsFine(pid) - before) * 1000) / BATCH);
    }
  }
  const median = (xs: number[]) => percentile(xs, 50);
  const base = median(cpu["proxy"] ?? [0]);
  console.log(`workerd CPU per request (µs), medians of ${ROUNDS} interleaved rounds of ${BATCH} sequential requests\n`);
  console.log(`${"variant".padEnd(22)}${"CPU/req".padStart(10)}${"vs proxy".padStart(10)}`);
  for (const v of VARIANTS) {
    const m = median(cpu[v]!);
    console.log(`${v.padEnd(22)}${m.toFixed(1).padStart(10)}${(v === "proxy" ? "" : (m - base >= 0 ? "+" : "") + (m - base).toFixed(1)).padStart(10)}`);
  }
} finally {
  await mf.dispose();
}
