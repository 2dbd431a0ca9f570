// Control-plane robustness on the real runtime: the health history stays bounded, the event log's
// type filter pages correctly, bad admin parameters are refused with 400, the alarm checks many
// endpoints in bounded batches, and a stored policy that no longer validates leaves the object
// usable (reported, and fixed by a rollback).
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { instanceName, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology } from "../control-helpers.ts";
import { nodeServer, sidecar, sleep } from "../helpers.ts";

const TOPOLOGY = healthTargetTopology("rv", { web: 2, api: 1 });

const HISTORY_LIMIT = 3;

function policy(web: Record<string, unknown> = {}, extraEndpoints: unknown[] = []): any {
  return {
    mesh: "rv",
    services: {
      web: {
        endpoints: [{ id: "web-1", binding: "WEB_1" }, { id: "web-2", binding: "WEB_2" }, ...extraEndpoints],
        snapshotTtlMs: 200,
        ...web,
      },
      api: { endpoints: [{ id: "api-1", binding: "API_1" }], snapshotTtlMs: 200 },
    },
  };
}

let mesh: RunningMesh;
let origin: Awaited<ReturnType<typeof nodeServer>>;
const originStats = { inFlight: 0, peak: 0, paths: new Set<string>() };
const meshes: RunningMesh[] = [];
let stateDir: string | undefined;

beforeAll(async () => {
  origin = await nodeServer((req, res) => {
    originStats.inFlight++;
    originStats.peak = Math.max(originStats.peak, originStats.inFlight);
    originStats.paths.add(req.url ?? "");
    setTimeout(() => {
      originStats.inFlight--;
      res.writeHead(200);
      res.end("ok");
    }, 40);
  });
});

// Every test has a mesh of its own.
beforeEach(async () => {
  mesh = await startMesh({ topology: TOPOLOGY, controlVars: { EDGEMESH_HEALTH_HISTORY_LIMIT: String(HISTORY_LIMIT) } });
  expect((await mesh.applyPolicy(policy())).status).toBe(201);
});
afterEach(async () => mesh?.dispose());

afterAll(async () => {
  for (const m of meshes) await m.dispose().catch(() => {});
  await origin?.close();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

async function setTarget(id: string, query: string): Promise<void> {
  const worker = await mesh.mf.getWorker(instanceName("rv", id));
  const res = await worker.fetch(`http://target.test/__target?${query}`, { method: "POST" });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe("admin parameters", () => {
  it("refuses a limit that is not a positive integer with 400 instead of a 500", async () => {
    for (const route of ["/v1/policy/history", "/v1/health/history"]) {
      for (const bad of ["abc", "-1", "0", "1.5"]) {
        const res = await adminJson(mesh, `${route}?limit=${bad}`);
        expect(res.status, `${route}?limit=${bad}`).toBe(400);
        expect(res.body.error).toContain("?limit must be a positive integer");
      }
      expect((await adminJson(mesh, `${route}?limit=2`)).status).toBe(200);
    }
  });

  it("refuses a registration for a service name the schema would not accept, naming the pattern", async () => {
    const res = await adminJson(mesh, "/v1/registry/Bad_Name", { method: "POST", json: { id: "x-1", binding: "WEB_1" } });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain("service name must be lowercase letters");
    expect(res.body.error).toContain("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$");
    expect(res.body.error).toContain('"Bad_Name"');
    const registry = (await adminJson(mesh, "/v1/registry")).body;
    expect(registry.conflicts.map((c: any) => c.service)).not.toContain("Bad_Name");
  });
});

describe("event log paging with a type filter", () => {
  it("finds a rare type behind a full page of other events and says where to continue", async () => {
    const before = (await adminJson(mesh, "/v1/events?limit=1")).body.latestSeq as number;
    for (const id of ["pg-1", "pg-2", "pg-3"]) {
      expect((await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id, binding: "WEB_1", leaseTtlMs: 600_000 } })).status).toBe(201);
    }
    expect((await adminJson(mesh, "/v1/registry/web/pg-2", { method: "DELETE" })).status).toBe(200);
    // Three other events come first; a limit of 2 used to return an empty page.
    const page = (await adminJson(mesh, `/v1/events?since=${before}&limit=2&types=endpoint.deregistered`)).body;
    expect(page.events.map((e: any) => `${e.type} ${e.data.endpointId}`)).toEqual(["endpoint.deregistered pg-2"]);
    expect(page.nextSince).toBe(page.latestSeq);
    // A full page continues after its last event.
    const full = (await adminJson(mesh, `/v1/events?since=${before}&limit=2&types=endpoint.registered`)).body;
    expect(full.events.map((e: any) => e.data.endpointId)).toEqual(["pg-1", "pg-2"]);
    expect(full.nextSince).toBe(full.events[1].seq);
    const rest = (await adminJson(mesh, `/v1/events?since=${full.nextSince}&limit=2&types=endpoint.registered`)).body;
    expect(rest.events.map((e: any) => e.data.endpointId)).toEqual(["pg-3"]);
    for (const id of ["pg-1", "pg-3"]) expect((await adminJson(mesh, `/v1/registry/web/${id}`, { method: "DELETE" })).status).toBe(200);
  });
});

describe("health history retention", () => {
  it("keeps only the newest transitions once the limit is passed", async () => {
    const check = { path: "/healthz", intervalMs: 100, timeoutMs: 90, healthyThreshold: 1, unhealthyThreshold: 1 };
    expect((await mesh.applyPolicy(policy({ healthCheck: check }))).status).toBe(201);
    const transitionsOf = async () => (await adminJson(mesh, "/v1/health/history?service=web&endpoint=web-2&limit=1000")).body.transitions as any[];
    let seen = 0;
    let newestSeq = 0;
    for (let flip = 0; flip < 4 * HISTORY_LIMIT; flip++) {
      const down = flip % 2 === 0;
      await setTarget("web-2", `health=${down ? 503 : 200}`);
      const history = await eventually(transitionsOf, (t) => t[0]?.to === (down ? "unhealthy" : "healthy") && t[0].seq > newestSeq, 15_000);
      newestSeq = history[0].seq;
      seen++;
    }
    const kept = await transitionsOf();
    expect(seen).toBe(12);
    // Pruned every HISTORY_LIMIT inserts down to the newest HISTORY_LIMIT: never more than 2 × limit - 1.
    expect(kept.length).toBeGreaterThanOrEqual(HISTORY_LIMIT);
    expect(kept.length).toBeLessThan(2 * HISTORY_LIMIT);
    expect(kept[0].seq).toBe(newestSeq);
    await setTarget("web-2", "health=200");
  });
});

describe("active checks in bounded batches without the HealthProbe entrypoint", () => {
  it("checks 60 URL endpoints itself with at most 6 at once, across several alarms", async () => {
    // Without HEALTH_PROBE the object runs checks itself: its own 6 connections and 40 a alarm.
    const own = await startMesh({ topology: TOPOLOGY, healthProbe: false });
    meshes.push(own);
    const urls = Array.from({ length: 60 }, (_, i) => ({ id: `u-${i}`, url: `${origin.url}/u${i}` }));
    const check = { path: "/healthz", intervalMs: 60_000, timeoutMs: 1_000 };
    originStats.peak = 0;
    originStats.paths.clear();
    expect((await own.applyPolicy(policy({ healthCheck: check }, urls))).status).toBe(201);
    const checked = async () => ((await adminJson(own, "/v1/health?service=web")).body.endpoints as any[]).filter((e) => e.endpointId.startsWith("u-") && e.active.checks > 0).length;
    // More than one alarm's worth (40): the rest must be picked up by a follow-up alarm, not the next interval a minute later.
    await eventually(checked, (n) => n === 60, 10_000);
    expect(originStats.paths.size).toBe(60);
    expect(originStats.peak).toBeGreaterThan(1);
    expect(originStats.peak).toBeLessThanOrEqual(6);
  });
});

describe("per-service snapshot changes", () => {
  it("a change in one service re-sends no other service's snapshot, writes no event per check-in, and sync stays exact", async () => {
    const web = await sidecar(mesh, "web");
    const traffic = async (ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) await (await web("/traffic")).arrayBuffer();
    };
    // Relays report what they answered about once a second: a look at the counters waits until
    // every relay has reported since the traffic stopped.
    const settled = async () => {
      const quietSinceMs = Date.now();
      return eventually(
        () => adminJson(mesh, "/v1/sync").then((r) => r.body),
        (sync) => sync.relays.length > 0 && sync.relays.every((r: any) => sync.checkedAtMs - r.lastReportAgoMs > quietSinceMs),
        15_000,
      );
    };
    await traffic(600);
    const sync0 = await settled();
    const webGeneration = sync0.services.web.generation as number;
    const before = (await adminJson(mesh, "/v1/events?limit=1")).body.latestSeq as number;
    const reg = await adminJson(mesh, "/v1/registry/api", { method: "POST", json: { id: "api-2", binding: "API_1", leaseTtlMs: 600_000 } });
    expect(reg.status).toBe(201);
    await traffic(800);
    await settled();
    const sync1 = (await adminJson(mesh, `/v1/sync?generation=${reg.body.generation}`)).body;
    // api moved to the new generation; web did not, and its sidecars downloaded nothing.
    expect(sync1.services.api.generation).toBe(reg.body.generation);
    expect(sync1.services.web.generation).toBe(webGeneration);
    expect(sync1.services.web.snapshotsServed).toBe(sync0.services.web.snapshotsServed);
    expect(sync1.services.web.notModified).toBeGreaterThan(sync0.services.web.notModified);
    // Check-ins are counters, not events: only the registration was logged.
    const logged = (await adminJson(mesh, `/v1/events?since=${before}`)).body.events.map((e: any) => e.type);
    expect(logged).toEqual(["endpoint.registered"]);
    // The web isolates serve web's snapshot as of that generation, so the change counts as live there.
    const webSidecars = sync1.sidecars.filter((s: any) => s.service === "web" && s.state !== "gone");
    expect(webSidecars.length).toBeGreaterThan(0);
    expect(webSidecars.every((s: any) => s.state === "synced" && s.generation === webGeneration)).toBe(true);

    // A change to web itself is sent to web's sidecars.
    const own = await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-3", binding: "WEB_1", leaseTtlMs: 600_000 } });
    expect(own.status).toBe(201);
    await traffic(800);
    await settled();
    const sync2 = (await adminJson(mesh, `/v1/sync?generation=${own.body.generation}`)).body;
    expect(sync2.services.web.generation).toBe(own.body.generation);
    expect(sync2.services.web.snapshotsServed).toBeGreaterThan(sync1.services.web.snapshotsServed);
    expect(sync2.sidecars.filter((s: any) => s.service === "web" && s.state === "synced").every((s: any) => s.generation === own.body.generation)).toBe(true);
    for (const [service, id] of [["api", "api-2"], ["web", "web-3"]]) expect((await adminJson(mesh, `/v1/registry/${service}/${id}`, { method: "DELETE" })).status).toBe(200);
  });
});

describe("a stored policy that no longer validates", () => {
  it("is reported instead of breaking the object, and a rollback fixes it", async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-review-"));
    const first = await startMesh({ topology: TOPOLOGY, persistRoot: stateDir });
    meshes.push(first);
    expect((await first.applyPolicy(policy())).status).toBe(201);
    const broken = await first.applyPolicy(policy({ snapshotTtlMs: 300 }));
    expect(broken.status).toBe(201);
    const brokenVersion = ((await broken.json()) as any).version as number;
    await first.dispose();
    meshes.splice(meshes.indexOf(first), 1);

    // What a stricter schema does to an old document, done to the stored copy: snapshotTtlMs out of range.
    const files = (await readdir(stateDir, { recursive: true })).filter((f) => f.endsWith(".sqlite"));
    let edited = 0;
    for (const f of files) {
      const out = execFileSync("sqlite3", [path.join(stateDir, f),
        `SELECT name FROM sqlite_master WHERE name = 'policy_pieces'`]).toString();
      if (!out.includes("policy_pieces")) continue;
      // Documents are stored in pieces, one per service: edit the web section of the broken version.
      execFileSync("sqlite3", [path.join(stateDir, f),
        `UPDATE policy_pieces SET bytes = CAST(json_set(CAST(bytes AS TEXT), '$.snapshotTtlMs', -5) AS BLOB) WHERE CAST(bytes AS TEXT) LIKE '%"snapshotTtlMs":300%'`]);
      edited++;
    }
    expect(edited).toBe(1);

    const second = await startMesh({ topology: TOPOLOGY, persistRoot: stateDir });
    meshes.push(second);
    const current = await adminJson(second, "/v1/policy");
    expect(current.status).toBe(500);
    expect(current.body.loadError).toMatchObject({ version: brokenVersion });
    expect(current.body.error).toMatch(/stored policy version \d+ no longer validates .*snapshotTtlMs/);
    const events = (await adminJson(second, "/v1/events?since=0&types=policy.load-failed")).body.events;
    expect(events.at(-1).data).toMatchObject({ version: brokenVersion });
    // The rest of the object still works, and a rollback restores the version before.
    expect((await adminJson(second, "/v1/registry")).status).toBe(200);
    const rolledBack = await adminJson(second, "/v1/policy/rollback", { method: "POST" });
    expect(rolledBack.status).toBe(201);
    const after = await adminJson(second, "/v1/policy");
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ kind: "rollback", restoredVersion: brokenVersion - 1 });
    expect((await adminJson(second, "/v1/snapshot/web")).status).toBe(200);
  });
});
