// The building blocks of every golden-metrics query, as SQL of Analytics Engine's dialect: how many
// requests, how many succeeded, a latency quantile, each weighted by the rows' sampling. Defined
// once: the admin API's metrics (analytics/golden-metrics.ts), the dashboard's charts
// (dashboard/src/series.ts) and the rollout gates (durable/rollout-metrics.ts) all measure with
// these. Pure.
import { COLUMN, ROW_WEIGHT, ROW_WEIGHT_UINT } from "./request-layout.ts";

/** Requests the rows stand for. */
export const REQUESTS_SQL = `sum(${ROW_WEIGHT})`;
/** Of those, the ones answered below 500 (a 4xx is the caller's problem, as in Linkerd). */
export const SUCCESSES_SQL = `sumIf(${ROW_WEIGHT}, ${COLUMN.status} < 500)`;
/** Retries: attempts beyond the first. */
export const RETRIES_SQL = `sumIf(${ROW_WEIGHT} * (${COLUMN.attempts} - 1), ${COLUMN.attempts} > 1)`;
/** Requests the circuit breaker refused. */
export const SHEDS_SQL = `sumIf(${ROW_WEIGHT}, ${COLUMN.outcome} = 'shed')`;

/** The weighted `q` quantile (0..1) of latency in ms. */
export function latencyQuantileSql(q: number): string {
  return `quantileExactWeighted(${q})(${COLUMN.latencyMs}, ${ROW_WEIGHT_UINT})`;
}

/** A string literal in the dialect: single quotes, backslash and quote escaped. */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** Analytics Engine answers 64-bit integers as strings in JSON. */
export function sqlNumber(value: unknown): number {
  return typeof value === "number" ? value : typeof value === "string" ? Number(value) : 0;
}
