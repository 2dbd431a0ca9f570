// The telemetry store's SQLite table: one row per data point with the columns Analytics Engine
// exposes (dataset, timestamp, _sample_interval, index1, blob1..20, double1..20), indexed by time.
// It inserts batches, reads the rows a query can match, and prunes by age and row count.
import type { ScanFilter } from "../analytics/sql/index.ts";
import { MAX_BLOBS, MAX_DOUBLES, type AnalyticsRow } from "../analytics/types.ts";

const BLOB_COLUMNS = Array.from({ length: MAX_BLOBS }, (_, i) => `blob${i + 1}`);
const DOUBLE_COLUMNS = Array.from({ length: MAX_DOUBLES }, (_, i) => `double${i + 1}`);
const ALL_COLUMNS = ["dataset", "timestamp", "_sample_interval", "index1", ...BLOB_COLUMNS, ...DOUBLE_COLUMNS];

const INSERT = `INSERT INTO analytics_points (${ALL_COLUMNS.join(", ")}) VALUES (${ALL_COLUMNS.map(() => "?").join(", ")})`;

export class TelemetryTable {
  /** Rows in the table, counted once and then kept up to date by inserts and deletes. */
  private rowCount: number;

  constructor(private readonly sql: SqlStorage) {
    // `timestamp` holds milliseconds; the SQL engine reads it as a DateTime in whole seconds.
    sql.exec(`
      CREATE TABLE IF NOT EXISTS analytics_points (
        dataset TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        _sample_interval INTEGER NOT NULL,
        index1 TEXT NOT NULL,
        ${BLOB_COLUMNS.map((c) => `${c} TEXT`).join(", ")},
        ${DOUBLE_COLUMNS.map((c) => `${c} REAL`).join(", ")}
      );
      CREATE INDEX IF NOT EXISTS analytics_points_by_time ON analytics_points (timestamp);
      CREATE TABLE IF NOT EXISTS telemetry_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
    this.rowCount = this.countRows();
  }

  private countRows(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM analytics_points").one().n;
  }

  /** Counts the rows again, after a transaction rolled back. */
  recount(): void {
    this.rowCount = this.countRows();
  }

  get rows(): number {
    return this.rowCount;
  }

  /** Inserts rows already checked; call inside a transaction. */
  insert(rows: readonly AnalyticsRow[]): void {
    for (const row of rows) {
      const values: (string | number | null)[] = [row.dataset, row.timestampMs, row.sampleInterval, row.index1];
      for (let i = 0; i < MAX_BLOBS; i++) values.push(row.blobs[i] ?? null);
      for (let i = 0; i < MAX_DOUBLES; i++) values.push(row.doubles[i] ?? null);
      this.sql.exec(INSERT, ...values);
    }
    this.rowCount += rows.length;
  }

  /** The rows a query can match, read lazily; only the columns it reads are filled in. */
  *scan(filter: ScanFilter): Generator<AnalyticsRow> {
    const conditions: string[] = [];
    const bindings: (string | number)[] = [];
    if (filter.dataset !== null) {
      conditions.push("dataset = ?");
      bindings.push(filter.dataset);
    }
    if (filter.fromTimestampMs !== null) {
      conditions.push("timestamp >= ?");
      bindings.push(filter.fromTimestampMs);
    }
    if (filter.toTimestampMs !== null) {
      conditions.push("timestamp < ?");
      bindings.push(filter.toTimestampMs);
    }
    const wanted = new Set(filter.columns);
    const blobs = BLOB_COLUMNS.flatMap((name, i) => (wanted.has(name) ? [i] : []));
    const doubles = DOUBLE_COLUMNS.flatMap((name, i) => (wanted.has(name) ? [i] : []));
    const columns = ["dataset", "timestamp", "_sample_interval", "index1", ...blobs.map((i) => BLOB_COLUMNS[i]!), ...doubles.map((i) => DOUBLE_COLUMNS[i]!)];
    const where = conditions.length > 0 ? `WHERE ${conditions.join(" AND ")}` : "";
    const cursor = this.sql.exec(`SELECT ${columns.join(", ")} FROM analytics_points ${where}`, ...bindings);
    for (const raw of cursor.raw()) {
      const row: AnalyticsRow = {
        dataset: raw[0] as string,
        timestampMs: raw[1] as number,
        sampleInterval: raw[2] as number,
        index1: raw[3] as string,
        blobs: [],
        doubles: [],
      };
      let at = 4;
      for (const i of blobs) row.blobs[i] = (raw[at++] as string | null) ?? "";
      for (const i of doubles) row.doubles[i] = (raw[at++] as number | null) ?? 0;
      yield row;
    }
  }

  /** Deletes rows older than `cutoffMs`; returns how many. */
  deleteOlderThan(cutoffMs: number): number {
    const doomed = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM analytics_points WHERE timestamp < ?", cutoffMs).one().n;
    if (doomed > 0) this.sql.exec("DELETE FROM analytics_points WHERE timestamp < ?", cutoffMs);
    this.rowCount -= doomed;
    return doomed;
  }

  /** Deletes the oldest rows until at most `maxRows` remain; returns how many. */
  trimTo(maxRows: number): number {
    const excess = this.rowCount - maxRows;
    if (excess <= 0) return 0;
    this.sql.exec("DELETE FROM analytics_points WHERE rowid IN (SELECT rowid FROM analytics_points ORDER BY timestamp LIMIT ?)", excess);
    this.rowCount -= excess;
    return excess;
  }

  timeRange(): { oldestTimestampMs: number | null; newestTimestampMs: number | null } {
    const range = this.sql.exec<{ oldest: number | null; newest: number | null }>("SELECT MIN(timestamp) AS oldest, MAX(timestamp) AS newest FROM analytics_points").one();
    return { oldestTimestampMs: range.oldest, newestTimestampMs: range.newest };
  }

  counter(name: string): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM telemetry_counters WHERE name = ?", name).toArray()[0]?.value ?? 0;
  }

  addToCounter(name: string, amount: number): void {
    if (amount === 0) return;
    this.sql.exec("INSERT INTO telemetry_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", name, amount);
  }
}
