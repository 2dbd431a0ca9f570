// TelemetryStore: the local stand-in for Workers Analytics Engine, which stores nothing when run
// locally. One Durable Object (SQLite) keeps data points with Analytics Engine's columns and
// answers the same SQL through the engine in analytics/sql. Sidecars batch per isolate and call
// `ingest` rarely; retention (max age, max rows) is enforced on ingest and by an alarm.
import { DurableObject } from "cloudflare:workers";
import { rowProblem } from "../analytics/row-check.ts";
import { executeQuery, parseQuery, SqlError } from "../analytics/sql/index.ts";
import type { IngestResult, StoreQueryAnswer, TelemetryStoreRpc, TelemetryStoreStats } from "../analytics/store-rpc.ts";
import type { AnalyticsRow } from "../analytics/types.ts";
import { TelemetryTable } from "./telemetry-table.ts";

export type { IngestResult, StoreQueryAnswer, TelemetryStoreRpc, TelemetryStoreStats } from "../analytics/store-rpc.ts";

export interface TelemetryStoreEnv {
  /** Rows older than this many milliseconds are deleted (default 24 hours). */
  TELEMETRY_MAX_AGE_MS?: string;
  /** At most this many rows are kept; the oldest are deleted first (default 500,000). */
  TELEMETRY_MAX_ROWS?: string;
}

export const DEFAULT_MAX_AGE_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_MAX_ROWS = 500_000;
/** Rows accepted by one ingest call; the rest of a larger batch is dropped and counted. */
export const MAX_INGEST_BATCH = 10_000;
/** Deleting by age costs an index range scan: it runs once this many rows have been inserted, and on the alarm. */
const AGE_PRUNE_EVERY_ROWS = 1_000;
/** How often the alarm enforces the age limit while the store holds rows. */
const RETENTION_ALARM_MS = 60_000;

function positiveWholeNumber(env: TelemetryStoreEnv, name: keyof TelemetryStoreEnv, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(raw)}`);
  return value;
}

export class TelemetryStore extends DurableObject<TelemetryStoreEnv> implements TelemetryStoreRpc {
  private readonly table: TelemetryTable;
  private readonly maxAgeMs: number;
  private readonly maxRows: number;
  private insertedSinceAgePrune = 0;

  constructor(ctx: DurableObjectState, env: TelemetryStoreEnv) {
    super(ctx, env);
    this.maxAgeMs = positiveWholeNumber(env, "TELEMETRY_MAX_AGE_MS", DEFAULT_MAX_AGE_MS);
    this.maxRows = positiveWholeNumber(env, "TELEMETRY_MAX_ROWS", DEFAULT_MAX_ROWS);
    this.table = new TelemetryTable(ctx.storage.sql);
  }

  async ingest(rows: AnalyticsRow[]): Promise<IngestResult> {
    const nowMs = Date.now();
    const oldestKeptMs = nowMs - this.maxAgeMs;
    const batch = Array.isArray(rows) ? rows.slice(0, MAX_INGEST_BATCH) : [];
    const accepted = batch.filter((row) => rowProblem(row) === null && row.timestampMs >= oldestKeptMs);
    const dropped = (Array.isArray(rows) ? rows.length : 0) - accepted.length;
    this.inTransaction(() => {
      this.table.insert(accepted);
      this.table.addToCounter("dropped_at_ingest", dropped);
      this.insertedSinceAgePrune += accepted.length;
      if (this.insertedSinceAgePrune >= AGE_PRUNE_EVERY_ROWS) this.pruneByAge(nowMs);
      // The row limit is checked on every batch: the count is kept in memory, so this is free.
      this.table.addToCounter("dropped_by_retention", this.table.trimTo(this.maxRows));
    });
    if (accepted.length > 0 && (await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(nowMs + RETENTION_ALARM_MS);
    }
    return { stored: accepted.length, dropped };
  }

  async query(sql: string): Promise<StoreQueryAnswer> {
    try {
      const parsed = parseQuery(String(sql));
      const result = executeQuery(parsed, (filter) => this.table.scan(filter), { nowMs: Date.now() });
      return { ok: true, result };
    } catch (error) {
      if (error instanceof SqlError) return { ok: false, status: 400, error: error.message, construct: error.construct };
      throw error;
    }
  }

  async stats(): Promise<TelemetryStoreStats> {
    return {
      rows: this.table.rows,
      ...this.table.timeRange(),
      droppedByRetention: this.table.counter("dropped_by_retention"),
      droppedAtIngest: this.table.counter("dropped_at_ingest"),
      maxRows: this.maxRows,
      maxAgeMs: this.maxAgeMs,
    };
  }

  /** Deletes rows past the age and row limits now (the alarm does this every minute). */
  async enforceRetention(): Promise<{ deleted: number }> {
    const nowMs = Date.now();
    let deleted = 0;
    this.inTransaction(() => {
      const trimmed = this.table.trimTo(this.maxRows);
      this.table.addToCounter("dropped_by_retention", trimmed);
      deleted = this.pruneByAge(nowMs) + trimmed;
    });
    return { deleted };
  }

  override async alarm(): Promise<void> {
    await this.enforceRetention();
    if (this.table.rows > 0) await this.ctx.storage.setAlarm(Date.now() + RETENTION_ALARM_MS);
  }

  /** Runs `work` in one SQLite transaction; a rollback also rolls back the in-memory row count. */
  private inTransaction(work: () => void): void {
    try {
      this.ctx.storage.transactionSync(work);
    } catch (error) {
      this.table.recount();
      throw error;
    }
  }

  private pruneByAge(nowMs: number): number {
    const deleted = this.table.deleteOlderThan(nowMs - this.maxAgeMs);
    this.table.addToCounter("dropped_by_retention", deleted);
    this.insertedSinceAgePrune = 0;
    return deleted;
  }
}
