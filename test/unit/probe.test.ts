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
    expect(await probeBinding({ binding: "SLOW", path: "/", timeoutMs: 10 }, env)).toMatchObject({ timedOut: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
  });

  it("cancel the body of an answer that arrives too late", async () => {
    let cancelled = false;
    const body = new ReadableStream({ cancel: () => void (cancelled = true) });
    // Like a binding that ignores the abort and answers anyway.
    const env = { LATE: { fetch: () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response(body)), 30)) } };
    expect(await probeBinding({ binding: "LATE", path: "/", timeoutMs: 10 }, env)).toMatchObject({ timedOut: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cancelled).toBe(true);
  });
});

describe("binding probes", () => {
  it("answer the endpoint's status, and say why when there is nothing to check", async () => {
    const env = { OK: { fetch: async (request: Request) => new Response(null, { status: new URL(request.url).pathname === "/healthz" ? 204 : 404 }) } };
    expect(await probeBinding({ binding: "OK", path: "/healthz", timeoutMs: 1000 }, env)).toMatchObject({ status: 204 });
    expect(await probeBinding({ binding: "MISSING", path: "/healthz", timeoutMs: 1000 }, env)).toMatchObject({ error: 'this sidecar has no service binding "MISSING"' });
    expect(await probeBinding({ binding: "constructor", path: "/", timeoutMs: 1000 }, env)).toMatchObject({ error: expect.stringContaining("no service binding") });
    expect(await probeBinding({ binding: "OK", path: "healthz", timeoutMs: 1000 }, env)).toMatchObject({ error: expect.stringContaining('must start with "/"') });
  });
});
