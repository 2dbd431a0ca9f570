// A small known data set for the SQL engine's tests, with every answer computed by hand in the
// tests. blob1 = service, blob2 = route, double1 = latency (ms), double2 = status; index1 = service.
import type { AnalyticsRow } from "../../analytics/types.ts";

/** 2024-05-01 12:00:00 UTC: what now() is in these tests. */
export const NOW_MS = Date.UTC(2024, 4, 1, 12, 0, 0);

export function point(service: string, status: number, latencyMs: number, sampleInterval: number, secondsAgo: number, dataset = "mesh", nowMs = NOW_MS): AnalyticsRow {
  return {
    dataset,
    timestampMs: nowMs - secondsAgo * 1000,
    sampleInterval,
    index1: service,
    blobs: [service, `/${service}`],
    doubles: [latencyMs, status],
  };
}

export function knownRows(nowMs = NOW_MS): AnalyticsRow[] {
  return [
    point("reviews", 200, 10, 1, 50, "mesh", nowMs), //    11:59:10
    point("reviews", 200, 20, 1, 110, "mesh", nowMs), //   11:58:10
    point("reviews", 500, 300, 2, 170, "mesh", nowMs), //  11:57:10
    point("reviews", 200, 40, 4, 230, "mesh", nowMs), //   11:56:10
    point("ratings", 200, 5, 1, 20, "mesh", nowMs), //     11:59:40
    point("ratings", 503, 1000, 1, 400, "mesh", nowMs), // 11:53:20
    point("details", 200, 7, 3, 3610, "mesh", nowMs), //   10:59:50, outside the last hour
    point("reviews", 200, 1, 1, 5, "other", nowMs), //     another dataset
  ];
}
