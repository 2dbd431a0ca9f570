// What the engine tells a store to read: dataset, columns, and the time range WHERE allows. The
// range must never leave out a row the query matches.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { executeQuery, parseQuery, scanFilter, type ScanFilter } from "../../analytics/sql/index.ts";
import type { AnalyticsRow } from "../../analytics/types.ts";
import { knownRows, NOW_MS } from "./analytics-fixtures.ts";

const filterOf = (sql: string, nowMs = NOW_MS) => scanFilter(parseQuery(sql), { nowMs });
const at = (text: string) => Date.parse(`${text.replace(" ", "T")}Z`);

describe("scan filter", () => {
  it("names the dataset and the columns read", () => {
    const filter = filterOf("SELECT blob1, sum(_sample_interval) FROM mesh WHERE double2 >= 500 GROUP BY blob1");
    expect(filter.dataset).toBe("mesh");
    expect([...filter.columns].sort()).toEqual(["_sample_interval", "blob1", "double2"]);
    expect(filter.fromTimestampMs).toBeNull();
    expect(filter.toTimestampMs).toBeNull();
    expect(filterOf("SELECT 1").dataset).toBeNull();
  });

  it("turns timestamp bounds relative to now() into milliseconds, on whole seconds", () => {
    // timestamp > 11:55:00 holds from 11:55:01.000 on (timestamp is whole seconds).
    expect(filterOf("SELECT count() FROM mesh WHERE timestamp > now() - INTERVAL '5' MINUTE").fromTimestampMs).toBe(at("2024-05-01 11:55:01"));
    expect(filterOf("SELECT count() FROM mesh WHERE timestamp >= now() - INTERVAL '5' MINUTE").fromTimestampMs).toBe(at("2024-05-01 11:55:00"));
    expect(filterOf("SELECT count() FROM mesh WHERE now() - INTERVAL 1 HOUR <= timestamp").fromTimestampMs).toBe(at("2024-05-01 11:00:00"));
  });

  it("combines conjuncts into the narrowest range, upper bounds exclusive", () => {
    const filter = filterOf("SELECT count() FROM mesh WHERE blob1 = 'a' AND timestamp >= '2024-05-01 10:00:00' AND timestamp > toDateTime('2024-05-01 11:00:00') AND timestamp <= '2024-05-01 11:30:00' AND timestamp < now()");
    expect(filter.fromTimestampMs).toBe(at("2024-05-01 11:00:01"));
    expect(filter.toTimestampMs).toBe(at("2024-05-01 11:30:01"));
    const between = filterOf("SELECT count() FROM mesh WHERE timestamp BETWEEN 1714560000 AND 1714563600");
    expect(between.fromTimestampMs).toBe(1714560000_000);
    expect(between.toTimestampMs).toBe(1714563601_000);
  });

  it("gives no range when the bound is not a conjunct", () => {
    expect(filterOf("SELECT count() FROM mesh WHERE timestamp > now() - INTERVAL 1 HOUR OR blob1 = 'a'").fromTimestampMs).toBeNull();
    expect(filterOf("SELECT count() FROM mesh WHERE NOT timestamp > now()").fromTimestampMs).toBeNull();
    expect(filterOf("SELECT count() FROM mesh WHERE timestamp + 60 > now()").fromTimestampMs).toBeNull();
  });

  it("follows an alias to the column, and not a column the alias hides", () => {
    expect(filterOf("SELECT timestamp AS t FROM mesh WHERE t > now() - INTERVAL 1 MINUTE").fromTimestampMs).toBe(at("2024-05-01 11:59:01"));
    expect(filterOf("SELECT double1 AS timestamp FROM mesh WHERE timestamp > 5").fromTimestampMs).toBeNull();
  });

  it("hands the filter to a row source function and still applies the whole WHERE", () => {
    let seen: ScanFilter | null = null;
    const source = (filter: ScanFilter) => {
      seen = filter;
      return knownRows(); // a lazy store may return more rows than the range allows
    };
    const result = executeQuery(parseQuery("SELECT count() AS n FROM mesh WHERE timestamp > now() - INTERVAL '3' MINUTE"), source, { nowMs: NOW_MS });
    expect(result.data).toEqual([{ n: "4" }]);
    expect(seen).toMatchObject({ dataset: "mesh", fromTimestampMs: at("2024-05-01 11:57:01") });
  });

  it("never excludes a row the query matches", () => {
    const rowAt = (ms: number): AnalyticsRow => ({ dataset: "mesh", timestampMs: ms, sampleInterval: 1, index1: "", blobs: [], doubles: [] });
    const ops = [">", ">=", "<", "<=", "="];
    fc.assert(
      fc.property(fc.integer({ min: -5000, max: 5000 }), fc.constantFrom(...ops), fc.integer({ min: -5, max: 5 }), (offsetMs, op, boundSeconds) => {
        const row = rowAt(NOW_MS + offsetMs);
        const sql = `SELECT count() AS n FROM mesh WHERE timestamp ${op} now() + ${boundSeconds}`;
        const matches = executeQuery(parseQuery(sql), [row], { nowMs: NOW_MS }).data[0]!.n === "1";
        const filter = filterOf(sql);
        const inRange = (filter.fromTimestampMs === null || row.timestampMs >= filter.fromTimestampMs) && (filter.toTimestampMs === null || row.timestampMs < filter.toTimestampMs);
        // Exact for whole-second bounds: in range if and only if the row matches.
        expect(inRange).toBe(matches);
      }),
      { numRuns: 2000 },
    );
  });
});
