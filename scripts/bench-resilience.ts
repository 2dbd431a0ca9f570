// `npm run bench:resilience`: what the data plane's resilience buys, in one run on this machine.
// Three upstream instances are plain Node HTTP servers on loopback, reached by the sidecar as URL
// endpoints; load comes from a client Worker inside workerd (test/workers/load-client.ts), so
// Node's dispatch cost is not in the numbers. Scenarios (issue 3):
//   1. one instance fails 30% of requests with 503: client success rate with the mesh defaults
//      (target >= 99.9%) and load amplification (target <= 1.15x), beside no retries at all;
//   2. one instance is slowed by 100 ms: p99 with peak-EWMA P2C vs round robin vs healthy-only
//      (target: P2C p99 within 1.5x of healthy-only);
//   3. one instance dies mid-run: requests lost (target <= 0.1%) and time until it stops getting
//      traffic (its ejection, from the sidecar's outliers debug view).
// Prints a table per scenario and writes bench/results/resilience.json. Every endpoint id is new
// per run of a scenario, so no scenario inherits another's latency estimates or ejections.
// Peers: the same scenarios through nginx and HAProxy (Debian packages) in front of the same kind of
// upstreams, each configured the usual resilient way (round robin, up to 2 retries on another
// server for connect errors and 502/503/504, passive failure marking). A missing binary skips that
// peer with a message saying how to install it; BENCH_PEERS=0 skips both.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { percentile } from "./bench/stats.ts";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./build.ts";
import { sidecarName, startMesh, type RunningMesh } from "./mesh.ts";

process.env.WRANGLER_SEND_METRICS = "false";

const REQUESTS = Math.min(Number(process.env.BENCH_REQUESTS ?? 4000), 50_000);
// Open-loop load at a fixed rate, well below what one workerd thread can serve here (~1200/s through
// the sidecar), so latencies show balancing rather than queueing in a saturated event loop.
const RATE = Math.min(Number(process.env.BENCH_RATE ?? 500), 10_000);
const CONCURRENCY = Math.min(Number(process.env.BENCH_CONCURRENCY ?? 128), 256);

interface Upstream {
  id: string;
  url: string;
  hits: number;
  failPercent: number;
  delayMs: number;
  server: Server;
  kill(): Promise<void>;
}

async function upstream(id: string): Promise<Upstream> {
  const u = { id, url: "", hits: 0, failPercent: 0, delayMs: 0 } as Upstream;
  u.server = createServer((req, res) => {
    u.hits++;
    req.resume();
    const answer = () => {
      const fail = u.failPercent > 0 && Math.random() * 100 < u.failPercent;
      res.writeHead(fail ? 503 : 200, { "content-type": "text/plain", "x-upstream": id });
      res.end(fail ? "unavailable\n" : "ok\n");
    };
    if (u.delayMs > 0) setTimeout(answer, u.delayMs);
    else answer();
  });
  u.server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => u.server.listen(0, "127.0.0.1", resolve));
  u.url = `http://127.0.0.1:${(u.server.address() as AddressInfo).port}`;
  u.kill = () =>
    new Promise<void>((resolve) => {
      u.server.close(() => resolve());
      u.server.closeAllConnections();
    });
  return u;
}

interface LoadResult {
  statuses: Record<string, number>;
  tally: Record<string, number>;
  wallMs: number;
  latenciesMs: number[];
}

let mesh: RunningMesh;
let client: Awaited<ReturnType<RunningMesh["mf"]["getWorker"]>>;
let sidecar: Awaited<ReturnType<RunningMesh["mf"]["getWorker"]>>;

async function load(requests: number, concurrency: number, url?: string): Promise<LoadResult> {
  const q = new URLSearchParams({ requests: String(requests), concurrency: String(concurrency), rate: String(RATE), path: "/bench", tally: "x-upstream" });
  if (url) q.set("url", url);
  const res = await client.fetch(`http://client/run?${q}`);
  if (!res.ok) throw new Error(`load client: ${res.status} ${await res.text()}`);
  return (await res.json()) as LoadResult;
}

async function apply(api: Record<string, unknown>): Promise<void> {
  const res = await mesh.applyPolicy({ mesh: "bench", services: { api } });
  const body = (await res.json()) as { version?: number };
  if (res.status !== 201) throw new Error(`policy refused: ${JSON.stringify(body)}`);
  // Wait until the sidecar serves the new version (it revalidates every 100 ms here).
  for (let i = 0; i < 100; i++) {
    const r = await mesh.admin("/v1/sidecars/api/debug/status");
    const status = (await r.json()) as { snapshot: { policyVersion: number } | null };
    if (status.snapshot?.policyVersion === body.version) return;
    await (await sidecar.fetch("http://bench/__warmup")).arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the sidecar did not pick up policy version ${body.version}`);
}

const endpointsOf = (ups: Upstream[]) => ups.map((u) => ({ id: u.id, url: u.url }));
let run = 0;
async function instances(prefix: string): Promise<Upstream[]> {
  run++;
  return Promise.all(["a", "b", "c"].map((x) => upstream(`${prefix}-${run}-${x}`)));
}
const closeAll = (ups: Upstream[]) => Promise.all(ups.map((u) => (u.server.listening ? u.kill() : undefined)));
const hitsOf = (ups: Upstream[]) => ups.reduce((n, u) => n + u.hits, 0);
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function table(title: string, rows: Record<string, string | number>[]): void {
  console.log(`\n${title}`);
  console.table(rows);
}

async function scenarioFailing(): Promise<unknown> {
  const rows: Record<string, string | number>[] = [];
  const results: Record<string, unknown> = {};
  for (const [name, extra] of [
    ["mesh defaults", {}],
    ["no retries, round robin, outlier detection on", { loadBalancer: { algorithm: "round-robin" }, routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 0 } }], subsets: { all: {} } }],
    ["nothing: round robin, no retries, no outlier detection", {
      loadBalancer: { algorithm: "round-robin" },
      routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 0 } }],
      subsets: { all: {} },
      outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 },
    }],
  ] as const) {
    const ups = await instances("fail30");
    ups[0]!.failPercent = 30;
    await apply({ endpoints: endpointsOf(ups), ...extra });
    for (const u of ups) u.hits = 0;
    const r = await load(REQUESTS, CONCURRENCY);
    const success = (r.statuses["200"] ?? 0) / REQUESTS;
    const amplification = hitsOf(ups) / REQUESTS;
    results[name] = { requests: REQUESTS, successRate: success, amplification, statuses: r.statuses, hitsPerInstance: Object.fromEntries(ups.map((u) => [u.id, u.hits])) };
    rows.push({ config: name, requests: REQUESTS, success: pct(success), amplification: `${amplification.toFixed(3)}x`, "p99 ms": percentile(r.latenciesMs, 99) });
    await closeAll(ups);
  }
  table("1. one instance fails 30% with 503 (targets: success >= 99.9%, amplification <= 1.15x with mesh defaults)", rows);
  const d = results["mesh defaults"] as { successRate: number; amplification: number };
  return { ...results, targets: { successRate: 0.999, amplification: 1.15 }, met: d.successRate >= 0.999 && d.amplification <= 1.15 };
}

async function scenarioSlow(): Promise<unknown> {
  // Warm-up (JIT, connections) on throwaway endpoints, so the first measured balancer is not penalised.
  const warm = await instances("warm");
  await apply({ endpoints: endpointsOf(warm) });
  await load(Math.min(REQUESTS, 2000), CONCURRENCY);
  await closeAll(warm);
  const rows: Record<string, string | number>[] = [];
  const results: Record<string, { p50Ms: number; p99Ms: number; slowShare: number }> = {};
  for (const [name, algorithm, healthyOnly] of [
    ["p2c-ewma (default)", "p2c-ewma", false],
    ["round-robin", "round-robin", false],
    ["healthy-only (p2c-ewma, slow one removed)", "p2c-ewma", true],
  ] as const) {
    const ups = await instances("slow");
    ups[0]!.delayMs = 100;
    await apply({ endpoints: endpointsOf(healthyOnly ? ups.slice(1) : ups), loadBalancer: { algorithm } });
    for (const u of ups) u.hits = 0;
    const r = await load(REQUESTS, CONCURRENCY);
    const slowShare = ups[0]!.hits / REQUESTS;
    results[name] = { p50Ms: percentile(r.latenciesMs, 50), p99Ms: percentile(r.latenciesMs, 99), slowShare };
    rows.push({ balancer: name, requests: REQUESTS, "p50 ms": results[name].p50Ms, "p99 ms": results[name].p99Ms, "p99.9 ms": percentile(r.latenciesMs, 99.9), "slow share": pct(slowShare) });
    await closeAll(ups);
  }
  const p2c = results["p2c-ewma (default)"]!.p99Ms;
  const healthy = Math.max(1, results["healthy-only (p2c-ewma, slow one removed)"]!.p99Ms);
  table(`2. one instance slowed by 100 ms (target: p2c p99 <= 1.5x healthy-only; got ${(p2c / healthy).toFixed(2)}x)`, rows);
  return { ...results, p2cOverHealthyP99: p2c / healthy, target: 1.5, met: p2c / healthy <= 1.5 };
}

async function scenarioDies(): Promise<unknown> {
  const ups = await instances("dies");
  await apply({ endpoints: endpointsOf(ups) });
  const victim = ups[0]!;
  const loadsOf = async () =>
    ((await mesh.sidecarView("api", "resilience")) as {
      endpointLoads: Record<string, { tries: number; lastTryAtMs: number }>;
    }).endpointLoads[victim.id] ?? { tries: 0, lastTryAtMs: 0 };
  const running = load(REQUESTS, CONCURRENCY);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const triesBefore = (await loadsOf()).tries;
  const killedAtMs = Date.now();
  await victim.kill();
  const r = await running;
  const after = await loadsOf();
  const triesAfterDeath = after.tries - triesBefore;
  const lastTryAfterDeathMs = triesAfterDeath > 0 ? Math.max(0, after.lastTryAtMs - killedAtMs) : 0;
  const lost = REQUESTS - (r.statuses["200"] ?? 0);
  const outliers = (await mesh.sidecarView("api", "outliers")) as {
    events: { atMs: number; endpoint: string; event: string; reason: string }[];
  };
  const ejection = outliers.events.find((e) => e.endpoint === victim.id && e.event === "ejected");
  const stopMs = ejection ? Math.max(0, ejection.atMs - killedAtMs) : null;
  await closeAll(ups);
  table("3. one instance dies 300 ms into the run (target: lost <= 0.1%); 'stops getting traffic' = its last try after death", [
    {
      requests: REQUESTS,
      lost,
      "lost %": pct(lost / REQUESTS),
      "tries to it after death": triesAfterDeath,
      "ms until its last try": lastTryAfterDeathMs,
      "ms until ejected": stopMs ?? "not ejected",
      "ejected because": ejection?.reason ?? "-",
      "run ms": r.wallMs,
    },
  ]);
  return {
    requests: REQUESTS, lost, lostRate: lost / REQUESTS, triesAfterDeath, msUntilLastTry: lastTryAfterDeathMs, msUntilEjected: stopMs,
    ejectionReason: ejection?.reason ?? null, runMs: r.wallMs, statuses: r.statuses, target: 0.001, met: lost / REQUESTS <= 0.001,
  };
}


// ---- peers: nginx and HAProxy ----------------------------------------------------------------

interface Peer {
  name: string;
  binary: string;
  config(port: number, ups: Upstream[], dir: string): string;
  args(configFile: string, dir: string): string[];
}

const PEERS: Peer[] = [
  {
    name: "nginx",
    binary: "nginx",
    config: (port, ups, dir) => `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  upstream api {
${ups.map((u) => `    server ${u.url.replace("http://", "")} max_fails=3 fail_timeout=10s;`).join("\n")}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 15s;
    }
  }
}
`,
    args: (file, dir) => ["-p", dir, "-c", file],
  },
  {
    name: "haproxy",
    binary: "haproxy",
    config: (port, ups) => `global
  maxconn 8192
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 15s
  retries 2
  option redispatch 1
  retry-on conn-failure empty-response response-timeout 502 503 504
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  balance roundrobin
  http-reuse safe
${ups.map((u) => `  server ${u.id} ${u.url.replace("http://", "")} check inter 1s fall 3 rise 2 observe layer7 error-limit 3 on-error mark-down`).join("\n")}
`,
    args: (file) => ["-db", "-f", file],
  },
];

function hasBinary(binary: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${binary}`]).status === 0;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Starts the peer in front of `ups`; answers its URL and a stop function (kills only this child). */
async function startPeer(peer: Peer, ups: Upstream[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `edgemesh-bench-${peer.name}-`));
  const port = await freePort();
  const file = path.join(dir, `${peer.name}.conf`);
  await writeFile(file, peer.config(port, ups, dir));
  let stderr = "";
  const child = spawn(peer.binary, peer.args(file, dir), { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr!.on("data", (d) => (stderr += String(d)));
  try {
    await waitForPort(port, child);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${peer.name} did not start: ${(err as Error).message}\n${stderr}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function peerScenarios(peer: Peer): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  {
    const ups = await instances(`${peer.name}-fail30`);
    ups[0]!.failPercent = 30;
    const p = await startPeer(peer, ups);
    for (const u of ups) u.hits = 0;
    const r = await load(REQUESTS, CONCURRENCY, p.url);
    out.failing30 = { successRate: (r.statuses["200"] ?? 0) / REQUESTS, amplification: hitsOf(ups) / REQUESTS, p99Ms: percentile(r.latenciesMs, 99) };
    await p.stop();
    await closeAll(ups);
  }
  {
    const ups = await instances(`${peer.name}-slow`);
    ups[0]!.delayMs = 100;
    const p = await startPeer(peer, ups);
    for (const u of ups) u.hits = 0;
    const r = await load(REQUESTS, CONCURRENCY, p.url);
    out.slow100ms = { p50Ms: percentile(r.latenciesMs, 50), p99Ms: percentile(r.latenciesMs, 99), slowShare: ups[0]!.hits / REQUESTS };
    await p.stop();
    await closeAll(ups);
  }
  {
    const ups = await instances(`${peer.name}-dies`);
    const p = await startPeer(peer, ups);
    const running = load(REQUESTS, CONCURRENCY, p.url);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await ups[0]!.kill();
    const r = await running;
    const lost = REQUESTS - (r.statuses["200"] ?? 0);
    out.instanceDies = { lost, lostRate: lost / REQUESTS };
    await p.stop();
    await closeAll(ups);
  }
  return out;
}

async function comparePeers(mine: { failing30: any; slow100ms: any; instanceDies: any }): Promise<unknown> {
  if (process.env.BENCH_PEERS === "0") {
    console.log("\npeers: skipped (BENCH_PEERS=0)");
    return { skipped: "BENCH_PEERS=0" };
  }
  if (!mine.failing30 || !mine.slow100ms || !mine.instanceDies) {
    console.log("\npeers: skipped (needs all three scenarios; BENCH_ONLY was set)");
    return { skipped: "BENCH_ONLY" };
  }
  const results: Record<string, unknown> = {};
  const rows: Record<string, string | number>[] = [];
  const meshRow = {
    failing30: mine.failing30["mesh defaults"],
    slow100ms: mine.slow100ms["p2c-ewma (default)"],
    instanceDies: mine.instanceDies,
  };
  rows.push({
    proxy: "edgemesh sidecar (defaults)",
    "fail30 success": pct(meshRow.failing30.successRate),
    "fail30 amplification": `${meshRow.failing30.amplification.toFixed(3)}x`,
    "slow p99 ms": meshRow.slow100ms.p99Ms,
    "slow share": pct(meshRow.slow100ms.slowShare),
    "dies lost": meshRow.instanceDies.lost,
  });
  for (const peer of PEERS) {
    if (!hasBinary(peer.binary)) {
      console.log(`\npeers: ${peer.name} not installed, skipped (apt-get install -y ${peer.name === "nginx" ? "nginx-light" : "haproxy"})`);
      results[peer.name] = { skipped: "not installed" };
      continue;
    }
    try {
      const r = (await peerScenarios(peer)) as any;
      results[peer.name] = {
        ...r,
        ratios: {
          successRate: meshRow.failing30.successRate / Math.max(1e-9, r.failing30.successRate),
          amplification: meshRow.failing30.amplification / r.failing30.amplification,
          slowP99: meshRow.slow100ms.p99Ms / Math.max(1, r.slow100ms.p99Ms),
          lost: r.instanceDies.lost === 0 ? (meshRow.instanceDies.lost === 0 ? 1 : null) : meshRow.instanceDies.lost / r.instanceDies.lost,
        },
      };
      rows.push({
        proxy: peer.name,
        "fail30 success": pct(r.failing30.successRate),
        "fail30 amplification": `${r.failing30.amplification.toFixed(3)}x`,
        "slow p99 ms": r.slow100ms.p99Ms,
        "slow share": pct(r.slow100ms.slowShare),
        "dies lost": r.instanceDies.lost,
      });
    } catch (err) {
      console.log(`\npeers: ${peer.name} failed, skipped: ${(err as Error).message}`);
      results[peer.name] = { skipped: (err as Error).message };
    }
  }
  table("peers: the same three scenarios through nginx and HAProxy (ratios in resilience.json are edgemesh / peer)", rows);
  return results;
}

mesh = await startMesh({
  topology: {
    mesh: "bench",
    services: { api: [] },
    extraWorkers: [{ name: "load-client", script: "test-load-client", serviceBindings: { SIDECAR: sidecarName("api") } }],
  },
  sidecarVars: { SNAPSHOT_TTL_MS: "100" },
});
try {
  client = await mesh.mf.getWorker("load-client");
  sidecar = await mesh.mf.getWorker(sidecarName("api"));
  console.log(`edgemesh resilience benchmark: ${REQUESTS} requests per run at ${RATE}/s (at most ${CONCURRENCY} in flight), 3 Node upstreams on loopback`);
  // BENCH_ONLY=failing30,slow100ms,instanceDies runs a subset (results of the others are left out).
  const only = new Set((process.env.BENCH_ONLY ?? "failing30,slow100ms,instanceDies").split(","));
  const results = {
    when: new Date().toISOString(),
    node: process.version,
    requests: REQUESTS,
    ratePerSecond: RATE,
    maxInFlight: CONCURRENCY,
    failing30: only.has("failing30") ? await scenarioFailing() : null,
    slow100ms: only.has("slow100ms") ? await scenarioSlow() : null,
    instanceDies: only.has("instanceDies") ? await scenarioDies() : null,
    peers: null as unknown,
  };
  results.peers = await comparePeers(results as never);
  const out = path.join(ROOT, "bench/results/resilience.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${path.relative(ROOT, out)}`);
} finally {
  await mesh.dispose();
}
