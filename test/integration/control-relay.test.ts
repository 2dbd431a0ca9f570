// The distribution tier on the real runtime: sidecars check in with relays (MeshRelay), not with
// MeshControl; MeshControl pushes new generations to the relays that hold a service; relays sum
// passive-health reports and isolates into one report; the authority's load does not follow the
// number of isolates. Each test has its own mesh.
import { afterEach, describe, expect, it } from "vitest";
import { CONTROL_WORKER, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology } from "../control-helpers.ts";
import { sidecar, sleep } from "../helpers.ts";

const TOPOLOGY = healthTargetTopology("rl", { web: 2, api: 1 });

function policy(webTimeoutMs = 1_000, web: Record<string, unknown> = {}): any {
  return {
    mesh: "rl",
    services: {
      web: {
        endpoints: [{ id: "web-1", binding: "WEB_1" }, { id: "web-2", binding: "WEB_2" }],
        subsets: { all: {} },
        routes: [{ name: "all", to: [{ subset: "all" }], timeoutMs: webTimeoutMs }],
        snapshotTtlMs: 200,
        ...web,
      },
      api: { endpoints: [{ id: "api-1", binding: "API_1" }], snapshotTtlMs: 200 },
    },
  };
}

let mesh: RunningMesh | undefined;
afterEach(async () => {
  await mesh?.dispose();
  mesh = undefined;
});

async function relays(m: RunningMesh) {
  return m.mf.getDurableObjectNamespace("MESH_RELAY", CONTROL_WORKER);
}

/** A relay by name, called over RPC as a sidecar would. */
async function relay(m: RunningMesh, name: string): Promise<any> {
  const ns = await relays(m);
  return ns.get(ns.idFromName(name));
}

const checkIn = (service: string, isolateId: string, snap?: any, outcomes?: any[]) => ({
  service, mesh: "rl", isolateId, colo: "LCL",
  knownGeneration: snap?.generation ?? 0, knownPolicyVersion: snap?.policyVersion ?? 0, knownEpoch: snap?.epoch ?? "",
  ...(outcomes ? { outcomes } : {}),
});

describe("relays between MeshControl and the sidecars", () => {
  it("answer the sidecars' check-ins, so MeshControl gets relay reports instead of one call per isolate", async () => {
    mesh = await startMesh({ topology: TOPOLOGY });
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
    const web = await sidecar(mesh, "web");
    for (const end = Date.now() + 1_500; Date.now() < end; await sleep(40)) await (await web("/t")).arrayBuffer();
    const sync = await eventually(() => adminJson(mesh!, "/v1/sync").then((r) => r.body), (s) => s.sidecars.some((x: any) => x.service === "web"), 5_000);
    expect(sync.load.snapshotCalls).toBe(0);
    expect(sync.load.relaySyncs).toBeGreaterThan(0);
    const seen = sync.sidecars.find((x: any) => x.service === "web");
    expect(seen.via).toMatch(/^rl\/enam\/\d+$/);
    expect(sync.relays.map((r: any) => r.relay)).toContain(seen.via);
  });

  it("get a new generation pushed the moment it exists, without any isolate asking", async () => {
    mesh = await startMesh({ topology: TOPOLOGY });
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
    const r = await relay(mesh, "rl/enam/0");
    const first = await r.snapshot(checkIn("web", "iso-1"));
    expect(first.status).toBe("ok");
    const applied = await adminJson(mesh, "/v1/policy", { method: "POST", json: policy(2_000) });
    expect(applied.status).toBe(201);
    // No check-in in between: the relay holds the new generation because it was pushed.
    const status = await eventually(() => r.status(), (s: any) => s.held.web === applied.body.generation, 2_000, 20);
    expect(status.held.web).toBeGreaterThan(first.snapshot.generation);
    const sync = (await adminJson(mesh, "/v1/sync")).body;
    expect(sync.load.relayPushes).toBeGreaterThan(0);
    // An apply that leaves api alone pushes nothing for api: the relay never asked for it anyway.
    expect(status.held.api).toBeUndefined();
  });

  it("repair a missed push from the answer to their next report", async () => {
    mesh = await startMesh({ topology: TOPOLOGY });
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
    const ns = await mesh.mf.getDurableObjectNamespace("MESH_CONTROL", CONTROL_WORKER);
    const authority: any = ns.get(ns.idFromName("rl"));
    const current = await authority.serviceSnapshot("web");
    const report = (held: [string, number][], epoch: string) => ({ relayId: "0".repeat(64), relay: "rl/test/0", epoch, held, wanted: ["nope"], isolates: [], outcomes: [], answers: [] });
    const stale = await authority.relaySync(report([["web", current.generation - 1]], current.epoch));
    expect(stale.snapshots.map((s: any) => [s.service, s.generation])).toEqual([["web", current.generation]]);
    expect(stale.unknown).toEqual(["nope"]);
    const fresh = await authority.relaySync(report([["web", current.generation]], current.epoch));
    expect(fresh.snapshots).toEqual([]);
    // A relay holding another epoch's snapshots (the storage was reset) gets everything again.
    const reset = await authority.relaySync(report([["web", current.generation]], "another-epoch"));
    expect(reset.snapshots.map((s: any) => s.service)).toEqual(["web"]);
  });

  it("sum the passive-health reports of many isolates into one report that ejects a failing endpoint", async () => {
    mesh = await startMesh({ topology: TOPOLOGY });
    const passive = { windowMs: 10_000, minRequests: 20, failurePercent: 50, ejectionMs: 60_000 };
    expect((await mesh.applyPolicy(policy(1_000, { passiveHealth: passive }))).status).toBe(201);
    const r = await relay(mesh, "rl/enam/1");
    const before = (await adminJson(mesh, "/v1/sync")).body.load.relaySyncs as number;
    // Ten isolates, each with 4 failed requests to web-2: none alone reaches minRequests (20).
    for (let i = 0; i < 10; i++) {
      await r.snapshot(checkIn("web", `iso-${i}`, undefined, [{ endpointId: "web-2", requests: 4, failures: 4, latencyMsSum: 40, latencyMsMax: 5 }]));
    }
    const health = await eventually(
      () => adminJson(mesh!, "/v1/health?service=web").then((x) => x.body.endpoints.find((e: any) => e.endpointId === "web-2")),
      (h) => h.excluded,
      5_000,
    );
    expect(health.passive.reason).toMatch(/reported \d+ failed of \d+ requests/);
    const after = (await adminJson(mesh, "/v1/sync")).body;
    // A handful of relay reports, not one call per isolate.
    expect(after.load.relaySyncs - before).toBeLessThanOrEqual(4);
    expect(after.load.snapshotCalls).toBe(0);
    expect(after.sidecars.filter((s: any) => s.via === "rl/enam/1").length).toBe(10);
  });

  it("keep MeshControl's load flat however many isolates check in", async () => {
    mesh = await startMesh({ topology: TOPOLOGY });
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
    const r = await relay(mesh, "rl/enam/2");
    const run = async (isolates: number, ms: number) => {
      const before = (await adminJson(mesh!, "/v1/sync")).body.load;
      const end = Date.now() + ms;
      const snaps = new Map<string, any>();
      let calls = 0;
      await Promise.all(Array.from({ length: isolates }, async (_, i) => {
        while (Date.now() < end) {
          const reply = await r.snapshot(checkIn("web", `iso-${isolates}-${i}`, snaps.get(`${i}`)));
          if (reply.status === "ok") snaps.set(`${i}`, reply.snapshot);
          calls++;
          await sleep(100);
        }
      }));
      const after = (await adminJson(mesh!, "/v1/sync")).body.load;
      return { calls, authority: after.relaySyncs - before.relaySyncs + after.snapshotCalls - before.snapshotCalls };
    };
    const few = await run(2, 2_000);
    const many = await run(40, 2_000);
    // Many more check-ins reach the relay (how many more depends on how busy the machine is)...
    expect(many.calls).toBeGreaterThan(few.calls * 3);
    // ...but MeshControl gets about one report per second either way (plus the first pull).
    expect(many.authority).toBeLessThanOrEqual(few.authority + 2);
    expect(many.authority).toBeLessThanOrEqual(5);
  });

  it("fail their isolates' check-ins while the fault switch says so, and serve again when it is cleared", async () => {
    mesh = await startMesh({ topology: TOPOLOGY });
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
    const r = await relay(mesh, "rl/enam/3");
    expect((await r.snapshot(checkIn("web", "iso-f"))).status).toBe("ok");
    expect((await adminJson(mesh, "/v1/debug/fault", { method: "PUT", json: { snapshot: "fail" } })).status).toBe(200);
    // (Errors thrown in workerd reach Node without their message, so only the failure is checked.)
    await eventually(() => r.snapshot(checkIn("web", "iso-f")).then(() => "ok", () => "failed"), (s) => s === "failed", 2_000, 20);
    expect((await adminJson(mesh, "/v1/debug/fault", { method: "PUT", json: { snapshot: "ok" } })).status).toBe(200);
    await eventually(() => r.snapshot(checkIn("web", "iso-f")).then((x: any) => x.status, () => "failed"), (s) => s === "ok", 2_000, 20);
  });
});

describe("isolates of one colo", () => {
  it("share the last answer through the Cache API, so fewer revalidations reach the relay", async () => {
    const { Miniflare, Log, LogLevel } = await import("miniflare");
    const { meshWorkers, sidecarName } = await import("../../scripts/mesh.ts");
    const { buildWorkers } = await import("../../scripts/build.ts");
    await buildWorkers();
    // Eight isolates of web (each Worker is its own isolate), all in colo LCL.
    const workers = await meshWorkers({ topology: TOPOLOGY });
    const base = workers.find((w) => w.name === sidecarName("web"))!;
    const names = Array.from({ length: 8 }, (_, i) => `${base.name}-isolate-${i}`);
    workers.push(...names.map((name) => ({ ...base, name })));
    // The control Worker reaches each isolate's SidecarControl entrypoint, as it does a sidecar's.
    const control = workers.find((w) => w.name === CONTROL_WORKER)!;
    control.serviceBindings = { ...(control.serviceBindings as object), ...Object.fromEntries(names.map((name, i) => [`ISOLATE_${i}`, { name, entrypoint: "SidecarControl" }])) };
    const mf = new Miniflare({ log: new Log(LogLevel.WARN), cf: { colo: "LCL", country: "ZZ" }, workers });
    try {
      const controlUrl = await mf.unsafeGetDirectURL(CONTROL_WORKER);
      const admin = (p: string, init: RequestInit = {}) => fetch(new URL(p, controlUrl), { ...init, headers: { authorization: "Bearer edgemesh-local-admin-token", "content-type": "application/json" } });
      expect((await admin("/v1/policy", { method: "POST", body: JSON.stringify(policy()) })).status).toBe(201);
      const isolates = await Promise.all(names.map((n) => mf.getWorker(n)));
      const entrypoints = (await mf.getBindings(CONTROL_WORKER)) as Record<string, { debugView(view: string): Promise<any> }>;
      const status = async () => Promise.all(names.map((_, i) => entrypoints[`ISOLATE_${i}`]!.debugView("status")));
      const end = Date.now() + 3_000;
      await Promise.all(isolates.map(async (w) => {
        while (Date.now() < end) {
          await (await w.fetch("http://x/t")).arrayBuffer();
          await sleep(20);
        }
      }));
      const revalidations = (await status()).reduce((n, s) => n + s.revalidations, 0);
      // Every answer a relay gave is counted and reported; wait until the last report is in.
      const quietSince = Date.now();
      const sync = await eventually(async () => (await admin("/v1/sync")).json() as Promise<any>, (s) => s.relays.length > 0 && s.relays.every((r: any) => s.checkedAtMs - r.lastReportAgoMs > quietSince), 15_000);
      const relayAnswers = sync.services.web.snapshotsServed + sync.services.web.notModified;
      console.log(`8 isolates: ${revalidations} revalidations, ${relayAnswers} reached a relay`);
      expect(revalidations).toBeGreaterThan(40);
      expect(relayAnswers).toBeLessThan(revalidations * 0.8);
      // And every isolate serves the current snapshot.
      const generation = sync.services.web.generation;
      expect((await status()).every((s) => s.snapshot.generation === generation)).toBe(true);
    } finally {
      await mf.dispose();
    }
  });
});
