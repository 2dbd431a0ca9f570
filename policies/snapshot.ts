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
  /** Header modifiers, rewrite, redirect, direct response; absent when the route has none. */
  filters?: CompiledRouteFilters;
}

export interface CompiledEndpoint {
  id: string;
  binding?: string;
  url?: string;
  labels: Record<string, string>;
  weight: number;
  /**
   * Set to false by the control plane when active or passive health excludes the endpoint. It
   * stays in `subsets`: the sidecar skips it, and applies its panic threshold to the whole subset
   * (so health can never empty a subset; at most maxEjectionPercent are passively ejected).
   */
  healthy?: boolean;
}

export interface ServiceSnapshot {
  mesh: string;
  service: string;
  /** The policy version at which this service's snapshot last changed. */
  policyVersion: number;
  /**
   * This service's generation: moves only when this service's snapshot changes (its policy, its
   * registered instances, its endpoints' health), to the value of the mesh-wide change counter at
   * that moment. So generations of different services are comparable, and a change elsewhere in
   * the mesh leaves this one alone.
   */
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
  access: CompiledAccess;
  rateLimits: CompiledRateLimit[];
  /** Absent in snapshots cached by a control plane older than telemetry: read it as the defaults. */
  telemetry?: CompiledTelemetry;
}

export interface CompiledTelemetry {
  enabled: boolean;
  /** Record one request in this many (1 = every request). */
  sampleInterval: number;
  /** Count streamed response bodies without content-length. */
  countStreamedBytes: boolean;
}

/** The whole mesh compiled: one snapshot per service, without the control plane's counters. */
export interface CompiledMesh {
  mesh: string;
  services: Record<string, Omit<ServiceSnapshot, "policyVersion" | "generation" | "epoch">>;
}

/** What `MeshControl.snapshot()` answers: either the new snapshot or a cheap "not modified". */
export type SnapshotReply =
  | { status: "ok"; snapshot: ServiceSnapshot }
  /** The sidecar's snapshot is current; `generation` is its service's generation. */
  | { status: "not-modified"; generation: number }
  | { status: "unknown-service"; generation: number; services: string[] };

/** Who is asking for a snapshot: recorded by the control plane for sync status. */
export interface SidecarCheckIn {
  service: string;
  /** The sidecar's mesh (a relay learns from it which authority to ask). */
  mesh?: string;
  isolateId: string;
  colo: string;
  /** The generation of its service's snapshot the sidecar serves now, or 0 when it has none. */
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

/**
 * The RPC surface sidecars may use, of MeshControl or of the relay that stands in for it
 * (MeshRelay, docs/distribution.md): types only, never the implementation.
 */
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
  /** gRPC status codes to retry (retryOn "unavailable", ...), ascending; see policies/grpc.ts. */
  grpcRetryCodes: number[];
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

// Zero trust: the compiled form of policies/access.ts and policies/ratelimit.ts.

export interface CompiledAccessRule {
  /** "<service>/<rule name>": what x-edgemesh-denied-by says. */
  id: string;
  /** Caller names (services, identities, "external"); undefined means any caller. */
  callers?: string[];
  /** Upper-case methods; undefined means any. */
  methods?: string[];
  /** Any one must match; empty means any path. Regexes are RE2 and anchored. */
  paths: CompiledStringMatch[];
  /** Every one must match; names lower-cased. */
  headers: CompiledValueMatch[];
}

export interface CompiledAccess {
  mode: "permissive" | "strict";
  /** A token that does not verify, or an identity header without one: 401, or the caller is "external". */
  unverifiedIdentity: "refuse" | "external";
  /** Checked first: the first that matches refuses the request. */
  deny: CompiledAccessRule[];
  allow: CompiledAccessRule[];
  /** True when a request no allow rule admits is refused (strict, or any allow rule given). */
  defaultDeny: boolean;
  /** "<service>/(default-deny)": names that refusal. */
  defaultDenyId: string;
  /** Mesh-wide token settings, copied so the sidecar needs nothing else. */
  tokens: { clockSkewMs: number; maxLifetimeMs: number; forwardedTtlMs: number };
}

export interface CompiledRateLimit {
  /** "<service>/<limit name>": what x-edgemesh-rate-limited says. */
  id: string;
  /** Route names; undefined means every route. */
  routes?: string[];
  /** Caller names; undefined means every caller. */
  callers?: string[];
  perCaller: boolean;
  perRoute: boolean;
  perClientIp: boolean;
  requests: number;
  periodMs: number;
  /** Bucket size. */
  burst: number;
  /** Counted across isolates too, by this `ratelimits` binding, configured with limit and period. */
  shared?: { binding: string; limit: number; periodSeconds: 10 | 60 };
}

// Routing filters: the compiled form of policies/filters.ts. Header names are lower-cased.

export interface CompiledHeaderModifier {
  /** Applied in this order: remove, set, add. */
  remove: string[];
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
}

export type CompiledPathRewrite =
  | { kind: "full"; path: string }
  /** `prefix` is the route's matched path prefix without a trailing "/" ("" for "/"). */
  | { kind: "prefix"; prefix: string; replacement: string };

export interface CompiledRewrite {
  path?: CompiledPathRewrite;
  hostname?: string;
}

export interface CompiledRedirect {
  scheme?: "http" | "https";
  hostname?: string;
  port?: number;
  path?: CompiledPathRewrite;
  status: number;
}

export interface CompiledDirectResponse {
  status: number;
  /** Absent: no body (and no content type). */
  body?: string;
  contentType?: string;
}

export interface CompiledDestinationFilters {
  requestHeaders?: CompiledHeaderModifier;
  responseHeaders?: CompiledHeaderModifier;
}

export interface CompiledRouteFilters {
  requestHeaders?: CompiledHeaderModifier;
  responseHeaders?: CompiledHeaderModifier;
  rewrite?: CompiledRewrite;
  redirect?: CompiledRedirect;
  directResponse?: CompiledDirectResponse;
  /** Subset name -> the header modifiers of the destination naming it; only destinations that have some. */
  destinations?: Record<string, CompiledDestinationFilters>;
}
