// The sidecar's one body path (stream.ts): what is already there is read at once, a complete small
// body is answered from memory, and the rest of anything else streams through a watched stream.
import { afterEach, describe, expect, it, vi } from "vitest";
import { bytesOf, continueBody, readAvailable, readMore, unsizedBody, type BodyCut, type BodyWatch } from "../../workers/sidecar/stream.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function recorder(): BodyWatch & { chunks: string[]; keptUntil: number[]; done: { cut: BodyCut | undefined; reason: unknown }[] } {
  const w = {
    chunks: [] as string[],
    keptUntil: [] as number[],
    done: [] as { cut: BodyCut | undefined; reason: unknown }[],
    onChunk: (chunk: Uint8Array) => void w.chunks.push(dec.decode(chunk)),
    keepUntil: (ms: number) => void w.keptUntil.push(ms),
    onDone: (cut: BodyCut | undefined, reason: unknown) => void w.done.push({ cut, reason }),
  };
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
  return { body, send: (text: string) => controller.enqueue(enc.encode(text)), end: () => controller.close(), fail: (err: Error) => controller.error(err), cancelled: () => cancelled };
}

const textOf = (start: { head: Uint8Array[] }) => start.head.map((c) => dec.decode(c)).join("");

afterEach(() => {
  vi.useRealTimers();
});

describe("reading what is already there", () => {
  it("reads a body that is complete on arrival, whole", async () => {
    const src = manualBody();
    src.send("a");
    src.send("bc");
    src.end();
    const start = await readAvailable(src.body, 1024);
    expect(start.complete).toBe(true);
    expect(dec.decode(bytesOf(start))).toBe("abc");
    expect(start.headBytes).toBe(3);
    expect(start.pending).toBeUndefined();
  });

  it("does not wait for a chunk that is not there: an event stream's first bytes are never held back", async () => {
    const src = manualBody();
    src.send("event 1\n");
    const start = await readAvailable(src.body, 1024);
    expect(start.complete).toBe(false);
    expect(textOf(start)).toBe("event 1\n");
    // The read it started goes on: nothing that comes later is lost.
    expect(start.pending).toBeDefined();
    src.send("event 2\n");
    src.end();
    const out = new Response(continueBody(start, 0, recorder())).text();
    expect(await out).toBe("event 1\nevent 2\n");
  });

  it("comes back at once, with nothing read, when the body has not started", async () => {
    const src = manualBody();
    const start = await readAvailable(src.body, 1024);
    expect(start).toMatchObject({ complete: false, headBytes: 0, head: [] });
    expect(start.pending).toBeDefined();
  });

  it("stops at the byte limit: a large body is streamed, not held in memory", async () => {
    const src = manualBody();
    for (let i = 0; i < 10; i++) src.send("x".repeat(100));
    src.end();
    const start = await readAvailable(src.body, 250);
    expect(start.complete).toBe(false);
    expect(start.headBytes).toBe(300);
    const watch = recorder();
    expect(await new Response(continueBody(start, 0, watch)).text()).toBe("x".repeat(1000));
    // The chunks read at first are not reported again; the ones after are.
    expect(watch.chunks).toHaveLength(7);
    expect(watch.done).toEqual([{ cut: undefined, reason: undefined }]);
  });

  it("keeps a failure for where it happened: the client gets what came before, then the error", async () => {
    const src = manualBody();
    src.send("partial");
    const start = await readAvailable(src.body, 1024);
    expect(start.complete).toBe(false);
    src.fail(new Error("connection reset"));
    const watch = recorder();
    const reader = continueBody(start, 1000, watch).getReader();
    expect(dec.decode((await reader.read()).value)).toBe("partial");
    await expect(reader.read()).rejects.toThrow(/connection reset/);
    expect(watch.done).toHaveLength(1);
    expect(watch.done[0]!.cut).toBe("upstream");
  });

  it("answers a body of no declared length from bytes, for answers that must keep a stream's form", async () => {
    expect(await new Response(unsizedBody(enc.encode("frame"))).text()).toBe("frame");
    expect(await new Response(unsizedBody(new Uint8Array())).text()).toBe("");
  });
});

describe("reading on until enough is there (peeking)", () => {
  it("reads on, waiting, until the condition holds, and hands each chunk over", async () => {
    const src = manualBody();
    const start = await readAvailable(src.body, 1024);
    const seen: string[] = [];
    const peek = readMore(start, () => textOf(start).includes("\n"), 1024, new Promise(() => {}), (c) => seen.push(dec.decode(c)));
    src.send("he");
    src.send("llo\nrest");
    expect(await peek).toBe("enough");
    expect(seen).toEqual(["he", "llo\nrest"]);
    src.end();
    expect(await new Response(continueBody(start, 0, recorder())).text()).toBe("hello\nrest");
  });

  it("gives up when told to stop, losing nothing", async () => {
    const src = manualBody();
    const start = await readAvailable(src.body, 1024);
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const peek = readMore(start, () => false, 1024, stopped, () => {});
    stop();
    expect(await peek).toBe("stopped");
    src.send("late");
    src.end();
    expect(await new Response(continueBody(start, 0, recorder())).text()).toBe("late");
  });
});

describe("a watched body", () => {
  it("passes the head, then every chunk; reports the later ones and is done once when it ends", async () => {
    const src = manualBody();
    src.send("a");
    const start = await readAvailable(src.body, 1024);
    const watch = recorder();
    const out = new Response(continueBody(start, 1000, watch)).text();
    src.send("b");
    src.send("c");
    src.end();
    expect(await out).toBe("abc");
    expect(watch.chunks).toEqual(["b", "c"]);
    expect(watch.done).toEqual([{ cut: undefined, reason: undefined }]);
  });

  it("is done when the client cancels it, and cancels the upstream body", async () => {
    const src = manualBody();
    const start = await readAvailable(src.body, 1024);
    const watch = recorder();
    await continueBody(start, 1000, watch).cancel("client went away");
    expect(watch.done).toEqual([{ cut: "client", reason: "client went away" }]);
    expect(src.cancelled()).toBe("client went away");
  });

  it("is aborted after the idle timeout without a chunk, not while chunks keep coming, and keeps its holder's deadline ahead", async () => {
    vi.useFakeTimers();
    const src = manualBody();
    const startPromise = readAvailable(src.body, 1024);
    await vi.advanceTimersByTimeAsync(0);
    const start = await startPromise;
    const watch = recorder();
    const reader = continueBody(start, 200, watch).getReader();
    let failure: unknown;
    const readAll = (async () => {
      try {
        for (;;) if ((await reader.read()).done) return;
      } catch (err) {
        failure = err;
      }
    })();
    const begunMs = Date.now();
    expect(watch.keptUntil).toEqual([begunMs + 200]);
    // A chunk every 150 ms (under the 200 ms idle timeout) for a second: never cut.
    for (let t = 0; t < 1000; t += 150) {
      await vi.advanceTimersByTimeAsync(150);
      src.send("x");
    }
    expect(failure).toBeUndefined();
    expect(watch.done).toEqual([]);
    // The holder's deadline moved along with the chunks (lazily, when the timer looked).
    expect(watch.keptUntil.length).toBeGreaterThan(3);
    expect(watch.keptUntil.at(-1)!).toBeGreaterThan(begunMs + 800);
    // Then the upstream stalls.
    await vi.advanceTimersByTimeAsync(199);
    expect(watch.done).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await readAll;
    expect(String(failure)).toMatch(/stream idle timeout: no data for 200 ms/);
    expect(watch.done.map((d) => d.cut)).toEqual(["idle"]);
    expect(String(src.cancelled())).toMatch(/idle timeout/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("has no idle limit and no timer with a timeout of 0", async () => {
    vi.useFakeTimers();
    const src = manualBody();
    const startPromise = readAvailable(src.body, 1024);
    await vi.advanceTimersByTimeAsync(0);
    const watch = recorder();
    const out = new Response(continueBody(await startPromise, 0, watch)).text();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(3_600_000);
    src.send("late");
    src.end();
    expect(await out).toBe("late");
    expect(watch.keptUntil).toEqual([]);
    expect(watch.done).toHaveLength(1);
  });
});
