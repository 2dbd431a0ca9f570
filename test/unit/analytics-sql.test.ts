// The SQL engine against a known data set; every expected answer is worked out by hand in the
// comments from the rows in analytics-fixtures.ts.
import { describe, expect, it } from "vitest";
import { MAX_RESULT_ROWS, runQuery, SqlError } from "../../analytics/sql/index.ts";
import { knownRows, NOW_MS, point } from "./analytics-fixtures.ts";

const rows = knownRows();
const run = (sql: string, nowMs = NOW_MS) => runQuery(sql, rows, { nowMs });
const data = (sql: string) => run(sql).data;
const LAST_HOUR = "timestamp > now() - INTERVAL '1' HOUR";

describe("grouping and aggregates", () => {
  it("counts stored rows with count() and represented events with sum(_sample_interval)", () => {
    // In the last hour (details' row is older; the 'other' dataset is not read):
    // reviews: 4 rows, intervals 1+1+2+4 = 8; ratings: 2 rows, 1+1 = 2.
    const result = run(`SELECT blob1 AS service, count() AS n, sum(_sample_interval) AS events FROM mesh WHERE ${LAST_HOUR} GROUP BY service ORDER BY service`);
    expect(result.meta).toEqual([
      { name: "service", type: "String" },
      { name: "n", type: "UInt64" },
      { name: "events", type: "UInt64" },
    ]);
    // UInt64 values are quoted, as ClickHouse's FORMAT JSON writes them.
    expect(result.data).toEqual([
      { service: "ratings", n: "2", events: "2" },
      { service: "reviews", n: "4", events: "8" },
    ]);
    expect(result.rows).toBe(2);
    expect(result.rows_before_limit_at_least).toBeUndefined();
  });

  it("computes avg, min, max, sum of doubles and the sample-weighted mean", () => {
    // reviews latencies 10, 20, 300 (×2), 40 (×4): avg of rows (10+20+300+40)/4 = 92.5;
    // weighted (10+20+600+160)/8 = 98.75; sum 370; min 10; max 300.
    expect(data(`SELECT avg(double1) AS a, sum(_sample_interval * double1) / sum(_sample_interval) AS weighted, sum(double1) AS s, min(double1) AS lo, max(double1) AS hi FROM mesh WHERE blob1 = 'reviews'`)).toEqual([
      { a: 92.5, weighted: 98.75, s: 370, lo: 10, hi: 300 },
    ]);
  });

  it("countIf and sumIf count errors by rows and by events", () => {
    // reviews: one 500 row with interval 2 → countIf 1, sumIf 2, error rate 2/8 = 0.25.
    // ratings: one 503 row with interval 1 → 1, 1, 1/2 = 0.5.
    expect(data(`SELECT blob1 AS s, countIf(double2 >= 500) AS errors, sumIf(_sample_interval, double2 >= 500) AS weighted_errors, sumIf(_sample_interval, double2 >= 500) / sum(_sample_interval) AS error_rate FROM mesh WHERE ${LAST_HOUR} GROUP BY s ORDER BY s`)).toEqual([
      { s: "ratings", errors: "1", weighted_errors: "1", error_rate: 0.5 },
      { s: "reviews", errors: "1", weighted_errors: "2", error_rate: 0.25 },
    ]);
  });

  it("answers one row for an aggregate over no rows, and none for GROUP BY over no rows", () => {
    expect(data("SELECT count() AS n, sum(double1) AS s, avg(double1) AS a FROM mesh WHERE blob1 = 'nobody'")).toEqual([{ n: "0", s: 0, a: null }]);
    expect(data("SELECT blob1, count() FROM mesh WHERE blob1 = 'nobody' GROUP BY blob1")).toEqual([]);
  });

  it("groups by several keys, by expressions and by position", () => {
    // Without the time filter: reviews 200 ×3, reviews 500 ×1, ratings 200, ratings 503, details 200.
    expect(data("SELECT blob1, double2 >= 500 AS failed, count() AS n FROM mesh GROUP BY 1, 2 ORDER BY blob1, failed")).toEqual([
      { blob1: "details", failed: 0, n: "1" },
      { blob1: "ratings", failed: 0, n: "1" },
      { blob1: "ratings", failed: 1, n: "1" },
      { blob1: "reviews", failed: 0, n: "3" },
      { blob1: "reviews", failed: 1, n: "1" },
    ]);
    // intDiv(latency, 100) buckets: 0 for 10, 20, 40, 5, 7; 3 for 300; 10 for 1000.
    expect(data("SELECT intDiv(double1, 100) AS bucket, count() AS n FROM mesh GROUP BY bucket ORDER BY bucket")).toEqual([
      { bucket: "0", n: "5" },
      { bucket: "3", n: "1" },
      { bucket: "10", n: "1" },
    ]);
  });

  it("counts distinct values", () => {
    expect(data("SELECT count(DISTINCT blob1) AS services, count(blob1) AS rows FROM mesh")).toEqual([{ services: "3", rows: "7" }]);
  });
});

describe("HAVING", () => {
  it("filters groups by an aggregate, through its alias or written out", () => {
    // Events per service over all time: reviews 8, details 3, ratings 2.
    expect(data("SELECT blob1 AS s, sum(_sample_interval) AS events FROM mesh GROUP BY s HAVING events > 2 ORDER BY s")).toEqual([
      { s: "details", events: "3" },
      { s: "reviews", events: "8" },
    ]);
    expect(data("SELECT blob1 AS s FROM mesh GROUP BY s HAVING sum(_sample_interval) > 3 AND max(double1) >= 300")).toEqual([{ s: "reviews" }]);
  });

  it("works without GROUP BY on the single aggregate row", () => {
    expect(data("SELECT count() AS n FROM mesh HAVING n > 100")).toEqual([]);
    expect(data("SELECT count() AS n FROM mesh HAVING n = 7")).toEqual([{ n: "7" }]);
  });
});

describe("ORDER BY, LIMIT and OFFSET", () => {
  it("sorts descending, limits, and reports the rows before the limit", () => {
    // Events: reviews 8, details 3, ratings 2.
    const top = run("SELECT blob1 AS s, sum(_sample_interval) AS events FROM mesh GROUP BY s ORDER BY events DESC LIMIT 2");
    expect(top.data).toEqual([
      { s: "reviews", events: "8" },
      { s: "details", events: "3" },
    ]);
    expect(top.rows).toBe(2);
    expect(top.rows_before_limit_at_least).toBe(3);
    expect(data("SELECT blob1 AS s, sum(_sample_interval) AS events FROM mesh GROUP BY s ORDER BY events DESC LIMIT 1 OFFSET 1")).toEqual([{ s: "details", events: "3" }]);
    expect(data("SELECT blob1 AS s, sum(_sample_interval) AS events FROM mesh GROUP BY s ORDER BY events DESC LIMIT 1, 1")).toEqual([{ s: "details", events: "3" }]);
  });

  it("sorts by several keys, mixing directions, by expressions not selected", () => {
    // Rows of 'mesh' by service ascending, then latency descending.
    expect(data("SELECT blob1, double1 FROM mesh ORDER BY blob1 ASC, double1 DESC").map((r) => `${r.blob1}:${r.double1}`)).toEqual([
      "details:7",
      "ratings:1000",
      "ratings:5",
      "reviews:300",
      "reviews:40",
      "reviews:20",
      "reviews:10",
    ]);
    expect(data("SELECT blob1 FROM mesh GROUP BY blob1 ORDER BY max(double1) DESC")).toEqual([{ blob1: "ratings" }, { blob1: "reviews" }, { blob1: "details" }]);
  });

  it("limits an unordered scan and still counts every matching row", () => {
    const result = run("SELECT blob1 FROM mesh LIMIT 2");
    expect(result.rows).toBe(2);
    expect(result.rows_before_limit_at_least).toBe(7);
    expect(run("SELECT blob1 FROM mesh LIMIT ALL").rows).toBe(7);
  });

  it("keeps only the top rows of a large ordered scan, exactly as a full sort would, ties in arrival order", () => {
    // 5,000 rows; latency cycles through 0..96, so many rows tie on it.
    const many = Array.from({ length: 5_000 }, (_, i) => point(`s${i}`, 200, (i * 37) % 97, 1, i % 300));
    const full = runQuery("SELECT blob1, double1 FROM mesh ORDER BY double1 DESC", many, { nowMs: NOW_MS });
    const top = runQuery("SELECT blob1, double1 FROM mesh ORDER BY double1 DESC LIMIT 25 OFFSET 40", many, { nowMs: NOW_MS });
    expect(top.data).toEqual(full.data.slice(40, 65));
    expect(top.rows_before_limit_at_least).toBe(5_000);
  });

  it("refuses answers larger than MAX_RESULT_ROWS unless limited", () => {
    const many = Array.from({ length: MAX_RESULT_ROWS + 1 }, (_, i) => point("s", 200, i, 1, 0));
    const refuse = (sql: string) => {
      try {
        runQuery(sql, many, { nowMs: NOW_MS });
      } catch (error) {
        return error instanceof SqlError ? error.construct : error;
      }
      return "answered";
    };
    expect(refuse("SELECT double1 FROM mesh")).toBe("result size");
    expect(refuse("SELECT double1, count() FROM mesh GROUP BY double1")).toBe("result size");
    expect(refuse("SELECT double1 FROM mesh ORDER BY double1 DESC LIMIT 3")).toBe("answered");
    expect(refuse("SELECT count() FROM mesh")).toBe("answered");
  });

  it("removes duplicate result rows with DISTINCT", () => {
    expect(data("SELECT DISTINCT blob1 FROM mesh ORDER BY blob1")).toEqual([{ blob1: "details" }, { blob1: "ratings" }, { blob1: "reviews" }]);
  });
});

describe("quantileExactWeighted", () => {
  // reviews latencies with weights: 10 (1), 20 (1), 40 (4), 300 (2); total weight 8.
  // ClickHouse's rule: the first value whose running weight reaches ceil(level × total).
  it("weights each value by _sample_interval", () => {
    // p50: ceil(4) = 4 → running 1, 2, 6 → 40.   p25: ceil(2) = 2 → 20.
    // p95: ceil(7.6) = 8 → running 1, 2, 6, 8 → 300.   p0: ceil(0) = 0 → the smallest, 10.
    expect(
      data(
        "SELECT quantileExactWeighted(0.5)(double1, _sample_interval) AS p50, quantileExactWeighted(0.25)(double1, _sample_interval) AS p25, quantileExactWeighted(0.95)(double1, _sample_interval) AS p95, quantileExactWeighted(0)(double1, _sample_interval) AS p0 FROM mesh WHERE blob1 = 'reviews'",
      ),
    ).toEqual([{ p50: 40, p25: 20, p95: 300, p0: 10 }]);
  });

  it("gives a different answer with unit weights, and accepts the older spellings", () => {
    // Unweighted: 10, 20, 40, 300 → p50 threshold ceil(2) = 2 → 20.
    expect(data("SELECT quantileExactWeighted(0.5)(double1, 1) AS p50 FROM mesh WHERE blob1 = 'reviews'")).toEqual([{ p50: 20 }]);
    expect(data("SELECT quantileWeighted(0.5, double1, _sample_interval) AS p50 FROM mesh WHERE blob1 = 'reviews'")).toEqual([{ p50: 40 }]);
    expect(data("SELECT quantileExactWeighted(double1, _sample_interval) AS median FROM mesh WHERE blob1 = 'reviews'")).toEqual([{ median: 40 }]);
  });

  it("merges equal values, computes per group, and is null over no values", () => {
    const merged = [point("a", 200, 5, 3, 1), point("a", 200, 5, 3, 2), point("a", 200, 9, 5, 3)];
    // 5 has weight 6, 9 has weight 5; p50 threshold ceil(5.5) = 6 → 5; p60 ceil(6.6) = 7 → 9.
    expect(runQuery("SELECT quantileExactWeighted(0.5)(double1, _sample_interval) AS p50, quantileExactWeighted(0.6)(double1, _sample_interval) AS p60 FROM mesh", merged, { nowMs: NOW_MS }).data).toEqual([{ p50: 5, p60: 9 }]);
    // ratings: 5 (1), 1000 (1): p50 ceil(1) = 1 → 5, p99 ceil(1.98) = 2 → 1000.
    expect(data(`SELECT blob1 AS s, quantileExactWeighted(0.5)(double1, _sample_interval) AS p50, quantileExactWeighted(0.99)(double1, _sample_interval) AS p99 FROM mesh WHERE ${LAST_HOUR} GROUP BY s ORDER BY s`)).toEqual([
      { s: "ratings", p50: 5, p99: 1000 },
      { s: "reviews", p50: 40, p99: 300 },
    ]);
    expect(data("SELECT quantileExactWeighted(0.5)(double1, _sample_interval) AS p FROM mesh WHERE blob1 = 'nobody'")).toEqual([{ p: null }]);
  });

  it("works with the -If combinator", () => {
    // reviews rows with status 200: 10 (1), 20 (1), 40 (4); p50 ceil(3) = 3 → 40; p25 ceil(1.5) = 2 → 20.
    expect(data("SELECT quantileExactWeightedIf(0.25)(double1, _sample_interval, double2 = 200) AS p25 FROM mesh WHERE blob1 = 'reviews'")).toEqual([{ p25: 20 }]);
  });
});

describe("time", () => {
  it("buckets with toStartOfInterval", () => {
    // Two-minute buckets of the last hour: 11:58 ← 11:59:10 (1), 11:58:10 (1), 11:59:40 (1) = 3;
    // 11:56 ← 11:57:10 (2), 11:56:10 (4) = 6; 11:52 ← 11:53:20 (1) = 1.
    const result = run(`SELECT toStartOfInterval(timestamp, INTERVAL '2' MINUTE) AS t, sum(_sample_interval) AS events FROM mesh WHERE ${LAST_HOUR} GROUP BY t ORDER BY t`);
    expect(result.meta[0]).toEqual({ name: "t", type: "DateTime" });
    expect(result.data).toEqual([
      { t: "2024-05-01 11:52:00", events: "1" },
      { t: "2024-05-01 11:56:00", events: "6" },
      { t: "2024-05-01 11:58:00", events: "3" },
    ]);
    // Five-minute buckets, unquoted interval: 11:55 ← five rows (1+1+2+4+1 = 9), 11:50 ← 11:53:20 (1).
    expect(data(`SELECT toStartOfInterval(timestamp, INTERVAL 5 MINUTE) AS t, sum(_sample_interval) AS events FROM mesh WHERE ${LAST_HOUR} GROUP BY t ORDER BY t DESC`)).toEqual([
      { t: "2024-05-01 11:55:00", events: "9" },
      { t: "2024-05-01 11:50:00", events: "1" },
    ]);
    // Hours: details' row (10:59:50) falls in 10:00, the others in 11:00.
    expect(data("SELECT toStartOfInterval(timestamp, INTERVAL '1' HOUR) AS h, count() AS n FROM mesh GROUP BY h ORDER BY h")).toEqual([
      { h: "2024-05-01 10:00:00", n: "1" },
      { h: "2024-05-01 11:00:00", n: "6" },
    ]);
  });

  it("does INTERVAL arithmetic on now() with a fixed clock", () => {
    expect(
      data(
        "SELECT now() AS now, now() - INTERVAL '5' MINUTE AS five_minutes_ago, now() - INTERVAL 1 DAY AS yesterday, now() + INTERVAL '2' HOUR AS later, now() - INTERVAL '1' MONTH AS last_month, INTERVAL '1' YEAR + now() AS next_year",
      ),
    ).toEqual([
      {
        now: "2024-05-01 12:00:00",
        five_minutes_ago: "2024-05-01 11:55:00",
        yesterday: "2024-04-30 12:00:00",
        later: "2024-05-01 14:00:00",
        last_month: "2024-04-01 12:00:00",
        next_year: "2025-05-01 12:00:00",
      },
    ]);
    // A month back from March 31 lands on the last day of February (2024 is a leap year).
    expect(data("SELECT toDateTime('2024-03-31 10:00:00') - INTERVAL '1' MONTH AS t")).toEqual([{ t: "2024-02-29 10:00:00" }]);
  });

  it("filters by a window relative to now()", () => {
    // After 11:57:00: 11:59:10, 11:58:10, 11:57:10, 11:59:40 → 4 rows of 'mesh'.
    expect(data("SELECT count() AS n FROM mesh WHERE timestamp > now() - INTERVAL '3' MINUTE")).toEqual([{ n: "4" }]);
    // A later clock moves the window: at 12:02:00 only 11:59:10 and 11:59:40 are after 11:59:00.
    expect(runQuery("SELECT count() AS n FROM mesh WHERE timestamp > now() - INTERVAL '3' MINUTE", rows, { nowMs: NOW_MS + 120_000 }).data).toEqual([{ n: "2" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE timestamp >= '2024-05-01 11:59:10' AND timestamp < toDateTime('2024-05-01 12:00:00')")).toEqual([{ n: "2" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE timestamp BETWEEN '2024-05-01 11:56:10' AND '2024-05-01 11:57:10'")).toEqual([{ n: "2" }]);
  });

  it("converts DateTimes to and from numbers", () => {
    expect(data("SELECT toUnixTimestamp(now()) AS s, toDateTime(1714564800) AS t, toStartOfFiveMinutes(toDateTime('2024-05-01 11:58:59')) AS five, toStartOfDay(now()) AS day")).toEqual([
      { s: 1714564800, t: "2024-05-01 12:00:00", five: "2024-05-01 11:55:00", day: "2024-05-01 00:00:00" },
    ]);
  });
});

describe("expressions and columns", () => {
  it("types and formats results as the SQL API does", () => {
    const result = run("SELECT timestamp, _sample_interval, index1, double1, 1 + 1 AS two, intDiv(_sample_interval, 2) AS half, double1 / 4 AS quarter FROM mesh WHERE double1 = 300");
    expect(result.meta).toEqual([
      { name: "timestamp", type: "DateTime" },
      { name: "_sample_interval", type: "UInt32" },
      { name: "index1", type: "String" },
      { name: "double1", type: "Float64" },
      { name: "two", type: "UInt16" },
      { name: "half", type: "UInt32" },
      { name: "quarter", type: "Float64" },
    ]);
    expect(result.data).toEqual([{ timestamp: "2024-05-01 11:57:10", _sample_interval: 2, index1: "reviews", double1: 300, two: 2, half: 1, quarter: 75 }]);
  });

  it("reads function names case-insensitively, and matches GROUP BY keys however they are spelled", () => {
    expect(data("SELECT TOSTARTOFINTERVAL(timestamp, INTERVAL 1 HOUR) AS h, COUNT() AS n, Sum(_sample_interval) AS e FROM mesh GROUP BY toStartOfInterval(timestamp, INTERVAL '1' HOUR) ORDER BY h")).toEqual([
      { h: "2024-05-01 10:00:00", n: "1", e: "3" },
      { h: "2024-05-01 11:00:00", n: "6", e: "10" },
    ]);
  });

  it("names unaliased columns as ClickHouse does", () => {
    expect(run("SELECT count(), sum(double1), double1 + 1 FROM mesh GROUP BY double1 LIMIT 1").meta.map((m) => m.name)).toEqual(["count()", "sum(double1)", "plus(double1, 1)"]);
  });

  it("applies arithmetic, comparisons, boolean logic, IN and LIKE", () => {
    expect(data("SELECT blob1 FROM mesh WHERE blob1 IN ('ratings', 'details') AND NOT double2 = 503 ORDER BY blob1")).toEqual([{ blob1: "details" }, { blob1: "ratings" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE blob1 NOT IN ('reviews') OR double1 * 2 + 1 > 500")).toEqual([{ n: "4" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE blob1 LIKE 're%'")).toEqual([{ n: "4" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE blob2 LIKE '/_at%' OR blob1 ILIKE 'DETAILS'")).toEqual([{ n: "3" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE blob1 NOT LIKE '%ew%'")).toEqual([{ n: "3" }]);
    expect(data("SELECT count() AS n FROM mesh WHERE double2 != 200 AND double2 <> 201")).toEqual([{ n: "2" }]);
    expect(data("SELECT 7 % 3 AS m, -7 % 3 AS neg, intDiv(-7, 2) AS q, 2 - 5 AS d, -(3) AS n")).toEqual([{ m: 1, neg: -1, q: -3, d: -3, n: -3 }]);
  });

  it("lets aliases be used in WHERE and in other SELECT items", () => {
    expect(data("SELECT blob1 AS s, double1 AS latency, latency * 2 AS twice FROM mesh WHERE s = 'ratings' AND latency > 10")).toEqual([{ s: "ratings", latency: 1000, twice: 2000 }]);
    // An alias may shadow the column it is made from.
    expect(data("SELECT double1 * 2 AS double1 FROM mesh WHERE blob1 = 'details'")).toEqual([{ double1: 14 }]);
  });

  it("converts and rounds", () => {
    expect(data("SELECT toUInt32('42') AS a, toUInt32(3.9) AS b, toFloat64('1.5') AS c, toString(12) AS d, round(2.5) AS e, round(3.5) AS f, round(3.14159, 2) AS g, floor(2.7) AS h, ceil(2.1) AS i, if(1 > 2, 'yes', 'no') AS j")).toEqual([
      { a: 42, b: 3, c: 1.5, d: "12", e: 2, f: 4, g: 3.14, h: 2, i: 3, j: "no" },
    ]);
  });

  it("reads missing blobs as '' and missing doubles as 0, and SELECT * as every column", () => {
    const result = run("SELECT * FROM mesh WHERE double1 = 7");
    expect(result.meta.length).toBe(44);
    expect(result.data[0]).toMatchObject({ dataset: "mesh", blob1: "details", blob3: "", double2: 200, double3: 0, _sample_interval: 3 });
  });

  it("answers a query without FROM", () => {
    expect(run("SELECT 'Hello Workers Analytics Engine' AS message FORMAT JSON")).toEqual({
      meta: [{ name: "message", type: "String" }],
      data: [{ message: "Hello Workers Analytics Engine" }],
      rows: 1,
    });
  });

  it("reads only the FROM dataset", () => {
    expect(data("SELECT count() AS n FROM other")).toEqual([{ n: "1" }]);
    expect(data("SELECT count() AS n FROM nothing_here")).toEqual([{ n: "0" }]);
  });
});
