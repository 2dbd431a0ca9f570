// The RPC surface of the local telemetry store (durable/telemetry-store.ts), as plain types, so
// the sidecar's sinks and the control Worker can call it without importing the Durable Object.
import type { AnalyticsRow, QueryResult } from "./types.ts";

export interface IngestResult {
  /** Rows kept. */
  stored: number;
  /** Rows refused: malformed, beyond Analytics Engine's limits, already older than the retention age, or past the batch limit. */
  dropped: number;
}

export type StoreQueryAnswer =
  | { ok: true; result: QueryResult }
  /** The query is malformed or outside the supported SQL; `construct` names the offending piece. */
  | { ok: false; status: 400; error: string; construct: string };

export interface TelemetryStoreStats {
  rows: number;
  /** Timestamp of the oldest and newest stored row (ms since the epoch), null when empty. */
  oldestTimestampMs: number | null;
  newestTimestampMs: number | null;
  /** Rows deleted by retention (age or row limit) since the store was created. */
  droppedByRetention: number;
  /** Rows refused by ingest since the store was created. */
  droppedAtIngest: number;
  maxRows: number;
  maxAgeMs: number;
}

export interface TelemetryStoreRpc {
  ingest(rows: AnalyticsRow[]): Promise<IngestResult>;
  query(sql: string): Promise<StoreQueryAnswer>;
  stats(): Promise<TelemetryStoreStats>;
  /** Deletes rows past the age and row limits now, instead of waiting for the next alarm. */
  enforceRetention(): Promise<{ deleted: number }>;
}
