// Small helpers every MeshControl component uses over the Durable Object's SQLite storage.

export type Row = Record<string, SqlStorageValue>;

/**
 * A key-value table for single values (the epoch, the active version, the fault switch). Each key
 * belongs to one component, which names it; the table itself is only storage.
 */
export class MetaTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  get(key: string): string | undefined {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  set(key: string, value: string | number): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, String(value));
  }
}

/**
 * Keeps an append-only table (with an increasing `seq` column) at its newest `keep()` rows. It
 * trims once every `every` inserts rather than on each, so the table may briefly hold up to
 * `every` rows more.
 */
export class LogTrimmer {
  private insertsSinceTrim = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly table: string,
    private readonly keep: () => number,
    private readonly every = 100,
  ) {}

  afterInsert(newestSeq: number): void {
    const keep = this.keep();
    if (++this.insertsSinceTrim < Math.min(this.every, keep)) return;
    this.insertsSinceTrim = 0;
    this.sql.exec(`DELETE FROM ${this.table} WHERE seq <= ?`, newestSeq - keep);
  }
}

/** Adds columns that later releases introduced to a table an older database already has. */
export function addMissingColumns(sql: SqlStorage, table: string, columns: readonly (readonly [string, string])[]): void {
  const have = new Set(sql.exec<{ name: string }>(`PRAGMA table_info(${table})`).toArray().map((c) => c.name));
  for (const [name, type] of columns) if (!have.has(name)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
}

/** Values are split into parts of at most this many bytes (SQLite rows hold at most 2 MB). */
export const PART_BYTES = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A text value of any size stored as UTF-8 parts below the row limit, in a table with columns
 * (`keyColumn` TEXT, part INTEGER, bytes BLOB). Replaces whatever was stored under the key.
 */
export function putParts(sql: SqlStorage, table: string, keyColumn: string, key: string, text: string): void {
  sql.exec(`DELETE FROM ${table} WHERE ${keyColumn} = ?`, key);
  const bytes = encoder.encode(text);
  for (let part = 0, at = 0; at < bytes.length || part === 0; part++, at += PART_BYTES) {
    sql.exec(`INSERT INTO ${table} (${keyColumn}, part, bytes) VALUES (?, ?, ?)`, key, part, bytes.subarray(at, at + PART_BYTES));
  }
}

/** The text stored under `key` by putParts, or undefined. */
export function getParts(sql: SqlStorage, table: string, keyColumn: string, key: string): string | undefined {
  const parts = sql.exec<{ bytes: ArrayBuffer }>(`SELECT bytes FROM ${table} WHERE ${keyColumn} = ? ORDER BY part`, key).toArray();
  if (parts.length === 0) return undefined;
  if (parts.length === 1) return decoder.decode(parts[0]!.bytes);
  const whole = new Uint8Array(parts.reduce((n, p) => n + p.bytes.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    whole.set(new Uint8Array(p.bytes), at);
    at += p.bytes.byteLength;
  }
  return decoder.decode(whole);
}
