// The registry of self-registered instances: each holds a lease that heartbeats renew; a lapsed
// lease removes the instance. Leases are indexed by expiry, so finding the lapsed ones (and the
// next expiry for the alarm) reads only those rows, never every lease.
import { DEFAULT_LEASE_TTL_MS } from "../policies/health.ts";
import type { CompiledEndpoint } from "../policies/snapshot.ts";
import type { RegisteredInstance } from "./registry-merge.ts";
import { addMissingColumns, type Row } from "./sql.ts";

export type { RegisteredInstance } from "./registry-merge.ts";

export interface Registration {
  instance: RegisteredInstance;
  /** The instance was already registered (this call renewed or changed it). */
  existed: boolean;
  /** Anything a snapshot shows changed (target, labels, weight); false for a plain renewal. */
  changed: boolean;
}

export class Registry {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS registered_endpoints (
      service TEXT NOT NULL,
      id TEXT NOT NULL,
      binding TEXT,
      url TEXT,
      labels TEXT NOT NULL,
      weight INTEGER NOT NULL,
      registered_at_ms INTEGER NOT NULL,
      PRIMARY KEY (service, id)
    )`);
    // Lease columns were added after the first release; older databases get them here.
    addMissingColumns(sql, "registered_endpoints", [["lease_ttl_ms", "INTEGER"], ["last_heartbeat_ms", "INTEGER"], ["expires_at_ms", "INTEGER"]]);
    sql.exec(`UPDATE registered_endpoints SET expires_at_ms = COALESCE(last_heartbeat_ms, registered_at_ms) + COALESCE(lease_ttl_ms, ${DEFAULT_LEASE_TTL_MS})
      WHERE expires_at_ms IS NULL`);
    sql.exec("CREATE INDEX IF NOT EXISTS registered_endpoints_by_expiry ON registered_endpoints (expires_at_ms)");
  }

  all(): RegisteredInstance[] {
    return this.sql.exec<Row>("SELECT * FROM registered_endpoints ORDER BY service, id").toArray().map(instanceFromRow);
  }

  ofService(service: string): RegisteredInstance[] {
    return this.sql.exec<Row>("SELECT * FROM registered_endpoints WHERE service = ? ORDER BY id", service).toArray().map(instanceFromRow);
  }

  /** The services that have registered instances. */
  services(): string[] {
    return this.sql.exec<{ service: string }>("SELECT DISTINCT service FROM registered_endpoints").toArray().map((r) => r.service);
  }

  count(service: string): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM registered_endpoints WHERE service = ?", service).one().n;
  }

  get(service: string, id: string): RegisteredInstance | undefined {
    const row = this.sql.exec<Row>("SELECT * FROM registered_endpoints WHERE service = ? AND id = ?", service, id).toArray()[0];
    return row ? instanceFromRow(row) : undefined;
  }

  /** Registers an instance, or renews and updates one already registered. */
  register(service: string, endpoint: CompiledEndpoint, leaseTtlMs: number, nowMs: number): Registration {
    const existing = this.get(service, endpoint.id);
    const expiresAtMs = nowMs + leaseTtlMs;
    this.sql.exec(
      `INSERT INTO registered_endpoints (service, id, binding, url, labels, weight, registered_at_ms, lease_ttl_ms, last_heartbeat_ms, expires_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET binding = excluded.binding, url = excluded.url, labels = excluded.labels,
         weight = excluded.weight, lease_ttl_ms = excluded.lease_ttl_ms, last_heartbeat_ms = excluded.last_heartbeat_ms,
         expires_at_ms = excluded.expires_at_ms`,
      service, endpoint.id, endpoint.binding ?? null, endpoint.url ?? null, JSON.stringify(endpoint.labels), endpoint.weight, nowMs, leaseTtlMs, nowMs, expiresAtMs,
    );
    const instance: RegisteredInstance = {
      ...endpoint,
      service,
      leaseTtlMs,
      registeredAtMs: existing?.registeredAtMs ?? nowMs,
      lastHeartbeatMs: nowMs,
      expiresAtMs,
    };
    return { instance, existed: existing !== undefined, changed: existing === undefined || !sameTarget(existing, endpoint) };
  }

  /**
   * Renews a lease. An instance whose lease has lapsed (even if no alarm removed it yet) is not
   * renewed: it must register again. Reads only this instance's row.
   */
  renew(service: string, id: string, leaseTtlMs: number | undefined, nowMs: number): { expiresAtMs: number; leaseTtlMs: number } | null {
    const row = this.sql.exec<{ lease_ttl_ms: number | null; expires_at_ms: number | null }>(
      "SELECT lease_ttl_ms, expires_at_ms FROM registered_endpoints WHERE service = ? AND id = ?", service, id,
    ).toArray()[0];
    if (!row || (row.expires_at_ms !== null && row.expires_at_ms <= nowMs)) return null;
    const ttl = leaseTtlMs ?? row.lease_ttl_ms ?? DEFAULT_LEASE_TTL_MS;
    const expiresAtMs = nowMs + ttl;
    this.sql.exec("UPDATE registered_endpoints SET last_heartbeat_ms = ?, lease_ttl_ms = ?, expires_at_ms = ? WHERE service = ? AND id = ?", nowMs, ttl, expiresAtMs, service, id);
    return { expiresAtMs, leaseTtlMs: ttl };
  }

  remove(service: string, id: string): boolean {
    return this.sql.exec("DELETE FROM registered_endpoints WHERE service = ? AND id = ?", service, id).rowsWritten > 0;
  }

  /** Removes every instance whose lease has lapsed by `nowMs` and returns them (an index range scan). */
  expire(nowMs: number): RegisteredInstance[] {
    const lapsed = this.sql.exec<Row>("SELECT * FROM registered_endpoints WHERE expires_at_ms <= ? ORDER BY expires_at_ms", nowMs).toArray().map(instanceFromRow);
    if (lapsed.length > 0) this.sql.exec("DELETE FROM registered_endpoints WHERE expires_at_ms <= ?", nowMs);
    return lapsed;
  }

  /** When the next lease lapses, or null when none is held. */
  nextExpiryMs(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(expires_at_ms) AS at FROM registered_endpoints").one().at;
  }
}

function sameTarget(a: CompiledEndpoint, b: CompiledEndpoint): boolean {
  return a.binding === b.binding && a.url === b.url && a.weight === b.weight && JSON.stringify(a.labels) === JSON.stringify(b.labels);
}

function instanceFromRow(row: Row): RegisteredInstance {
  const registeredAtMs = row.registered_at_ms as number;
  const leaseTtlMs = (row.lease_ttl_ms as number | null) ?? DEFAULT_LEASE_TTL_MS;
  const lastHeartbeatMs = (row.last_heartbeat_ms as number | null) ?? registeredAtMs;
  const i: RegisteredInstance = {
    service: row.service as string,
    id: row.id as string,
    labels: JSON.parse(row.labels as string),
    weight: row.weight as number,
    leaseTtlMs,
    registeredAtMs,
    lastHeartbeatMs,
    expiresAtMs: (row.expires_at_ms as number | null) ?? lastHeartbeatMs + leaseTtlMs,
  };
  if (row.binding !== null) i.binding = row.binding as string;
  if (row.url !== null) i.url = row.url as string;
  return i;
}
