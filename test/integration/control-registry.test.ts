// The registry on the real runtime: leases that lapse, heartbeats that keep them, declared and
// registered endpoints merged with conflicts reported, the watch stream resuming without gaps and
// sync status after a policy change. Every test has a mesh of its own; leases are long enough
// for a busy machine, and waits are for conditions.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology, openWatch } from "../control-helpers.ts";
import { nodeServer, sidecar, sleep, type Fetch } from "../helpers.ts";

const TOPOLOGY = healthTargetTopology("ctl", { web: 2 });

function policy(extra: Record<string, unknown> = {}): any {
  return {
    mesh: "ctl",
    services: {
      web: {
        endpoints: [
          { id: "web-1", binding: "WEB_1", labels: { version: "v1" } },
          { id: "web-2", binding: "WEB_2", labels: { version: "v2" } },
        ],
        subsets: { v1: { version: "v1" }, v2: { version: "v2" }, v9: { version: "v9" } },
        snapshotTtlMs: 200,
        ...extra,
      },
    },
  };
}

let mesh: RunningMesh;
let web: Fetch;
let origin: Awaited<ReturnType<typeof nodeServer>>;

beforeAll(async () => {
  origin = await nodeServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json", "x-echo-endpoint": "origin" });
    res.end('{"endpoint":"origin"}');
  });
});
afterAll(async () => origin?.close());

beforeEach(async () => {
  mesh = await startMesh({ topology: TOPOLOGY });
  web = await sidecar(mesh, "web");
  expect((await mesh.applyPolicy(policy())).status).toBe(201);
});
afterEach(async () => mesh?.dispose());

const snapshotIds = async () => ((await adminJson(mesh, "/v1/snapshot/web")).body.endpoints as { id: string }[]).map((e) => e.id);

describe("registration with leases", () => {
  it("serves a registered instance and drops it when its lease lapses", async () => {
    const reg = await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-reg", url: origin.url, labels: { version: "v9" }, leaseTtlMs: 4_000 } });
    expect(reg.status).toBe(201);
    expect(reg.body.leaseTtlMs).toBe(4_000);
    expect(await snapshotIds()).toContain("web-reg");
    // Traffic for subset v9 can only reach the registered origin.
    const routed = await mesh.applyPolicy(policy({ routes: [{ name: "nine", to: [{ subset: "v9" }] }] }));
    expect(routed.status).toBe(201);
    const res = await eventually(() => web("/x"), (r) => r.headers.get("x-echo-endpoint") === "origin", 3_500);
    expect(res.status).toBe(200);

    const expired = await eventually(snapshotIds, (ids) => !ids.includes("web-reg"), 15_000);
    expect(expired).toEqual(["web-1", "web-2"]);
    const events = (await adminJson(mesh, "/v1/events?since=0&types=endpoint.expired")).body.events;
    expect(events.map((e: any) => e.data.endpointId)).toContain("web-reg");
    expect((await adminJson(mesh, "/v1/registry/web/web-reg/heartbeat", { method: "POST" })).status).toBe(404);
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
  });

  it("keeps an instance while it heartbeats, and lets it go once it stops", async () => {
    expect((await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-hb", url: origin.url, leaseTtlMs: 1_500 } })).status).toBe(201);
    const registeredAt = Date.now();
    // Heartbeats every 250 ms keep a 1.5 s lease alive for twice its length and more.
    while (Date.now() - registeredAt < 3_500) {
      await sleep(250);
      const hb = await adminJson(mesh, "/v1/registry/web/web-hb/heartbeat", { method: "POST" });
      expect(hb.status).toBe(200);
    }
    expect(await snapshotIds()).toContain("web-hb");
    await eventually(snapshotIds, (ids) => !ids.includes("web-hb"), 15_000);
  });

  it("refuses a lease outside the schema's limits", async () => {
    const bad = await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-x", url: origin.url, leaseTtlMs: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe("$.leaseTtlMs");
  });
});

describe("declared and registered endpoints merge", () => {
  it("reports conflicts instead of resolving them silently", async () => {
    const declared = await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-1", url: origin.url } });
    expect(declared.status).toBe(409);
    expect(declared.body.error).toMatch(/declared in the policy/);

    const dup = await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-dup", binding: "WEB_1", leaseTtlMs: 60_000 } });
    expect(dup.status).toBe(201);
    expect(dup.body.conflicts).toEqual([expect.objectContaining({ kind: "same-target", endpointId: "web-dup", otherEndpointId: "web-1", effect: "both-kept" })]);
    expect(await snapshotIds()).toEqual(["web-1", "web-2", "web-dup"]);

    // A new policy that declares the registered id: the policy's endpoint is served, the clash reported.
    const doc = policy();
    doc.services.web.endpoints.push({ id: "web-dup", url: origin.url });
    const applied = await adminJson(mesh, "/v1/policy", { method: "POST", json: doc });
    expect(applied.status).toBe(201);
    expect(applied.body.conflicts).toEqual([expect.objectContaining({ kind: "id-declared-in-policy", endpointId: "web-dup", effect: "shadowed" })]);
    const snap = (await adminJson(mesh, "/v1/snapshot/web")).body;
    expect(snap.endpoints.filter((e: any) => e.id === "web-dup")).toEqual([expect.objectContaining({ url: origin.url })]);
    expect((await adminJson(mesh, "/v1/registry/conflicts")).body.conflicts).toHaveLength(1);

    expect((await adminJson(mesh, "/v1/registry/web/web-dup", { method: "DELETE" })).status).toBe(200);
    expect((await adminJson(mesh, "/v1/registry/conflicts")).body.conflicts).toEqual([]);
    expect((await mesh.applyPolicy(policy())).status).toBe(201);
  });
});

describe("watch stream", () => {
  it("streams typed events and resumes from the last sequence without gaps", async () => {
    const first = await openWatch(mesh, "?since=0");
    const hello = (await first.until((m) => m.length > 0))[0];
    expect(hello).toMatchObject({ type: "watch.hello", since: 0, gap: false });
    const latestAtConnect = hello.latestSeq as number;
    await first.until((m) => m.length - 1 >= latestAtConnect);

    // Live events arrive on the open connection.
    expect((await mesh.applyPolicy(policy({ snapshotTtlMs: 250 }))).status).toBe(201);
    await first.until((m) => m.some((e) => e.type === "policy.applied" && e.seq > latestAtConnect));
    const lastSeen = first.messages.at(-1).seq as number;
    first.close();

    // Changes while disconnected.
    expect((await adminJson(mesh, "/v1/registry/web", { method: "POST", json: { id: "web-w", url: origin.url, leaseTtlMs: 60_000 } })).status).toBe(201);
    expect((await adminJson(mesh, "/v1/registry/web/web-w", { method: "DELETE" })).status).toBe(200);
    expect((await adminJson(mesh, "/v1/policy/rollback", { method: "POST" })).status).toBe(201);

    const missed = (await adminJson(mesh, `/v1/events?since=${lastSeen}`)).body.events;
    expect(missed.map((e: any) => e.type)).toEqual(expect.arrayContaining(["endpoint.registered", "endpoint.deregistered", "policy.rolled-back"]));

    const second = await openWatch(mesh, `?since=${lastSeen}`);
    await second.until((m) => m.length >= 1 + missed.length);
    const replayed = second.messages.slice(1);
    expect(second.messages[0]).toMatchObject({ type: "watch.hello", since: lastSeen, gap: false });
    // Exactly the missed events, in order, with consecutive sequence numbers.
    expect(replayed.map((e) => e.seq)).toEqual(missed.map((e: any) => e.seq));
    replayed.forEach((e, i) => expect(e.seq).toBe(lastSeen + 1 + i));
    const all = [...first.messages.slice(1), ...replayed].map((e) => e.seq);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    second.close();
  });

  it("refuses a plain GET, unknown event types and a missing token", async () => {
    expect((await mesh.admin("/v1/watch")).status).toBe(426);
    const bad = await adminJson(mesh, "/v1/events?types=policy.applied,nope");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/unknown event types: nope/);
    expect((await fetch(new URL("/v1/watch", mesh.controlUrl))).status).toBe(401);
  });
});

describe("sync status", () => {
  it("names the laggards after a policy change, then says yes once every sidecar serves it", async () => {
    // Bring the sidecar up to date and let it acknowledge the current generation.
    for (let i = 0; i < 10; i++) {
      await (await web("/warm")).arrayBuffer();
      await sleep(60);
    }
    const before = await eventually(() => adminJson(mesh, "/v1/sync").then((r) => r.body), (s) => s.live && s.sidecars.some((x: any) => x.service === "web"), 15_000);
    const isolate = before.sidecars.find((x: any) => x.service === "web" && x.state === "synced");
    expect(isolate).toBeDefined();

    const applied = await adminJson(mesh, "/v1/policy", { method: "POST", json: policy({ snapshotTtlMs: 300 }) });
    expect(applied.status).toBe(201);
    const target = applied.body.generation as number;
    const lagging = (await adminJson(mesh, `/v1/sync?generation=${target}`)).body;
    expect(lagging.live).toBe(false);
    expect(lagging.laggards).toContain(`web/${isolate.isolateId}@LCL`);

    // Traffic makes the sidecar revalidate; its next check-in acknowledges the new generation.
    const live = await eventually(async () => {
      await (await web("/after")).arrayBuffer();
      return (await adminJson(mesh, `/v1/sync?generation=${target}`)).body;
    }, (s) => s.live, 15_000, 100);
    expect(live.laggards).toEqual([]);
    const me = live.sidecars.find((x: any) => x.isolateId === isolate.isolateId);
    expect(me).toMatchObject({ state: "synced", policyVersion: applied.body.version, colo: "LCL" });
    expect(me.generation).toBeGreaterThanOrEqual(target);
  });
});
