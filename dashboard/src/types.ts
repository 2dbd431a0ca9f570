// The admin API's answers as the dashboard reads them (docs/control-plane.md, docs/telemetry.md).
// Only the fields the dashboard shows are declared; the API may carry more.

export interface SessionInfo {
  mesh: string;
  /** The telemetry dataset queries name in FROM. */
  dataset: string;
  watchPath: string;
  watchTicketExpiresAtMs: number;
}

/** GET /v1/metrics/<scope>: the rows are defined once, beside the queries that make them. */
export type { GoldenMetrics, MetricsAnswer } from "../../analytics/golden-metrics.ts";

export interface PolicyRouteTarget {
  subset?: string;
  weight?: number;
}

export interface PolicyRoute {
  name?: string;
  match?: unknown[];
  to?: PolicyRouteTarget[];
  timeoutMs?: number;
}

export interface PolicyService {
  endpoints?: { id: string; binding?: string; url?: string; labels?: Record<string, string> }[];
  routes?: PolicyRoute[];
}

export interface PolicyAnswer {
  version: number;
  document: { mesh?: string; services?: Record<string, PolicyService> };
}

export interface SnapshotRoute {
  name: string;
  matches: unknown[];
  split: { subsets: string[]; cumulative: number[]; total: number };
  timeoutMs: number;
  retry?: { attempts: number };
}

export interface ServiceSnapshot {
  service: string;
  policyVersion: number;
  generation: number;
  endpoints: { id: string; binding?: string; url?: string; labels: Record<string, string>; weight: number; healthy?: boolean }[];
  routes: SnapshotRoute[];
  circuitBreaker?: { maxConcurrent: number; maxPending: number };
  retryBudget?: { percent: number; minRetriesPerSecond: number; windowMs: number };
  outlierDetection?: { consecutive5xx: number; consecutiveGatewayErrors: number; baseEjectionMs: number; maxEjectionPercent: number };
}

export interface RegistryEndpoint {
  id: string;
  service: string;
  binding?: string;
  url?: string;
  labels: Record<string, string>;
  weight: number;
  source: string;
  registeredAtMs?: number;
  expiresAtMs?: number;
  excluded: boolean;
}

export interface RegistryAnswer {
  generation: number;
  policyVersion: number;
  services: Record<string, RegistryEndpoint[]>;
}

export interface EndpointHealth {
  service: string;
  endpointId: string;
  excluded: boolean;
  active: { state: string; consecutiveOk: number; consecutiveFail: number; checks: number; lastCheckMs: number; lastDetail: string } | null;
  passive: { ejectedUntilMs: number | null; reason: string | null } | null;
}

export interface HealthAnswer {
  endpoints: EndpointHealth[];
}

export interface HealthTransition {
  seq: number;
  atMs: number;
  service: string;
  endpointId: string;
  source: string;
  from: string;
  to: string;
  reason: string;
}

export interface SidecarSync {
  service: string;
  isolateId: string;
  colo: string;
  generation: number;
  policyVersion: number;
  lastSeenAgoMs: number;
  checkIns: number;
  state: string;
}

export interface SyncAnswer {
  targetGeneration: number;
  policyVersion: number;
  live: boolean;
  sidecars: SidecarSync[];
}

export interface OutlierEndpoint {
  id: string;
  phase: string;
  consecutive5xx: number;
  consecutiveGatewayErrors: number;
  ejections: number;
  ejectedForMs: number;
}

export interface OutlierEvent {
  atMs: number;
  endpoint: string;
  event: string;
  reason: string;
  ejectionMs?: number;
}

export interface SidecarDebug {
  service: string;
  binding: string;
  status: { isolateId?: string; snapshot?: { policyVersion: number; generation: number; source: string } | null; error?: string };
  resilience: {
    breaker?: { active: number; pending: number; rejectedPending: number };
    retryBudget?: { requests: number; retries: number; refused: number } | null;
    error?: string;
  };
  outliers: { ejectedCount?: number; endpoints?: OutlierEndpoint[]; events?: OutlierEvent[]; error?: string };
}

export interface PolicyVersion {
  version: number;
  appliedAtMs: number;
  author: string;
  message: string;
  kind: string;
  restoredVersion: number | null;
}

export interface HistoryAnswer {
  activeVersion: number | null;
  versions: PolicyVersion[];
}

export interface DiffEntry {
  path: string;
  op: "added" | "removed" | "changed";
  from?: unknown;
  to?: unknown;
}

export interface DiffAnswer {
  from: number;
  to: number;
  changes: DiffEntry[];
}

export interface MeshEvent {
  seq: number;
  atMs: number;
  type: string;
  data: Record<string, unknown>;
}

export type { WatchHello } from "../../policies/events.ts";

export interface QueryAnswer {
  data: Record<string, unknown>[];
}
