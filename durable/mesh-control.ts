// MeshControl: one Durable Object per mesh. It holds the registry and the versioned policy in
// SQLite, compiles snapshots for the sidecars and answers their revalidation calls cheaply.
import { DurableObject } from "cloudflare:workers";
import { compilePolicy } from "../policies/compile.ts";
import { diffJson, type DiffEntry } from "../policies/diff.ts";
import { validatePolicy, type PolicyDocument, type PolicyError } from "../policies/schema.ts";
import type {
  CompiledEndpoint,
  CompiledMesh,
  MeshControlRpc,
  ServiceSnapshot,
  SidecarCheckIn,
  SnapshotReply,
} from "../policies/snapshot.ts";

export interface PolicyVersionInfo {
  version: number;
  appliedAtMs: number;
  author: string;
  message: string;
  kind: "apply" | "rollback";
  /** For a rollback: the version whose document it restored. */
  restoredVersion: number | null;
}

/** Any JSON value: what an operator's document is before validation. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface PolicyVersion extends PolicyVersionInfo {
  document: Json;
}

export interface ApplyOptions {
  /** The version the caller believes is active (0 when none); a mismatch is refused. */
  expectedVersion?: number;
  author?: string;
  message?: string;
}

export type ApplyResult =
  | { ok: true; version: number; generation: number }
  | { ok: false; reason: "invalid"; errors: PolicyError[] }
  | { ok: false; reason: "conflict"; currentVersion: number; message: string }
  | { ok: false; reason: "not-found"; message: string };

export interface RegisteredEndpoint extends CompiledEndpoint {
  service: string;
  source: "policy" | "registered";
  registeredAtMs: number;
}

export interface SidecarSeen {
  service: string;
  isolateId: string;
  colo: string;
  generation: number;
  lastSeenMs: number;
}

interface Active {
  version: number;
  document: PolicyDocument;
  compiled: CompiledMesh;
}

type Row = Record<string, SqlStorageValue>;

export class MeshControl extends DurableObject<object> implements MeshControlRpc {
  private sql: SqlStorage;
  private active: Active | undefined;
  private generation = 0;
  /** Built lazily per service per generation, so a not-modified answer costs a comparison. */
  private snapshots = new Map<string, ServiceSnapshot>();
  private sidecars = new Map<string, SidecarSeen>();

  constructor(ctx: DurableObjectState, env: object) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS policy_versions (
        version INTEGER PRIMARY KEY,
        document TEXT NOT NULL,
        applied_at_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        message TEXT NOT NULL,
        kind TEXT NOT NULL,
        restored_version INTEGER
      );
      CREATE TABLE IF NOT EXISTS registered_endpoints (
        service TEXT NOT NULL,
        id TEXT NOT NULL,
        binding TEXT,
        url TEXT,
        labels TEXT NOT NULL,
        weight INTEGER NOT NULL,
        registered_at_ms INTEGER NOT NULL,
        PRIMARY KEY (service, id)
      );
    `);
    this.generation = Number(this.meta("generation") ?? 0);
    const activeVersion = Number(this.meta("active_version") ?? 0);
    if (activeVersion > 0) this.loadActive(activeVersion);
  }

  private meta(key: string): string | undefined {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row?.value;
  }

  private setMeta(key: string, value: string | number): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, String(value));
  }

  private loadActive(version: number): void {
    const row = this.sql.exec<{ document: string }>("SELECT document FROM policy_versions WHERE version = ?", version).toArray()[0];
    if (!row) return;
    const checked = validatePolicy(JSON.parse(row.document));
    if (!checked.ok) throw new Error(`stored policy version ${version} no longer validates: ${checked.errors[0]?.message}`);
    this.active = { version, document: checked.document, compiled: compilePolicy(checked.document, this.registeredByService()) };
    this.snapshots.clear();
  }

  private bumpGeneration(): void {
    this.generation++;
    this.setMeta("generation", this.generation);
    this.snapshots.clear();
  }

  private recompile(): void {
    if (!this.active) return;
    this.active.compiled = compilePolicy(this.active.document, this.registeredByService());
    this.bumpGeneration();
  }

  // ---- policy -------------------------------------------------------------------------------

  private currentVersion(): number {
    return this.active?.version ?? 0;
  }

  async activeVersion(): Promise<number> {
    return this.currentVersion();
  }

  async apply(mesh: string, document: unknown, options: ApplyOptions = {}): Promise<ApplyResult> {
    const checked = validatePolicy(document);
    if (!checked.ok) return { ok: false, reason: "invalid", errors: checked.errors };
    if (checked.document.mesh !== mesh) {
      return {
        ok: false,
        reason: "invalid",
        errors: [{ path: "$.mesh", message: `this document is for mesh "${checked.document.mesh}" but was sent to mesh "${mesh}"` }],
      };
    }
    return this.commit(document, checked.document, "apply", null, options);
  }

  private commit(
    raw: unknown,
    document: PolicyDocument,
    kind: PolicyVersionInfo["kind"],
    restoredVersion: number | null,
    options: ApplyOptions,
  ): ApplyResult {
    const current = this.currentVersion();
    if (options.expectedVersion !== undefined && options.expectedVersion !== current) {
      return {
        ok: false,
        reason: "conflict",
        currentVersion: current,
        message: `expected version ${options.expectedVersion} but version ${current} is active; fetch it, merge, and retry`,
      };
    }
    const text = JSON.stringify(raw);
    const compiled = compilePolicy(document, this.registeredByService());
    const version = this.ctx.storage.transactionSync(() => {
      const last = this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM policy_versions").one().v ?? 0;
      const next = last + 1;
      this.sql.exec(
        "INSERT INTO policy_versions (version, document, applied_at_ms, author, message, kind, restored_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
        next, text, Date.now(), options.author ?? "unknown", options.message ?? "", kind, restoredVersion,
      );
      this.setMeta("active_version", next);
      return next;
    });
    this.active = { version, document, compiled };
    this.bumpGeneration();
    return { ok: true, version, generation: this.generation };
  }

  /** Re-applies an earlier version's document as a new version; history is never rewritten. */
  async rollback(toVersion?: number, options: ApplyOptions = {}): Promise<ApplyResult> {
    const current = this.currentVersion();
    const target = toVersion ?? this.previousVersion(current);
    if (target === undefined) return { ok: false, reason: "not-found", message: `version ${current} has no earlier version to roll back to` };
    const row = this.sql.exec<{ document: string }>("SELECT document FROM policy_versions WHERE version = ?", target).toArray()[0];
    if (!row) return { ok: false, reason: "not-found", message: `there is no policy version ${target}` };
    const raw = JSON.parse(row.document) as Json;
    const checked = validatePolicy(raw);
    if (!checked.ok) return { ok: false, reason: "invalid", errors: checked.errors };
    return this.commit(raw, checked.document, "rollback", target, { message: `rollback to version ${target}`, ...options });
  }

  private previousVersion(current: number): number | undefined {
    // The version active before the current one: for a rollback, what it rolled back from.
    const row = this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM policy_versions WHERE version < ?", current).one();
    return row.v ?? undefined;
  }

  async getPolicy(version?: number): Promise<PolicyVersion | null> {
    const v = version ?? this.currentVersion();
    const row = this.sql.exec<Row>("SELECT * FROM policy_versions WHERE version = ?", v).toArray()[0];
    return row ? { ...versionInfo(row), document: JSON.parse(row.document as string) } : null;
  }

  async history(limit = 50): Promise<{ activeVersion: number; versions: PolicyVersionInfo[] }> {
    const rows = this.sql.exec<Row>(
      "SELECT version, applied_at_ms, author, message, kind, restored_version FROM policy_versions ORDER BY version DESC LIMIT ?",
      Math.max(1, Math.min(limit, 1000)),
    ).toArray();
    return { activeVersion: this.currentVersion(), versions: rows.map(versionInfo) };
  }

  async diff(fromVersion: number, toVersion: number): Promise<{ ok: true; changes: DiffEntry[] } | { ok: false; message: string }> {
    const [a, b] = await Promise.all([this.getPolicy(fromVersion), this.getPolicy(toVersion)]);
    if (!a) return { ok: false, message: `there is no policy version ${fromVersion}` };
    if (!b) return { ok: false, message: `there is no policy version ${toVersion}` };
    return { ok: true, changes: diffJson(a.document, b.document) };
  }

  // ---- registry -----------------------------------------------------------------------------

  private registeredByService(): Record<string, CompiledEndpoint[]> {
    const out: Record<string, CompiledEndpoint[]> = {};
    for (const row of this.sql.exec<Row>("SELECT * FROM registered_endpoints ORDER BY service, id")) {
      (out[row.service as string] ??= []).push(endpointFromRow(row));
    }
    return out;
  }

  async register(service: string, endpoint: CompiledEndpoint): Promise<{ ok: true; generation: number } | { ok: false; message: string }> {
    const declared = this.active?.document.services[service]?.endpoints.some((e) => e.id === endpoint.id);
    if (declared) return { ok: false, message: `endpoint "${endpoint.id}" of service "${service}" is declared in the policy; registered ids must differ` };
    this.sql.exec(
      `INSERT INTO registered_endpoints (service, id, binding, url, labels, weight, registered_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET binding = excluded.binding, url = excluded.url, labels = excluded.labels, weight = excluded.weight`,
      service, endpoint.id, endpoint.binding ?? null, endpoint.url ?? null, JSON.stringify(endpoint.labels), endpoint.weight, Date.now(),
    );
    this.recompile();
    return { ok: true, generation: this.generation };
  }

  async deregister(service: string, id: string): Promise<{ ok: boolean; generation: number }> {
    const removed = this.sql.exec("DELETE FROM registered_endpoints WHERE service = ? AND id = ?", service, id).rowsWritten > 0;
    if (removed) this.recompile();
    return { ok: removed, generation: this.generation };
  }

  async registry(): Promise<{ generation: number; policyVersion: number; services: Record<string, RegisteredEndpoint[]> }> {
    const services: Record<string, RegisteredEndpoint[]> = {};
    const registered = new Map<string, number>();
    for (const row of this.sql.exec<Row>("SELECT service, id, registered_at_ms FROM registered_endpoints")) {
      registered.set(`${row.service}/${row.id}`, row.registered_at_ms as number);
    }
    const appliedAt = (await this.getPolicy())?.appliedAtMs ?? 0;
    for (const [name, snap] of Object.entries(this.active?.compiled.services ?? {})) {
      services[name] = snap.endpoints.map((e) => {
        const at = registered.get(`${name}/${e.id}`);
        return { ...e, service: name, source: at === undefined ? "policy" : "registered", registeredAtMs: at ?? appliedAt };
      });
    }
    return { generation: this.generation, policyVersion: this.currentVersion(), services };
  }

  // ---- data plane ---------------------------------------------------------------------------

  async snapshot(checkIn: SidecarCheckIn): Promise<SnapshotReply> {
    this.sidecars.set(checkIn.isolateId, {
      service: checkIn.service,
      isolateId: checkIn.isolateId,
      colo: checkIn.colo,
      generation: checkIn.knownGeneration,
      lastSeenMs: Date.now(),
    });
    if (checkIn.knownGeneration === this.generation && this.active) return { status: "not-modified", generation: this.generation };
    const snap = this.buildSnapshot(checkIn.service);
    if (!snap) return { status: "unknown-service", generation: this.generation, services: Object.keys(this.active?.compiled.services ?? {}) };
    return { status: "ok", snapshot: snap };
  }

  /** The snapshot a sidecar of this service would receive now, or null. */
  async serviceSnapshot(service: string): Promise<ServiceSnapshot | null> {
    return this.buildSnapshot(service);
  }

  private buildSnapshot(service: string): ServiceSnapshot | null {
    const cached = this.snapshots.get(service);
    if (cached) return cached;
    const compiled = this.active?.compiled.services[service];
    if (!compiled || !this.active) return null;
    const snap: ServiceSnapshot = { ...compiled, policyVersion: this.active.version, generation: this.generation };
    this.snapshots.set(service, snap);
    return snap;
  }

  async sidecarsSeen(): Promise<SidecarSeen[]> {
    return [...this.sidecars.values()];
  }
}

function versionInfo(row: Row): PolicyVersionInfo {
  return {
    version: row.version as number,
    appliedAtMs: row.applied_at_ms as number,
    author: row.author as string,
    message: row.message as string,
    kind: row.kind as PolicyVersionInfo["kind"],
    restoredVersion: (row.restored_version as number | null) ?? null,
  };
}

function endpointFromRow(row: Row): CompiledEndpoint {
  const e: CompiledEndpoint = { id: row.id as string, labels: JSON.parse(row.labels as string), weight: row.weight as number };
  if (row.binding !== null) e.binding = row.binding as string;
  if (row.url !== null) e.url = row.url as string;
  return e;
}
