import { afterEach, describe, expect, it } from "vitest";
import { probeBinding } from "../../workers/sidecar/probe.ts";

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

describe("binding probes that time out", () => {
  it("leave no rejection unhandled when the aborted fetch rejects", async () => {
    process.on("unhandledRejection", onUnhandled);
    const env = {
      SLOW: { fetch: (request: Request) => new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(new Error("aborted")))) },
    };
    const res = await probeBinding(new URL("http://sidecar/__edgemesh/probe?binding=SLOW&path=/&timeoutMs=10"), env);
    expect(await res.json()).toMatchObject({ timedOut: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
  });

  it("cancel the body of an answer that arrives too late", async () => {
    let cancelled = false;
    const body = new ReadableStream({ cancel: () => void (cancelled = true) });
    // Like a binding that ignores the abort and answers anyway.
    const env = { LATE: { fetch: () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response(body)), 30)) } };
    const res = await probeBinding(new URL("http://sidecar/__edgemesh/probe?binding=LATE&path=/&timeoutMs=10"), env);
    expect(await res.json()).toMatchObject({ timedOut: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cancelled).toBe(true);
  });
});
