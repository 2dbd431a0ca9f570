// Passive outlier detection per isolate: consecutive 5xx and consecutive gateway errors eject an
// endpoint for n * baseEjectionMs (n-th ejection, capped), at most maxEjectionPercent of the
// endpoints at once. When the time is up the endpoint gets exactly one probe request; only a
// good probe re-admits it, a bad one ejects it again for longer. Every transition is recorded.
import type { CompiledOutlierDetection } from "../../policies/snapshot.ts";

export type OutlierPhase = "active" | "ejected" | "probing";

export interface EndpointOutlier {
  id: string;
  phase: OutlierPhase;
  consecutive5xx: number;
  consecutiveGatewayErrors: number;
  /** How often it was ejected; drives the growing ejection time, reset by a long good spell. */
  ejections: number;
  ejectedUntilMs: number;
  probeSentAtMs: number;
}

export interface OutlierEvent {
  atMs: number;
  endpoint: string;
  event: "ejected" | "probe-sent" | "readmitted";
  reason: string;
  ejectionMs?: number;
}

export interface OutlierState {
  endpoints: Map<string, EndpointOutlier>;
  /** Endpoints in phase ejected or probing: the hot path checks this before anything else. */
  ejectedCount: number;
  /**
   * When the next probe may be due, over every endpoint of every subset (Infinity when none is
   * ejected): an ejected one's ejectedUntilMs, a probing one's probeSentAtMs + baseEjectionMs (its
   * probe presumed lost). Probes are looked for only after it.
   */
  nextProbeDueMs: number;
  events: OutlierEvent[];
}

export const MAX_EVENTS = 200;

export function newOutlierState(): OutlierState {
  return { endpoints: new Map(), ejectedCount: 0, nextProbeDueMs: Infinity, events: [] };
}

export type OutlierOutcome = "success" | "5xx" | "gateway-error";

function entry(state: OutlierState, id: string): EndpointOutlier {
  let e = state.endpoints.get(id);
  if (!e) {
    e = { id, phase: "active", consecutive5xx: 0, consecutiveGatewayErrors: 0, ejections: 0, ejectedUntilMs: 0, probeSentAtMs: 0 };
    state.endpoints.set(id, e);
  }
  return e;
}

function record(state: OutlierState, event: OutlierEvent): void {
  if (state.events.length >= MAX_EVENTS) state.events.shift();
  state.events.push(event);
}

function eject(state: OutlierState, cfg: CompiledOutlierDetection, e: EndpointOutlier, reason: string, nowMs: number): void {
  if (e.phase === "active") state.ejectedCount++;
  e.ejections++;
  const ejectionMs = Math.min(cfg.maxEjectionMs, cfg.baseEjectionMs * e.ejections);
  e.phase = "ejected";
  e.ejectedUntilMs = nowMs + ejectionMs;
  e.consecutive5xx = 0;
  e.consecutiveGatewayErrors = 0;
  if (e.ejectedUntilMs < state.nextProbeDueMs) state.nextProbeDueMs = e.ejectedUntilMs;
  record(state, { atMs: nowMs, endpoint: e.id, event: "ejected", reason, ejectionMs });
}

/** Whether the endpoint takes ordinary traffic (not ejected, not waiting on its probe). */
export function isAdmitted(state: OutlierState, id: string): boolean {
  if (state.ejectedCount === 0) return true;
  const e = state.endpoints.get(id);
  return !e || e.phase === "active";
}

/**
 * Returns an endpoint of `ids` whose ejection is over and that has no probe in flight, marking it
 * probing: the caller must send this request to it. A probe that never reported back (its request
 * was cancelled) is presumed lost after baseEjectionMs.
 */
export function takeProbe(state: OutlierState, cfg: CompiledOutlierDetection, endpoints: readonly { id: string }[], members: readonly number[], nowMs: number): number {
  if (state.ejectedCount === 0 || nowMs < state.nextProbeDueMs) return -1;
  let found = -1;
  for (const i of members) {
    const e = state.endpoints.get(endpoints[i]!.id);
    if (!e || e.phase === "active") continue;
    const due = probeDueMs(e, cfg);
    if (nowMs >= due) {
      found = i;
      e.phase = "probing";
      e.probeSentAtMs = nowMs;
      record(state, { atMs: nowMs, endpoint: e.id, event: "probe-sent", reason: `ejection of ${due - (e.ejectedUntilMs - cfg.baseEjectionMs)} ms over` });
      break;
    }
  }
  // Over all endpoints, not just this subset's: another subset's ejected endpoint still needs its probe.
  state.nextProbeDueMs = earliestProbeDue(state, cfg);
  return found;
}

function probeDueMs(e: EndpointOutlier, cfg: CompiledOutlierDetection): number {
  return e.phase === "ejected" ? e.ejectedUntilMs : e.probeSentAtMs + cfg.baseEjectionMs;
}

function earliestProbeDue(state: OutlierState, cfg: CompiledOutlierDetection): number {
  let due = Infinity;
  for (const e of state.endpoints.values()) if (e.phase !== "active") due = Math.min(due, probeDueMs(e, cfg));
  return due;
}

/** Records the outcome of a real try (never an injected fault) to `id`; `endpointCount` is the service's. */
export function recordOutlierOutcome(state: OutlierState, cfg: CompiledOutlierDetection, id: string, outcome: OutlierOutcome, endpointCount: number, nowMs: number): void {
  const e = entry(state, id);
  if (e.phase === "probing") {
    if (outcome === "success") {
      e.phase = "active";
      state.ejectedCount--;
      e.consecutive5xx = 0;
      e.consecutiveGatewayErrors = 0;
      record(state, { atMs: nowMs, endpoint: id, event: "readmitted", reason: "probe succeeded" });
    } else eject(state, cfg, e, `probe failed (${outcome})`, nowMs);
    return;
  }
  if (e.phase === "ejected") return; // a try that started before the ejection
  if (outcome === "success") {
    e.consecutive5xx = 0;
    e.consecutiveGatewayErrors = 0;
    return;
  }
  e.consecutive5xx++;
  if (outcome === "gateway-error") e.consecutiveGatewayErrors++;
  else e.consecutiveGatewayErrors = 0;
  let reason: string | undefined;
  if (cfg.consecutiveGatewayErrors > 0 && e.consecutiveGatewayErrors >= cfg.consecutiveGatewayErrors) reason = `${e.consecutiveGatewayErrors} consecutive gateway errors`;
  else if (cfg.consecutive5xx > 0 && e.consecutive5xx >= cfg.consecutive5xx) reason = `${e.consecutive5xx} consecutive 5xx`;
  if (reason === undefined) return;
  const maxEjected = cfg.maxEjectionPercent > 0 ? Math.max(1, Math.floor((endpointCount * cfg.maxEjectionPercent) / 100)) : 0;
  if (state.ejectedCount >= maxEjected) return;
  eject(state, cfg, e, reason, nowMs);
}

/** For the debug endpoint: plain data, newest events last. */
export function outlierReport(state: OutlierState, nowMs: number): unknown {
  return {
    nowMs,
    ejectedCount: state.ejectedCount,
    endpoints: [...state.endpoints.values()].map((e) => ({ ...e, ejectedForMs: e.phase === "ejected" ? Math.max(0, e.ejectedUntilMs - nowMs) : 0 })),
    events: state.events,
  };
}

/**
 * Forgets endpoints that left the service (a new snapshot), so their ejections neither count
 * against maxEjectionPercent nor wait for a probe that can never come.
 */
export function retainEndpoints(state: OutlierState, cfg: CompiledOutlierDetection, ids: ReadonlySet<string>): void {
  let ejected = 0;
  for (const [id, e] of state.endpoints) {
    if (!ids.has(id)) state.endpoints.delete(id);
    else if (e.phase !== "active") ejected++;
  }
  state.ejectedCount = ejected;
  state.nextProbeDueMs = earliestProbeDue(state, cfg);
}
