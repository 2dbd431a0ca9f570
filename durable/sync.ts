// Sync status, like `istioctl proxy-status`: which sidecar isolates serve which generation, and
// whether a change is live everywhere. Pure: MeshControl passes in what it has seen.

export interface SidecarSeen {
  service: string;
  isolateId: string;
  colo: string;
  /** The generation the isolate said it serves at its last check-in (acknowledged). */
  generation: number;
  policyVersion: number;
  /** The generation the control plane last sent it (it serves it once installed). */
  sentGeneration: number;
  firstSeenMs: number;
  lastSeenMs: number;
  checkIns: number;
}

export type SidecarSyncState = "synced" | "behind" | "gone";

export interface SidecarSync extends SidecarSeen {
  state: SidecarSyncState;
  lastSeenAgoMs: number;
}

export interface SyncStatus {
  /** The generation every sidecar should serve for the change to be live. */
  targetGeneration: number;
  policyVersion: number;
  /** True when every sidecar seen recently serves the target generation or a later one. */
  live: boolean;
  /** Recently seen sidecars that still serve an older generation, as "service/isolate@colo". */
  laggards: string[];
  sidecars: SidecarSync[];
  /** Sidecars not seen for longer than their allowance; they do not count against `live`. */
  gone: number;
  checkedAtMs: number;
}

export const sidecarLabel = (s: Pick<SidecarSeen, "service" | "isolateId" | "colo">) => `${s.service}/${s.isolateId}@${s.colo}`;

/**
 * `goneAfterMs(service)` is how long a sidecar may stay silent before it is presumed gone (its
 * isolate evicted); a sidecar checks in once per TTL while it has traffic.
 */
export function syncStatus(
  seen: Iterable<SidecarSeen>,
  targetGeneration: number,
  policyVersion: number,
  nowMs: number,
  goneAfterMs: (service: string) => number,
): SyncStatus {
  const sidecars: SidecarSync[] = [];
  for (const s of seen) {
    const ago = nowMs - s.lastSeenMs;
    const state: SidecarSyncState = ago > goneAfterMs(s.service) ? "gone" : s.generation >= targetGeneration ? "synced" : "behind";
    sidecars.push({ ...s, state, lastSeenAgoMs: ago });
  }
  sidecars.sort((a, b) => a.service.localeCompare(b.service) || a.isolateId.localeCompare(b.isolateId));
  const laggards = sidecars.filter((s) => s.state === "behind").map(sidecarLabel);
  return {
    targetGeneration,
    policyVersion,
    live: laggards.length === 0,
    laggards,
    sidecars,
    gone: sidecars.filter((s) => s.state === "gone").length,
    checkedAtMs: nowMs,
  };
}
