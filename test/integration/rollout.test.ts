// Staged rollouts in the real runtime, with short intervals: a healthy canary is promoted step by
// step (each step a policy version authored by the rollout, with events), a canary failing 10% of
// its requests is rolled back at the first check, a canary without traffic fails or holds at the
// progress deadline and says why. Traffic comes from a load client inside workerd; every test has
// a mesh of its own.
import { afterEach, describe, expect, it } from "vitest";
import { apiService, document, startRolloutMesh, type RolloutMesh } from "./rollout-helpers.ts";
import { eventually } from "../control-helpers.ts";

let m: RolloutMesh | undefined;
afterEach(async () => {
  await m?.dispose();
  m = undefined;
});

const INTERVAL_MS = 3_000;

describe("a rollout driven by telemetry", () => {
  it("promotes a healthy canary step by step, each step a policy version by the rollout, with events", async () => {
    m = await startRolloutMesh();
    const applied = await m.apply(document(apiService({
      steps: [20, 50, 100],
      intervalMs: INTERVAL_MS,
      metricsDelayMs: 1_000,
      gates: { minSuccessRate: 0.95, minRequests: 10 },
      audience: { header: { name: "x-canary", exact: "yes" } },
      progressDeadlineMs: 60_000,
    })), { "x-edgemesh-author": "alice" });
    expect(applied.status).toBe(201);
    const traffic = m.traffic(40);
    try {
      const done = await eventually(() => m!.rollout(), (r) => r.state !== "pending" && r.state !== "progressing", 90_000, 250);
      expect(done.state, done.reason).toBe("promoted");
    } finally {
      await traffic.stop();
    }
    const status = await m.rollout();
    expect(status).toMatchObject({ state: "promoted", canaryWeight: 100, stableWeight: 0, step: 2, failedChecks: 0 });

    // Every step is a version authored by the rollout, in order, after the operator's own.
    const versions = (await m.history()).slice().reverse();
    expect(versions[0]).toMatchObject({ version: 1, author: "alice" });
    const byRollout = versions.filter((v: any) => v.author === "rollout:api");
    expect(byRollout.map((v: any) => v.message)).toEqual([
      expect.stringMatching(/step 1 of 3: "canary" at 20%/),
      expect.stringMatching(/step 2 of 3: "canary" at 50%/),
      expect.stringMatching(/step 3 of 3: "canary" at 100%/),
      expect.stringMatching(/promoted/),
    ]);
    // The diff of the first step: the weights moved and the audience route came in before "main".
    const first = byRollout[0].version;
    const diff = (await (await m.mesh.admin(`/v1/policy/diff?from=1&to=${first}`)).json()) as { changes: { path: string; op: string; to: unknown }[] };
    expect(diff.changes).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: "$.services.api.routes[0].name", to: "main-audience" }),
      expect.objectContaining({ path: "$.services.api.routes[1]", op: "added" }),
    ]));
    const active = (await (await m.mesh.admin("/v1/policy")).json()) as any;
    expect(active.document.services.api.routes).toEqual([{ name: "main", to: [{ subset: "stable", weight: 0 }, { subset: "canary", weight: 100 }] }]);

    // The events say so, with the measured values against the gates.
    const events = await m.events("rollout.created,rollout.started,rollout.checked,rollout.advanced,rollout.promoted");
    expect(events.filter((e: any) => e.type !== "rollout.checked").map((e: any) => `${e.type} ${e.data.canaryWeight}`)).toEqual([
      "rollout.created 0", "rollout.started 20", "rollout.advanced 50", "rollout.advanced 100", "rollout.promoted 100",
    ]);
    // Each move followed a passing check (a check before the traffic arrived may have found too little).
    events.forEach((e: any, i: number) => {
      if (e.type === "rollout.advanced" || e.type === "rollout.promoted") expect(events[i - 1].data.check.verdict).toBe("pass");
    });
    const checks = events.filter((e: any) => e.type === "rollout.checked");
    console.log(JSON.stringify(checks.map((c: any) => c.data.check)));
    for (const c of checks.filter((e: any) => e.data.check.verdict === "pass")) {
      expect(c.data.check.measured.requests).toBeGreaterThanOrEqual(10);
      expect(c.data.check.measured.successRate).toBe(1);
      expect(c.data.gates).toEqual({ minSuccessRate: 0.95, maxP99Ms: null, minRequests: 10 });
    }
    expect(checks.every((c: any) => c.data.check.verdict !== "fail")).toBe(true);
    // After promotion the canary answers everything.
    const after = await m.burst(40);
    expect(after.endpoints).toEqual({ "api-canary": 40 });
  }, 120_000);
});
