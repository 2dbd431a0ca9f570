// Golden metrics (request rate, success rate, p50/p95/p99 latency, retries, sheds) per service,
// per edge (source -> destination) and per route, over a window. Each scope is one SQL query in
// Analytics Engine's dialect, written here once: the JSON API, the Prometheus exposition and the
// CLI all come from these queries, and the same text runs on the local store and at the edge.
// The rows' shape is defined here too, for the admin API that answers them and the CLI and the
// dashboard that read them. Pure.
import { latencyQuantileSql, REQUESTS_SQL, RETRIES_SQL, SHEDS_SQL, sqlNumber, sqlString, SUCCESSES_SQL } from "./golden-sql.ts";
import { COLUMN } from "./request-layout.ts";
import type { QueryResult } from "./types.ts";

export const METRIC_SCOPES = ["services", "edges", "routes"] as const;
export type MetricScope = (typeof METRIC_SCOPES)[number];

/** The columns each scope groups by, named as they appear in answers. */
const GROUP_BY: Record<MetricScope, { name: string; column: string }[]> = {
  services: [{ name: "service", column: COLUMN.destination }],
  edges: [{ name: "source", column: COLUMN.source }, { name: "destination", column: COLUMN.destination }],
  routes: [{ name: "service", column: COLUMN.destination }, { name: "route", column: COLUMN.route }],
};

/** The label names of a scope's rows, in order: service | source, destination | service, route. */
export function metricLabels(scope: MetricScope): string[] {
  return GROUP_BY[scope].map((g) => g.name);
}

const UNITS = { s: ["SECOND", 1], m: ["MINUTE", 60], h: ["HOUR", 3600], d: ["DAY", 86_400] } as const;
export const MAX_WINDOW_SECONDS = 90 * 86_400;
export const DEFAULT_WINDOW = "1m";

export interface MetricWindow {
  /** As given, e.g. "5m". */
  text: string;
  seconds: number;
  /** e.g. INTERVAL '5' MINUTE */
  sql: string;
}

/** Parses "30s", "1m", "2h", "7d". */
export function parseWindow(raw: string | undefined): MetricWindow | { error: string } {
  const text = (raw ?? DEFAULT_WINDOW).trim();
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text);
  if (!m) return { error: `window must be a number and a unit (s, m, h, d), e.g. 30s, 1m, 2h, 7d; got "${text}"` };
  const [unit, unitSeconds] = UNITS[m[2] as keyof typeof UNITS];
  const seconds = Number(m[1]) * unitSeconds;
  if (seconds > MAX_WINDOW_SECONDS) return { error: `window must be at most 90d; got "${text}"` };
  return { text, seconds, sql: `INTERVAL '${m[1]}' ${unit}` };
}

/** The query behind one scope's golden metrics. */
export function goldenMetricsSql(scope: MetricScope, mesh: string, window: MetricWindow, dataset: string): string {
  const groups = GROUP_BY[scope];
  return [
    "SELECT",
    ...groups.map((g) => `  ${g.column} AS ${g.name},`),
    `  ${REQUESTS_SQL} AS requests,`,
    `  ${SUCCESSES_SQL} AS successes,`,
    `  ${RETRIES_SQL} AS retries,`,
    `  ${SHEDS_SQL} AS sheds,`,
    `  ${latencyQuantileSql(0.5)} AS p50_ms,`,
    `  ${latencyQuantileSql(0.95)} AS p95_ms,`,
    `  ${latencyQuantileSql(0.99)} AS p99_ms`,
    `FROM ${dataset}`,
    `WHERE ${COLUMN.mesh} = ${sqlString(mesh)} AND timestamp > now() - ${window.sql}`,
    `GROUP BY ${groups.map((g) => g.column).join(", ")}`,
    "ORDER BY requests DESC",
    "FORMAT JSON",
  ].join("\n");
}

export interface GoldenMetrics {
  /** The grouping columns of the scope: service | source, destination | service, route. */
  labels: Record<string, string>;
  /** Requests in the window (sampling weights applied). */
  requests: number;
  requestsPerSecond: number;
  /** Share answered below 500; null without requests. */
  successRate: number | null;
  latencyMs: { p50: number; p95: number; p99: number };
  retries: number;
  sheds: number;
}

/** GET /v1/metrics/<scope>'s answer: the rows under the scope's own name. */
export type MetricsAnswer = {
  mesh: string;
  scope: MetricScope;
  /** As asked, e.g. "5m". */
  window: string;
  windowSeconds: number;
  source: "local" | "edge";
} & { [S in MetricScope]?: GoldenMetrics[] };

const num = sqlNumber;

/** Shapes a golden-metrics query's answer; `window` turns counts into rates. */
export function goldenMetricsOf(scope: MetricScope, result: QueryResult, window: MetricWindow): GoldenMetrics[] {
  return result.data.map((row) => {
    const requests = num(row.requests);
    return {
      labels: Object.fromEntries(GROUP_BY[scope].map((g) => [g.name, String(row[g.name] ?? "")])),
      requests,
      requestsPerSecond: requests / window.seconds,
      successRate: requests > 0 ? num(row.successes) / requests : null,
      latencyMs: { p50: num(row.p50_ms), p95: num(row.p95_ms), p99: num(row.p99_ms) },
      retries: num(row.retries),
      sheds: num(row.sheds),
    };
  });
}
