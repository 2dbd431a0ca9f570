// Serving snapshots to sidecars. Each service's snapshot (its compiled policy, its endpoints'
// health) has its own generation, drawn from one mesh-wide counter at the moment the service's
// snapshot content last changed: a change to reviews moves only reviews' generation, so only
// reviews' sidecars download anything. A check-in is answered with the snapshot or a cheap
// "not modified", and recorded (sync status, counters); serving writes no event.
// Generations only grow within one epoch; the epoch names this object's storage, so sidecars
// recognise a control plane whose storage was reset.
import type { ServiceSnapshot, SidecarCheckIn, SnapshotReply } from "../policies/snapshot.ts";
import type { CompiledService } from "./active-policy.ts";
import { contentHash } from "./content-hash.ts";
import { markExcluded } from "./health.ts";
import type { MetaTable } from "./sql.ts";
import { syncStatus, type ServiceGeneration, type SidecarSeen, type SyncStatus } from "./sync.ts";

/** What the snapshot server builds snapshots from. */
export interface SnapshotInputs {
  policyVersion(): number;
  compiled(service: string): CompiledService | undefined;
  serviceNames(): string[];
  isExcluded(service: string, endpointId: string, nowMs: number): boolean;
  ttlMs(service: string): number;
}

/** How long sync status keeps listing a silent sidecar (as "gone") before forgetting it. */
export const SIDECAR_FORGET_AFTER_MS = 10 * 60_000;
/** Sync status tracks at most this many isolates, the most recently seen (a few MB). */
export const MAX_SIDECARS_TRACKED = 20_000;

interface Current {
  snapshot: ServiceSnapshot;
  hash: string;
}

interface ServiceCounters {
  snapshotsServed: number;
  notModified: number;
}

export class SnapshotServer {
  /** The mesh-wide counter every service generation is drawn from; grows on every change. */
  meshGeneration: number;
  readonly epoch: string;
  private readonly current = new Map<string, Current>();
  /** Services whose snapshot may have changed since it was built. */
  private readonly stale = new Set<string>();
  private readonly sidecars = new Map<string, SidecarSeen>();
  private readonly counters = new Map<string, ServiceCounters>();
  /** Check-ins answered here (not through a relay). */
  calls = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly meta: MetaTable,
    private readonly inputs: SnapshotInputs,
    private readonly startedAtMs: number,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS service_generations (
      service TEXT PRIMARY KEY,
      generation INTEGER NOT NULL,
      policy_version INTEGER NOT NULL,
      content_hash TEXT NOT NULL
    )`);
    this.meshGeneration = Number(meta.get("generation") ?? 0);
    let epoch = meta.get("epoch");
    if (!epoch) {
      epoch = crypto.randomUUID();
      meta.set("epoch", epoch);
    }
    this.epoch = epoch;
  }

  /**
   * These services' snapshots may have changed: build them now, and give each whose content did
   * change the next generation. Returns the services that moved.
   */
  refresh(services: Iterable<string>, nowMs: number): string[] {
    const moved: string[] = [];
    for (const service of services) {
      this.stale.add(service);
      const before = this.current.get(service)?.snapshot.generation ?? this.storedGeneration(service)?.generation;
      const now = this.build(service, nowMs);
      if (now && now.snapshot.generation !== before) moved.push(service);
    }
    return moved;
  }

  /** These services left the mesh: their sidecars get "unknown service" from now on. */
  forget(services: Iterable<string>): void {
    for (const service of services) {
      this.current.delete(service);
      this.stale.delete(service);
      this.sql.exec("DELETE FROM service_generations WHERE service = ?", service);
    }
  }

  private storedGeneration(service: string): { generation: number; policyVersion: number; hash: string } | undefined {
    const row = this.sql.exec<{ generation: number; policy_version: number; content_hash: string }>(
      "SELECT generation, policy_version, content_hash FROM service_generations WHERE service = ?", service,
    ).toArray()[0];
    return row ? { generation: row.generation, policyVersion: row.policy_version, hash: row.content_hash } : undefined;
  }

  /**
   * The service's snapshot as of now, built when stale or never built. A snapshot whose content
   * is what was stored keeps its generation (and policy version): after a restart, or after an
   * apply that did not touch this service, its sidecars have nothing to download.
   */
  private build(service: string, nowMs: number): Current | undefined {
    const known = this.current.get(service);
    if (known && !this.stale.has(service)) return known;
    this.stale.delete(service);
    const compiled = this.inputs.compiled(service);
    if (!compiled) {
      this.current.delete(service);
      return undefined;
    }
    const healthy = markExcluded(compiled.endpoints, (id) => this.inputs.isExcluded(service, id, nowMs));
    const content = { ...compiled, endpoints: healthy };
    const hash = contentHash(JSON.stringify(content));
    const stored = known ? { generation: known.snapshot.generation, policyVersion: known.snapshot.policyVersion, hash: known.hash } : this.storedGeneration(service);
    let generation: number;
    let policyVersion: number;
    if (stored && stored.hash === hash) {
      ({ generation, policyVersion } = stored);
    } else {
      generation = ++this.meshGeneration;
      policyVersion = this.inputs.policyVersion();
      this.meta.set("generation", generation);
      this.sql.exec(
        `INSERT INTO service_generations (service, generation, policy_version, content_hash) VALUES (?, ?, ?, ?)
         ON CONFLICT(service) DO UPDATE SET generation = excluded.generation, policy_version = excluded.policy_version, content_hash = excluded.content_hash`,
        service, generation, policyVersion, hash,
      );
    }
    const current: Current = { snapshot: { ...content, policyVersion, generation, epoch: this.epoch }, hash };
    this.current.set(service, current);
    return current;
  }

  /** The snapshot a sidecar of `service` would receive now, or null when there is no such service. */
  snapshot(service: string, nowMs: number): ServiceSnapshot | null {
    return this.build(service, nowMs)?.snapshot ?? null;
  }

  /** The service's current generation, or undefined when it has none. */
  generationOf(service: string, nowMs: number): number | undefined {
    return this.build(service, nowMs)?.snapshot.generation;
  }

  /** Answers and records a check-in; the caller has already merged its passive-health report. */
  checkIn(checkIn: SidecarCheckIn, nowMs: number): SnapshotReply {
    if (++this.calls % 1000 === 0) this.forgetGone(nowMs);
    // A sidecar that serves another epoch's snapshot (this storage was reset) serves nothing of ours.
    const sameEpoch = checkIn.knownEpoch === undefined || checkIn.knownEpoch === "" || checkIn.knownEpoch === this.epoch;
    const record = this.see(checkIn, sameEpoch ? checkIn.knownGeneration : 0, nowMs);
    const current = this.build(checkIn.service, nowMs);
    if (!current) return { status: "unknown-service", generation: this.meshGeneration, services: this.inputs.serviceNames() };
    const counters = this.countersOf(checkIn.service);
    if (sameEpoch && checkIn.knownEpoch !== "" && checkIn.knownGeneration === current.snapshot.generation) {
      counters.notModified++;
      return { status: "not-modified", generation: current.snapshot.generation };
    }
    counters.snapshotsServed++;
    record.sentGeneration = current.snapshot.generation;
    return { status: "ok", snapshot: current.snapshot };
  }

  /** Records what an isolate serves (from its own check-in, or as a relay saw it: `via`). */
  see(checkIn: Pick<SidecarCheckIn, "service" | "isolateId" | "colo" | "knownPolicyVersion">, generation: number, nowMs: number, via?: string, checkIns = 1): SidecarSeen {
    const seen = this.sidecars.get(checkIn.isolateId);
    const record: SidecarSeen = {
      service: checkIn.service,
      isolateId: checkIn.isolateId,
      colo: checkIn.colo,
      generation,
      policyVersion: checkIn.knownPolicyVersion ?? 0,
      sentGeneration: seen?.sentGeneration ?? 0,
      firstSeenMs: seen?.firstSeenMs ?? nowMs,
      lastSeenMs: nowMs,
      checkIns: (seen?.checkIns ?? 0) + checkIns,
    };
    if (via !== undefined) record.via = via;
    // Re-inserted so the map stays in order of last sight, and the oldest go first.
    this.sidecars.delete(checkIn.isolateId);
    this.sidecars.set(checkIn.isolateId, record);
    if (this.sidecars.size > MAX_SIDECARS_TRACKED) this.sidecars.delete(this.sidecars.keys().next().value!);
    return record;
  }

  private countersOf(service: string): ServiceCounters {
    let c = this.counters.get(service);
    if (!c) this.counters.set(service, (c = { snapshotsServed: 0, notModified: 0 }));
    return c;
  }

  /** Counts answers a relay gave on the control plane's behalf. */
  countRelayed(service: string, snapshotsServed: number, notModified: number): void {
    const c = this.countersOf(service);
    c.snapshotsServed += snapshotsServed;
    c.notModified += notModified;
  }

  /** Isolates come and go; one silent for SIDECAR_FORGET_AFTER_MS is forgotten. */
  private forgetGone(nowMs: number): void {
    for (const [id, s] of this.sidecars) if (nowMs - s.lastSeenMs > SIDECAR_FORGET_AFTER_MS) this.sidecars.delete(id);
  }

  sidecarsSeen(): SidecarSeen[] {
    return [...this.sidecars.values()];
  }

  /**
   * Is the change that produced mesh generation `target` (default: the latest) served by every
   * sidecar seen recently? `goneAfterMs(service)` is how long a sidecar may be silent.
   */
  sync(target: number | undefined, nowMs: number, goneAfterMs: (service: string) => number): SyncStatus & { snapshotCalls: number; snapshotCallsPerSecond: number } {
    this.forgetGone(nowMs);
    const services = new Map<string, ServiceGeneration>();
    for (const name of this.inputs.serviceNames()) {
      const generation = this.generationOf(name, nowMs);
      if (generation === undefined) continue;
      const c = this.countersOf(name);
      services.set(name, { generation, snapshotsServed: c.snapshotsServed, notModified: c.notModified });
    }
    const status = syncStatus(this.sidecars.values(), target ?? this.meshGeneration, this.inputs.policyVersion(), nowMs, services, goneAfterMs);
    const seconds = Math.max(0.001, (nowMs - this.startedAtMs) / 1000);
    return { ...status, snapshotCalls: this.calls, snapshotCallsPerSecond: this.calls / seconds };
  }
}
