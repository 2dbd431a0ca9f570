// `npx tsx scripts/bench/profile-sidecar.ts`: a V8 CPU profile of the sidecar isolate while the
// benchmark client sends it sequential requests (the topology of bench:overhead), through workerd's
// inspector. Prints the JavaScript functions that took the most self time, and how much of the
// sampled time was JavaScript at all (the rest is the runtime: I/O, streams, timers, the event
// loop), which no JavaScript change can win back. BENCH_REQUESTS (default 20000).
import { fetch as mfFetch, Log, LogLevel, Miniflare } from "miniflare";
import { buildWorkers } from "../build.ts";
import { CONTROL_WORKER, instanceName, meshWorkers, sidecarName } from "../mesh.ts";
import { adminClient } from "./run.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20000);
const INSPECTOR_PORT = 9000 + Math.floor(Math.random() * 1000);
process.env.WRANGLER_SEND_METRICS = "false";
await buildWorkers();
const SIDECAR = sidecarName("upstream");
const workers = await meshWorkers({
  topology: {
    mesh: "bench",
    services: { upstream: [{ id: "upstream-1", binding: "UPSTREAM_1", script: "bench-upstream" }] },
    extraWorkers: [{ name: "bench-client", script: "bench-client", serviceBindings: { DIRECT: instanceName("bench", "upstream-1"), SIDECAR, PROXY: SIDECAR } }],
  },
  sidecarTelemetryStore: false,
});
for (const w of workers) if (w.name === SIDECAR) w.unsafeInspectorProxy = true;
const mf = new Miniflare({ host: "127.0.0.1", port: 0, inspectorPort: INSPECTOR_PORT, cf: { colo: "LCL" }, log: new Log(LogLevel.WARN), workers });

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }

try {
  await mf.ready;
  const admin = adminClient(await mf.unsafeGetDirectURL(CONTROL_WORKER));
  await admin("/v1/policy", { method: "POST", body: JSON.stringify({ mesh: "bench", services: { upstream: { endpoints: [{ id: "upstream-1", binding: "UPSTREAM_1" }] } } }) });
  const client = await mf.getWorker("bench-client");
  const run = async (n: number) => {
    const res = await client.fetch(`http://bench/run?target=sidecar&requests=${n}&concurrency=1`);
    const body = (await res.json()) as { failures: number };
    if (body.failures > 0) throw new Error(`${body.failures} failures`);
  };
  await run(3000);
  const targets = (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json()) as { title: string; webSocketDebuggerUrl: string }[];
  const target = targets.find((t) => t.title.includes(SIDECAR)) ?? targets[0];
  if (!target) throw new Error("no inspector target");
  // Miniflare's fetch speaks WebSocket upgrades (Node 20 has no WebSocket client of its own).
  const upgraded = await mfFetch(target.webSocketDebuggerUrl.replace(/^ws:/, "http:"), { headers: { upgrade: "websocket" } });
  const ws = upgraded.webSocket;
  if (!ws) throw new Error(`the inspector did not upgrade: ${upgraded.status}`);
  ws.accept();
  let nextId = 1;
  const pending = new Map<number, (r: any) => void>();
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(String(event.data));
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  });
  const send = (method: string, params: Record<string, unknown> = {}) => new Promise<any>((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 50 });
  await send("Profiler.start");
  await run(REQUESTS);
  const { profile } = (await send("Profiler.stop")) as { profile: { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] } };
  ws.close();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totalSamples = profile.samples.length;
  const usPerSample = (profile.endTime - profile.startTime) / totalSamples;
  const self = new Map<string, number>();
  for (const n of byId.values()) {
    const f = n.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  const idle = self.get("(idle) :0") ?? 0;
  const busy = totalSamples - idle;
  const special = new Set(["(program) :0", "(garbage collector) :0", "(idle) :0", "(root) :0"]);
  const js = [...self.entries()].filter(([k]) => !special.has(k)).reduce((a, [, v]) => a + v, 0);
  const perRequest = (samples: number) => ((samples * usPerSample) / REQUESTS).toFixed(2);
  console.log(`${REQUESTS} requests; sidecar isolate busy ${perRequest(busy)} µs a request, of which JavaScript ${perRequest(js)} µs, garbage collection ${perRequest(self.get("(garbage collector) :0") ?? 0)} µs, runtime (program) ${perRequest(self.get("(program) :0") ?? 0)} µs\n`);
  console.log("self time per request (µs), top functions:");
  for (const [k, v] of [...self.entries()].filter(([key]) => !special.has(key)).sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${perRequest(v).padStart(8)}  ${k}`);
} finally {
  await mf.dispose();
}
