// MeshControl: one Durable Object per mesh, a thin facade. It owns the RPC surface and the
// transaction boundaries and wires the components, each of which owns its own tables:
//   policy-store.ts     versions, history, pruning (documents stored in pieces)
//   active-policy.ts    the policy in force, compiled per service with registered instances
//   registry.ts         self-registered instances and their leases
//   health-monitor.ts   active-check state, passive ejections, transition history
//   health-checks.ts    when each service's checks are due (health-probe.ts runs one)
//   event-log.ts        the event log and the watch stream
//   snapshot-server.ts  snapshots, generations, check-ins and sync status
//   alarm-planner.ts    the one alarm, at the earliest time any component is due
//   admin-tokens.ts     scoped admin tokens (hashed) and, with auth/throttle.ts, admin authentication
//   audit-log.ts        who changed what, by token name
//   rollouts.ts         staged rollouts: one run per service, each step a policy version
import { DurableObject } from "cloudflare:workers";
import type { AuditRecord } from "../auth/audit.ts";
import type { AdminScope } from "../auth/admin-token.ts";
import { newThrottle } from "../auth/throttle.ts";
import { AdminTokens, authenticateAdmin, type AdminAuthResult, type AdminTokenInfo, type CreateTokenResult } from "./admin-tokens.ts";
import { AuditLog, type AuditPage, type AuditQuery } from "./audit-log.ts";
import { diffJson, type DiffEntry } from "../policies/diff.ts";
import { DEFAULT_LEASE_TTL_MS } from "../policies/health.ts";
import { jsonPath, MAX_ENDPOINTS_PER_SERVICE, PolicyDocument, Service, type PolicyError, type ServicePolicy } from "../policies/schema.ts";
import type { CompiledEndpoint, MeshControlRpc, ServiceSnapshot, SidecarCheckIn, SnapshotReply } from "../policies/snapshot.ts";
import { ActivePolicy } from "./active-policy.ts";
import { AlarmPlanner } from "./alarm-planner.ts";
import {
  batches, CHECK_BACKLOG_DELAY_MS, CHECK_CONCURRENCY, CHECKS_PER_ALARM, CHECKS_PER_INVOCATION, INVOCATIONS_IN_FLIGHT, LOCAL_CHECKS_PER_ALARM, runBounded, withTimeout,
} from "./check-runner.ts";
import { EventLog, type EventPage } from "./event-log.ts";
import type { MeshEventData, MeshEventType } from "../policies/events.ts";
import { INITIAL_ACTIVE_HEALTH, maxPassiveEjections, type ActiveHealth, type PassiveWindow, type ProbeResult } from "./health.ts";
import { HealthCheckScheduler, type CheckedService } from "./health-checks.ts";
import { HEALTH_HISTORY_LIMIT, HealthMonitor, type HealthTransitionRecord } from "./health-monitor.ts";
import { probeEndpoint, type HealthProbeRpc, type ProbeEnv, type ProbeTarget } from "./health-probe.ts";
import { digestOf, type Json, type PolicyManifest } from "./policy-sections.ts";
import { DEFAULT_POLICY_HISTORY_LIMIT, PolicyStore, type PolicyPieces, type PolicyVersionInfo } from "./policy-store.ts";
import type { RegistryConflict } from "./registry-merge.ts";
import { Registry } from "./registry.ts";
import { RelayHub } from "./relay-hub.ts";
import type { MeshRelayRpc, RelayAuthorityRpc, RelayReport, RelayUpdate } from "./relay-protocol.ts";
import type { RolloutAction, RolloutStatus } from "../policies/rollout-run.ts";
import { measureCanary, type RolloutMetricsEnv } from "./rollout-metrics.ts";
import { Rollouts, type RolloutActionResult } from "./rollouts.ts";
import { SnapshotServer } from "./snapshot-server.ts";
import { MetaTable } from "./sql.ts";
import { loadStoredPolicy, type PolicyLoadError } from "./stored-policy.ts";
import type { SidecarSeen, SyncStatus } from "./sync.ts";
import { PRESENCE_EVERY_TTLS } from "../policies/distribution.ts";

export type { SidecarSeen, SyncStatus } from "./sync.ts";
export type { RegistryConflict, RegisteredInstance } from "./registry-merge.ts";
export type { MeshEvent, WatchHello } from "../policies/events.ts";
export type { PolicyLoadError } from "./stored-policy.ts";
export type { PolicyVersionInfo } from "./policy-store.ts";
export type { HealthTransitionRecord } from "./health-monitor.ts";
export type { RolloutActionResult } from "./rollouts.ts";
export type { RolloutStatus } from "../policies/rollout-run.ts";
export type { Json } from "./policy-sections.ts";
export { HEALTH_HISTORY_LIMIT } from "./health-monitor.ts";

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
  | { ok: true; version: number; generation: number; conflicts: RegistryConflict[]; changedServices: number; removedServices: number }
  | { ok: false; reason: "invalid"; errors: PolicyError[] }
  | { ok: false; reason: "conflict"; currentVersion: number; message: string }
  | { ok: false; reason: "not-found"; message: string }
  /** The document would change what a service's rollout holds (docs/rollouts.md). */
  | { ok: false; reason: "rollout"; service: string; message: string };

/** A commit whose pieces the object lacks (pruned meanwhile) is refused; send them and retry. */
export type CommitResult = ApplyResult | { ok: false; reason: "missing-pieces"; missing: string[] };

export interface CommitOptions extends ApplyOptions {
  kind: PolicyVersionInfo["kind"];
  /** For a rollback: the version whose document it restores. */
  restoredVersion?: number;
}

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
  | { ok: false; reason: "conflict"; message: string }
  | { ok: false; reason: "unknown-service"; message: string; services: string[] };

export interface EndpointHealth {
  service: string;
  endpointId: string;
  /** True when active or passive health keeps it out of the snapshots. */
  excluded: boolean;
  active: (ActiveHealth & { checks: number; lastCheckMs: number | null; lastDetail: string | null }) | null;
  passive: { ejectedUntilMs: number | null; reason: string | null; window: PassiveWindow | null } | null;
}

/** The fault switch for static-stability tests: makes the sidecars' snapshot calls fail or stall. */
export interface ControlFault {
  snapshot: "ok" | "fail" | "slow";
  /** For "slow": how long each snapshot call stalls. */
  delayMs: number;
}

export interface MeshControlEnv extends RolloutMetricsEnv {
  /** The bootstrap admin token (scope admin); stored tokens work without it. */
  EDGEMESH_ADMIN_TOKEN?: string;
  /** "true" enables the fault switch (PUT /v1/debug/fault); leave unset in production. */
  EDGEMESH_CONTROL_FAULTS?: string;
  /** Tests only: a smaller health-history limit than HEALTH_HISTORY_LIMIT, to see pruning. */
  EDGEMESH_HEALTH_HISTORY_LIMIT?: string;
  /** Policy versions kept (default 100); older ones are pruned. */
  EDGEMESH_POLICY_HISTORY_LIMIT?: string;
  /** The relays of the distribution tier (MeshRelay), to push new generations to. */
  MESH_RELAY?: DurableObjectNamespace;
  /** The control Worker's own HealthProbe entrypoint: health checks in invocations of their own. */
  HEALTH_PROBE?: HealthProbeRpc;
}

/** Counters of the calls this object answers, for sync status and the benchmarks. */
export interface ControlLoad {
  /** Check-ins of sidecars that call this object directly. */
  snapshotCalls: number;
  /** Reports (and pulls) of relays. */
  relaySyncs: number;
  /** Pushes this object sent to relays. */
  relayPushes: number;
  startedAtMs: number;
}

/** Pushes to relays in flight at once. */
const RELAY_PUSH_CONCURRENCY = 16;
/** Services parsed, or snapshots rebuilt, between two chances for other calls to run. */
const COMMIT_SLICE = 100;

/** Lets calls waiting on this object (sidecars' check-ins) run before the work goes on. */
const letOthersIn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class MeshControl extends DurableObject<MeshControlEnv> implements MeshControlRpc, RelayAuthorityRpc {
  private readonly meta: MetaTable;
  private readonly eventLog: EventLog;
  private readonly store: PolicyStore;
  private readonly leases: Registry;
  private readonly health: HealthMonitor;
  private readonly checks = new HealthCheckScheduler();
  private readonly policy: ActivePolicy;
  private readonly snapshots: SnapshotServer;
  private readonly alarms: AlarmPlanner;
  private readonly relays = new RelayHub();
  private readonly rollouts: Rollouts;
  private readonly adminTokens: AdminTokens;
  private readonly auditLog: AuditLog;
  /**
   * Failed admin authentications per client. In memory: this one object sees every attempt on the
   * control plane (the control Worker authenticates every call here, whatever mesh it names), so
   * the count holds across the Worker's isolates; an eviction forgets it, which only gives a
   * client its free failures again.
   */
  private readonly authThrottle = newThrottle();
  private readonly load: ControlLoad = { snapshotCalls: 0, relaySyncs: 0, relayPushes: 0, startedAtMs: Date.now() };
  private fault: ControlFault = { snapshot: "ok", delayMs: 0 };
  private checking = false;
  /** Each service's section digest in the active version, to tell which services a commit changes. */
  private activeDigests = new Map<string, string>();
  /** The active version's own fields (mesh, access, …) as stored. */
  private activeEnvelope = "";
  /** Commits run one after another. */
  private commits: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: MeshControlEnv) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    this.meta = new MetaTable(sql);
    this.eventLog = new EventLog(sql, ctx);
    this.store = new PolicyStore(sql, this.meta);
    this.leases = new Registry(sql);
    this.adminTokens = new AdminTokens(sql);
    this.auditLog = new AuditLog(sql);
    this.health = new HealthMonitor(sql, (t, atMs) => this.emit("health.changed", t, atMs), Number(env.EDGEMESH_HEALTH_HISTORY_LIMIT) || HEALTH_HISTORY_LIMIT);
    this.policy = new ActivePolicy(
      (service) => this.leases.ofService(service),
      () => this.leases.services(),
    );
    this.snapshots = new SnapshotServer(
      sql,
      this.meta,
      {
        policyVersion: () => this.policy.version,
        compiled: (service) => this.policy.compiled(service),
        serviceNames: () => this.policy.serviceNames(),
        isExcluded: (service, id, nowMs) => this.isExcluded(service, id, nowMs),
        ttlMs: (service) => this.policy.servicePolicy(service)?.snapshotTtlMs ?? 1_000,
      },
      Date.now(),
    );
    this.rollouts = new Rollouts(sql, {
      servicePolicy: (service) => (this.policy.version > 0 ? this.policy.servicePolicy(service) : undefined),
      serviceNames: () => this.policy.serviceNames(),
      mesh: () => (this.policy.version > 0 ? this.policy.document?.mesh : undefined),
      canaryNotReady: (service, subset) => this.subsetNotServing(service, subset),
      measure: (window) => measureCanary(this.env, window),
      writeSection: (service, edit, author, message) => this.commitSection(service, edit, author, message),
      emit: (type, data) => this.emit(type, data),
    });
    this.alarms = new AlarmPlanner(ctx.storage)
      .add("rollouts", () => this.rollouts.nextDueMs())
      .add("lease-expiry", () => this.leases.nextExpiryMs())
      .add("ejection-end", () => this.health.nextEjectionEndMs())
      .add("health-checks", () => this.checks.nextDueMs(this.checkedServices(), Date.now()))
      .add("check-backlog", () => (this.checks.pending() > 0 ? Date.now() + CHECK_BACKLOG_DELAY_MS : null));
    const fault = this.meta.get("fault");
    if (fault) this.fault = JSON.parse(fault) as ControlFault;
    const activeVersion = this.store.activeVersion();
    if (activeVersion > 0) this.loadActive(activeVersion);
    this.rollouts.policyChanged(Date.now());
    void ctx.blockConcurrencyWhile(() => this.alarms.reschedule());
  }

  private emit<T extends MeshEventType>(type: T, data: MeshEventData[T], atMs = Date.now()): void {
    this.eventLog.emit(type, data, atMs);
  }

  /**
   * Loads the stored active version. A document that no longer validates (the schema got
   * stricter) or no longer compiles leaves no active policy instead of breaking the object: the
   * sidecars keep serving their snapshots, the error is shown by GET /v1/policy and as an event,
   * and an apply or rollback fixes it.
   */
  private loadActive(version: number): void {
    const text = this.store.documentText(version) ?? undefined;
    const loaded = loadStoredPolicy(version, text, (document) => {
      this.policy.activate(version, document);
      for (const service of this.policy.serviceNames()) this.policy.compiled(service);
      return true;
    });
    if (loaded.ok) {
      const manifest = this.store.manifest(version);
      this.activeDigests = new Map(manifest?.services ?? []);
      this.activeEnvelope = manifest ? JSON.stringify(manifest.envelope) : "";
    }
    if (!loaded.ok) {
      this.policy.deactivate(loaded.error);
      this.emit("policy.load-failed", { version, message: loaded.error.message, errors: loaded.error.errors });
    }
  }

  /**
   * These services' snapshots may have changed: the ones whose generation moved are pushed to the
   * relays that hold them. Returns those.
   */
  private snapshotsChanged(services: Iterable<string>, removed: readonly string[] = []): string[] {
    const moved = this.snapshots.refresh(services, Date.now());
    this.pushToRelays([...moved, ...removed]);
    return moved;
  }

  /** What every update to a relay carries besides snapshots. */
  private relayUpdate(snapshots: ServiceSnapshot[], unknown: string[]): RelayUpdate {
    return { epoch: this.snapshots.epoch, snapshots, unknown, services: this.policy.serviceNames(), reportEveryMs: this.relays.reportEveryMs(), fault: this.fault };
  }

  /**
   * Pushes the current snapshot of each of `services` to the relays holding it (services the
   * policy no longer has are pushed as unknown). In the background: a push that fails is repaired
   * by that relay's next report.
   */
  private pushToRelays(services: readonly string[], everyRelay = false): void {
    const ns = this.env.MESH_RELAY;
    if (!ns || (services.length === 0 && !everyRelay)) return;
    const now = Date.now();
    this.relays.forgetSilent(now);
    const targets = everyRelay ? new Map(this.relays.all().map((r) => [r.relayId, services.filter((s) => r.services.has(s))])) : this.relays.holdersOf(services);
    if (targets.size === 0) return;
    const pushes = [...targets].map(([relayId, held]) => {
      const snapshots: ServiceSnapshot[] = [];
      const unknown: string[] = [];
      for (const service of held) {
        const snap = this.snapshots.snapshot(service, now);
        if (snap) snapshots.push(snap);
        else unknown.push(service);
      }
      return { relay: ns.get(ns.idFromString(relayId)) as unknown as MeshRelayRpc, update: this.relayUpdate(snapshots, unknown) };
    });
    this.load.relayPushes += pushes.length;
    this.ctx.waitUntil(runBounded(pushes, RELAY_PUSH_CONCURRENCY, ({ relay, update }) => relay.push(update).catch(() => {})));
  }

  private isExcluded(service: string, id: string, nowMs: number): boolean {
    return this.health.isExcluded(service, id, this.policy.servicePolicy(service)?.healthCheck !== undefined, nowMs);
  }

  private checkedServices(): CheckedService[] {
    const out: CheckedService[] = [];
    for (const service of this.policy.serviceNames()) {
      const check = this.policy.servicePolicy(service)?.healthCheck;
      if (check) out.push({ service, intervalMs: check.intervalMs, endpointIds: this.policy.compiled(service)?.endpoints.map((e) => e.id) ?? [] });
    }
    return out;
  }

  /** Forgets the health of endpoints that left the mesh. */
  private forgetGoneHealth(): void {
    this.health.forgetGone((service, id) => this.policy.endpointExists(service, id));
  }

  /** Why the stored active policy is not in force, or null when it is (or there is none). */
  async policyLoadError(): Promise<PolicyLoadError | null> {
    return this.policy.loadError ?? null;
  }

  // ---- events -------------------------------------------------------------------------------

  async events(since = 0, limit = 1000, types?: string[]): Promise<EventPage> {
    return this.eventLog.page(since, limit, types);
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
    const sinceParam = url.searchParams.get("since");
    return this.eventLog.openWatch(sinceParam === null ? undefined : Number(sinceParam) || 0, types);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.eventLog.answer(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      // Already closed.
    }
  }

  // ---- admin credentials and the audit log ---------------------------------------------------
  // The control Worker keeps these in the object of its own mesh (MESH_NAME): credentials belong
  // to the control plane, not to one mesh, and one object sees every failed attempt.

  /** One admin call: throttle, then the bootstrap secret or a stored token (see admin-tokens.ts). */
  async authenticateAdmin(authorization: string | null, clientKey: string): Promise<AdminAuthResult> {
    return authenticateAdmin({ authorization, clientKey, nowMs: Date.now(), bootstrapToken: this.env.EDGEMESH_ADMIN_TOKEN }, this.adminTokens, this.authThrottle);
  }

  async createAdminToken(input: { name: string; scope: AdminScope; ttlMs?: number }, createdBy: string): Promise<CreateTokenResult> {
    return this.adminTokens.create({ ...input, createdBy }, Date.now());
  }

  async listAdminTokens(): Promise<AdminTokenInfo[]> {
    return this.adminTokens.list(Date.now());
  }

  /** Takes effect at once: the next call with the token is looked up and not found. */
  async revokeAdminToken(name: string): Promise<boolean> {
    return this.adminTokens.revoke(name);
  }

  async recordAudit(record: Omit<AuditRecord, "seq">): Promise<number> {
    return this.auditLog.append(record);
  }

  async audit(query: AuditQuery = {}): Promise<AuditPage> {
    return this.auditLog.page(query);
  }

  // ---- policy -------------------------------------------------------------------------------

  async activeVersion(): Promise<number> {
    return this.policy.version;
  }

  /**
   * Which of these stored-piece digests (policy-sections.ts) this object lacks: the control Worker
   * sends only those with the commit, so a one-service change carries one section.
   */
  async missingPolicyPieces(digests: string[]): Promise<string[]> {
    const active = new Set(this.activeDigests.values());
    const unknown = digests.filter((d) => !active.has(d));
    const missing: string[] = [];
    for (let i = 0; i < unknown.length; i += COMMIT_SLICE * 5) {
      if (i > 0) await letOthersIn();
      missing.push(...this.store.missing(unknown.slice(i, i + COMMIT_SLICE * 5)));
    }
    return missing;
  }

  /**
   * Makes a document the control Worker validated and split (policy-sections.ts) the active version.
   * Only the services whose section changed are parsed, compiled and given a new generation; the
   * work is done in slices so sidecars' check-ins are answered in between (from the policy in force
   * until the new one is complete). Commits run one at a time.
   */
  async commitPolicy(pieces: PolicyPieces, options: CommitOptions): Promise<CommitResult> {
    return this.commitInTurn(() => this.commitNow(pieces, options));
  }

  private commitInTurn<T>(commit: () => Promise<T>): Promise<T> {
    const run = this.commits.then(commit);
    this.commits = run.catch(() => {});
    return run;
  }

  /** `byRollout`: the rollout's own step, exempt from the check that a document leaves rollouts alone. */
  private async commitNow(pieces: PolicyPieces, options: CommitOptions, byRollout = false): Promise<CommitResult> {
    const current = this.policy.version;
    if (options.expectedVersion !== undefined && options.expectedVersion !== current) {
      return {
        ok: false,
        reason: "conflict",
        currentVersion: current,
        message: `expected version ${options.expectedVersion} but version ${current} is active; fetch it, merge, and retry`,
      };
    }
    const manifestText = pieces.texts[pieces.manifestDigest] ?? this.store.sectionText(pieces.manifestDigest);
    if (manifestText === undefined) return { ok: false, reason: "missing-pieces", missing: [pieces.manifestDigest] };
    const manifest = JSON.parse(manifestText) as PolicyManifest;
    // The document's own fields (mesh, access, …) with their defaults; a change to them (mesh-wide
    // access, say) reaches every service's snapshot, so then everything compiles again.
    const envelope: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(PolicyDocument.shape)) {
      if (key === "services") continue;
      const parsed = (schema as { safeParse(v: unknown): { success: true; data: unknown } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }).safeParse(manifest.envelope[key]);
      if (!parsed.success) return { ok: false, reason: "invalid", errors: parsed.error.issues.map((i) => ({ path: jsonPath([key, ...i.path]), message: i.message })) };
      if (parsed.data !== undefined) envelope[key] = parsed.data;
    }
    const envelopeText = JSON.stringify(manifest.envelope);
    // Parse what changed; the rest is the policy in force, already validated.
    const services: Record<string, ServicePolicy> = {};
    const changed: string[] = [];
    for (const [name, digest] of manifest.services) {
      const kept = this.activeDigests.get(name) === digest ? this.policy.servicePolicy(name) : undefined;
      if (kept) {
        services[name] = kept;
        continue;
      }
      const text = pieces.texts[digest] ?? this.store.sectionText(digest);
      if (text === undefined) return { ok: false, reason: "missing-pieces", missing: [digest] };
      const parsed = Service.safeParse(JSON.parse(text));
      if (!parsed.success) return { ok: false, reason: "invalid", errors: parsed.error.issues.map((i) => ({ path: jsonPath(["services", name, ...i.path]), message: i.message })) };
      services[name] = parsed.data;
      changed.push(name);
      if (changed.length % COMMIT_SLICE === 0) await letOthersIn();
    }
    const removed = this.policy.serviceNames().filter((s) => services[s] === undefined);
    for (const name of byRollout ? [] : [...changed, ...removed]) {
      const refusal = this.rollouts.refuseChange(name, this.policy.servicePolicy(name), services[name]);
      if (refusal) return { ok: false, reason: "rollout", service: name, message: refusal };
    }
    const document = { ...envelope, services } as unknown as PolicyDocument;
    const author = options.author ?? "unknown";
    const message = options.message ?? (options.kind === "rollback" ? `rollback to version ${options.restoredVersion}` : "");
    // New pieces are written in slices before the version that uses them, so a large document
    // never holds the object in one long write; pieces of a commit that then fails are dropped.
    const entries = Object.entries(pieces.texts);
    const written: string[] = [];
    let version: number;
    try {
      for (let i = 0; i < entries.length; i += COMMIT_SLICE) {
        written.push(...this.store.storePieces(Object.fromEntries(entries.slice(i, i + COMMIT_SLICE))));
        if (i + COMMIT_SLICE < entries.length) await letOthersIn();
      }
      version = this.ctx.storage.transactionSync(() => {
        const v = this.store.addVersion(pieces.manifestDigest, manifest, { appliedAtMs: Date.now(), author, message, kind: options.kind, restoredVersion: options.restoredVersion ?? null });
        this.store.prune(this.historyLimit());
        return v;
      });
    } catch (err) {
      this.store.dropPieces(written);
      throw err;
    }
    const incremental = this.activeDigests.size > 0 && this.policy.version > 0 && envelopeText === this.activeEnvelope;
    const affected = this.policy.activate(version, document, incremental ? [...changed, ...removed] : undefined);
    this.activeDigests = new Map(manifest.services);
    this.activeEnvelope = envelopeText;
    this.snapshots.forget(removed);
    for (let i = 0; i < affected.length; i += COMMIT_SLICE) {
      this.snapshotsChanged(affected.slice(i, i + COMMIT_SLICE), i === 0 ? removed : []);
      if (i + COMMIT_SLICE < affected.length) await letOthersIn();
    }
    this.forgetGoneHealth();
    this.rollouts.policyChanged(Date.now());
    const generation = this.snapshots.meshGeneration;
    if (options.kind === "rollback") this.emit("policy.rolled-back", { version, generation, restoredVersion: options.restoredVersion ?? 0, author });
    else this.emit("policy.applied", { version, generation, author, message });
    await this.alarms.reschedule();
    return { ok: true, version, generation, conflicts: this.policy.conflicts(), changedServices: changed.length, removedServices: removed.length };
  }

  /**
   * A rollout's step: a new version whose section of `service` is `edit(the section in force)`,
   * everything else as it is. Built in the commit queue, so it never undoes a commit before it.
   */
  private commitSection(service: string, edit: (section: Json) => Json, author: string, message: string): Promise<{ ok: true; version: number | null } | { ok: false; message: string }> {
    return this.commitInTurn(async () => {
      const manifest = this.store.manifest(this.policy.version);
      const digest = this.activeDigests.get(service);
      const text = digest === undefined ? undefined : this.store.sectionText(digest);
      if (!manifest || text === undefined) return { ok: false as const, message: `the policy in force has no section for service "${service}"` };
      const sectionText = JSON.stringify(edit(JSON.parse(text) as Json));
      // Nothing to change (promoting at 100% without an audience): no version that says nothing.
      if (sectionText === text) return { ok: true as const, version: null };
      const sectionDigest = await digestOf(sectionText);
      const next: PolicyManifest = { ...manifest, services: manifest.services.map(([name, d]) => [name, name === service ? sectionDigest : d]) };
      const manifestText = JSON.stringify(next);
      const manifestDigest = await digestOf(manifestText);
      const result = await this.commitNow({ manifestDigest, texts: { [manifestDigest]: manifestText, [sectionDigest]: sectionText } }, { kind: "apply", author, message }, true);
      if (result.ok) return { ok: true as const, version: result.version };
      return { ok: false as const, message: "errors" in result ? result.errors.map((e) => `${e.path}: ${e.message}`).join("; ") : "message" in result ? result.message : result.reason };
    });
  }

  /** Why no endpoint of a subset can take traffic, or null when one can. */
  private subsetNotServing(service: string, subset: string): string | null {
    const compiled = this.policy.compiled(service);
    const members = compiled?.subsets[subset] ?? [];
    if (!compiled || members.length === 0) return `subset "${subset}" of "${service}" has no endpoints (declare or register one)`;
    const now = Date.now();
    if (members.every((i) => this.isExcluded(service, compiled.endpoints[i]!.id, now))) return `every endpoint of subset "${subset}" is excluded by health checks`;
    return null;
  }

  private historyLimit(): number {
    return Math.max(1, Number(this.env.EDGEMESH_POLICY_HISTORY_LIMIT) || DEFAULT_POLICY_HISTORY_LIMIT);
  }

  /**
   * The version a rollback restores: `toVersion`, or the version before the active one (before the
   * broken one when the stored active version failed to load).
   */
  async rollbackTarget(toVersion?: number): Promise<{ ok: true; version: number } | { ok: false; message: string }> {
    const current = this.policy.version || this.policy.loadError?.version || 0;
    const target = toVersion ?? this.store.previousVersion(current);
    if (target === undefined) return { ok: false, message: `version ${current} has no earlier version to roll back to` };
    if (this.store.info(target) === null) {
      const oldest = this.store.oldestVersion();
      return { ok: false, message: `there is no policy version ${target}` + (oldest > 1 && target < oldest ? ` (history keeps the newest ${this.historyLimit()} versions; the oldest kept is ${oldest})` : "") };
    }
    return { ok: true, version: target };
  }

  /** A stored version's document as JSON text (the control Worker validates it before a rollback). */
  async policyText(version: number): Promise<string | null> {
    return this.store.documentText(version);
  }

  async getPolicy(version?: number): Promise<PolicyVersion | null> {
    const v = version ?? this.policy.version;
    const info = this.store.info(v);
    const text = info ? this.store.documentText(v) : null;
    return info && text !== null ? { ...info, document: JSON.parse(text) as Json } : null;
  }

  async history(limit = 50): Promise<{ activeVersion: number; versions: PolicyVersionInfo[] }> {
    return { activeVersion: this.policy.version, versions: this.store.history(limit) };
  }

  async diff(fromVersion: number, toVersion: number): Promise<{ ok: true; changes: DiffEntry[] } | { ok: false; message: string }> {
    const [a, b] = await Promise.all([this.getPolicy(fromVersion), this.getPolicy(toVersion)]);
    if (!a) return { ok: false, message: `there is no policy version ${fromVersion}` };
    if (!b) return { ok: false, message: `there is no policy version ${toVersion}` };
    return { ok: true, changes: diffJson(a.document, b.document) };
  }

  // ---- registry -----------------------------------------------------------------------------

  private leaseTtlFor(service: string, asked: number | undefined): number {
    return asked ?? this.policy.servicePolicy(service)?.registration?.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  }

  /** The registry of `service` changed: its snapshot (and its mirrors') must be rebuilt. */
  private registryChanged(service: string): void {
    this.snapshotsChanged(this.policy.registryChanged(service));
  }

  /**
   * Registers an instance (or renews it) with a lease. Re-registering the same instance unchanged
   * only renews the lease, so it does not disturb any sidecar.
   */
  async register(service: string, endpoint: CompiledEndpoint, leaseTtlMs?: number): Promise<RegisterResult> {
    const policy = this.policy.servicePolicy(service);
    if (!policy) {
      const services = this.policy.serviceNames();
      return {
        ok: false,
        reason: "unknown-service",
        services,
        message: `the active policy has no service "${service}"${services.length ? ` (services: ${services.join(", ")})` : " (no policy is active)"}; add the service to the policy first`,
      };
    }
    if (policy.endpoints.some((e) => e.id === endpoint.id)) {
      return { ok: false, reason: "conflict", message: `endpoint "${endpoint.id}" of service "${service}" is declared in the policy; a registered instance needs a different id` };
    }
    // Registered instances count against the same limit as declared endpoints.
    if (!this.leases.get(service, endpoint.id) && policy.endpoints.length + this.leases.count(service) >= MAX_ENDPOINTS_PER_SERVICE) {
      return {
        ok: false,
        reason: "conflict",
        message: `service "${service}" already has ${MAX_ENDPOINTS_PER_SERVICE} endpoints (declared and registered), the most a service may have; deregister one first`,
      };
    }
    const now = Date.now();
    const ttl = this.leaseTtlFor(service, leaseTtlMs);
    const registration = this.leases.register(service, endpoint, ttl, now);
    if (registration.changed) {
      this.registryChanged(service);
      this.emit("endpoint.registered", { service, endpointId: endpoint.id, leaseTtlMs: ttl, expiresAtMs: registration.instance.expiresAtMs, renewed: registration.existed });
    }
    await this.alarms.reschedule();
    const conflicts = this.policy.conflictsFor(service).filter((c) => c.endpointId === endpoint.id || c.otherEndpointId === endpoint.id);
    return { ok: true, generation: this.snapshots.meshGeneration, expiresAtMs: registration.instance.expiresAtMs, leaseTtlMs: ttl, conflicts };
  }

  /** Renews a lease; an instance whose lease already lapsed must register again. */
  async heartbeat(service: string, id: string, leaseTtlMs?: number): Promise<{ ok: true; expiresAtMs: number; leaseTtlMs: number } | { ok: false; message: string }> {
    const renewed = this.leases.renew(service, id, leaseTtlMs, Date.now());
    if (!renewed) return { ok: false, message: `service "${service}" has no registered instance "${id}" (its lease may have lapsed); register it again` };
    return { ok: true, ...renewed };
  }

  async deregister(service: string, id: string): Promise<{ ok: boolean; generation: number }> {
    const removed = this.leases.remove(service, id);
    if (removed) {
      this.registryChanged(service);
      this.forgetGoneHealth();
      this.emit("endpoint.deregistered", { service, endpointId: id });
    }
    return { ok: removed, generation: this.snapshots.meshGeneration };
  }

  private expireLeases(nowMs: number): void {
    const lapsed = this.leases.expire(nowMs);
    if (lapsed.length === 0) return;
    for (const service of new Set(lapsed.map((i) => i.service))) this.registryChanged(service);
    this.forgetGoneHealth();
    for (const i of lapsed) this.emit("endpoint.expired", { service: i.service, endpointId: i.id, lastHeartbeatMs: i.lastHeartbeatMs, leaseTtlMs: i.leaseTtlMs });
  }

  async registry(): Promise<{ generation: number; policyVersion: number; services: Record<string, RegisteredEndpoint[]>; conflicts: RegistryConflict[] }> {
    const services: Record<string, RegisteredEndpoint[]> = {};
    const appliedAt = this.store.info(this.policy.version)?.appliedAtMs ?? 0;
    const now = Date.now();
    for (const name of this.policy.serviceNames()) {
      const declared = new Set(this.policy.servicePolicy(name)?.endpoints.map((e) => e.id));
      const registered = new Map(this.leases.ofService(name).map((i) => [i.id, i]));
      services[name] = (this.policy.compiled(name)?.endpoints ?? []).map((e) => {
        const r = declared.has(e.id) ? undefined : registered.get(e.id);
        const out: RegisteredEndpoint = { ...e, service: name, source: r ? "registered" : "policy", registeredAtMs: r?.registeredAtMs ?? appliedAt, excluded: this.isExcluded(name, e.id, now) };
        if (r) out.expiresAtMs = r.expiresAtMs;
        return out;
      });
    }
    return { generation: this.snapshots.meshGeneration, policyVersion: this.policy.version, services, conflicts: this.policy.conflicts() };
  }

  // ---- health -------------------------------------------------------------------------------

  async healthStatus(service?: string): Promise<{ generation: number; nextAlarmAtMs: number | null; endpoints: EndpointHealth[] }> {
    const now = Date.now();
    const endpoints: EndpointHealth[] = [];
    for (const name of this.policy.serviceNames()) {
      if (service !== undefined && name !== service) continue;
      const policy = this.policy.servicePolicy(name);
      for (const e of this.policy.compiled(name)?.endpoints ?? []) {
        const h = this.health.get(name, e.id);
        const ejected = h !== undefined && h.passiveUntilMs > now;
        endpoints.push({
          service: name,
          endpointId: e.id,
          excluded: this.isExcluded(name, e.id, now),
          active: policy?.healthCheck
            ? { ...(h?.active ?? INITIAL_ACTIVE_HEALTH), checks: h?.checks ?? 0, lastCheckMs: h?.lastCheckMs ?? null, lastDetail: h?.lastDetail ?? null }
            : null,
          passive: policy?.passiveHealth
            ? { ejectedUntilMs: ejected ? h.passiveUntilMs : null, reason: ejected ? h.passiveReason : null, window: this.health.passiveWindow(name, e.id) }
            : null,
        });
      }
    }
    return { generation: this.snapshots.meshGeneration, nextAlarmAtMs: await this.ctx.storage.getAlarm(), endpoints };
  }

  async healthHistory(filter: { service?: string; endpointId?: string; limit?: number } = {}): Promise<HealthTransitionRecord[]> {
    return this.health.history(filter);
  }

  /**
   * Runs the checks that are due: first those left over by the previous alarm, then every
   * endpoint of each service whose interval is up. With the HEALTH_PROBE binding they run in
   * batches of CHECKS_PER_INVOCATION, each batch an invocation of its own, INVOCATIONS_IN_FLIGHT at
   * a time (check-runner.ts explains why); without it, CHECK_CONCURRENCY at a time here. What an
   * alarm cannot take waits in the backlog for a follow-up alarm CHECK_BACKLOG_DELAY_MS later.
   */
  private async runDueChecks(nowMs: number): Promise<Set<string>> {
    const changed = new Set<string>();
    if (this.checking || this.policy.version === 0) return changed;
    this.checking = true;
    try {
      const prober = this.env.HEALTH_PROBE;
      const due = this.checks.takeDue(nowMs, this.checkedServices(), prober ? CHECKS_PER_ALARM : LOCAL_CHECKS_PER_ALARM);
      const targets: ProbeTarget[] = [];
      for (const { service, endpointId } of due) {
        // The policy may have changed since the check was queued.
        const check = this.policy.servicePolicy(service)?.healthCheck;
        const endpoint = this.policy.compiled(service)?.endpoints.find((e) => e.id === endpointId);
        if (check && endpoint) targets.push({ service, endpoint, check: { path: check.path, timeoutMs: check.timeoutMs, expectedStatus: check.expectedStatus } });
      }
      const record = (target: ProbeTarget, result: ProbeResult | null) => {
        const check = this.policy.servicePolicy(target.service)?.healthCheck;
        // The endpoint may have left while the check ran.
        if (!result || !check || !this.policy.endpointExists(target.service, target.endpoint.id)) return;
        if (this.health.recordCheck(target.service, target.endpoint.id, result, check, Date.now())) changed.add(target.service);
      };
      if (prober) {
        await runBounded(batches(targets, CHECKS_PER_INVOCATION), INVOCATIONS_IN_FLIGHT, async (batch) => {
          // An invocation that fails says nothing about the endpoints: their state stays as it is.
          const slowestMs = Math.max(...batch.map((t) => t.check.timeoutMs));
          const results = await withTimeout(prober.probeBatch(batch), slowestMs + 2_000).catch(() => "timeout" as const);
          if (results !== "timeout") batch.forEach((target, i) => record(target, results[i] ?? null));
        });
      } else {
        await runBounded(targets, CHECK_CONCURRENCY, async (target) => record(target, await probeEndpoint(this.env as unknown as ProbeEnv, target)));
      }
    } finally {
      this.checking = false;
    }
    return changed;
  }

  /** The alarm: lapsed leases, ended ejections and due health checks, then the next alarm. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.expireLeases(now);
    const ejectionsEnded = this.health.endEjections(now);
    const [checksChanged] = await Promise.all([this.runDueChecks(now), this.rollouts.runDue(now)]);
    this.snapshotsChanged(new Set([...ejectionsEnded, ...checksChanged]));
    await this.alarms.reschedule(true);
  }

  // ---- data plane ---------------------------------------------------------------------------

  async snapshot(checkIn: SidecarCheckIn): Promise<SnapshotReply> {
    this.load.snapshotCalls++;
    if (this.fault.snapshot === "fail") throw new Error("control plane fault switch: snapshot calls fail (PUT /v1/debug/fault to clear)");
    if (this.fault.snapshot === "slow") await new Promise((resolve) => setTimeout(resolve, this.fault.delayMs));
    const now = Date.now();
    if (checkIn.outcomes?.length && this.addOutcomes(checkIn.service, checkIn.outcomes, now)) {
      this.snapshotsChanged([checkIn.service]);
      await this.alarms.reschedule();
    }
    return this.snapshots.checkIn(checkIn, now);
  }

  /**
   * Merges outcome counts into the service's passive health; true when an endpoint was ejected.
   * At most the service's outlierDetection.maxEjectionPercent of its endpoints are passively
   * ejected at once, so failing requests cannot empty a service one endpoint at a time.
   */
  private addOutcomes(service: string, outcomes: SidecarCheckIn["outcomes"] & object, nowMs: number): boolean {
    const passive = this.policy.servicePolicy(service)?.passiveHealth;
    const compiled = this.policy.compiled(service);
    if (!passive || !compiled) return false;
    const endpointIds = compiled.endpoints.map((e) => e.id);
    const cap = maxPassiveEjections(endpointIds.length, compiled.outlierDetection.maxEjectionPercent);
    return this.health.addOutcomes(service, outcomes, endpointIds, passive, nowMs, cap).length > 0;
  }

  /** The snapshot a sidecar of this service would receive now, or null. */
  async serviceSnapshot(service: string): Promise<ServiceSnapshot | null> {
    return this.snapshots.snapshot(service, Date.now());
  }

  async sidecarsSeen(): Promise<SidecarSeen[]> {
    return this.snapshots.sidecarsSeen();
  }

  /**
   * A relay's report: its isolates, their summed passive-health counts and its answers are
   * recorded, and it gets every snapshot it lacks or holds an old generation of.
   */
  async relaySync(report: RelayReport): Promise<RelayUpdate> {
    this.load.relaySyncs++;
    const now = Date.now();
    if (this.fault.snapshot === "slow") await new Promise((resolve) => setTimeout(resolve, this.fault.delayMs));
    const held = new Map(report.held);
    this.relays.seen(report.relayId, report.relay, [...held.keys(), ...report.wanted], now);
    // Under the fault switch relays learn the fault and nothing else: they fail their isolates too.
    if (this.fault.snapshot === "fail") return this.relayUpdate([], []);
    for (const i of report.isolates) {
      const sameEpoch = i.epoch === this.snapshots.epoch;
      this.snapshots.see({ service: i.service, isolateId: i.isolateId, colo: i.colo, knownPolicyVersion: i.policyVersion }, sameEpoch ? i.generation : 0, i.lastSeenMs, report.relay, i.checkIns);
    }
    for (const a of report.answers) this.snapshots.countRelayed(a.service, a.snapshotsServed, a.notModified);
    const ejectedIn = report.outcomes.filter((o) => this.addOutcomes(o.service, o.outcomes, now)).map((o) => o.service);
    if (ejectedIn.length > 0) {
      this.snapshotsChanged(ejectedIn);
      await this.alarms.reschedule();
    }
    const snapshots: ServiceSnapshot[] = [];
    const unknown: string[] = [];
    for (const service of new Set([...held.keys(), ...report.wanted])) {
      const snap = this.snapshots.snapshot(service, now);
      if (!snap) unknown.push(service);
      else if (report.epoch !== this.snapshots.epoch || held.get(service) !== snap.generation) snapshots.push(snap);
    }
    return this.relayUpdate(snapshots, unknown);
  }

  /** Is the current generation (or `generation`) served by every sidecar seen recently? */
  async syncStatus(generation?: number): Promise<SyncStatus & { snapshotCalls: number; snapshotCallsPerSecond: number; load: ControlLoad; relays: { relay: string; services: number; lastReportAgoMs: number }[] }> {
    const now = Date.now();
    const ttl = (service: string) => this.policy.servicePolicy(service)?.snapshotTtlMs ?? 1_000;
    // A sidecar behind a relay shows up once per PRESENCE_EVERY_TTLS, and its relay reports later still.
    const goneAfterMs = (service: string) => Math.max(5_000, (PRESENCE_EVERY_TTLS + 2) * ttl(service)) + this.relays.reportEveryMs();
    const status = this.snapshots.sync(generation, now, goneAfterMs);
    const seconds = Math.max(0.001, (now - this.load.startedAtMs) / 1000);
    this.relays.forgetSilent(now);
    return {
      ...status,
      snapshotCalls: this.load.snapshotCalls,
      snapshotCallsPerSecond: this.load.snapshotCalls / seconds,
      load: { ...this.load },
      relays: this.relays.all().map((r) => ({ relay: r.relay, services: r.services.size, lastReportAgoMs: now - r.lastReportMs })),
    };
  }

  // ---- rollouts -----------------------------------------------------------------------------

  async rolloutList(): Promise<RolloutStatus[]> {
    return this.rollouts.list();
  }

  async rolloutStatus(service: string): Promise<RolloutStatus | null> {
    return this.rollouts.get(service);
  }

  /** pause, resume, promote or abort a service's rollout; `by` names the operator in events and history. */
  async rolloutAction(service: string, action: RolloutAction, by: string): Promise<RolloutActionResult> {
    const result = await this.rollouts.act(service, action, by);
    await this.alarms.reschedule();
    return result;
  }

  // ---- fault switch -------------------------------------------------------------------------

  async setFault(fault: ControlFault): Promise<{ ok: true; fault: ControlFault } | { ok: false; message: string }> {
    if (this.env.EDGEMESH_CONTROL_FAULTS !== "true") {
      return { ok: false, message: "the fault switch is off; set EDGEMESH_CONTROL_FAULTS=true on the control Worker (local and test meshes only)" };
    }
    this.fault = fault;
    this.meta.set("fault", JSON.stringify(fault));
    // Relays answer sidecars in this object's stead, so they must fail (or stall) with it.
    this.pushToRelays([], true);
    return { ok: true, fault };
  }
}
