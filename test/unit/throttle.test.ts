import { describe, expect, it } from "vitest";
import { clientKeyOf, newThrottle, recordFailure, recordSuccess, retryAfterSeconds, throttleWaitMs } from "../../auth/throttle.ts";

const T0 = 1_000_000;

describe("brute-force throttle", () => {
  it("lets a few failures through, then doubles a lockout per failure up to the cap", () => {
    const t = newThrottle({ freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000 });
    for (let i = 0; i < 3; i++) {
      expect(throttleWaitMs(t, "ip", T0)).toBe(0);
      expect(recordFailure(t, "ip", T0)).toBe(0);
    }
    expect(recordFailure(t, "ip", T0)).toBe(1000);
    expect(throttleWaitMs(t, "ip", T0 + 400)).toBe(600);
    expect(throttleWaitMs(t, "ip", T0 + 1000)).toBe(0);
    const delays = [2000, 4000, 8000, 8000].map((_, i) => recordFailure(t, "ip", T0 + 100_000 * (i + 1)));
    expect(delays).toEqual([2000, 4000, 8000, 8000]);
    expect(t.refused).toBe(1);
  });

  it("locks out one client, not another", () => {
    const t = newThrottle({ freeFailures: 0 });
    recordFailure(t, "attacker", T0);
    expect(throttleWaitMs(t, "attacker", T0)).toBeGreaterThan(0);
    expect(throttleWaitMs(t, "operator", T0)).toBe(0);
  });

  it("forgets a client after a quiet period, and forgives it on a success", () => {
    const t = newThrottle({ freeFailures: 1, forgetAfterMs: 60_000 });
    recordFailure(t, "ip", T0);
    expect(recordFailure(t, "ip", T0 + 1)).toBeGreaterThan(0);
    expect(recordFailure(t, "ip", T0 + 61_000)).toBe(0); // afresh: its first failure again
    expect(recordFailure(t, "ip", T0 + 61_001)).toBeGreaterThan(0);
    recordSuccess(t, "ip");
    expect(throttleWaitMs(t, "ip", T0 + 61_002)).toBe(0);
    expect(recordFailure(t, "ip", T0 + 61_003)).toBe(0);
  });

  it("a lockout longer than the quiet period is not forgotten early", () => {
    const t = newThrottle({ freeFailures: 0, baseDelayMs: 120_000, maxDelayMs: 120_000, forgetAfterMs: 60_000 });
    recordFailure(t, "ip", T0);
    expect(throttleWaitMs(t, "ip", T0 + 90_000)).toBe(30_000);
  });

  it("tracks at most maxClients, dropping the stalest", () => {
    const t = newThrottle({ freeFailures: 0, maxClients: 100 });
    for (let i = 0; i < 10_000; i++) recordFailure(t, `ip-${i}`, T0 + i);
    expect(t.clients.size).toBe(100);
    expect(throttleWaitMs(t, "ip-0", T0 + 10_000)).toBe(0);
    expect(throttleWaitMs(t, "ip-9999", T0 + 10_000)).toBeGreaterThan(0);
  });

  it("says Retry-After in whole seconds and keys clients by cf-connecting-ip", () => {
    expect(retryAfterSeconds(1)).toBe("1");
    expect(retryAfterSeconds(1001)).toBe("2");
    expect(clientKeyOf(new Headers({ "cf-connecting-ip": "198.51.100.7" }))).toBe("198.51.100.7");
    expect(clientKeyOf(new Headers())).toBe("unknown");
  });
});
