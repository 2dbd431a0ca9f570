// `npm run bench:grpc`: what the sidecar adds to a unary RPC. The generated Connect client
// (@connectrpc/connect-web, binary protobuf) calls the example greeter (examples/grpc/) over a real
// socket, straight to an instance and through the greeter's sidecar, in one run on this machine:
// interleaved rounds of sequential calls (latency per call, Node's microsecond clock) and of
// concurrent calls (throughput), and the workerd process's CPU time per call on each path.
// The sidecar's route is an RPC route as a service owner would write it: matched by method, retried
// on UNAVAILABLE (so it reads each answer's status before passing it on).
// Knobs: BENCH_REQUESTS (sequential calls a side, default 3000), BENCH_ROUNDS (6),
// BENCH_CONCURRENCY (16), BENCH_THROUGHPUT_MS (2000 a round and side), BENCH_TRANSPORT
// (connect | grpc-web, default connect). Prints a table and writes bench/results/grpc.json.
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import os from "node:os";
import { GreeterService } from "../examples/grpc/gen/edgemesh/example/v1/greeter_pb.ts";
import { findDescendants, processCpuMsFine } from "./bench/process-cpu.ts";
import { writeBenchResults } from "./bench/run.ts";
import { percentile } from "./bench/stats.ts";
import { instanceName, sidecarName, startMesh } from "./mesh.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 2000);
const TRANSPORT = process.env.BENCH_TRANSPORT ?? "connect";
if (TRANSPORT !== "connect" && TRANSPORT !== "grpc-web") throw new Error(`BENCH_TRANSPORT must be connect or grpc-web, not ${TRANSPORT}`);

const MESH = "bench-grpc";
const SERVICE = "edgemesh.example.v1.GreeterService";
const INSTANCE = instanceName(MESH, "greeter-v1");
const SIDECAR = sidecarName("greeter");
type Side = "direct" | "sidecar";

process.env.WRANGLER_SEND_METRICS = "false";
const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
const mesh = await startMesh({
  topology: { mesh: MESH, services: { greeter: [{ id: "greeter-v1", binding: "GREETER_V1", script: "grpc-greeter", vars: { VERSION: "v1" } }] } },
  exposeWorkers: [INSTANCE, SIDECAR],
  // Production writes telemetry to Analytics Engine, not to the local store.
  sidecarTelemetryStore: false,
});

const policy = {
  mesh: MESH,
  services: {
    greeter: {
      endpoints: [{ id: "greeter-v1", binding: "GREETER_V1", labels: { version: "v1" } }],
      subsets: { v1: { version: "v1" } },
      routes: [{
        name: "greet",
        match: [{ grpc: { service: { exact: SERVICE }, method: { exact: "Greet" } } }],
        to: [{ subset: "v1" }],
        retries: { attempts: 2, retryOn: ["unavailable", "connect-failure", "reset"] },
      }],
    },
  },
};

try {
  const applied = await mesh.applyPolicy(policy);
  if (applied.status !== 201) throw new Error(`policy refused: ${await applied.text()}`);
  const urls: Record<Side, string> = { direct: (await mesh.directUrl(INSTANCE)).href, sidecar: (await mesh.directUrl(SIDECAR)).href };
  const clientOf = (side: Side): Client<typeof GreeterService> => {
    const baseUrl = urls[side];
    const transport = TRANSPORT === "connect"
      ? createConnectTransport({ baseUrl, useBinaryFormat: true, fetch: globalThis.fetch })
      : createGrpcWebTransport({ baseUrl, fetch: globalThis.fetch });
    return createClient(GreeterService, transport);
  };
  const clients: Record<Side, Client<typeof GreeterService>> = { direct: clientOf("direct"), sidecar: clientOf("sidecar") };
  const [workerd] = findDescendants("workerd");
  if (workerd === undefined) throw new Error("no workerd process found");

  const call = async (side: Side) => {
    const res = await clients[side].greet({ name: "bench" });
    if (res.greeting?.version !== "v1") throw new Error(`${side}: unexpected answer ${JSON.stringify(res)}`);
  };
  async function sequential(side: Side, n: number, into: number[]): Promise<number> {
    const cpuBefore = processCpuMsFine(workerd!);
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await call(side);
      into.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return ((processCpuMsFine(workerd!) - cpuBefore) * 1000) / n;
  }
  async function throughput(side: Side): Promise<number> {
    let done = 0;
    const started = performance.now();
    const until = started + THROUGHPUT_MS;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await call(side);
        done++;
      }
    }));
    return done / ((performance.now() - started) / 1000);
  }

  // Warm up both paths: JIT, the sidecar's snapshot, keep-alive connections.
  for (const side of ["direct", "sidecar"] as const) await sequential(side, 300, []);

  const latency: Record<Side, number[]> = { direct: [], sidecar: [] };
  const rps: Record<Side, number[]> = { direct: [], sidecar: [] };
  const cpu: Record<Side, number[]> = { direct: [], sidecar: [] };
  const perRound = Math.ceil(REQUESTS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first, so drift on a shared machine hits both alike.
    const order: Side[] = round % 2 === 0 ? ["direct", "sidecar"] : ["sidecar", "direct"];
    for (const side of order) {
      cpu[side].push(await sequential(side, perRound, latency[side]));
      rps[side].push(await throughput(side));
    }
  }

  const median = (xs: number[]) => percentile(xs, 50);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const p = (side: Side, q: number) => percentile(latency[side], q);
  // Throughput drifts between rounds; ratios of measurements taken back to back are steadier.
  const throughputRatios = rps.sidecar.map((x, i) => x / rps.direct[i]!);
  const result = {
    measured_at: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${os.cpus().length} cores`,
    load_average_1_5_15_min: { at_start: loadAtStart, at_end: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    method: `generated Connect client (${TRANSPORT === "connect" ? "Connect protocol, binary protobuf" : "gRPC-Web"}) over a keep-alive socket from Node; unary Greet; ${ROUNDS} interleaved rounds; direct = the greeter instance, sidecar = the greeter's sidecar in front of it (route matched by method, retried on UNAVAILABLE)`,
    transport: TRANSPORT,
    calls_per_side: perRound * ROUNDS,
    concurrency: CONCURRENCY,
    direct_p50_ms: r3(p("direct", 50)),
    sidecar_p50_ms: r3(p("sidecar", 50)),
    direct_p99_ms: r3(p("direct", 99)),
    sidecar_p99_ms: r3(p("sidecar", 99)),
    added_p50_ms: r3(p("sidecar", 50) - p("direct", 50)),
    added_p99_ms: r3(p("sidecar", 99) - p("direct", 99)),
    direct_rps: Math.round(median(rps.direct)),
    sidecar_rps: Math.round(median(rps.sidecar)),
    throughput_ratio: r3(median(throughputRatios)),
    throughput_ratio_per_round: throughputRatios.map(r3),
    // All of workerd (instance, sidecar and its snapshot checks); the socket's client side is Node.
    workerd_cpu_us_per_call: { direct: Math.round(median(cpu.direct) * 10) / 10, sidecar: Math.round(median(cpu.sidecar) * 10) / 10 },
    policy,
  };

  const row = (name: string, d: number | string, s: number | string, diff: string) => console.log(`${name.padEnd(30)}${String(d).padStart(10)}${String(s).padStart(10)}${diff.padStart(16)}`);
  const signed = (x: number) => (x >= 0 ? `+${x}` : `${x}`);
  console.log(`\nunary ${TRANSPORT === "connect" ? "Connect" : "gRPC-Web"} calls, ${result.calls_per_side} sequential a side, ${ROUNDS} interleaved rounds\n`);
  row("", "direct", "sidecar", "sidecar-direct");
  row("p50 (ms)", result.direct_p50_ms, result.sidecar_p50_ms, signed(result.added_p50_ms));
  row("p99 (ms)", result.direct_p99_ms, result.sidecar_p99_ms, signed(result.added_p99_ms));
  row(`calls/s (c=${CONCURRENCY})`, result.direct_rps, result.sidecar_rps, `x${result.throughput_ratio}`);
  row("workerd CPU/call (µs)", result.workerd_cpu_us_per_call.direct, result.workerd_cpu_us_per_call.sidecar, signed(Math.round((result.workerd_cpu_us_per_call.sidecar - result.workerd_cpu_us_per_call.direct) * 10) / 10));
  console.log(`\nthroughput ratio per round: ${result.throughput_ratio_per_round.join(", ")}; load average ${loadAtStart.join(" ")} at start`);

  await writeBenchResults(TRANSPORT === "connect" ? "grpc.json" : "grpc-web.json", result);
} finally {
  await mesh.dispose();
}
