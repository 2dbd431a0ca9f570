import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { sharedLimitBindings } from "../../policies/ratelimit.ts";
import { validatePolicy } from "../../policies/schema.ts";
import {
  newRateLimiterState,
  prepareRateLimits,
  rateLimitedResponse,
  rateLimiterStatus,
  takeLocal,
  takeShared,
  hasRateLimits,
  hasSharedLimits,
  type PreparedRateLimits,
  type RateLimitRequest,
} from "../../workers/sidecar/ratelimit.ts";

const T0 = 1_000_000;

function service(svc: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown {
  return { mesh: "m", services: { api: { endpoints: [{ id: "a1", binding: "A1" }], subsets: { all: {} }, ...svc }, web: {}, ...extra } };
}

function prepared(document: unknown): PreparedRateLimits {
  const result = validatePolicy(document);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  const snapshot = compilePolicy(result.document).services.api!;
  return prepareRateLimits(snapshot.rateLimits, snapshot.routes.map((r) => r.name));
}

function errorsOf(document: unknown) {
  const result = validatePolicy(document);
  return result.ok ? [] : result.errors;
}

const request = (over: Partial<RateLimitRequest> = {}): RateLimitRequest => ({ route: "default", caller: "web", clientIp: "192.0.2.1", ...over });

describe("rate limit schema", () => {
  it("checks routes, callers, duplicate keys and the binding's periods", () => {
    const routes = [{ name: "reads", to: [{ subset: "all" }] }];
    expect(errorsOf(service({ routes, rateLimits: [{ routes: ["reads", "writes"], requests: 1 }] }))).toEqual([
      { path: "$.services.api.rateLimits[0].routes[1]", message: 'unknown route "writes"; routes of this service: reads' },
    ]);
    expect(errorsOf(service({ rateLimits: [{ routes: ["default"], requests: 1 }] }))).toEqual([]);
    expect(errorsOf(service({ rateLimits: [{ callers: ["wbe"], requests: 1 }] }))[0]).toMatchObject({ path: "$.services.api.rateLimits[0].callers[0]", message: /unknown caller "wbe"/ });
    expect(errorsOf(service({ rateLimits: [{ per: ["caller", "caller"], requests: 1 }] }))[0]).toMatchObject({ path: "$.services.api.rateLimits[0].per[1]" });
    expect(errorsOf(service({ rateLimits: [{ requests: 5, periodMs: 5000, shared: { binding: "RL" } }] }))[0]).toMatchObject({
      path: "$.services.api.rateLimits[0].periodMs", message: /must be 10000 or 60000 ms/,
    });
    expect(errorsOf(service({ rateLimits: [{ name: "a", requests: 1 }, { name: "a", requests: 2 }] }))[0]).toMatchObject({ path: "$.services.api.rateLimits[1].name" });
    expect(errorsOf(service({ rateLimits: [{ requests: 0 }] })).length).toBe(1);
  });

  it("compiles names, keys, burst default and the binding's configuration", () => {
    const result = validatePolicy(service({ rateLimits: [
      { requests: 10 },
      { name: "per-caller", per: ["caller", "client-ip"], callers: ["web", "*"], requests: 100, periodMs: 60_000, burst: 20, shared: { binding: "RL_API" } },
    ] }));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(compilePolicy(result.document).services.api!.rateLimits).toEqual([
      { id: "api/rateLimits[0]", perCaller: false, perRoute: false, perClientIp: false, requests: 10, periodMs: 1000, burst: 10 },
      { id: "api/per-caller", perCaller: true, perRoute: false, perClientIp: true, requests: 100, periodMs: 60_000, burst: 20, shared: { binding: "RL_API", limit: 100, periodSeconds: 60 } },
    ]);
  });

  it("one binding, one configuration: the bindings a sidecar needs for its shared limits", () => {
    const shared = (binding: string, requests: number, periodMs: number) => ({ requests, periodMs, shared: { binding } });
    expect(errorsOf(service({ rateLimits: [shared("RL_A", 10, 10_000), shared("RL_A", 20, 10_000)] }))).toEqual([
      { path: "$.services.api.rateLimits[1].shared.binding", message: "binding RL_A is already used by rateLimits[0] with 10 requests per 10000 ms; a binding has one limit and period, so give this limit its own binding" },
    ]);
    const result = validatePolicy(service({ rateLimits: [shared("RL_A", 10, 10_000), { requests: 5 }, shared("RL_A", 10, 10_000), shared("RL_B", 600, 60_000)] }));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(sharedLimitBindings(compilePolicy(result.document).services.api!.rateLimits)).toEqual({ RL_A: { limit: 10, period: 10 }, RL_B: { limit: 600, period: 60 } });
  });
});

describe("token buckets per isolate", () => {
  it("admits a burst, then refuses with the time until the next token, and refills at the rate", () => {
    const limits = prepared(service({ rateLimits: [{ name: "slow", requests: 2, periodMs: 1000, burst: 3 }] }));
    const state = newRateLimiterState();
    for (let i = 0; i < 3; i++) expect(takeLocal(state, limits, request(), T0)).toBeUndefined();
    expect(takeLocal(state, limits, request(), T0)).toEqual({ limitId: "api/slow", retryAfterMs: 500, source: "local" });
    expect(takeLocal(state, limits, request(), T0 + 499)).toMatchObject({ retryAfterMs: 1 });
    expect(takeLocal(state, limits, request(), T0 + 500)).toBeUndefined();
    expect(takeLocal(state, limits, request(), T0 + 500)).toBeDefined();
    // A long quiet time refills only up to the burst.
    for (let i = 0; i < 3; i++) expect(takeLocal(state, limits, request(), T0 + 60_000)).toBeUndefined();
    expect(takeLocal(state, limits, request(), T0 + 60_000)).toBeDefined();
    expect(rateLimiterStatus(state)).toMatchObject({ refusedLocal: 4, trackedKeys: 1 });
  });

  it("keeps one bucket per caller, route or client IP only when asked", () => {
    const routes = [{ name: "a", to: [{ subset: "all" }] }, { name: "b", to: [{ subset: "all" }] }];
    const shared = prepared(service({ routes, rateLimits: [{ requests: 1, periodMs: 60_000 }] }));
    const state = newRateLimiterState();
    expect(takeLocal(state, shared, request({ route: "a", caller: "web" }), T0)).toBeUndefined();
    expect(takeLocal(state, shared, request({ route: "b", caller: "jobs", clientIp: "x" }), T0)).toBeDefined();

    const split = prepared(service({ routes, rateLimits: [{ per: ["caller", "route", "client-ip"], requests: 1, periodMs: 60_000 }] }));
    const s2 = newRateLimiterState();
    for (const r of [request(), request({ caller: "jobs" }), request({ route: "b" }), request({ clientIp: "other" })]) {
      expect(takeLocal(s2, split, { ...r, route: r.route === "default" ? "a" : r.route }, T0)).toBeUndefined();
    }
    expect(takeLocal(s2, split, request({ route: "a" }), T0)).toBeDefined();
  });

  it("applies a limit only to the routes and callers it names", () => {
    const routes = [{ name: "reads", to: [{ subset: "all" }] }, { name: "writes", to: [{ subset: "all" }] }];
    const limits = prepared(service({ routes, rateLimits: [{ name: "outsiders-writing", routes: ["writes"], callers: ["external"], requests: 1, periodMs: 60_000 }] }));
    const state = newRateLimiterState();
    for (let i = 0; i < 5; i++) {
      expect(takeLocal(state, limits, request({ route: "reads", caller: "external" }), T0)).toBeUndefined();
      expect(takeLocal(state, limits, request({ route: "writes", caller: "web" }), T0)).toBeUndefined();
    }
    expect(takeLocal(state, limits, request({ route: "writes", caller: "external" }), T0)).toBeUndefined();
    expect(takeLocal(state, limits, request({ route: "writes", caller: "external" }), T0)).toMatchObject({ limitId: "api/outsiders-writing" });
  });

  it("takes from every applicable bucket or from none: a refusal by one limit costs the others nothing", () => {
    const limits = prepared(service({ rateLimits: [
      { name: "roomy", requests: 2, periodMs: 60_000 },
      { name: "tight", per: ["caller"], requests: 1, periodMs: 60_000 },
    ] }));
    const state = newRateLimiterState();
    expect(takeLocal(state, limits, request({ caller: "web" }), T0)).toBeUndefined(); // roomy 1 left, tight(web) 0
    for (let i = 0; i < 3; i++) expect(takeLocal(state, limits, request({ caller: "web" }), T0)).toMatchObject({ limitId: "api/tight" });
    expect(takeLocal(state, limits, request({ caller: "jobs" }), T0)).toBeUndefined(); // roomy still had its token
    expect(takeLocal(state, limits, request({ caller: "ops" }), T0)).toMatchObject({ limitId: "api/roomy", retryAfterMs: 30_000 });
  });

  it("keeps memory bounded: past maxKeys the least recently used bucket goes", () => {
    const limits = prepared(service({ rateLimits: [{ per: ["client-ip"], requests: 1, periodMs: 60_000 }] }));
    const state = newRateLimiterState(3);
    for (const ip of ["a", "b", "c"]) takeLocal(state, limits, request({ clientIp: ip }), T0);
    expect(takeLocal(state, limits, request({ clientIp: "a" }), T0)).toBeDefined(); // "a" is now the most recently used
    for (let i = 0; i < 1000; i++) takeLocal(state, limits, request({ clientIp: `flood-${i % 2}` }), T0);
    expect(state.buckets.size).toBe(3);
    expect(state.evicted).toBe(2);
    expect(takeLocal(state, limits, request({ clientIp: "a" }), T0)).toBeDefined(); // "a" kept its empty bucket
    expect(takeLocal(state, limits, request({ clientIp: "b" }), T0)).toBeUndefined(); // "b" was evicted: a fresh bucket
  });

  it("a route with no limits costs nothing and needs no shared check", () => {
    const routes = [{ name: "reads", to: [{ subset: "all" }] }, { name: "writes", to: [{ subset: "all" }] }];
    const limits = prepared(service({ routes, rateLimits: [{ routes: ["writes"], requests: 1, periodMs: 10_000, shared: { binding: "RL" } }] }));
    const state = newRateLimiterState();
    expect(takeLocal(state, limits, request({ route: "reads" }), T0)).toBeUndefined();
    expect(state.buckets.size).toBe(0);
    expect(hasSharedLimits(limits, "reads")).toBe(false);
    expect(hasSharedLimits(limits, "writes")).toBe(true);
    expect(hasRateLimits(limits, "reads")).toBe(false);
    expect(hasRateLimits(limits, "writes")).toBe(true);
  });
});

describe("shared limits over the rate limiting binding", () => {
  const limits = () => prepared(service({ rateLimits: [{ name: "shared", per: ["caller"], requests: 100, periodMs: 10_000, shared: { binding: "RL" } }] }));

  it("asks the binding with a key naming service, limit and bucket, and refuses on success: false", async () => {
    const keys: string[] = [];
    let allow = true;
    const RL = { limit: async ({ key }: { key: string }) => (keys.push(key), { success: allow }) };
    const state = newRateLimiterState();
    expect(await takeShared(state, limits(), request(), { RL })).toBeUndefined();
    allow = false;
    expect(await takeShared(state, limits(), request({ caller: "jobs" }), { RL })).toEqual({ limitId: "api/shared", retryAfterMs: 10_000, source: "shared" });
    expect(keys).toEqual(["api/shared\nweb", "api/shared\njobs"]);
    expect(state.refusedShared).toBe(1);
  });

  it("fails open, counted, when the binding is missing or throws", async () => {
    const state = newRateLimiterState();
    expect(await takeShared(state, limits(), request(), {})).toBeUndefined();
    expect(await takeShared(state, limits(), request(), { RL: { limit: async () => { throw new Error("limiter down"); } } })).toBeUndefined();
    expect(state.sharedErrors).toBe(2);
  });
});

describe("the 429", () => {
  it("carries Retry-After in whole seconds (at least 1) and names the limit", async () => {
    const res = rateLimitedResponse({ limitId: "api/slow", retryAfterMs: 1500, source: "local" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(res.headers.get("x-edgemesh-rate-limited")).toBe("api/slow");
    expect(await res.json()).toMatchObject({ error: "rate-limited", limit: "api/slow", retryAfterSeconds: 2 });
    expect(rateLimitedResponse({ limitId: "x/y", retryAfterMs: 3, source: "local" }).headers.get("retry-after")).toBe("1");
  });
});
