import { describe, expect, it } from "vitest";
import { activeSlots, admit, newBreaker, reclaimBreaker, release, type Admission } from "../../workers/sidecar/breaker.ts";
import type { Lease } from "../../workers/sidecar/lease.ts";

const cfg = { maxConcurrent: 2, maxPending: 1 };
const T = 1_000_000;

function admitted(a: Admission): Lease {
  if (a.kind !== "admitted") throw new Error(`expected a slot, got ${a.kind}`);
  return a.slot;
}

function queued(a: Admission): Extract<Admission, { kind: "queued" }> {
  if (a.kind !== "queued") throw new Error(`expected a queue, got ${a.kind}`);
  return a;
}

describe("circuit breaker", () => {
  it("admits up to maxConcurrent, queues up to maxPending, rejects the rest", () => {
    const b = newBreaker();
    expect(admit(b, cfg, T, T + 1000).kind).toBe("admitted");
    expect(admit(b, cfg, T, T + 1000).kind).toBe("admitted");
    expect(admit(b, cfg, T, T + 1000).kind).toBe("queued");
    expect(admit(b, cfg, T, T + 1000)).toEqual({ kind: "rejected", reason: "max-pending" });
    expect(b.rejectedPending).toBe(1);
  });

  it("hands a freed slot to the oldest waiter", async () => {
    const b = newBreaker();
    const first = admitted(admit(b, cfg, T, T + 1000));
    const second = admitted(admit(b, cfg, T, T + 1000));
    const waiting = queued(admit(b, cfg, T, T + 1000));
    let granted: Lease | undefined;
    waiting.granted.then((slot) => (granted = slot));
    release(b, first, T + 1);
    await Promise.resolve();
    expect(granted?.held).toBe(true);
    expect(activeSlots(b)).toBe(2);
    expect(b.pending).toBe(0);
    expect(waiting.cancel()).toBe(false); // already granted: the caller owns the slot
    release(b, second, T + 2);
    release(b, granted!, T + 2);
    expect(activeSlots(b)).toBe(0);
  });

  it("skips a waiter that gave up", () => {
    const b = newBreaker();
    const first = admitted(admit(b, cfg, T, T + 1000));
    admit(b, cfg, T, T + 1000);
    const waiting = queued(admit(b, cfg, T, T + 1000));
    expect(waiting.cancel()).toBe(true);
    expect(b.pending).toBe(0);
    release(b, first, T + 1);
    expect(activeSlots(b)).toBe(1);
  });

  it("returns a slot at most once", () => {
    const b = newBreaker();
    const slot = admitted(admit(b, cfg, T, T + 1000));
    admitted(admit(b, cfg, T, T + 1000));
    release(b, slot, T + 1);
    release(b, slot, T + 1);
    expect(activeSlots(b)).toBe(1);
  });
});

describe("circuit breaker accounting that cannot leak", () => {
  it("reclaims the slots of requests that vanished (their release never ran) at the next admission after their deadline", () => {
    const b = newBreaker();
    // maxConcurrent requests whose continuations the runtime dropped: nobody will release them.
    admitted(admit(b, cfg, T, T + 1000));
    admitted(admit(b, cfg, T, T + 1000));
    // Before their deadline the breaker is rightly full ...
    expect(admit(b, { ...cfg, maxPending: 0 }, T + 999, T + 2000).kind).toBe("rejected");
    // ... after it, the slots come back instead of the isolate answering 503 forever.
    const fresh = admitted(admit(b, cfg, T + 1000, T + 2000));
    expect(activeSlots(b)).toBe(1);
    expect(b.slots.reclaimed).toBe(2);
    release(b, fresh, T + 1001);
    expect(activeSlots(b)).toBe(0);
  });

  it("hands a reclaimed slot to a live waiter", async () => {
    const b = newBreaker();
    admitted(admit(b, cfg, T, T + 1000));
    admitted(admit(b, cfg, T, T + 5000));
    const waiting = queued(admit(b, cfg, T, T + 5000));
    let granted: Lease | undefined;
    waiting.granted.then((slot) => (granted = slot));
    reclaimBreaker(b, T + 1000);
    await Promise.resolve();
    expect(granted?.held).toBe(true);
    expect(activeSlots(b)).toBe(2);
    expect(b.pending).toBe(0);
  });

  it("never grants a slot to a waiter that gave up or whose deadline passed, and does not count it as pending", async () => {
    const b = newBreaker();
    const one = admitted(admit(b, cfg, T, T + 10_000));
    admitted(admit(b, cfg, T, T + 10_000));
    const gaveUp = queued(admit(b, { ...cfg, maxPending: 3 }, T, T + 10_000));
    const vanished = queued(admit(b, { ...cfg, maxPending: 3 }, T, T + 500)); // its timer will never fire
    const live = queued(admit(b, { ...cfg, maxPending: 3 }, T, T + 10_000));
    const grants: string[] = [];
    gaveUp.granted.then(() => grants.push("gave-up"));
    vanished.granted.then(() => grants.push("vanished"));
    live.granted.then(() => grants.push("live"));
    expect(gaveUp.cancel()).toBe(true);
    expect(b.pending).toBe(2);
    // The vanished waiter's deadline passes: it stops counting as pending at the next admission.
    expect(admit(b, { ...cfg, maxPending: 1 }, T + 600, T + 10_000).kind).toBe("rejected");
    expect(b.pending).toBe(1);
    release(b, one, T + 700);
    await Promise.resolve();
    expect(grants).toEqual(["live"]);
    expect(b.pending).toBe(0);
    expect(activeSlots(b)).toBe(2);
  });
});
