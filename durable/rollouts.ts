// The rollout component of MeshControl: one run per service that declares a `rollout`, kept in its
// own table. It says when it is next due (the alarm planner asks), checks the canary's gates on
// telemetry when due, and writes each step as a new policy version authored "rollout:<service>"
// through its host (MeshControl's commit). Operators pause, resume, promote and abort runs; an
// operator's document that would change the traffic a run holds is refused (`refuseChange`).
// Transitions are the pure functions of rollout-machine.ts; what they write into the policy is
// rollout-shape.ts; how the canary is measured is rollout-metrics.ts.
import type { RolloutPolicy } from "../policies/rollout.ts";
import type { RolloutAction, RolloutCheck, RolloutRun, RolloutStatus } from "../policies/rollout-run.ts";
import type { ServicePolicy } from "../policies/schema.ts";
import type { MeshEventData, MeshEventType, RolloutEventData } from "../policies/events.ts";
import type { Json } from "./policy-sections.ts";
import {
  act, afterCheck, checkOf, checkWindow, isActive, newRun, specOf, whenPending, type Move,
} from "./rollout-machine.ts";
import type { CanaryWindow, MeasureAnswer } from "./rollout-metrics.ts";
import { canaryPercent, heldTrafficChanges, rolloutSpecKey, shapeSection } from "./rollout-shape.ts";

/** What the component needs of MeshControl. */
export interface RolloutHost {
  /** The policy in force for a service, or undefined (no such service, or no policy in force). */
  servicePolicy(service: string): ServicePolicy | undefined;
  serviceNames(): string[];
  /** The mesh of the policy in force, or undefined when none is. */
  mesh(): string | undefined;
  /** Why the canary subset cannot take traffic yet, or null when one of its endpoints serves. */
  canaryNotReady(service: string, subset: string): string | null;
  measure(window: CanaryWindow): Promise<MeasureAnswer>;
  /** Writes a new policy version whose section of `service` is `edit(section in force)`; version null when that changes nothing. */
  writeSection(service: string, edit: (section: Json) => Json, author: string, message: string): Promise<{ ok: true; version: number | null } | { ok: false; message: string }>;
  emit<T extends MeshEventType>(type: T, data: MeshEventData[T]): void;
}

export type RolloutActionResult =
  | { ok: true; rollout: RolloutStatus }
  | { ok: false; status: 404 | 409 | 500; message: string };

/** The author of every policy version a rollout writes. */
export const rolloutAuthor = (service: string) => `rollout:${service}`;

const TRANSITION_EVENTS = {
  started: "rollout.started",
  advanced: "rollout.advanced",
  paused: "rollout.paused",
  resumed: "rollout.resumed",
  promoted: "rollout.promoted",
  "rolled-back": "rollout.rolled-back",
  failed: "rollout.failed",
} as const;

export class Rollouts {
  private readonly runs = new Map<string, RolloutRun>();
  /** Rollout work (checks' decisions and operators' actions) runs one piece at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Services whose check is measuring now, so an overlapping alarm does not check them twice. */
  private readonly measuring = new Set<string>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly host: RolloutHost,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS rollouts (service TEXT PRIMARY KEY, run TEXT NOT NULL)");
    for (const row of sql.exec<{ service: string; run: string }>("SELECT service, run FROM rollouts")) {
      this.runs.set(row.service, JSON.parse(row.run) as RolloutRun);
    }
  }

  private save(run: RolloutRun): void {
    this.runs.set(run.service, run);
    this.sql.exec("INSERT INTO rollouts (service, run) VALUES (?, ?) ON CONFLICT(service) DO UPDATE SET run = excluded.run", run.service, JSON.stringify(run));
  }

  private forget(service: string): void {
    this.runs.delete(service);
    this.sql.exec("DELETE FROM rollouts WHERE service = ?", service);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => {});
    return run;
  }

  list(): RolloutStatus[] {
    return [...this.runs.values()].sort((a, b) => (a.service < b.service ? -1 : 1)).map(statusOf);
  }

  get(service: string): RolloutStatus | null {
    const run = this.runs.get(service);
    return run ? statusOf(run) : null;
  }

  /** When a run is next due to be checked, or null. */
  nextDueMs(): number | null {
    let next: number | null = null;
    for (const run of this.runs.values()) {
      if ((run.state === "pending" || run.state === "progressing") && run.nextCheckAtMs !== null && (next === null || run.nextCheckAtMs < next)) next = run.nextCheckAtMs;
    }
    return next;
  }

  /**
   * Why an operator's document may not replace `service`'s section, or null when it may. A run in
   * progress owns its rollout block and the traffic of its routes (weights, audience routes); a run
   * that ended owns the weights it left, as long as the document declares the same rollout.
   */
  refuseChange(service: string, active: ServicePolicy | undefined, incoming: ServicePolicy | undefined): string | null {
    const run = this.runs.get(service);
    if (!run || !active) return null;
    const incomingKey = incoming ? rolloutSpecKey(incoming) : null;
    const where = `the rollout of "${service}" (${run.state}${run.state === "progressing" ? `, step ${run.step + 1} of ${run.spec.weights.length}` : ""}, "${run.spec.canary}" at ${run.canaryWeight}%)`;
    if (isActive(run.state)) {
      if (incomingKey !== run.specKey) {
        const what = !incoming ? "removes the service" : incomingKey === null ? "removes its rollout" : "changes its rollout (or the selectors of its subsets)";
        return `${where} is in progress and this document ${what}; abort it first (edgemesh rollout abort ${service}) or let it end`;
      }
      const changes = heldTrafficChanges(active, incoming!, run.spec, true);
      if (changes.length === 0) return null;
      return `${where} owns the traffic of its routes while it runs: ${changes.join("; ")}. Keep them as the active policy has them (GET /v1/policy), or pause, promote or abort the rollout first`;
    }
    if (incomingKey !== run.specKey) return null;
    const changes = heldTrafficChanges(active, incoming!, run.spec, false);
    if (changes.length === 0) return null;
    return `${where.replace(`(${run.state}`, `(ended ${run.state}`)} left its routes as the active policy has them, and this document declares the same rollout: ${changes.join("; ")}. Write the weights it left, remove the rollout block to own the weights yourself, or change the rollout to start another`;
  }

  /**
   * The policy in force changed: a service that declares a rollout it has no run of (or another
   * one than its ended run) gets a new run, due at once; ended runs whose rollout is gone are
   * forgotten. A run in progress keeps going (refuseChange kept its rollout as it was).
   */
  policyChanged(nowMs: number): void {
    if (this.host.mesh() === undefined) return;
    const services = new Set(this.host.serviceNames());
    for (const [service, run] of this.runs) {
      const key = services.has(service) ? rolloutSpecKey(this.host.servicePolicy(service)!) : null;
      if (key === run.specKey) continue;
      if (!isActive(run.state)) {
        if (key === null) this.forget(service);
        continue;
      }
      // refuseChange keeps a running rollout in the policy; should it still be gone (a policy that
      // came back from storage another way), the run ends, saying so, and leaves the weights alone.
      const reason = `ended: the policy in force ${key === null ? "no longer declares it" : "declares another rollout"}; the weights stay as that policy has them`;
      const ended: RolloutRun = { ...run, state: "failed", reason, nextCheckAtMs: null, resumeTo: null, endedAtMs: nowMs, updatedAtMs: nowMs, revision: run.revision + 1 };
      this.save(ended);
      this.emitRun("rollout.failed", ended, null, "rollout");
      if (key === null) this.forget(service);
    }
    for (const service of services) {
      const svc = this.host.servicePolicy(service)!;
      const key = rolloutSpecKey(svc);
      const run = this.runs.get(service);
      if (key === null || run?.specKey === key) continue;
      const spec = specOf(svc.rollout!);
      const created = newRun(service, key, spec, canaryPercent(svc, spec), nowMs);
      this.save(created);
      this.emitRun("rollout.created", created, null, "rollout", run ? `a new rollout replaces the one that ended ${run.state}` : undefined);
    }
  }

  /** Checks every run that is due: pending ones start when they can, progressing ones are judged. */
  async runDue(nowMs: number): Promise<void> {
    const due = [...this.runs.values()].filter((r) => (r.state === "pending" || r.state === "progressing") && r.nextCheckAtMs !== null && r.nextCheckAtMs <= nowMs && !this.measuring.has(r.service));
    await Promise.all(due.map((run) => this.check(run, nowMs)));
  }

  private async check(run: RolloutRun, nowMs: number): Promise<void> {
    const rollout = this.host.servicePolicy(run.service)?.rollout;
    const mesh = this.host.mesh();
    if (!rollout || mesh === undefined) {
      // No policy in force (it failed to load): try again later rather than spin.
      this.save({ ...run, nextCheckAtMs: nowMs + run.spec.intervalMs, reason: "the policy in force is not loaded; the rollout waits for it", revision: run.revision + 1 });
      return;
    }
    if (run.state === "pending") {
      await this.serial(async () => {
        const current = this.runs.get(run.service);
        if (current?.revision !== run.revision) return;
        await this.apply(current, whenPending(current, this.host.canaryNotReady(run.service, run.spec.canary), nowMs), "rollout", rollout, undefined, nowMs);
      });
      return;
    }
    const window = checkWindow(run, nowMs);
    this.measuring.add(run.service);
    let answer: MeasureAnswer;
    try {
      answer = await this.host.measure({ mesh, service: run.service, subset: run.spec.canary, ...window });
    } catch (err) {
      answer = { ok: false, error: (err as Error).message };
    } finally {
      this.measuring.delete(run.service);
    }
    await this.serial(async () => {
      const current = this.runs.get(run.service);
      // Paused, promoted or aborted while measuring: this check no longer applies.
      if (current?.revision !== run.revision) return;
      const check = checkOf(current, window, answer, nowMs);
      await this.apply(current, afterCheck(current, check, nowMs), "rollout", rollout, check, nowMs);
    });
  }

  /** An operator's action. */
  async act(service: string, action: RolloutAction, by: string, nowMs = Date.now()): Promise<RolloutActionResult> {
    return this.serial(async () => {
      const run = this.runs.get(service);
      if (!run) {
        const declared = this.list().map((r) => r.service);
        return { ok: false, status: 404, message: `service "${service}" has no rollout${declared.length ? ` (rollouts: ${declared.join(", ")})` : ""}; declare one in its policy ("rollout": …)` };
      }
      const move = act(run, action, by, nowMs);
      if ("refused" in move) return { ok: false, status: 409, message: move.refused };
      const rollout = this.host.servicePolicy(service)?.rollout;
      if (!rollout && move.shape) return { ok: false, status: 409, message: `the policy in force has no rollout for "${service}" (it failed to load?); nothing was changed` };
      const applied = await this.apply(run, move, by, rollout, undefined, nowMs);
      return applied.ok ? { ok: true, rollout: statusOf(applied.run) } : { ok: false, status: 500, message: applied.message };
    });
  }

  /**
   * Carries out a move: writes the policy version its shape asks for, stores the run, emits the
   * check and the transition. When the version cannot be written the run stays where it was and
   * tries again at its next check.
   */
  private async apply(run: RolloutRun, move: Move, by: string, rollout: RolloutPolicy | undefined, check: RolloutCheck | undefined, nowMs: number): Promise<{ ok: true; run: RolloutRun } | { ok: false; message: string }> {
    let version: number | null = null;
    if (move.shape && rollout) {
      const shape = move.shape;
      const written = await this.host.writeSection(run.service, (section) => shapeSection(section, rollout, shape), rolloutAuthor(run.service), `rollout ${run.service}: ${move.run.reason}`);
      if (!written.ok) {
        const message = `could not write the policy version for "${move.transition}": ${written.message}`;
        const retry: RolloutRun = { ...run, reason: `${message}; trying again at the next check`, nextCheckAtMs: isActive(run.state) && run.state !== "paused" ? nowMs + run.spec.intervalMs : run.nextCheckAtMs, revision: run.revision + 1 };
        this.save(retry);
        return { ok: false, message };
      }
      version = written.version;
    }
    const next: RolloutRun = { ...move.run, policyVersion: version ?? move.run.policyVersion };
    this.save(next);
    if (check) {
      // Where the run stood when it was checked; the transition (if any) follows as its own event.
      const verdict = check.verdict === "pass" ? "the canary passed every gate" : check.findings.join("; ");
      this.host.emit("rollout.checked", {
        ...eventBase({ ...run, reason: verdict }, null, "rollout"),
        check,
        gates: next.spec.gates,
        failedChecks: next.failedChecks,
        maxFailedChecks: next.spec.maxFailedChecks,
      });
    }
    if (move.transition !== "checked" && move.transition !== "waiting") {
      const type = TRANSITION_EVENTS[move.transition];
      if (type === "rollout.advanced") this.host.emit(type, { ...eventBase(next, version, by), fromWeight: run.canaryWeight });
      else this.emitRun(type, next, version, by);
    }
    return { ok: true, run: next };
  }

  private emitRun(type: Exclude<(typeof TRANSITION_EVENTS)[keyof typeof TRANSITION_EVENTS], "rollout.advanced"> | "rollout.created", run: RolloutRun, version: number | null, by: string, reason?: string): void {
    this.host.emit(type, { ...eventBase(run, version, by), ...(reason ? { reason: `${reason}; ${run.reason}` } : {}) });
  }
}

function eventBase(run: RolloutRun, version: number | null, by: string): RolloutEventData {
  return {
    service: run.service,
    state: run.state,
    step: run.step + 1,
    steps: run.spec.weights.length,
    stable: run.spec.stable,
    canary: run.spec.canary,
    canaryWeight: run.canaryWeight,
    reason: run.reason,
    version,
    by,
  };
}

function statusOf(run: RolloutRun): RolloutStatus {
  return { ...run, stableWeight: 100 - run.canaryWeight };
}
