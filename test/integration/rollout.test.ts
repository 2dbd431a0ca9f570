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
const FAILING_INTERVAL_MS = 4_000;

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
    })));
    expect(applied.status).toBe(201);
    const traffic = m.traffic(40);
    try {
      // While it runs, the test audience sees the canary whatever the weights.
      await eventually(() => m!.rollout(), (r) => r.state === "progressing", 30_000, 100);
      const audience = await eventually(() => m!.burst(30, { "x-canary": "yes" }), (t) => t.endpoints["api-canary"] === 30, 10_000, 100);
      expect(audience.endpoints).toEqual({ "api-canary": 30 });
      const done = await eventually(() => m!.rollout(), (r) => r.state !== "pending" && r.state !== "progressing", 90_000, 250);
      expect(done.state, done.reason).toBe("promoted");
    } finally {
      await traffic.stop();
    }
    const status = await m.rollout();
    expect(status).toMatchObject({ state: "promoted", canaryWeight: 100, stableWeight: 0, step: 2, failedChecks: 0 });

    // Every step is a version authored by the rollout, in order, after the operator's own.
    const versions = (await m.history()).slice().reverse();
    // (The operator's version is authored by the admin token that applied it.)
    expect(versions[0]).toMatchObject({ version: 1, author: "bootstrap" });
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
    for (const c of checks.filter((e: any) => e.data.check.verdict === "pass")) {
      expect(c.data.check.measured.requests).toBeGreaterThanOrEqual(10);
      expect(c.data.check.measured.successRate).toBe(1);
      expect(c.data.gates).toEqual({ minSuccessRate: 0.95, maxP99Ms: null, minRequests: 10 });
    }
    expect(checks.every((c: any) => c.data.check.verdict !== "fail")).toBe(true);
    // After promotion the canary answers everything (once the sidecar has the version).
    const after = await eventually(() => m!.burst(40), (t) => t.endpoints["api-stable"] === undefined, 10_000, 100);
    expect(after.endpoints).toEqual({ "api-canary": 40 });
  }, 120_000);

  it("rolls back a canary that fails 10% of its requests at the first check, within one interval", async () => {
    m = await startRolloutMesh();
    await m.configure("api-canary", { failPercent: 10, failStatus: 500 });
    // Traffic flows before the rollout starts, so its first window is full.
    expect((await m.apply(document(apiService(null)))).status).toBe(201);
    const traffic = m.traffic(100);
    let tally;
    try {
      await m.burst(20);
      // 60% of 100 requests/s over 4 s: about 240 canary requests, so the first window is judged
      // even at a third of that pace, and at least 60 requests without one failure (p ≤ 0.9^60 ≈ 0.2%)
      // would be needed to pass by luck.
      const applied = await m.apply(document(apiService({ steps: [60, 100], intervalMs: FAILING_INTERVAL_MS, metricsDelayMs: 1_000, gates: { minRequests: 60 }, progressDeadlineMs: 60_000 })));
      expect(applied.status).toBe(201);
      const done = await eventually(() => m!.rollout(), (r) => r.state !== "pending" && r.state !== "progressing", 60_000, 100);
      expect(done.state, done.reason).toBe("rolled-back");
    } finally {
      tally = await traffic.stop();
    }
    expect(tally.statuses["500"]).toBeGreaterThan(0);
    const events = await m.events("rollout.started,rollout.checked,rollout.advanced,rollout.rolled-back");
    const types = events.map((e: any) => e.type);
    expect(types).toEqual(["rollout.started", "rollout.checked", "rollout.rolled-back"]);
    const [started, check, rolledBack] = events;
    // At the end of the first interval, once its telemetry is in (the alarm may fire a little late on a busy machine).
    expect(rolledBack.atMs - started.atMs).toBeLessThan(FAILING_INTERVAL_MS + 1_000 + 2_000);
    expect(check.data.check.verdict).toBe("fail");
    expect(check.data.check.measured.requests).toBeGreaterThanOrEqual(60);
    expect(check.data.check.measured.successRate).toBeGreaterThan(0.75);
    expect(check.data.check.measured.successRate).toBeLessThan(0.99);
    expect(check.data.check.findings[0]).toMatch(/^success rate \d+\.\d+% below 99\.00%$/);
    expect(rolledBack.data).toMatchObject({ state: "rolled-back", canaryWeight: 0, by: "rollout" });
    expect(rolledBack.data.reason).toMatch(/rolled back: success rate .* below 99\.00% \(failed check 1, 0 tolerated\); traffic went back to "stable"/);
    expect(rolledBack.data.version).toBeGreaterThan(started.data.version);
    // Traffic is back on the stable subset once the sidecar has the new version.
    const after = await eventually(() => m!.burst(40), (t) => t.endpoints["api-canary"] === undefined, 10_000, 100);
    expect(after.endpoints).toEqual({ "api-stable": 40 });
  }, 120_000);

  it("fails a canary with too little traffic at the progress deadline, or holds it when configured so, and says why", async () => {
    m = await startRolloutMesh();
    const quiet = { steps: [50, 100], intervalMs: 2_000, metricsDelayMs: 500, gates: { minRequests: 1_000 }, progressDeadlineMs: 5_000 };
    expect((await m.apply(document(apiService({ ...quiet, onProgressDeadline: "fail" })))).status).toBe(201);
    const trickle = m.traffic(4);
    try {
      const failed = await eventually(() => m!.rollout(), (r) => r.state === "failed", 30_000, 200);
      expect(failed.reason).toMatch(/^failed by the progress deadline: no progress for \d+(\.\d)? s \(progressDeadlineMs 5000\); too little traffic to judge: \d+ requests, 1000 needed\. Traffic went back to "stable"$/);
      expect(failed.canaryWeight).toBe(0);
      const [event] = await m.events("rollout.failed");
      expect(event.data).toMatchObject({ state: "failed", canaryWeight: 0, reason: failed.reason });
      // The checks before it said the same, one per interval: the rollout never stalled silently.
      const checks = await m.events("rollout.checked");
      expect(checks.length).toBeGreaterThanOrEqual(2);
      for (const c of checks) expect(c.data.check).toMatchObject({ verdict: "insufficient", findings: [expect.stringMatching(/too little traffic to judge/)] });

      // The same rollout with "hold" (another rollout: a new run starts) pauses at its weights instead.
      expect((await m.apply(document(apiService({ ...quiet, onProgressDeadline: "hold" })))).status).toBe(201);
      const held = await eventually(() => m!.rollout(), (r) => r.state === "paused", 30_000, 200);
      expect(held.reason).toMatch(/^held by the progress deadline: .*too little traffic to judge: \d+ requests, 1000 needed\. Resume, promote or abort it$/);
      expect(held.canaryWeight).toBe(50);
      expect(held.nextCheckAtMs).toBeNull();
      const paused = (await m.events("rollout.paused")).at(-1);
      expect(paused.data).toMatchObject({ by: "rollout", canaryWeight: 50 });
      // Nothing moves while held.
      const before = (await m.history()).length;
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await m.history()).length).toBe(before);
      expect((await m.rollout()).state).toBe("paused");
    } finally {
      await trickle.stop();
    }
  }, 120_000);
});
