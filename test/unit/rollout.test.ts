// Staged rollouts, pure parts: the schema and its errors, the state machine's transitions, what a
// rollout writes into a service's section and what it guards, the gate query run on the real SQL
// engine, and the scopes of the rollout routes.
import { describe, expect, it } from "vitest";
import { requiredAdminScope } from "../../auth/admin-token.ts";
import { runQuery } from "../../analytics/sql/index.ts";
import { toDataPoint, type RequestRecord } from "../../analytics/request-layout.ts";
import type { AnalyticsRow } from "../../analytics/types.ts";
import { act, afterCheck, checkOf, checkWindow, judge, newRun, specOf, whenPending } from "../../durable/rollout-machine.ts";
import type { RolloutRun } from "../../policies/rollout-run.ts";
import { canaryMeasurementOf, canaryMetricsSql } from "../../durable/rollout-metrics.ts";
import { heldTrafficChanges, rolloutSpecKey, shapeSection } from "../../durable/rollout-shape.ts";
import { audienceHeaderMatch, rolloutWeights, type RolloutPolicy } from "../../policies/rollout.ts";
import { anchored, compilePolicyRegex } from "../../policies/regex.ts";
import { validatePolicy, type ServicePolicy } from "../../policies/schema.ts";
import { describeRollout } from "../../scripts/cli-rollout.ts";

function service(rollout: Record<string, unknown> | undefined, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endpoints: [
      { id: "r1", binding: "R1", labels: { version: "v1" } },
      { id: "r3", binding: "R3", labels: { version: "v3" } },
    ],
    subsets: { v1: { version: "v1" }, v3: { version: "v3" }, v2: { version: "v2" } },
    routes: [
      { name: "jason", match: [{ headers: { "end-user": { exact: "jason" } } }], to: [{ subset: "v2" }] },
      { name: "default", match: [{ path: { prefix: "/" } }], timeoutMs: 2_000, to: [{ subset: "v1", weight: 100 }, { subset: "v3", weight: 0 }] },
    ],
    ...(rollout ? { rollout: { stable: "v1", canary: "v3", routes: ["default"], steps: [5, 25, 50, 100], ...rollout } } : {}),
    ...over,
  };
}

const validate = (svc: Record<string, unknown>) => validatePolicy({ mesh: "m", services: { reviews: svc } });
const errorsOf = (svc: Record<string, unknown>) => {
  const r = validate(svc);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
};
const parsed = (svc: Record<string, unknown>): ServicePolicy => {
  const r = validate(svc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.document.services.reviews!;
};

describe("the rollout schema", () => {
  it("fills in its defaults", () => {
    expect(parsed(service({})).rollout).toEqual({
      stable: "v1", canary: "v3", routes: ["default"], steps: [5, 25, 50, 100], maxWeight: 100, intervalMs: 60_000,
      gates: { minSuccessRate: 0.99, minRequests: 20 }, maxFailedChecks: 0, progressDeadlineMs: 600_000, onProgressDeadline: "fail", metricsDelayMs: 2_000,
    });
  });

  it("spells out steps from a step size and maximum", () => {
    expect(rolloutWeights({ stepWeight: 30, maxWeight: 100 })).toEqual([30, 60, 90, 100]);
    expect(rolloutWeights({ stepWeight: 25, maxWeight: 50 })).toEqual([25, 50]);
    expect(rolloutWeights({ steps: [1, 2], maxWeight: 100 })).toEqual([1, 2]);
    expect(parsed(service({ steps: undefined, stepWeight: 10, maxWeight: 30 })).rollout!.stepWeight).toBe(10);
  });

  it("names the field and what would be accepted for every mistake", () => {
    expect(errorsOf(service({ steps: undefined }))).toEqual(['$.services.reviews.rollout: give the canary\'s weights: "steps" (e.g. [5, 25, 50, 100]) or "stepWeight" (with "maxWeight")']);
    expect(errorsOf(service({ stepWeight: 10 }))).toEqual(['$.services.reviews.rollout.stepWeight: give either "steps" or "stepWeight", not both']);
    expect(errorsOf(service({ steps: [5, 50, 25] }))).toEqual(["$.services.reviews.rollout.steps[2]: steps must increase: 25 follows 50"]);
    expect(errorsOf(service({ steps: [0, 101] }))).toHaveLength(2);
    expect(errorsOf(service({ steps: undefined, stepWeight: 40, maxWeight: 30 }))).toEqual(["$.services.reviews.rollout.maxWeight: maxWeight (30) must be at least stepWeight (40)"]);
    expect(errorsOf(service({ canary: "v9" }))).toEqual(expect.arrayContaining(['$.services.reviews.rollout.canary: unknown subset "v9"; defined subsets: v1, v3, v2']));
    expect(errorsOf(service({ canary: "v1" }))).toEqual(expect.arrayContaining(['$.services.reviews.rollout.canary: the canary must be another subset than the stable one (both are "v1")']));
    expect(errorsOf(service({ routes: ["nope"] }))).toEqual(['$.services.reviews.rollout.routes[0]: unknown route "nope"; routes: jason, default']);
    expect(errorsOf(service({ routes: ["jason"] }))).toEqual([
      '$.services.reviews.rollout.routes[0]: route "jason" must send to exactly the stable and the canary subset ("v1" and "v3") so the rollout can own its weights; it sends to: v2',
    ]);
    expect(errorsOf(service({ routes: ["default", "default"] }))).toEqual(['$.services.reviews.rollout.routes[1]: route "default" is listed twice']);
    expect(errorsOf(service({}, { telemetry: { enabled: false } }))).toEqual([
      "$.services.reviews.telemetry.enabled: a rollout judges the canary by its telemetry: telemetry.enabled must be true while the service has a rollout",
    ]);
    expect(errorsOf(service({ intervalMs: 60_000, progressDeadlineMs: 60_000 }))).toEqual([
      "$.services.reviews.rollout.progressDeadlineMs: progressDeadlineMs (60000) must be longer than intervalMs (60000), or every step would miss it before its first check",
    ]);
    expect(errorsOf(service({ intervalMs: 2_000, metricsDelayMs: 2_000, progressDeadlineMs: 10_000 }))).toEqual(["$.services.reviews.rollout.metricsDelayMs: metricsDelayMs (2000) must be shorter than intervalMs (2000)"]);
    expect(errorsOf(service({ gates: { minRequests: 0 } }))[0]).toMatch(/^\$\.services\.reviews\.rollout\.gates\.minRequests: /);
    expect(errorsOf(service({ bogus: 1 }))[0]).toMatch(/^\$\.services\.reviews\.rollout: Unrecognized key: "bogus"/);
  });

  it("checks the test audience", () => {
    expect(errorsOf(service({ audience: { header: { name: "x-edgemesh-canary", exact: "1" } } }))).toEqual([
      "$.services.reviews.rollout.audience.header.name: x-edgemesh-* headers belong to the mesh and are stripped from requests; pick another name",
    ]);
    expect(errorsOf(service({ audience: { header: { name: "x-canary" } } }))).toEqual(['$.services.reviews.rollout.audience.header: give exactly one of "exact", "prefix", "regex" or "present" (got none)']);
    expect(errorsOf(service({ audience: { header: { name: "x-canary", present: true }, cookie: { name: "c", value: "1" } } }))).toEqual(['$.services.reviews.rollout.audience: give exactly one of "header" or "cookie"']);
    expect(errorsOf(service({ audience: { cookie: { name: "c", value: "a b" } } }))[0]).toMatch(/audience\.cookie\.value: not a valid cookie value/);
    expect(errorsOf(service({ audience: { header: { name: "x", regex: "(a)\\1" } } }))[0]).toMatch(/audience\.header\.regex: backreferences are not supported/);
    const routeMatchingIt = service({ audience: { header: { name: "End-User", exact: "tester" } }, routes: ["default"] });
    (routeMatchingIt.routes as any[])[1].match = [{ headers: { "end-user": { exact: "x" } } }];
    expect(errorsOf(routeMatchingIt)).toEqual(['$.services.reviews.rollout.audience: route "default" already matches on header "end-user"; the audience needs a header the route does not test']);
    const long = service({ audience: { header: { name: "x-canary", present: true } }, routes: ["d".repeat(60)] });
    (long.routes as any[])[1].name = "d".repeat(60);
    expect(errorsOf(long)).toEqual([`$.services.reviews.rollout.routes[0]: the audience route "${"d".repeat(60)}-audience" would be longer than 63 characters; shorten route "${"d".repeat(60)}"`]);
    const taken = service({ audience: { header: { name: "x-canary", present: true } } });
    (taken.routes as any[])[0].name = "default-audience";
    (taken.routes as any[]).push({ name: "last", to: [{ subset: "v1" }] });
    [(taken.routes as any[])[0], (taken.routes as any[])[2]] = [(taken.routes as any[])[2], (taken.routes as any[])[0]];
    expect(errorsOf(taken)).toEqual(['$.services.reviews.rollout.routes[0]: a route named "default-audience" exists elsewhere; the rollout needs that name for the audience route before "default": rename it']);
  });

  it("matches the audience's cookie anywhere in the Cookie header, and nothing else", () => {
    const { header, match } = audienceHeaderMatch({ cookie: { name: "beta.test", value: "on" } });
    expect(header).toBe("cookie");
    const re = compilePolicyRegex(anchored((match as { regex: string }).regex));
    for (const yes of ["beta.test=on", "a=1; beta.test=on", "beta.test=on; b=2", "a=1;beta.test=on;b=2"]) expect(re.testExact(yes), yes).toBe(true);
    for (const no of ["betaxtest=on", "beta.test=onx", "xbeta.test=on", "a=beta.test=on", "beta.test=off", ""]) expect(re.testExact(no), no).toBe(false);
    expect(audienceHeaderMatch({ header: { name: "X-Canary", prefix: "yes" } })).toEqual({ header: "x-canary", match: { prefix: "yes" } });
  });
});

const SPEC = specOf(parsed(service({ steps: [10, 50], intervalMs: 10_000, metricsDelayMs: 2_000, progressDeadlineMs: 30_000, maxFailedChecks: 1, gates: { maxP99Ms: 100 } })).rollout!);
const T0 = 1_700_000_000_000;

function progressingRun(over: Partial<RolloutRun> = {}): RolloutRun {
  return { ...whenPending(newRun("reviews", "key", SPEC, 0, T0), null, T0).run, ...over };
}

const answer = (requests: number, successRate: number, p99Ms = 10) => ({ ok: true as const, measurement: { requests, successRate, p99Ms }, source: "local" as const });

describe("the rollout state machine", () => {
  it("judges a measurement against the gates", () => {
    expect(judge({ requests: 19, successRate: 0, p99Ms: 9_999 }, SPEC.gates)).toEqual({ verdict: "insufficient", findings: ["too little traffic to judge: 19 requests, 20 needed"] });
    expect(judge({ requests: 20, successRate: 0.99, p99Ms: 100 }, SPEC.gates)).toEqual({ verdict: "pass", findings: [] });
    expect(judge({ requests: 20.5, successRate: 0.9, p99Ms: 101 }, SPEC.gates)).toEqual({ verdict: "fail", findings: ["success rate 90.00% below 99.00%", "p99 101 ms above 100 ms"] });
    expect(judge({ requests: 20, successRate: 1, p99Ms: 5_000 }, { ...SPEC.gates, maxP99Ms: null }).verdict).toBe("pass");
  });

  it("starts when the canary can serve, at the first step, with a window on a whole second", () => {
    const run = newRun("reviews", "key", SPEC, 0, T0 + 400);
    expect(whenPending(run, "no endpoints", T0 + 400)).toMatchObject({ shape: null, transition: "waiting", run: { state: "pending", nextCheckAtMs: T0 + 5_400 } });
    const started = whenPending(run, null, T0 + 400);
    expect(started.shape).toEqual({ canaryWeight: 10, audience: false });
    expect(started.run).toMatchObject({ state: "progressing", step: 0, canaryWeight: 10, windowFromMs: T0, nextCheckAtMs: T0 + 12_000, revision: 1 });
    // Never ready: the deadline fails it, saying why.
    const late = whenPending(run, "no endpoints", T0 + 30_400);
    expect(late.transition).toBe("failed");
    expect(late.run.reason).toBe('failed by the progress deadline: no progress for 30 s (progressDeadlineMs 30000); no endpoints. Traffic went back to "v1"');
  });

  it("measures contiguous windows, or a longer one when the check is late", () => {
    const run = progressingRun();
    expect(checkWindow(run, T0 + 12_000)).toEqual({ fromMs: T0, toMs: T0 + 10_000 });
    expect(checkWindow(run, T0 + 47_500)).toEqual({ fromMs: T0, toMs: T0 + 45_000 });
    const next = afterCheck(run, checkOf(run, { fromMs: T0, toMs: T0 + 45_000 }, answer(100, 1), T0 + 47_500), T0 + 47_500).run;
    expect(next.windowFromMs).toBe(T0 + 45_000);
    expect(next.nextCheckAtMs).toBe(T0 + 57_000);
  });

  it("advances, then promotes; tolerates failed checks up to the limit, then rolls back", () => {
    const run = progressingRun();
    const w = { fromMs: T0, toMs: T0 + 10_000 };
    const advanced = afterCheck(run, checkOf(run, w, answer(100, 1), T0 + 12_000), T0 + 12_000);
    expect(advanced).toMatchObject({ transition: "advanced", shape: { canaryWeight: 50, audience: false }, run: { step: 1, canaryWeight: 50, progressSinceMs: T0 + 12_000 } });
    const promoted = afterCheck(advanced.run, checkOf(advanced.run, w, answer(100, 1), T0 + 22_000), T0 + 22_000);
    expect(promoted).toMatchObject({ transition: "promoted", shape: { canaryWeight: 100, audience: false }, run: { state: "promoted", nextCheckAtMs: null, endedAtMs: T0 + 22_000 } });

    const once = afterCheck(run, checkOf(run, w, answer(100, 0.5), T0 + 12_000), T0 + 12_000);
    expect(once).toMatchObject({ transition: "checked", shape: null, run: { state: "progressing", failedChecks: 1, canaryWeight: 10 } });
    expect(once.run.reason).toBe("step 1 of 2: failed check 1 of 1 tolerated: success rate 50.00% below 99.00%");
    const twice = afterCheck(once.run, checkOf(once.run, w, answer(100, 1, 500), T0 + 22_000), T0 + 22_000);
    expect(twice).toMatchObject({ transition: "rolled-back", shape: { canaryWeight: 0, audience: false }, run: { state: "rolled-back", failedChecks: 2, canaryWeight: 0 } });
    expect(twice.run.reason).toBe('rolled back: p99 500 ms above 100 ms (failed check 2, 1 tolerated); traffic went back to "v1"');
  });

  it("acts at the progress deadline only when no check passed, and a measurement error is never a pass", () => {
    const run = progressingRun();
    const w = { fromMs: T0, toMs: T0 + 10_000 };
    const broken = checkOf(run, w, { ok: false, error: "store down" }, T0 + 12_000);
    expect(broken).toMatchObject({ verdict: "insufficient", error: "store down", measured: null, findings: ["could not measure the canary: store down"] });
    expect(afterCheck(run, broken, T0 + 12_000).transition).toBe("checked");
    const failed = afterCheck(run, broken, T0 + 30_000);
    expect(failed).toMatchObject({ transition: "failed", shape: { canaryWeight: 0, audience: false }, run: { state: "failed" } });
    expect(failed.run.reason).toBe('failed by the progress deadline: no progress for 30 s (progressDeadlineMs 30000); could not measure the canary: store down. Traffic went back to "v1"');
    const holding = { ...run, spec: { ...run.spec, onProgressDeadline: "hold" as const } };
    const held = afterCheck(holding, checkOf(holding, w, answer(3, 1), T0 + 30_000), T0 + 30_000);
    expect(held).toMatchObject({ transition: "paused", shape: null, run: { state: "paused", resumeTo: "progressing", nextCheckAtMs: null, canaryWeight: 10 } });
    // Tolerated failures that never turn into a pass also miss the deadline.
    const failing = afterCheck(run, checkOf(run, w, answer(100, 0.5), T0 + 30_000), T0 + 30_000);
    expect(failing.transition).toBe("failed");
  });

  it("takes the operator's actions where they apply and says why not elsewhere", () => {
    const run = progressingRun();
    const paused = act(run, "pause", "ann", T0 + 1_000);
    expect(paused).toMatchObject({ transition: "paused", shape: null, run: { state: "paused", resumeTo: "progressing", nextCheckAtMs: null, reason: 'paused by ann at 10% for "v3"' } });
    if (!("run" in paused)) throw new Error("refused");
    expect(act(paused.run, "pause", "ann", T0)).toEqual({ refused: 'the rollout of "reviews" is already paused (paused by ann at 10% for "v3")' });
    expect(act(run, "resume", "ann", T0)).toEqual({ refused: 'the rollout of "reviews" is not paused (progressing, step 1 of 2)' });
    const resumed = act(paused.run, "resume", "ann", T0 + 60_500);
    expect(resumed).toMatchObject({ transition: "resumed", run: { state: "progressing", progressSinceMs: T0 + 60_500, windowFromMs: T0 + 60_000, nextCheckAtMs: T0 + 72_000 } });
    expect(act(run, "promote", "ann", T0)).toMatchObject({ transition: "promoted", shape: { canaryWeight: 100, audience: false }, run: { state: "promoted", reason: 'promoted by ann at progressing, step 1 of 2; "v3" takes all traffic' } });
    const aborted = act(run, "abort", "ann", T0);
    expect(aborted).toMatchObject({ transition: "rolled-back", shape: { canaryWeight: 0, audience: false }, run: { state: "rolled-back" } });
    if (!("run" in aborted)) throw new Error("refused");
    expect(act(aborted.run, "resume", "ann", T0)).toEqual({ refused: 'the rollout of "reviews" already ended (rolled-back: aborted by ann at progressing, step 1 of 2; traffic went back to "v1"); change its rollout block to start another' });
    // A pending run paused resumes to pending, due at once.
    const pending = act(newRun("reviews", "key", SPEC, 0, T0), "pause", "ann", T0);
    if (!("run" in pending)) throw new Error("refused");
    expect(act(pending.run, "resume", "ann", T0 + 5)).toMatchObject({ run: { state: "pending", nextCheckAtMs: T0 + 5 } });
  });
});

describe("what a rollout writes and guards", () => {
  const withAudience = service({ audience: { header: { name: "x-canary", exact: "yes" } } });
  const rollout = parsed(withAudience).rollout as RolloutPolicy;

  it("writes the weights and the audience route into the stored section, leaving everything else as written", () => {
    const shaped = shapeSection(withAudience as never, rollout, { canaryWeight: 25, audience: true }) as any;
    expect(shaped.routes.map((r: any) => r.name)).toEqual(["jason", "default-audience", "default"]);
    expect(shaped.routes[2]).toEqual({ name: "default", match: [{ path: { prefix: "/" } }], timeoutMs: 2_000, to: [{ subset: "v1", weight: 75 }, { subset: "v3", weight: 25 }] });
    expect(shaped.routes[1]).toEqual({
      name: "default-audience",
      match: [{ path: { prefix: "/" }, headers: { "x-canary": { exact: "yes" } } }],
      timeoutMs: 2_000,
      to: [{ subset: "v3", weight: 100 }],
    });
    expect(shaped.routes[0]).toBe((withAudience.routes as unknown[])[0]);
    expect(shaped.rollout).toBe(withAudience.rollout);
    // The result is a valid service, and the next step replaces the audience route rather than adding one.
    expect(errorsOf(shaped)).toEqual([]);
    const again = shapeSection(shaped, rollout, { canaryWeight: 50, audience: true }) as any;
    expect(again.routes.map((r: any) => r.name)).toEqual(["jason", "default-audience", "default"]);
    const ended = shapeSection(again, rollout, { canaryWeight: 100, audience: false }) as any;
    expect(ended.routes.map((r: any) => r.name)).toEqual(["jason", "default"]);
    expect(ended.routes[1].to).toEqual([{ subset: "v1", weight: 0 }, { subset: "v3", weight: 100 }]);
    // A route without matches gets the audience's match alone.
    const bare = structuredClone(withAudience) as any;
    delete bare.routes[1].match;
    expect((shapeSection(bare, rollout, { canaryWeight: 5, audience: true }) as any).routes[1].match).toEqual([{ headers: { "x-canary": { exact: "yes" } } }]);
  });

  it("identifies a rollout by its block and its subsets' selectors", () => {
    const base = rolloutSpecKey(parsed(withAudience));
    expect(rolloutSpecKey(parsed(service(undefined)))).toBeNull();
    expect(rolloutSpecKey(parsed({ ...withAudience, routes: (shapeSection(withAudience as never, rollout, { canaryWeight: 25, audience: true }) as any).routes }))).toBe(base);
    expect(rolloutSpecKey(parsed({ ...withAudience, rollout: { ...(withAudience.rollout as object), intervalMs: 60_000 } }))).toBe(base);
    expect(rolloutSpecKey(parsed({ ...withAudience, subsets: { v1: { version: "v1" }, v3: { version: "v4" }, v2: { version: "v2" } } }))).not.toBe(base);
    expect(rolloutSpecKey(parsed({ ...withAudience, rollout: { ...(withAudience.rollout as object), maxFailedChecks: 1 } }))).not.toBe(base);
  });

  it("tells what a document would change of the traffic a rollout holds", () => {
    const spec = specOf(rollout);
    const active = parsed(shapeSection(withAudience as never, rollout, { canaryWeight: 25, audience: true }) as never);
    expect(heldTrafficChanges(active, active, spec, true)).toEqual([]);
    const other = parsed({ ...(shapeSection(withAudience as never, rollout, { canaryWeight: 25, audience: true }) as object), snapshotTtlMs: 5_000 });
    expect(heldTrafficChanges(active, other, spec, true)).toEqual([]);
    expect(heldTrafficChanges(active, parsed(withAudience), spec, true)).toEqual(['route "default" would send v1 100, v3 0 instead of v1 75, v3 25', 'the audience route "default-audience" would change']);
    expect(heldTrafficChanges(active, parsed(withAudience), spec, false)).toEqual(['route "default" would send v1 100, v3 0 instead of v1 75, v3 25']);
  });
});

describe("the gate query", () => {
  const NOW_MS = Date.UTC(2024, 4, 1, 12, 0, 0);
  function row(over: Partial<RequestRecord> & { atMs: number }): AnalyticsRow {
    const record: RequestRecord = {
      mesh: "m", source: "web", destination: "reviews", route: "default", subset: "v3", endpoint: "r3", outcome: "ok",
      colo: "LCL", method: "GET", reason: "", sampleWeight: 1, status: 200, latencyMs: 10, attempts: 1, requestBytes: -1, responseBytes: -1, hedged: false,
      ...over,
    };
    const p = toDataPoint(record);
    return { dataset: "edgemesh_requests", timestampMs: over.atMs, sampleInterval: 1, index1: p.indexes[0], blobs: p.blobs, doubles: p.doubles };
  }
  const from = NOW_MS - 60_000;
  const to = NOW_MS - 30_000;
  const rows = [
    row({ atMs: from, latencyMs: 10 }),
    row({ atMs: from + 999, latencyMs: 20, sampleWeight: 3 }),
    row({ atMs: to - 1, latencyMs: 900, status: 503, outcome: "failed" }),
    row({ atMs: from + 5_000, latencyMs: 30, status: 404 }),
    // Outside the window, another subset, service or mesh: never counted.
    row({ atMs: from - 1, latencyMs: 5_000, status: 500 }),
    row({ atMs: to, latencyMs: 5_000, status: 500 }),
    row({ atMs: from + 1, subset: "v1", status: 500 }),
    row({ atMs: from + 1, destination: "ratings", status: 500 }),
    row({ atMs: from + 1, mesh: "other", status: 500 }),
  ];

  it("counts the canary's requests in the window, weighted, with its success rate and p99", () => {
    const sql = canaryMetricsSql({ mesh: "m", service: "reviews", subset: "v3", fromMs: from, toMs: to }, "edgemesh_requests");
    const measured = canaryMeasurementOf(runQuery(sql, rows, { nowMs: NOW_MS }));
    expect(measured.requests).toBe(6);
    expect(measured.successRate).toBeCloseTo(5 / 6, 10);
    expect(measured.p99Ms).toBe(900);
  });

  it("answers nothing measured for an empty window, and quotes names", () => {
    const sql = canaryMetricsSql({ mesh: "m", service: "reviews", subset: "v3", fromMs: NOW_MS, toMs: NOW_MS + 10_000 }, "edgemesh_requests");
    expect(canaryMeasurementOf(runQuery(sql, rows, { nowMs: NOW_MS }))).toEqual({ requests: 0, successRate: null, p99Ms: null });
    expect(canaryMetricsSql({ mesh: "m", service: "o'x", subset: "v3", fromMs: 1_500, toMs: 2_999 }, "d")).toContain("blob3 = 'o\\'x' AND blob5 = 'v3'\n  AND timestamp >= toDateTime(1) AND timestamp < toDateTime(2)");
  });
});

describe("rollout routes and CLI text", () => {
  it("need read to look and write to act", () => {
    expect(requiredAdminScope("GET", "/v1/rollouts")).toBe("read");
    expect(requiredAdminScope("GET", "/v1/rollouts/reviews")).toBe("read");
    for (const action of ["pause", "resume", "promote", "abort"]) expect(requiredAdminScope("POST", `/v1/rollouts/reviews/${action}`)).toBe("write");
  });

  it("shows state, weights, gates and the last check against them", () => {
    const run = progressingRun();
    const checked = afterCheck(run, checkOf(run, { fromMs: T0, toMs: T0 + 10_000 }, answer(12, 1), T0 + 12_000), T0 + 12_000).run;
    const when = (ms: number) => `@${(ms - T0) / 1000}`;
    expect(describeRollout({ ...checked, stableWeight: 90 }, when)).toBe([
      "reviews  PROGRESSING  step 1 of 2 (10, 50)",
      "  traffic: v3 10%  v1 90%  on route default",
      "  why: step 1 of 2: too little traffic to judge: 12 requests, 20 needed",
      "  gates per 10 s interval: success >= 99.00%, p99 <= 100 ms, at least 20 requests; failed checks 0 (1 tolerated)",
      "  last check @12 over 22:13:20-22:13:30: 12 requests, success 100.00%, p99 10 ms -> INSUFFICIENT (too little traffic to judge: 12 requests, 20 needed)",
      "  next check @22; progress deadline @30 (then fail)",
    ].join("\n"));
  });
});
