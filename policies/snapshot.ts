// The compiled per-service snapshot: plain JSON data that crosses from the control plane to the
// sidecar. The sidecar uses it without further validation; everything here is already checked.

export type StringMatchKind = "exact" | "prefix" | "regex";

export interface CompiledStringMatch {
  kind: StringMatchKind;
  value: string;
}

export interface CompiledValueMatch {
  /** Lower-cased for headers; as written for query parameters. */
  name: string;
  kind: StringMatchKind | "present" | "absent";
  value: string;
}

export interface CompiledMatch {
  path?: CompiledStringMatch;
  /** Upper-case methods; absent means any method. */
  methods?: string[];
  headers: CompiledValueMatch[];
  query: CompiledValueMatch[];
}

export interface CompiledSplit {
  /** Destination subset names, in policy order, zero-weight ones dropped. */
  subsets: string[];
  /** Running totals of the weights: subsets[i] takes r in [cumulative[i-1], cumulative[i]). */
  cumulative: number[];
  total: number;
}

export interface CompiledRoute {
  name: string;
  /** Any one must hold; empty means the route matches every request. */
  matches: CompiledMatch[];
  split: CompiledSplit;
  timeoutMs: number;
}

export interface CompiledEndpoint {
  id: string;
  binding?: string;
  url?: string;
  labels: Record<string, string>;
  weight: number;
}

export interface ServiceSnapshot {
  mesh: string;
  service: string;
  /** The policy version this snapshot was compiled from. */
  policyVersion: number;
  /** Bumped on every change that alters any snapshot (policy, registry, health). */
  generation: number;
  snapshotTtlMs: number;
  endpoints: CompiledEndpoint[];
  /** Subset name -> indexes into `endpoints`. The implicit subset "*" holds every endpoint. */
  subsets: Record<string, number[]>;
  routes: CompiledRoute[];
}

/** The whole mesh compiled: one snapshot per service, without the control plane's counters. */
export interface CompiledMesh {
  mesh: string;
  services: Record<string, Omit<ServiceSnapshot, "policyVersion" | "generation">>;
}

/** What `MeshControl.snapshot()` answers: either the new snapshot or a cheap "not modified". */
export type SnapshotReply =
  | { status: "ok"; snapshot: ServiceSnapshot }
  | { status: "not-modified"; generation: number }
  | { status: "unknown-service"; generation: number; services: string[] };

/** Who is asking for a snapshot: recorded by the control plane for sync status. */
export interface SidecarCheckIn {
  service: string;
  isolateId: string;
  colo: string;
  /** The generation the sidecar serves now, or 0 when it has none. */
  knownGeneration: number;
}

/** The RPC surface of MeshControl that sidecars may use: types only, never the implementation. */
export interface MeshControlRpc {
  snapshot(checkIn: SidecarCheckIn): Promise<SnapshotReply>;
}

export const ALL_ENDPOINTS_SUBSET = "*";
