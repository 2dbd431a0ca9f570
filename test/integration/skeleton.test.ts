// The walking skeleton end to end on the real runtime: routing from a policy held in the
// MeshControl Durable Object, applied, refused, rolled back, and surviving a restart. The routing
// tests share one mesh whose policy never changes; every policy-lifecycle test has its own.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOKINFO, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";
import { untilSidecarCurrent } from "../control-helpers.ts";
import { bookinfoPolicy, nodeServer, sidecar, sleep, tally, type Fetch } from "../helpers.ts";

const TOPOLOGY: Topology = {
  mesh: "bookinfo",
  services: {
    ...BOOKINFO.services,
    echo: [{ id: "echo-1", binding: "ECHO_1", script: "test-echo" }],
  },
};

let mesh: RunningMesh;
let reviews: Fetch;
let echo: Fetch;
let origin: Awaited<ReturnType<typeof nodeServer>>;
const cleanup: (() => Promise<unknown>)[] = [];

/** A mesh of its own with the policy applied (persisted under `persistRoot` when given). */
async function freshMesh(persistRoot?: string): Promise<{ mesh: RunningMesh; reviews: Fetch; debug: Record<string, string> }> {
  const own = await startMesh({ topology: TOPOLOGY, ...(persistRoot ? { persistRoot } : {}) });
  cleanup.push(() => own.dispose());
  expect((await own.applyPolicy(await policyWithEcho(), 0)).status).toBe(201);
  return { mesh: own, reviews: await sidecar(own, "reviews"), debug: await own.debugHeaders() };
}

async function policyWithEcho(): Promise<any> {
  const doc = await bookinfoPolicy();
  doc.services.echo = {
    endpoints: [
      { id: "echo-1", binding: "ECHO_1", labels: { kind: "worker" } },
      { id: "origin-1", url: origin.url, labels: { kind: "origin" } },
    ],
    subsets: { worker: { kind: "worker" }, origin: { kind: "origin" } },
    routes: [
      { name: "to-origin", match: [{ path: { prefix: "/origin/" } }], to: [{ subset: "origin" }], timeoutMs: 500 },
      { name: "only-get-api", match: [{ path: { prefix: "/api/" }, methods: ["GET", "POST", "PUT"] }], to: [{ subset: "worker" }], timeoutMs: 300 },
      { name: "q", match: [{ query: { echo: { present: true } } }], to: [{ subset: "worker" }] },
    ],
  };
  return doc;
}

// The sidecar gives its debug headers only to requests that carry a debug credential of its mesh.
let debug: Record<string, string>;

beforeAll(async () => {
  origin = await nodeServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.url?.startsWith("/origin/slow")) {
        setTimeout(() => res.end("late"), 5_000);
        return;
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ origin: true, method: req.method, url: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString() }));
    });
  });
  mesh = await startMesh({ topology: TOPOLOGY });
  const res = await mesh.applyPolicy(await policyWithEcho(), 0);
  expect(res.status).toBe(201);
  reviews = await sidecar(mesh, "reviews");
  echo = await sidecar(mesh, "echo");
  debug = await mesh.debugHeaders();
});

afterAll(async () => {
  for (const c of cleanup) await c().catch(() => {});
  await mesh?.dispose();
  await origin?.close();
});

describe("routing from the policy", () => {
  it("splits 500 requests 90/10 within ±5 points", async () => {
    const counts = await tally(() => reviews("/reviews/0", { headers: debug }), 500, "x-edgemesh-subset");
    expect((counts.v1 ?? 0) + (counts.v3 ?? 0)).toBe(500);
    expect(counts.v3! / 500).toBeGreaterThanOrEqual(0.05);
    expect(counts.v3! / 500).toBeLessThanOrEqual(0.15);
  });

  it("lets a header match win over the default route", async () => {
    const counts = await tally(() => reviews("/reviews/0", { headers: { ...debug, "end-user": "jason" } }), 40, "x-edgemesh-route");
    expect(counts).toEqual({ jason: 40 });
    const res = await reviews("/reviews/0", { headers: { ...debug, "end-user": "jason" } });
    expect(res.headers.get("x-edgemesh-endpoint")).toBe("reviews-v2");
    expect(((await res.json()) as { version: string }).version).toBe("v2");
  });

  it("carries a request through the whole app: productpage -> reviews -> ratings", async () => {
    const res = await fetch(new URL("/api/v1/products/0?user=jason", mesh.url));
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.mesh.reviewsVersion).toBe("v2");
    expect(body.reviews.reviews[0].rating).toEqual({ stars: 5, color: "black" });
    expect(body.details.author).toBe("William Shakespeare");
  });

  it("forwards method, headers, query and body intact over a service binding", async () => {
    const res = await echo("/api/items?x=1&y=two", { method: "PUT", headers: { ...debug, "x-custom": "abc", "content-type": "text/plain" }, body: "hello body" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgemesh-route")).toBe("only-get-api");
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ endpoint: "echo-1", method: "PUT", path: "/api/items", search: "?x=1&y=two", body: "hello body" });
    expect(body.headers["x-custom"]).toBe("abc");
  });

  it("forwards to an origin URL with path, query and body", async () => {
    const res = await echo("/origin/thing?z=9", { method: "POST", body: "payload", headers: debug });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgemesh-endpoint")).toBe("origin-1");
    expect(await res.json()).toMatchObject({ origin: true, method: "POST", url: "/origin/thing?z=9", body: "payload", host: new URL(origin.url).host });
  });

  it("streams a large response body through", async () => {
    const big = "x".repeat(3 * 1024 * 1024);
    const res = await echo("/api/big", { method: "POST", body: big });
    const body = (await res.json()) as any;
    expect(body.body.length).toBe(big.length);
  });

  it("answers 504 when the route timeout passes, naming the route", async () => {
    const started = Date.now();
    const res = await echo("/origin/slow");
    expect(res.status).toBe(504);
    expect(res.headers.get("x-edgemesh-timeout")).toBe("route-timeout");
    // The route's 500 ms, not the origin's 5 s (with room for a busy machine).
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(((await res.json()) as any).route).toBe("to-origin");
  });

  it("answers 404 with a reason when no route matches, and keeps serving", async () => {
    const res = await echo("/nowhere", { method: "DELETE" });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-edgemesh-no-route")).toBe("no-route-matched");
    expect((await echo("/api/ok")).status).toBe(200);
  });
});

describe("policy lifecycle", () => {
  it("needs the admin token", async () => {
    const res = await fetch(new URL("/v1/policy", mesh.controlUrl));
    expect(res.status).toBe(401);
    const wrong = await fetch(new URL("/v1/policy", mesh.controlUrl), { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
  });

  it("refuses a bad policy with its error paths and keeps the active one serving", async () => {
    const { mesh, reviews, debug } = await freshMesh();
    const before = (await (await mesh.admin("/v1/policy")).json()) as { version: number };
    const bad = await policyWithEcho();
    bad.services.reviews.routes[1].to = [{ subset: "v7", weight: 100 }];
    bad.services.reviews.endpoints[0].binding = "lower_case";
    const res = await mesh.applyPolicy(bad);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { path: string; message: string }[] };
    expect(body.errors.map((e) => e.path).sort()).toEqual(["$.services.reviews.endpoints[0].binding", "$.services.reviews.routes[1].to[0].subset"]);
    const after = (await (await mesh.admin("/v1/policy")).json()) as { version: number };
    expect(after.version).toBe(before.version);
    const counts = await tally(() => reviews("/reviews/0", { headers: debug }), 50, "x-edgemesh-snapshot-version");
    expect(Object.keys(counts)).toEqual([String(before.version)]);
    const notJson = await mesh.admin("/v1/policy", { method: "POST", body: "{ nope" });
    expect(notJson.status).toBe(400);
  });

  it("refuses an apply with a stale expected version", async () => {
    const { mesh } = await freshMesh();
    const current = (await (await mesh.admin("/v1/policy")).json()) as { version: number };
    const res = await mesh.applyPolicy(await policyWithEcho(), current.version - 1);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { currentVersion: number }).currentVersion).toBe(current.version);
  });

  it("changes routing within the snapshot TTL of an apply, then rolls back", async () => {
    const { mesh, reviews, debug } = await freshMesh();
    const current = (await (await mesh.admin("/v1/policy")).json()) as { version: number };
    // Warm the sidecar so it holds the current snapshot.
    await tally(() => reviews("/reviews/0", { headers: debug }), 20, "x-edgemesh-subset");
    const doc = await policyWithEcho();
    doc.services.reviews.routes[1].to = [{ subset: "v2", weight: 1 }];
    const applied = await mesh.applyPolicy(doc, current.version);
    expect(applied.status).toBe(201);
    const newVersion = ((await applied.json()) as { version: number }).version;
    const appliedAt = Date.now();
    let switchedAfterMs = -1;
    while (Date.now() - appliedAt < 6_000) {
      const res = await reviews("/reviews/0", { headers: debug });
      await res.arrayBuffer();
      if (res.headers.get("x-edgemesh-subset") === "v2") {
        switchedAfterMs = Date.now() - appliedAt;
        break;
      }
      await sleep(20);
    }
    // Within the TTL (1 s), or half a TTL more when the colo's shared answer was just taken;
    // a second on top for a busy machine.
    expect(switchedAfterMs).toBeGreaterThanOrEqual(0);
    expect(switchedAfterMs).toBeLessThan(1.5 * 1_000 + 1_000);
    const counts = await tally(() => reviews("/reviews/0", { headers: debug }), 30, "x-edgemesh-subset");
    expect(counts).toEqual({ v2: 30 });

    const diff = (await (await mesh.admin(`/v1/policy/diff?from=${current.version}&to=${newVersion}`)).json()) as any;
    expect(diff.changes).toEqual([
      { path: "$.services.reviews.routes[1].to[0].subset", op: "changed", from: "v1", to: "v2" },
      { path: "$.services.reviews.routes[1].to[0].weight", op: "changed", from: 90, to: 1 },
      { path: "$.services.reviews.routes[1].to[1]", op: "removed", from: { subset: "v3", weight: 10 } },
    ]);

    const rolled = await mesh.admin("/v1/policy/rollback", { method: "POST", headers: { "if-match": `"${newVersion}"` } });
    expect(rolled.status).toBe(201);
    expect(((await rolled.json()) as { version: number }).version).toBe(newVersion + 1);
    await untilSidecarCurrent(mesh, "reviews");
    const back = await tally(() => reviews("/reviews/0", { headers: debug }), 200, "x-edgemesh-subset");
    expect(back.v2 ?? 0).toBe(0);
    expect(back.v1).toBeGreaterThan(150);

    const history = (await (await mesh.admin("/v1/policy/history")).json()) as any;
    expect(history.activeVersion).toBe(newVersion + 1);
    expect(history.versions[0]).toMatchObject({ version: newVersion + 1, kind: "rollback", restoredVersion: current.version });
  });

  it("finds its policy history and routing again after a restart with persistence", async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-skeleton-"));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const first = await freshMesh(stateDir);
    const doc = await policyWithEcho();
    doc.services.reviews.routes[1].timeoutMs = 2_500;
    expect((await first.mesh.applyPolicy(doc, 1)).status).toBe(201);
    const before = (await (await first.mesh.admin("/v1/policy/history")).json()) as any;
    expect(before.versions).toHaveLength(2);
    await first.mesh.dispose();
    const again = await startMesh({ topology: TOPOLOGY, persistRoot: stateDir });
    cleanup.push(() => again.dispose());
    const after = (await (await again.admin("/v1/policy/history")).json()) as any;
    expect(after).toEqual(before);
    const reviewsAgain = await sidecar(again, "reviews");
    // A restarted local mesh has new token keys: a debug credential of its own.
    const debugAgain = await again.debugHeaders();
    const counts = await tally(() => reviewsAgain("/reviews/0", { headers: { ...debugAgain, "end-user": "jason" } }), 10, "x-edgemesh-endpoint");
    expect(counts).toEqual({ "reviews-v2": 10 });
  });
});
