// What the zero-trust stages add to the sidecar's CPU per request, inside workerd (one run,
// printed, not asserted). One workerd runs, side by side:
//   - `plain`, today's sidecar of a service with no access rules and no rate limits, called without
//     a token (every request still passes identity, access and rate limits);
//   - `baseline`, the sidecar as it was at BENCH_BASELINE_REF (default main), same service, same
//     calls: the code before the stages existed;
//   - `token`, the `plain` sidecar called with a mesh token for it: what carrying and verifying a
//     token costs (the header crosses the binding, is verified from the cache, and is taken off);
//   - `props`, the `plain` sidecar called over a binding whose props name the caller: what a
//     caller's identity over a binding costs;
//   - `rules`, today's sidecar of a service with 10 access rules (5 deny rules that do not match,
//     then 5 allow rules of which the last admits) and a per-caller rate limit, called over a
//     binding whose props name the caller (no token);
//   - `guarded`, the same service called with a mesh token instead (verified once, then from the
//     per-isolate cache);
//   - `direct`, the upstream Worker itself, for scale.
// A client Worker inside workerd sends batches to each in interleaved rounds; the workerd
// process's CPU time per request (/proc) is the measure, its median over rounds the result.
// Those differences include what travels with a request (a token header, a binding's props) as
// well as the stages' own work, so a second phase prices the stages alone: a Worker runs the
// sidecar's zero-trust stage (zero-trust-stage.ts) 100,000 times per request, no token and no
// rules, then a cached token, 10 rules and a limit.
//   npx tsx scripts/bench/zero-trust-overhead.ts        (BENCH_ROUNDS, BENCH_BATCH, BENCH_BASELINE_REF)
import { build } from "esbuild";
import { Log, LogLevel, Miniflare } from "miniflare";
import os from "node:os";
import path from "node:path";
import { buildWorkers, ROOT, WORKER_BUNDLE_OPTIONS } from "../build.ts";
import { generateMeshKey, issueToken, prepareSigningKeys } from "../../auth/mesh-token.ts";
import { COMPATIBILITY_DATE, CONTROL_WORKER, instanceName, meshWorkers, moduleOptions, sidecarName } from "../mesh.ts";
import { STAGE_MESH } from "./zero-trust-stage.ts";
import { processCpuMsFine } from "./process-cpu.ts";
import { adminClient, bundleSidecarAt, onlyWorkerdPid } from "./run.ts";
import { BENCH_IDENTITIES, ONE_LIMIT, TEN_RULES } from "./zero-trust-policy.ts";
import { percentile } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 16);
const BATCH = Number(process.env.BENCH_BATCH ?? 1500);
const BASELINE_REF = process.env.BENCH_BASELINE_REF ?? "main";
const MESH = "bench-zt";

process.env.WRANGLER_SEND_METRICS = "false";
const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
await buildWorkers();
const baselineFile = await bundleSidecarAt(BASELINE_REF, "edgemesh-zt-baseline-");
const upstream = (id: string) => [{ id, binding: "UPSTREAM_1", script: "bench-upstream" }];
const workers = await meshWorkers({
  topology: {
    mesh: MESH,
    services: { plain: upstream("plain-1"), guarded: upstream("guarded-1") },
    extraWorkers: [{ name: "bench-client", script: "bench-client", serviceBindings: { DIRECT: instanceName(MESH, "plain-1"), PLAIN: sidecarName("plain"), GUARDED: sidecarName("guarded"), RULES: { name: sidecarName("guarded"), props: { caller: "nightly" } }, PROPS: { name: sidecarName("plain"), props: { caller: "nightly" } }, BASELINE: "baseline-sidecar" } }],
  },
  sidecarTelemetryStore: false,
  relays: false,
});
const plain = workers.find((w) => w.name === sidecarName("plain"))!;
workers.push({ ...plain, name: "baseline-sidecar", ...(await moduleOptions(baselineFile)) });
// The stage alone, with a key set of its own.
const stageFile = path.join(path.dirname(baselineFile), "zero-trust-stage-worker.js");
await build({ ...WORKER_BUNDLE_OPTIONS, entryPoints: [path.join(ROOT, "scripts/bench/zero-trust-stage-worker.ts")], outfile: stageFile });
const stageKeys = { keys: [await generateMeshKey({ kid: "stage" })] };
const stageToken = await issueToken(await prepareSigningKeys(stageKeys), { mesh: STAGE_MESH, caller: "nightly", callee: "guarded", ttlMs: 3_600_000 });
workers.push({
  name: "zero-trust-stage", ...(await moduleOptions(stageFile)),
  compatibilityDate: COMPATIBILITY_DATE, bindings: { EDGEMESH_TOKEN_KEYS: JSON.stringify(stageKeys) },
});
const mf = new Miniflare({ host: "127.0.0.1", port: 0, cf: { colo: "LCL" }, log: new Log(LogLevel.WARN), workers });

const endpoints = (id: string) => [{ id, binding: "UPSTREAM_1" }];
const policy = {
  mesh: MESH,
  access: { identities: BENCH_IDENTITIES },
  services: {
    plain: { endpoints: endpoints("plain-1") },
    guarded: { endpoints: endpoints("guarded-1"), access: TEN_RULES, rateLimits: ONE_LIMIT },
  },
};

type Variant = "direct" | "baseline" | "plain" | "token" | "props" | "rules" | "guarded";
const VARIANTS: Variant[] = ["direct", "baseline", "plain", "token", "props", "rules", "guarded"];

try {
  await mf.ready;
  const admin = adminClient(await mf.unsafeGetDirectURL(CONTROL_WORKER));
  const post = (pathname: string, body: unknown) => admin(pathname, { method: "POST", body: JSON.stringify(body) });
  await post("/v1/policy", policy);
  const mint = async (callee: string) => encodeURIComponent((await post("/v1/mesh-tokens", { caller: "nightly", callee, ttlMs: 3_600_000 })).token as string);
  const client = await mf.getWorker("bench-client");
  const pid = onlyWorkerdPid();

  const target: Record<Variant, string> = {
    direct: "DIRECT", baseline: "BASELINE", plain: "PLAIN", token: `PLAIN&h-x-edgemesh-token=${await mint("plain")}`, props: "PROPS", rules: "RULES", guarded: `GUARDED&h-x-edgemesh-token=${await mint("guarded")}`,
  };
  const run = async (v: Variant, requests: number) => {
    const res = await client.fetch(`http://bench/run?target=${target[v]}&requests=${requests}&concurrency=1`);
    const body = (await res.json()) as { failures: number };
    if (body.failures > 0) throw new Error(`${v}: ${body.failures} of ${requests} requests failed`);
  };
  for (const v of VARIANTS) await run(v, 2000); // warm-up: JIT, snapshots, the token cache
  const cpu: Record<Variant, number[]> = { direct: [], baseline: [], plain: [], token: [], props: [], rules: [], guarded: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + round) % VARIANTS.length]!;
      const before = processCpuMsFine(pid);
      await run(v, BATCH);
      cpu[v].push(((processCpuMsFine(pid) - before) * 1000) / BATCH);
    }
  }
  const median = (xs: number[]) => percentile(xs, 50);
  // Differences per round (taken back to back), then their median: steadier than a difference of medians.
  const pairedDiff = (a: number[], b: number[]) => median(a.map((x, i) => x - b[i]!));
  console.log(`workerd CPU per request, median of ${ROUNDS} rounds of ${BATCH} (load average at start ${loadAtStart.join(" ")}):`);
  for (const v of VARIANTS) console.log(`  ${v.padEnd(9)} ${median(cpu[v]).toFixed(1)} µs`);
  console.log(`no token, no rules (plain - baseline ${BASELINE_REF}):      ${pairedDiff(cpu.plain, cpu.baseline).toFixed(1)} µs per request`);
  console.log(`a token and 10 rules + 1 limit (guarded - plain):  ${pairedDiff(cpu.guarded, cpu.plain).toFixed(1)} µs per request`);
  console.log(`  a token alone (token - plain):                   ${pairedDiff(cpu.token, cpu.plain).toFixed(1)} µs`);
  console.log(`  a caller named by binding props (props - plain):  ${pairedDiff(cpu.props, cpu.plain).toFixed(1)} µs`);
  console.log(`  10 rules and the limit (rules - props):           ${pairedDiff(cpu.rules, cpu.props).toFixed(1)} µs`);
  console.log(`  the token on top of the rules (guarded - rules):  ${pairedDiff(cpu.guarded, cpu.rules).toFixed(1)} µs`);
  console.log(`the sidecar's own hop (plain - direct):             ${pairedDiff(cpu.plain, cpu.direct).toFixed(1)} µs per request`);

  // The stage alone, in a loop: CPU per pass minus an empty pass's.
  const stageWorker = await mf.getWorker("zero-trust-stage");
  const STAGE_LOOPS = 100_000;
  const stageCpu = async (variant: "none" | "plain" | "guarded") => {
    const before = processCpuMsFine(pid);
    const res = await stageWorker.fetch(`http://stage/?variant=${variant}&n=${STAGE_LOOPS}`, { headers: { "x-edgemesh-token": stageToken } });
    if (res.status !== 200) throw new Error(`stage ${variant}: ${res.status} ${await res.text()}`);
    await res.text();
    return ((processCpuMsFine(pid) - before) * 1000) / STAGE_LOOPS;
  };
  for (const v of ["none", "plain", "guarded"] as const) await stageCpu(v);
  const stage = { none: [] as number[], plain: [] as number[], guarded: [] as number[] };
  for (let round = 0; round < 5; round++) for (const v of ["none", "plain", "guarded"] as const) stage[v].push(await stageCpu(v));
  console.log(`the zero-trust stage alone in workerd (median of 5 runs of ${STAGE_LOOPS} passes, minus an empty pass):`);
  console.log(`  no token, no rules:                 ${pairedDiff(stage.plain, stage.none).toFixed(2)} µs per request`);
  console.log(`  a cached token, 10 rules, a limit:  ${pairedDiff(stage.guarded, stage.none).toFixed(2)} µs per request`);
} finally {
  await mf.dispose();
}
