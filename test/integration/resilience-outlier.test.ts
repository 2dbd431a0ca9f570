// Circuit breaking, outlier ejection with its single probe, and balancing around a slow instance.
// Every test has endpoint ids of its own (epId), so none inherits another's ejections or latency
// estimates from the isolate.
import { describe, expect, it } from "vitest";
import { endpointsOf, epId, instanceIds, type ResilienceMesh, useResilienceMesh } from "./resilience-helpers.ts";

const ids = instanceIds(3);
let m: ResilienceMesh;

useResilienceMesh(ids, (started) => {
  m = started;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("circuit breaker", () => {
  it("sheds load beyond max concurrent + max pending with a fast 503 that says why", async () => {
    await m.apply({ endpoints: endpointsOf(ids), circuitBreaker: { maxConcurrent: 2, maxPending: 2 } });
    for (const id of ids) await m.configure(id, { delayMs: 2000 });
    await m.resetStats();
    const r = await m.load({ requests: 24, concurrency: 24, tally: "x-edgemesh-overloaded" });
    // 2 in flight + 2 waiting get through in the first wave; the rest are refused at once.
    expect(r.statuses["503"]).toBeGreaterThanOrEqual(16);
    expect(r.tally["max-pending"]).toBe(r.statuses["503"]);
    expect(r.statuses["200"]).toBeGreaterThanOrEqual(4);
    let hits = 0;
    for (const id of ids) hits += (await m.stats(id)).hits;
    expect(hits).toBe(r.statuses["200"]);
    // Refused at once, not after the 2 s an admitted request takes.
    const fastRefusals = r.latenciesMs.filter((ms) => ms < 1000).length;
    expect(fastRefusals).toBeGreaterThanOrEqual(16);
  });
});

describe("outlier detection", () => {
  it("ejects a failing endpoint, then lets exactly one probe through per ejection", async () => {
    await m.apply({
      endpoints: endpointsOf(ids),
      loadBalancer: { algorithm: "round-robin" },
      outlierDetection: { consecutiveGatewayErrors: 3, baseEjectionMs: 1500, maxEjectionMs: 10_000 },
    });
    await m.configure("api-a", { failPercent: 100, failStatus: 503 });
    await m.resetStats();
    const first = await m.load({ requests: 60, concurrency: 2 });
    expect(first.statuses["200"]).toBe(60); // retries hid the failures
    const ejectedAfter = (await m.stats("api-a")).hits;
    expect(ejectedAfter).toBeGreaterThanOrEqual(3);
    expect(ejectedAfter).toBeLessThanOrEqual(5);

    // While ejected: no traffic at all.
    await m.load({ requests: 60, concurrency: 2 });
    expect((await m.stats("api-a")).hits).toBe(ejectedAfter);

    // Ejection over: one probe, which fails, so the endpoint is ejected again (for 2 x 1500 ms).
    await sleep(1600);
    const after = await m.load({ requests: 100, concurrency: 4 });
    expect(after.statuses["200"]).toBe(100);
    expect((await m.stats("api-a")).hits).toBe(ejectedAfter + 1);

    const report = await m.debug("outliers");
    const events = report.events.filter((e: any) => e.endpoint === epId("api-a")).map((e: any) => [e.event, e.ejectionMs ?? null]);
    expect(events.slice(-3)).toEqual([["ejected", 1500], ["probe-sent", null], ["ejected", 3000]]);
    expect(report.events.find((e: any) => e.event === "ejected").reason).toMatch(/consecutive gateway errors/);

    // Healthy again: the next probe succeeds and the endpoint is re-admitted.
    await m.configure("api-a", {});
    await sleep(3100);
    await m.load({ requests: 60, concurrency: 2 });
    const readmitted = await m.debug("outliers");
    expect(readmitted.events.at(-1)).toMatchObject({ endpoint: epId("api-a"), event: "readmitted", reason: "probe succeeded" });
    expect((await m.stats("api-a")).hits).toBeGreaterThan(ejectedAfter + 10);
  });

  it("never ejects beyond maxEjectionPercent", async () => {
    await m.apply({
      endpoints: endpointsOf(ids),
      loadBalancer: { algorithm: "round-robin" },
      outlierDetection: { consecutiveGatewayErrors: 2, baseEjectionMs: 60_000, maxEjectionMs: 60_000, maxEjectionPercent: 34 },
    });
    for (const id of ids) await m.configure(id, { failPercent: 100 });
    await m.load({ requests: 60, concurrency: 2 });
    const report = await m.debug("outliers");
    expect(report.ejectedCount).toBe(1);
  });
});

describe("load balancing", () => {
  it("peak-EWMA P2C keeps a slow instance's share small", async () => {
    await m.apply({ endpoints: endpointsOf(["api-b", "api-c"].concat("api-a")), outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 } });
    await m.configure("api-a", { delayMs: 80 });
    await m.resetStats();
    const r = await m.load({ requests: 600, concurrency: 8 });
    expect(r.statuses["200"]).toBe(600);
    expect(r.tally["api-a"] ?? 0).toBeLessThan(600 * 0.08);
  });
});
