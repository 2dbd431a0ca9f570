// TelemetryStore on the real runtime (workerd via Miniflare, SQLite storage): batches in, the same
// SQL as Analytics Engine out, retention by row count and by age. Each test uses its own store.
import { Log, LogLevel, Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnalyticsRow } from "../../analytics/types.ts";
import { buildWorkers } from "../../scripts/build.ts";
import { COMPATIBILITY_DATE, scriptOf } from "../../scripts/mesh.ts";
import { point } from "../unit/analytics-fixtures.ts";
import { sleep } from "../helpers.ts";

const SMALL_MAX_ROWS = 50;
const SHORT_MAX_AGE_MS = 3_000;

let mf: Miniflare;
let storeCounter = 0;

async function storeWorker(name: string, vars: Record<string, string>) {
  return {
    name,
    ...(await scriptOf("test-telemetry-store-client")),
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: vars,
    durableObjects: { TELEMETRY_STORE: { className: "TelemetryStore", useSQLite: true } },
  };
}

beforeAll(async () => {
  await buildWorkers(["test-telemetry-store-client"]);
  mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    // A fixed cf object: without one Miniflare fetches it from the internet.
    cf: { colo: "LCL", country: "ZZ" },
    workers: [
      await storeWorker("store-default", {}),
      await storeWorker("store-small", { TELEMETRY_MAX_ROWS: String(SMALL_MAX_ROWS), TELEMETRY_MAX_AGE_MS: String(SHORT_MAX_AGE_MS) }),
    ],
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
});

/** A client of a fresh store in one of the two Workers. */
async function freshStore(worker: "store-default" | "store-small") {
  const fetcher = await mf.getWorker(worker);
  const store = `t${++storeCounter}-${Date.now()}`;
  const call = async (pathname: string, init?: RequestInit) => {
    const res = await fetcher.fetch(`http://store.test${pathname}?store=${store}`, init as never);
    expect(res.status).toBe(200);
    return res.json() as Promise<any>;
  };
  return {
    ingest: (rows: AnalyticsRow[]) => call("/ingest", { method: "POST", body: JSON.stringify(rows) }),
    query: (sql: string) => call("/query", { method: "POST", body: sql }),
    stats: () => call("/stats"),
    enforceRetention: () => call("/retention", { method: "POST" }),
  };
}

describe("TelemetryStore", () => {
  it("ingests a batch and answers Analytics Engine SQL over it", async () => {
    const store = await freshStore("store-default");
    const now = Date.now();
    // The same shape as the unit tests' data set, placed just before the real clock.
    const rows = [
      point("reviews", 200, 10, 1, 50, "mesh", now),
      point("reviews", 200, 20, 1, 110, "mesh", now),
      point("reviews", 500, 300, 2, 170, "mesh", now),
      point("reviews", 200, 40, 4, 230, "mesh", now),
      point("ratings", 200, 5, 1, 20, "mesh", now),
      point("ratings", 503, 1000, 1, 400, "mesh", now),
      point("details", 200, 7, 3, 3610, "mesh", now),
      point("reviews", 200, 1, 1, 5, "other", now),
    ];
    expect(await store.ingest(rows)).toEqual({ stored: 8, dropped: 0 });
    const answer = await store.query(
      "SELECT blob1 AS service, count() AS n, sum(_sample_interval) AS events, sumIf(_sample_interval, double2 >= 500) / sum(_sample_interval) AS error_rate, quantileExactWeighted(0.5)(double1, _sample_interval) AS p50 FROM mesh WHERE timestamp > now() - INTERVAL '1' HOUR GROUP BY service HAVING events > 1 ORDER BY events DESC FORMAT JSON",
    );
    // reviews: 4 rows, 8 events, 2 of them errors, weighted median 40; ratings: 2, 2, 1/2, 5.
    expect(answer).toEqual({
      ok: true,
      result: {
        meta: [
          { name: "service", type: "String" },
          { name: "n", type: "UInt64" },
          { name: "events", type: "UInt64" },
          { name: "error_rate", type: "Float64" },
          { name: "p50", type: "Float64" },
        ],
        data: [
          { service: "reviews", n: "4", events: "8", error_rate: 0.25, p50: 40 },
          { service: "ratings", n: "2", events: "2", error_rate: 0.5, p50: 5 },
        ],
        rows: 2,
      },
    });
    const other = await store.query("SELECT count() AS n, min(double1) AS latency FROM other");
    expect(other.result.data).toEqual([{ n: "1", latency: 1 }]);
    const stats = await store.stats();
    expect(stats).toMatchObject({ rows: 8, oldestTimestampMs: now - 3_610_000, newestTimestampMs: now - 5_000, droppedByRetention: 0, droppedAtIngest: 0 });
  });

  it("answers unsupported SQL with 400 naming the construct", async () => {
    const store = await freshStore("store-default");
    expect(await store.query("SELECT blob1 FROM mesh JOIN other ON 1")).toMatchObject({ ok: false, status: 400, construct: "JOIN" });
    expect(await store.query("SELECT toDate(timestamp) FROM mesh")).toMatchObject({ ok: false, status: 400, construct: "function toDate" });
    expect(await store.query("SELECT intDiv(double1, 0) FROM mesh")).toEqual({ ok: true, result: { meta: [{ name: "intDiv(double1, 0)", type: "Int64" }], data: [], rows: 0 } });
    await store.ingest([point("a", 200, 1, 1, 1, "mesh", Date.now())]);
    // Division by zero is found while evaluating, on the first row.
    expect(await store.query("SELECT intDiv(double1, 0) FROM mesh")).toMatchObject({ ok: false, status: 400, construct: "function intDiv" });
  });

  it("drops malformed rows and rows already past the age limit, and counts them", async () => {
    const store = await freshStore("store-small");
    const now = Date.now();
    const good = point("reviews", 200, 10, 1, 1, "mesh", now);
    const answer = await store.ingest([
      good,
      { ...good, index1: "x".repeat(97) },
      { ...good, blobs: Array(21).fill("b") },
      { ...good, sampleInterval: 0 },
      { ...good, timestampMs: now - 60_000 }, // older than the 3 s age limit
    ]);
    expect(answer).toEqual({ stored: 1, dropped: 4 });
    expect(await store.stats()).toMatchObject({ rows: 1, droppedAtIngest: 4, maxRows: SMALL_MAX_ROWS, maxAgeMs: SHORT_MAX_AGE_MS });
  });

  it("keeps at most TELEMETRY_MAX_ROWS rows, deleting the oldest first", async () => {
    const store = await freshStore("store-small");
    const now = Date.now();
    // 80 rows one millisecond apart; batches of 30, 30 and 20 (sidecars batch, too).
    const rows = Array.from({ length: 80 }, (_, i) => ({ ...point("svc", 200, i, 1, 0, "mesh", now - 1_000), timestampMs: now - 1_000 + i }));
    for (const batch of [rows.slice(0, 30), rows.slice(30, 60), rows.slice(60)]) await store.ingest(batch);
    const stats = await store.stats();
    expect(stats).toMatchObject({ rows: SMALL_MAX_ROWS, droppedByRetention: 30, oldestTimestampMs: now - 1_000 + 30, newestTimestampMs: now - 1_000 + 79 });
    const kept = await store.query("SELECT count() AS n, min(double1) AS first, max(double1) AS last FROM mesh");
    expect(kept.result.data).toEqual([{ n: "50", first: 30, last: 79 }]);
  });

  it("deletes rows older than TELEMETRY_MAX_AGE_MS when retention runs", async () => {
    const store = await freshStore("store-small");
    const now = Date.now();
    // 1.5 s old at ingest (kept: the limit is 3 s), and 2.5 s later well past it.
    await store.ingest([point("old", 200, 1, 1, 1.5, "mesh", now), point("old", 200, 2, 1, 1.5, "mesh", now)]);
    await sleep(2_500);
    await store.ingest([point("new", 200, 3, 1, 0, "mesh", Date.now())]);
    expect((await store.stats()).rows).toBe(3);
    expect(await store.enforceRetention()).toEqual({ deleted: 2 });
    expect(await store.stats()).toMatchObject({ rows: 1, droppedByRetention: 2 });
    expect((await store.query("SELECT blob1 FROM mesh")).result.data).toEqual([{ blob1: "new" }]);
  });

  it("reads only the time range a query asks for, and a large batch in one call", async () => {
    const store = await freshStore("store-default");
    const now = Date.now();
    // 5,000 rows spread over the last 50 minutes (one every 600 ms), in one ingest call.
    const rows = Array.from({ length: 5_000 }, (_, i) => point(i % 2 ? "odd" : "even", i % 10 === 0 ? 500 : 200, i, 1 + (i % 3), 0, "mesh", now - i * 600));
    expect(await store.ingest(rows)).toEqual({ stored: 5_000, dropped: 0 });
    // Rows 0..99 are within the last minute (i × 0.6 s < 60 s) and 100 is exactly 60 s old.
    const recent = await store.query("SELECT count() AS n, sum(_sample_interval) AS events, countIf(double2 = 500) AS errors FROM mesh WHERE timestamp >= now() - INTERVAL '59' SECOND");
    const n = Number(recent.result.data[0].n);
    // The DO's clock runs a little after `now`: allow rows at the edge of the window to fall out.
    expect(n).toBeGreaterThanOrEqual(80);
    expect(n).toBeLessThanOrEqual(100);
    const all = await store.query("SELECT count() AS n, sum(_sample_interval) AS events FROM mesh");
    // Intervals cycle 1, 2, 3: 1,667 ones, 1,667 twos, 1,666 threes → 1667 + 3334 + 4998 = 9,999.
    expect(all.result.data).toEqual([{ n: "5000", events: "9999" }]);
  });
});
