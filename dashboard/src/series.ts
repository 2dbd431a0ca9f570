// Golden metrics of one service over time, for the service page's small charts: one query in
// Analytics Engine's SQL dialect through POST /v1/analytics/sql, so it runs on the local store
// and at the edge alike. Columns are named through the shared layout, never by number, and the
// measures are the golden-metrics building blocks, so a chart agrees with the metrics API. Pure.
import { latencyQuantileSql, REQUESTS_SQL, sqlNumber, sqlString, SUCCESSES_SQL } from "../../analytics/golden-sql.ts";
import { COLUMN } from "../../analytics/request-layout.ts";

export interface TimeWindow {
  /** As the metrics API takes it, e.g. "5m". */
  text: string;
  seconds: number;
  label: string;
}

/** The windows the dashboard offers; the metrics API takes any, these read well. */
export const WINDOWS: TimeWindow[] = [
  { text: "1m", seconds: 60, label: "last minute" },
  { text: "5m", seconds: 300, label: "last 5 minutes" },
  { text: "15m", seconds: 900, label: "last 15 minutes" },
  { text: "1h", seconds: 3600, label: "last hour" },
  { text: "6h", seconds: 21_600, label: "last 6 hours" },
  { text: "24h", seconds: 86_400, label: "last 24 hours" },
];
export const DEFAULT_WINDOW = WINDOWS[1]!;

export function windowOf(text: string | null | undefined): TimeWindow {
  return WINDOWS.find((w) => w.text === text) ?? DEFAULT_WINDOW;
}

const BUCKET_STEPS_S = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400];
/** Charts get at most this many points. */
export const MAX_POINTS = 60;

/** The smallest round bucket that keeps a window within MAX_POINTS points. */
export function bucketSeconds(windowSeconds: number): number {
  const wanted = windowSeconds / MAX_POINTS;
  return BUCKET_STEPS_S.find((s) => s >= wanted) ?? BUCKET_STEPS_S[BUCKET_STEPS_S.length - 1]!;
}

/** The query for one service's golden metrics per bucket over a window. */
export function serviceSeriesSql(opts: { dataset: string; mesh: string; service: string; windowSeconds: number }): string {
  const step = bucketSeconds(opts.windowSeconds);
  return [
    `SELECT toUnixTimestamp(toStartOfInterval(timestamp, INTERVAL '${step}' SECOND)) AS bucket,`,
    `  ${REQUESTS_SQL} AS requests,`,
    `  ${SUCCESSES_SQL} AS successes,`,
    `  ${latencyQuantileSql(0.5)} AS p50_ms,`,
    `  ${latencyQuantileSql(0.99)} AS p99_ms`,
    `FROM ${opts.dataset}`,
    `WHERE ${COLUMN.mesh} = ${sqlString(opts.mesh)} AND ${COLUMN.destination} = ${sqlString(opts.service)}`,
    `  AND timestamp > now() - INTERVAL '${opts.windowSeconds}' SECOND`,
    "GROUP BY bucket",
    "ORDER BY bucket",
    "FORMAT JSON",
  ].join("\n");
}

export interface SeriesPoint {
  /** The bucket's start, seconds since the epoch. */
  atS: number;
  requestsPerSecond: number;
  /** null when the bucket had no requests. */
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

const num = sqlNumber;

/**
 * One point per bucket from the window's start to now, the empty ones included (a chart with
 * holes would hide that traffic stopped). The current bucket's rate counts only its elapsed time.
 */
export function seriesOf(rows: Record<string, unknown>[], windowSeconds: number, nowMs: number): SeriesPoint[] {
  const step = bucketSeconds(windowSeconds);
  const nowS = Math.floor(nowMs / 1000);
  const byBucket = new Map<number, Record<string, unknown>>();
  for (const row of rows) byBucket.set(num(row.bucket), row);
  const first = Math.floor((nowS - windowSeconds) / step) * step + step;
  const points: SeriesPoint[] = [];
  for (let atS = first; atS <= nowS; atS += step) {
    const row = byBucket.get(atS);
    const requests = row ? num(row.requests) : 0;
    const elapsed = Math.max(1, Math.min(step, nowS - atS + 1));
    points.push({
      atS,
      requestsPerSecond: requests / elapsed,
      successRate: requests > 0 ? num(row!.successes) / requests : null,
      p50Ms: requests > 0 ? num(row!.p50_ms) : null,
      p99Ms: requests > 0 ? num(row!.p99_ms) : null,
    });
  }
  return points;
}
