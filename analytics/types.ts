// The shape of Workers Analytics Engine data, shared by the sidecar's telemetry sinks, the local
// telemetry store and the SQL engine that answers queries over it. Pure types: imports nothing.

/** Analytics Engine's per-data-point limits. */
export const MAX_BLOBS = 20;
export const MAX_DOUBLES = 20;
export const MAX_INDEX_BYTES = 96;
/** Data points one Worker invocation may write. */
export const MAX_POINTS_PER_INVOCATION = 250;

/** What a Worker hands to `writeDataPoint` (the Analytics Engine binding's argument). */
export interface DataPoint {
  blobs: string[];
  doubles: number[];
  indexes: [string];
}

/** One stored row, as Analytics Engine's SQL API exposes it. */
export interface AnalyticsRow {
  /** The dataset (the FROM of a query). */
  dataset: string;
  /** Milliseconds since the epoch. */
  timestampMs: number;
  /** How many real events this row stands for (1 unless sampled). */
  sampleInterval: number;
  index1: string;
  /** blob1..blob20; missing ones read as "". */
  blobs: string[];
  /** double1..double20; missing ones read as 0. */
  doubles: number[];
}

/** The answer of a query in `FORMAT JSON`, shaped as the Analytics Engine SQL API answers. */
export interface QueryResult {
  meta: { name: string; type: string }[];
  data: Record<string, string | number | null>[];
  rows: number;
  rows_before_limit_at_least?: number;
}
