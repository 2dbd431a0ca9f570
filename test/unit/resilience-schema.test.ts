import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { compiledService } from "./resilience-fixtures.ts";

function errorsOf(service: Record<string, unknown>): string[] {
  const r = validatePolicy({ mesh: "m", services: { api: { endpoints: [{ id: "a", binding: "A" }], subsets: { v1: {} }, ...service } } });
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

describe("resilience defaults", () => {
  it("fills in retries, the budget, p2c-ewma, breaker and outlier detection", () => {
    const svc = compiledService();
    expect(svc.loadBalancer.algorithm).toBe("p2c-ewma");
    expect(svc.retryBudget).toEqual({ percent: 20, minRetriesPerSecond: 3, windowMs: 10_000 });
    expect(svc.circuitBreaker).toEqual({ maxConcurrent: 1024, maxPending: 1024 });
    expect(svc.outlierDetection.consecutive5xx).toBe(5);
    const retry = svc.routes[0]!.retry;
    expect(retry.attempts).toBe(2);
    expect(retry.onGatewayError && retry.onConnectFailure && retry.onReset).toBe(true);
    expect(retry.on5xx).toBe(false);
    expect(retry.maxBufferBytes).toBe(65_536);
    expect(retry.retryNonIdempotent).toBe(false);
  });

  it("applies defaults inside partly given objects", () => {
    const svc = compiledService({
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 4, backoff: { baseMs: 10 } } }],
      outlierDetection: { consecutive5xx: 2 },
    });
    expect(svc.routes[0]!.retry).toMatchObject({ attempts: 4, backoffBaseMs: 10, backoffMaxMs: 250, perTryTimeoutMs: 0 });
    expect(svc.outlierDetection).toMatchObject({ consecutive5xx: 2, consecutiveGatewayErrors: 3, baseEjectionMs: 30_000 });
  });
});

describe("resilience validation", () => {
  it("rejects out-of-range and inconsistent knobs with their paths", () => {
    const errors = errorsOf({
      routes: [{ name: "r", to: [{ subset: "v1" }], retries: { attempts: 11, backoff: { baseMs: 100, maxMs: 10 } }, fault: {}, mirror: { subset: "nope" } }],
      loadBalancer: { algorithm: "consistent-hash", maglevTableSize: 100 },
      outlierDetection: { baseEjectionMs: 1000, maxEjectionMs: 100 },
    });
    const text = errors.join("\n");
    expect(text).toContain("$.services.api.routes[0].retries.attempts");
    expect(text).toContain("maxMs (10) must be at least baseMs (100)");
    expect(text).toContain('give "delay", "abort" or both');
    expect(text).toContain('unknown subset "nope"');
    expect(text).toContain("needs hashOn");
    expect(text).toContain("prime");
    expect(text).toContain("maxEjectionMs (100) must be at least baseEjectionMs (1000)");
  });

  it("rejects a mirror to an unknown service", () => {
    const r = validatePolicy({ mesh: "m", services: { api: { endpoints: [{ id: "a", binding: "A" }], routes: [{ name: "r", to: [{ subset: "v" }], mirror: { service: "ghost" } }], subsets: { v: {} } } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.message).join()).toContain('unknown service "ghost"');
  });
});

describe("resilience compilation", () => {
  it("resolves mirrors to endpoints of a subset or another service", () => {
    const r = validatePolicy({
      mesh: "m",
      services: {
        api: {
          endpoints: [{ id: "a1", binding: "A1", labels: { v: "1" } }, { id: "a2", binding: "A2", labels: { v: "2" } }],
          subsets: { v1: { v: "1" }, v2: { v: "2" } },
          routes: [
            { name: "sub", match: [{ path: { prefix: "/s" } }], to: [{ subset: "v1" }], mirror: { subset: "v2", percent: 10 } },
            { name: "svc", to: [{ subset: "v1" }], mirror: { service: "shadow" } },
          ],
        },
        shadow: { endpoints: [{ id: "s1", url: "http://127.0.0.1:9" }] },
      },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const api = compilePolicy(r.document).services.api!;
    expect(api.routes[0]!.mirror).toMatchObject({ percent: 10, target: "subset:v2", endpoints: [{ id: "a2" }] });
    expect(api.routes[1]!.mirror).toMatchObject({ percent: 100, target: "service:shadow", endpoints: [{ id: "s1" }] });
  });

  it("lower-cases header names of faults and hashing", () => {
    const svc = compiledService({
      subsets: { all: {} },
      routes: [{ name: "r", to: [{ subset: "all" }], fault: { abort: { percent: 5 }, onlyWithHeader: { name: "X-Chaos" } } }],
      loadBalancer: { algorithm: "consistent-hash", hashOn: { header: "X-User" } },
    });
    expect(svc.routes[0]!.fault).toMatchObject({ abortPercent: 5, abortStatus: 503, headerName: "x-chaos", bypassRetries: false });
    expect(svc.loadBalancer.hashOn).toEqual({ kind: "header", name: "x-user" });
  });
});
