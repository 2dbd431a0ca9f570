import { afterEach, describe, expect, it, vi } from "vitest";
import { watchBody, type BodyWatch } from "../../workers/sidecar/stream.ts";

const enc = new TextEncoder();

function recorder(): BodyWatch & { progress: number; done: number } {
  const w = { progress: 0, done: 0, onProgress: () => void w.progress++, onDone: () => void w.done++ };
  return w;
}

/** A body the test feeds by hand. */
function manualBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled: unknown;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  return { body, send: (text: string) => controller.enqueue(enc.encode(text)), end: () => controller.close(), cancelled: () => cancelled };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("a watched response body", () => {
  it("passes every chunk through, reports progress, and is done once when it ends", async () => {
    const watch = recorder();
    const src = manualBody();
    const out = new Response(watchBody(src.body, 1000, watch)).text();
    src.send("a");
    src.send("b");
    src.end();
    expect(await out).toBe("ab");
    expect(watch.progress).toBe(2);
    expect(watch.done).toBe(1);
  });

  it("is done when the client cancels it, and cancels the upstream body", async () => {
    const watch = recorder();
    const src = manualBody();
    const watched = watchBody(src.body, 1000, watch);
    await watched.cancel("client went away");
    expect(watch.done).toBe(1);
    expect(src.cancelled()).toBe("client went away");
  });

  it("is aborted after the idle timeout without a chunk, not while chunks keep coming", async () => {
    vi.useFakeTimers();
    const watch = recorder();
    const src = manualBody();
    const reader = watchBody(src.body, 200, watch).getReader();
    let failure: unknown;
    const readAll = (async () => {
      try {
        for (;;) if ((await reader.read()).done) return;
      } catch (err) {
        failure = err;
      }
    })();
    // A chunk every 150 ms (under the 200 ms idle timeout) for a second: never cut.
    for (let t = 0; t < 1000; t += 150) {
      await vi.advanceTimersByTimeAsync(150);
      src.send("x");
    }
    expect(failure).toBeUndefined();
    expect(watch.done).toBe(0);
    // Then the upstream stalls.
    await vi.advanceTimersByTimeAsync(199);
    expect(watch.done).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await readAll;
    expect(String(failure)).toMatch(/stream idle timeout: no data for 200 ms/);
    expect(watch.done).toBe(1);
    expect(String(src.cancelled())).toMatch(/idle timeout/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("is done when the upstream body fails", async () => {
    const watch = recorder();
    const failing = new ReadableStream<Uint8Array>({
      pull() {
        throw new Error("upstream reset");
      },
    });
    await expect(new Response(watchBody(failing, 1000, watch)).text()).rejects.toThrow(/upstream reset/);
    expect(watch.done).toBe(1);
  });
});
