// What a store needs to read only the rows a query can match: the dataset, the columns it reads,
// and the time range that WHERE's conjuncts on `timestamp` allow. The engine still applies the
// whole WHERE clause, so the range only has to be wide enough, never exact.
import type { AnalyticsRow } from "../types.ts";
import type { QueryPlan, TimeBound } from "./analyze.ts";
import type { Env } from "./compiled.ts";
import { parseDateTime } from "./datetime.ts";
import { SqlError } from "./errors.ts";

export interface ScanFilter {
  /** Rows of other datasets never match; null for a query without FROM. */
  dataset: string | null;
  /** Rows with `timestampMs` below this cannot match (inclusive bound), or null. */
  fromTimestampMs: number | null;
  /** Rows with `timestampMs` at or above this cannot match (exclusive bound), or null. */
  toTimestampMs: number | null;
  /** The columns the query reads; a store may leave the others out of the rows it hands over. */
  columns: readonly string[];
}

export function scanFilter(plan: QueryPlan, env: Env): ScanFilter {
  let from: number | null = null;
  let to: number | null = null;
  for (const bound of plan.timeBounds) {
    const seconds = boundSeconds(bound, env);
    if (seconds === null) continue;
    // timestamp is whole seconds: floor(ms / 1000) compared with `seconds`.
    const lower = bound.op === "greater" ? (Math.floor(seconds) + 1) * 1000 : bound.op === "greaterOrEquals" || bound.op === "equals" ? Math.ceil(seconds) * 1000 : null;
    const upper = bound.op === "less" ? Math.ceil(seconds) * 1000 : bound.op === "lessOrEquals" || bound.op === "equals" ? (Math.floor(seconds) + 1) * 1000 : null;
    if (lower !== null) from = from === null ? lower : Math.max(from, lower);
    if (upper !== null) to = to === null ? upper : Math.min(to, upper);
  }
  return { dataset: plan.dataset, fromTimestampMs: from, toTimestampMs: to, columns: plan.columns };
}

function boundSeconds(bound: TimeBound, env: Env): number | null {
  let value;
  try {
    value = bound.value.evaluate(undefined as unknown as AnalyticsRow, env);
  } catch (error) {
    // The same error surfaces when the query runs; a range is only an optimisation.
    if (error instanceof SqlError) return null;
    throw error;
  }
  const seconds = typeof value === "string" ? parseDateTime(value) : typeof value === "number" ? value : null;
  return seconds !== null && Number.isFinite(seconds) ? seconds : null;
}
