// `npm run bench:overhead`: what the sidecar costs per hop. The same requests go straight to the
// upstream Worker and through its sidecar, in one run on this machine, measured two ways:
//  - over a real socket from Node (keep-alive, microsecond clock): per-request p50/p99;
//  - from inside workerd (a client Worker calling both over service bindings): mean latency and
//    requests/s with Node out of the path. workerd's clock only ticks in whole milliseconds, so
//    inside it we time batches, not single requests.
// A third path, a Worker that only forwards (scripts/bench/proxy-worker.ts), separates the price
// of any extra Worker hop from the price of the sidecar's own work.
// Each phase also reads the workerd process's CPU time (/proc/<pid>/stat, utime + stime) before and
// after, so every variant has a CPU cost per request, steadier than wall time on a shared machine.
// hop_cost_ratio = (sidecar - direct) / (null proxy - direct) says how many "bare hops" the sidecar
// costs: 1.0 would mean its own work is free.
// BENCH_BASELINE_REF=<git ref> adds a fourth path: the sidecar as it was at that commit, built from
// git and run in the same workerd beside today's, so a before/after comparison shares one process,
// one warm-up and the same neighbours on a shared machine.
// Prints a table and writes bench/results/overhead.json (BENCH_OUT=<name> for another file there).
import { Log, LogLevel, Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import { Agent, request } from "node:http";
import { percentile } from "./bench/stats.ts";
import { cpuTickMs, processCpuMs, processCpuMsFine } from "./bench/process-cpu.ts";
import { adminClient, bundleSidecarAt, onlyWorkerdPid, writeBenchResults } from "./bench/run.ts";
import os from "node:os";
import { buildWorkers, ROOT } from "./build.ts";
import { CONTROL_WORKER, DEFAULT_ADMIN_TOKEN, instanceName, meshWorkers, moduleOptions, sidecarName, type MeshOptions } from "./mesh.ts";
import { measureTelemetryOverhead, type TelemetryOverhead } from "./bench/telemetry-overhead.ts";

const SEQUENTIAL = Number(process.env.BENCH_REQUESTS ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 2000);
// The hop cost is a difference of small numbers (tens of µs), so the in-workerd sequential phase
// runs in many short interleaved rounds: drift on a shared machine then hits every variant alike.
const WD_ROUNDS = Number(process.env.BENCH_WD_ROUNDS ?? 24);
const WD_BATCH = Number(process.env.BENCH_WD_BATCH ?? 1500);
// BENCH_HOP_ONLY=1: only the in-workerd sequential rounds (hop cost and CPU per request), for quick
// comparisons while working on the sidecar; prints them and writes nothing.
const HOP_ONLY = process.env.BENCH_HOP_ONLY === "1";

/** "direct", "sidecar", "proxy", "baseline", or "variant-<n>" (BENCH_VARIANT_REFS). */
type Target = string;

const BASELINE_REF = process.env.BENCH_BASELINE_REF ?? "";
// BENCH_VARIANT_REFS=<ref>,<ref>,...: further sidecars built from git (a commit, or `git stash
// create` for uncommitted work) and run beside the others, for profiling by variants: each one
// with a stage changed or switched off, priced against the same direct path in the same process.
// Printed in BENCH_HOP_ONLY runs.
const VARIANT_REFS = (process.env.BENCH_VARIANT_REFS ?? "").split(",").filter(Boolean);
// BENCH_STREAM_IDLE_TIMEOUT_MS=0 measures the sidecar with response-body watching off (the route
// knob streamIdleTimeoutMs); unset, the route has the policy's default.
const STREAM_IDLE_TIMEOUT_MS = process.env.BENCH_STREAM_IDLE_TIMEOUT_MS;
/** The results file, under bench/results/. */
const OUT_FILE = process.env.BENCH_OUT ?? "overhead.json";

const DIRECT = instanceName("bench", "upstream-1");
const SIDECAR = sidecarName("upstream");
const PROXY = "bench-null-proxy";
const BASELINE = `${SIDECAR}-baseline`;

process.env.WRANGLER_SEND_METRICS = "false";
// The machine is shared: say how busy it was, so a reader can judge the numbers.
const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
await buildWorkers();
const baselineFile = BASELINE_REF ? await bundleSidecarAt(BASELINE_REF) : undefined;
const variantFiles = await Promise.all(VARIANT_REFS.map((ref) => bundleSidecarAt(ref)));
const variantName = (i: number) => `${SIDECAR}-variant-${i}`;
const variantBindings = Object.fromEntries(variantFiles.map((_, i) => [`VARIANT_${i}`, variantName(i)]));
const meshOptions: MeshOptions = {
  topology: {
    mesh: "bench",
    services: { upstream: [{ id: "upstream-1", binding: "UPSTREAM_1", script: "bench-upstream" }] },
    extraWorkers: [
      { name: "bench-client", script: "bench-client", serviceBindings: { DIRECT, SIDECAR, PROXY, ...(baselineFile ? { BASELINE } : {}), ...variantBindings } },
      { name: PROXY, script: "bench-proxy", serviceBindings: { UPSTREAM: DIRECT } },
    ],
  },
  exposeWorkers: [DIRECT, SIDECAR, PROXY],
  // Not the local telemetry store (production writes to Analytics Engine); the telemetry phase
  // below measures the sinks.
  sidecarTelemetryStore: false,
};
const workers = await meshWorkers(meshOptions);
// The same Worker as today's sidecar (bindings, vars, Durable Object), other code.
const today = workers.find((w) => w.name === SIDECAR)!;
const sidecarFrom = async (name: string, file: string) =>
  workers.push({ ...today, name, ...(await moduleOptions(file)), unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] });
if (baselineFile) await sidecarFrom(BASELINE, baselineFile);
for (const [i, file] of variantFiles.entries()) await sidecarFrom(variantName(i), file);
const mf = new Miniflare({ host: "127.0.0.1", port: 0, cf: { colo: "LCL" }, log: new Log(LogLevel.WARN), workers });

const benchService = {
  endpoints: [{ id: "upstream-1", binding: "UPSTREAM_1" }],
  ...(STREAM_IDLE_TIMEOUT_MS !== undefined ? { subsets: { all: {} }, routes: [{ name: "all", to: [{ subset: "all" }], streamIdleTimeoutMs: Number(STREAM_IDLE_TIMEOUT_MS) }] } : {}),
};

try {
  await mf.ready;
  const controlUrl = await mf.unsafeGetDirectURL(CONTROL_WORKER);
  await adminClient(controlUrl)("/v1/policy", { method: "POST", body: JSON.stringify({ mesh: "bench", services: { upstream: benchService } }) });
  const urls: Record<Target, URL> = {
    direct: await mf.unsafeGetDirectURL(DIRECT),
    sidecar: await mf.unsafeGetDirectURL(SIDECAR),
    proxy: await mf.unsafeGetDirectURL(PROXY),
    baseline: baselineFile ? await mf.unsafeGetDirectURL(BASELINE) : new URL("http://unused"),
  };
  for (const i of variantFiles.keys()) urls[`variant-${i}`] = await mf.unsafeGetDirectURL(variantName(i));
  const client = await mf.getWorker("bench-client");
  const workerdPid = onlyWorkerdPid();
  /** Total ticks (utime + stime) of the whole run, as a check on the fine-grained readings. */
  let statCpuMs = 0;
  let fineCpuMs = 0;
  /** Runs a phase of `requests` requests and returns the workerd CPU time they took, in µs per request. */
  async function cpuPerRequestUs(requests: number, phase: () => Promise<unknown>): Promise<number> {
    const statBefore = processCpuMs(workerdPid);
    const before = processCpuMsFine(workerdPid);
    await phase();
    const usedMs = processCpuMsFine(workerdPid) - before;
    statCpuMs += processCpuMs(workerdPid) - statBefore;
    fineCpuMs += usedMs;
    return (usedMs * 1000) / requests;
  }

  // workerd closes idle keep-alive connections, so each phase gets fresh ones of its own.
  const get = (url: URL, agent: Agent) =>
    new Promise<number>((resolve, reject) => {
      const req = request(url, { agent, method: "GET", path: "/bench" }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end();
    });

  async function sequential(url: URL, n: number, into: number[]): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await get(url, agent);
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      const status = await get(url, agent);
      into.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (status !== 200) throw new Error(`${url.href} answered ${status}`);
    }
    agent.destroy();
  }

  async function socketThroughput(url: URL): Promise<{ rps: number; requests: number }> {
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    let done = 0;
    const until = performance.now() + THROUGHPUT_MS;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until) {
          await get(url, agent);
          done++;
        }
      }),
    );
    agent.destroy();
    return { rps: done / ((performance.now() - started) / 1000), requests: done };
  }

  async function inWorkerd(target: Target, requests: number, concurrency: number): Promise<{ meanMs: number; rps: number }> {
    const binding = target === "baseline" ? "BASELINE" : target.startsWith("variant-") ? `VARIANT_${target.slice("variant-".length)}` : target;
    const res = await client.fetch(`http://bench/run?target=${binding}&requests=${requests}&concurrency=${concurrency}`);
    const body = (await res.json()) as { wallMs: number; failures: number };
    if (body.failures > 0) throw new Error(`${target}: ${body.failures} failed requests`);
    return { meanMs: (body.wallMs / requests) * concurrency, rps: requests / (body.wallMs / 1000) };
  }

  // Warm every path: JIT, the sidecar's snapshot, keep-alive sockets.
  const TARGETS: Target[] = [...(baselineFile ? ["direct", "sidecar", "proxy", "baseline"] : ["direct", "sidecar", "proxy"]), ...variantFiles.map((_, i) => `variant-${i}`)];
  const urlOf = (t: Target) => urls[t] ?? new URL("http://unused");
  for (const t of TARGETS) {
    await sequential(urlOf(t), 500, []);
    await inWorkerd(t, 2000, 1);
  }

  type Series = Record<"direct" | "sidecar" | "proxy" | "baseline", number[]> & Record<Target, number[]>;
  const series = (): Series => Object.fromEntries(["direct", "sidecar", "proxy", "baseline", ...TARGETS].map((t) => [t, [] as number[]])) as unknown as Series;
  const at = (xs: Series, t: Target): number[] => xs[t] ?? (xs[t] = []);
  const lat = series();
  const sockRps = series();
  const wdMean = series();
  const wdRps = series();
  const cpuSocket = series();
  const cpuWdSequential = series();
  const cpuWdConcurrent = series();
  const WD_CONCURRENT = 12000;
  // Rotate which goes first so drift (thermal, GC) does not favour one side.
  const rotated = (round: number) => TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]!);
  for (let round = 0; round < (HOP_ONLY ? 0 : ROUNDS); round++) {
    for (const target of rotated(round)) {
      const perRound = SEQUENTIAL / ROUNDS;
      at(cpuSocket, target).push(await cpuPerRequestUs(perRound, () => sequential(urlOf(target), perRound, at(lat, target))));
      at(sockRps, target).push((await socketThroughput(urlOf(target))).rps);
      at(cpuWdConcurrent, target).push(await cpuPerRequestUs(WD_CONCURRENT, async () => at(wdRps, target).push((await inWorkerd(target, WD_CONCURRENT, CONCURRENCY)).rps)));
    }
  }
  for (let round = 0; round < WD_ROUNDS; round++) {
    for (const target of rotated(round)) {
      at(cpuWdSequential, target).push(await cpuPerRequestUs(WD_BATCH, async () => at(wdMean, target).push((await inWorkerd(target, WD_BATCH, 1)).meanMs)));
    }
  }

  const median = (xs: number[]) => percentile(xs, 50);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  // How the sidecar's answers went out: read whole before answering, or streamed (stream.ts).
  const resilienceView = await fetch(new URL("/v1/sidecars/upstream/debug/resilience", controlUrl), { headers: { authorization: `Bearer ${DEFAULT_ADMIN_TOKEN}` } });
  const sidecarBodies = ((await resilienceView.json()) as { bodies?: Record<string, number> }).bodies;
  if (HOP_ONLY) {
    console.log(`sidecar answers by body: ${JSON.stringify(sidecarBodies)}`);
    const cpuOf = (t: Target) => median(at(cpuWdSequential, t));
    const latOf = (t: Target) => median(at(wdMean, t));
    const hop = (f: (t: Target) => number, t: Target) => (f(t) - f("direct")) / (f("proxy") - f("direct"));
    console.log(`workerd CPU/req (µs): direct ${cpuOf("direct").toFixed(1)}, sidecar ${cpuOf("sidecar").toFixed(1)}, null proxy ${cpuOf("proxy").toFixed(1)}; hop cost: CPU ${hop(cpuOf, "sidecar").toFixed(3)}, latency ${hop(latOf, "sidecar").toFixed(3)} (medians of ${WD_ROUNDS} rounds of ${WD_BATCH})`);
    if (baselineFile) console.log(`baseline ${BASELINE_REF}: CPU/req ${cpuOf("baseline").toFixed(1)} µs; hop cost: CPU ${hop(cpuOf, "baseline").toFixed(3)}, latency ${hop(latOf, "baseline").toFixed(3)}`);
    for (const [i, ref] of VARIANT_REFS.entries()) {
      const t = `variant-${i}`;
      console.log(`variant ${i} (${ref}): CPU/req ${cpuOf(t).toFixed(1)} µs; hop cost: CPU ${hop(cpuOf, t).toFixed(3)}, latency ${hop(latOf, t).toFixed(3)}`);
    }
    await mf.dispose();
    process.exit(0);
  }
  // Throughput drifts between rounds (the machine is shared); a ratio of two measurements taken
  // back to back in one round is steadier than a ratio of medians, so ratios are medians of those.
  const pairedRatio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  // How many bare hops the sidecar costs, per round: (sidecar - direct) / (null proxy - direct).
  const hopCost = (s: number[], d: number[], p: number[]) => s.map((x, i) => (x - d[i]!) / (p[i]! - d[i]!));
  const hopCostPerRound = hopCost(wdMean.sidecar, wdMean.direct, wdMean.proxy);
  const cpuHopCostPerRound = hopCost(cpuWdSequential.sidecar, cpuWdSequential.direct, cpuWdSequential.proxy);
  // A round now and then catches a garbage collection or a neighbour's burst (several times the usual
  // cost): medians over rounds keep those out, so the ratio is built from them. Every round has the
  // same number of requests, so the mean over rounds is the pooled mean, reported beside it.
  const medianHopCost = (s: number[], d: number[], p: number[]) => (median(s) - median(d)) / (median(p) - median(d));
  const pooledHopCost = (s: number[], d: number[], p: number[]) => (mean(s) - mean(d)) / (mean(p) - mean(d));
  const us = (x: number) => Math.round(x * 10) / 10;

  const result = {
    measured_at: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${os.cpus().length} cores`,
    load_average_1_5_15_min: { at_start: loadAtStart, at_end: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    method: "socket: Node http keep-alive client, sequential requests, hrtime; workerd: client Worker over service bindings",
    requests_per_side: SEQUENTIAL,
    direct_p50_ms: r3(percentile(lat.direct, 50)),
    sidecar_p50_ms: r3(percentile(lat.sidecar, 50)),
    direct_p99_ms: r3(percentile(lat.direct, 99)),
    sidecar_p99_ms: r3(percentile(lat.sidecar, 99)),
    added_p50_ms: r3(percentile(lat.sidecar, 50) - percentile(lat.direct, 50)),
    added_p99_ms: r3(percentile(lat.sidecar, 99) - percentile(lat.direct, 99)),
    direct_rps: Math.round(median(wdRps.direct)),
    sidecar_rps: Math.round(median(wdRps.sidecar)),
    throughput_ratio: r3(pairedRatio(wdRps.sidecar, wdRps.direct)),
    throughput_ratio_per_round: wdRps.sidecar.map((x, i) => r3(x / wdRps.direct[i]!)),
    in_workerd_direct_mean_ms: r3(median(wdMean.direct)),
    in_workerd_sidecar_mean_ms: r3(median(wdMean.sidecar)),
    in_workerd_added_mean_ms: r3(median(wdMean.sidecar) - median(wdMean.direct)),
    socket_direct_rps: Math.round(median(sockRps.direct)),
    socket_sidecar_rps: Math.round(median(sockRps.sidecar)),
    socket_throughput_ratio: r3(pairedRatio(sockRps.sidecar, sockRps.direct)),
    null_proxy_p50_ms: r3(percentile(lat.proxy, 50)),
    null_proxy_p99_ms: r3(percentile(lat.proxy, 99)),
    null_proxy_rps: Math.round(median(wdRps.proxy)),
    null_proxy_throughput_ratio: r3(pairedRatio(wdRps.proxy, wdRps.direct)),
    sidecar_vs_null_proxy_throughput_ratio: r3(pairedRatio(wdRps.sidecar, wdRps.proxy)),
    in_workerd_null_proxy_mean_ms: r3(median(wdMean.proxy)),
    socket_null_proxy_rps: Math.round(median(sockRps.proxy)),
    hop_cost_ratio: r3(medianHopCost(wdMean.sidecar, wdMean.direct, wdMean.proxy)),
    hop_cost_ratio_per_round: hopCostPerRound.map(r3),
    hop_cost_ratio_pooled: r3(pooledHopCost(wdMean.sidecar, wdMean.direct, wdMean.proxy)),
    hop_cost_rounds: WD_ROUNDS,
    hop_cost_requests_per_round: WD_BATCH,
    // workerd CPU time (all its threads: the client Worker, the path under test and the upstream)
    // per request, medians over rounds, from the scheduler's nanosecond count (schedstat). The
    // utime + stime ticks of /proc/<pid>/stat (cpu_tick_ms each) over all phases are given beside
    // the nanosecond total as a cross-check.
    cpu_tick_ms: cpuTickMs(),
    cpu_ms_total: { stat_utime_stime: Math.round(statCpuMs), schedstat: Math.round(fineCpuMs) },
    cpu_us_per_request: {
      in_workerd_sequential: { direct: us(median(cpuWdSequential.direct)), sidecar: us(median(cpuWdSequential.sidecar)), null_proxy: us(median(cpuWdSequential.proxy)) },
      in_workerd_concurrent: { direct: us(median(cpuWdConcurrent.direct)), sidecar: us(median(cpuWdConcurrent.sidecar)), null_proxy: us(median(cpuWdConcurrent.proxy)) },
      socket_sequential: { direct: us(median(cpuSocket.direct)), sidecar: us(median(cpuSocket.sidecar)), null_proxy: us(median(cpuSocket.proxy)) },
    },
    cpu_us_per_request_per_round: {
      in_workerd_sequential: { direct: cpuWdSequential.direct.map(us), sidecar: cpuWdSequential.sidecar.map(us), null_proxy: cpuWdSequential.proxy.map(us) },
    },
    cpu_hop_cost_ratio: r3(medianHopCost(cpuWdSequential.sidecar, cpuWdSequential.direct, cpuWdSequential.proxy)),
    cpu_hop_cost_ratio_pooled: r3(pooledHopCost(cpuWdSequential.sidecar, cpuWdSequential.direct, cpuWdSequential.proxy)),
    cpu_hop_cost_ratio_per_round: cpuHopCostPerRound.map(r3),
    concurrency: CONCURRENCY,
    // How the sidecar's answers went out over the whole run (the admin API's resilience debug view): whole =
    // read before answering (the cheap path), streamed = watched as they came.
    sidecar_bodies: sidecarBodies,
    policy: { upstream: benchService },
    ...(baselineFile
      ? {
          baseline: {
            ref: BASELINE_REF,
            commit: execFileSync("git", ["rev-parse", BASELINE_REF], { cwd: ROOT, encoding: "utf8" }).trim(),
            socket_p50_ms: r3(percentile(lat.baseline, 50)),
            in_workerd_mean_ms: r3(median(wdMean.baseline)),
            cpu_us_per_request_in_workerd_sequential: us(median(cpuWdSequential.baseline)),
            hop_cost_ratio: r3(medianHopCost(wdMean.baseline, wdMean.direct, wdMean.proxy)),
            hop_cost_ratio_per_round: hopCost(wdMean.baseline, wdMean.direct, wdMean.proxy).map(r3),
            cpu_hop_cost_ratio: r3(medianHopCost(cpuWdSequential.baseline, cpuWdSequential.direct, cpuWdSequential.proxy)),
          },
        }
      : {}),
    targets: { added_p50_ms_max: 0.3, throughput_ratio_min: 0.7, hop_cost_ratio_max: 1.5 },
  };

  const row = (name: string, d: number | string, s: number | string, ratio: string, p: number | string) =>
    console.log(`${name.padEnd(32)}${String(d).padStart(10)}${String(s).padStart(10)}${ratio.padStart(13)}${String(p).padStart(12)}`);
  console.log(`\nsidecar overhead, ${SEQUENTIAL} sequential requests a side, ${ROUNDS} interleaved rounds\n`);
  row("", "direct", "sidecar", "sidecar-dir", "null proxy");
  row("socket p50 (ms)", result.direct_p50_ms, result.sidecar_p50_ms, `+${result.added_p50_ms}`, result.null_proxy_p50_ms);
  row("socket p99 (ms)", result.direct_p99_ms, result.sidecar_p99_ms, `+${result.added_p99_ms}`, result.null_proxy_p99_ms);
  row(`socket req/s (c=${CONCURRENCY})`, result.socket_direct_rps, result.socket_sidecar_rps, `x${result.socket_throughput_ratio}`, result.socket_null_proxy_rps);
  row("in-workerd mean latency (ms)", result.in_workerd_direct_mean_ms, result.in_workerd_sidecar_mean_ms, `+${result.in_workerd_added_mean_ms}`, result.in_workerd_null_proxy_mean_ms);
  row(`in-workerd req/s (c=${CONCURRENCY})`, result.direct_rps, result.sidecar_rps, `x${result.throughput_ratio}`, result.null_proxy_rps);
  console.log(`\nreq/s columns are medians over rounds; ratios are medians of per-round ratios (in-workerd per round: ${result.throughput_ratio_per_round.join(", ")})`);
  const cpu = result.cpu_us_per_request;
  row("workerd CPU/req, in-workerd (µs)", cpu.in_workerd_sequential.direct, cpu.in_workerd_sequential.sidecar, `+${us(cpu.in_workerd_sequential.sidecar - cpu.in_workerd_sequential.direct)}`, cpu.in_workerd_sequential.null_proxy);
  row(`workerd CPU/req, c=${CONCURRENCY} (µs)`, cpu.in_workerd_concurrent.direct, cpu.in_workerd_concurrent.sidecar, `+${us(cpu.in_workerd_concurrent.sidecar - cpu.in_workerd_concurrent.direct)}`, cpu.in_workerd_concurrent.null_proxy);
  row("workerd CPU/req, socket (µs)", cpu.socket_sequential.direct, cpu.socket_sequential.sidecar, `+${us(cpu.socket_sequential.sidecar - cpu.socket_sequential.direct)}`, cpu.socket_sequential.null_proxy);
  console.log(`\nhop cost (sidecar - direct) / (null proxy - direct), in-workerd mean latency, medians of ${WD_ROUNDS} rounds of ${WD_BATCH}: ${result.hop_cost_ratio} (pooled: ${result.hop_cost_ratio_pooled}; per round: ${result.hop_cost_ratio_per_round.join(", ")})`);
  console.log(`hop cost from workerd CPU per request: ${result.cpu_hop_cost_ratio} (pooled: ${result.cpu_hop_cost_ratio_pooled}; per round: ${result.cpu_hop_cost_ratio_per_round.join(", ")})`);
  if (result.baseline) {
    const b = result.baseline;
    console.log(`baseline ${b.ref} (${b.commit.slice(0, 7)}), same run: hop cost ${b.hop_cost_ratio} (CPU ${b.cpu_hop_cost_ratio}); workerd CPU/req ${b.cpu_us_per_request_in_workerd_sequential} µs; in-workerd mean ${b.in_workerd_mean_ms} ms; socket p50 ${b.socket_p50_ms} ms`);
  }
  console.log(`the extra hop alone (null proxy) keeps ${Math.round(result.null_proxy_throughput_ratio * 100)}% of direct in-workerd throughput; the sidecar keeps ${Math.round(result.sidecar_vs_null_proxy_throughput_ratio * 100)}% of the null proxy's`);
  const okP50 = result.added_p50_ms <= 0.3;
  const okRps = result.throughput_ratio >= 0.7;
  const okHop = result.hop_cost_ratio <= 1.5;
  console.log(`\ntarget: added p50 <= 0.3 ms: ${okP50 ? "met" : "NOT met"} (${result.added_p50_ms} ms); throughput >= 70% of direct: ${okRps ? "met" : "NOT met"} (${Math.round(result.throughput_ratio * 100)}%); hop cost <= 1.5: ${okHop ? "met" : "NOT met"} (${result.hop_cost_ratio})`);

  // Telemetry on and off, in a mesh of its own (scripts/bench/telemetry-overhead.ts).
  const telemetry: TelemetryOverhead | undefined = process.env.BENCH_TELEMETRY === "0" ? undefined : await measureTelemetryOverhead();

  await writeBenchResults(OUT_FILE, { ...result, ...telemetry });
} finally {
  await mf.dispose();
}
