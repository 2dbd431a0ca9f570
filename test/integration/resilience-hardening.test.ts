// Requests that used to leak per-isolate state or hang: GET with a body, requests refused by the
// breaker while their body is still arriving, a whole-request fault delay longer than the route's
// deadline, and debug endpoints on a sidecar without an admin token. On the real runtime.
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { endpointsOf, eventually, expectNothingHeld, instanceIds, type ResilienceMesh, useResilienceMeshOnSocket } from "./resilience-helpers.ts";

const ids = instanceIds(2);
let m: ResilienceMesh;
let direct: URL;

useResilienceMeshOnSocket(ids, (started, sidecarUrl) => {
  m = started;
  direct = sidecarUrl;
});

/** A GET with a body: fetch() refuses to send one, so this goes over a raw HTTP/1.1 request. */
function getWithBody(path: string, body: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, direct), { method: "GET", headers: { "content-type": "text/plain", "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

const base = () => ({ endpoints: endpointsOf(ids), subsets: { all: {} }, outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 } });

describe("a GET with a body", () => {
  it("is proxied (without the body) and leaves no try or breaker slot behind", async () => {
    await m.apply({ ...base(), routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 2 } }] });
    for (let i = 0; i < 10; i++) {
      const res = await getWithBody("/", "a body a GET should not have");
      expect(res.status).toBe(200);
    }
    await expectNothingHeld(m, 3000);
  });

  it("does not hang on a hedged route", async () => {
    await m.apply({ ...base(), routes: [{ name: "r", to: [{ subset: "all" }], hedge: { afterMs: 20 } }] });
    await m.configure("api-a", { delayMs: 60 });
    await m.configure("api-b", { delayMs: 60 });
    for (let i = 0; i < 6; i++) {
      const res = await getWithBody("/", "body");
      expect(res.status).toBe(200);
    }
    await expectNothingHeld(m, 3000);
  });
});

describe("the circuit breaker", () => {
  it("refuses a request over its limit before reading its body", async () => {
    await m.apply({ ...base(), routes: [{ name: "r", to: [{ subset: "all" }], retries: { attempts: 1, retryNonIdempotent: true } }], circuitBreaker: { maxConcurrent: 1, maxPending: 0 } });
    await m.configure("api-a", { delayMs: 4000 });
    await m.configure("api-b", { delayMs: 4000 });
    const occupying = m.call("/");
    // Until the occupying request holds the only slot.
    await eventually(() => m.debug("resilience"), (r) => r.breaker.active === 1, 3000);
    // A POST whose body never finishes arriving: buffering it first would wait forever.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(direct.port), direct.hostname, () => {
        socket.write(`POST / HTTP/1.1\r\nhost: ${direct.host}\r\ncontent-length: 1000\r\n\r\npartial`);
      });
      let text = "";
      // Well before the occupying request's 4 s: an answer in time can only be the refusal.
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(text);
      }, 3000);
      socket.on("data", (chunk) => {
        text += chunk.toString("utf8");
        if (text.includes("\r\n\r\n")) {
          clearTimeout(timer);
          socket.destroy();
          resolve(text);
        }
      });
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(answer.toLowerCase()).toContain("x-edgemesh-overloaded: max-pending");
    expect((await occupying).status).toBe(200);
  });
});

describe("a whole-request fault delay (bypassRetries)", () => {
  it("never outlasts the route's deadline and answers route-timeout", async () => {
    await m.apply({ ...base(), routes: [{ name: "r", to: [{ subset: "all" }], timeoutMs: 200, fault: { delay: { percent: 100, ms: 6000 }, bypassRetries: true, onlyWithHeader: { name: "x-chaos", value: "me" } } }] });
    const started = Date.now();
    const res = await m.call("/", { headers: { "x-chaos": "me" } });
    expect(res.status).toBe(504);
    expect(res.headers.get("x-edgemesh-timeout")).toBe("route-timeout");
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe("a sidecar's debug views", () => {
  it("are no public paths any more: /__edgemesh/* answers 404, with or without the admin token", async () => {
    for (const path of ["status", "snapshot", "outliers", "resilience", "telemetry", "probe?binding=API_A&path=/"]) {
      for (const headers of [{}, { authorization: `Bearer ${m.mesh.adminToken}` }] as Record<string, string>[]) {
        const res = await m.call(`/__edgemesh/${path}`, { headers });
        expect(res.status, path).toBe(404);
        expect(res.headers.get("x-edgemesh-generated")).toBe("1");
        expect(await res.text()).not.toContain("isolateId");
      }
    }
  });

  it("are read through the admin API with a token, over the sidecar's entrypoint", async () => {
    expect((await fetch(new URL("/v1/sidecars/api/debug/status", m.mesh.controlUrl))).status).toBe(401);
    expect((await m.mesh.admin("/v1/sidecars/api/debug/status")).status).toBe(200);
    expect(await m.debug("status")).toMatchObject({ service: "api", mesh: "resil" });
    const unknown = await m.mesh.admin("/v1/sidecars/api/debug/secrets");
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain("status, snapshot, outliers, resilience, telemetry, security");
    expect((await m.mesh.admin("/v1/sidecars/nope/debug/status")).status).toBe(404);
  });
});
