// Large meshes and large bodies on the real runtime: a 3,000-service document of ~4.8 MB applies
// (stored in pieces below SQLite's 2 MB row limit) and is served; a one-service change recompiles
// and re-sends one service; bodies past the documented maxima are refused with 413 naming the
// limit, without being read whole.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";
import { sizedPolicy } from "../../scripts/bench/mesh-policy.ts";
import { MAX_SQL_BYTES } from "../../workers/control/analytics-routes.ts";
import { adminJson } from "../control-helpers.ts";

const TOPOLOGY: Topology = { mesh: "big", services: { "svc-0": [{ id: "svc-0-a", binding: "A_1", script: "test-health-target" }] } };

/** 3,000 services × 20 routes: about 4.8 MB of JSON; `tweakService` gets its own first-route timeout. */
const bigPolicy = (services = 3_000, routes = 20, tweakService = -1) =>
  sizedPolicy("big", services, routes, tweakService >= 0 ? { service: tweakService, timeoutMs: 3_000 } : undefined);

let mesh: RunningMesh;
beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY });
});
afterAll(async () => mesh?.dispose());

describe("a 3,000-service mesh", () => {
  it("applies and serves a ~4.8 MB document, and a one-service change recompiles and re-sends only that service", async () => {
    const doc = bigPolicy();
    const body = JSON.stringify(doc);
    expect(body.length).toBeGreaterThan(4_500_000);
    expect(body.length).toBeLessThan(5_500_000);
    const applied = await mesh.admin("/v1/policy", { method: "POST", headers: { "content-type": "application/json" }, body });
    const first = (await applied.json()) as any;
    expect(applied.status, JSON.stringify(first).slice(0, 300)).toBe(201);
    expect(first.changedServices).toBe(3_000);
    const snap = (await adminJson(mesh, "/v1/snapshot/svc-2999")).body;
    expect(snap.routes).toHaveLength(20);
    expect(snap.endpoints.map((e: any) => e.id)).toEqual(["svc-2999-a", "svc-2999-b"]);
    const stored = (await adminJson(mesh, "/v1/policy")).body;
    expect(stored.version).toBe(first.version);
    expect(Object.keys(stored.document.services)).toHaveLength(3_000);

    const before = (await adminJson(mesh, "/v1/sync")).body.services;
    const changed = await adminJson(mesh, "/v1/policy", { method: "POST", json: bigPolicy(3_000, 20, 1_234) });
    expect(changed.status).toBe(201);
    expect(changed.body).toMatchObject({ changedServices: 1, removedServices: 0 });
    const after = (await adminJson(mesh, "/v1/sync")).body.services;
    const moved = Object.keys(after).filter((s) => after[s].generation !== before[s].generation);
    expect(moved).toEqual(["svc-1234"]);
    expect((await adminJson(mesh, "/v1/snapshot/svc-1234")).body.routes[0].timeoutMs).toBe(3_000);
    // The unchanged services keep the policy version they last changed in.
    expect((await adminJson(mesh, "/v1/snapshot/svc-7")).body.policyVersion).toBe(first.version);
  });
});

describe("request body limits", () => {
  it("refuses a policy past the maximum with 413 naming the limit, going by Content-Length before reading", async () => {
    // 30 MB announced; only a few bytes are ever sent, so a server that read the body whole would hang.
    let pulled = 0;
    const stream = new ReadableStream({
      pull(controller) {
        pulled++;
        if (pulled > 2) return new Promise(() => {});
        controller.enqueue(new TextEncoder().encode("{".repeat(1024)));
      },
    });
    const res = await mesh.admin("/v1/policy", { method: "POST", headers: { "content-length": String(30 * 1024 * 1024) }, body: stream, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    const body = (await res.json()) as any;
    expect(body.limitBytes).toBe(8 * 1024 * 1024);
    expect(body.error).toContain("8388608 bytes (8 MiB)");
  });

  /** Chunks after which the "endless" bodies below end: far past every limit, still finite. */
  const UPLOAD_CAP_CHUNKS = 256;

  it("stops reading a body without Content-Length as soon as it passes the limit", async () => {
    const chunk = new TextEncoder().encode("x".repeat(1024 * 1024));
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        // Far longer than the limit (it ends after UPLOAD_CAP_CHUNKS only so that no upload can run
        // on after the test): the server must give up on its own once it has seen more than 8 MiB.
        if (++sent > UPLOAD_CAP_CHUNKS) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await mesh.admin("/v1/policy/validate", { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error).toContain("at most 8388608 bytes");
    expect(sent).toBeLessThan(64);
  });

  it("refuses an import or SQL body without Content-Length once it passes its route's limit, through the same reader", async () => {
    for (const [route, limit] of [["/v1/import", 1024 * 1024], ["/v1/analytics/sql", MAX_SQL_BYTES]] as const) {
      // Chunked, one 16 KiB chunk past the limit: the reader sees the limit pass on the last chunk,
      // so the answer never races a connection closed on unread bytes.
      const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
      let left = limit / chunk.byteLength + 1;
      const stream = new ReadableStream({
        pull(controller) {
          if (left-- > 0) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const res = await mesh.admin(route, { method: "POST", body: stream, duplex: "half" } as RequestInit);
      expect(res.status, route).toBe(413);
      expect(((await res.json()) as any).error, route).toContain(`at most ${limit} bytes`);
    }
  });

  it("caps the other admin routes' bodies at 64 KiB", async () => {
    const big = JSON.stringify({ id: "x-1", url: "https://x.example", labels: { pad: "y".repeat(40) }, extra: "z".repeat(70 * 1024) });
    const res = await adminJson(mesh, "/v1/registry/svc-0", { method: "POST", body: big, headers: { "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ limitBytes: 65536 });
    const fault = await adminJson(mesh, "/v1/debug/fault", { method: "PUT", body: " ".repeat(65 * 1024) + "{}" });
    expect(fault.status).toBe(413);
  });
});
