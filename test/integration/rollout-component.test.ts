// The rollout component alone over real Durable Object storage (test/workers/rollout-harness.ts,
// a fresh object per test): runs are created from the policy, are due when they say, write one
// version per step, survive a restart, drop a check an operator overtook, and guard the traffic
// they hold. Time is passed in; measurements are whatever the test sets.
import { Log, LogLevel, Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPATIBILITY_DATE } from "../../scripts/mesh.ts";
import { bundleTestWorker } from "./bundle-test-worker.ts";

let mf: Miniflare;
let ns: Awaited<ReturnType<Miniflare["getDurableObjectNamespace"]>>;

beforeAll(async () => {
  const script = await bundleTestWorker("test/workers/rollout-harness.ts");
  mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    ...script,
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: { HARNESS: { className: "RolloutHarness", useSQLite: true } },
  });
  await mf.ready;
  ns = await mf.getDurableObjectNamespace("HARNESS");
});
afterAll(async () => mf?.dispose());

const fresh = () => ns.get(ns.idFromName(crypto.randomUUID())) as any;

const T0 = 1_700_000_000_000;
const INTERVAL = 10_000;
const DELAY = 2_000;

function doc(rollout: Record<string, unknown> | null, weights = { stable: 100, canary: 0 }, extra: Record<string, unknown> = {}): any {
  return {
    mesh: "m",
    services: {
      api: {
        endpoints: [
          { id: "a", binding: "A", labels: { v: "1" } },
          { id: "b", binding: "B", labels: { v: "2" } },
        ],
        subsets: { stable: { v: "1" }, canary: { v: "2" } },
        routes: [{ name: "main", match: [{ path: { prefix: "/api" } }], to: [{ subset: "stable", weight: weights.stable }, { subset: "canary", weight: weights.canary }] }],
        ...(rollout ? { rollout: { stable: "stable", canary: "canary", routes: ["main"], intervalMs: INTERVAL, metricsDelayMs: DELAY, progressDeadlineMs: 60_000, ...rollout } } : {}),
        ...extra,
      },
      other: { endpoints: [{ id: "o", binding: "O" }] },
    },
  };
}

const healthy = (requests = 100) => ({ ok: true, measurement: { requests, successRate: 1, p99Ms: 12 }, source: "local" });
const weightsOf = (section: any, route = "main") => Object.fromEntries(section.routes.find((r: any) => r.name === route).to.map((d: any) => [d.subset, d.weight]));

describe("rollout component", () => {
  it("creates a run from the policy, starts it when due, and is next due one interval plus the metrics delay later", async () => {
    const h = fresh();
    expect(await h.apply(doc({ steps: [10, 50] }), T0)).toEqual({ ok: true, version: 1 });
    expect(await h.get("api")).toMatchObject({ state: "pending", step: -1, canaryWeight: 0, nextCheckAtMs: T0 });
    expect(await h.get("other")).toBeNull();
    expect((await h.takeEmitted()).map((e: any) => e.type)).toEqual(["rollout.created"]);
    expect(await h.nextDueMs()).toBe(T0);

    // Not ready: it waits (and says why), and looks again within 5 s.
    await h.setNotReady('subset "canary" of "api" has no endpoints');
    await h.runDue(T0 + 300);
    expect(await h.get("api")).toMatchObject({ state: "pending", reason: 'waiting to start: subset "canary" of "api" has no endpoints', nextCheckAtMs: T0 + 5_300 });
    await h.setNotReady(null);
    await h.runDue(T0 + 5_300);
    const started = await h.get("api");
    expect(started).toMatchObject({ state: "progressing", step: 0, canaryWeight: 10, stableWeight: 90, policyVersion: 2, windowFromMs: T0 + 5_000, nextCheckAtMs: T0 + 5_000 + INTERVAL + DELAY });
    expect(weightsOf(await h.activeSection("api"))).toEqual({ stable: 90, canary: 10 });
    expect(await h.takeWrites()).toEqual([{ service: "api", author: "rollout:api", message: 'rollout api: step 1 of 2: "canary" at 10%', version: 2 }]);
    // Not due before its time.
    await h.runDue(T0 + 5_000 + INTERVAL);
    expect(await h.takeWindows()).toEqual([]);
  });

  it("advances on passed checks over contiguous windows, promotes after the last step, and emits each check with its measurements", async () => {
    const h = fresh();
    await h.apply(doc({ steps: [10, 50], gates: { minSuccessRate: 0.99, maxP99Ms: 200, minRequests: 20 } }), T0);
    await h.runDue(T0);
    await h.setMeasurement(healthy());
    const first = (await h.get("api")).nextCheckAtMs;
    await h.runDue(first);
    expect(await h.get("api")).toMatchObject({ state: "progressing", step: 1, canaryWeight: 50, policyVersion: 3 });
    const second = (await h.get("api")).nextCheckAtMs;
    await h.runDue(second + 500);
    expect(await h.get("api")).toMatchObject({ state: "promoted", canaryWeight: 100, stableWeight: 0, nextCheckAtMs: null, endedAtMs: second + 500, policyVersion: 4 });
    expect(weightsOf(await h.activeSection("api"))).toEqual({ stable: 0, canary: 100 });
    // Each window starts where the last ended and ends metricsDelayMs before its check.
    expect((await h.takeWindows()).map((w: any) => [w.fromMs - T0, w.toMs - T0, w.subset, w.service, w.mesh])).toEqual([
      [0, INTERVAL, "canary", "api", "m"],
      [INTERVAL, 2 * INTERVAL, "canary", "api", "m"],
    ]);
    const events = await h.takeEmitted();
    expect(events.map((e: any) => e.type)).toEqual(["rollout.created", "rollout.started", "rollout.checked", "rollout.advanced", "rollout.checked", "rollout.promoted"]);
    expect(events[2].data).toMatchObject({ step: 1, canaryWeight: 10, check: { verdict: "pass", measured: { requests: 100, successRate: 1, p99Ms: 12 } }, gates: { minSuccessRate: 0.99, maxP99Ms: 200, minRequests: 20 } });
    expect(events[3].data).toMatchObject({ step: 2, canaryWeight: 50, fromWeight: 10, version: 3, by: "rollout" });
    expect(events[5].data).toMatchObject({ state: "promoted", canaryWeight: 100, version: 4 });
  });

  it("rolls back past the tolerated failed checks and fails or holds at the progress deadline", async () => {
    const h = fresh();
    await h.apply(doc({ steps: [10, 50], maxFailedChecks: 1 }), T0);
    await h.runDue(T0);
    await h.setMeasurement({ ok: true, measurement: { requests: 200, successRate: 0.9, p99Ms: 5 }, source: "local" });
    let due = (await h.get("api")).nextCheckAtMs;
    await h.runDue(due);
    expect(await h.get("api")).toMatchObject({ state: "progressing", failedChecks: 1, canaryWeight: 10 });
    due = (await h.get("api")).nextCheckAtMs;
    await h.runDue(due);
    const rolledBack = await h.get("api");
    expect(rolledBack).toMatchObject({ state: "rolled-back", failedChecks: 2, canaryWeight: 0 });
    expect(rolledBack.reason).toBe('rolled back: success rate 90.00% below 99.00% (failed check 2, 1 tolerated); traffic went back to "stable"');
    expect(weightsOf(await h.activeSection("api"))).toEqual({ stable: 100, canary: 0 });

    // Too little traffic, with "hold": paused at its weights once the deadline passes, and says why.
    const g = fresh();
    await g.apply(doc({ steps: [10, 50], progressDeadlineMs: 30_000, onProgressDeadline: "hold" }), T0);
    await g.runDue(T0);
    await g.setMeasurement(healthy(3));
    for (let i = 0; i < 3; i++) await g.runDue((await g.get("api")).nextCheckAtMs);
    const held = await g.get("api");
    expect(held).toMatchObject({ state: "paused", resumeTo: "progressing", canaryWeight: 10, nextCheckAtMs: null });
    expect(held.reason).toBe("held by the progress deadline: no progress for 32 s (progressDeadlineMs 30000); too little traffic to judge: 3 requests, 20 needed. Resume, promote or abort it");
    // A telemetry store that cannot answer counts as "cannot judge" too, never as a pass.
    await g.act("api", "resume", "op", T0 + 40_000);
    await g.setMeasurement({ ok: false, error: "telemetry store: boom" });
    await g.runDue((await g.get("api")).nextCheckAtMs);
    expect((await g.get("api")).lastCheck).toMatchObject({ verdict: "insufficient", error: "telemetry store: boom", findings: ["could not measure the canary: telemetry store: boom"] });
  });

  it("keeps its runs across a restart, and drops a check that an operator's action overtook", async () => {
    const h = fresh();
    await h.apply(doc({ steps: [10, 50] }), T0);
    await h.runDue(T0);
    await h.restart();
    expect(await h.get("api")).toMatchObject({ state: "progressing", canaryWeight: 10 });
    expect(await h.nextDueMs()).toBe(T0 + INTERVAL + DELAY);

    await h.setMeasurement(healthy());
    await h.holdMeasurements();
    await h.startRunDue(T0 + INTERVAL + DELAY);
    // The check is measuring; the operator pauses meanwhile.
    for (let i = 0; i < 50 && (await h.takeWindows()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await h.act("api", "pause", "op", T0 + INTERVAL + DELAY)).toMatchObject({ ok: true, rollout: { state: "paused" } });
    await h.releaseMeasurements();
    await new Promise((r) => setTimeout(r, 50));
    // The passed check came too late: the run stays paused at step 1.
    expect(await h.get("api")).toMatchObject({ state: "paused", step: 0, canaryWeight: 10 });
    expect((await h.takeEmitted()).filter((e: any) => e.type === "rollout.checked")).toEqual([]);
  });

  it("refuses actions that do not apply, and leaves the run where it was when its version cannot be written", async () => {
    const h = fresh();
    expect(await h.act("api", "pause", "op", T0)).toMatchObject({ ok: false, status: 404 });
    await h.apply(doc({ steps: [10, 50] }), T0);
    expect(await h.act("api", "resume", "op", T0)).toEqual({ ok: false, status: 409, message: 'the rollout of "api" is not paused (pending)' });
    await h.runDue(T0);
    await h.setFailWrites(true);
    const refused = await h.act("api", "abort", "op", T0 + 1_000);
    expect(refused).toMatchObject({ ok: false, status: 500, message: expect.stringMatching(/could not write the policy version for "rolled-back": writes are switched off/) });
    expect(await h.get("api")).toMatchObject({ state: "progressing", canaryWeight: 10 });
    await h.setFailWrites(false);
    expect(await h.act("api", "abort", "op", T0 + 2_000)).toMatchObject({ ok: true, rollout: { state: "rolled-back" } });
    expect(await h.act("api", "promote", "op", T0 + 3_000)).toMatchObject({ ok: false, status: 409, message: expect.stringMatching(/already ended \(rolled-back: aborted by op/) });
  });

  it("guards what a run holds: its rollout and weights while it runs, the weights it left after", async () => {
    const h = fresh();
    await h.apply(doc({ steps: [10, 50], audience: { cookie: { name: "beta", value: "1" } } }), T0);
    await h.runDue(T0);
    const section = await h.activeSection("api");
    expect(section.routes.map((r: any) => r.name)).toEqual(["main-audience", "main"]);
    expect(section.routes[0]).toEqual({ name: "main-audience", match: [{ path: { prefix: "/api" }, headers: { cookie: { regex: "(?:.*;\\s*)?beta=1(?:;.*)?" } } }], to: [{ subset: "canary", weight: 100 }] });

    const active = (weights: { stable: number; canary: number }, audience = true) => {
      const d = doc({ steps: [10, 50], audience: { cookie: { name: "beta", value: "1" } } }, weights, { snapshotTtlMs: 2_000 });
      if (audience) d.services.api.routes.unshift(section.routes[0]);
      return d;
    };
    // Other changes to the service, or to other services, go through.
    expect(await h.apply(active({ stable: 90, canary: 10 }), T0 + 1)).toMatchObject({ ok: true });
    // The weights, the audience route, or the rollout itself do not.
    expect(await h.apply(active({ stable: 100, canary: 0 }), T0 + 2)).toEqual({
      ok: false,
      refused: 'the rollout of "api" (progressing, step 1 of 2, "canary" at 10%) owns the traffic of its routes while it runs: route "main" would send stable 100, canary 0 instead of stable 90, canary 10. Keep them as the active policy has them (GET /v1/policy), or pause, promote or abort the rollout first',
    });
    expect((await h.apply(active({ stable: 90, canary: 10 }, false), T0 + 3)).refused).toMatch(/the audience route "main-audience" would change/);
    expect((await h.apply(doc(null), T0 + 4)).refused).toMatch(/is in progress and this document removes its rollout; abort it first \(edgemesh rollout abort api\) or let it end$/);
    expect((await h.apply(doc({ steps: [20, 50] }), T0 + 5)).refused).toMatch(/changes its rollout/);
    const { services: _gone, ...noServices } = doc(null);
    expect((await h.apply({ ...noServices, services: { other: doc(null).services.other } }, T0 + 6)).refused).toMatch(/removes the service/);

    // Ended: the same rollout must keep the weights it left; another rollout starts a new run.
    expect(await h.act("api", "promote", "op", T0 + 10)).toMatchObject({ ok: true });
    expect((await h.activeSection("api")).routes.map((r: any) => r.name)).toEqual(["main"]);
    expect((await h.apply(active({ stable: 100, canary: 0 }, false), T0 + 11)).refused).toMatch(/\(ended promoted, "canary" at 100%\) left its routes/);
    expect(await h.apply(active({ stable: 0, canary: 100 }, false), T0 + 12)).toMatchObject({ ok: true });
    expect(await h.get("api")).toMatchObject({ state: "promoted" });
    await h.takeEmitted();
    expect(await h.apply(doc({ steps: [5, 100] }), T0 + 13)).toMatchObject({ ok: true });
    expect(await h.get("api")).toMatchObject({ state: "pending", specKey: expect.stringContaining('"steps":[5,100]') });
    const [created] = await h.takeEmitted();
    expect(created).toMatchObject({ type: "rollout.created", data: { reason: "a new rollout replaces the one that ended promoted; waiting to start" } });
    // Removing the rollout block from an ended run forgets it.
    await h.act("api", "abort", "op", T0 + 14);
    expect(await h.apply(doc(null), T0 + 15)).toMatchObject({ ok: true });
    expect(await h.get("api")).toBeNull();
  });

  it("ends a running rollout that a policy no longer declares, without touching the weights", async () => {
    const h = fresh();
    await h.apply(doc({ steps: [10, 50] }), T0);
    await h.runDue(T0);
    await h.takeEmitted();
    expect(await h.apply(doc(null, { stable: 90, canary: 10 }), T0 + 1_000, true)).toMatchObject({ ok: true });
    expect(await h.get("api")).toBeNull();
    const [failed] = await h.takeEmitted();
    expect(failed).toMatchObject({ type: "rollout.failed", data: { state: "failed", version: null, reason: "ended: the policy in force no longer declares it; the weights stay as that policy has them" } });
    expect(await h.takeWrites()).toEqual([{ service: "api", author: "rollout:api", message: 'rollout api: step 1 of 2: "canary" at 10%', version: 2 }]);
    expect(await h.nextDueMs()).toBeNull();
  });
});
