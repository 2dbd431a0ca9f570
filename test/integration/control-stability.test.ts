// Static stability on the real runtime: with the control plane failing or stalling, sidecars keep
// serving every request from their last known good snapshot; after a restart with the control
// plane still broken, cold isolates serve from the Cache API; MeshControl's state survives restarts.
// Every test starts its own mesh (and its own state folder).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology } from "../control-helpers.ts";
import { sleep } from "../helpers.ts";

const TOPOLOGY = healthTargetTopology("st", { web: 2 });

const POLICY = {
  mesh: "st",
  services: {
    web: {
      endpoints: [
        { id: "web-1", binding: "WEB_1" },
        { id: "web-2", binding: "WEB_2" },
      ],
      snapshotTtlMs: 100,
    },
  },
};

const meshes: RunningMesh[] = [];
const stateDirs: string[] = [];

afterAll(async () => {
  for (const m of meshes) await m.dispose().catch(() => {});
  for (const dir of stateDirs) await rm(dir, { recursive: true, force: true });
});

async function newStateDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-control-"));
  stateDirs.push(dir);
  return dir;
}

async function start(persistRoot?: string): Promise<RunningMesh> {
  const mesh = await startMesh({ topology: TOPOLOGY, ...(persistRoot ? { persistRoot } : {}), sidecarVars: { COLD_SNAPSHOT_TIMEOUT_MS: "500" } });
  meshes.push(mesh);
  return mesh;
}

/** Sends requests over the entry sidecar's socket, `concurrency` at a time, until `stop` resolves. */
async function steadyTraffic(mesh: RunningMesh, stop: Promise<void>, concurrency = 4): Promise<{ ok: number; failed: number; statuses: Record<number, number> }> {
  let done = false;
  void stop.then(() => (done = true));
  const out = { ok: 0, failed: 0, statuses: {} as Record<number, number> };
  const loop = async () => {
    while (!done) {
      const res = await fetch(new URL("/traffic", mesh.url));
      await res.arrayBuffer();
      out.statuses[res.status] = (out.statuses[res.status] ?? 0) + 1;
      if (res.status === 200) out.ok++;
      else out.failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return out;
}

/** The web sidecar's status, from its SidecarControl entrypoint through the admin API. */
const sidecarStatus = async (mesh: RunningMesh) => mesh.sidecarView("web", "status");

const setFault = (mesh: RunningMesh, snapshot: "ok" | "fail" | "slow", delayMs = 0) =>
  adminJson(mesh, "/v1/debug/fault", { method: "PUT", json: { snapshot, delayMs } });

describe("static stability", () => {
  it("serves 100% of requests while the control plane fails and then stalls", async () => {
    const mesh = await start();
    expect((await mesh.applyPolicy(POLICY)).status).toBe(201);
    await eventually(() => fetch(new URL("/warm", mesh.url)).then((r) => r.status), (s) => s === 200, 15_000);
    const failuresBefore = (await sidecarStatus(mesh)).failures as number;

    let stop!: () => void;
    const traffic = steadyTraffic(mesh, new Promise<void>((r) => (stop = r)));
    await sleep(200);
    expect((await setFault(mesh, "fail")).status).toBe(200);
    await sleep(1_000);
    // Stalled calls are worse than failing ones: each revalidation hangs until its own timeout.
    expect((await setFault(mesh, "slow", 5_000)).status).toBe(200);
    await sleep(1_500);
    stop();
    const result = await traffic;
    // Enough requests to span both outages, however slow the machine.
    expect(result.ok).toBeGreaterThan(20);
    expect(result.statuses).toEqual({ 200: result.ok });

    // The outage was real: the sidecar's revalidations failed while the traffic kept flowing.
    const status = await sidecarStatus(mesh);
    expect(status.failures).toBeGreaterThan(failuresBefore);
    expect(status.lastError).toMatch(/fault switch|took longer than/);
    expect((await setFault(mesh, "ok")).status).toBe(200);
  });

  it("refuses the fault switch with a bad body", async () => {
    const mesh = await start();
    expect((await adminJson(mesh, "/v1/debug/fault", { method: "PUT", json: { snapshot: "broken" } })).status).toBe(400);
  });
});

describe("restart with persistence", () => {
  it("keeps policy, registry, health history and events, and cold isolates start from the Cache API while the control plane is down", async () => {
    const stateDir = await newStateDir();
    const first = await start(stateDir);
    const doc = structuredClone(POLICY) as any;
    doc.services.web.passiveHealth = { windowMs: 5_000, minRequests: 1, failurePercent: 50, ejectionMs: 600_000 };
    const applied = await adminJson(first, "/v1/policy", { method: "POST", json: doc });
    expect(applied.status).toBe(201);
    expect((await adminJson(first, "/v1/registry/web", { method: "POST", json: { id: "web-reg", binding: "WEB_2", leaseTtlMs: 600_000 } })).status).toBe(201);
    // Warm the sidecar so it saves the snapshot in the Cache API.
    await eventually(async () => {
      await (await fetch(new URL("/warm", first.url))).arrayBuffer();
      return (await sidecarStatus(first)).snapshot?.generation;
    }, (g) => g === applied.body.generation + 1, 15_000);
    await sleep(300);
    const eventsBefore = (await adminJson(first, "/v1/events?since=0")).body;
    expect(eventsBefore.events.map((e: any) => e.type)).toEqual(["policy.applied", "endpoint.registered"]);
    // Break the control plane; the switch is stored, so it is still broken after the restart.
    expect((await setFault(first, "fail")).status).toBe(200);
    await first.dispose();
    meshes.splice(meshes.indexOf(first), 1);

    const second = await start(stateDir);
    const results = await Promise.all(Array.from({ length: 40 }, () => fetch(new URL("/cold", second.url)).then(async (r) => (await r.arrayBuffer(), r.status))));
    expect(results.filter((s) => s !== 200)).toEqual([]);
    const cold = await sidecarStatus(second);

    expect(cold.snapshot).toMatchObject({ source: "cache", generation: applied.body.generation + 1 });
    expect(cold.failures).toBeGreaterThan(0);

    // Everything the object knew is still there.
    expect((await adminJson(second, "/v1/policy")).body.version).toBe(applied.body.version);
    const registry = (await adminJson(second, "/v1/registry")).body;
    expect(registry.services.web.map((e: any) => `${e.id}:${e.source}`)).toEqual(["web-1:policy", "web-2:policy", "web-reg:registered"]);
    const eventsAfter = (await adminJson(second, "/v1/events?since=0")).body;
    expect(eventsAfter.events.map((e: any) => e.seq)).toEqual(eventsBefore.events.map((e: any) => e.seq));

    // The control plane recovers; the sidecar moves from the cached snapshot to a fresh one, and
    // new events continue the old sequence.
    expect((await setFault(second, "ok")).status).toBe(200);
    await eventually(async () => {
      await (await fetch(new URL("/warm", second.url))).arrayBuffer();
      return (await sidecarStatus(second)).snapshot?.source;
    }, (s) => s === "control", 15_000);
    expect((await adminJson(second, "/v1/registry/web/web-reg", { method: "DELETE" })).status).toBe(200);
    const next = (await adminJson(second, `/v1/events?since=${eventsBefore.latestSeq}`)).body.events;
    expect(next[0].seq).toBe(eventsBefore.latestSeq + 1);
  });

  it("keeps endpoint health across a restart", async () => {
    const stateDir = await newStateDir();
    const mesh = await start(stateDir);
    const doc = structuredClone(POLICY) as any;
    doc.services.web.healthCheck = { path: "/healthz", intervalMs: 150, timeoutMs: 100, unhealthyThreshold: 2, healthyThreshold: 2 };
    expect((await mesh.applyPolicy(doc)).status).toBe(201);
    const worker = await mesh.mf.getWorker("st-web-2");
    await (await worker.fetch("http://t/__target?health=503", { method: "POST" })).arrayBuffer();
    await eventually(() => adminJson(mesh, "/v1/health?service=web").then((r) => r.body.endpoints[1].excluded), (x) => x === true, 15_000);
    await mesh.dispose();
    meshes.splice(meshes.indexOf(mesh), 1);

    // After the restart the health-target Worker is fresh (healthy again), but until the checks
    // pass healthyThreshold times the stored state keeps web-2 out.
    const again = await start(stateDir);
    const snap = (await adminJson(again, "/v1/snapshot/web")).body;
    expect(snap.endpoints.find((e: any) => e.id === "web-2").healthy).toBe(false);
    const history = (await adminJson(again, "/v1/health/history?service=web&endpoint=web-2")).body.transitions;
    expect(history[0]).toMatchObject({ from: "healthy", to: "unhealthy", source: "active" });
    // The alarm resumes after the restart and the recovered endpoint comes back.
    await eventually(() => adminJson(again, "/v1/health?service=web").then((r) => r.body.endpoints[1].excluded), (x) => x === false, 15_000);
  });
});
