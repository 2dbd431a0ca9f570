// Active health checks at the largest service size: 1,024 endpoints, half of which hang for the
// whole timeout. Checked 6 at a time (an invocation's connection limit) that would take minutes a
// round; in probe invocations of their own (HealthProbe) a round must fit in the interval.
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { adminJson, eventually, healthTargetTopology } from "../control-helpers.ts";
import { nodeServer } from "../helpers.ts";

const TOPOLOGY = healthTargetTopology("hs", { web: 1 });
const ENDPOINTS = 1_024;
const INTERVAL_MS = 5_000;

let mesh: RunningMesh;
let origin: Awaited<ReturnType<typeof nodeServer>>;
const stats = { inFlight: 0, peak: 0, hung: new Set<Socket>() };

beforeAll(async () => {
  origin = await nodeServer((req, res) => {
    const id = Number(/^\/e(\d+)\//.exec(req.url ?? "")?.[1] ?? -1);
    stats.inFlight++;
    stats.peak = Math.max(stats.peak, stats.inFlight);
    req.socket.once("close", () => stats.inFlight--);
    // Odd endpoints never answer: only the check's timeout ends them.
    if (id % 2 === 1) return void stats.hung.add(req.socket);
    res.writeHead(200, { connection: "close" });
    res.end("ok");
  });
  mesh = await startMesh({ topology: TOPOLOGY });
});

afterAll(async () => {
  await mesh?.dispose();
  await origin?.close();
});

describe("active checks of a 1,024-endpoint service with half its endpoints hanging", () => {
  it("checks every endpoint within the interval, round after round", async () => {
    const endpoints = Array.from({ length: ENDPOINTS }, (_, i) => ({ id: `e-${i}`, url: `${origin.url}/e${i}` }));
    const check = { path: "/healthz", intervalMs: INTERVAL_MS, timeoutMs: 1_000, unhealthyThreshold: 1, healthyThreshold: 1 };
    const appliedAt = Date.now();
    expect((await mesh.applyPolicy({ mesh: "hs", services: { web: { endpoints, healthCheck: check } } })).status).toBe(201);
    const checkedAtLeast = (rounds: number) => async () =>
      ((await adminJson(mesh, "/v1/health?service=web")).body.endpoints as any[]).filter((e) => e.active.checks >= rounds).length;

    await eventually(checkedAtLeast(1), (n) => n === ENDPOINTS, 3 * INTERVAL_MS, 200);
    const firstRoundMs = Date.now() - appliedAt;
    console.log(`first round of ${ENDPOINTS} checks: ${firstRoundMs} ms; peak in flight ${stats.peak}`);
    // A round fits in the interval (with room for a loaded machine), where 6 at a time would need
    // 512 × 1 s / 6 ≈ 85 s.
    expect(firstRoundMs).toBeLessThan(INTERVAL_MS + 2_000);
    const status = (await adminJson(mesh, "/v1/health?service=web")).body.endpoints as any[];
    expect(status.filter((e) => e.excluded).length).toBe(ENDPOINTS / 2);
    expect(status.find((e) => e.endpointId === "e-1").active.lastDetail).toBe("timeout after 1000 ms");
    // Many checks ran at once, but never more than 64 invocations × 6 connections.
    expect(stats.peak).toBeGreaterThan(6);
    expect(stats.peak).toBeLessThanOrEqual(64 * 6);

    // The next round starts one interval after the first and fits again.
    await eventually(checkedAtLeast(2), (n) => n === ENDPOINTS, 2 * INTERVAL_MS + 2_000, 200);
    expect(Date.now() - appliedAt).toBeLessThan(2 * INTERVAL_MS + 3_000);
    expect((await mesh.applyPolicy({ mesh: "hs", services: { web: { endpoints: endpoints.slice(0, 1) } } })).status).toBe(201);
    for (const socket of stats.hung) socket.destroy();
  });
});
