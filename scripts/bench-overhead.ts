// `npm run bench:overhead`: what the sidecar costs per hop. The same requests go straight to the
// upstream Worker and through its sidecar, in one run on this machine, measured two ways:
//  - over a real socket from Node (keep-alive, microsecond clock): per-request p50/p99;
//  - from inside workerd (a client Worker calling both over service bindings): mean latency and
//    requests/s with Node out of the path. workerd's clock only ticks in whole milliseconds, so
//    inside it we time batches, not single requests.
// A third path, a Worker that only forwards (scripts/bench/proxy-worker.ts), separates the price
// of any extra Worker hop from the price of the sidecar's own work.
// Prints a table and writes bench/results/overhead.json.
import { Agent, request } from "node:http";
import { percentile } from "./bench/stats.ts";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ROOT } from "./build.ts";
import { instanceName, sidecarName, startMesh } from "./mesh.ts";
import { measureTelemetryOverhead, type TelemetryOverhead } from "./bench/telemetry-overhead.ts";

const SEQUENTIAL = Number(process.env.BENCH_REQUESTS ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 2000);

const DIRECT = instanceName("bench", "upstream-1");
const SIDECAR = sidecarName("upstream");
const PROXY = "bench-null-proxy";

process.env.WRANGLER_SEND_METRICS = "false";
const mesh = await startMesh({
  topology: {
    mesh: "bench",
    services: { upstream: [{ id: "upstream-1", binding: "UPSTREAM_1", script: "bench-upstream" }] },
    extraWorkers: [
      { name: "bench-client", script: "bench-client", serviceBindings: { DIRECT, SIDECAR, PROXY } },
      { name: PROXY, script: "bench-proxy", serviceBindings: { UPSTREAM: DIRECT } },
    ],
  },
  exposeWorkers: [DIRECT, SIDECAR, PROXY],
  // Not the local telemetry store (production writes to Analytics Engine); the telemetry phase
  // below measures the sinks.
  sidecarTelemetryStore: false,
});

try {
  const applied = await mesh.applyPolicy({ mesh: "bench", services: { upstream: { endpoints: [{ id: "upstream-1", binding: "UPSTREAM_1" }] } } });
  if (applied.status !== 201) throw new Error(`policy refused: ${await applied.text()}`);
  const urls = { direct: await mesh.directUrl(DIRECT), sidecar: await mesh.directUrl(SIDECAR), proxy: await mesh.directUrl(PROXY) };
  const client = await mesh.mf.getWorker("bench-client");

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

  async function socketThroughput(url: URL): Promise<number> {
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
    return done / ((performance.now() - started) / 1000);
  }

  type Target = "direct" | "sidecar" | "proxy";
  async function inWorkerd(target: Target, requests: number, concurrency: number): Promise<{ meanMs: number; rps: number }> {
    const res = await client.fetch(`http://bench/run?target=${target}&requests=${requests}&concurrency=${concurrency}`);
    const body = (await res.json()) as { wallMs: number; failures: number };
    if (body.failures > 0) throw new Error(`${target}: ${body.failures} failed requests`);
    return { meanMs: (body.wallMs / requests) * concurrency, rps: requests / (body.wallMs / 1000) };
  }

  // Warm both paths: JIT, the sidecar's snapshot, keep-alive sockets.
  const TARGETS: Target[] = ["direct", "sidecar", "proxy"];
  for (const t of TARGETS) {
    await sequential(urls[t], 500, []);
    await inWorkerd(t, 2000, 1);
  }

  const series = () => ({ direct: [] as number[], sidecar: [] as number[], proxy: [] as number[] });
  const lat = series();
  const sockRps = series();
  const wdMean = series();
  const wdRps = series();
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate which goes first so drift (thermal, GC) does not favour one side.
    const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]!);
    for (const target of order) {
      await sequential(urls[target], SEQUENTIAL / ROUNDS, lat[target]);
      sockRps[target].push(await socketThroughput(urls[target]));
      wdMean[target].push((await inWorkerd(target, 5000, 1)).meanMs);
      wdRps[target].push((await inWorkerd(target, 12000, CONCURRENCY)).rps);
    }
  }

  const median = (xs: number[]) => percentile(xs, 50);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  // Throughput drifts between rounds (the machine is shared); a ratio of two measurements taken
  // back to back in one round is steadier than a ratio of medians, so ratios are medians of those.
  const pairedRatio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));

  const result = {
    measured_at: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
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
    concurrency: CONCURRENCY,
    targets: { added_p50_ms_max: 0.3, throughput_ratio_min: 0.7 },
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
  console.log(`the extra hop alone (null proxy) keeps ${Math.round(result.null_proxy_throughput_ratio * 100)}% of direct in-workerd throughput; the sidecar keeps ${Math.round(result.sidecar_vs_null_proxy_throughput_ratio * 100)}% of the null proxy's`);
  const okP50 = result.added_p50_ms <= 0.3;
  const okRps = result.throughput_ratio >= 0.7;
  console.log(`\ntarget: added p50 <= 0.3 ms: ${okP50 ? "met" : "NOT met"} (${result.added_p50_ms} ms); throughput >= 70% of direct: ${okRps ? "met" : "NOT met"} (${Math.round(result.throughput_ratio * 100)}%)`);

  // Telemetry on and off, in a mesh of its own (scripts/bench/telemetry-overhead.ts).
  const telemetry: TelemetryOverhead | undefined = process.env.BENCH_TELEMETRY === "0" ? undefined : await measureTelemetryOverhead();

  const out = path.join(ROOT, "bench/results/overhead.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({ ...result, ...telemetry }, null, 2) + "\n");
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
} finally {
  await mesh.dispose();
}
