import { describe, expect, it } from "vitest";
import { hedge, type RunningTry } from "../../workers/sidecar/hedge.ts";

function tryAfter(ms: number, value: string): RunningTry<string> & { cancelled: boolean } {
  const t = { cancelled: false, result: new Promise<string>((r) => setTimeout(() => r(value), ms)), cancel: () => (t.cancelled = true) };
  return t;
}
const good = (v: string) => v.startsWith("ok");

describe("hedging", () => {
  it("does not hedge a try that answers before the delay", async () => {
    let asked = false;
    const out = await hedge(tryAfter(5, "ok-1"), 50, () => ((asked = true), undefined), good);
    expect(out).toEqual({ value: "ok-1", winner: 0, hedged: false });
    expect(asked).toBe(false);
  });

  it("lets the faster hedge win and cancels the slow first try", async () => {
    const first = tryAfter(300, "ok-slow");
    const second = tryAfter(5, "ok-fast");
    const started = Date.now();
    const out = await hedge(first, 20, () => second, good);
    expect(out).toEqual({ value: "ok-fast", winner: 1, hedged: true });
    expect(first.cancelled).toBe(true);
    expect(Date.now() - started).toBeLessThan(200);
  });

  it("waits for the other try when the first answer is bad", async () => {
    const first = tryAfter(30, "bad");
    const second = tryAfter(40, "ok-2");
    const out = await hedge(first, 10, () => second, good);
    expect(out.value).toBe("ok-2");
  });

  it("returns the later bad answer when both are bad, and the first when no hedge was allowed", async () => {
    expect((await hedge(tryAfter(20, "bad-1"), 5, () => tryAfter(5, "bad-2"), good)).value).toBe("bad-1");
    expect((await hedge(tryAfter(20, "bad-1"), 5, () => undefined, good)).value).toBe("bad-1");
  });
});

describe("hedging when a try fails outright", () => {
  const rejecting = (ms: number): RunningTry<string> => ({ result: new Promise<string>((_, reject) => setTimeout(() => reject(new Error("boom")), ms)), cancel: () => {} });

  it("answers with the other try when one rejects", async () => {
    expect((await hedge(rejecting(5), 1, () => tryAfter(20, "ok-2"), good)).value).toBe("ok-2");
    expect((await hedge(tryAfter(30, "ok-1"), 5, () => rejecting(5), good)).value).toBe("ok-1");
    expect((await hedge(rejecting(30), 5, () => tryAfter(5, "bad-2"), good)).value).toBe("bad-2");
  });

  it("rejects, instead of never settling, when every try rejects", async () => {
    await expect(hedge(rejecting(5), 50, () => undefined, good)).rejects.toThrow("boom");
    await expect(hedge(rejecting(20), 5, () => rejecting(5), good)).rejects.toThrow("boom");
  });

  it("hands every answer it does not return to discard", async () => {
    const discarded: string[] = [];
    const out = await hedge(tryAfter(5, "bad-1"), 1, () => tryAfter(20, "ok-2"), good, (v) => discarded.push(v));
    expect(out.value).toBe("ok-2");
    expect(discarded).toEqual(["bad-1"]);
    const late: string[] = [];
    await hedge(tryAfter(30, "bad-slow"), 5, () => tryAfter(5, "ok-fast"), good, (v) => late.push(v));
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(late).toEqual(["bad-slow"]);
  });
});
