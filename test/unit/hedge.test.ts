// Hedging's timing on fake timers: every delay below is virtual, so the outcome cannot depend on
// how busy the machine is.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { hedge, type HedgeResult, type RunningTry } from "../../workers/sidecar/hedge.ts";

function tryAfter(ms: number, value: string): RunningTry<string> & { cancelled: boolean } {
  const t = { cancelled: false, result: new Promise<string>((r) => setTimeout(() => r(value), ms)), cancel: () => (t.cancelled = true) };
  return t;
}
const rejecting = (ms: number): RunningTry<string> => ({ result: new Promise<string>((_, reject) => setTimeout(() => reject(new Error("boom")), ms)), cancel: () => {} });
const good = (v: string) => v.startsWith("ok");

/** Runs a hedge to completion on virtual time; answers its result and the virtual ms it took. */
async function settle<T>(running: Promise<HedgeResult<T>>, untilMs = 10_000): Promise<{ out: HedgeResult<T>; tookMs: number }> {
  const started = Date.now();
  let tookMs = -1;
  let out: HedgeResult<T> | undefined;
  let failure: unknown;
  running.then((o) => ((out = o), (tookMs = Date.now() - started)), (err) => ((failure = err), (tookMs = Date.now() - started)));
  await vi.advanceTimersByTimeAsync(untilMs);
  if (failure !== undefined) throw failure;
  if (out === undefined) throw new Error(`the hedge did not settle within ${untilMs} virtual ms`);
  return { out, tookMs };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("hedging", () => {
  it("does not hedge a try that answers before the delay", async () => {
    let asked = false;
    const { out, tookMs } = await settle(hedge(tryAfter(5, "ok-1"), 50, () => ((asked = true), undefined), good));
    expect(out).toEqual({ value: "ok-1", winner: 0, hedged: false });
    expect(asked).toBe(false);
    expect(tookMs).toBe(5);
  });

  it("lets the faster hedge win and cancels the slow first try", async () => {
    const first = tryAfter(300, "ok-slow");
    const { out, tookMs } = await settle(hedge(first, 20, () => tryAfter(5, "ok-fast"), good));
    expect(out).toEqual({ value: "ok-fast", winner: 1, hedged: true });
    expect(first.cancelled).toBe(true);
    // The hedge starts at 20 and answers 5 later; the slow first try is not waited for.
    expect(tookMs).toBe(25);
  });

  it("waits for the other try when the first answer is bad", async () => {
    const { out, tookMs } = await settle(hedge(tryAfter(30, "bad"), 10, () => tryAfter(40, "ok-2"), good));
    expect(out.value).toBe("ok-2");
    expect(tookMs).toBe(50);
  });

  it("returns the later bad answer when both are bad, and the first when no hedge was allowed", async () => {
    expect((await settle(hedge(tryAfter(20, "bad-1"), 5, () => tryAfter(5, "bad-2"), good))).out.value).toBe("bad-1");
    expect((await settle(hedge(tryAfter(20, "bad-1"), 5, () => undefined, good))).out.value).toBe("bad-1");
  });
});

describe("hedging when a try fails outright", () => {
  it("answers with the other try when one rejects", async () => {
    expect((await settle(hedge(rejecting(5), 1, () => tryAfter(20, "ok-2"), good))).out.value).toBe("ok-2");
    expect((await settle(hedge(tryAfter(30, "ok-1"), 5, () => rejecting(5), good))).out.value).toBe("ok-1");
    expect((await settle(hedge(rejecting(30), 5, () => tryAfter(5, "bad-2"), good))).out.value).toBe("bad-2");
  });

  it("rejects, instead of never settling, when every try rejects", async () => {
    await expect(settle(hedge(rejecting(5), 50, () => undefined, good))).rejects.toThrow("boom");
    await expect(settle(hedge(rejecting(20), 5, () => rejecting(5), good))).rejects.toThrow("boom");
  });

  it("hands every answer it does not return to discard, late ones included", async () => {
    const discarded: string[] = [];
    const { out } = await settle(hedge(tryAfter(5, "bad-1"), 1, () => tryAfter(20, "ok-2"), good, (v) => discarded.push(v)));
    expect(out.value).toBe("ok-2");
    expect(discarded).toEqual(["bad-1"]);
    const late: string[] = [];
    // settle() runs virtual time past the slow try's answer, which comes after the hedge won.
    await settle(hedge(tryAfter(30, "bad-slow"), 5, () => tryAfter(5, "ok-fast"), good, (v) => late.push(v)));
    expect(late).toEqual(["bad-slow"]);
  });

  it("leaves no timer behind", async () => {
    await settle(hedge(tryAfter(5, "ok-1"), 50, () => undefined, good));
    expect(vi.getTimerCount()).toBe(0);
  });
});
