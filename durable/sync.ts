// Sync status, like `istioctl proxy-status`: which sidecar isolates serve which generation of
// their service's snapshot, and whether a change is live everywhere. Pure: MeshControl passes in
// what it has seen and each service's current generation.

export interface SidecarSeen {
  service: string;
  isolateId: string;
  colo: string;
  /** The generation of its service's snapshot the isolate said it serves at its last check-in. */
  generation: number;
  policyVersion: number;
  /** The generation the control plane last sent it (it serves it once installed). */
  sentGeneration: number;
  firstSeenMs: number;
  lastSeenMs: number;
  checkIns: number;
  /** The relay it checks in with, when it does not call the control plane itself. */
  via?: string;
}

export type SidecarSyncState = "synced" | "behind" | "gone";

export interface SidecarSync extends SidecarSeen {
  state: SidecarSyncState;
  lastSeenAgoMs: number;
}

export interface ServiceSync {
  /** The service's current snapshot generation. */
  generation: number;
  /** The generation its sidecars must serve for the target to be live (see syncStatus). */
  required: number;
  live: boolean;
  synced: number;
  behind: number;
  gone: number;
  /** Full snapshots sent and "not modified" answers since the control plane started. */
  snapshotsServed: number;
  notModified: number;
}

export interface SyncStatus {
  /** The mesh generation the change being asked about produced (default: the current one). */
  targetGeneration: number;
  policyVersion: number;
  /** True when every sidecar seen recently serves what its service had at the target or later. */
  live: boolean;
  /** Recently seen sidecars that still serve an older snapshot, as "service/isolate@colo". */
  laggards: string[];
  sidecars: SidecarSync[];
  /** Per service: its generation and how many of its sidecars are synced, behind and gone. */
  services: Record<string, ServiceSync>;
  /** Sidecars not seen for longer than their allowance; they do not count against `live`. */
  gone: number;
  checkedAtMs: number;
}

export const sidecarLabel = (s: Pick<SidecarSeen, "service" | "isolateId" | "colo">) => `${s.service}/${s.isolateId}@${s.colo}`;

export interface ServiceGeneration {
  generation: number;
  snapshotsServed: number;
  notModified: number;
}

/**
 * Generations are per service but drawn from one mesh-wide counter, so a change that produced mesh
 * generation G is live for a sidecar of service S when it serves S's snapshot as of G: at least
 * min(G, S's current generation) (S's generation only moves when S's snapshot changes).
 * `goneAfterMs(service)` is how long a sidecar may stay silent before it is presumed gone.
 */
export function syncStatus(
  seen: Iterable<SidecarSeen>,
  targetGeneration: number,
  policyVersion: number,
  nowMs: number,
  services: ReadonlyMap<string, ServiceGeneration>,
  goneAfterMs: (service: string) => number,
): SyncStatus {
  const perService: Record<string, ServiceSync> = {};
  for (const [name, g] of services) {
    perService[name] = {
      generation: g.generation,
      required: Math.min(targetGeneration, g.generation),
      live: true,
      synced: 0,
      behind: 0,
      gone: 0,
      snapshotsServed: g.snapshotsServed,
      notModified: g.notModified,
    };
  }
  const sidecars: SidecarSync[] = [];
  for (const s of seen) {
    const ago = nowMs - s.lastSeenMs;
    const summary = perService[s.service];
    const required = summary?.required ?? targetGeneration;
    const state: SidecarSyncState = ago > goneAfterMs(s.service) ? "gone" : s.generation >= required ? "synced" : "behind";
    sidecars.push({ ...s, state, lastSeenAgoMs: ago });
    if (summary) {
      summary[state]++;
      if (state === "behind") summary.live = false;
    }
  }
  sidecars.sort((a, b) => a.service.localeCompare(b.service) || a.isolateId.localeCompare(b.isolateId));
  const laggards = sidecars.filter((s) => s.state === "behind").map(sidecarLabel);
  return {
    targetGeneration,
    policyVersion,
    live: laggards.length === 0,
    laggards,
    sidecars,
    services: perService,
    gone: sidecars.filter((s) => s.state === "gone").length,
    checkedAtMs: nowMs,
  };
}
