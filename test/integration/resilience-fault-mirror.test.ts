// Fault injection, mirroring and hedging on the real runtime. Bounds are statistical with margin
// or far from the behaviour they tell apart (a stall of seconds, a deadline of tens of ms), so the
// tests hold on a busy machine.
import { describe, expect, it } from "vitest";
import { endpointsOf, eventually, instanceIds, percentile, settled, type ResilienceMesh, useResilienceMesh } from "./resilience-helpers.ts";

const ids = instanceIds(3);
let m: ResilienceMesh;

const endpoints = () => endpointsOf(ids, (id) => ({ role: id === "api-c" ? "shadow" : "main" }));
const subsets = { main: { role: "main" }, shadow: { role: "shadow" } };
const noEjection = { consecutive5xx: 0, consecutiveGatewayErrors: 0 };

useResilienceMesh(ids, (started) => {
  m = started;
});

function route(extra: Record<string, unknown>) {
  return { endpoints: endpoints(), subsets, outlierDetection: noEjection, routes: [{ name: "r", to: [{ subset: "main" }], ...extra }] };
}

describe("fault injection", () => {
  it("aborts the configured share of requests (within statistical tolerance)", async () => {
    await m.apply(route({ fault: { abort: { percent: 20, status: 500 } } }));
    await m.resetStats();
    const r = await m.load({ requests: 1000, concurrency: 16, tally: "x-edgemesh-fault" });
    // Binomial(1000, 0.2): sd 12.6; allow 4 sd.
    expect(r.statuses["500"]).toBeGreaterThanOrEqual(150);
    expect(r.statuses["500"]).toBeLessThanOrEqual(250);
    expect(r.tally["abort"]).toBe(r.statuses["500"]);
    const hits = (await m.stats("api-a")).hits + (await m.stats("api-b")).hits;
    expect(hits).toBe(r.statuses["200"]); // aborted tries never reached an instance
  });

  it("targets only requests that carry the header", async () => {
    await m.apply(route({ fault: { abort: { percent: 100, status: 418 }, onlyWithHeader: { name: "x-chaos", value: "me" } } }));
    const untouched = await m.load({ requests: 50 });
    expect(untouched.statuses["200"]).toBe(50);
    const targeted = await m.load({ requests: 50, headers: { "x-chaos": "me" } });
    expect(targeted.statuses["418"]).toBe(50);
  });

  it("keeps the route's retries: injected 503s are retried like real ones", async () => {
    await m.apply(route({ fault: { abort: { percent: 10, status: 503 } } }));
    const kept = await m.load({ requests: 400, concurrency: 8 });
    expect(kept.statuses["200"] ?? 0).toBeGreaterThanOrEqual(396);
    await m.apply(route({ fault: { abort: { percent: 10, status: 503 }, bypassRetries: true } }));
    const bypassed = await m.load({ requests: 400, concurrency: 8 });
    expect(bypassed.statuses["503"]).toBeGreaterThanOrEqual(20);
    expect(bypassed.statuses["503"]).toBeLessThanOrEqual(65);
  });

  it("keeps the route's timeout: a delay longer than it ends in 504", async () => {
    // A 5 s delay against a 150 ms deadline: the answer comes at the deadline, far from the delay.
    await m.apply(route({ timeoutMs: 150, fault: { delay: { percent: 100, ms: 5000 } } }));
    const started = Date.now();
    const res = await m.call("/");
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: string }).error).toBe("route-timeout");
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe("mirroring", () => {
  it("shadows every request and never lets a stalled or failing shadow touch the primary", async () => {
    await m.apply(route({ mirror: { subset: "shadow", percent: 100 } }));
    for (const mode of [{ mode: "stall" }, { mode: "reset" }, { failPercent: 100, failStatus: 500 }]) {
      await m.configure("api-c", mode);
      await m.resetStats();
      const r = await m.load({ requests: 200, concurrency: 8, method: "PUT", body: "payload" });
      expect(r.statuses["200"]).toBe(200);
      expect(r.tally["api-c"]).toBeUndefined();
      // A stalled shadow hangs for 60 s; the primaries never wait for it.
      expect(percentile(r.latenciesMs, 99)).toBeLessThan(2000);
    }
    await m.configure("api-c", {});
    await m.resetStats();
    await m.load({ requests: 200, concurrency: 8 });
    const shadow = await eventually(() => m.stats("api-c"), (s) => s.shadowHits >= 200);
    expect(shadow.shadowHits).toBe(200);
    expect(shadow.hits).toBe(0);
  });

  it("shadows the configured share", async () => {
    await m.apply(route({ mirror: { subset: "shadow", percent: 30 } }));
    await m.resetStats();
    await m.load({ requests: 600, concurrency: 8 });
    // Shadows run in the background: wait until they stop arriving.
    const { shadowHits } = await settled(() => m.stats("api-c"));
    // Binomial(600, 0.3): sd 11.2; allow 4 sd.
    expect(shadowHits).toBeGreaterThanOrEqual(135);
    expect(shadowHits).toBeLessThanOrEqual(225);
  });
});

describe("hedging", () => {
  it("sends a second try after the delay; the first good answer wins", async () => {
    const policy = route({ hedge: { afterMs: 40 } });
    await m.apply({ ...policy, loadBalancer: { algorithm: "round-robin" } });
    await m.configure("api-a", { delayMs: 5000 });
    await m.resetStats();
    const r = await m.load({ requests: 40, concurrency: 4, tally: "x-flaky-endpoint" });
    expect(r.statuses["200"]).toBe(40);
    expect(r.tally["api-a"]).toBeUndefined(); // the slow one never wins
    // Without hedging, a third of the requests would take 5 s.
    expect(Math.max(...r.latenciesMs)).toBeLessThan(2500);
    const res = await m.call("/", { headers: m.debugHeaders });
    await res.arrayBuffer();
    const res2 = await m.call("/", { headers: m.debugHeaders });
    await res2.arrayBuffer();
    expect([res.headers.get("x-edgemesh-hedged"), res2.headers.get("x-edgemesh-hedged")]).toContain("1");
    // Hedges are retries as far as the budget is concerned.
    expect((await m.debug("resilience")).retryBudget.retries).toBeGreaterThanOrEqual(20);
  });
});
