// The typed events of the watch stream (/v1/watch) and the event log (/v1/events). Every change
// to the registry, health and policy becomes one event with a sequence number; the log is kept in
// MeshControl's SQLite (durable/event-log.ts) so a client that reconnects with its last sequence
// misses nothing. The contract of both, for the control plane and the dashboard. Pure.
import type { RolloutCheck } from "./rollout-run.ts";

/** Where a rollout stands after the event: every rollout event carries it (docs/rollouts.md). */
export interface RolloutEventData {
  service: string;
  state: string;
  /** 1-based step in force, 0 before the first. */
  step: number;
  steps: number;
  stable: string;
  canary: string;
  /** The canary's percent on the shaped routes; the stable subset has the rest. */
  canaryWeight: number;
  /** Why, for people. */
  reason: string;
  /** The policy version the rollout wrote with this event, or null when it wrote none. */
  version: number | null;
  /** "rollout" for its own decisions, else the operator who acted. */
  by: string;
}

export interface MeshEventData {
  "policy.applied": { version: number; generation: number; author: string; message: string };
  "policy.rolled-back": { version: number; generation: number; restoredVersion: number; author: string };
  "endpoint.registered": { service: string; endpointId: string; leaseTtlMs: number; expiresAtMs: number; renewed: boolean };
  "endpoint.deregistered": { service: string; endpointId: string };
  "endpoint.expired": { service: string; endpointId: string; lastHeartbeatMs: number; leaseTtlMs: number };
  "health.changed": { service: string; endpointId: string; source: "active" | "passive"; from: string; to: string; reason: string };
  /**
   * Retired: no longer written. Thousands of isolates pushed every other event out of the log;
   * what sidecars are served is counted per service in sync status instead. The type stays known
   * so that filters of older clients (`?types=snapshot.served`) are answered, not refused.
   */
  "snapshot.served": { service: string; isolateId: string; colo: string; generation: number; policyVersion: number };
  "policy.load-failed": { version: number; message: string; errors: { path: string; message: string }[] };
  "rollout.created": RolloutEventData;
  "rollout.started": RolloutEventData;
  /** A check of the gates: what was measured over which window, against which gates, and the verdict. */
  "rollout.checked": RolloutEventData & { check: RolloutCheck; gates: { minSuccessRate: number; maxP99Ms: number | null; minRequests: number }; failedChecks: number; maxFailedChecks: number };
  "rollout.advanced": RolloutEventData & { fromWeight: number };
  "rollout.paused": RolloutEventData;
  "rollout.resumed": RolloutEventData;
  "rollout.promoted": RolloutEventData;
  "rollout.rolled-back": RolloutEventData;
  "rollout.failed": RolloutEventData;
}

export type MeshEventType = keyof MeshEventData;

export const MESH_EVENT_TYPES: MeshEventType[] = [
  "policy.applied", "policy.rolled-back", "endpoint.registered", "endpoint.deregistered", "endpoint.expired", "health.changed", "snapshot.served",
  "policy.load-failed",
  "rollout.created", "rollout.started", "rollout.checked", "rollout.advanced", "rollout.paused", "rollout.resumed", "rollout.promoted", "rollout.rolled-back",
  "rollout.failed",
];

export type MeshEvent = { [T in MeshEventType]: { seq: number; atMs: number; type: T; data: MeshEventData[T] } }[MeshEventType];

/** The first message on a watch connection: where the replay starts and whether events were lost. */
export interface WatchHello {
  type: "watch.hello";
  /** The client's last sequence (0 for none); events after it follow. */
  since: number;
  /** The newest sequence at connect time. */
  latestSeq: number;
  /** The oldest sequence still kept; events before it were pruned. */
  oldestSeq: number;
  /** True when events between `since` and `oldestSeq` were pruned: the client must resync. */
  gap: boolean;
}
