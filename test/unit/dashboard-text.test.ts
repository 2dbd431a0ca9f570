// How the dashboard words numbers, health and events.
import { describe, expect, it } from "vitest";
import { eventGroup, eventMatches, eventService, eventSummary } from "../../dashboard/src/event-text.ts";
import { compactJson, formatDuration, formatMs, formatPercent, formatRate, formatTime, metricsLine } from "../../dashboard/src/format.ts";
import { serviceHealth, trafficHealth } from "../../dashboard/src/health.ts";
import { linePath, niceMax } from "../../dashboard/src/chart-math.ts";

describe("formatting", () => {
  it("rates", () => {
    expect(formatRate(0)).toBe("0/s");
    expect(formatRate(0.004)).toBe("<0.01/s");
    expect(formatRate(0.1)).toBe("0.10/s");
    expect(formatRate(12.34)).toBe("12.3/s");
    expect(formatRate(250.4)).toBe("250/s");
    expect(formatRate(1234)).toBe("1.2k/s");
  });

  it("success rates never round a failure away", () => {
    expect(formatPercent(1)).toBe("100%");
    expect(formatPercent(0.9999)).toBe("99.9%");
    expect(formatPercent(0.995)).toBe("99.5%");
    expect(formatPercent(0.949)).toBe("94%");
    expect(formatPercent(null)).toBe("–");
  });

  it("latencies and durations", () => {
    expect(formatMs(0.4)).toBe("0 ms");
    expect(formatMs(94)).toBe("94 ms");
    expect(formatMs(1234)).toBe("1.2 s");
    expect(formatMs(45_000)).toBe("45 s");
    expect(formatMs(null)).toBe("–");
    expect(formatDuration(30_000)).toBe("30 s");
    expect(formatDuration(300_000)).toBe("5 min");
    expect(formatTime(Date.UTC(2024, 4, 1, 12, 3, 4), Date.UTC(2024, 4, 1, 18))).toBe("12:03:04");
    expect(formatTime(Date.UTC(2024, 4, 1, 12, 3, 4), Date.UTC(2024, 4, 2, 1))).toBe("2024-05-01 12:03:04");
  });

  it("the label line and long JSON", () => {
    expect(metricsLine({ requestsPerSecond: 0.1, successRate: 1, latencyMs: { p99: 94 } })).toBe("0.10/s · 100% · p99 94 ms");
    expect(metricsLine(undefined)).toBe("no traffic");
    expect(compactJson({ a: "x".repeat(300) }, 20)).toHaveLength(20);
  });
});

describe("health classes", () => {
  it("from traffic", () => {
    expect(trafficHealth(undefined)).toBe("idle");
    expect(trafficHealth({ requests: 0, successRate: null })).toBe("idle");
    expect(trafficHealth({ requests: 100, successRate: 0.995 })).toBe("healthy");
    expect(trafficHealth({ requests: 100, successRate: 0.97 })).toBe("degraded");
    expect(trafficHealth({ requests: 100, successRate: 0.5 })).toBe("failing");
  });

  it("from traffic and endpoints", () => {
    const ok = { requests: 100, successRate: 1 };
    expect(serviceHealth(ok, [{ excluded: false }, { excluded: false }])).toBe("healthy");
    expect(serviceHealth(ok, [{ excluded: true }, { excluded: false }])).toBe("degraded");
    expect(serviceHealth(ok, [{ excluded: true }])).toBe("failing");
    expect(serviceHealth(undefined, [{ excluded: true }, { excluded: false }])).toBe("degraded");
    expect(serviceHealth({ requests: 10, successRate: 0.5 }, [{ excluded: true }, { excluded: false }])).toBe("failing");
  });
});

describe("events", () => {
  const health = { seq: 7, atMs: 0, type: "health.changed", data: { service: "ratings", endpointId: "ratings-v2", source: "active", from: "healthy", to: "unhealthy", reason: "3 failed checks: HTTP 500" } };
  const applied = { seq: 8, atMs: 0, type: "policy.applied", data: { version: 4, generation: 9, author: "ana", message: "all to v3" } };
  const served = { seq: 9, atMs: 0, type: "rollout.paused", data: { service: "ratings", by: "ana", reason: "looking at the p99" } };

  it("reads as a sentence", () => {
    expect(eventSummary(health)).toBe("ratings/ratings-v2 healthy → unhealthy (active: 3 failed checks: HTTP 500)");
    expect(eventSummary(applied)).toBe("policy v4 applied by ana: “all to v3”");
    expect(eventSummary(served)).toBe("ratings: rollout paused by ana: looking at the p99");
    expect(eventSummary({ seq: 1, atMs: 0, type: "policy.rolled-back", data: { version: 5, restoredVersion: 2, author: "dashboard" } })).toBe("policy rolled back to v2 as v5 by dashboard");
  });

  it("filters by kind and service", () => {
    expect(eventGroup("endpoint.expired")).toBe("registry");
    expect(eventService(applied)).toBeUndefined();
    const all = { groups: new Set(["policy", "registry", "health", "rollout"] as const), service: "" };
    expect([health, applied, served].filter((e) => eventMatches(e, all))).toHaveLength(3);
    expect([health, applied, served].filter((e) => eventMatches(e, { ...all, groups: new Set(["health"] as const) }))).toEqual([health]);
    expect([health, applied, served].filter((e) => eventMatches(e, { ...all, service: "ratings" }))).toEqual([health, served]);
  });
});

describe("chart geometry", () => {
  it("rounds the axis up", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(0.7)).toBe(1);
    expect(niceMax(3)).toBe(5);
    expect(niceMax(120)).toBe(200);
  });

  it("breaks the line where there is no data", () => {
    expect(linePath([0, 5, null, 10], 30, 10, 10)).toBe("M0,10 L10,5 M30,0");
    expect(linePath([20], 30, 10, 10)).toBe("M0,0");
  });
});
