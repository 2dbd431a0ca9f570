import { describe, expect, it } from "vitest";
import { admit, newBreaker, release } from "../../workers/sidecar/breaker.ts";

const cfg = { maxConcurrent: 2, maxPending: 1 };

describe("circuit breaker", () => {
  it("admits up to maxConcurrent, queues up to maxPending, rejects the rest", () => {
    const b = newBreaker();
    expect(admit(b, cfg).kind).toBe("admitted");
    expect(admit(b, cfg).kind).toBe("admitted");
    expect(admit(b, cfg).kind).toBe("queued");
    expect(admit(b, cfg)).toEqual({ kind: "rejected", reason: "max-pending" });
    expect(b.rejectedPending).toBe(1);
  });

  it("hands a freed slot to the oldest waiter", async () => {
    const b = newBreaker();
    admit(b, cfg);
    admit(b, cfg);
    const waiting = admit(b, cfg);
    if (waiting.kind !== "queued") throw new Error("expected a queue");
    let granted = false;
    waiting.granted.then(() => (granted = true));
    release(b);
    await Promise.resolve();
    expect(granted).toBe(true);
    expect(b.active).toBe(2);
    expect(b.pending).toBe(0);
    expect(waiting.cancel()).toBe(false); // already granted: the caller owns the slot
    release(b);
    release(b);
    expect(b.active).toBe(0);
  });

  it("skips a waiter that gave up", () => {
    const b = newBreaker();
    admit(b, cfg);
    admit(b, cfg);
    const waiting = admit(b, cfg);
    if (waiting.kind !== "queued") throw new Error("expected a queue");
    expect(waiting.cancel()).toBe(true);
    expect(b.pending).toBe(0);
    release(b);
    expect(b.active).toBe(1);
  });
});
