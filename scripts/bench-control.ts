// `npm run bench:control`: the control plane at scale, in Miniflare on this machine, from one run.
//  1. check-ins per second one MeshControl object sustains, and one relay (closed loops of
//     "not modified" check-ins from a load Worker inside workerd);
//  2. propagation p50/p99 of a policy change to N simulated isolates (default 200; distinct isolate
//     ids, one check-in per TTL each, as sidecars do) with and without the distribution tier;
//  3. per mesh size (10, 300, 3,000 services × 20 routes): the first apply's time, the object's
//     time per one-service change (what the authority spends on it), per-check-in cost, and the
//     longest a check-in waited while a change to every service was applied;
//  4. the authority's calls per second with 20 and N isolates, with and without the tier.
// Prints the measured ratios against the targets and writes bench/results/control.json.
// Knobs: BENCH_ISOLATES (200), BENCH_TRIALS (8), BENCH_TTL_MS (1000), BENCH_SIZES (10,300,3000),
// BENCH_WINDOW_MS (6000), BENCH_RELAY_SHARDS (4), BENCH_COLOS (10).
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { validatePolicy } from "../policies/schema.ts";
import { sizedPolicy } from "./bench/mesh-policy.ts";
import { adminClient, writeBenchResults } from "./bench/run.ts";
import { percentile } from "./bench/stats.ts";
import { buildWorkers } from "./build.ts";
import { COMPATIBILITY_DATE, CONTROL_WORKER, FIXED_CF, meshWorkers, scriptOf, type Topology } from "./mesh.ts";

const ISOLATES = Number(process.env.BENCH_ISOLATES ?? 200);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 8);
const TTL_MS = Number(process.env.BENCH_TTL_MS ?? 1000);
const SIZES = (process.env.BENCH_SIZES ?? "10,300,3000").split(",").map(Number);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 6000);
const RELAY_SHARDS = Number(process.env.BENCH_RELAY_SHARDS ?? 4);
const COLOS = Number(process.env.BENCH_COLOS ?? 10);

process.env.WRANGLER_SEND_METRICS = "false";

const topology: Topology = { mesh: "bench", services: { svc: [{ id: "svc-1", binding: "SVC_1", script: "test-echo" }] } };
const smallPolicy = (timeoutMs: number) => ({
  mesh: "bench",
  services: { svc: { endpoints: [{ id: "svc-1", binding: "SVC_1" }], snapshotTtlMs: TTL_MS, subsets: { all: {} }, routes: [{ name: "all", to: [{ subset: "all" }], timeoutMs }] } },
});

await buildWorkers();
const workers: WorkerOptions[] = await meshWorkers({ topology });
workers.push({
  name: "bench-control-load",
  ...(await scriptOf("bench-control-load")),
  compatibilityDate: COMPATIBILITY_DATE,
  bindings: { RELAY_SHARDS: String(RELAY_SHARDS) },
  durableObjects: {
    MESH_CONTROL: { className: "MeshControl", scriptName: CONTROL_WORKER, useSQLite: true },
    MESH_RELAY: { className: "MeshRelay", scriptName: CONTROL_WORKER, useSQLite: true },
  },
});

const mf = new Miniflare({
  host: "127.0.0.1",
  port: 0,
  cf: FIXED_CF,
  log: new Log(LogLevel.WARN),
  workers,
});

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

try {
  await mf.ready;
  const admin = adminClient(await mf.unsafeGetDirectURL(CONTROL_WORKER));
  const load = await mf.getWorker("bench-control-load");
  const call = async (pathname: string, init?: RequestInit) => {
    const res = await load.fetch(`http://load${pathname}`, init as never);
    const body = (await res.json()) as any;
    if (!res.ok) throw new Error(`${pathname}: ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
    return body;
  };
  const authorityCalls = async (mesh: string) => {
    const l = (await admin(`/v1/sync?mesh=${mesh}`)).load;
    return l.snapshotCalls + l.relaySyncs;
  };

  let version = (await admin("/v1/policy", { method: "POST", body: JSON.stringify(smallPolicy(10_000)) })).version as number;
  let timeoutMs = 10_000;

  // 1. Check-ins per second.
  console.log("1. check-ins per second (closed loops of 'not modified' check-ins, 32 at once, 3 s)");
  const authorityRate = await call(`/saturate?mesh=bench&service=svc&target=authority&concurrency=32&ms=3000`);
  const relayRate = await call(`/saturate?mesh=bench&service=svc&target=relay&concurrency=32&ms=3000`);
  console.log(`   MeshControl: ${Math.round(authorityRate.perSecond)}/s   one relay: ${Math.round(relayRate.perSecond)}/s`);

  // 4. The authority's calls per second against the number of isolates.
  console.log(`4. calls per second on MeshControl, isolates checking in once per ${TTL_MS} ms over ${WINDOW_MS} ms`);
  const loadRows: { isolates: number; tier: boolean; authorityCallsPerSecond: number; isolateCheckInsPerSecond: number }[] = [];
  for (const n of [20, ISOLATES]) {
    for (const tier of [false, true]) {
      const before = await authorityCalls("bench");
      const started = Date.now();
      const run = await call(`/isolates?mesh=bench&service=svc&target=${tier ? "relay" : "authority"}&n=${n}&ttlMs=${TTL_MS}&ms=${WINDOW_MS}&colos=${COLOS}`);
      const seconds = (Date.now() - started) / 1000;
      const row = { isolates: n, tier, authorityCallsPerSecond: round(((await authorityCalls("bench")) - before) / seconds), isolateCheckInsPerSecond: round(run.calls / seconds) };
      loadRows.push(row);
      console.log(`   ${String(n).padStart(4)} isolates, ${tier ? "with the tier   " : "without the tier"}: ${row.authorityCallsPerSecond} calls/s on MeshControl (isolates made ${row.isolateCheckInsPerSecond}/s)`);
    }
  }
  const tierLoad = (n: number) => loadRows.find((r) => r.tier && r.isolates === n)!.authorityCallsPerSecond;
  const flatRatio = round(tierLoad(ISOLATES) / Math.max(0.1, tierLoad(20)), 2);

  // 2. Propagation.
  console.log(`2. propagation of a policy change to ${ISOLATES} isolates, ${TRIALS} trials each`);
  const propagation: Record<string, { p50_ms: number; p99_ms: number; max_ms: number; samples: number; missed: number }> = {};
  for (const tier of [false, true]) {
    const samples: number[] = [];
    let missed = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const next = version + 1;
      const run = call(`/isolates?mesh=bench&service=svc&target=${tier ? "relay" : "authority"}&n=${ISOLATES}&ttlMs=${TTL_MS}&ms=${TTL_MS * 4 + 3_000}&expectVersion=${next}&colos=${COLOS}`);
      // Every isolate has checked in at least once (random phase within a TTL), then the change lands at a random point.
      await new Promise((r) => setTimeout(r, TTL_MS + 300 + Math.random() * TTL_MS));
      const appliedAtMs = Date.now();
      version = (await admin("/v1/policy", { method: "POST", body: JSON.stringify(smallPolicy(++timeoutMs)) })).version;
      const result = await run;
      for (const t of result.firstSeenMs as (number | null)[]) {
        if (t === null) missed++;
        else samples.push(Math.max(0, t - appliedAtMs));
      }
    }
    const key = tier ? "with_tier" : "without_tier";
    propagation[key] = { p50_ms: percentile(samples, 50), p99_ms: percentile(samples, 99), max_ms: Math.max(...samples), samples: samples.length, missed };
    console.log(`   ${tier ? "with the tier   " : "without the tier"}: p50 ${propagation[key]!.p50_ms} ms  p99 ${propagation[key]!.p99_ms} ms  max ${propagation[key]!.max_ms} ms  (${samples.length} samples, ${missed} missed)`);
  }

  // 3. Mesh size.
  console.log("3. mesh size: first apply, one-service change on the object, check-in cost, longest check-in wait during a change to every service");
  const sizes: any[] = [];
  for (const n of SIZES) {
    const mesh = `size${n}`;
    const doc = sizedPolicy(mesh, n);
    const bytes = JSON.stringify(doc).length;
    // What the control Worker spends validating the document (here in Node): locally it shares
    // workerd's thread with MeshControl, so check-ins wait for it too; deployed it does not.
    const v0 = performance.now();
    validatePolicy(JSON.parse(JSON.stringify(doc)));
    const validateMs = performance.now() - v0;
    let t0 = performance.now();
    await admin(`/v1/policy?mesh=${mesh}`, { method: "POST", body: JSON.stringify(doc) });
    const firstApplyMs = performance.now() - t0;
    // Warm: every service's snapshot built once.
    await call(`/saturate?mesh=${mesh}&service=svc-0&target=authority&concurrency=4&ms=300`);
    const repeat = n >= 3000 ? 10 : 20;
    const a = sizedPolicy(mesh, n, 20, { service: Math.floor(n / 2), timeoutMs: 3_000 });
    const b = sizedPolicy(mesh, n, 20, { service: Math.floor(n / 2), timeoutMs: 4_000 });
    const commits = await call(`/commits?mesh=${mesh}&repeat=${repeat}`, { method: "POST", body: JSON.stringify({ a, b }) });
    const notModified = await call(`/saturate?mesh=${mesh}&service=svc-1&target=authority&concurrency=16&ms=2000`);
    const full = await call(`/saturate?mesh=${mesh}&service=svc-1&target=authority&concurrency=16&ms=2000&fullEvery=1`);
    // A change to every service (all timeouts) while check-ins keep coming.
    const everything = sizedPolicy(mesh, n, 20);
    for (const svc of Object.values(everything.services) as any[]) svc.routes[1].timeoutMs = 5_000;
    // A steady ~1,000 check-ins/s (8 loops, 8 ms apart): enough to see a stall, not enough to
    // starve the apply of the one workerd process everything here shares.
    const during = call(`/saturate?mesh=${mesh}&service=svc-1&target=authority&concurrency=8&gapMs=8&ms=${Math.round(Math.max(4000, firstApplyMs * 3))}`);
    await new Promise((r) => setTimeout(r, 500));
    t0 = performance.now();
    await admin(`/v1/policy?mesh=${mesh}`, { method: "POST", body: JSON.stringify(everything) });
    const changeAllMs = performance.now() - t0;
    const stall = await during;
    const row = {
      services: n,
      document_bytes: bytes,
      validate_ms_in_node: Math.round(validateMs),
      first_apply_ms: Math.round(firstApplyMs),
      change_all_apply_ms: Math.round(changeAllMs),
      one_service_change_object_ms: round(commits.objectMsPerCommit, 2),
      changed_services_per_commit: commits.changedServices.at(-1),
      not_modified_check_in_us: Math.round(1e6 / notModified.perSecond),
      full_snapshot_check_in_us: Math.round(1e6 / full.perSecond),
      longest_check_in_wait_during_change_all_ms: stall.slowestMs,
    };
    sizes.push(row);
    console.log(`   ${String(n).padStart(5)} services (${(bytes / 1e6).toFixed(2)} MB): validation ${row.validate_ms_in_node} ms (Node); first apply ${row.first_apply_ms} ms; one-service change ${row.one_service_change_object_ms} ms on the object (${row.changed_services_per_commit} service recompiled); check-in ${row.not_modified_check_in_us} µs (not modified) / ${row.full_snapshot_check_in_us} µs (full); change to all: ${row.change_all_apply_ms} ms, longest check-in wait ${row.longest_check_in_wait_during_change_all_ms} ms`);
  }
  const smallest = sizes.find((s) => s.services === Math.min(...SIZES));
  const largest = sizes.find((s) => s.services === Math.max(...SIZES));
  const changeRatio = round(largest.one_service_change_object_ms / Math.max(0.01, smallest.one_service_change_object_ms), 2);

  const result = {
    ttl_ms: TTL_MS,
    isolates: ISOLATES,
    relay_shards: RELAY_SHARDS,
    simulated_colos: COLOS,
    check_ins_per_second: { authority: Math.round(authorityRate.perSecond), relay: Math.round(relayRate.perSecond) },
    propagation,
    authority_load: loadRows,
    mesh_sizes: sizes,
    targets: {
      propagation_p99_with_tier_ms: { value: propagation.with_tier!.p99_ms, target: 1500, met: propagation.with_tier!.p99_ms <= 1500 },
      authority_load_ratio_20_to_n_isolates_with_tier: { value: flatRatio, target: "flat (about 1)", met: flatRatio <= 1.5 },
      one_service_change_ratio_largest_to_smallest: { value: changeRatio, target: 10, met: changeRatio <= 10 },
    },
    measured_at: new Date().toISOString(),
  };
  console.log("\ntargets");
  console.log(`  propagation p99 with the tier at ${ISOLATES} isolates: ${propagation.with_tier!.p99_ms} ms (target ≤ 1500 ms): ${result.targets.propagation_p99_with_tier_ms.met ? "met" : "NOT met"}`);
  console.log(`  MeshControl's calls/s with the tier, ${ISOLATES} vs 20 isolates: ×${flatRatio} (target: flat): ${result.targets.authority_load_ratio_20_to_n_isolates_with_tier.met ? "met" : "NOT met"}`);
  console.log(`  one-service change, ${largest.services} vs ${smallest.services} services, on the object: ×${changeRatio} (target ≤ 10): ${result.targets.one_service_change_ratio_largest_to_smallest.met ? "met" : "NOT met"}`);
  await writeBenchResults("control.json", result);
} finally {
  await mf.dispose();
}
