// A staged rollout's run as plain data: what MeshControl keeps for a service that declares a
// `rollout` (durable/rollouts.ts, driven by the state machine of durable/rollout-machine.ts), what
// GET /v1/rollouts answers, and what rollout events carry. Defined once for the control plane and
// the dashboard that reads it. Pure.

export const ROLLOUT_STATES = ["pending", "progressing", "paused", "promoted", "rolled-back", "failed"] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** What an operator may do to a run (POST /v1/rollouts/<service>/<action>). */
export const ROLLOUT_ACTIONS = ["pause", "resume", "promote", "abort"] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

/** What a run needs of its `rollout` block, resolved (steps spelled out). */
export interface RolloutSpec {
  stable: string;
  canary: string;
  routes: string[];
  /** The canary's percent at each step. */
  weights: number[];
  intervalMs: number;
  gates: { minSuccessRate: number; maxP99Ms: number | null; minRequests: number };
  maxFailedChecks: number;
  progressDeadlineMs: number;
  onProgressDeadline: "fail" | "hold";
  metricsDelayMs: number;
  /** A test audience sees the canary while the rollout runs. */
  audience: boolean;
}

/** What a check measured of the canary over its window. */
export interface CanaryMeasurement {
  /** Requests the canary served in the window (sampling weights applied). */
  requests: number;
  /** Share answered below 500; null without requests. */
  successRate: number | null;
  /** Weighted p99 latency in ms; null without requests. */
  p99Ms: number | null;
}

export interface RolloutCheck {
  atMs: number;
  step: number;
  canaryWeight: number;
  /** The measured window: [fromMs, toMs), whole seconds. */
  window: { fromMs: number; toMs: number };
  measured: CanaryMeasurement | null;
  source: "local" | "edge" | null;
  /** Why nothing could be measured (telemetry unreachable), when so. */
  error: string | null;
  verdict: "pass" | "fail" | "insufficient";
  /** The gates the canary missed, or why it could not be judged, for people; empty on a pass. */
  findings: string[];
}

export interface RolloutRun {
  service: string;
  /** The rollout block and the two subsets' selectors, canonical: another value is another rollout. */
  specKey: string;
  spec: RolloutSpec;
  state: RolloutState;
  /** Index into spec.weights of the step in force; -1 before the first step. */
  step: number;
  /** The canary's percent of traffic on the shaped routes now (stable has the rest). */
  canaryWeight: number;
  failedChecks: number;
  /** Why the run is where it is, for people. */
  reason: string;
  createdAtMs: number;
  /** When the progress deadline clock started: the step's start, or a resume. */
  progressSinceMs: number;
  /** The next check measures from here. */
  windowFromMs: number;
  /** When the run is next due; null when nothing is (paused, ended). */
  nextCheckAtMs: number | null;
  /** For a paused run: the state resume returns to. */
  resumeTo: "pending" | "progressing" | null;
  lastCheck: RolloutCheck | null;
  /** The policy version the rollout last wrote, or null before it wrote any. */
  policyVersion: number | null;
  updatedAtMs: number;
  endedAtMs: number | null;
  /** Bumped by every change: a decision taken on an older revision is dropped. */
  revision: number;
}

/** A run as the API shows it: the stable subset's share spelled out. */
export interface RolloutStatus extends RolloutRun {
  stableWeight: number;
}
