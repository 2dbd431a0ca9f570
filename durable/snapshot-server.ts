// Serving snapshots to sidecars: builds each service's snapshot from the compiled policy and the
// endpoints' health, answers a check-in with the snapshot or a cheap "not modified", and records
// who checked in with what (sync status). Generations only grow within one epoch; the epoch names
// this object's storage, so sidecars recognise a control plane whose storage was reset.
import type { ServiceSnapshot, SidecarCheckIn, SnapshotReply } from "../policies/snapshot.ts";
import { withoutExcluded } from "./health.ts";
import type { CompiledService } from "./active-policy.ts";
import type { MetaTable } from "./sql.ts";
import { syncStatus, type SidecarSeen, type SyncStatus } from "./sync.ts";

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

export type ServedSink = (service: string, checkIn: SidecarCheckIn, snapshot: ServiceSnapshot) => void;

export class SnapshotServer {
  generation: number;
  readonly epoch: string;
  /** Built lazily per service per generation, so a not-modified answer costs a comparison. */
  private readonly snapshots = new Map<string, ServiceSnapshot>();
  /**
   * Per service: its snapshot's content (all but `generation`) when last built, and the generation
   * at which that content last changed. A sidecar whose snapshot is at least that new has identical
   * content, so a change elsewhere in the mesh does not make it download anything.
   */
  private readonly contentChangedAt = new Map<string, { content: string; generation: number }>();
  private readonly sidecars = new Map<string, SidecarSeen>();
  calls = 0;

  constructor(
    private readonly meta: MetaTable,
    private readonly inputs: SnapshotInputs,
    private readonly onServed: ServedSink,
    private readonly startedAtMs: number,
  ) {
    this.generation = Number(meta.get("generation") ?? 0);
    let epoch = meta.get("epoch");
    if (!epoch) {
      epoch = crypto.randomUUID();
      meta.set("epoch", epoch);
    }
    this.epoch = epoch;
  }

  /** Something that may alter snapshots changed: every sidecar must revalidate. */
  changed(): void {
    this.generation++;
    this.meta.set("generation", this.generation);
    this.snapshots.clear();
  }

  /** Records the check-in; the caller has already merged its passive-health report. */
  checkIn(checkIn: SidecarCheckIn, nowMs: number): SnapshotReply {
    if (++this.calls % 1000 === 0) this.forgetGone(nowMs);
    const seen = this.sidecars.get(checkIn.isolateId);
    const record: SidecarSeen = {
      service: checkIn.service,
      isolateId: checkIn.isolateId,
      colo: checkIn.colo,
      generation: checkIn.knownGeneration,
      policyVersion: checkIn.knownPolicyVersion ?? 0,
      sentGeneration: seen?.sentGeneration ?? 0,
      firstSeenMs: seen?.firstSeenMs ?? nowMs,
      lastSeenMs: nowMs,
      checkIns: (seen?.checkIns ?? 0) + 1,
    };
    this.sidecars.set(checkIn.isolateId, record);
    // A sidecar that serves another epoch's snapshot (this storage was reset) gets a full one.
    const sameEpoch = checkIn.knownEpoch === undefined || checkIn.knownEpoch === this.epoch;
    if (sameEpoch && checkIn.knownGeneration === this.generation && this.inputs.policyVersion() > 0) return { status: "not-modified", generation: this.generation };
    const snap = this.snapshot(checkIn.service, nowMs);
    const changedAt = this.contentChangedAt.get(checkIn.service)?.generation;
    if (snap && sameEpoch && changedAt !== undefined && checkIn.knownGeneration >= changedAt && checkIn.knownGeneration < this.generation) {
      // Only other services changed since the isolate's snapshot: it already serves the current
      // content, so it counts as synced at the current generation.
      record.generation = this.generation;
      return { status: "not-modified", generation: this.generation };
    }
    if (!snap) return { status: "unknown-service", generation: this.generation, services: this.inputs.serviceNames() };
    record.sentGeneration = snap.generation;
    this.onServed(checkIn.service, checkIn, snap);
    return { status: "ok", snapshot: snap };
  }

  /** The snapshot a sidecar of `service` would receive now, or null when there is no such service. */
  snapshot(service: string, nowMs: number): ServiceSnapshot | null {
    const cached = this.snapshots.get(service);
    if (cached) return cached;
    const compiled = this.inputs.compiled(service);
    if (!compiled) return null;
    const excluded = new Set<number>();
    compiled.endpoints.forEach((e, i) => {
      if (this.inputs.isExcluded(service, e.id, nowMs)) excluded.add(i);
    });
    const snap: ServiceSnapshot = {
      ...compiled,
      endpoints: excluded.size === 0 ? compiled.endpoints : compiled.endpoints.map((e, i) => (excluded.has(i) ? { ...e, healthy: false } : e)),
      subsets: withoutExcluded(compiled.subsets, excluded),
      policyVersion: this.inputs.policyVersion(),
      generation: this.generation,
      epoch: this.epoch,
    };
    this.snapshots.set(service, snap);
    const content = JSON.stringify({ ...snap, generation: 0 });
    if (this.contentChangedAt.get(service)?.content !== content) this.contentChangedAt.set(service, { content, generation: this.generation });
    return snap;
  }

  /** Isolates come and go; one silent for SIDECAR_FORGET_AFTER_MS is forgotten. */
  private forgetGone(nowMs: number): void {
    for (const [id, s] of this.sidecars) if (nowMs - s.lastSeenMs > SIDECAR_FORGET_AFTER_MS) this.sidecars.delete(id);
  }

  sidecarsSeen(): SidecarSeen[] {
    return [...this.sidecars.values()];
  }

  /** Is the current generation (or `generation`) served by every sidecar seen recently? */
  sync(generation: number | undefined, nowMs: number): SyncStatus & { snapshotCalls: number; snapshotCallsPerSecond: number } {
    this.forgetGone(nowMs);
    const status = syncStatus(this.sidecars.values(), generation ?? this.generation, this.inputs.policyVersion(), nowMs, (s) => Math.max(5_000, 3 * this.inputs.ttlMs(s)));
    const seconds = Math.max(0.001, (nowMs - this.startedAtMs) / 1000);
    return { ...status, snapshotCalls: this.calls, snapshotCallsPerSecond: this.calls / seconds };
  }
}
