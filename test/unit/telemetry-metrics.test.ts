// Golden-metrics queries, their answers' shaping, and the Prometheus exposition.
import { describe, expect, it } from "vitest";
import { goldenMetricsOf, goldenMetricsSql, parseWindow, type MetricWindow } from "../../analytics/golden-metrics.ts";
import { exposition } from "../../workers/control/prometheus.ts";

const minute = parseWindow("1m") as MetricWindow;

describe("window", () => {
  it("parses a number and a unit into seconds and an INTERVAL", () => {
    expect(parseWindow("30s")).toEqual({ text: "30s", seconds: 30, sql: "INTERVAL '30' SECOND" });
    expect(parseWindow(undefined)).toMatchObject({ text: "1m", seconds: 60, sql: "INTERVAL '1' MINUTE" });
    expect(parseWindow("2h")).toMatchObject({ seconds: 7200, sql: "INTERVAL '2' HOUR" });
    expect(parseWindow("7d")).toMatchObject({ seconds: 604_800 });
  });

  it("refuses anything else, saying what would do", () => {
    for (const bad of ["1", "m", "0m", "1w", "-1m", "1.5m", "1m; DROP", "91d"]) {
      expect((parseWindow(bad) as { error: string }).error).toMatch(/window must/);
    }
  });
});

describe("golden metrics query", () => {
  it("groups each scope by its columns and weights every aggregate by the row weight", () => {
    const sql = goldenMetricsSql("edges", "bookinfo", minute, "edgemesh_requests");
    expect(sql).toContain("blob2 AS source,");
    expect(sql).toContain("blob3 AS destination,");
    expect(sql).toContain("GROUP BY blob2, blob3");
    expect(sql).toContain("sum(_sample_interval * double1) AS requests");
    expect(sql).toContain("quantileExactWeighted(0.99)(double3, toUInt32(_sample_interval * double1)) AS p99_ms");
    expect(sql).toContain("WHERE blob1 = 'bookinfo' AND timestamp > now() - INTERVAL '1' MINUTE");
    expect(sql).toMatch(/FROM edgemesh_requests\n/);
    expect(sql.endsWith("FORMAT JSON")).toBe(true);
    expect(goldenMetricsSql("routes", "m", minute, "d")).toContain("GROUP BY blob3, blob4");
    expect(goldenMetricsSql("services", "m", minute, "d")).toContain("GROUP BY blob3\n");
  });

  it("turns an answer into rates, with 64-bit integers given as strings", () => {
    const rows = goldenMetricsOf("edges", {
      meta: [], rows: 2,
      data: [
        { source: "productpage", destination: "reviews", requests: "120", successes: "90", retries: 6, sheds: "0", p50_ms: 3, p95_ms: 9, p99_ms: 20 },
        { source: "external", destination: "productpage", requests: 0, successes: 0, retries: 0, sheds: 0, p50_ms: 0, p95_ms: 0, p99_ms: 0 },
      ],
    }, minute);
    expect(rows[0]).toEqual({ labels: { source: "productpage", destination: "reviews" }, requests: 120, requestsPerSecond: 2, successRate: 0.75, latencyMs: { p50: 3, p95: 9, p99: 20 }, retries: 6, sheds: 0 });
    expect(rows[1]!.successRate).toBeNull();
  });
});

describe("prometheus exposition", () => {
  it("writes gauges labelled by mesh, window and the scope's columns, escaping label values", () => {
    const text = exposition("services", [
      { labels: { service: 'rev"iews' }, requests: 60, requestsPerSecond: 1, successRate: 0.5, latencyMs: { p50: 1, p95: 2, p99: 3 }, retries: 4, sheds: 5 },
    ], { mesh: "bookinfo", window: "1m" });
    expect(text).toContain("# TYPE edgemesh_service_request_rate gauge\n");
    expect(text).toContain('edgemesh_service_request_rate{mesh="bookinfo",window="1m",service="rev\\"iews"} 1\n');
    expect(text).toContain('edgemesh_service_latency_ms{mesh="bookinfo",window="1m",service="rev\\"iews",quantile="0.99"} 3\n');
    expect(text).toContain('edgemesh_service_success_rate{mesh="bookinfo",window="1m",service="rev\\"iews"} 0.5\n');
    // Every sample line is name{labels} value.
    for (const line of text.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+\{[^}]*\} [-+0-9.eInfNa]+)$/);
  });
});
