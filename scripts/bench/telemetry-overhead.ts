// The telemetry phase of `npm run bench:overhead`: what recording a data point per request costs.
// Two services, each a sidecar in front of its own copy of the benchmark upstream, identical but
// for the policy knob `telemetry.enabled`: the traced one writes every request to the local
// telemetry store (batched, as under `npm start`), the other records nothing. A client Worker
// inside workerd drives both in interleaved rounds; per round it measures requests/s and the CPU
// time the whole workerd process spent per request (from /proc: every thread's run time), so the
// difference is what telemetry adds, its store flushes included.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { percentile } from "./stats.ts";
import { instanceName, sidecarName, startMesh } from "../mesh.ts";

const ROUNDS = Number(process.env.BENCH_TELEMETRY_ROUNDS ?? 8);
const REQUESTS = Number(process.env.BENCH_TELEMETRY_REQUESTS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

/** workerd processes that are children of this one. */
function workerdPids(): Set<number> {
  const pids = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm.startsWith("workerd") && ppid === process.pid) pids.add(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** CPU time a process has run, in ns: the sum over its threads (/proc/<pid>/task/<tid>/schedstat). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended while we looked.
    }
  }
  return total;
}

export interface TelemetryOverhead {
  telemetry_throughput_ratio: number;
  telemetry_throughput_ratio_per_round: number[];
  telemetry_on_rps: number;
  telemetry_off_rps: number;
  telemetry_on_cpu_us_per_request: number;
  telemetry_off_cpu_us_per_request: number;
  telemetry_added_cpu_us_per_request: number;
  telemetry_sink: string;
  telemetry_rows_written: number;
  telemetry_rows_dropped: number;
  telemetry_target: { throughput_ratio_min: number };
}

export async function measureTelemetryOverhead(log: (line: string) => void = console.log): Promise<TelemetryOverhead> {
  const before = workerdPids();
  const mesh = await startMesh({
    topology: {
      mesh: "bench-telemetry",
      services: {
        traced: [{ id: "traced-1", binding: "UPSTREAM_1", script: "bench-upstream" }],
        untraced: [{ id: "untraced-1", binding: "UPSTREAM_1", script: "bench-upstream" }],
      },
      // The benchmark client's two targets: "sidecar" is the traced service, "direct" the untraced one.
      extraWorkers: [{ name: "bench-client", script: "bench-client", serviceBindings: { SIDECAR: sidecarName("traced"), DIRECT: sidecarName("untraced"), PROXY: instanceName("bench-telemetry", "traced-1") } }],
    },
  });
  try {
    const pid = [...workerdPids()].find((p) => !before.has(p));
    if (pid === undefined) throw new Error("cannot find the benchmark's workerd process in /proc");
    const endpoint = { endpoints: [{ id: "u", binding: "UPSTREAM_1" }] };
    const applied = await mesh.applyPolicy({ mesh: "bench-telemetry", services: { traced: endpoint, untraced: { ...endpoint, telemetry: { enabled: false } } } });
    if (applied.status !== 201) throw new Error(`policy refused: ${await applied.text()}`);
    const client = await mesh.mf.getWorker("bench-client");
    const run = async (target: "sidecar" | "direct", requests: number) => {
      const cpuBefore = cpuNs(pid);
      const res = await client.fetch(`http://bench/run?target=${target}&requests=${requests}&concurrency=${CONCURRENCY}`);
      const body = (await res.json()) as { wallMs: number; failures: number };
      const cpu = cpuNs(pid) - cpuBefore;
      if (body.failures > 0) throw new Error(`${target}: ${body.failures} failed requests`);
      return { rps: requests / (body.wallMs / 1000), cpuUsPerRequest: cpu / 1000 / requests };
    };
    // Warm both: JIT, snapshots, the store's first batches.
    await run("sidecar", 3000);
    await run("direct", 3000);

    const on = { rps: [] as number[], cpu: [] as number[] };
    const off = { rps: [] as number[], cpu: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first so drift does not favour one side.
      for (const traced of round % 2 === 0 ? [true, false] : [false, true]) {
        const r = await run(traced ? "sidecar" : "direct", REQUESTS);
        const into = traced ? on : off;
        into.rps.push(r.rps);
        into.cpu.push(r.cpuUsPerRequest);
      }
    }
    const median = (xs: number[]) => percentile(xs, 50);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    const perRound = on.rps.map((x, i) => x / off.rps[i]!);
    const cpuAdded = on.cpu.map((x, i) => x - off.cpu[i]!);
    const status = (await (await (await mesh.mf.getWorker(sidecarName("traced"))).fetch("http://bench/__edgemesh/telemetry", { headers: { authorization: `Bearer ${mesh.adminToken}` } })).json()) as {
      sink: string; written: number; dropped: Record<string, number>;
    };
    const result: TelemetryOverhead = {
      telemetry_throughput_ratio: r3(median(perRound)),
      telemetry_throughput_ratio_per_round: perRound.map(r3),
      telemetry_on_rps: Math.round(median(on.rps)),
      telemetry_off_rps: Math.round(median(off.rps)),
      telemetry_on_cpu_us_per_request: r3(median(on.cpu)),
      telemetry_off_cpu_us_per_request: r3(median(off.cpu)),
      telemetry_added_cpu_us_per_request: r3(median(cpuAdded)),
      telemetry_sink: status.sink,
      telemetry_rows_written: status.written,
      telemetry_rows_dropped: Object.values(status.dropped).reduce((a, b) => a + b, 0),
      telemetry_target: { throughput_ratio_min: 0.95 },
    };
    log(`\ntelemetry, ${ROUNDS} interleaved rounds of ${REQUESTS} requests a side (c=${CONCURRENCY}), sink: ${result.telemetry_sink}`);
    log(`  req/s          on ${result.telemetry_on_rps}  off ${result.telemetry_off_rps}  ratio x${result.telemetry_throughput_ratio} (per round: ${result.telemetry_throughput_ratio_per_round.join(", ")})`);
    log(`  CPU us/request on ${result.telemetry_on_cpu_us_per_request}  off ${result.telemetry_off_cpu_us_per_request}  added ${result.telemetry_added_cpu_us_per_request} (workerd process, all threads)`);
    log(`  rows written ${result.telemetry_rows_written}, dropped ${result.telemetry_rows_dropped}`);
    log(`  target: telemetry costs <= 5% of throughput: ${result.telemetry_throughput_ratio >= 0.95 ? "met" : "NOT met"}`);
    return result;
  } finally {
    await mesh.dispose();
  }
}

// Alone: `npx tsx scripts/bench/telemetry-overhead.ts` prints the phase without the rest of bench:overhead.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.env.WRANGLER_SEND_METRICS = "false";
  console.log(JSON.stringify(await measureTelemetryOverhead(), null, 2));
}
