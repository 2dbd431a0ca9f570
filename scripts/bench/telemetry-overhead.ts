// The telemetry phase of `npm run bench:overhead`: what recording a data point per request costs.
// Three services, each a sidecar in front of its own copy of the benchmark upstream, identical but
// for telemetry: "untraced" has `telemetry.enabled: false`; "traced" writes every request to the
// local telemetry store (batched, as under `npm start`); "traced-ae" writes every request to an
// Analytics Engine binding, as in production (Miniflare's binding stores nothing, so this measures
// the sidecar's side only). A client Worker inside workerd drives them in interleaved rounds; per
// round it measures requests/s and the CPU time the whole workerd process spent per request (from
// /proc: every thread's run time), so the difference is what telemetry adds, store flushes included.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findDescendants, processCpuMsFine } from "./process-cpu.ts";
import { percentile } from "./stats.ts";
import { CONTROL_WORKER, instanceName, sidecarName, startMesh } from "../mesh.ts";
import { REQUESTS_DATASET, toDataPoint } from "../../analytics/request-layout.ts";
import { outcomeOf, recordOf, startTrace } from "../../workers/sidecar/telemetry.ts";

const ROUNDS = Number(process.env.BENCH_TELEMETRY_ROUNDS ?? 20);
const REQUESTS = Number(process.env.BENCH_TELEMETRY_REQUESTS ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

export interface TelemetryOverhead {
  /** Local store sink (as under `npm start`) over telemetry off. */
  telemetry_throughput_ratio: number;
  telemetry_throughput_ratio_per_round: number[];
  telemetry_on_rps: number;
  telemetry_off_rps: number;
  telemetry_on_cpu_us_per_request: number;
  telemetry_off_cpu_us_per_request: number;
  telemetry_added_cpu_us_per_request: number;
  /** Analytics Engine sink (production's) over telemetry off. */
  telemetry_ae_throughput_ratio: number;
  telemetry_ae_throughput_ratio_per_round: number[];
  telemetry_ae_rps: number;
  telemetry_ae_added_cpu_us_per_request: number;
  /** The per-request logic alone (trace, outcome, record, data point) in Node's V8: no runtime, no noise from the machine's other work. */
  telemetry_logic_us_per_request: number;
  telemetry_sink: string;
  telemetry_rows_written: number;
  telemetry_rows_dropped: number;
  telemetry_target: { throughput_ratio_min: number };
}

/** Times the sidecar's per-request telemetry logic in a tight loop (median of 5 runs). */
function logicMicroseconds(iterations = 200_000): number {
  const request = new Request("http://reviews/reviews/0", { headers: { "content-length": "0", "end-user": "jason" } });
  const response = new Response("{}", { headers: { "content-type": "application/json" } });
  const runs: number[] = [];
  let sink = 0;
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      const trace = startTrace(request, "productpage", 0);
      trace.route = "default";
      trace.attempts = 1;
      const { outcome, reason } = outcomeOf(response, trace.attempts);
      sink += toDataPoint(recordOf(trace, { mesh: "bookinfo", destination: "reviews" }, 200, outcome, reason, 3, -1)).doubles.length;
    }
    runs.push(Number(process.hrtime.bigint() - t0) / 1000 / iterations);
  }
  if (sink === 0) throw new Error("unreachable: keeps the loop from being optimised away");
  return percentile(runs, 50);
}

export async function measureTelemetryOverhead(log: (line: string) => void = console.log): Promise<TelemetryOverhead> {
  const before = new Set(findDescendants("workerd"));
  const mesh = await startMesh({
    topology: {
      mesh: "bench-telemetry",
      services: {
        traced: [{ id: "traced-1", binding: "UPSTREAM_1", script: "bench-upstream" }],
        untraced: [{ id: "untraced-1", binding: "UPSTREAM_1", script: "bench-upstream" }],
        "traced-ae": [{ id: "traced-ae-1", binding: "UPSTREAM_1", script: "bench-upstream" }],
      },
      extraWorkers: [
        // The benchmark client's targets: "sidecar" is the traced service, "direct" the untraced one, "proxy" the traced-ae one.
        { name: "bench-client", script: "bench-client", serviceBindings: { SIDECAR: sidecarName("traced"), DIRECT: sidecarName("untraced"), PROXY: "traced-ae-sidecar" } },
        // traced-ae's sidecar with an Analytics Engine binding instead of the store.
        {
          name: "traced-ae-sidecar",
          script: "sidecar",
          vars: { SERVICE_NAME: "traced-ae", MESH_NAME: "bench-telemetry" },
          serviceBindings: { UPSTREAM_1: instanceName("bench-telemetry", "traced-ae-1") },
          options: {
            durableObjects: { MESH_CONTROL: { className: "MeshControl", scriptName: CONTROL_WORKER, useSQLite: true } },
            analyticsEngineDatasets: { TELEMETRY: { dataset: REQUESTS_DATASET } },
          },
        },
      ],
    },
  });
  try {
    const pid = findDescendants("workerd").find((p) => !before.has(p));
    if (pid === undefined) throw new Error("cannot find the benchmark's workerd process in /proc");
    const endpoint = { endpoints: [{ id: "u", binding: "UPSTREAM_1" }] };
    const applied = await mesh.applyPolicy({ mesh: "bench-telemetry", services: { traced: endpoint, "traced-ae": endpoint, untraced: { ...endpoint, telemetry: { enabled: false } } } });
    if (applied.status !== 201) throw new Error(`policy refused: ${await applied.text()}`);
    const client = await mesh.mf.getWorker("bench-client");
    const telemetryStatus = async () =>
      (await mesh.sidecarView("traced", "telemetry")) as {
        sink: string; written: number; buffered: number; inFlight: number; dropped: Record<string, number>;
      };
    const run = async (target: "sidecar" | "direct" | "proxy", requests: number) => {
      const cpuBeforeMs = processCpuMsFine(pid);
      const res = await client.fetch(`http://bench/run?target=${target}&requests=${requests}&concurrency=${CONCURRENCY}`);
      const body = (await res.json()) as { wallMs: number; failures: number };
      // The store's share of the work ends when the last rows are in: it counts for this side,
      // and must not spill into the next one's measurement.
      if (target === "sidecar") {
        for (let i = 0; i < 100; i++) {
          const s = await telemetryStatus();
          if (s.buffered === 0 && s.inFlight === 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const cpuMs = processCpuMsFine(pid) - cpuBeforeMs;
      if (body.failures > 0) throw new Error(`${target}: ${body.failures} failed requests`);
      return { rps: requests / (body.wallMs / 1000), cpuUsPerRequest: (cpuMs * 1000) / requests };
    };
    // Warm both: JIT, snapshots, the store's first batches.
    const targets = { on: "sidecar", off: "direct", ae: "proxy" } as const;
    for (const target of Object.values(targets)) await run(target, 3000);

    const on = { rps: [] as number[], cpu: [] as number[] };
    const off = { rps: [] as number[], cpu: [] as number[] };
    const ae = { rps: [] as number[], cpu: [] as number[] };
    const series = { on, off, ae };
    const sides = Object.keys(targets) as (keyof typeof targets)[];
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate which goes first so drift does not favour one side.
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + round) % sides.length]!;
        const r = await run(targets[side], REQUESTS);
        series[side].rps.push(r.rps);
        series[side].cpu.push(r.cpuUsPerRequest);
      }
    }
    const median = (xs: number[]) => percentile(xs, 50);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    const perRound = on.rps.map((x, i) => x / off.rps[i]!);
    const cpuAdded = on.cpu.map((x, i) => x - off.cpu[i]!);
    const status = await telemetryStatus();
    const result: TelemetryOverhead = {
      telemetry_throughput_ratio: r3(median(perRound)),
      telemetry_throughput_ratio_per_round: perRound.map(r3),
      telemetry_on_rps: Math.round(median(on.rps)),
      telemetry_off_rps: Math.round(median(off.rps)),
      telemetry_on_cpu_us_per_request: r3(median(on.cpu)),
      telemetry_off_cpu_us_per_request: r3(median(off.cpu)),
      telemetry_added_cpu_us_per_request: r3(median(cpuAdded)),
      telemetry_ae_throughput_ratio: r3(median(ae.rps.map((x, i) => x / off.rps[i]!))),
      telemetry_ae_throughput_ratio_per_round: ae.rps.map((x, i) => r3(x / off.rps[i]!)),
      telemetry_ae_rps: Math.round(median(ae.rps)),
      telemetry_ae_added_cpu_us_per_request: r3(median(ae.cpu.map((x, i) => x - off.cpu[i]!))),
      telemetry_logic_us_per_request: r3(logicMicroseconds()),
      telemetry_sink: status.sink,
      telemetry_rows_written: status.written,
      telemetry_rows_dropped: Object.values(status.dropped).reduce((a, b) => a + b, 0),
      telemetry_target: { throughput_ratio_min: 0.95 },
    };
    log(`\ntelemetry, ${ROUNDS} interleaved rounds of ${REQUESTS} requests a side (c=${CONCURRENCY}), sink: ${result.telemetry_sink}`);
    log(`  req/s          on ${result.telemetry_on_rps}  off ${result.telemetry_off_rps}  ratio x${result.telemetry_throughput_ratio} (per round: ${result.telemetry_throughput_ratio_per_round.join(", ")})`);
    log(`  CPU us/request on ${result.telemetry_on_cpu_us_per_request}  off ${result.telemetry_off_cpu_us_per_request}  added ${result.telemetry_added_cpu_us_per_request} (workerd process, all threads)`);
    log(`  rows written ${result.telemetry_rows_written}, dropped ${result.telemetry_rows_dropped}; the per-request logic alone: ${result.telemetry_logic_us_per_request} us (Node, tight loop)`);
    log(`  Analytics Engine sink (production): req/s ${result.telemetry_ae_rps}, ratio x${result.telemetry_ae_throughput_ratio} (per round: ${result.telemetry_ae_throughput_ratio_per_round.join(", ")}), CPU added ${result.telemetry_ae_added_cpu_us_per_request} us/request`);
    log(`  target: telemetry costs <= 5% of throughput: local store ${result.telemetry_throughput_ratio >= 0.95 ? "met" : "NOT met"}, Analytics Engine ${result.telemetry_ae_throughput_ratio >= 0.95 ? "met" : "NOT met"}`);
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
