// Endpoint health as pure data: the thresholds of active checks and the windows of passive
// reports. MeshControl stores the state and calls these; they never do I/O.
import type { HealthCheckPolicy, PassiveHealthPolicy } from "../policies/health.ts";
import type { EndpointOutcome } from "../policies/snapshot.ts";

export type ActiveState = "healthy" | "unhealthy";

export interface ActiveHealth {
  state: ActiveState;
  consecutiveOk: number;
  consecutiveFail: number;
}

export interface ProbeResult {
  ok: boolean;
  /** For people: "status 200", "status 503 (expected 200)", "timeout after 1000 ms", ... */
  detail: string;
}

export interface Transition<S extends string> {
  from: S;
  to: S;
  reason: string;
}

/** Endpoints start healthy so that applying a policy with checks never takes traffic away. */
export const INITIAL_ACTIVE_HEALTH: ActiveHealth = { state: "healthy", consecutiveOk: 0, consecutiveFail: 0 };

/** Applies one check result; a transition happens only when a threshold is reached. */
export function afterProbe(
  prev: ActiveHealth,
  result: ProbeResult,
  check: Pick<HealthCheckPolicy, "healthyThreshold" | "unhealthyThreshold">,
): { next: ActiveHealth; transition?: Transition<ActiveState> } {
  const next: ActiveHealth = result.ok
    ? { state: prev.state, consecutiveOk: prev.consecutiveOk + 1, consecutiveFail: 0 }
    : { state: prev.state, consecutiveOk: 0, consecutiveFail: prev.consecutiveFail + 1 };
  if (prev.state === "healthy" && next.consecutiveFail >= check.unhealthyThreshold) {
    next.state = "unhealthy";
    return { next, transition: { from: "healthy", to: "unhealthy", reason: `${next.consecutiveFail} consecutive failed checks (threshold ${check.unhealthyThreshold}); last: ${result.detail}` } };
  }
  if (prev.state === "unhealthy" && next.consecutiveOk >= check.healthyThreshold) {
    next.state = "healthy";
    return { next, transition: { from: "unhealthy", to: "healthy", reason: `${next.consecutiveOk} consecutive passed checks (threshold ${check.healthyThreshold}); last: ${result.detail}` } };
  }
  return { next };
}

/** Classifies a check's answer against the expected statuses. */
export function probeVerdict(status: number, expected: readonly number[]): ProbeResult {
  return expected.includes(status)
    ? { ok: true, detail: `status ${status}` }
    : { ok: false, detail: `status ${status} (expected ${expected.join(" or ")})` };
}

/** Outcome counts of one endpoint summed over one window, from every sidecar's reports. */
export interface PassiveWindow {
  startedAtMs: number;
  requests: number;
  failures: number;
  latencyMsSum: number;
  latencyMsMax: number;
}

export const emptyWindow = (nowMs: number): PassiveWindow => ({ startedAtMs: nowMs, requests: 0, failures: 0, latencyMsSum: 0, latencyMsMax: 0 });

/** Adds a report to the endpoint's window, starting a new window when the old one is over. */
export function addOutcome(window: PassiveWindow | undefined, outcome: EndpointOutcome, nowMs: number, policy: Pick<PassiveHealthPolicy, "windowMs">): PassiveWindow {
  const w = window && nowMs - window.startedAtMs < policy.windowMs ? { ...window } : emptyWindow(nowMs);
  w.requests += Math.max(0, outcome.requests);
  w.failures += Math.max(0, Math.min(outcome.failures, outcome.requests));
  w.latencyMsSum += Math.max(0, outcome.latencyMsSum);
  w.latencyMsMax = Math.max(w.latencyMsMax, outcome.latencyMsMax);
  return w;
}

/** The reason to eject the endpoint for every isolate, or null when the window looks fine. */
export function passiveEjection(window: PassiveWindow, nowMs: number, policy: Pick<PassiveHealthPolicy, "minRequests" | "failurePercent">): string | null {
  if (window.requests < policy.minRequests) return null;
  const percent = (window.failures * 100) / window.requests;
  if (percent < policy.failurePercent) return null;
  const seconds = ((nowMs - window.startedAtMs) / 1000).toFixed(1);
  return `sidecars reported ${window.failures} failed of ${window.requests} requests (${Math.round(percent)}%, threshold ${policy.failurePercent}%) in ${seconds} s`;
}

/**
 * The endpoints with `healthy: false` on those `isExcluded` names, the others as they are (the
 * same array when none is excluded). Subsets keep every member: the sidecar sees whole subsets and
 * applies its panic threshold to them, so health can never empty a subset behind its back.
 */
export function markExcluded<E extends { id: string; healthy?: boolean }>(endpoints: readonly E[], isExcluded: (id: string) => boolean): E[] {
  let out: E[] | undefined;
  endpoints.forEach((e, i) => {
    if (!isExcluded(e.id)) return;
    out ??= endpoints.slice();
    out[i] = { ...e, healthy: false };
  });
  return out ?? (endpoints as E[]);
}

/**
 * How many of a service's endpoints passive health may eject at once: `maxEjectionPercent` of
 * them, at least one when the percentage is above 0 (the same rule as the sidecar's own outlier
 * detection).
 */
export function maxPassiveEjections(endpointCount: number, maxEjectionPercent: number): number {
  return maxEjectionPercent > 0 ? Math.max(1, Math.floor((endpointCount * maxEjectionPercent) / 100)) : 0;
}
