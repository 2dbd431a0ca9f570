// MeshControl: one Durable Object per mesh. It holds the registry (with leases), endpoint health
// (active checks from its alarm, passive reports from sidecars), the versioned policy and the
// event log in SQLite, compiles snapshots for the sidecars and answers their revalidation cheaply.
import { DurableObject } from "cloudflare:workers";
import { compilePolicy } from "../policies/compile.ts";
import { diffJson, type DiffEntry } from "../policies/diff.ts";
import { DEFAULT_LEASE_TTL_MS, type HealthCheckPolicy } from "../policies/health.ts";
import { validatePolicy, type PolicyDocument, type PolicyError } from "../policies/schema.ts";
import type {
  CompiledEndpoint,
  CompiledMesh,
  EndpointOutcome,
  MeshControlRpc,
  ServiceSnapshot,
  SidecarCheckIn,
  SnapshotReply,
} from "../policies/snapshot.ts";
import { SIDECAR_PROBE_PATH, sidecarBindingName } from "./bindings.ts";
import { CHECK_BACKLOG_DELAY_MS, CHECK_CONCURRENCY, CHECKS_PER_ALARM, runBounded, withTimeout } from "./check-runner.ts";
import { EVENT_LOG_LIMIT, type MeshEvent, type MeshEventData, type MeshEventType, type WatchHello } from "./events.ts";
import {
  addOutcome,
  afterProbe,
  INITIAL_ACTIVE_HEALTH,
  passiveEjection,
  probeVerdict,
  withoutExcluded,
  type ActiveHealth,
  type PassiveWindow,
  type ProbeResult,
} from "./health.ts";
import { loadStoredPolicy, type PolicyLoadError } from "./stored-policy.ts";
import { mergeRegistered, type RegisteredInstance, type RegistryConflict } from "./registry.ts";
import { syncStatus, type SidecarSeen, type SyncStatus } from "./sync.ts";

export type { SidecarSeen, SyncStatus } from "./sync.ts";
export type { RegistryConflict, RegisteredInstance } from "./registry.ts";
export type { MeshEvent, WatchHello } from "./events.ts";
export type { PolicyLoadError } from "./stored-policy.ts";

/** How many health transitions the history keeps; older ones are pruned. */
export const HEALTH_HISTORY_LIMIT = 10_000;
/** Both logs are pruned once per this many inserts, not on every insert. */
const PRUNE_EVERY = 100;

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
  | { ok: true; version: number; generation: number; conflicts: RegistryConflict[] }
  | { ok: false; reason: "invalid"; errors: PolicyError[] }
  | { ok: false; reason: "conflict"; currentVersion: number; message: string }
  | { ok: false; reason: "not-found"; message: string };

export interface RegisteredEndpoint extends CompiledEndpoint {
  service: string;
  source: "policy" | "registered";
  registeredAtMs: number;
  /** For registered instances: when the lease lapses unless renewed. */
  expiresAtMs?: number;
  excluded: boolean;
}

export type RegisterResult =
  | { ok: true; generation: number; expiresAtMs: number; leaseTtlMs: number; conflicts: RegistryConflict[] }
  | { ok: false; reason: "conflict"; message: string };

export interface EndpointHealth {
  service: string;
  endpointId: string;
  /** False when active or passive health keeps it out of the snapshots. */
  excluded: boolean;
  active: (ActiveHealth & { checks: number; lastCheckMs: number | null; lastDetail: string | null }) | null;
  passive: { ejectedUntilMs: number | null; reason: string | null; window: PassiveWindow | null } | null;
}

export interface HealthTransitionRecord {
  seq: number;
  atMs: number;
  service: string;
  endpointId: string;
  source: "active" | "passive";
  from: string;
  to: string;
  reason: string;
}

/** The fault switch for static-stability tests: makes the sidecars' snapshot calls fail or stall. */
export interface ControlFault {
  snapshot: "ok" | "fail" | "slow";
  /** For "slow": how long each snapshot call stalls. */
  delayMs: number;
}

export interface MeshControlEnv {
  /** Sent to sidecars' probe endpoint when checking binding endpoints. */
  EDGEMESH_ADMIN_TOKEN?: string;
  /** "true" enables the fault switch (PUT /v1/debug/fault); leave unset in production. */
  EDGEMESH_CONTROL_FAULTS?: string;
  /** Tests only: a smaller health-history limit than HEALTH_HISTORY_LIMIT, to see pruning. */
  EDGEMESH_HEALTH_HISTORY_LIMIT?: string;
}


interface Active {
  version: number;
  document: PolicyDocument;
  compiled: CompiledMesh;
}

interface HealthRow {
  service: string;
  endpointId: string;
  active: ActiveHealth;
  checks: number;
  lastCheckMs: number | null;
  lastDetail: string | null;
  passiveUntilMs: number;
  passiveReason: string | null;
}

type Row = Record<string, SqlStorageValue>;

const key = (service: string, id: string) => `${service}/${id}`;

/** How long sync status keeps listing a silent sidecar (as "gone") before forgetting it. */
const SIDECAR_FORGET_AFTER_MS = 10 * 60_000;

export class MeshControl extends DurableObject<MeshControlEnv> implements MeshControlRpc {
  private sql: SqlStorage;
  private active: Active | undefined;
  private generation = 0;
  /** Names this object's storage (see ServiceSnapshot.epoch); made once, when the storage is new. */
  private epoch = "";
  /** Built lazily per service per generation, so a not-modified answer costs a comparison. */
  private snapshots = new Map<string, ServiceSnapshot>();
  /**
   * Per service: its snapshot's content (all but `generation`) when last built, and the generation
   * at which that content last changed. A sidecar whose snapshot is at least that new has identical
   * content, so a change elsewhere in the mesh does not make it download anything. In memory only:
   * after a restart every sidecar gets one full snapshot again.
   */
  private contentChangedAt = new Map<string, { content: string; generation: number }>();
  private sidecars = new Map<string, SidecarSeen>();
  private conflicts: RegistryConflict[] = [];
  private health = new Map<string, HealthRow>();
  /** Passive windows are short-lived and kept in memory; ejections are stored. */
  private passiveWindows = new Map<string, PassiveWindow>();
  /** When each service's endpoints are next checked; empty after a restart, so checks run at once. */
  private nextCheckAtMs = new Map<string, number>();
  private checking = false;
  private fault: ControlFault = { snapshot: "ok", delayMs: 0 };
  private snapshotCalls = 0;
  private readonly startedAtMs = Date.now();
  /** Inserts into each append-only log since it was last trimmed. */
  private sincePrune = { events: 0, health_transitions: 0 };
  /** Why the stored active policy could not be loaded; cleared by the next apply or rollback. */
  private loadError: PolicyLoadError | undefined;
  /** Checks left over when an alarm reached CHECKS_PER_ALARM; the next alarm runs them first. */
  private checkBacklog: { service: string; endpointId: string }[] = [];

  constructor(ctx: DurableObjectState, env: MeshControlEnv) {
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
      CREATE TABLE IF NOT EXISTS endpoint_health (
        service TEXT NOT NULL,
        id TEXT NOT NULL,
        active_state TEXT NOT NULL,
        consecutive_ok INTEGER NOT NULL,
        consecutive_fail INTEGER NOT NULL,
        checks INTEGER NOT NULL,
        last_check_ms INTEGER,
        last_detail TEXT,
        passive_until_ms INTEGER NOT NULL,
        passive_reason TEXT,
        PRIMARY KEY (service, id)
      );
      CREATE TABLE IF NOT EXISTS health_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        service TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        source TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL
      );
    `);
    // Lease columns were added after the first release; older databases get them here.
    const columns = new Set(this.sql.exec<{ name: string }>("PRAGMA table_info(registered_endpoints)").toArray().map((c) => c.name));
    for (const [column, type] of [["lease_ttl_ms", "INTEGER"], ["last_heartbeat_ms", "INTEGER"], ["expires_at_ms", "INTEGER"]] as const) {
      if (!columns.has(column)) this.sql.exec(`ALTER TABLE registered_endpoints ADD COLUMN ${column} ${type}`);
    }
    this.generation = Number(this.meta("generation") ?? 0);
    this.epoch = this.meta("epoch") ?? "";
    if (!this.epoch) {
      this.epoch = crypto.randomUUID();
      this.setMeta("epoch", this.epoch);
    }
    const fault = this.meta("fault");
    if (fault) this.fault = JSON.parse(fault) as ControlFault;
    for (const row of this.sql.exec<Row>("SELECT * FROM endpoint_health")) {
      const h = healthFromRow(row);
      this.health.set(key(h.service, h.endpointId), h);
    }
    const activeVersion = Number(this.meta("active_version") ?? 0);
    if (activeVersion > 0) this.loadActive(activeVersion);
    void ctx.blockConcurrencyWhile(() => this.scheduleAlarm());
  }

  private meta(name: string): string | undefined {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", name).toArray()[0];
    return row?.value;
  }

  private setMeta(name: string, value: string | number): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", name, String(value));
  }

  /**
   * Loads the stored active version. A document that no longer validates (the schema got
   * stricter) or no longer compiles leaves no active policy instead of breaking the object: the
   * sidecars keep serving their snapshots, the error is shown by GET /v1/policy and as an event,
   * and an apply or rollback fixes it.
   */
  private loadActive(version: number): void {
    const row = this.sql.exec<{ document: string }>("SELECT document FROM policy_versions WHERE version = ?", version).toArray()[0];
    const loaded = loadStoredPolicy(version, row?.document, (document) => this.compile(document));
    this.snapshots.clear();
    if (loaded.ok) {
      this.active = { version, document: loaded.document, compiled: loaded.compiled };
      this.loadError = undefined;
      return;
    }
    this.active = undefined;
    this.loadError = loaded.error;
    this.emit("policy.load-failed", { version, message: loaded.error.message, errors: loaded.error.errors });
  }

  /** Why the stored active policy is not in force, or null when it is (or there is none). */
  async policyLoadError(): Promise<PolicyLoadError | null> {
    return this.loadError ?? null;
  }

  /** Compiles a document with the registered instances merged in, and keeps the conflicts found. */
  private compile(document: PolicyDocument): CompiledMesh {
    const merged = mergeRegistered(document, this.registeredInstances());
    this.conflicts = merged.conflicts;
    return compilePolicy(document, merged.extra);
  }

  private bumpGeneration(): void {
    this.generation++;
    this.setMeta("generation", this.generation);
    this.snapshots.clear();
  }

  private recompile(): void {
    if (this.active) this.active.compiled = this.compile(this.active.document);
    else this.conflicts = mergeRegistered(undefined, this.registeredInstances()).conflicts;
    this.bumpGeneration();
  }

  // ---- events -------------------------------------------------------------------------------

  /** Keeps an append-only log at its newest `keep` rows, trimming once every PRUNE_EVERY inserts. */
  private trimLog(table: "events" | "health_transitions", newestSeq: number, keep: number): void {
    if (++this.sincePrune[table] < Math.min(PRUNE_EVERY, keep)) return;
    this.sincePrune[table] = 0;
    this.sql.exec(`DELETE FROM ${table} WHERE seq <= ?`, newestSeq - keep);
  }

  private emit<T extends MeshEventType>(type: T, data: MeshEventData[T]): void {
    const atMs = Date.now();
    const seq = this.sql.exec<{ seq: number }>("INSERT INTO events (at_ms, type, data) VALUES (?, ?, ?) RETURNING seq", atMs, type, JSON.stringify(data)).one().seq;
    this.trimLog("events", seq, EVENT_LOG_LIMIT);
    const message = JSON.stringify({ seq, atMs, type, data });
    for (const ws of this.ctx.getWebSockets()) {
      const wanted = (ws.deserializeAttachment() as { types?: string[] } | null)?.types;
      if (wanted && !wanted.includes(type)) continue;
      try {
        ws.send(message);
      } catch {
        // A socket closing as we send: its client resumes from its last sequence.
      }
    }
  }

  /**
   * Events after `since`, oldest first, of `types` only when given (filtered in SQL, so a rare
   * type is found however many other events lie between). `nextSince` is where the next page
   * starts: the last event returned on a full page, else the newest event looked at.
   */
  async events(since = 0, limit = 1000, types?: string[]): Promise<{ latestSeq: number; oldestSeq: number; nextSince: number; events: MeshEvent[] }> {
    const bounds = this.sql.exec<{ lo: number | null; hi: number | null }>("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM events").one();
    const pageSize = Math.max(1, Math.min(limit, EVENT_LOG_LIMIT));
    const typeFilter = types && types.length > 0 ? `AND type IN (${types.map(() => "?").join(", ")})` : "";
    const rows = this.sql.exec<Row>(`SELECT * FROM events WHERE seq > ? ${typeFilter} ORDER BY seq LIMIT ?`, since, ...(typeFilter ? types! : []), pageSize).toArray();
    const events = rows.map(eventFromRow);
    const latestSeq = bounds.hi ?? 0;
    const nextSince = events.length === pageSize ? events.at(-1)!.seq : Math.max(since, latestSeq);
    return { latestSeq, oldestSeq: bounds.lo ?? 0, nextSince, events };
  }

  /** The watch stream: a hibernatable WebSocket that replays events after `?since=` and then follows. */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/watch") return Response.json({ error: `MeshControl has no fetch route ${url.pathname}` }, { status: 404 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "the watch stream is a WebSocket: send Upgrade: websocket" }, { status: 426 });
    }
    const typesParam = url.searchParams.get("types");
    const types = typesParam ? typesParam.split(",").map((t) => t.trim()).filter(Boolean) : undefined;
    const bounds = this.sql.exec<{ lo: number | null; hi: number | null }>("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM events").one();
    const latestSeq = bounds.hi ?? 0;
    const oldestSeq = bounds.lo ?? 0;
    const sinceParam = url.searchParams.get("since");
    const since = sinceParam === null ? latestSeq : Math.max(0, Number(sinceParam) || 0);

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ types: types ?? null });
    const hello: WatchHello = { type: "watch.hello", since, latestSeq, oldestSeq, gap: oldestSeq > 0 && since + 1 < oldestSeq };
    server.send(JSON.stringify(hello));
    // The replay and later broadcasts run in this single-threaded object, so nothing falls between.
    for (const row of this.sql.exec<Row>("SELECT * FROM events WHERE seq > ? ORDER BY seq", since)) {
      const event = eventFromRow(row);
      if (!types || types.includes(event.type)) server.send(JSON.stringify(event));
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (message === "ping") ws.send(JSON.stringify({ type: "watch.pong", latestSeq: this.sql.exec<{ hi: number | null }>("SELECT MAX(seq) AS hi FROM events").one().hi ?? 0 }));
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      // Already closed.
    }
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

  private async commit(
    raw: unknown,
    document: PolicyDocument,
    kind: PolicyVersionInfo["kind"],
    restoredVersion: number | null,
    options: ApplyOptions,
  ): Promise<ApplyResult> {
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
    const compiled = this.compile(document);
    const author = options.author ?? "unknown";
    const version = this.ctx.storage.transactionSync(() => {
      const last = this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM policy_versions").one().v ?? 0;
      const next = last + 1;
      this.sql.exec(
        "INSERT INTO policy_versions (version, document, applied_at_ms, author, message, kind, restored_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
        next, text, Date.now(), author, options.message ?? "", kind, restoredVersion,
      );
      this.setMeta("active_version", next);
      return next;
    });
    this.active = { version, document, compiled };
    this.loadError = undefined;
    this.bumpGeneration();
    this.pruneHealth();
    if (kind === "rollback") this.emit("policy.rolled-back", { version, generation: this.generation, restoredVersion: restoredVersion ?? 0, author });
    else this.emit("policy.applied", { version, generation: this.generation, author, message: options.message ?? "" });
    await this.scheduleAlarm();
    return { ok: true, version, generation: this.generation, conflicts: this.conflicts };
  }

  /** Re-applies an earlier version's document as a new version; history is never rewritten. */
  async rollback(toVersion?: number, options: ApplyOptions = {}): Promise<ApplyResult> {
    // With a stored version that failed to load, "the previous version" is the one before it.
    const current = this.active?.version ?? this.loadError?.version ?? 0;
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

  private registeredInstances(): RegisteredInstance[] {
    return this.sql.exec<Row>("SELECT * FROM registered_endpoints ORDER BY service, id").toArray().map(instanceFromRow);
  }

  private leaseTtlFor(service: string, asked: number | undefined): number {
    return asked ?? this.active?.document.services[service]?.registration?.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  }

  /**
   * Registers an instance (or renews it) with a lease. Re-registering the same instance unchanged
   * only renews the lease, so it does not disturb any sidecar.
   */
  async register(service: string, endpoint: CompiledEndpoint, leaseTtlMs?: number): Promise<RegisterResult> {
    const declared = this.active?.document.services[service]?.endpoints.some((e) => e.id === endpoint.id);
    if (declared) {
      return { ok: false, reason: "conflict", message: `endpoint "${endpoint.id}" of service "${service}" is declared in the policy; a registered instance needs a different id` };
    }
    const now = Date.now();
    const ttl = this.leaseTtlFor(service, leaseTtlMs);
    const expiresAtMs = now + ttl;
    const existing = this.sql.exec<Row>("SELECT * FROM registered_endpoints WHERE service = ? AND id = ?", service, endpoint.id).toArray()[0];
    const same = existing !== undefined && sameEndpoint(instanceFromRow(existing), endpoint);
    this.sql.exec(
      `INSERT INTO registered_endpoints (service, id, binding, url, labels, weight, registered_at_ms, lease_ttl_ms, last_heartbeat_ms, expires_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET binding = excluded.binding, url = excluded.url, labels = excluded.labels,
         weight = excluded.weight, lease_ttl_ms = excluded.lease_ttl_ms, last_heartbeat_ms = excluded.last_heartbeat_ms,
         expires_at_ms = excluded.expires_at_ms`,
      service, endpoint.id, endpoint.binding ?? null, endpoint.url ?? null, JSON.stringify(endpoint.labels), endpoint.weight, now, ttl, now, expiresAtMs,
    );
    if (!same) {
      this.recompile();
      this.emit("endpoint.registered", { service, endpointId: endpoint.id, leaseTtlMs: ttl, expiresAtMs, renewed: existing !== undefined });
    }
    await this.scheduleAlarm();
    const conflicts = this.conflicts.filter((c) => c.service === service && (c.endpointId === endpoint.id || c.otherEndpointId === endpoint.id));
    return { ok: true, generation: this.generation, expiresAtMs, leaseTtlMs: ttl, conflicts };
  }

  /** Renews a lease; an instance whose lease already lapsed must register again. */
  async heartbeat(service: string, id: string, leaseTtlMs?: number): Promise<{ ok: true; expiresAtMs: number; leaseTtlMs: number } | { ok: false; message: string }> {
    const now = Date.now();
    // A heartbeat that arrives after the lease lapsed (but before the alarm removed it) is too late.
    this.expireLeases(now);
    const row = this.sql.exec<Row>("SELECT lease_ttl_ms FROM registered_endpoints WHERE service = ? AND id = ?", service, id).toArray()[0];
    if (!row) return { ok: false, message: `service "${service}" has no registered instance "${id}" (its lease may have lapsed); register it again` };
    const ttl = leaseTtlMs ?? (row.lease_ttl_ms as number | null) ?? this.leaseTtlFor(service, undefined);
    const expiresAtMs = now + ttl;
    this.sql.exec("UPDATE registered_endpoints SET last_heartbeat_ms = ?, lease_ttl_ms = ?, expires_at_ms = ? WHERE service = ? AND id = ?", now, ttl, expiresAtMs, service, id);
    return { ok: true, expiresAtMs, leaseTtlMs: ttl };
  }

  async deregister(service: string, id: string): Promise<{ ok: boolean; generation: number }> {
    const removed = this.sql.exec("DELETE FROM registered_endpoints WHERE service = ? AND id = ?", service, id).rowsWritten > 0;
    if (removed) {
      this.recompile();
      this.pruneHealth();
      this.emit("endpoint.deregistered", { service, endpointId: id });
    }
    return { ok: removed, generation: this.generation };
  }

  private expireLeases(nowMs: number): void {
    const lapsed = this.sql.exec<Row>("SELECT * FROM registered_endpoints WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?", nowMs).toArray();
    if (lapsed.length === 0) return;
    for (const row of lapsed) this.sql.exec("DELETE FROM registered_endpoints WHERE service = ? AND id = ?", row.service, row.id);
    this.recompile();
    this.pruneHealth();
    for (const row of lapsed) {
      const i = instanceFromRow(row);
      this.emit("endpoint.expired", { service: i.service, endpointId: i.id, lastHeartbeatMs: i.lastHeartbeatMs, leaseTtlMs: i.leaseTtlMs });
    }
  }

  async registry(): Promise<{ generation: number; policyVersion: number; services: Record<string, RegisteredEndpoint[]>; conflicts: RegistryConflict[] }> {
    const services: Record<string, RegisteredEndpoint[]> = {};
    const registered = new Map<string, RegisteredInstance>();
    for (const i of this.registeredInstances()) registered.set(key(i.service, i.id), i);
    const appliedAt = (await this.getPolicy())?.appliedAtMs ?? 0;
    const now = Date.now();
    for (const [name, snap] of Object.entries(this.active?.compiled.services ?? {})) {
      const declared = new Set(this.active?.document.services[name]?.endpoints.map((e) => e.id));
      services[name] = snap.endpoints.map((e) => {
        const r = declared.has(e.id) ? undefined : registered.get(key(name, e.id));
        const out: RegisteredEndpoint = { ...e, service: name, source: r ? "registered" : "policy", registeredAtMs: r?.registeredAtMs ?? appliedAt, excluded: this.isExcluded(name, e.id, now) };
        if (r) out.expiresAtMs = r.expiresAtMs;
        return out;
      });
    }
    return { generation: this.generation, policyVersion: this.currentVersion(), services, conflicts: this.conflicts };
  }

  // ---- health -------------------------------------------------------------------------------

  private healthRow(service: string, id: string): HealthRow {
    const k = key(service, id);
    let h = this.health.get(k);
    if (!h) {
      h = { service, endpointId: id, active: { ...INITIAL_ACTIVE_HEALTH }, checks: 0, lastCheckMs: null, lastDetail: null, passiveUntilMs: 0, passiveReason: null };
      this.health.set(k, h);
    }
    return h;
  }

  private saveHealth(h: HealthRow): void {
    this.sql.exec(
      `INSERT INTO endpoint_health (service, id, active_state, consecutive_ok, consecutive_fail, checks, last_check_ms, last_detail, passive_until_ms, passive_reason)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET active_state = excluded.active_state, consecutive_ok = excluded.consecutive_ok,
         consecutive_fail = excluded.consecutive_fail, checks = excluded.checks, last_check_ms = excluded.last_check_ms,
         last_detail = excluded.last_detail, passive_until_ms = excluded.passive_until_ms, passive_reason = excluded.passive_reason`,
      h.service, h.endpointId, h.active.state, h.active.consecutiveOk, h.active.consecutiveFail, h.checks, h.lastCheckMs, h.lastDetail, h.passiveUntilMs, h.passiveReason,
    );
  }

  private recordTransition(service: string, endpointId: string, source: "active" | "passive", from: string, to: string, reason: string): void {
    const seq = this.sql.exec<{ seq: number }>(
      "INSERT INTO health_transitions (at_ms, service, endpoint_id, source, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
      Date.now(), service, endpointId, source, from, to, reason,
    ).one().seq;
    this.trimLog("health_transitions", seq, Number(this.env.EDGEMESH_HEALTH_HISTORY_LIMIT) || HEALTH_HISTORY_LIMIT);
    this.emit("health.changed", { service, endpointId, source, from, to, reason });
  }

  private isExcluded(service: string, id: string, nowMs: number): boolean {
    const h = this.health.get(key(service, id));
    if (!h) return false;
    const activeOn = this.active?.document.services[service]?.healthCheck !== undefined;
    return (activeOn && h.active.state === "unhealthy") || h.passiveUntilMs > nowMs;
  }

  /** Forgets the health of endpoints that no longer exist. */
  private pruneHealth(): void {
    const live = new Set<string>();
    for (const [service, snap] of Object.entries(this.active?.compiled.services ?? {})) for (const e of snap.endpoints) live.add(key(service, e.id));
    for (const [k, h] of this.health) {
      if (live.has(k)) continue;
      this.health.delete(k);
      this.passiveWindows.delete(k);
      this.sql.exec("DELETE FROM endpoint_health WHERE service = ? AND id = ?", h.service, h.endpointId);
    }
  }

  async healthStatus(service?: string): Promise<{ generation: number; nextAlarmAtMs: number | null; endpoints: EndpointHealth[] }> {
    const now = Date.now();
    const endpoints: EndpointHealth[] = [];
    for (const [name, snap] of Object.entries(this.active?.compiled.services ?? {})) {
      if (service !== undefined && name !== service) continue;
      const policy = this.active?.document.services[name];
      for (const e of snap.endpoints) {
        const h = this.health.get(key(name, e.id));
        endpoints.push({
          service: name,
          endpointId: e.id,
          excluded: this.isExcluded(name, e.id, now),
          active: policy?.healthCheck
            ? { ...(h?.active ?? INITIAL_ACTIVE_HEALTH), checks: h?.checks ?? 0, lastCheckMs: h?.lastCheckMs ?? null, lastDetail: h?.lastDetail ?? null }
            : null,
          passive: policy?.passiveHealth
            ? { ejectedUntilMs: h && h.passiveUntilMs > now ? h.passiveUntilMs : null, reason: h && h.passiveUntilMs > now ? h.passiveReason : null, window: this.passiveWindows.get(key(name, e.id)) ?? null }
            : null,
        });
      }
    }
    return { generation: this.generation, nextAlarmAtMs: await this.ctx.storage.getAlarm(), endpoints };
  }

  async healthHistory(filter: { service?: string; endpointId?: string; limit?: number } = {}): Promise<HealthTransitionRecord[]> {
    const rows = this.sql.exec<Row>(
      `SELECT * FROM health_transitions WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR endpoint_id = ?2) ORDER BY seq DESC LIMIT ?3`,
      filter.service ?? null, filter.endpointId ?? null, Math.max(1, Math.min(filter.limit ?? 100, 10_000)),
    ).toArray();
    return rows.map((r) => ({
      seq: r.seq as number,
      atMs: r.at_ms as number,
      service: r.service as string,
      endpointId: r.endpoint_id as string,
      source: r.source as "active" | "passive",
      from: r.from_state as string,
      to: r.to_state as string,
      reason: r.reason as string,
    }));
  }

  /** Merges one isolate's outcome counts; an endpoint failing mesh-wide is ejected for everyone. */
  private mergeOutcomes(service: string, outcomes: EndpointOutcome[], nowMs: number): boolean {
    const policy = this.active?.document.services[service]?.passiveHealth;
    const endpoints = this.active?.compiled.services[service]?.endpoints;
    if (!policy || !endpoints) return false;
    const known = new Set(endpoints.map((e) => e.id));
    let changed = false;
    for (const outcome of outcomes) {
      if (!known.has(outcome.endpointId)) continue;
      const k = key(service, outcome.endpointId);
      const window = addOutcome(this.passiveWindows.get(k), outcome, nowMs, policy);
      this.passiveWindows.set(k, window);
      const h = this.healthRow(service, outcome.endpointId);
      if (h.passiveUntilMs > nowMs) continue;
      const reason = passiveEjection(window, nowMs, policy);
      if (reason === null) continue;
      h.passiveUntilMs = nowMs + policy.ejectionMs;
      h.passiveReason = reason;
      this.saveHealth(h);
      this.passiveWindows.delete(k);
      this.recordTransition(service, outcome.endpointId, "passive", "healthy", "ejected", `${reason}; ejected for ${policy.ejectionMs} ms`);
      changed = true;
    }
    return changed;
  }

  private endPassiveEjections(nowMs: number): boolean {
    let changed = false;
    for (const h of this.health.values()) {
      if (h.passiveUntilMs === 0 || h.passiveUntilMs > nowMs) continue;
      h.passiveUntilMs = 0;
      h.passiveReason = null;
      this.saveHealth(h);
      this.recordTransition(h.service, h.endpointId, "passive", "ejected", "healthy", "passive ejection ended; the endpoint takes traffic again");
      changed = true;
    }
    return changed;
  }

  /** Checks one endpoint: URL endpoints directly, binding endpoints through the service's sidecar. */
  private async probe(service: string, endpoint: CompiledEndpoint, check: HealthCheckPolicy): Promise<ProbeResult | null> {
    const started = Date.now();
    try {
      if (endpoint.url !== undefined) {
        const controller = new AbortController();
        const res = await withTimeout(fetch(endpoint.url + check.path, { headers: { "user-agent": "edgemesh-health-check" }, signal: controller.signal }), check.timeoutMs);
        if (res === "timeout") {
          controller.abort();
          return { ok: false, detail: `timeout after ${check.timeoutMs} ms` };
        }
        await res.body?.cancel();
        return probeVerdict(res.status, check.expectedStatus);
      }
      const sidecar = (this.env as unknown as Record<string, Fetcher | undefined>)[sidecarBindingName(service)];
      if (!sidecar || typeof sidecar.fetch !== "function") return null;
      const target = new URL(`https://sidecar.internal${SIDECAR_PROBE_PATH}`);
      target.searchParams.set("binding", endpoint.binding ?? "");
      target.searchParams.set("path", check.path);
      target.searchParams.set("timeoutMs", String(check.timeoutMs));
      // The sidecar enforces the timeout; the slack covers the hop to it.
      const res = await withTimeout(sidecar.fetch(target, { headers: { authorization: `Bearer ${this.env.EDGEMESH_ADMIN_TOKEN ?? ""}` } }), check.timeoutMs + 1_000);
      if (res === "timeout") return { ok: false, detail: `timeout after ${check.timeoutMs} ms (via sidecar)` };
      const answer = (await res.json()) as { status?: number; error?: string; timedOut?: boolean };
      if (typeof answer.status === "number") return probeVerdict(answer.status, check.expectedStatus);
      return { ok: false, detail: answer.timedOut ? `timeout after ${check.timeoutMs} ms` : `check failed: ${answer.error ?? `sidecar answered ${res.status}`}` };
    } catch (err) {
      return { ok: false, detail: `connect failure after ${Date.now() - started} ms: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  /**
   * Runs the checks that are due: first those left over by the previous alarm, then every
   * endpoint of each service whose interval is up. At most CHECK_CONCURRENCY run at once and at
   * most CHECKS_PER_ALARM per alarm (a Worker invocation's subrequest limit); the rest stay in the
   * backlog for a follow-up alarm CHECK_BACKLOG_DELAY_MS later.
   */
  private async runDueChecks(nowMs: number): Promise<boolean> {
    if (!this.active || this.checking) return false;
    this.checking = true;
    let changed = false;
    try {
      const queued = new Set(this.checkBacklog.map((c) => c.service));
      for (const [service, policy] of Object.entries(this.active.document.services)) {
        const check = policy.healthCheck;
        if (!check) {
          this.nextCheckAtMs.delete(service);
          continue;
        }
        // A service whose previous round is still in the backlog finishes that round first.
        if (queued.has(service)) continue;
        const at = this.nextCheckAtMs.get(service) ?? 0;
        if (at > nowMs) continue;
        this.nextCheckAtMs.set(service, nowMs + check.intervalMs);
        for (const endpoint of this.active.compiled.services[service]?.endpoints ?? []) this.checkBacklog.push({ service, endpointId: endpoint.id });
      }
      const batch = this.checkBacklog.splice(0, CHECKS_PER_ALARM);
      await runBounded(batch, CHECK_CONCURRENCY, async ({ service, endpointId }) => {
        // The policy may have changed since the check was queued.
        const check = this.active?.document.services[service]?.healthCheck;
        const endpoint = this.active?.compiled.services[service]?.endpoints.find((e) => e.id === endpointId);
        if (!check || !endpoint) return;
        const result = await this.probe(service, endpoint, check);
        // The endpoint may have left while the check ran.
        if (!result || !this.active?.compiled.services[service]?.endpoints.some((e) => e.id === endpointId)) return;
        const h = this.healthRow(service, endpointId);
        const { next, transition } = afterProbe(h.active, result, check);
        h.active = next;
        h.checks++;
        h.lastCheckMs = Date.now();
        h.lastDetail = result.detail;
        this.saveHealth(h);
        if (transition) {
          this.recordTransition(service, endpointId, "active", transition.from, transition.to, transition.reason);
          changed = true;
        }
      });
    } finally {
      this.checking = false;
    }
    return changed;
  }

  /** The alarm: lapsed leases, ended ejections and due health checks, then the next alarm. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.expireLeases(now);
    const ejectionsEnded = this.endPassiveEjections(now);
    const healthChanged = await this.runDueChecks(now);
    if (ejectionsEnded || healthChanged) this.bumpGeneration();
    await this.scheduleAlarm(true);
  }

  /** Sets the alarm to the earliest of: next lease expiry, next ejection end, next health check. */
  private async scheduleAlarm(replace = false): Promise<void> {
    const candidates: number[] = [];
    const lease = this.sql.exec<{ at: number | null }>("SELECT MIN(expires_at_ms) AS at FROM registered_endpoints").one().at;
    if (lease !== null) candidates.push(lease);
    for (const h of this.health.values()) if (h.passiveUntilMs > 0) candidates.push(h.passiveUntilMs);
    for (const [service, policy] of Object.entries(this.active?.document.services ?? {})) {
      if (policy.healthCheck) candidates.push(this.nextCheckAtMs.get(service) ?? Date.now());
    }
    if (this.checkBacklog.length > 0) candidates.push(Date.now() + CHECK_BACKLOG_DELAY_MS);
    if (candidates.length === 0) {
      if (replace) await this.ctx.storage.deleteAlarm();
      return;
    }
    const next = Math.min(...candidates);
    const current = replace ? null : await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
  }

  // ---- data plane ---------------------------------------------------------------------------

  async snapshot(checkIn: SidecarCheckIn): Promise<SnapshotReply> {
    if (++this.snapshotCalls % 1000 === 0) this.forgetGoneSidecars(Date.now());
    if (this.fault.snapshot === "fail") throw new Error("control plane fault switch: snapshot calls fail (PUT /v1/debug/fault to clear)");
    if (this.fault.snapshot === "slow") await new Promise((resolve) => setTimeout(resolve, this.fault.delayMs));
    const now = Date.now();
    const seen = this.sidecars.get(checkIn.isolateId);
    const record: SidecarSeen = {
      service: checkIn.service,
      isolateId: checkIn.isolateId,
      colo: checkIn.colo,
      generation: checkIn.knownGeneration,
      policyVersion: checkIn.knownPolicyVersion ?? 0,
      sentGeneration: seen?.sentGeneration ?? 0,
      firstSeenMs: seen?.firstSeenMs ?? now,
      lastSeenMs: now,
      checkIns: (seen?.checkIns ?? 0) + 1,
    };
    this.sidecars.set(checkIn.isolateId, record);
    if (checkIn.outcomes?.length && this.mergeOutcomes(checkIn.service, checkIn.outcomes, now)) {
      this.bumpGeneration();
      await this.scheduleAlarm();
    }
    // A sidecar that serves another epoch's snapshot (this storage was reset) gets a full one.
    const sameEpoch = checkIn.knownEpoch === undefined || checkIn.knownEpoch === this.epoch;
    if (sameEpoch && checkIn.knownGeneration === this.generation && this.active) return { status: "not-modified", generation: this.generation };
    const snap = this.buildSnapshot(checkIn.service);
    const changedAt = this.contentChangedAt.get(checkIn.service)?.generation;
    if (snap && sameEpoch && changedAt !== undefined && checkIn.knownGeneration >= changedAt && checkIn.knownGeneration < this.generation) {
      // Only other services changed since the isolate's snapshot: it already serves the current
      // content, so it counts as synced at the current generation.
      record.generation = this.generation;
      return { status: "not-modified", generation: this.generation };
    }
    if (!snap) return { status: "unknown-service", generation: this.generation, services: Object.keys(this.active?.compiled.services ?? {}) };
    record.sentGeneration = snap.generation;
    this.emit("snapshot.served", { service: checkIn.service, isolateId: checkIn.isolateId, colo: checkIn.colo, generation: snap.generation, policyVersion: snap.policyVersion });
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
    const now = Date.now();
    const excluded = new Set<number>();
    compiled.endpoints.forEach((e, i) => {
      if (this.isExcluded(service, e.id, now)) excluded.add(i);
    });
    const snap: ServiceSnapshot = {
      ...compiled,
      endpoints: excluded.size === 0 ? compiled.endpoints : compiled.endpoints.map((e, i) => (excluded.has(i) ? { ...e, healthy: false } : e)),
      subsets: withoutExcluded(compiled.subsets, excluded),
      policyVersion: this.active.version,
      generation: this.generation,
      epoch: this.epoch,
    };
    this.snapshots.set(service, snap);
    const content = JSON.stringify({ ...snap, generation: 0 });
    if (this.contentChangedAt.get(service)?.content !== content) this.contentChangedAt.set(service, { content, generation: this.generation });
    return snap;
  }

  /** Isolates come and go; one silent for this long is forgotten, so the map stays bounded. */
  private forgetGoneSidecars(nowMs: number): void {
    for (const [id, s] of this.sidecars) if (nowMs - s.lastSeenMs > SIDECAR_FORGET_AFTER_MS) this.sidecars.delete(id);
  }

  async sidecarsSeen(): Promise<SidecarSeen[]> {
    return [...this.sidecars.values()];
  }

  /** Is the current generation (or `generation`) served by every sidecar seen recently? */
  async syncStatus(generation?: number): Promise<SyncStatus & { snapshotCalls: number; snapshotCallsPerSecond: number }> {
    const now = Date.now();
    this.forgetGoneSidecars(now);
    const ttlOf = (service: string) => this.active?.document.services[service]?.snapshotTtlMs ?? 1_000;
    const status = syncStatus(this.sidecars.values(), generation ?? this.generation, this.currentVersion(), now, (s) => Math.max(5_000, 3 * ttlOf(s)));
    const seconds = Math.max(0.001, (now - this.startedAtMs) / 1000);
    return { ...status, snapshotCalls: this.snapshotCalls, snapshotCallsPerSecond: this.snapshotCalls / seconds };
  }

  // ---- fault switch -------------------------------------------------------------------------

  async setFault(fault: ControlFault): Promise<{ ok: true; fault: ControlFault } | { ok: false; message: string }> {
    if (this.env.EDGEMESH_CONTROL_FAULTS !== "true") {
      return { ok: false, message: "the fault switch is off; set EDGEMESH_CONTROL_FAULTS=true on the control Worker (local and test meshes only)" };
    }
    this.fault = fault;
    this.setMeta("fault", JSON.stringify(fault));
    return { ok: true, fault };
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

function sameEndpoint(a: CompiledEndpoint, b: CompiledEndpoint): boolean {
  return a.binding === b.binding && a.url === b.url && a.weight === b.weight && JSON.stringify(a.labels) === JSON.stringify(b.labels);
}

function healthFromRow(row: Row): HealthRow {
  return {
    service: row.service as string,
    endpointId: row.id as string,
    active: { state: row.active_state as ActiveHealth["state"], consecutiveOk: row.consecutive_ok as number, consecutiveFail: row.consecutive_fail as number },
    checks: row.checks as number,
    lastCheckMs: (row.last_check_ms as number | null) ?? null,
    lastDetail: (row.last_detail as string | null) ?? null,
    passiveUntilMs: row.passive_until_ms as number,
    passiveReason: (row.passive_reason as string | null) ?? null,
  };
}

function eventFromRow(row: Row): MeshEvent {
  return { seq: row.seq as number, atMs: row.at_ms as number, type: row.type as MeshEventType, data: JSON.parse(row.data as string) } as MeshEvent;
}
