// The health-check runner's pure parts: bounded concurrency and timeouts that leave no unhandled rejection.
import { afterEach, describe, expect, it } from "vitest";
import { runBounded, withTimeout } from "../../durable/check-runner.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("runBounded", () => {
  it("never runs more than the limit at once and runs every item", async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await runBounded(Array.from({ length: 25 }, (_, i) => i), 6, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(5 + (i % 3));
      running--;
      done.push(i);
    });
    expect(peak).toBe(6);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it("does nothing for no items", async () => {
    let calls = 0;
    await runBounded([], 6, async () => void calls++);
    expect(calls).toBe(0);
  });
});

describe("withTimeout", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  afterEach(() => void process.off("unhandledRejection", onUnhandled));

  it("answers timeout, and the late rejection of the slow promise is handled", async () => {
    process.on("unhandledRejection", onUnhandled);
    const late = new Promise<string>((_, reject) => setTimeout(() => reject(new Error("aborted after the timeout")), 30));
    expect(await withTimeout(late, 5)).toBe("timeout");
    await sleep(80);
    expect(unhandled).toEqual([]);
  });

  it("passes the value through when it comes in time", async () => {
    expect(await withTimeout(Promise.resolve(7), 50)).toBe(7);
  });
});
