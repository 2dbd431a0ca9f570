// Retries, timeouts and the retry budget on the real runtime, against misbehaving upstreams.
// Timing bounds are far from the behaviour they tell apart (a try that stalls for a minute against
// a deadline of a few hundred ms), so the tests hold on a busy machine.
import { describe, expect, it } from "vitest";
import { endpointsOf, instanceIds, type ResilienceMesh, useResilienceMesh } from "./resilience-helpers.ts";

const ids = instanceIds(3);
let m: ResilienceMesh;

useResilienceMesh(ids, (started) => {
  m = started;
});

async function totalHits(): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await m.stats(id)).hits;
  return n;
}

describe("retries", () => {
  it("mask an instance that fails 30% of requests, with little amplification (defaults)", async () => {
    await m.apply({ endpoints: endpointsOf(ids) });
    await m.configure("api-a", { failPercent: 30, failStatus: 503 });
    await m.resetStats();
    const r = await m.load({ requests: 600, concurrency: 8 });
    expect(r.statuses["200"] ?? 0).toBeGreaterThanOrEqual(598);
    expect((await totalHits()) / 600).toBeLessThanOrEqual(1.15);
  });

  it("are capped by the retry budget when everything fails", async () => {
    await m.apply({
      endpoints: endpointsOf(ids),
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 5, backoff: { baseMs: 1, maxMs: 1 } } }],
      retryBudget: { percent: 20, minRetriesPerSecond: 1, windowMs: 1000 },
      outlierDetection: { consecutiveGatewayErrors: 0, consecutive5xx: 0 },
    });
    for (const id of ids) await m.configure(id, { failPercent: 100, failStatus: 503 });
    await m.resetStats();
    // The budget is the isolate's: let what earlier tests recorded leave its 1 s window.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refusedBefore = (await m.debug("resilience")).retryBudget.refused;
    const r = await m.load({ requests: 400, concurrency: 8 });
    expect(r.statuses["503"]).toBe(400);
    const hits = await totalHits();
    // Without a budget this would be 6x; the budget allows 20% plus 1/s, whatever the window holds.
    expect(hits).toBeGreaterThan(400);
    expect(hits).toBeLessThanOrEqual(400 * 1.2 + 5);
    const budget = (await m.debug("resilience")).retryBudget;
    expect(budget.refused - refusedBefore).toBeGreaterThanOrEqual(300);
  });

  it("does not retry POST unless the route opts in, and retries a buffered POST when it does", async () => {
    const route = (retryNonIdempotent: boolean) => ({
      endpoints: endpointsOf(ids),
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 2, retryNonIdempotent } }],
      loadBalancer: { algorithm: "round-robin" },
      outlierDetection: { consecutiveGatewayErrors: 0, consecutive5xx: 0 },
    });
    await m.apply(route(false));
    await m.configure("api-a", { failPercent: 100 });
    await m.resetStats();
    const plain = await m.load({ requests: 60, method: "POST", body: "hello", concurrency: 1 });
    expect(plain.statuses["503"]).toBe(20);
    await m.apply(route(true));
    await m.resetStats();
    const optedIn = await m.load({ requests: 60, method: "POST", body: "hello", concurrency: 1 });
    expect(optedIn.statuses["200"]).toBe(60);
    // The replayed body arrived intact at the instance that answered.
    expect((await m.stats("api-b")).bodies + (await m.stats("api-c")).bodies).toBeGreaterThanOrEqual(60);
  });

  it("does not retry a body larger than the buffer limit", async () => {
    await m.apply({
      endpoints: endpointsOf(ids),
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 2, retryNonIdempotent: true, maxBufferBytes: 16 } }],
      loadBalancer: { algorithm: "round-robin" },
      outlierDetection: { consecutiveGatewayErrors: 0, consecutive5xx: 0 },
    });
    await m.configure("api-a", { failPercent: 100 });
    const small = await m.load({ requests: 30, method: "PUT", body: "tiny", concurrency: 1 });
    expect(small.statuses["200"]).toBe(30);
    const big = await m.load({ requests: 30, method: "PUT", body: "x".repeat(1000), concurrency: 1 });
    expect(big.statuses["503"]).toBe(10);
    const res = await m.call("/", { method: "PUT", body: "y".repeat(1000), headers: m.debugHeaders });
    await res.arrayBuffer();
    expect(res.headers.get("x-edgemesh-attempts")).toBe("1");
  });
});

describe("timeouts", () => {
  it("retry a stalled try on another endpoint within the route's deadline", async () => {
    await m.apply({
      endpoints: endpointsOf(ids),
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], timeoutMs: 2000, retries: { attempts: 2, perTryTimeoutMs: 100 } }],
      loadBalancer: { algorithm: "round-robin" },
      outlierDetection: { consecutiveGatewayErrors: 0, consecutive5xx: 0 },
    });
    await m.configure("api-a", { mode: "stall" });
    const r = await m.load({ requests: 30, concurrency: 3 });
    // Without the per-try timeout a third of these would wait out the 2 s deadline and get 504.
    expect(r.statuses["200"]).toBe(30);
    expect(Math.max(...r.latenciesMs)).toBeLessThan(1900);
  });

  it("answer 504 when the route's deadline passes, retries or not", async () => {
    await m.apply({
      endpoints: endpointsOf(ids),
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], timeoutMs: 300, retries: { attempts: 5, perTryTimeoutMs: 200 } }],
    });
    for (const id of ids) await m.configure(id, { mode: "stall" });
    const started = Date.now();
    const res = await m.call("/");
    const body = (await res.json()) as { error: string };
    expect(res.status).toBe(504);
    expect(body.error).toBe("route-timeout");
    // "route-timeout" (not per-try-timeout) says the 300 ms deadline ended it; six tries of 200 ms
    // would have taken 1.2 s, which leaves 900 ms of margin for a busy machine.
    expect(Date.now() - started).toBeLessThan(1200);
  });

  it("respect Retry-After within the route's limit", async () => {
    await m.apply({
      endpoints: endpointsOf(["api-a"]),
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 1, backoff: { maxRetryAfterMs: 1000 } } }],
      outlierDetection: { consecutiveGatewayErrors: 0, consecutive5xx: 0 },
    });
    await m.configure("api-a", { failPercent: 100, retryAfter: "1" });
    const started = Date.now();
    const res = await m.call("/", { headers: m.debugHeaders });
    await res.arrayBuffer();
    expect(res.headers.get("x-edgemesh-attempts")).toBe("2");
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    await m.configure("api-a", { failPercent: 100, retryAfter: "5" });
    const tooLong = await m.call("/", { headers: m.debugHeaders });
    await tooLong.arrayBuffer();
    expect(tooLong.headers.get("x-edgemesh-attempts")).toBe("1");
    expect(tooLong.headers.get("x-edgemesh-retry-stopped-by")).toBe("retry-after-too-long");
  });
});
