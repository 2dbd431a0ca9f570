// Measures the local telemetry store on the real runtime: ingest throughput (rows/s, in the
// batches sidecars send) and the latency of a golden-metrics query over the whole store and over
// a one-minute window (which the time-range pushdown reads alone). Prints numbers from one run.
//   npx tsx scripts/bench-telemetry-store.ts [rows=100000] [batch=500]
import { Log, LogLevel, Miniflare } from "miniflare";
import type { AnalyticsRow } from "../analytics/types.ts";
import { buildWorkers } from "./build.ts";
import { COMPATIBILITY_DATE, scriptOf } from "./mesh.ts";

const totalRows = Number(process.argv[2] ?? 100_000);
const batchSize = Number(process.argv[3] ?? 500);
const SERVICES = ["productpage", "reviews", "ratings", "details"];
const GOLDEN =
  "SELECT blob1 AS source, blob2 AS destination, sum(_sample_interval) AS requests, sumIf(_sample_interval, double2 < 500) / sum(_sample_interval) AS success_rate, quantileExactWeighted(0.5)(double1, _sample_interval) AS p50, quantileExactWeighted(0.99)(double1, _sample_interval) AS p99 FROM mesh WHERE timestamp > now() - INTERVAL %WINDOW% GROUP BY source, destination ORDER BY requests DESC";

await buildWorkers(["test-telemetry-store-client"]);
const mf = new Miniflare({
  log: new Log(LogLevel.WARN),
  // A fixed cf object: without one Miniflare fetches it from the internet.
  cf: { colo: "LCL", country: "ZZ" },
  workers: [
    {
      name: "store",
      ...(await scriptOf("test-telemetry-store-client")),
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: { TELEMETRY_MAX_ROWS: String(totalRows * 2) },
      durableObjects: { TELEMETRY_STORE: { className: "TelemetryStore", useSQLite: true } },
    },
  ],
});
const url = await mf.ready;
const store = `bench-${Date.now()}`;
const call = async (pathname: string, init?: RequestInit) => {
  const res = await fetch(new URL(`${pathname}?store=${store}`, url), init);
  if (!res.ok) throw new Error(`${pathname}: HTTP ${res.status}`);
  return res.json() as Promise<any>;
};

try {
  const now = Date.now();
  // Spread over the last hour, newest first.
  const row = (i: number): AnalyticsRow => ({
    dataset: "mesh",
    timestampMs: now - Math.floor((i / totalRows) * 3_600_000),
    sampleInterval: 1,
    index1: SERVICES[i % 4]!,
    blobs: [SERVICES[i % 4]!, SERVICES[(i + 1) % 4]!, "default", "v1", `ep-${i % 3}`, i % 50 === 0 ? "failed" : "ok", "LCL"],
    doubles: [(i * 7919) % 250, i % 50 === 0 ? 503 : 200, 1, 120, 900],
  });
  let started = performance.now();
  for (let from = 0; from < totalRows; from += batchSize) {
    const batch = Array.from({ length: Math.min(batchSize, totalRows - from) }, (_, k) => row(from + k));
    await call("/ingest", { method: "POST", body: JSON.stringify(batch) });
  }
  const ingestSeconds = (performance.now() - started) / 1000;
  console.log(`ingest: ${totalRows} rows in batches of ${batchSize}: ${ingestSeconds.toFixed(2)} s, ${Math.round(totalRows / ingestSeconds)} rows/s (HTTP from Node included)`);
  for (const window of ["'1' HOUR", "'1' MINUTE"]) {
    const sql = GOLDEN.replace("%WINDOW%", window);
    const times: number[] = [];
    let answer: any;
    for (let k = 0; k < 5; k++) {
      started = performance.now();
      answer = await call("/query", { method: "POST", body: sql });
      times.push(performance.now() - started);
    }
    if (!answer.ok) throw new Error(answer.error);
    times.sort((a, b) => a - b);
    const scanned = answer.result.data.reduce((n: number, r: any) => n + Number(r.requests), 0);
    console.log(`golden-metrics query, window ${window}: ${scanned} rows matched, median ${times[2]!.toFixed(1)} ms, min ${times[0]!.toFixed(1)} ms over 5 runs`);
  }
} finally {
  await mf.dispose();
}
