// Telemetry on the real runtime: traffic through the local mesh becomes data points in the
// telemetry store, and golden metrics (JSON, Prometheus, CLI) show the right edges, counts and
// success rates; caller identity comes only from the binding's props; sampling keeps answers right.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { BOOKINFO, sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";
import { REQUESTS_DATASET } from "../../analytics/request-layout.ts";
import { goldenMetricsSql, parseWindow, type GoldenMetrics, type MetricScope, type MetricWindow } from "../../analytics/golden-metrics.ts";
import { eventually as pollUntil } from "../control-helpers.ts";
import { bookinfoPolicy, nodeServer } from "../helpers.ts";

const TOPOLOGY: Topology = {
  mesh: "bookinfo",
  services: {
    ...BOOKINFO.services,
    flaky: [{ id: "flaky-1", binding: "FLAKY_1", script: "test-flaky" }],
    sampled: [{ id: "sampled-1", binding: "SAMPLED_1", script: "test-flaky" }],
  },
  extraWorkers: [
    { name: "loadgen", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName("flaky"), props: { caller: "loadgen" } } } },
    { name: "sampler", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName("sampled"), props: { caller: "sampler" } } } },
    // Traffic of the tests that only need some rows, apart from the counted ones above.
    { name: "prober", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName("flaky"), props: { caller: "prober" } } } },
  ],
};

// 500s are not retried by default, and outlier detection would eject the only endpoint.
const noEjection = { outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 } };
const SAMPLE_INTERVAL = 5;

let mesh: RunningMesh;

async function metrics(scope: MetricScope, window = "5m"): Promise<GoldenMetrics[]> {
  const res = await mesh.admin(`/v1/metrics/${scope}?window=${window}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as Record<string, GoldenMetrics[]>)[scope]!;
}

const edge = (rows: GoldenMetrics[], source: string, destination: string) => rows.find((r) => r.labels.source === source && r.labels.destination === destination);

/** Polls until `check` holds (telemetry reaches the store within a flush interval), or fails with the last state. */
const eventually = <T>(read: () => Promise<T>, check: (value: T) => boolean) => pollUntil(read, check, 15_000, 200);

async function load(worker: string, query: string): Promise<{ statuses: Record<string, number> }> {
  const client = await mesh.mf.getWorker(worker);
  const res = await client.fetch(`http://load/run?${query}`);
  return (await res.json()) as { statuses: Record<string, number> };
}

async function sql(text: string): Promise<{ status: number; body: any }> {
  const res = await mesh.admin("/v1/analytics/sql", { method: "POST", body: text });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY, sidecarVars: { TELEMETRY_FLUSH_MS: "100" } });
  const doc = await bookinfoPolicy();
  doc.services.flaky = { endpoints: [{ id: "flaky-1", binding: "FLAKY_1" }], ...noEjection, telemetry: { countStreamedBytes: true } };
  doc.services.sampled = { endpoints: [{ id: "sampled-1", binding: "SAMPLED_1" }], ...noEjection, telemetry: { sampleInterval: SAMPLE_INTERVAL } };
  // An identity claim without a token makes the caller external here (the default refuses it,
  // which test/integration/security.test.ts covers), so forged claims can be counted.
  doc.access = { unverifiedIdentity: "external" };
  const applied = await mesh.applyPolicy(doc);
  expect(applied.status).toBe(201);
});

afterAll(async () => {
  await mesh?.dispose();
});

describe("telemetry through the local mesh", () => {
  it("records every hop with its caller from the binding's props, and the outside world as external", async () => {
    // jason is routed to reviews v2, which calls ratings: every hop of bookinfo is taken.
    // The forged headers must not change who the sidecar thinks is calling.
    for (let i = 0; i < 12; i++) {
      const res = await fetch(new URL("/api/v1/products/0?user=jason", mesh.url), { headers: { "x-edgemesh-caller": "reviews", "x-edgemesh-source": "reviews" } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const hops = [["external", "productpage"], ["productpage", "details"], ["productpage", "reviews"], ["reviews", "ratings"]] as const;
    // Every hop's sidecar flushes on its own: wait for all of them, not some.
    const edges = await eventually(() => metrics("edges"), (rows) => hops.every(([source, destination]) => (edge(rows, source, destination)?.requests ?? 0) >= 12));
    for (const [source, destination] of hops) {
      const e = edge(edges, source, destination);
      expect(e, `${source} -> ${destination}`).toBeDefined();
      expect(e!.requests).toBe(12);
      expect(e!.successRate).toBe(1);
    }
    // Nobody outside the mesh is taken for reviews, whatever headers it sends.
    expect(edge(edges, "reviews", "productpage")).toBeUndefined();

    const routes = await metrics("routes");
    expect(routes.find((r) => r.labels.service === "reviews" && r.labels.route === "jason")?.requests).toBe(12);
  });

  it("shows the success rate of an upstream that fails a known share", async () => {
    expect((await load("loadgen", "requests=70&concurrency=8&path=/ok")).statuses).toEqual({ 200: 70 });
    expect((await load("loadgen", "requests=30&concurrency=8&path=/boom&h-x-flaky-status=500")).statuses).toEqual({ 500: 30 });
    const edges = await eventually(() => metrics("edges"), (rows) => (edge(rows, "loadgen", "flaky")?.requests ?? 0) >= 100);
    const e = edge(edges, "loadgen", "flaky")!;
    expect(e.requests).toBe(100);
    expect(e.successRate).toBeCloseTo(0.7, 10);

    // The same rows, by outcome, through the SQL API.
    const byOutcome = await sql(`SELECT blob7 AS outcome, count() AS n FROM edgemesh_requests WHERE blob2 = 'loadgen' GROUP BY outcome ORDER BY outcome FORMAT JSON`);
    expect(byOutcome.status).toBe(200);
    expect(byOutcome.body.data.map((r: { outcome: string; n: number | string }) => [r.outcome, Number(r.n)])).toEqual([["failed", 30], ["ok", 70]]);

    // flaky counts streamed bytes (no content-length crosses a service binding); its bodies are known.
    const bytes = await sql(`SELECT double2 AS status, sum(double5) AS sent, sum(double6) AS received FROM edgemesh_requests WHERE blob2 = 'loadgen' GROUP BY status ORDER BY status FORMAT JSON`);
    const body = (status: number) => JSON.stringify({ endpoint: "flaky-1", status }).length;
    expect(bytes.body.data.map((r: Record<string, number | string>) => [Number(r.status), Number(r.sent), Number(r.received)])).toEqual([[200, 0, 70 * body(200)], [500, 0, 30 * body(500)]]);
  });

  it("keeps counts and rates right when it samples, by the weight each row carries", async () => {
    const total = 1000;
    expect((await load("sampler", `requests=${total * 0.7}&concurrency=8&path=/ok`)).statuses).toEqual({ 200: total * 0.7 });
    expect((await load("sampler", `requests=${total * 0.3}&concurrency=8&path=/boom&h-x-flaky-status=500`)).statuses).toEqual({ 500: total * 0.3 });
    // Wait until the sidecar has accounted for every request and sent every row it kept.
    const status = await eventually(
      async () => (await mesh.sidecarView("sampled", "telemetry")) as { recorded: number; sampledOut: number; written: number; buffered: number; inFlight: number },
      (s) => s.recorded + s.sampledOut >= total && s.buffered === 0 && s.inFlight === 0,
    );
    expect(status.written).toBe(status.recorded);
    const rows = await sql(`SELECT count() AS rows, sum(_sample_interval * double1) AS requests, sumIf(_sample_interval * double1, double2 < 500) AS ok FROM edgemesh_requests WHERE blob3 = 'sampled' FORMAT JSON`);
    const { rows: kept, requests, ok } = rows.body.data[0];
    // One row in five, each weighing five: the estimate is exactly rows x 5, and near the truth.
    expect(Number(kept)).toBe(status.recorded);
    expect(Number(requests)).toBe(Number(kept) * SAMPLE_INTERVAL);
    // Binomial(1000, 0.2) kept rows: sd ~12.6 rows = 63 requests; 250 is ~4 sd.
    expect(Math.abs(Number(requests) - total)).toBeLessThan(250);
    expect(Number(ok) / Number(requests)).toBeGreaterThan(0.55);
    expect(Number(ok) / Number(requests)).toBeLessThan(0.85);
    const e = edge(await metrics("edges"), "sampler", "sampled")!;
    expect(e.requests).toBe(Number(requests));
  });

  it("answers Prometheus scrapes with the token only", async () => {
    const anonymous = await fetch(new URL("/metrics", mesh.controlUrl));
    expect(anonymous.status).toBe(401);
    await load("prober", "requests=3&concurrency=1&path=/prometheus");
    await eventually(() => metrics("edges"), (rows) => (edge(rows, "prober", "flaky")?.requests ?? 0) >= 3);
    const res = await mesh.admin("/metrics?window=5m");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^edgemesh_edge_requests\{mesh="bookinfo",window="5m",source="[a-z-]+",destination="[a-z-]+"\} \d+/m);
    expect(text).toContain("# TYPE edgemesh_service_latency_ms gauge");
  });

  it("refuses unsupported SQL with a 400 that names the construct, and a bad window with one that says what works", async () => {
    const join = await sql("SELECT blob1 FROM edgemesh_requests JOIN other ON blob1 = x");
    expect(join.status).toBe(400);
    expect(join.body.construct).toMatch(/JOIN/i);
    expect(join.body.error).toMatch(/JOIN/i);
    const window = await mesh.admin("/v1/metrics/edges?window=forever");
    expect(window.status).toBe(400);
    expect(((await window.json()) as { error: string }).error).toMatch(/30s, 1m, 2h, 7d/);
    const empty = await mesh.admin("/v1/analytics/sql", { method: "POST", body: "" });
    expect(empty.status).toBe(400);
  });

  it("runs every example query of docs/telemetry.md unchanged on the local store", async () => {
    await load("prober", "requests=3&concurrency=1&path=/docs");
    const doc = await readFile(path.join(ROOT, "docs/telemetry.md"), "utf8");
    const queries = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(queries.length).toBeGreaterThanOrEqual(4);
    for (const query of queries) {
      const answer = await sql(query);
      expect(answer.status, `${query}\n${JSON.stringify(answer.body)}`).toBe(200);
      expect(Array.isArray(answer.body.data)).toBe(true);
    }
  });

  it("shows the edges in `edgemesh stat`, as a table and as JSON", async () => {
    await load("prober", "requests=5&concurrency=1&path=/stat");
    await eventually(() => metrics("edges"), (rows) => (edge(rows, "prober", "flaky")?.requests ?? 0) >= 5);
    const run = promisify(execFile);
    const env = { ...process.env, EDGEMESH_URL: mesh.controlUrl.origin, EDGEMESH_ADMIN_TOKEN: mesh.adminToken };
    const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/edgemesh.mjs"), ...args], { cwd: ROOT, env });
    const table = (await cli("stat", "edges", "--window", "5m")).stdout;
    expect(table.split("\n")[0]).toMatch(/^SOURCE +DESTINATION +RPS +SUCCESS +P50_MS +P95_MS +P99_MS +RETRIES +SHEDS +REQUESTS$/);
    expect(table).toMatch(/^prober +flaky +[\d.]+ +100\.00% /m);
    const json = JSON.parse((await cli("stat", "services", "--json", "--window", "5m")).stdout);
    expect(json.services.map((s: GoldenMetrics) => s.labels.service)).toContain("flaky");
  });
});

describe("a misbehaving telemetry sink", () => {
  for (const mode of ["fail", "stall"] as const) {
    it(`costs no request when the store ${mode === "fail" ? "fails" : "stalls"}; the sidecar counts what it dropped`, async () => {
      const broken = await startMesh({
        topology: {
          mesh: "sinks",
          services: { flaky: [{ id: "flaky-1", binding: "FLAKY_1", script: "test-flaky" }] },
          extraWorkers: [
            { name: "loadgen", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName("flaky"), props: { caller: "loadgen" } } } },
            { name: "broken-store", script: "test-broken-telemetry-store", vars: { MODE: mode }, serviceBindings: {}, options: { durableObjects: { STORE: { className: "BrokenTelemetryStore", useSQLite: true } } } },
          ],
        },
        sidecarTelemetryStore: { className: "BrokenTelemetryStore", scriptName: "broken-store" },
        sidecarVars: { TELEMETRY_BATCH_SIZE: "10", TELEMETRY_FLUSH_MS: "50", TELEMETRY_FLUSH_TIMEOUT_MS: "300", TELEMETRY_MAX_BUFFERED: "50" },
      });
      try {
        expect((await broken.applyPolicy({ mesh: "sinks", services: { flaky: { endpoints: [{ id: "flaky-1", binding: "FLAKY_1" }] } } })).status).toBe(201);
        const client = await broken.mf.getWorker("loadgen");
        const started = Date.now();
        const run = (await (await client.fetch("http://load/run?requests=400&concurrency=8&path=/x")).json()) as { statuses: Record<string, number>; latenciesMs: number[] };
        expect(run.statuses).toEqual({ 200: 400 });
        // A request that waited for the stalled store would wait two minutes.
        expect(Math.max(...run.latenciesMs)).toBeLessThan(5_000);
        expect(Date.now() - started).toBeLessThan(60_000);

        const status = await eventually(
          async () => (await broken.sidecarView("flaky", "telemetry")) as any,
          (s) => s.dropped.sinkFailed + s.dropped.sinkTimeout > 0,
        );
        expect(status.sink).toBe("store");
        expect(status.recorded).toBe(400);
        expect(status.written).toBe(0);
        if (mode === "fail") expect(status.lastError).toMatch(/refuses \d+ rows/);
        else expect(status.lastError).toMatch(/did not answer within 300 ms/);
        // The buffer is bounded, whatever the store does.
        expect(status.buffered).toBeLessThanOrEqual(50);
      } finally {
        await broken.dispose();
      }
    });
  }
});

describe("the edge query path", () => {
  it("sends the same query text to Analytics Engine's SQL API with the token, and answers from it", async () => {
    const received: { method: string; url: string; authorization: string; body: string }[] = [];
    const golden = { meta: [{ name: "source", type: "String" }], rows: 1, data: [{ source: "productpage", destination: "reviews", requests: "120", successes: "90", retries: 3, sheds: "0", p50_ms: 4, p95_ms: 9, p99_ms: 12 }] };
    const plain = { meta: [{ name: "n", type: "UInt64" }], rows: 1, data: [{ n: "42" }] };
    const api = await nodeServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        received.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization ?? "", body });
        if (body.includes("boom")) {
          // An upstream failure whose text echoes the token: it must not reach the operator.
          res.writeHead(500, { "content-type": "text/plain" }).end("internal failure near Bearer edge-secret-token");
          return;
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body.includes("AS requests") ? golden : plain));
      });
    });
    const edgy = await startMesh({
      topology: { mesh: "edgy", services: { flaky: [{ id: "flaky-1", binding: "FLAKY_1", script: "test-flaky" }] } },
      controlVars: { EDGEMESH_ANALYTICS_ACCOUNT_ID: "acct-123", EDGEMESH_ANALYTICS_API_TOKEN: "edge-secret-token", EDGEMESH_ANALYTICS_SQL_API_URL: `${api.url}/client/v4` },
    });
    try {
      const query = "SELECT count() AS n FROM edgemesh_requests FORMAT JSON";
      const res = await edgy.admin("/v1/analytics/sql", { method: "POST", body: query });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-edgemesh-analytics-source")).toBe("edge");
      expect(await res.json()).toEqual(plain);
      expect(received).toEqual([{ method: "POST", url: "/client/v4/accounts/acct-123/analytics_engine/sql", authorization: "Bearer edge-secret-token", body: query }]);

      // Golden metrics go to the edge with exactly the text they run locally.
      const edges = await edgy.admin("/v1/metrics/edges?window=5m");
      expect(edges.status).toBe(200);
      const body = (await edges.json()) as { source: string; edges: GoldenMetrics[] };
      expect(body.source).toBe("edge");
      expect(body.edges[0]).toMatchObject({ labels: { source: "productpage", destination: "reviews" }, requests: 120, successRate: 0.75, retries: 3, latencyMs: { p99: 12 } });
      expect(received.at(-1)!.body).toBe(goldenMetricsSql("edges", "edgy", parseWindow("5m") as MetricWindow, REQUESTS_DATASET));

      // ?source=local answers from the store, without a call to the API.
      const calls = received.length;
      const local = await edgy.admin("/v1/analytics/sql?source=local", { method: "POST", body: query });
      expect(local.status).toBe(200);
      expect(local.headers.get("x-edgemesh-analytics-source")).toBe("local");
      expect(received).toHaveLength(calls);

      // SQL outside the dialect is refused before it leaves, naming the construct.
      const refused = await edgy.admin("/v1/analytics/sql", { method: "POST", body: "SELECT n FROM a JOIN b ON a.x = b.x" });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { construct: string }).construct).toMatch(/JOIN/i);
      expect(received).toHaveLength(calls);

      // A failing API is a 502 that never carries the token.
      const failed = await edgy.admin("/v1/analytics/sql", { method: "POST", body: "SELECT 'boom' AS x FROM edgemesh_requests" });
      expect(failed.status).toBe(502);
      const failure = await failed.text();
      expect(failure).not.toContain("edge-secret-token");
      expect(failure).toMatch(/HTTP 500/);
    } finally {
      await edgy.dispose();
      await api.close();
    }
  });
});
