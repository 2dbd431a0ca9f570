// The service page's time series: its SQL runs on the real SQL engine (the one the local store
// uses) over a known data set, checked against answers computed by hand.
import { describe, expect, it } from "vitest";
import { runQuery } from "../../analytics/sql/index.ts";
import { toDataPoint, type RequestRecord } from "../../analytics/request-layout.ts";
import type { AnalyticsRow } from "../../analytics/types.ts";
import { sqlString } from "../../analytics/golden-sql.ts";
import { bucketSeconds, seriesOf, serviceSeriesSql } from "../../dashboard/src/series.ts";

/** 2024-05-01 12:00:00 UTC. */
const NOW_MS = Date.UTC(2024, 4, 1, 12, 0, 0);

function row(over: Partial<RequestRecord> & { secondsAgo: number; sampleInterval?: number }): AnalyticsRow {
  const record: RequestRecord = {
    mesh: "bookinfo", source: "productpage", destination: "reviews", route: "default", subset: "v1", endpoint: "reviews-v1", outcome: "ok",
    colo: "LCL", method: "GET", reason: "", sampleWeight: 1, status: 200, latencyMs: 10, attempts: 1, requestBytes: -1, responseBytes: -1, hedged: false,
    ...over,
  };
  const p = toDataPoint(record);
  return { dataset: "edgemesh_requests", timestampMs: NOW_MS - over.secondsAgo * 1000, sampleInterval: over.sampleInterval ?? 1, index1: p.indexes[0], blobs: p.blobs, doubles: p.doubles };
}

describe("bucketSeconds", () => {
  it("keeps every window within 60 points with a round step", () => {
    expect(bucketSeconds(60)).toBe(5);
    expect(bucketSeconds(300)).toBe(5);
    expect(bucketSeconds(900)).toBe(15);
    expect(bucketSeconds(3600)).toBe(60);
    expect(bucketSeconds(21_600)).toBe(600);
    expect(bucketSeconds(86_400)).toBe(1800);
    for (const w of [60, 300, 900, 3600, 21_600, 86_400]) expect(w / bucketSeconds(w)).toBeLessThanOrEqual(60);
  });
});

describe("the service series query", () => {
  const rows = [
    // 11:59:50 bucket (5 s buckets over 5 minutes): two ok and one 503, latencies 10, 20, 300.
    row({ secondsAgo: 10, latencyMs: 10 }),
    row({ secondsAgo: 8, latencyMs: 20 }),
    row({ secondsAgo: 7, latencyMs: 300, status: 503, outcome: "failed" }),
    // 11:59:30 bucket: one row sampled 1 in 4 (weight 4), latency 40.
    row({ secondsAgo: 29, latencyMs: 40, sampleWeight: 4 }),
    // Not this service, not this mesh, older than the window: never counted.
    row({ secondsAgo: 9, destination: "ratings", latencyMs: 999 }),
    row({ secondsAgo: 9, mesh: "other", latencyMs: 999 }),
    row({ secondsAgo: 301, latencyMs: 999 }),
  ];

  it("answers requests, successes and weighted quantiles per bucket", () => {
    const sql = serviceSeriesSql({ dataset: "edgemesh_requests", mesh: "bookinfo", service: "reviews", windowSeconds: 300 });
    const result = runQuery(sql, rows, { nowMs: NOW_MS });
    const byBucket = Object.fromEntries(result.data.map((r) => [Number(r.bucket), r]));
    const t = (hms: string) => Date.parse(`2024-05-01T${hms}Z`) / 1000;
    expect(Object.keys(byBucket).map(Number).sort()).toEqual([t("11:59:30"), t("11:59:50")]);
    const late = byBucket[t("11:59:50")]!;
    expect(Number(late.requests)).toBe(3);
    expect(Number(late.successes)).toBe(2);
    expect(Number(late.p50_ms)).toBe(20);
    expect(Number(late.p99_ms)).toBe(300);
    const early = byBucket[t("11:59:30")]!;
    expect(Number(early.requests)).toBe(4);
    expect(Number(early.successes)).toBe(4);
    expect(Number(early.p99_ms)).toBe(40);
  });

  it("becomes one point per bucket, empty buckets included, rates per second of each bucket", () => {
    const sql = serviceSeriesSql({ dataset: "edgemesh_requests", mesh: "bookinfo", service: "reviews", windowSeconds: 300 });
    const points = seriesOf(runQuery(sql, rows, { nowMs: NOW_MS }).data, 300, NOW_MS);
    expect(points).toHaveLength(60);
    expect(points.at(-1)!.atS).toBe(NOW_MS / 1000);
    const at = (hms: string) => points.find((p) => p.atS === Date.parse(`2024-05-01T${hms}Z`) / 1000)!;
    expect(at("11:59:50")).toEqual({ atS: at("11:59:50").atS, requestsPerSecond: 3 / 5, successRate: 2 / 3, p50Ms: 20, p99Ms: 300 });
    expect(at("11:59:30").requestsPerSecond).toBeCloseTo(4 / 5);
    expect(at("11:59:40")).toMatchObject({ requestsPerSecond: 0, successRate: null, p99Ms: null });
    expect(points.filter((p) => p.requestsPerSecond > 0)).toHaveLength(2);
  });

  it("counts the current, unfinished bucket over the time it has run", () => {
    const nowMs = NOW_MS + 1500; // 12:00:01.5: the 12:00:00 bucket has run 2 whole seconds
    const points = seriesOf([{ bucket: String(NOW_MS / 1000), requests: "4", successes: "4", p50_ms: 1, p99_ms: 2 }], 300, nowMs);
    expect(points.at(-1)!.requestsPerSecond).toBe(2);
  });

  it("quotes names so a service name cannot change the query", () => {
    expect(sqlString("it's")).toBe("'it\\'s'");
    const sql = serviceSeriesSql({ dataset: "edgemesh_requests", mesh: "bookinfo", service: "x' OR '1'='1", windowSeconds: 60 });
    expect(runQuery(sql, rows, { nowMs: NOW_MS }).data).toEqual([]);
  });
});
