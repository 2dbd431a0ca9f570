// MeshRelay: the distribution tier between the authoritative MeshControl and the sidecar isolates
// (docs/distribution.md). One relay per region and shard ("<mesh>/<region>/<shard>", created with
// the region's location hint) answers its isolates' check-ins from the snapshots it holds, so the
// authority's load does not grow with the number of isolates. The authority pushes every new
// generation of a service to the relays that hold it; the relay reports at most once per
// `reportEveryMs` while it has traffic (isolates seen, passive-health counts summed, answers
// given, and what it holds, so a lost push is repaired by the next report). Held snapshots are
// stored, so a relay that restarts while the authority is down still serves.
import { DurableObject } from "cloudflare:workers";
import { meshOfRelay } from "../policies/distribution.ts";
import type { EndpointOutcome, MeshControlRpc, ServiceSnapshot, SidecarCheckIn, SnapshotReply } from "../policies/snapshot.ts";
import type { MeshRelayRpc, RelayAuthorityRpc, RelayedIsolate, RelayFault, RelayReport, RelayUpdate } from "./relay-protocol.ts";
import { getParts, MetaTable, putParts } from "./sql.ts";

export interface MeshRelayEnv {
  MESH_CONTROL: DurableObjectNamespace;
}

/** A relay that heard nothing from the authority for this long asks before answering. */
export const RELAY_STALE_AFTER_MS = 5_000;
/** Without check-ins for this long a relay stops reporting (and the authority forgets it). */
export const RELAY_IDLE_AFTER_MS = 60_000;
/** How long an "unknown service" answer from the authority is reused. */
const UNKNOWN_SERVICE_MS = 1_000;

interface Answers {
  snapshotsServed: number;
  notModified: number;
}

export class MeshRelay extends DurableObject<MeshRelayEnv> implements MeshControlRpc, MeshRelayRpc {
  private readonly snapshots = new Map<string, ServiceSnapshot>();
  private epoch = "";
  private readonly unknownUntil = new Map<string, number>();
  private services: string[] = [];
  private readonly isolates = new Map<string, RelayedIsolate>();
  private readonly outcomes = new Map<string, Map<string, EndpointOutcome>>();
  private readonly answers = new Map<string, Answers>();
  private lastHeardMs = 0;
  private lastTrafficMs = 0;
  private reportEveryMs = 1_000;
  private fault: RelayFault = { snapshot: "ok", delayMs: 0 };
  private syncing: Promise<void> | undefined;
  private lastSyncError: string | undefined;
  /** After a failed report, check-ins do not ask the authority again before this. */
  private retrySyncAtMs = 0;
  /** The report alarm is set (known in memory, so a check-in need not ask storage). */
  private alarmSet = false;
  private mesh: string;
  private readonly meta: MetaTable;
  /** "<mesh>/<region>/<shard>", for people. */
  private readonly label: string;

  constructor(ctx: DurableObjectState, env: MeshRelayEnv) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS relay_snapshots (service TEXT NOT NULL, part INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (service, part));
    `);
    this.meta = new MetaTable(ctx.storage.sql);
    // The name is known when a sidecar made the id by name, but not when the alarm or a push wakes
    // the object, so the mesh it learned is kept.
    this.mesh = this.meta.get("mesh") ?? "";
    if (!this.mesh && ctx.id.name) {
      this.learnMesh(meshOfRelay(ctx.id.name));
      this.meta.set("name", ctx.id.name);
    }
    this.label = ctx.id.name ?? this.meta.get("name") ?? ctx.id.toString();
    for (const { service } of ctx.storage.sql.exec<{ service: string }>("SELECT DISTINCT service FROM relay_snapshots").toArray()) {
      const text = getParts(ctx.storage.sql, "relay_snapshots", "service", service);
      if (!text) continue;
      const snap = JSON.parse(text) as ServiceSnapshot;
      this.snapshots.set(service, snap);
      this.epoch = snap.epoch;
    }
  }

  private learnMesh(mesh: string): void {
    this.mesh = mesh;
    this.meta.set("mesh", mesh);
    this.retrySyncAtMs = 0;
  }

  private name(): string {
    return this.label;
  }

  private authority(): RelayAuthorityRpc {
    const ns = this.env.MESH_CONTROL;
    return ns.get(ns.idFromName(this.mesh)) as unknown as RelayAuthorityRpc;
  }

  /** A sidecar's check-in, answered from what this relay holds. */
  async snapshot(checkIn: SidecarCheckIn): Promise<SnapshotReply> {
    const now = Date.now();
    if (!this.mesh && checkIn.mesh) this.learnMesh(checkIn.mesh);
    this.lastTrafficMs = now;
    this.record(checkIn, now);
    await this.ensureAlarm(now);
    const stale = now - this.lastHeardMs > Math.max(RELAY_STALE_AFTER_MS, 3 * this.reportEveryMs);
    const lacking = !this.snapshots.has(checkIn.service) && (this.unknownUntil.get(checkIn.service) ?? 0) <= now;
    if ((stale || lacking) && now >= this.retrySyncAtMs) {
      // Cold, long idle, or asked for something new: hear from the authority first. Failing that,
      // what it holds is still the last known good answer.
      await this.sync([checkIn.service]).catch(() => {});
    }
    if (this.fault.snapshot === "fail") throw new Error("control plane fault switch: snapshot calls fail (PUT /v1/debug/fault to clear)");
    if (this.fault.snapshot === "slow") await new Promise((resolve) => setTimeout(resolve, this.fault.delayMs));
    const snap = this.snapshots.get(checkIn.service);
    if (!snap) {
      if ((this.unknownUntil.get(checkIn.service) ?? 0) > now) return { status: "unknown-service", generation: 0, services: this.services };
      throw new Error(`relay ${this.name()} could not reach the control plane: ${this.lastSyncError ?? "no answer"}`);
    }
    const answers = this.answersOf(checkIn.service);
    if (checkIn.knownEpoch === snap.epoch && checkIn.knownGeneration === snap.generation) {
      answers.notModified++;
      return { status: "not-modified", generation: snap.generation };
    }
    answers.snapshotsServed++;
    return { status: "ok", snapshot: snap };
  }

  private record(checkIn: SidecarCheckIn, nowMs: number): void {
    const seen = this.isolates.get(checkIn.isolateId);
    this.isolates.set(checkIn.isolateId, {
      service: checkIn.service,
      isolateId: checkIn.isolateId,
      colo: checkIn.colo,
      generation: checkIn.knownGeneration,
      policyVersion: checkIn.knownPolicyVersion ?? 0,
      epoch: checkIn.knownEpoch ?? "",
      lastSeenMs: nowMs,
      checkIns: (seen?.checkIns ?? 0) + 1,
    });
    if (!checkIn.outcomes?.length) return;
    let sums = this.outcomes.get(checkIn.service);
    if (!sums) this.outcomes.set(checkIn.service, (sums = new Map()));
    for (const o of checkIn.outcomes) {
      const sum = sums.get(o.endpointId);
      if (!sum) {
        sums.set(o.endpointId, { ...o });
        continue;
      }
      sum.requests += o.requests;
      sum.failures += o.failures;
      sum.latencyMsSum += o.latencyMsSum;
      sum.latencyMsMax = Math.max(sum.latencyMsMax, o.latencyMsMax);
    }
  }

  private answersOf(service: string): Answers {
    let a = this.answers.get(service);
    if (!a) this.answers.set(service, (a = { snapshotsServed: 0, notModified: 0 }));
    return a;
  }

  /** The authority's push of new generations (or of the fault switch). */
  async push(update: RelayUpdate): Promise<void> {
    this.apply(update, Date.now());
  }

  private apply(update: RelayUpdate, nowMs: number): void {
    this.lastHeardMs = nowMs;
    this.reportEveryMs = update.reportEveryMs;
    this.fault = update.fault;
    this.services = update.services;
    const sql = this.ctx.storage.sql;
    if (update.epoch !== this.epoch) {
      // The authority's storage was reset: nothing held is valid any more.
      this.snapshots.clear();
      sql.exec("DELETE FROM relay_snapshots");
      this.epoch = update.epoch;
    }
    for (const snap of update.snapshots) {
      const held = this.snapshots.get(snap.service);
      if (held && held.generation >= snap.generation) continue;
      this.snapshots.set(snap.service, snap);
      this.unknownUntil.delete(snap.service);
      putParts(sql, "relay_snapshots", "service", snap.service, JSON.stringify(snap));
    }
    for (const service of update.unknown) {
      this.snapshots.delete(service);
      sql.exec("DELETE FROM relay_snapshots WHERE service = ?", service);
      this.unknownUntil.set(service, nowMs + UNKNOWN_SERVICE_MS);
    }
  }

  /** One report to the authority (one at a time); what it carried is put back if it fails. */
  private sync(wanted: string[] = []): Promise<void> {
    this.syncing ??= this.report(wanted).finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async report(wanted: string[]): Promise<void> {
    const report: RelayReport = {
      relayId: this.ctx.id.toString(),
      relay: this.name(),
      epoch: this.epoch,
      held: [...this.snapshots.values()].map((s) => [s.service, s.generation]),
      wanted: wanted.filter((s) => !this.snapshots.has(s)),
      isolates: [...this.isolates.values()],
      outcomes: [...this.outcomes].map(([service, sums]) => ({ service, outcomes: [...sums.values()] })),
      answers: [...this.answers].map(([service, a]) => ({ service, ...a })),
    };
    this.isolates.clear();
    this.outcomes.clear();
    this.answers.clear();
    try {
      if (!this.mesh) throw new Error("the relay does not know its mesh (create it with MESH_RELAY.idFromName(relayName(...)))");
      this.apply(await this.authority().relaySync(report), Date.now());
      this.lastSyncError = undefined;
    } catch (err) {
      this.lastSyncError = err instanceof Error ? err.message : String(err);
      this.retrySyncAtMs = Date.now() + 1_000;
      // Isolates and counts go with the next report; newer sightings win.
      for (const i of report.isolates) if (!this.isolates.has(i.isolateId)) this.isolates.set(i.isolateId, i);
      for (const o of report.outcomes) {
        const sums = this.outcomes.get(o.service) ?? new Map<string, EndpointOutcome>();
        for (const e of o.outcomes) if (!sums.has(e.endpointId)) sums.set(e.endpointId, e);
        this.outcomes.set(o.service, sums);
      }
      for (const a of report.answers) {
        const mine = this.answersOf(a.service);
        mine.snapshotsServed += a.snapshotsServed;
        mine.notModified += a.notModified;
      }
      throw err;
    }
  }

  /** Sets the report alarm unless one is known to be set (a storage call only after a restart). */
  private async ensureAlarm(nowMs: number): Promise<void> {
    if (this.alarmSet) return;
    this.alarmSet = true;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(nowMs + this.reportEveryMs);
  }

  /** Reports while isolates keep checking in; goes quiet (and is forgotten upstream) when idle. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.alarmSet = false;
    await this.sync().catch(() => {});
    if (now - this.lastTrafficMs < RELAY_IDLE_AFTER_MS) {
      this.alarmSet = true;
      await this.ctx.storage.setAlarm(Date.now() + this.reportEveryMs);
    }
  }

  /** What this relay holds and knows, for the admin API and tests. */
  async status(): Promise<{ relay: string; mesh: string; epoch: string; held: Record<string, number>; lastHeardMs: number; reportEveryMs: number; lastSyncError: string | null }> {
    return {
      relay: this.name(),
      mesh: this.mesh,
      epoch: this.epoch,
      held: Object.fromEntries([...this.snapshots.values()].map((s) => [s.service, s.generation])),
      lastHeardMs: this.lastHeardMs,
      reportEveryMs: this.reportEveryMs,
      lastSyncError: this.lastSyncError ?? null,
    };
  }
}
