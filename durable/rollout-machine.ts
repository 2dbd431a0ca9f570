// The state machine of one service's rollout, as pure functions over plain data (the run), so
// every transition is unit-tested without a runtime. durable/rollouts.ts stores runs, measures the
// canary, writes the policy versions a transition asks for and emits the events.
//
//   pending ──(canary has a serving endpoint)──> progressing(step 0)
//   progressing(n) ──(check passed)──> progressing(n+1) ──(last step passed)──> promoted
//   progressing ──(failed checks > maxFailedChecks)──> rolled-back
//   pending | progressing ──(no passed check within progressDeadlineMs)──> failed | paused (hold)
//   pending | progressing ──pause──> paused ──resume──> where it was
//   any active state ──promote──> promoted, ──abort──> rolled-back
import { rolloutWeights, type RolloutPolicy } from "../policies/rollout.ts";
import type { CanaryMeasurement, RolloutAction, RolloutCheck, RolloutRun, RolloutSpec, RolloutState } from "../policies/rollout-run.ts";

export type ActiveRolloutState = "pending" | "progressing" | "paused";

export const isActive = (state: RolloutState): state is ActiveRolloutState => state === "pending" || state === "progressing" || state === "paused";

/** What the rollout writes into the policy: the canary's percent and whether the audience routes are there. */
export interface TrafficShape {
  canaryWeight: number;
  audience: boolean;
}

export type Transition = "started" | "checked" | "advanced" | "paused" | "resumed" | "promoted" | "rolled-back" | "failed" | "waiting";

/** A transition's result: the next run and, when traffic must change, the shape to write. */
export interface Move {
  run: RolloutRun;
  shape: TrafficShape | null;
  transition: Transition;
}

export function specOf(r: RolloutPolicy): RolloutSpec {
  return {
    stable: r.stable,
    canary: r.canary,
    routes: [...r.routes],
    weights: rolloutWeights(r),
    intervalMs: r.intervalMs,
    gates: { minSuccessRate: r.gates.minSuccessRate, maxP99Ms: r.gates.maxP99Ms ?? null, minRequests: r.gates.minRequests },
    maxFailedChecks: r.maxFailedChecks,
    progressDeadlineMs: r.progressDeadlineMs,
    onProgressDeadline: r.onProgressDeadline,
    metricsDelayMs: r.metricsDelayMs,
    audience: r.audience !== undefined,
  };
}

const wholeSecondMs = (ms: number) => Math.floor(ms / 1000) * 1000;
const percent = (rate: number) => `${(rate * 100).toFixed(2)}%`;
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const formatCount = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** A new run, due at once; `canaryWeight` is what the operator's document gives the canary now. */
export function newRun(service: string, specKey: string, spec: RolloutSpec, canaryWeight: number, nowMs: number): RolloutRun {
  return {
    service, specKey, spec,
    state: "pending",
    step: -1,
    canaryWeight,
    failedChecks: 0,
    reason: "waiting to start",
    createdAtMs: nowMs,
    progressSinceMs: nowMs,
    windowFromMs: wholeSecondMs(nowMs),
    nextCheckAtMs: nowMs,
    resumeTo: null,
    lastCheck: null,
    policyVersion: null,
    updatedAtMs: nowMs,
    endedAtMs: null,
    revision: 0,
  };
}

const next = (run: RolloutRun, nowMs: number, changes: Partial<RolloutRun>): RolloutRun => ({ ...run, ...changes, updatedAtMs: nowMs, revision: run.revision + 1 });
const ended = (run: RolloutRun, nowMs: number, state: "promoted" | "rolled-back" | "failed", reason: string, canaryWeight: number): RolloutRun =>
  next(run, nowMs, { state, reason, canaryWeight, nextCheckAtMs: null, resumeTo: null, endedAtMs: nowMs });

const stepText = (run: RolloutRun) => `step ${run.step + 1} of ${run.spec.weights.length}`;

/** Judges a measurement against the gates. */
export function judge(measured: CanaryMeasurement, gates: RolloutSpec["gates"]): { verdict: RolloutCheck["verdict"]; findings: string[] } {
  if (measured.requests < gates.minRequests) {
    return { verdict: "insufficient", findings: [`too little traffic to judge: ${formatCount(measured.requests)} requests, ${gates.minRequests} needed`] };
  }
  const findings: string[] = [];
  if (measured.successRate !== null && measured.successRate < gates.minSuccessRate) {
    findings.push(`success rate ${percent(measured.successRate)} below ${percent(gates.minSuccessRate)}`);
  }
  if (gates.maxP99Ms !== null && measured.p99Ms !== null && measured.p99Ms > gates.maxP99Ms) {
    findings.push(`p99 ${Math.round(measured.p99Ms)} ms above ${gates.maxP99Ms} ms`);
  }
  return { verdict: findings.length > 0 ? "fail" : "pass", findings };
}


/**
 * A check is due metricsDelayMs after its window of one interval ends, so every window is a whole
 * interval of telemetry that has arrived.
 */
const dueAfter = (windowFromMs: number, spec: RolloutSpec) => windowFromMs + spec.intervalMs + spec.metricsDelayMs;

/** The window a check measures: from where the last one ended to metricsDelayMs ago (an interval, unless the check is late). */
export function checkWindow(run: RolloutRun, nowMs: number): { fromMs: number; toMs: number } {
  return { fromMs: run.windowFromMs, toMs: Math.max(run.windowFromMs, wholeSecondMs(nowMs - run.spec.metricsDelayMs)) };
}

/** A check's record from what was measured (or why nothing was). */
export function checkOf(run: RolloutRun, window: { fromMs: number; toMs: number }, answer: { ok: true; measurement: CanaryMeasurement; source: "local" | "edge" } | { ok: false; error: string }, nowMs: number): RolloutCheck {
  const base = { atMs: nowMs, step: run.step, canaryWeight: run.canaryWeight, window };
  if (!answer.ok) return { ...base, measured: null, source: null, error: answer.error, verdict: "insufficient", findings: [`could not measure the canary: ${answer.error}`] };
  return { ...base, measured: answer.measurement, source: answer.source, error: null, ...judge(answer.measurement, run.spec.gates) };
}

/** Past the progress deadline: fail (back to stable) or hold (pause where it is), saying why. */
function missedDeadline(run: RolloutRun, why: string, nowMs: number): Move {
  const waited = `no progress for ${seconds(nowMs - run.progressSinceMs)} (progressDeadlineMs ${run.spec.progressDeadlineMs})`;
  if (run.spec.onProgressDeadline === "hold") {
    const from = run.state === "pending" ? "pending" : "progressing";
    const reason = `held by the progress deadline: ${waited}; ${why}. Resume, promote or abort it`;
    return { run: next(run, nowMs, { state: "paused", resumeTo: from, reason, nextCheckAtMs: null }), shape: null, transition: "paused" };
  }
  const reason = `failed by the progress deadline: ${waited}; ${why}. Traffic went back to "${run.spec.stable}"`;
  return { run: ended(run, nowMs, "failed", reason, 0), shape: { canaryWeight: 0, audience: false }, transition: "failed" };
}

/**
 * A pending run at its due time: it starts when the canary has a serving endpoint (`notReady` is
 * null), else waits, until the progress deadline.
 */
export function whenPending(run: RolloutRun, notReady: string | null, nowMs: number): Move {
  if (notReady === null) {
    const canaryWeight = run.spec.weights[0]!;
    const windowFromMs = wholeSecondMs(nowMs);
    const started = next(run, nowMs, {
      state: "progressing",
      step: 0,
      canaryWeight,
      reason: `${stepText({ ...run, step: 0 })}: "${run.spec.canary}" at ${canaryWeight}%`,
      progressSinceMs: nowMs,
      windowFromMs,
      nextCheckAtMs: dueAfter(windowFromMs, run.spec),
    });
    return { run: started, shape: { canaryWeight, audience: run.spec.audience }, transition: "started" };
  }
  if (nowMs - run.progressSinceMs >= run.spec.progressDeadlineMs) return missedDeadline(run, notReady, nowMs);
  const waiting = next(run, nowMs, { reason: `waiting to start: ${notReady}`, nextCheckAtMs: nowMs + Math.min(run.spec.intervalMs, 5_000) });
  return { run: waiting, shape: null, transition: "waiting" };
}

/** A progressing run after a check: advance, promote, roll back, stay, or miss the deadline. */
export function afterCheck(run: RolloutRun, check: RolloutCheck, nowMs: number): Move {
  const checked = { lastCheck: check, windowFromMs: check.window.toMs, nextCheckAtMs: Math.max(nowMs + 1_000, dueAfter(check.window.toMs, run.spec)) };
  const { spec } = run;
  if (check.verdict === "pass") {
    if (run.step >= spec.weights.length - 1) {
      const reason = `promoted: every step passed; "${spec.canary}" takes all traffic`;
      return { run: ended(next(run, nowMs, checked), nowMs, "promoted", reason, 100), shape: { canaryWeight: 100, audience: false }, transition: "promoted" };
    }
    const step = run.step + 1;
    const canaryWeight = spec.weights[step]!;
    const advanced = next(run, nowMs, { ...checked, step, canaryWeight, progressSinceMs: nowMs, reason: `${stepText({ ...run, step })}: "${spec.canary}" at ${canaryWeight}%` });
    return { run: advanced, shape: { canaryWeight, audience: spec.audience }, transition: "advanced" };
  }
  if (check.verdict === "fail") {
    const failedChecks = run.failedChecks + 1;
    if (failedChecks > spec.maxFailedChecks) {
      const reason = `rolled back: ${check.findings.join("; ")} (failed check ${failedChecks}, ${spec.maxFailedChecks} tolerated); traffic went back to "${spec.stable}"`;
      return { run: ended(next(run, nowMs, { ...checked, failedChecks }), nowMs, "rolled-back", reason, 0), shape: { canaryWeight: 0, audience: false }, transition: "rolled-back" };
    }
    const tolerated = next(run, nowMs, { ...checked, failedChecks, reason: `${stepText(run)}: failed check ${failedChecks} of ${spec.maxFailedChecks} tolerated: ${check.findings.join("; ")}` });
    if (nowMs - run.progressSinceMs >= spec.progressDeadlineMs) return missedDeadline(tolerated, check.findings.join("; "), nowMs);
    return { run: tolerated, shape: null, transition: "checked" };
  }
  const stayed = next(run, nowMs, { ...checked, reason: `${stepText(run)}: ${check.findings.join("; ")}` });
  if (nowMs - run.progressSinceMs >= spec.progressDeadlineMs) return missedDeadline(stayed, check.findings.join("; "), nowMs);
  return { run: stayed, shape: null, transition: "checked" };
}

/** An operator's action on a run; an action that does not apply to its state is refused with why. */
export function act(run: RolloutRun, action: RolloutAction, by: string, nowMs: number): Move | { refused: string } {
  const where = run.state === "progressing" ? `${run.state}, ${stepText(run)}` : run.state;
  if (!isActive(run.state)) {
    return { refused: `the rollout of "${run.service}" already ended (${run.state}: ${run.reason}); change its rollout block to start another` };
  }
  switch (action) {
    case "pause": {
      if (run.state === "paused") return { refused: `the rollout of "${run.service}" is already paused (${run.reason})` };
      const reason = `paused by ${by} at ${run.canaryWeight}% for "${run.spec.canary}"`;
      return { run: next(run, nowMs, { state: "paused", resumeTo: run.state, reason, nextCheckAtMs: null }), shape: null, transition: "paused" };
    }
    case "resume": {
      if (run.state !== "paused") return { refused: `the rollout of "${run.service}" is not paused (${where})` };
      const state = run.resumeTo ?? "progressing";
      const windowFromMs = wholeSecondMs(nowMs);
      // A fresh window and a fresh deadline: what happened while paused says nothing about the step.
      const resumed = next(run, nowMs, {
        state,
        resumeTo: null,
        reason: state === "pending" ? `resumed by ${by}; waiting to start` : `resumed by ${by}: ${stepText(run)}, "${run.spec.canary}" at ${run.canaryWeight}%`,
        progressSinceMs: nowMs,
        windowFromMs,
        nextCheckAtMs: state === "pending" ? nowMs : dueAfter(windowFromMs, run.spec),
      });
      return { run: resumed, shape: null, transition: "resumed" };
    }
    case "promote":
      return { run: ended(run, nowMs, "promoted", `promoted by ${by} at ${where}; "${run.spec.canary}" takes all traffic`, 100), shape: { canaryWeight: 100, audience: false }, transition: "promoted" };
    case "abort":
      return { run: ended(run, nowMs, "rolled-back", `aborted by ${by} at ${where}; traffic went back to "${run.spec.stable}"`, 0), shape: { canaryWeight: 0, audience: false }, transition: "rolled-back" };
  }
}
