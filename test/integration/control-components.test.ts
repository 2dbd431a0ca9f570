// MeshControl's components, each alone, over real Durable Object SQLite storage (the harness
// object of test/workers/control-harness.ts; a fresh object per test). Times are passed in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../control-helpers.ts";

let harness: Awaited<ReturnType<typeof startHarness>>;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => harness?.dispose());

/** A document split as the control Worker splits it (policy-sections.ts), ready for the store. */
async function pieces(document: any): Promise<{ manifestDigest: string; texts: Record<string, string> }> {
  const { preparePolicy } = await import("../../durable/policy-sections.ts");
  const { piecesOf } = await import("../../durable/policy-store.ts");
  return piecesOf(await preparePolicy(document));
}

const info = (n: number) => ({ appliedAtMs: 1_000 * n, author: `op-${n}`, message: `change ${n}`, kind: "apply", restoredVersion: null });

function mesh(services: number, routes: number, tweak = 0): any {
  const doc: any = { mesh: "big", services: {} };
  for (let s = 0; s < services; s++) {
    doc.services[`svc-${s}`] = {
      endpoints: [{ id: "a", binding: "A_1", labels: { version: "v1" } }],
      subsets: { v1: { version: "v1" } },
      routes: Array.from({ length: routes }, (_, r) => ({ name: `r-${r}`, match: [{ path: { prefix: `/api/${r}/` } }], to: [{ subset: "v1" }], timeoutMs: 2_000 + (s === 0 ? tweak : 0) })),
    };
  }
  return doc;
}

describe("policy store", () => {
  it("stores versions with who and when, reads them back, and finds the previous one", async () => {
    const h = await harness.fresh();
    const one = mesh(2, 1);
    const two = mesh(2, 1, 5);
    expect(await h.invokeInTransaction("store", "commit", [await pieces(one), info(1)])).toEqual({ ok: true, version: 1 });
    expect(await h.invokeInTransaction("store", "commit", [await pieces(two), info(2)])).toEqual({ ok: true, version: 2 });
    expect(await h.invoke("store", "activeVersion")).toBe(2);
    expect(JSON.parse(await h.invoke("store", "documentText", [1]))).toEqual(one);
    expect(JSON.parse(await h.invoke("store", "documentText", [2]))).toEqual(two);
    expect(await h.invoke("store", "documentText", [3])).toBeNull();
    expect((await h.invoke("store", "history", [10])).map((v: any) => `${v.version} ${v.author}`)).toEqual(["2 op-2", "1 op-1"]);
    expect(await h.invoke("store", "previousVersion", [2])).toBe(1);
    // The active version survives a restart of the object.
    await h.restart();
    expect(await h.invoke("store", "activeVersion")).toBe(2);
  });

  it("stores a 3,000-service document in pieces below the row limit, and a one-service change adds only that service's piece", async () => {
    const h = await harness.fresh();
    const big = mesh(3_000, 20);
    const bigText = JSON.stringify(big);
    expect(bigText.length).toBeGreaterThan(4_000_000);
    expect(await h.invokeInTransaction("store", "commit", [await pieces(big), info(1)])).toEqual({ ok: true, version: 1 });
    const [stored] = await h.sql("SELECT COUNT(*) AS n, MAX(LENGTH(bytes)) AS largest FROM policy_pieces");
    expect(stored.largest).toBeLessThanOrEqual(1 << 20);
    expect(JSON.parse(await h.invoke("store", "documentText", [1]))).toEqual(big);

    const changed = mesh(3_000, 20, 7);
    const next = await pieces(changed);
    // Only the manifest and svc-0's section are new.
    expect(await h.invoke("store", "missing", [Object.keys(next.texts)])).toHaveLength(2);
    expect(await h.invokeInTransaction("store", "commit", [next, info(2)])).toEqual({ ok: true, version: 2 });
    const [after] = await h.sql("SELECT COUNT(*) AS n FROM policy_pieces");
    expect(after.n).toBe(stored.n + 2);
    expect(JSON.parse(await h.invoke("store", "documentText", [2]))).toEqual(changed);
  });

  it("splits one section larger than a row into parts", async () => {
    const h = await harness.fresh();
    const doc = mesh(1, 1);
    doc.description = "x";
    doc.services["svc-0"].endpoints = Array.from({ length: 1_024 }, (_, i) => ({ id: `e-${i}`, url: `https://e${i}.example/${"p".repeat(1_500)}`, labels: { version: "v1" } }));
    const p = await pieces(doc);
    expect(Math.max(...Object.values(p.texts).map((t) => t.length))).toBeGreaterThan(1 << 20);
    expect(await h.invokeInTransaction("store", "commit", [p, info(1)])).toEqual({ ok: true, version: 1 });
    const parts = await h.sql("SELECT digest, part, LENGTH(bytes) AS n FROM policy_pieces ORDER BY digest, part");
    expect(parts.some((r: any) => r.part > 0)).toBe(true);
    expect(Math.max(...parts.map((r: any) => r.n))).toBeLessThanOrEqual(1 << 20);
    expect(JSON.parse(await h.invoke("store", "documentText", [1]))).toEqual(doc);
  });

  it("refuses a commit whose pieces are neither stored nor given, and writes nothing", async () => {
    const h = await harness.fresh();
    const p = await pieces(mesh(3, 1));
    const section = Object.keys(p.texts).find((d) => d !== p.manifestDigest)!;
    delete p.texts[section];
    expect(await h.invokeInTransaction("store", "commit", [p, info(1)])).toEqual({ ok: false, missing: [section] });
    expect(await h.sql("SELECT * FROM policy_versions")).toEqual([]);
    expect(await h.invoke("store", "activeVersion")).toBe(0);
  });

  it("prunes all but the newest versions, with the pieces only they used", async () => {
    const h = await harness.fresh();
    for (let v = 1; v <= 6; v++) await h.invokeInTransaction("store", "commit", [await pieces(mesh(3, 1, v)), info(v)]);
    const before = (await h.sql("SELECT COUNT(*) AS n FROM policy_pieces"))[0].n;
    expect(await h.invoke("store", "prune", [2])).toEqual([1, 2, 3, 4]);
    expect((await h.invoke("store", "history", [10])).map((v: any) => v.version)).toEqual([6, 5]);
    // Each pruned version had its own manifest and svc-0 section; svc-1 and svc-2 are shared.
    expect((await h.sql("SELECT COUNT(*) AS n FROM policy_pieces"))[0].n).toBe(before - 8);
    expect(JSON.parse(await h.invoke("store", "documentText", [5]))).toEqual(mesh(3, 1, 5));
    expect(await h.invoke("store", "documentText", [4])).toBeNull();
    expect(await h.invoke("store", "oldestVersion")).toBe(5);
  });

  it("reads versions stored whole by earlier releases", async () => {
    const h = await harness.fresh();
    const old = mesh(1, 1);
    await h.sql("INSERT INTO policy_versions (version, document, applied_at_ms, author, message, kind) VALUES (1, ?, 5, 'old', '', 'apply')", JSON.stringify(old));
    expect(JSON.parse(await h.invoke("store", "documentText", [1]))).toEqual(old);
    expect(await h.invokeInTransaction("store", "commit", [await pieces(mesh(1, 1, 3)), info(2)])).toEqual({ ok: true, version: 2 });
    expect(await h.invoke("store", "prune", [1])).toEqual([1]);
  });
});

describe("registry", () => {
  const endpoint = (id: string) => ({ id, url: `https://${id}.example`, labels: {}, weight: 1 });

  it("registers with a lease, renews it, and lets lapsed leases go", async () => {
    const h = await harness.fresh();
    const reg = await h.invoke("registry", "register", ["web", endpoint("a"), 1_000, 10_000]);
    expect(reg).toMatchObject({ existed: false, changed: true, instance: { expiresAtMs: 11_000, leaseTtlMs: 1_000 } });
    // The same registration again only renews.
    expect(await h.invoke("registry", "register", ["web", endpoint("a"), 1_000, 10_500])).toMatchObject({ existed: true, changed: false });
    expect(await h.invoke("registry", "renew", ["web", "a", undefined, 11_000])).toEqual({ expiresAtMs: 12_000, leaseTtlMs: 1_000 });
    await h.invoke("registry", "register", ["web", endpoint("b"), 500, 11_000]);
    expect(await h.invoke("registry", "nextExpiryMs")).toBe(11_500);
    // A heartbeat after the lease lapsed is too late, even before the alarm removed it.
    expect(await h.invoke("registry", "renew", ["web", "b", undefined, 11_600])).toBeNull();
    expect((await h.invoke("registry", "expire", [11_600])).map((i: any) => i.id)).toEqual(["b"]);
    expect((await h.invoke("registry", "all")).map((i: any) => i.id)).toEqual(["a"]);
  });

  it("finds lapsed leases and renews one through the expiry index, never reading every lease", async () => {
    const h = await harness.fresh();
    // 2,000 leases expiring at 60,000 + i, written in one statement.
    await h.sql(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999)
      INSERT INTO registered_endpoints (service, id, binding, url, labels, weight, registered_at_ms, lease_ttl_ms, last_heartbeat_ms, expires_at_ms)
      SELECT 'web', 'i-' || i, NULL, 'https://i.example', '{}', 1, 0, 60000 + i, 0, 60000 + i FROM n`);
    await h.rowsRead();
    expect(await h.invoke("registry", "renew", ["web", "i-7", undefined, 1_000])).toMatchObject({ expiresAtMs: 61_007 });
    expect(await h.rowsRead()).toBeLessThan(10);
    expect(await h.invoke("registry", "nextExpiryMs")).toBe(60_000);
    expect(await h.rowsRead()).toBeLessThan(10);
    expect((await h.invoke("registry", "expire", [60_001])).map((i: any) => i.id)).toEqual(["i-0", "i-1"]);
    expect(await h.rowsRead()).toBeLessThan(20);
    expect(await h.invoke("registry", "count", ["web"])).toBe(1_998);
  });
});

describe("health monitor", () => {
  const fail = { ok: false, detail: "status 503 (expected 200)" };
  const pass = { ok: true, detail: "status 200" };
  const thresholds = { healthyThreshold: 1, unhealthyThreshold: 2 };

  it("records transitions at the thresholds, keeps state across a restart, and trims its history", async () => {
    const h = await harness.fresh();
    await h.setup({ healthHistoryLimit: 3 });
    expect(await h.invoke("health", "recordCheck", ["web", "a", fail, thresholds, 1])).toBe(false);
    expect(await h.invoke("health", "recordCheck", ["web", "a", fail, thresholds, 2])).toBe(true);
    expect(await h.invoke("health", "isExcluded", ["web", "a", true, 3])).toBe(true);
    // Unhealthy counts only where the service has active checks.
    expect(await h.invoke("health", "isExcluded", ["web", "a", false, 3])).toBe(false);
    expect(await h.takeEmitted()).toEqual([expect.objectContaining({ service: "web", endpointId: "a", source: "active", from: "healthy", to: "unhealthy", atMs: 2 })]);
    await h.restart();
    expect(await h.invoke("health", "get", ["web", "a"])).toMatchObject({ active: { state: "unhealthy" }, checks: 2, lastCheckMs: 2 });
    for (let t = 10; t < 30; t++) await h.invoke("health", "recordCheck", ["web", "a", t % 2 ? fail : pass, { healthyThreshold: 1, unhealthyThreshold: 1 }, t]);
    const kept = await h.invoke("health", "history", [{ service: "web", limit: 100 }]);
    expect(kept.length).toBeGreaterThanOrEqual(3);
    expect(kept.length).toBeLessThan(6);
    expect(kept[0].atMs).toBe(29);
  });

  it("ejects an endpoint from summed reports and lets it back when the ejection ends", async () => {
    const h = await harness.fresh();
    const policy = { windowMs: 10_000, minRequests: 10, failurePercent: 50, ejectionMs: 5_000 };
    const outcome = (endpointId: string, requests: number, failures: number) => ({ endpointId, requests, failures, latencyMsSum: 0, latencyMsMax: 0 });
    // Two isolates' reports add up in one window; neither alone reaches minRequests.
    expect(await h.invoke("health", "addOutcomes", ["web", [outcome("a", 6, 4)], ["a", "b"], policy, 1_000])).toEqual([]);
    expect(await h.invoke("health", "addOutcomes", ["web", [outcome("a", 6, 4), outcome("ghost", 50, 50)], ["a", "b"], policy, 2_000])).toEqual(["a"]);
    expect(await h.invoke("health", "isExcluded", ["web", "a", false, 2_001])).toBe(true);
    expect(await h.invoke("health", "nextEjectionEndMs")).toBe(7_000);
    expect((await h.takeEmitted()).map((t) => `${t.endpointId} ${t.from}->${t.to}`)).toEqual(["a healthy->ejected"]);
    expect(await h.invoke("health", "endEjections", [6_999])).toEqual([]);
    expect(await h.invoke("health", "endEjections", [7_000])).toEqual(["web"]);
    expect(await h.invoke("health", "isExcluded", ["web", "a", false, 7_001])).toBe(false);
    expect(await h.invoke("health", "nextEjectionEndMs")).toBeNull();
  });

  it("never ejects more endpoints of a service than it is allowed to at once", async () => {
    const h = await harness.fresh();
    const policy = { windowMs: 10_000, minRequests: 1, failurePercent: 50, ejectionMs: 5_000 };
    const bad = ["a", "b", "c", "d"].map((endpointId) => ({ endpointId, requests: 10, failures: 10, latencyMsSum: 0, latencyMsMax: 0 }));
    expect(await h.invoke("health", "addOutcomes", ["web", bad, ["a", "b", "c", "d"], policy, 1_000, 2])).toEqual(["a", "b"]);
    // Still failing, still capped.
    expect(await h.invoke("health", "addOutcomes", ["web", bad, ["a", "b", "c", "d"], policy, 2_000, 2])).toEqual([]);
    // Once one is back, the next failing one may go.
    await h.invoke("health", "endEjections", [6_000]);
    expect(await h.invoke("health", "addOutcomes", ["web", bad.slice(2), ["a", "b", "c", "d"], policy, 6_500, 2])).toEqual(["c", "d"]);
  });
});

describe("snapshot server", () => {
  const twoServices = (webTimeoutMs = 1_000) => ({
    mesh: "m",
    services: {
      web: { endpoints: [{ id: "w-1", binding: "W_1" }, { id: "w-2", binding: "W_2" }], routes: [{ name: "all", to: [{ subset: "all" }], timeoutMs: webTimeoutMs }], subsets: { all: {} } },
      api: { endpoints: [{ id: "a-1", binding: "A_1" }] },
    },
  });
  const checkIn = (service: string, isolateId: string, knownGeneration: number, knownEpoch?: string) =>
    ({ service, isolateId, colo: "AMS", knownGeneration, knownPolicyVersion: 1, ...(knownEpoch !== undefined ? { knownEpoch } : {}) });

  it("gives each service its own generation: a change to web moves only web's", async () => {
    const h = await harness.fresh();
    expect((await h.activate(1, twoServices())).ok).toBe(true);
    expect((await h.invoke("snapshots", "refresh", [["web", "api"], 0])).sort()).toEqual(["api", "web"]);
    const web = await h.invoke("snapshots", "snapshot", ["web", 0]);
    const api = await h.invoke("snapshots", "snapshot", ["api", 0]);
    expect(web.generation).not.toBe(api.generation);
    const epoch = web.epoch;
    expect(await h.invoke("snapshots", "checkIn", [checkIn("api", "i-api", api.generation, epoch), 0])).toEqual({ status: "not-modified", generation: api.generation });

    await h.invoke("registry", "register", ["web", { id: "w-3", binding: "W_3", labels: {}, weight: 1 }, 60_000, 0]);
    const touched = await h.invoke("policy", "registryChanged", ["web"]);
    expect(await h.invoke("snapshots", "refresh", [touched, 1])).toEqual(["web"]);
    const web2 = await h.invoke("snapshots", "snapshot", ["web", 1]);
    expect(web2.generation).toBeGreaterThan(web.generation);
    expect(web2.endpoints.map((e: any) => e.id)).toEqual(["w-1", "w-2", "w-3"]);
    // api's sidecar has nothing to download; web's gets the new snapshot.
    expect(await h.invoke("snapshots", "checkIn", [checkIn("api", "i-api", api.generation, epoch), 2])).toMatchObject({ status: "not-modified" });
    expect(await h.invoke("snapshots", "checkIn", [checkIn("web", "i-web", web.generation, epoch), 2])).toMatchObject({ status: "ok", snapshot: { generation: web2.generation } });
    // A refresh that changes nothing moves nothing.
    expect(await h.invoke("snapshots", "refresh", [["web", "api"], 3])).toEqual([]);
  });

  it("keeps generations and the epoch across a restart, so sidecars download nothing again", async () => {
    const h = await harness.fresh();
    await h.activate(1, twoServices());
    await h.invoke("snapshots", "refresh", [["web", "api"], 0]);
    const web = await h.invoke("snapshots", "snapshot", ["web", 0]);
    await h.restart();
    await h.activate(1, twoServices());
    expect(await h.invoke("snapshots", "checkIn", [checkIn("web", "i-web", web.generation, web.epoch), 5])).toEqual({ status: "not-modified", generation: web.generation });
    // An apply that leaves web alone keeps web's generation and the policy version it came from.
    await h.activate(2, { ...twoServices(), services: { ...twoServices().services, api: { endpoints: [{ id: "a-2", binding: "A_2" }] } } });
    expect(await h.invoke("snapshots", "refresh", [["web", "api"], 6])).toEqual(["api"]);
    expect(await h.invoke("snapshots", "snapshot", ["web", 6])).toMatchObject({ generation: web.generation, policyVersion: 1 });
    expect(await h.invoke("snapshots", "snapshot", ["api", 6])).toMatchObject({ policyVersion: 2 });
  });

  it("sends a full snapshot to a sidecar of another epoch or none, and names the known services otherwise", async () => {
    const h = await harness.fresh();
    await h.activate(1, twoServices());
    const web = await h.invoke("snapshots", "snapshot", ["web", 0]);
    expect(await h.invoke("snapshots", "checkIn", [checkIn("web", "i-1", web.generation, "an-old-epoch"), 1])).toMatchObject({ status: "ok" });
    expect(await h.invoke("snapshots", "checkIn", [checkIn("web", "i-2", 0, ""), 1])).toMatchObject({ status: "ok" });
    expect(await h.invoke("snapshots", "checkIn", [checkIn("nope", "i-3", 0, ""), 1])).toMatchObject({ status: "unknown-service", services: ["web", "api"] });
  });

  it("marks excluded endpoints unhealthy and keeps every subset whole", async () => {
    const h = await harness.fresh();
    await h.activate(1, twoServices());
    const before = await h.invoke("snapshots", "snapshot", ["web", 0]);
    await h.exclude(["web/w-1", "web/w-2"]);
    expect(await h.invoke("snapshots", "refresh", [["web"], 1])).toEqual(["web"]);
    const after = await h.invoke("snapshots", "snapshot", ["web", 1]);
    expect(after.endpoints.map((e: any) => e.healthy)).toEqual([false, false]);
    expect(after.subsets).toEqual(before.subsets);
    expect(after.subsets.all).toEqual([0, 1]);
  });
});

describe("event log", () => {
  it("pages by sequence with a type filter, and keeps only the newest events", async () => {
    const h = await harness.fresh();
    await h.setup({ eventLogLimit: 5 });
    for (let i = 1; i <= 12; i++) {
      await h.invoke("events", "emit", [i % 4 === 0 ? "endpoint.deregistered" : "endpoint.registered", { service: "web", endpointId: `e-${i}` }, i]);
    }
    const page = await h.invoke("events", "page", [0, 100]);
    expect(page.latestSeq).toBe(12);
    expect(page.events.length).toBeGreaterThanOrEqual(5);
    expect(page.events.length).toBeLessThan(10);
    expect(page.events.at(-1)).toMatchObject({ seq: 12, atMs: 12, type: "endpoint.deregistered" });
    const filtered = await h.invoke("events", "page", [6, 1, ["endpoint.deregistered"]]);
    expect(filtered.events.map((e: any) => e.seq)).toEqual([8]);
    expect(filtered.nextSince).toBe(8);
    expect((await h.invoke("events", "page", [8, 1, ["endpoint.deregistered"]])).events.map((e: any) => e.seq)).toEqual([12]);
  });
});

describe("alarm planner", () => {
  it("sets the alarm to the earliest due time, only moves it earlier, and clears it when nothing is due", async () => {
    const h = await harness.fresh();
    const base = Date.now() + 60_000;
    expect(await h.planAlarm([base + 500, null, base + 200], false)).toBe(base + 200);
    // Outside the alarm handler a later time never replaces an earlier alarm...
    expect(await h.planAlarm([base + 900], false)).toBe(base + 200);
    // ...but the handler itself sets the next one, whatever it is.
    expect(await h.planAlarm([base + 900], true)).toBe(base + 900);
    expect(await h.planAlarm([null, null], true)).toBeNull();
  });
});
