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
  /**
   * Longest gap between chunks of a response body before the sidecar aborts it (ms); 0: bodies are
   * not watched (no idle limit; a response counts until its headers only).
   */
  streamIdleTimeoutMs: number;
  retry: CompiledRetry;
  hedge?: CompiledHedge;
  fault?: CompiledFault;
  mirror?: CompiledMirror;
}

export interface CompiledEndpoint {
  id: string;
  binding?: string;
  url?: string;
  labels: Record<string, string>;
  weight: number;
  /**
   * Set to false by the control plane when active or passive health excludes the endpoint; such
   * an endpoint is also left out of `subsets` (unless every member of a subset is excluded).
   */
  healthy?: boolean;
}

export interface ServiceSnapshot {
  mesh: string;
  service: string;
  /** The policy version this snapshot was compiled from. */
  policyVersion: number;
  /** Bumped on every change that alters any snapshot (policy, registry, health). */
  generation: number;
  /**
   * Names the control plane's storage. Generations only grow within one epoch; a control plane
   * whose storage was reset starts a new epoch (and counts generations from 1 again), so a sidecar
   * takes any snapshot of a different epoch instead of refusing it as older.
   */
  epoch: string;
  snapshotTtlMs: number;
  endpoints: CompiledEndpoint[];
  /** Subset name -> indexes into `endpoints`. The implicit subset "*" holds every endpoint. */
  subsets: Record<string, number[]>;
  routes: CompiledRoute[];
  loadBalancer: CompiledLoadBalancer;
  circuitBreaker: CompiledCircuitBreaker;
  outlierDetection: CompiledOutlierDetection;
  retryBudget: CompiledRetryBudget;
}

/** The whole mesh compiled: one snapshot per service, without the control plane's counters. */
export interface CompiledMesh {
  mesh: string;
  services: Record<string, Omit<ServiceSnapshot, "policyVersion" | "generation" | "epoch">>;
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
  /** The policy version the sidecar serves now, or 0 when it has none. */
  knownPolicyVersion?: number;
  /** The epoch of the snapshot the sidecar serves; "" when it has none. */
  knownEpoch?: string;
  /** Passive health: what this isolate saw of each endpoint since its last check-in. */
  outcomes?: EndpointOutcome[];
}

/** Outcome counts of one endpoint as one isolate saw them, sent in batches with the check-in. */
export interface EndpointOutcome {
  endpointId: string;
  requests: number;
  /** 5xx answers, timeouts and connect failures. */
  failures: number;
  latencyMsSum: number;
  latencyMsMax: number;
}

/** The RPC surface of MeshControl that sidecars may use: types only, never the implementation. */
export interface MeshControlRpc {
  snapshot(checkIn: SidecarCheckIn): Promise<SnapshotReply>;
}

export const ALL_ENDPOINTS_SUBSET = "*";

/**
 * The default of a route's `streamIdleTimeoutMs` (Envoy's stream_idle_timeout: 5 minutes). Here
 * rather than in the schema so sidecars can apply it to snapshots compiled before the knob existed.
 */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;

// Resilience: the compiled form of policies/resilience.ts, defaults filled in, nothing optional
// that the hot path would have to default again.

export interface CompiledRetry {
  /** Retries after the first try; 0 means none. */
  attempts: number;
  /** 0 means no per-try deadline: a try may use what is left of the route's. */
  perTryTimeoutMs: number;
  on5xx: boolean;
  onGatewayError: boolean;
  onConnectFailure: boolean;
  onReset: boolean;
  /** Further retriable statuses (short list). */
  statusCodes: number[];
  retryNonIdempotent: boolean;
  maxBufferBytes: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxRetryAfterMs: number;
}

export interface CompiledHedge {
  afterMs: number;
}

export interface CompiledFault {
  delayPercent: number;
  delayMs: number;
  abortPercent: number;
  abortStatus: number;
  /** Lower-cased; empty means every request. */
  headerName: string;
  /** undefined: any value of the header. */
  headerValue?: string;
  bypassRetries: boolean;
}

export interface CompiledMirror {
  percent: number;
  /** "subset:<name>" or "service:<name>", for telemetry and debugging. */
  target: string;
  /** The endpoints shadows go to, copied so the sidecar needs no other service's snapshot. */
  endpoints: CompiledEndpoint[];
}

export type LoadBalancerAlgorithm = "p2c-ewma" | "least-request" | "round-robin" | "weighted-random" | "consistent-hash";

export interface CompiledLoadBalancer {
  algorithm: LoadBalancerAlgorithm;
  /** Set for consistent-hash; header names lower-cased. */
  hashOn?: { kind: "header" | "cookie" | "query"; name: string };
  maglevTableSize: number;
  ewmaDecayMs: number;
  errorPenaltyMs: number;
  panicThresholdPercent: number;
  localityPreference: boolean;
  zoneLabel: string;
}

export interface CompiledCircuitBreaker {
  maxConcurrent: number;
  maxPending: number;
}

export interface CompiledOutlierDetection {
  /** 0 disables. */
  consecutive5xx: number;
  /** 0 disables. */
  consecutiveGatewayErrors: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
}

export interface CompiledRetryBudget {
  percent: number;
  minRetriesPerSecond: number;
  windowMs: number;
}
