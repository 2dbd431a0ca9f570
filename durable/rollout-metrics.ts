// How a rollout measures its canary: one query over the requests the canary subset of a service
// served in a window of whole seconds, with the golden-metrics building blocks (analytics/
// golden-sql.ts), so a gate's success rate and p99 are the ones the metrics API shows. It runs on
// Analytics Engine's SQL API when the control Worker has the edge credentials, else on the local
// telemetry store: the same text in both places.
import { edgeQueryConfig, queryEdge, type EdgeQueryEnv } from "../analytics/edge-client.ts";
import { latencyQuantileSql, REQUESTS_SQL, sqlNumber, sqlString, SUCCESSES_SQL } from "../analytics/golden-sql.ts";
import { COLUMN, REQUESTS_DATASET } from "../analytics/request-layout.ts";
import type { TelemetryStoreRpc } from "../analytics/store-rpc.ts";
import type { QueryResult } from "../analytics/types.ts";
import type { CanaryMeasurement } from "../policies/rollout-run.ts";

export interface CanaryWindow {
  mesh: string;
  service: string;
  subset: string;
  /** Start of the window (inclusive), ms since the epoch; floored to a whole second. */
  fromMs: number;
  /** End of the window (exclusive), ms; floored to a whole second. */
  toMs: number;
}

export type MeasureAnswer =
  | { ok: true; measurement: CanaryMeasurement; source: "local" | "edge" }
  | { ok: false; error: string };

/** Where rollout queries go: the control Worker's env, which MeshControl shares. */
export interface RolloutMetricsEnv extends EdgeQueryEnv {
  TELEMETRY_STORE?: DurableObjectNamespace;
  TELEMETRY_DATASET?: string;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/** The gate query for one window. */
export function canaryMetricsSql(w: CanaryWindow, dataset: string): string {
  return [
    "SELECT",
    `  ${REQUESTS_SQL} AS requests,`,
    `  ${SUCCESSES_SQL} AS successes,`,
    `  ${latencyQuantileSql(0.99)} AS p99_ms`,
    `FROM ${dataset}`,
    `WHERE ${COLUMN.mesh} = ${sqlString(w.mesh)} AND ${COLUMN.destination} = ${sqlString(w.service)} AND ${COLUMN.subset} = ${sqlString(w.subset)}`,
    `  AND timestamp >= toDateTime(${seconds(w.fromMs)}) AND timestamp < toDateTime(${seconds(w.toMs)})`,
    "FORMAT JSON",
  ].join("\n");
}

/** The measurement in a gate query's answer (no row, or zero requests: nothing measured). */
export function canaryMeasurementOf(result: QueryResult): CanaryMeasurement {
  const row = result.data[0];
  const requests = sqlNumber(row?.requests);
  if (!row || !(requests > 0)) return { requests: 0, successRate: null, p99Ms: null };
  return { requests, successRate: sqlNumber(row.successes) / requests, p99Ms: sqlNumber(row.p99_ms) };
}

/** Measures the canary over a window, at the edge when configured, else on the local store. */
export async function measureCanary(env: RolloutMetricsEnv, w: CanaryWindow): Promise<MeasureAnswer> {
  const dataset = env.TELEMETRY_DATASET || REQUESTS_DATASET;
  const sql = canaryMetricsSql(w, dataset);
  const edge = edgeQueryConfig(env);
  if (edge) {
    const answer = await queryEdge(sql, edge);
    return answer.ok
      ? { ok: true, measurement: canaryMeasurementOf(answer.result), source: "edge" }
      : { ok: false, error: `Analytics Engine SQL API: ${answer.error}` };
  }
  const ns = env.TELEMETRY_STORE;
  if (!ns) return { ok: false, error: "no telemetry to judge by: the control Worker has neither the Analytics Engine credentials nor a TELEMETRY_STORE binding" };
  try {
    const store = ns.get(ns.idFromName(dataset)) as unknown as Pick<TelemetryStoreRpc, "query">;
    const answer = await store.query(sql);
    return answer.ok ? { ok: true, measurement: canaryMeasurementOf(answer.result), source: "local" } : { ok: false, error: `telemetry store: ${answer.error}` };
  } catch (err) {
    return { ok: false, error: `telemetry store: ${(err as Error).message}` };
  }
}
