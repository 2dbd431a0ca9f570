// `npm run bench:propagation`: how long a policy change takes to reach every sidecar isolate.
// N sidecar Workers of one service (in Miniflare each Worker is its own isolate) get steady
// traffic from a driver Worker inside workerd; we apply a policy change and record when each
// isolate first serves the new version. Repeated TRIALS times; prints p50/p99/max over all
// (trial, isolate) pairs and writes bench/results/propagation.json. Then measures how many
// control-plane calls per second the N isolates cost under steady traffic.
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { adminClient, writeBenchResults } from "./bench/run.ts";
import { percentile } from "./bench/stats.ts";
import { buildWorkers } from "./build.ts";
import { COMPATIBILITY_DATE, CONTROL_WORKER, FIXED_CF, meshWorkers, scriptOf, sidecarName, type Topology } from "./mesh.ts";

const ISOLATES = Math.max(10, Number(process.env.BENCH_ISOLATES ?? 10));
const TRIALS = Math.max(20, Number(process.env.BENCH_TRIALS ?? 20));
const TTL_MS = Number(process.env.BENCH_TTL_MS ?? 1000);
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 10);
const RATE_WINDOW_MS = Number(process.env.BENCH_RATE_WINDOW_MS ?? 5000);

process.env.WRANGLER_SEND_METRICS = "false";

const topology: Topology = { mesh: "bench", services: { svc: [{ id: "svc-1", binding: "SVC_1", script: "test-echo" }] } };

function policy(timeoutMs: number) {
  return {
    mesh: "bench",
    services: { svc: { endpoints: [{ id: "svc-1", binding: "SVC_1" }], snapshotTtlMs: TTL_MS, routes: [{ name: "all", to: [{ subset: "all" }], timeoutMs }], subsets: { all: {} } } },
  };
}

await buildWorkers();
const workers = await meshWorkers({ topology });
const base = workers.find((w) => w.name === sidecarName("svc"))!;
const names = [base.name!];
for (let i = 1; i < ISOLATES; i++) {
  const copy: WorkerOptions = { ...base, name: `${base.name}-copy-${i}` };
  workers.push(copy);
  names.push(copy.name!);
}
workers.push({
  name: "bench-propagation-client",
  ...(await scriptOf("bench-propagation-client")),
  compatibilityDate: COMPATIBILITY_DATE,
  bindings: { SIDECARS: names.map((_, i) => `S${i}`).join(",") },
  serviceBindings: Object.fromEntries(names.map((n, i) => [`S${i}`, n])),
});

const mf = new Miniflare({
  host: "127.0.0.1",
  port: 0,
  cf: FIXED_CF,
  log: new Log(LogLevel.WARN),
  workers,
});

try {
  await mf.ready;
  const admin = adminClient(await mf.unsafeGetDirectURL(CONTROL_WORKER));
  const driver = await mf.getWorker("bench-propagation-client");
  // The debug headers that say which version a sidecar serves need a debug credential.
  const debugToken = (await admin("/v1/debug-tokens", { method: "POST", body: JSON.stringify({ ttlMs: 6 * 3_600_000 }) })).token as string;
  const drive = async (expect: number, timeoutMs: number) =>
    (await (await driver.fetch(`http://driver/run?expect=${expect}&timeoutMs=${timeoutMs}&gapMs=${GAP_MS}`, { headers: { "x-edgemesh-debug-token": debugToken } })).json()) as { firstSeenMs: (number | null)[]; requests: number; failures: number };

  let version = (await admin("/v1/policy", { method: "POST", body: JSON.stringify(policy(10_000)) })).version as number;
  // Warm every isolate onto the first version.
  const warm = await drive(version, 10_000);
  if (warm.firstSeenMs.some((t) => t === null)) throw new Error("not every sidecar isolate got the first policy");

  const samples: number[] = [];
  let missed = 0;
  let failures = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const next = version + 1;
    const run = drive(next, TTL_MS * 4 + 2_000);
    // Steady traffic on the old version first, at a random offset within the TTL.
    await new Promise((r) => setTimeout(r, 200 + Math.random() * TTL_MS));
    const appliedAtMs = Date.now();
    version = (await admin("/v1/policy", { method: "POST", body: JSON.stringify(policy(10_000 + trial + 1)) })).version;
    if (version !== next) throw new Error(`expected version ${next}, got ${version}`);
    const result = await run;
    failures += result.failures;
    for (const t of result.firstSeenMs) {
      if (t === null) missed++;
      else samples.push(Math.max(0, t - appliedAtMs));
    }
    process.stdout.write(`trial ${trial + 1}/${TRIALS}: max ${Math.max(...result.firstSeenMs.map((t) => (t ?? Infinity) - appliedAtMs))} ms\n`);
  }
  samples.sort((a, b) => a - b);

  // Control-plane cost: steady traffic on every isolate, no changes.
  const before = await admin("/v1/sync");
  const rateStart = Date.now();
  await drive(Number.MAX_SAFE_INTEGER, RATE_WINDOW_MS);
  const after = await admin("/v1/sync");
  const seconds = (Date.now() - rateStart) / 1000;
  // What MeshControl itself answered: direct check-ins and, with the relay tier, relay reports.
  const authorityCalls = (sync: { load: { snapshotCalls: number; relaySyncs: number } }) => sync.load.snapshotCalls + sync.load.relaySyncs;
  const callsPerSecond = (authorityCalls(after) - authorityCalls(before)) / seconds;
  const sync = after;

  const result = {
    isolates: ISOLATES,
    trials: TRIALS,
    samples: samples.length,
    missed,
    request_failures: failures,
    ttl_ms: TTL_MS,
    p50_ms: percentile(samples, 50),
    p99_ms: percentile(samples, 99),
    max_ms: samples.at(-1)!,
    mean_ms: Math.round(samples.reduce((a, b) => a + b, 0) / samples.length),
    control_calls_per_second: Math.round(callsPerSecond * 10) / 10,
    control_calls_per_isolate_per_second: Math.round((callsPerSecond / ISOLATES) * 100) / 100,
    sidecars_in_sync: sync.sidecars.filter((s: any) => s.state === "synced").length,
    measured_at: new Date().toISOString(),
  };
  console.log(`\npropagation of a policy change to ${ISOLATES} sidecar isolates, ${TRIALS} trials, TTL ${TTL_MS} ms`);
  console.log(`  p50 ${result.p50_ms} ms   p99 ${result.p99_ms} ms   max ${result.max_ms} ms   (missed ${missed}, failed requests ${failures})`);
  console.log(`calls on MeshControl: ${result.control_calls_per_second}/s for ${ISOLATES} isolates (${result.control_calls_per_isolate_per_second}/s each; a Durable Object's soft limit is ~1000/s; with the relay tier these are relay reports)`);
  await writeBenchResults("propagation.json", result);
} finally {
  await mf.dispose();
}
