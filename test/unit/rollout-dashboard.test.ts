// The dashboard's rollout panel and event texts, pure parts: which actions a state allows, what
// confirming does, the gates against the last check, and one line per rollout event.
import { describe, expect, it } from "vitest";
import { eventGroup, eventSummary } from "../../dashboard/src/event-text.ts";
import { actionConsequence, gateRows, rolloutActions, stepText } from "../../dashboard/src/rollout-text.ts";
import type { CanaryMeasurement, RolloutStatus } from "../../policies/rollout-run.ts";

const base: RolloutStatus = {
  service: "reviews",
  specKey: "{}",
  state: "progressing",
  step: 1,
  canaryWeight: 25,
  stableWeight: 75,
  failedChecks: 0,
  reason: 'step 2 of 4: "v3" at 25%',
  createdAtMs: 0,
  progressSinceMs: 0,
  windowFromMs: 0,
  nextCheckAtMs: 60_000,
  resumeTo: null,
  lastCheck: null,
  policyVersion: 7,
  updatedAtMs: 0,
  endedAtMs: null,
  revision: 3,
  spec: {
    stable: "v1", canary: "v3", routes: ["default"], weights: [5, 25, 50, 100], intervalMs: 60_000,
    gates: { minSuccessRate: 0.99, maxP99Ms: 500, minRequests: 20 }, maxFailedChecks: 0, progressDeadlineMs: 600_000, onProgressDeadline: "fail", metricsDelayMs: 0, audience: false,
  },
};

const check = (measured: CanaryMeasurement | null) => ({
  atMs: 0, step: 1, canaryWeight: 25, window: { fromMs: 0, toMs: 60_000 }, measured, source: "local" as const, error: null, verdict: "fail" as const, findings: [],
});

describe("the rollout panel's texts", () => {
  it("offers the actions each state allows", () => {
    expect(rolloutActions("pending")).toEqual(["pause", "promote", "abort"]);
    expect(rolloutActions("progressing")).toEqual(["pause", "promote", "abort"]);
    expect(rolloutActions("paused")).toEqual(["resume", "promote", "abort"]);
    for (const ended of ["promoted", "rolled-back", "failed"] as const) expect(rolloutActions(ended)).toEqual([]);
  });

  it("says what confirming an action does", () => {
    expect(actionConsequence("pause", base)).toBe('The rollout stops at 25% for "v3" and checks stop until it is resumed.');
    expect(actionConsequence("abort", base)).toBe('All traffic goes back to "v1" now and the rollout ends. A new policy version is written.');
    expect(actionConsequence("promote", base)).toBe('"v3" takes all traffic on default now, without the remaining checks. A new policy version is written.');
    expect(stepText(base)).toBe("step 2 of 4");
    expect(stepText({ ...base, step: -1 })).toBe("not started (4 steps)");
  });

  it("puts the last check's measurements against each gate", () => {
    expect(gateRows(base)).toEqual([
      { gate: "Requests in the interval", required: "≥ 20", measured: "–", met: null },
      { gate: "Success rate", required: "≥ 99.0%", measured: "–", met: null },
      { gate: "p99 latency", required: "≤ 500 ms", measured: "–", met: null },
    ]);
    expect(gateRows({ ...base, lastCheck: check({ requests: 240, successRate: 0.9, p99Ms: 120 }) }).map((g) => [g.measured, g.met])).toEqual([["240", true], ["90%", false], ["120 ms", true]]);
    // Too little traffic: the other gates were not judged.
    expect(gateRows({ ...base, lastCheck: check({ requests: 3, successRate: 0.5, p99Ms: 900 }) }).map((g) => g.met)).toEqual([false, null, null]);
    expect(gateRows({ ...base, spec: { ...base.spec, gates: { ...base.spec.gates, maxP99Ms: null } } })).toHaveLength(2);
  });
});

describe("rollout events in the events view", () => {
  const event = (type: string, data: Record<string, unknown>) => ({ seq: 1, atMs: 0, type, data });

  it("group under Rollouts and read as a line", () => {
    expect(eventGroup("rollout.checked")).toBe("rollout");
    expect(eventSummary(event("rollout.checked", { service: "reviews", canaryWeight: 25, check: { verdict: "fail", measured: { requests: 240, successRate: 0.9, p99Ms: 120.4 }, findings: ["success rate 90.00% below 99.00%"] } })))
      .toBe("reviews: check at 25% FAILED (240 requests, success 90.00%, p99 120 ms): success rate 90.00% below 99.00%");
    expect(eventSummary(event("rollout.rolled-back", { service: "reviews", by: "rollout", reason: "rolled back: …", version: 9 }))).toBe("reviews: rollout rolled-back: rolled back: … (v9)");
    expect(eventSummary(event("rollout.paused", { service: "reviews", by: "ana", reason: 'paused by ana at 25% for "v3"', version: null }))).toBe('reviews: rollout paused by ana: paused by ana at 25% for "v3"');
    expect(eventSummary(event("rollout.created", { service: "reviews", stable: "v1", canary: "v3", reason: "waiting to start" }))).toBe("reviews: rollout v1 → v3 declared (waiting to start)");
  });
});
