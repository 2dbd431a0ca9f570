import { describe, expect, it } from "vitest";
import type { CompiledEndpoint } from "../../policies/snapshot.ts";
import { allLoads, chooseEndpoint, hashKeyOf, loadOf, recordLatency, recordLatencyLowerBound, reclaimedTries, reclaimExpiredTries, retainLoads, tryFinished, tryStarted, type PickRequest } from "../../workers/sidecar/balance.ts";
import { compiledService, seeded } from "./resilience-fixtures.ts";

let n = 0;
/** Fresh endpoint ids per test: load state is per isolate, keyed by id. */
function endpoints(count: number, extra: (i: number) => Partial<CompiledEndpoint> = () => ({})): CompiledEndpoint[] {
  n++;
  return Array.from({ length: count }, (_, i) => ({ id: `t${n}-e${i}`, binding: "X", labels: {}, weight: 1, ...extra(i) }));
}

const lbOf = (lb: Record<string, unknown> = {}) => compiledService({ loadBalancer: lb }).loadBalancer;

function req(over: Partial<PickRequest> = {}): PickRequest {
  return { nowMs: 1_000_000, random: seeded(7), exclude: [], available: undefined, hashKey: undefined, colo: "", ...over };
}

function counts(pick: () => number, times: number): Record<number, number> {
  const out: Record<number, number> = {};
  for (let i = 0; i < times; i++) {
    const k = pick();
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe("peak-EWMA power of two choices (default)", () => {
  it("steers away from an endpoint whose latency is high", () => {
    const eps = endpoints(3);
    const lb = lbOf();
    const members = [0, 1, 2];
    recordLatency(loadOf(eps[0]!.id), 5, false, lb, 1_000_000);
    recordLatency(loadOf(eps[1]!.id), 5, false, lb, 1_000_000);
    recordLatency(loadOf(eps[2]!.id), 100, false, lb, 1_000_000);
    const r = req();
    const c = counts(() => chooseEndpoint(lb, eps, members, r), 3000);
    expect(c[2] ?? 0).toBe(0); // the slow one always loses its pairing
    expect(c[0]).toBeGreaterThan(1200);
    expect(c[1]).toBeGreaterThan(1200);
  });

  it("counts a failure as at least the error penalty", () => {
    const eps = endpoints(2);
    const lb = lbOf();
    recordLatency(loadOf(eps[0]!.id), 1, true, lb, 1_000_000);
    recordLatency(loadOf(eps[1]!.id), 20, false, lb, 1_000_000);
    expect(loadOf(eps[0]!.id).ewmaMs).toBe(250);
    expect(chooseEndpoint(lb, eps, [0, 1], req())).toBe(1);
  });

  it("lets a peak decay so a once-slow endpoint is tried again", () => {
    const eps = endpoints(2);
    const lb = lbOf({ ewmaDecayMs: 1000 });
    const load = loadOf(eps[0]!.id);
    recordLatency(load, 100, false, lb, 1_000_000);
    recordLatency(load, 10, false, lb, 1_000_100); // lower sample blends in slowly
    expect(load.ewmaMs).toBeGreaterThan(90);
    recordLatency(loadOf(eps[1]!.id), 20, false, lb, 1_000_000);
    expect(chooseEndpoint(lb, eps, [0, 1], req({ nowMs: 1_000_200 }))).toBe(1);
    expect(chooseEndpoint(lb, eps, [0, 1], req({ nowMs: 1_010_000 }))).toBe(1); // both decayed, equal-ish
  });

  it("weighs outstanding requests", () => {
    const eps = endpoints(2);
    const lb = lbOf();
    for (const e of eps) recordLatency(loadOf(e.id), 10, false, lb, 1_000_000);
    for (let i = 0; i < 5; i++) tryStarted(loadOf(eps[0]!.id), 1_000_000, 1_060_000);
    expect(chooseEndpoint(lb, eps, [0, 1], req())).toBe(1);
  });
});

describe("other algorithms", () => {
  it("least-request picks the endpoint with fewer requests in flight", () => {
    const eps = endpoints(2);
    const lb = lbOf({ algorithm: "least-request" });
    tryStarted(loadOf(eps[1]!.id), 1_000_000, 1_060_000);
    expect(chooseEndpoint(lb, eps, [0, 1], req())).toBe(0);
  });

  it("round robin rotates", () => {
    const eps = endpoints(3);
    const lb = lbOf({ algorithm: "round-robin" });
    const members = [0, 1, 2];
    expect([0, 1, 2, 3].map(() => chooseEndpoint(lb, eps, members, req()))).toEqual([0, 1, 2, 0]);
  });

  it("weighted random follows the weights", () => {
    const eps = endpoints(2, (i) => ({ weight: i === 0 ? 1 : 3 }));
    const lb = lbOf({ algorithm: "weighted-random" });
    const r = req();
    const c = counts(() => chooseEndpoint(lb, eps, [0, 1], r), 8000);
    expect(c[1]! / 8000).toBeGreaterThan(0.72);
    expect(c[1]! / 8000).toBeLessThan(0.78);
  });
});

describe("availability", () => {
  it("skips unavailable endpoints and avoids ones already tried", () => {
    const eps = endpoints(4);
    const lb = lbOf();
    const r = req({ available: (i) => i !== 0 });
    const c = counts(() => chooseEndpoint(lb, eps, [0, 1, 2, 3], r), 500);
    expect(c[0]).toBeUndefined();
    const tried = req({ exclude: [1, 2] });
    expect(counts(() => chooseEndpoint(lb, eps, [0, 1, 2, 3], tried), 200)).toEqual({ 0: expect.any(Number), 3: expect.any(Number) });
    expect(chooseEndpoint(lb, eps, [0], req({ exclude: [0] }))).toBe(0); // nothing else left
  });

  it("panics and uses every endpoint when too few are available", () => {
    const eps = endpoints(4);
    const lb = lbOf({ panicThresholdPercent: 50 });
    const oneLeft = req({ available: (i) => i === 3 });
    const c = counts(() => chooseEndpoint(lb, eps, [0, 1, 2, 3], oneLeft), 1000);
    expect(Object.keys(c).length).toBe(4);
    const twoLeft = req({ available: (i) => i >= 2 });
    expect(Object.keys(counts(() => chooseEndpoint(lb, eps, [0, 1, 2, 3], twoLeft), 500)).sort()).toEqual(["2", "3"]);
  });

  it("prefers endpoints in the request's colo while one of them is available", () => {
    const eps = endpoints(4, (i) => ({ labels: { zone: i < 2 ? "LHR" : "CDG" } }));
    const lb = lbOf();
    const members = [0, 1, 2, 3];
    const inCdg = req({ colo: "CDG" });
    expect(Object.keys(counts(() => chooseEndpoint(lb, eps, members, inCdg), 300)).sort()).toEqual(["2", "3"]);
    const cdgDown = req({ colo: "CDG", available: (i) => i < 2 });
    expect(Object.keys(counts(() => chooseEndpoint(lb, eps, members, cdgDown), 300)).sort()).toEqual(["0", "1"]);
    const anywhere = lbOf({ localityPreference: false });
    expect(Object.keys(counts(() => chooseEndpoint(anywhere, eps, members, inCdg), 300)).length).toBe(4);
  });
});

describe("consistent hashing", () => {
  it("sends a key to the same endpoint, and only moves the keys of an unavailable one", () => {
    const eps = endpoints(5);
    const lb = lbOf({ algorithm: "consistent-hash", hashOn: { header: "x-user" }, maglevTableSize: 4099 });
    const members = [0, 1, 2, 3, 4];
    const before = new Map<string, number>();
    for (let k = 0; k < 500; k++) before.set(`user-${k}`, chooseEndpoint(lb, eps, members, req({ hashKey: `user-${k}` })));
    for (const [key, idx] of before) expect(chooseEndpoint(lb, eps, members, req({ hashKey: key }))).toBe(idx);
    const spread = counts(() => 0, 0);
    for (const idx of before.values()) spread[idx] = (spread[idx] ?? 0) + 1;
    for (const i of members) expect(spread[i]).toBeGreaterThan(60);
    let moved = 0;
    for (const [key, idx] of before) {
      const now = chooseEndpoint(lb, eps, members, req({ hashKey: key, available: (i) => i !== 2 }));
      expect(now).not.toBe(2);
      if (now !== idx) moved++;
    }
    expect(moved).toBe(spread[2]);
  });

  it("reads the key from a header, a cookie or a query parameter", () => {
    const h = new Headers({ "x-user": "u1", cookie: "a=1; session=abc; b=2" });
    const q = () => new URLSearchParams("sid=q1");
    expect(hashKeyOf(lbOf({ algorithm: "consistent-hash", hashOn: { header: "X-User" } }), h, q)).toBe("u1");
    expect(hashKeyOf(lbOf({ algorithm: "consistent-hash", hashOn: { cookie: "session" } }), h, q)).toBe("abc");
    expect(hashKeyOf(lbOf({ algorithm: "consistent-hash", hashOn: { query: "sid" } }), h, q)).toBe("q1");
    expect(hashKeyOf(lbOf(), h, q)).toBeUndefined();
  });
});

describe("consistent hashing when every available endpoint was tried", () => {
  it("retries on an available endpoint, never an ejected one", () => {
    const eps = endpoints(3);
    const lb = lbOf({ algorithm: "consistent-hash", hashOn: { header: "x-user" }, maglevTableSize: 4099 });
    const members = [0, 1, 2];
    // 2 is ejected (2 of 3 available is above the panic threshold); 0 and 1 were both tried.
    const picked = new Set<number>();
    for (let k = 0; k < 300; k++) picked.add(chooseEndpoint(lb, eps, members, req({ hashKey: `user-${k}`, available: (i) => i !== 2, exclude: [0, 1] })));
    expect(picked.has(2)).toBe(false);
    expect([...picked].sort()).toEqual([0, 1]);
  });
});

describe("per-endpoint load", () => {
  it("is forgotten for endpoints that left the service, unless a try is in flight", () => {
    const eps = endpoints(3);
    const lb = lbOf();
    for (const e of eps) recordLatency(loadOf(e.id), 5, false, lb, 1_000_000);
    const inFlight = tryStarted(loadOf(eps[1]!.id), 1_000_000, 1_060_000);
    retainLoads(new Set([eps[0]!.id]));
    expect(allLoads().has(eps[0]!.id)).toBe(true);
    expect(allLoads().has(eps[1]!.id)).toBe(true); // still outstanding
    expect(allLoads().has(eps[2]!.id)).toBe(false);
    tryFinished(inFlight);
    retainLoads(new Set([eps[0]!.id]));
    expect(allLoads().has(eps[1]!.id)).toBe(false);
  });
});

describe("tries in flight (outstanding) cannot leak", () => {
  it("a try whose request vanished is reclaimed after its deadline, and finishing it later changes nothing", () => {
    const eps = endpoints(1);
    const load = loadOf(eps[0]!.id);
    // Far in the future of every other test's clock; what other tests left is reclaimed first.
    const t0 = 9_000_000_000;
    reclaimExpiredTries(t0);
    const before = reclaimedTries();
    const vanished = tryStarted(load, t0, t0 + 1000);
    const live = tryStarted(load, t0, t0 + 60_000);
    expect(load.outstanding).toBe(2);
    reclaimExpiredTries(t0 + 999);
    expect(load.outstanding).toBe(2);
    reclaimExpiredTries(t0 + 1000);
    expect(load.outstanding).toBe(1);
    expect(reclaimedTries()).toBe(before + 1);
    tryFinished(vanished); // its finally ran after all, late: already given back
    expect(load.outstanding).toBe(1);
    tryFinished(live);
    tryFinished(live);
    expect(load.outstanding).toBe(0);
  });

  it("the next try started after a deadline reclaims what expired, without a separate sweep", () => {
    const eps = endpoints(2);
    const t0 = 9_100_000_000;
    tryStarted(loadOf(eps[0]!.id), t0, t0 + 10);
    tryFinished(tryStarted(loadOf(eps[1]!.id), t0 + 20, t0 + 1000));
    expect(loadOf(eps[0]!.id).outstanding).toBe(0);
  });
});

describe("a try given up on (hedged away)", () => {
  it("raises a lower estimate to the time it took, and leaves a higher one alone", () => {
    const eps = endpoints(2);
    const lb = lbOf();
    const slow = loadOf(eps[0]!.id);
    recordLatency(slow, 2, false, lb, 1_000_000);
    recordLatencyLowerBound(slow, 40, lb, 1_000_010);
    expect(slow.ewmaMs).toBe(40);
    recordLatencyLowerBound(slow, 5, lb, 1_000_020);
    expect(slow.ewmaMs).toBe(40);
    // Enough to make P2C prefer the other endpoint.
    recordLatency(loadOf(eps[1]!.id), 3, false, lb, 1_000_000);
    expect(chooseEndpoint(lb, eps, [0, 1], req({ nowMs: 1_000_030 }))).toBe(1);
  });
});

describe("the panic threshold with endpoints the control plane excluded (healthy: false)", () => {
  const healthyOf = (healthy: boolean[]) => endpoints(healthy.length, (i) => ({ healthy: healthy[i]!, labels: { zone: i < 2 ? "LCL" : "far" } }));
  const availableIn = (eps: { healthy?: boolean }[]) => (i: number) => eps[i]!.healthy !== false;

  it("skips excluded endpoints while enough of the subset is healthy", () => {
    const eps = healthyOf([true, false, true, true]);
    const lb = lbOf();
    const c = counts(() => chooseEndpoint(lb, eps, [0, 1, 2, 3], req({ available: availableIn(eps), random: Math.random })), 400);
    expect(c[1] ?? 0).toBe(0);
  });

  it("is judged over the whole subset, before locality narrows it", () => {
    // 1 of 4 healthy (25%, under the 50% threshold): panic, every member takes traffic. Judged
    // over the local pair alone (1 of 2, not under 50%) the last healthy one would take it all.
    const eps = healthyOf([true, false, false, false]);
    const lb = lbOf();
    const c = counts(() => chooseEndpoint(lb, eps, [0, 1, 2, 3], req({ available: availableIn(eps), colo: "LCL", random: Math.random })), 400);
    // Locality still applies within the panic: the two local endpoints share the traffic.
    expect(c[0]).toBeGreaterThan(100);
    expect(c[1]).toBeGreaterThan(100);
    expect((c[2] ?? 0) + (c[3] ?? 0)).toBe(0);
  });
});
