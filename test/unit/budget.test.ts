import { describe, expect, it } from "vitest";
import { budgetStatus, newRetryBudget, recordRequest, withdrawRetry } from "../../workers/sidecar/budget.ts";

const cfg = { percent: 20, minRetriesPerSecond: 0, windowMs: 10_000 };

describe("retry budget", () => {
  it("allows retries up to the percentage of requests in the window", () => {
    const b = newRetryBudget();
    for (let i = 0; i < 100; i++) recordRequest(b, cfg, 1000 + i);
    let granted = 0;
    for (let i = 0; i < 100; i++) if (withdrawRetry(b, cfg, 2000)) granted++;
    expect(granted).toBe(20);
    expect(budgetStatus(b, cfg, 2000)).toEqual({ requests: 100, retries: 20, refused: 80 });
  });

  it("has a floor per second for quiet services", () => {
    const b = newRetryBudget();
    const floor = { ...cfg, minRetriesPerSecond: 1 };
    let granted = 0;
    for (let i = 0; i < 50; i++) if (withdrawRetry(b, floor, 500)) granted++;
    expect(granted).toBe(10); // 1/s over a 10 s window
  });

  it("forgets requests and retries that left the window", () => {
    const b = newRetryBudget();
    for (let i = 0; i < 100; i++) recordRequest(b, cfg, 0);
    for (let i = 0; i < 20; i++) expect(withdrawRetry(b, cfg, 0)).toBe(true);
    expect(withdrawRetry(b, cfg, 5_000)).toBe(false);
    expect(withdrawRetry(b, cfg, 20_000)).toBe(false); // requests are gone too
    for (let i = 0; i < 10; i++) recordRequest(b, cfg, 20_000);
    expect(withdrawRetry(b, cfg, 20_000)).toBe(true);
    expect(budgetStatus(b, cfg, 20_000).requests).toBe(10);
  });

  it("caps amplification even when every request wants retries", () => {
    const b = newRetryBudget();
    const floor = { ...cfg, minRetriesPerSecond: 3 };
    let sent = 0;
    for (let t = 0; t < 60_000; t += 10) {
      recordRequest(b, floor, t);
      sent++;
      for (let r = 0; r < 3 && withdrawRetry(b, floor, t); r++) sent++;
    }
    // 6000 requests; retries at most 20% + 3/s.
    expect(sent / 6000).toBeLessThanOrEqual(1.2 + (3 * 60) / 6000 + 0.01);
    expect(sent / 6000).toBeGreaterThan(1.15);
  });
});

describe("retry budget with records that arrive late", () => {
  it("never moves its window backwards, so a late record cannot wipe it and grant the floor again", () => {
    const b = newRetryBudget();
    const floor = { percent: 20, minRetriesPerSecond: 1, windowMs: 10_000 };
    for (let i = 0; i < 10; i++) recordRequest(b, floor, 9_000);
    // 20% of 10 plus 1/s over 10 s: 12 retries, then none.
    let granted = 0;
    while (withdrawRetry(b, floor, 9_000)) granted++;
    expect(granted).toBe(12);
    // A request recorded with the time it arrived, before it waited in a queue: 8 s ago.
    recordRequest(b, floor, 1_000);
    expect(withdrawRetry(b, floor, 9_000)).toBe(false);
    expect(withdrawRetry(b, floor, 9_500)).toBe(false);
    expect(budgetStatus(b, floor, 9_500)).toMatchObject({ requests: 11, retries: 12 });
  });

  it("starts a new window when the window length changes", () => {
    const b = newRetryBudget();
    const long = { percent: 20, minRetriesPerSecond: 0, windowMs: 10_000 };
    for (let i = 0; i < 100; i++) recordRequest(b, long, 50_000);
    const short = { ...long, windowMs: 1_000 };
    recordRequest(b, short, 50_100);
    expect(budgetStatus(b, short, 50_100).requests).toBe(1);
    // Back to the long window: it keeps counting from now on, it does not freeze on an old index.
    recordRequest(b, long, 60_000);
    recordRequest(b, long, 75_000);
    expect(budgetStatus(b, long, 75_000).requests).toBe(1);
  });
});
