// Endpoint health on the real runtime: active checks from MeshControl's alarm against binding
// endpoints (through the sidecar) and URL endpoints (Node servers), thresholds in both directions,
// history, alarm rescheduling, and passive health from the sidecars' batched reports. Every test
// has a mesh of its own; waits are for conditions (with generous limits), never fixed sleeps.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { instanceName, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology, sidecarStatus, untilSidecarCurrent } from "../control-helpers.ts";
import { nodeServer, sidecar, sleep, tally, type Fetch } from "../helpers.ts";

const TOPOLOGY = healthTargetTopology("hc", { web: 2 });

const FAST_CHECK = { path: "/healthz", intervalMs: 150, timeoutMs: 100, healthyThreshold: 2, unhealthyThreshold: 3 };

function policy(web: Record<string, unknown> = {}, urlEndpoint?: string): any {
  return {
    mesh: "hc",
    services: {
      web: {
        endpoints: [
          { id: "web-1", binding: "WEB_1" },
          { id: "web-2", binding: "WEB_2" },
          ...(urlEndpoint ? [{ id: "web-url", url: urlEndpoint }] : []),
        ],
        snapshotTtlMs: 200,
        ...web,
      },
    },
  };
}

let mesh: RunningMesh;
let web: Fetch;
let origin: Awaited<ReturnType<typeof nodeServer>>;
const originState = { status: 200, delayMs: 0 };

async function setTarget(id: string, query: string): Promise<void> {
  const worker = await mesh.mf.getWorker(instanceName("hc", id));
  const res = await worker.fetch(`http://target.test/__target?${query}`, { method: "POST" });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

const health = async (id: string) => ((await adminJson(mesh, "/v1/health?service=web")).body.endpoints as any[]).find((e) => e.endpointId === id);
const history = async (id: string) => (await adminJson(mesh, `/v1/health/history?service=web&endpoint=${id}`)).body.transitions as any[];

beforeAll(async () => {
  origin = await nodeServer((req, res) => {
    const reply = () => {
      res.writeHead(req.url === "/healthz" ? originState.status : 200, { "x-echo-endpoint": "web-url" });
      res.end("origin");
    };
    if (req.url === "/healthz" && originState.delayMs > 0) setTimeout(reply, originState.delayMs);
    else reply();
  });
});
afterAll(async () => origin?.close());

beforeEach(async () => {
  originState.status = 200;
  originState.delayMs = 0;
  mesh = await startMesh({ topology: TOPOLOGY });
  web = await sidecar(mesh, "web");
});
afterEach(async () => mesh?.dispose());

describe("active health checks", () => {
  it("takes a binding endpoint out after unhealthyThreshold failures and back after healthyThreshold passes", async () => {
    expect((await mesh.applyPolicy(policy({ healthCheck: FAST_CHECK }))).status).toBe(201);
    await eventually(() => health("web-2"), (h) => h.active.checks >= 2, 15_000);
    expect((await health("web-2")).excluded).toBe(false);

    await setTarget("web-2", "health=503");
    const down = await eventually(() => health("web-2"), (h) => h.excluded, 15_000);
    expect(down.active).toMatchObject({ state: "unhealthy", lastDetail: "status 503 (expected 200)" });
    const snap = (await adminJson(mesh, "/v1/snapshot/web")).body;
    expect(snap.endpoints[1]).toMatchObject({ id: "web-2", healthy: false });
    // Subsets stay whole: the sidecar skips unhealthy members and applies its panic threshold to the full subset.
    expect(snap.subsets["*"]).toEqual([0, 1]);
    // The sidecar follows the snapshot: once it serves it, no traffic to the unhealthy endpoint.
    await untilSidecarCurrent(mesh, "web");
    expect(await tally(() => web("/t"), 40, "x-echo-endpoint")).toEqual({ "web-1": 40 });

    await setTarget("web-2", "health=200");
    const up = await eventually(() => health("web-2"), (h) => !h.excluded, 15_000);
    expect(up.active.state).toBe("healthy");

    const transitions = await history("web-2");
    expect(transitions.slice(0, 2).map((t) => `${t.from}->${t.to}`)).toEqual(["unhealthy->healthy", "healthy->unhealthy"]);
    expect(transitions[1].reason).toMatch(/^3 consecutive failed checks \(threshold 3\); last: status 503/);
    expect(transitions[0].reason).toMatch(/^2 consecutive passed checks \(threshold 2\)/);
    expect(transitions[0].atMs).toBeGreaterThan(transitions[1].atMs);
    expect(transitions.every((t) => t.source === "active")).toBe(true);
    const events = (await adminJson(mesh, "/v1/events?since=0&types=health.changed")).body.events;
    expect(events.filter((e: any) => e.data.endpointId === "web-2").map((e: any) => e.data.to)).toEqual(["unhealthy", "healthy"]);
  });

  it("does not flap below the thresholds", async () => {
    // Failures short of unhealthyThreshold (3) change nothing.
    const strict = { ...FAST_CHECK, intervalMs: 300, timeoutMs: 100, unhealthyThreshold: 3 };
    expect((await mesh.applyPolicy(policy({ healthCheck: strict }))).status).toBe(201);
    await setTarget("web-1", "health=500");
    await eventually(() => health("web-1"), (h) => h.active.consecutiveFail >= 1, 15_000);
    await setTarget("web-1", "health=200");
    const after = await eventually(() => health("web-1"), (h) => h.active.consecutiveOk >= 2, 15_000);
    // However slow the machine, the failures in between stayed below the threshold...
    expect(after.active.state).toBe("healthy");
    expect((await history("web-1")).length).toBe(0);
    expect((await health("web-1")).excluded).toBe(false);
  });

  it("checks URL endpoints directly, counting timeouts as failures", async () => {
    expect((await mesh.applyPolicy(policy({ healthCheck: FAST_CHECK }, origin.url))).status).toBe(201);
    await eventually(() => health("web-url"), (h) => h.active.checks >= 2 && !h.excluded, 15_000);
    originState.delayMs = 400;
    const down = await eventually(() => health("web-url"), (h) => h.excluded, 15_000);
    expect(down.active.lastDetail).toBe("timeout after 100 ms");
    originState.delayMs = 0;
    originState.status = 418;
    await eventually(() => health("web-url"), (h) => h.active.lastDetail === "status 418 (expected 200)", 15_000);
    originState.status = 200;
    await eventually(() => health("web-url"), (h) => !h.excluded, 15_000);
  });

  it("reschedules the alarm at the policy's interval, and stops it when checks are removed", async () => {
    expect((await mesh.applyPolicy(policy({ healthCheck: { ...FAST_CHECK, intervalMs: 200 } }))).status).toBe(201);
    const a = await health("web-1");
    const aAt = Date.now();
    await sleep(2_000);
    const b = await health("web-1");
    // One round per 200 ms at most; a loaded machine may fall behind, so the lower bound has room.
    const rounds = (Date.now() - aAt) / 200;
    expect(b.active.checks - a.active.checks).toBeGreaterThanOrEqual(Math.floor(rounds * 0.3));
    expect(b.active.checks - a.active.checks).toBeLessThanOrEqual(Math.ceil(rounds) + 1);
    // The next alarm is at most one interval ahead (it may be overdue on a busy machine); while the
    // alarm runs there is none set, so look until one is.
    const next = await eventually(() => adminJson(mesh, "/v1/health").then((r) => r.body.nextAlarmAtMs as number | null), (at) => at !== null, 10_000, 20);
    expect(next!).toBeLessThan(Date.now() + 1_000);

    expect((await mesh.applyPolicy(policy({ healthCheck: { ...FAST_CHECK, intervalMs: 2_000, timeoutMs: 100 } }))).status).toBe(201);
    await sleep(300);
    const c = await health("web-1");
    await sleep(1_000);
    const d = await health("web-1");
    // At a 2 s interval a second holds at most one round, however fast or slow the machine.
    expect(d.active.checks - c.active.checks).toBeLessThanOrEqual(1);

    expect((await mesh.applyPolicy(policy())).status).toBe(201);
    await eventually(() => adminJson(mesh, "/v1/health").then((r) => r.body.nextAlarmAtMs), (at) => at === null, 10_000);
  });
});

describe("passive health", () => {
  it("ejects an endpoint mesh-wide from the sidecars' batched reports, and lets it back after ejectionMs", async () => {
    // Few requests suffice: the isolate's own outlier detection stops sending to web-2 after a handful of 5xx.
    const passive = { windowMs: 2_000, minRequests: 3, failurePercent: 50, ejectionMs: 1_500 };
    // Round robin keeps sending web-2 its share until the isolate ejects it (peak-EWMA would shun
    // it after one failure), and the isolate ejects it only after 10 failures, so even when its
    // failures straddle two report windows one of them holds minRequests. A generous retry budget
    // lets every failed try be retried, so the client sees none of them.
    const isolateTolerance = {
      loadBalancer: { algorithm: "round-robin" },
      outlierDetection: { consecutive5xx: 10, consecutiveGatewayErrors: 10 },
      retryBudget: { percent: 100, minRetriesPerSecond: 100 },
    };
    expect((await mesh.applyPolicy(policy({ passiveHealth: passive, ...isolateTolerance }))).status).toBe(201);
    await setTarget("web-2", "failing=1");
    const revalidationsBefore = (await sidecarStatus(mesh, "web")).revalidations as number;
    const startedMs = Date.now();
    const seen = await tally(() => web("/p"), 60, "x-echo-endpoint", 4);
    // The sidecar's retries hide web-2's 503s from the client; the tries still count as failures.
    expect(seen).toEqual({ "web-1": 60 });

    // Reports ride on check-ins, and an isolate checks in only while it has traffic: a burst that
    // ends within one TTL of the last check-in is reported by the next request, so keep a trickle.
    const trickle = async () => {
      await (await web("/tick")).arrayBuffer();
      return health("web-2");
    };
    const ejected = await eventually(trickle, (h) => h.excluded, 15_000);
    expect(ejected.passive.reason).toMatch(/sidecars reported \d+ failed of \d+ requests/);
    // Reports ride on revalidation: at most one per TTL (200 ms), not one per request.
    const revalidations = (await sidecarStatus(mesh, "web")).revalidations - revalidationsBefore;
    const sinceStartMs = Date.now() - startedMs;
    expect(revalidations).toBeLessThanOrEqual(Math.ceil(sinceStartMs / 200) + 1);

    // What a fresh isolate would be given: the bad endpoint is already out.
    const snap = (await adminJson(mesh, "/v1/snapshot/web")).body;
    expect(snap.endpoints.map((e: any) => e.healthy)).toEqual([undefined, false]);
    expect(snap.subsets["*"]).toEqual([0, 1]);
    await untilSidecarCurrent(mesh, "web");
    expect(await tally(() => web("/q"), 30, "x-echo-endpoint")).toEqual({ "web-1": 30 });

    await setTarget("web-2", "failing=0");
    await eventually(() => health("web-2"), (h) => !h.excluded, 15_000);
    const transitions = await history("web-2");
    expect(transitions.slice(0, 2).map((t) => `${t.source}:${t.from}->${t.to}`)).toEqual(["passive:ejected->healthy", "passive:healthy->ejected"]);
  });
});
