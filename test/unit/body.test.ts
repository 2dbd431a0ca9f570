import { afterEach, describe, expect, it, vi } from "vitest";
import { BODY_BROKEN, BODY_TOO_SLOW, planBody } from "../../workers/sidecar/body.ts";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(enc.encode(chunk));
      c.close();
    },
  });
}

describe("request body buffering", () => {
  it("buffers a body within the limit so it can be replayed", async () => {
    const plan = await planBody(streamOf(["hello ", "world"]), null, 64, Date.now() + 60_000);
    expect(plan.kind).toBe("buffered");
    if (plan.kind === "buffered") expect(new TextDecoder().decode(plan.bytes)).toBe("hello world");
  });

  it("streams a body over the limit unchanged, including what was already read", async () => {
    const plan = await planBody(streamOf(["aaaa", "bbbb", "cccc", "dddd"]), null, 6, Date.now() + 60_000);
    expect(plan.kind).toBe("stream");
    if (plan.kind === "stream") expect(await new Response(plan.stream).text()).toBe("aaaabbbbccccdddd");
  });

  it("does not read a body whose declared length is over the limit", async () => {
    const body = streamOf(["x".repeat(100)]);
    const plan = await planBody(body, "100", 10, Date.now() + 60_000);
    expect(plan).toEqual({ kind: "stream", stream: body });
  });

  it("has nothing to do without a body", async () => {
    expect(await planBody(null, null, 10, Date.now() + 60_000)).toEqual({ kind: "none" });
  });
});

describe("a body that arrives too slowly", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("counts against the route's deadline: reading stops there and nothing is planned to be sent", async () => {
    vi.useFakeTimers();
    let cancelled: unknown;
    const enc = new TextEncoder();
    // Half the body at once, the rest never.
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode("half"));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    let settled: unknown;
    const planning = planBody(body, "8", 64, Date.now() + 300).then((p) => (settled = p));
    await vi.advanceTimersByTimeAsync(299);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await planning;
    expect(settled).toBe(BODY_TOO_SLOW);
    expect(String(cancelled)).toMatch(/deadline/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves no timer behind when the body arrives in time", async () => {
    vi.useFakeTimers();
    const plan = await planBody(streamOf(["a", "b"]), null, 64, Date.now() + 300);
    expect(plan.kind).toBe("buffered");
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("a body whose upload breaks off", () => {
  it("is reported as broken, not thrown (the client went away mid-body)", async () => {
    const body = new ReadableStream<Uint8Array>({
      pull() {
        throw new Error("Network connection lost.");
      },
    });
    expect(await planBody(body, null, 64, Date.now() + 60_000)).toBe(BODY_BROKEN);
  });
});
