// Control-plane hardening (issue 7) on the real runtime. Tests that only need MeshControl use a
// mesh name of their own (`?mesh=`), so each starts from empty storage.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_WORKER, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology } from "../control-helpers.ts";

const TOPOLOGY = healthTargetTopology("hd", { web: 2 });

let mesh: RunningMesh;
let limited: RunningMesh;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY, relays: false });
  limited = await startMesh({ topology: TOPOLOGY, controlVars: { EDGEMESH_POLICY_HISTORY_LIMIT: "3" } });
});
afterAll(async () => {
  for (const c of cleanup) await c().catch(() => {});
  await mesh?.dispose();
  await limited?.dispose();
});

let meshCount = 0;
/** A mesh name nobody used yet: a fresh MeshControl object. */
const freshMesh = () => `t${++meshCount}-${Date.now().toString(36)}`;

const doc = (name: string, services: Record<string, unknown>) => ({ mesh: name, services });
const apply = (m: RunningMesh, name: string, document: unknown) => adminJson(m, `/v1/policy?mesh=${name}`, { method: "POST", json: document });

describe("policy history is pruned", () => {
  it("keeps EDGEMESH_POLICY_HISTORY_LIMIT versions and says which is the oldest kept", async () => {
    const name = freshMesh();
    for (let i = 1; i <= 6; i++) expect((await apply(limited, name, doc(name, { web: { endpoints: [], snapshotTtlMs: 100 + i } }))).status).toBe(201);
    const history = (await adminJson(limited, `/v1/policy/history?mesh=${name}`)).body;
    expect(history.versions.map((v: any) => v.version)).toEqual([6, 5, 4]);
    expect((await adminJson(limited, `/v1/policy/2?mesh=${name}`)).status).toBe(404);
    const rollback = await adminJson(limited, `/v1/policy/rollback?mesh=${name}&to=2`, { method: "POST" });
    expect(rollback.status).toBe(404);
    expect(rollback.body.error).toMatch(/no policy version 2 \(history keeps the newest 3 versions; the oldest kept is 4\)/);
    // What is kept still rolls back.
    expect((await adminJson(limited, `/v1/policy/rollback?mesh=${name}&to=4`, { method: "POST" })).status).toBe(201);
  });

  it("keeps 100 versions by default", async () => {
    const name = freshMesh();
    for (let i = 1; i <= 103; i++) expect((await apply(mesh, name, doc(name, { web: { endpoints: [], snapshotTtlMs: 100 + i } }))).status).toBe(201);
    const history = (await adminJson(mesh, `/v1/policy/history?mesh=${name}&limit=1000`)).body.versions.map((v: any) => v.version);
    expect(history).toHaveLength(100);
    expect(history.at(-1)).toBe(4);
  });
});

describe("registration bounds", () => {
  it("refuses a service the policy does not have with 404 naming the known services", async () => {
    const name = freshMesh();
    const none = await adminJson(mesh, `/v1/registry/ghost?mesh=${name}`, { method: "POST", json: { id: "g-1", url: "https://g.example" } });
    expect(none.status).toBe(404);
    expect(none.body.error).toMatch(/no service "ghost" \(no policy is active\)/);
    expect((await apply(mesh, name, doc(name, { web: { endpoints: [] }, api: { endpoints: [] } }))).status).toBe(201);
    const res = await adminJson(mesh, `/v1/registry/ghost?mesh=${name}`, { method: "POST", json: { id: "g-1", url: "https://g.example" } });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ services: ["web", "api"] });
    expect(res.body.error).toContain("(services: web, api)");
    expect((await adminJson(mesh, `/v1/registry?mesh=${name}`)).body.conflicts).toEqual([]);
  });

  it("caps registered plus declared endpoints at 1,024 per service", async () => {
    const name = freshMesh();
    const declared = Array.from({ length: 1_020 }, (_, i) => ({ id: `d-${i}`, url: `https://d${i}.example` }));
    expect((await apply(mesh, name, doc(name, { web: { endpoints: declared } }))).status).toBe(201);
    for (let i = 0; i < 4; i++) {
      expect((await adminJson(mesh, `/v1/registry/web?mesh=${name}`, { method: "POST", json: { id: `r-${i}`, url: `https://r${i}.example`, leaseTtlMs: 600_000 } })).status).toBe(201);
    }
    const full = await adminJson(mesh, `/v1/registry/web?mesh=${name}`, { method: "POST", json: { id: "r-4", url: "https://r4.example" } });
    expect(full.status).toBe(409);
    expect(full.body.error).toMatch(/already has 1024 endpoints .* the most a service may have/);
    // A registered instance may still renew or change itself.
    expect((await adminJson(mesh, `/v1/registry/web?mesh=${name}`, { method: "POST", json: { id: "r-0", url: "https://r0-new.example", leaseTtlMs: 600_000 } })).status).toBe(201);
    expect((await adminJson(mesh, `/v1/snapshot/web?mesh=${name}`)).body.endpoints).toHaveLength(1_024);
  });
});

describe("mesh-wide passive ejection", () => {
  it("ejects at most maxEjectionPercent of a service's endpoints and keeps its subsets whole", async () => {
    const name = freshMesh();
    const endpoints = ["a", "b", "c", "d"].map((id) => ({ id, url: `https://${id}.example`, labels: { v: "1" } }));
    const policy = doc(name, {
      web: { endpoints, subsets: { one: { v: "1" } }, passiveHealth: { minRequests: 5, failurePercent: 50 }, outlierDetection: { maxEjectionPercent: 50 } },
    });
    expect((await apply(mesh, name, policy)).status).toBe(201);
    const ns = await mesh.mf.getDurableObjectNamespace("MESH_CONTROL", CONTROL_WORKER);
    const control: any = ns.get(ns.idFromName(name));
    // Every endpoint fails everything, as an attacker triggering 500s would make it.
    const outcomes = endpoints.map((e) => ({ endpointId: e.id, requests: 10, failures: 10, latencyMsSum: 10, latencyMsMax: 1 }));
    for (let i = 0; i < 3; i++) await control.snapshot({ service: "web", isolateId: `iso-${i}`, colo: "LCL", knownGeneration: 0, outcomes });
    const health = (await adminJson(mesh, `/v1/health?mesh=${name}&service=web`)).body.endpoints;
    expect(health.filter((e: any) => e.excluded).map((e: any) => e.endpointId)).toEqual(["a", "b"]);
    const snap = (await adminJson(mesh, `/v1/snapshot/web?mesh=${name}`)).body;
    expect(snap.endpoints.map((e: any) => e.healthy ?? true)).toEqual([false, false, true, true]);
    expect(snap.subsets).toEqual({ "*": [0, 1, 2, 3], one: [0, 1, 2, 3] });
  });
});

describe("cold isolates", () => {
  it("make one control-plane call however many requests arrive at once", async () => {
    // Its own mesh: a sidecar isolate that has never loaded a snapshot, and no cached copy.
    const own = await startMesh({ topology: TOPOLOGY, relays: false });
    cleanup.push(() => own.dispose());
    expect((await own.applyPolicy(doc("hd", { web: { endpoints: [{ id: "web-1", binding: "WEB_1" }], snapshotTtlMs: 60_000 } }))).status).toBe(201);
    const before = (await adminJson(own, "/v1/sync")).body.load.snapshotCalls;
    const statuses = await Promise.all(Array.from({ length: 25 }, () => fetch(new URL("/cold", own.url)).then(async (r) => (await r.arrayBuffer(), r.status))));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect((await adminJson(own, "/v1/sync")).body.load.snapshotCalls - before).toBe(1);
  });
});

describe("a control plane whose storage was reset", () => {
  it("is taken by the sidecars, the relays and the cached copy instead of being refused as older", async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-reset-"));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const web = (timeoutMs: number) => doc("hd", { web: { endpoints: [{ id: "web-1", binding: "WEB_1" }], snapshotTtlMs: 200, subsets: { all: {} }, routes: [{ name: `t${timeoutMs}`, to: [{ subset: "all" }], timeoutMs }] } });
    const status = async (m: RunningMesh) => m.sidecarView("web", "status");
    const warm = async (m: RunningMesh, until: (s: any) => boolean) =>
      eventually(async () => {
        await (await fetch(new URL("/warm", m.url))).arrayBuffer();
        return status(m);
      }, (s) => s.snapshot !== null && until(s), 8_000, 100);

    // First life: several changes, so generations are well above where a new storage starts.
    const first = await startMesh({ topology: TOPOLOGY, persistRoot: stateDir });
    for (const t of [1_000, 1_100, 1_200, 1_300]) expect((await first.applyPolicy(web(t))).status).toBe(201);
    const old = (await adminJson(first, "/v1/snapshot/web")).body;
    await warm(first, (s) => s.snapshot.generation === old.generation);
    await first.dispose();

    // The control plane loses its storage; the sidecars' cache and the relays keep theirs.
    await rm(path.join(stateDir, "do", `${CONTROL_WORKER}-MeshControl`), { recursive: true, force: true });
    const second = await startMesh({ topology: TOPOLOGY, persistRoot: stateDir });
    const applied = await second.applyPolicy(web(2_000));
    expect(applied.status).toBe(201);
    const fresh = (await adminJson(second, "/v1/snapshot/web")).body;
    expect(fresh.epoch).not.toBe(old.epoch);
    expect(fresh.generation).toBeLessThan(old.generation);
    const taken = await warm(second, (s) => s.snapshot.policyVersion === 1 && s.snapshot.generation === fresh.generation);
    expect(taken.snapshot.source).toBe("control");
    // Let the new snapshot reach the colo's cached copy, then break the control plane and start again:
    // a cold isolate must start from the copy of the new epoch.
    await new Promise((r) => setTimeout(r, 500));
    expect((await adminJson(second, "/v1/debug/fault", { method: "PUT", json: { snapshot: "fail" } })).status).toBe(200);
    await second.dispose();
    const third = await startMesh({ topology: TOPOLOGY, persistRoot: stateDir });
    cleanup.push(() => third.dispose());
    const cold = await warm(third, () => true);
    expect(cold.snapshot).toMatchObject({ source: "cache", generation: fresh.generation, policyVersion: 1 });
  });
});
