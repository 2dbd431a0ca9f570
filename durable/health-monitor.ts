// Endpoint health as MeshControl stores it: the active-check state of each endpoint, passive
// ejections from the sidecars' reports, and the history of every transition. The rules (thresholds,
// windows) are the pure functions of health.ts; this component owns the tables and the windows.
import type { HealthCheckPolicy, PassiveHealthPolicy } from "../policies/health.ts";
import type { EndpointOutcome } from "../policies/snapshot.ts";
import type { MeshEventData } from "../policies/events.ts";
import { addOutcome, afterProbe, INITIAL_ACTIVE_HEALTH, passiveEjection, type ActiveHealth, type PassiveWindow, type ProbeResult } from "./health.ts";
import { LogTrimmer, type Row } from "./sql.ts";

/** How many health transitions the history keeps by default; older ones are pruned. */
export const HEALTH_HISTORY_LIMIT = 10_000;

export interface EndpointHealthState {
  service: string;
  endpointId: string;
  active: ActiveHealth;
  checks: number;
  lastCheckMs: number | null;
  lastDetail: string | null;
  /** 0 when not passively ejected. */
  passiveUntilMs: number;
  passiveReason: string | null;
}

export interface HealthTransitionRecord {
  seq: number;
  atMs: number;
  service: string;
  endpointId: string;
  source: "active" | "passive";
  from: string;
  to: string;
  reason: string;
}

export type TransitionSink = (transition: MeshEventData["health.changed"], atMs: number) => void;

const key = (service: string, id: string) => `${service}/${id}`;

export class HealthMonitor {
  private readonly states = new Map<string, EndpointHealthState>();
  /** Passive windows are short-lived and kept in memory; ejections are stored. */
  private readonly windows = new Map<string, PassiveWindow>();
  private readonly trimmer: LogTrimmer;

  constructor(
    private readonly sql: SqlStorage,
    /** Called for every transition (MeshControl turns it into a health.changed event). */
    private readonly onTransition: TransitionSink,
    historyLimit = HEALTH_HISTORY_LIMIT,
  ) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS endpoint_health (
        service TEXT NOT NULL,
        id TEXT NOT NULL,
        active_state TEXT NOT NULL,
        consecutive_ok INTEGER NOT NULL,
        consecutive_fail INTEGER NOT NULL,
        checks INTEGER NOT NULL,
        last_check_ms INTEGER,
        last_detail TEXT,
        passive_until_ms INTEGER NOT NULL,
        passive_reason TEXT,
        PRIMARY KEY (service, id)
      );
      CREATE TABLE IF NOT EXISTS health_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        service TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        source TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL
      );
    `);
    this.trimmer = new LogTrimmer(sql, "health_transitions", () => historyLimit);
    for (const row of sql.exec<Row>("SELECT * FROM endpoint_health")) {
      const h = stateFromRow(row);
      this.states.set(key(h.service, h.endpointId), h);
    }
  }

  get(service: string, id: string): EndpointHealthState | undefined {
    return this.states.get(key(service, id));
  }

  passiveWindow(service: string, id: string): PassiveWindow | null {
    return this.windows.get(key(service, id)) ?? null;
  }

  private state(service: string, id: string): EndpointHealthState {
    const k = key(service, id);
    let h = this.states.get(k);
    if (!h) {
      h = { service, endpointId: id, active: { ...INITIAL_ACTIVE_HEALTH }, checks: 0, lastCheckMs: null, lastDetail: null, passiveUntilMs: 0, passiveReason: null };
      this.states.set(k, h);
    }
    return h;
  }

  /** Out of the snapshots: actively unhealthy (when the service has checks) or passively ejected. */
  isExcluded(service: string, id: string, activeChecksOn: boolean, nowMs: number): boolean {
    const h = this.states.get(key(service, id));
    if (!h) return false;
    return (activeChecksOn && h.active.state === "unhealthy") || h.passiveUntilMs > nowMs;
  }

  /** Whether the endpoint is passively ejected now. */
  isEjected(service: string, id: string, nowMs: number): boolean {
    return (this.states.get(key(service, id))?.passiveUntilMs ?? 0) > nowMs;
  }

  /** Applies one active check's result; true when it changed the endpoint's state. */
  recordCheck(service: string, id: string, result: ProbeResult, check: Pick<HealthCheckPolicy, "healthyThreshold" | "unhealthyThreshold">, nowMs: number): boolean {
    const h = this.state(service, id);
    const { next, transition } = afterProbe(h.active, result, check);
    h.active = next;
    h.checks++;
    h.lastCheckMs = nowMs;
    h.lastDetail = result.detail;
    this.save(h);
    if (transition) this.recordTransition(service, id, "active", transition.from, transition.to, transition.reason, nowMs);
    return transition !== undefined;
  }

  /**
   * Adds one isolate's (or one relay's summed) outcome counts to the endpoints' windows, and ejects
   * an endpoint failing mesh-wide for `policy.ejectionMs`, as long as fewer than `maxEjected` of the
   * service's endpoints are passively ejected already. Reports of ids that are not among
   * `endpointIds` are ignored. Returns the endpoints ejected now.
   */
  addOutcomes(
    service: string,
    outcomes: readonly EndpointOutcome[],
    endpointIds: readonly string[],
    policy: PassiveHealthPolicy,
    nowMs: number,
    maxEjected = Number.MAX_SAFE_INTEGER,
  ): string[] {
    const known = new Set(endpointIds);
    let ejectedNow = endpointIds.reduce((n, id) => n + (this.isEjected(service, id, nowMs) ? 1 : 0), 0);
    const ejected: string[] = [];
    for (const outcome of outcomes) {
      if (!known.has(outcome.endpointId)) continue;
      const k = key(service, outcome.endpointId);
      const window = addOutcome(this.windows.get(k), outcome, nowMs, policy);
      this.windows.set(k, window);
      if (this.isEjected(service, outcome.endpointId, nowMs)) continue;
      const reason = passiveEjection(window, nowMs, policy);
      // At the cap the window keeps counting: the endpoint is ejected once another comes back.
      if (reason === null || ejectedNow >= maxEjected) continue;
      const h = this.state(service, outcome.endpointId);
      h.passiveUntilMs = nowMs + policy.ejectionMs;
      h.passiveReason = reason;
      this.save(h);
      this.windows.delete(k);
      this.recordTransition(service, outcome.endpointId, "passive", "healthy", "ejected", `${reason}; ejected for ${policy.ejectionMs} ms`, nowMs);
      ejected.push(outcome.endpointId);
      ejectedNow++;
    }
    return ejected;
  }

  /** Ends the passive ejections that are over; returns the services whose endpoints came back. */
  endEjections(nowMs: number): Set<string> {
    const services = new Set<string>();
    for (const h of this.states.values()) {
      if (h.passiveUntilMs === 0 || h.passiveUntilMs > nowMs) continue;
      h.passiveUntilMs = 0;
      h.passiveReason = null;
      this.save(h);
      this.recordTransition(h.service, h.endpointId, "passive", "ejected", "healthy", "passive ejection ended; the endpoint takes traffic again", nowMs);
      services.add(h.service);
    }
    return services;
  }

  /** When the next passive ejection ends, or null. */
  nextEjectionEndMs(): number | null {
    let next: number | null = null;
    for (const h of this.states.values()) if (h.passiveUntilMs > 0 && (next === null || h.passiveUntilMs < next)) next = h.passiveUntilMs;
    return next;
  }

  /** Forgets the health of endpoints for which `exists` says no (they left the mesh). */
  forgetGone(exists: (service: string, id: string) => boolean): void {
    for (const [k, h] of this.states) {
      if (exists(h.service, h.endpointId)) continue;
      this.states.delete(k);
      this.windows.delete(k);
      this.sql.exec("DELETE FROM endpoint_health WHERE service = ? AND id = ?", h.service, h.endpointId);
    }
  }

  history(filter: { service?: string; endpointId?: string; limit?: number } = {}): HealthTransitionRecord[] {
    const rows = this.sql.exec<Row>(
      "SELECT * FROM health_transitions WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR endpoint_id = ?2) ORDER BY seq DESC LIMIT ?3",
      filter.service ?? null, filter.endpointId ?? null, Math.max(1, Math.min(filter.limit ?? 100, 10_000)),
    ).toArray();
    return rows.map((r) => ({
      seq: r.seq as number,
      atMs: r.at_ms as number,
      service: r.service as string,
      endpointId: r.endpoint_id as string,
      source: r.source as "active" | "passive",
      from: r.from_state as string,
      to: r.to_state as string,
      reason: r.reason as string,
    }));
  }

  private save(h: EndpointHealthState): void {
    this.sql.exec(
      `INSERT INTO endpoint_health (service, id, active_state, consecutive_ok, consecutive_fail, checks, last_check_ms, last_detail, passive_until_ms, passive_reason)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET active_state = excluded.active_state, consecutive_ok = excluded.consecutive_ok,
         consecutive_fail = excluded.consecutive_fail, checks = excluded.checks, last_check_ms = excluded.last_check_ms,
         last_detail = excluded.last_detail, passive_until_ms = excluded.passive_until_ms, passive_reason = excluded.passive_reason`,
      h.service, h.endpointId, h.active.state, h.active.consecutiveOk, h.active.consecutiveFail, h.checks, h.lastCheckMs, h.lastDetail, h.passiveUntilMs, h.passiveReason,
    );
  }

  private recordTransition(service: string, endpointId: string, source: "active" | "passive", from: string, to: string, reason: string, atMs: number): void {
    const seq = this.sql.exec<{ seq: number }>(
      "INSERT INTO health_transitions (at_ms, service, endpoint_id, source, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
      atMs, service, endpointId, source, from, to, reason,
    ).one().seq;
    this.trimmer.afterInsert(seq);
    this.onTransition({ service, endpointId, source, from, to, reason }, atMs);
  }
}

function stateFromRow(row: Row): EndpointHealthState {
  return {
    service: row.service as string,
    endpointId: row.id as string,
    active: { state: row.active_state as ActiveHealth["state"], consecutiveOk: row.consecutive_ok as number, consecutiveFail: row.consecutive_fail as number },
    checks: row.checks as number,
    lastCheckMs: (row.last_check_ms as number | null) ?? null,
    lastDetail: (row.last_detail as string | null) ?? null,
    passiveUntilMs: row.passive_until_ms as number,
    passiveReason: (row.passive_reason as string | null) ?? null,
  };
}
