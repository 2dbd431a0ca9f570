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
