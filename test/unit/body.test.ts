import { describe, expect, it } from "vitest";
import { planBody } from "../../workers/sidecar/body.ts";

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
    const plan = await planBody(streamOf(["hello ", "world"]), null, 64);
    expect(plan.kind).toBe("buffered");
    if (plan.kind === "buffered") expect(new TextDecoder().decode(plan.bytes)).toBe("hello world");
  });

  it("streams a body over the limit unchanged, including what was already read", async () => {
    const plan = await planBody(streamOf(["aaaa", "bbbb", "cccc", "dddd"]), null, 6);
    expect(plan.kind).toBe("stream");
    if (plan.kind === "stream") expect(await new Response(plan.stream).text()).toBe("aaaabbbbccccdddd");
  });

  it("does not read a body whose declared length is over the limit", async () => {
    const body = streamOf(["x".repeat(100)]);
    const plan = await planBody(body, "100", 10);
    expect(plan).toEqual({ kind: "stream", stream: body });
  });

  it("has nothing to do without a body", async () => {
    expect(await planBody(null, null, 10)).toEqual({ kind: "none" });
  });
});
