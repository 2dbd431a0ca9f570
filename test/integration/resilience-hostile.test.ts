// Hostile input, disconnects and misbehaving upstreams against the real runtime (issue 7): policy
// regexes that backtrack, clients that vanish or upload slowly, bodies that trickle or stall,
// spoofed mesh headers, hedges that must teach the balancer and must not multiply tries. Bounds
// are far from the behaviour they tell apart (seconds against tens of ms), so they hold on a busy
// machine.
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { endpointsOf, epId, eventually, expectNothingHeld, instanceIds, type ResilienceMesh, useResilienceMeshOnSocket } from "./resilience-helpers.ts";

const ids = instanceIds(3);
let m: ResilienceMesh;
let direct: URL;

useResilienceMeshOnSocket(ids, (started, sidecarUrl) => {
  m = started;
  direct = sidecarUrl;
});

const noEjection = { consecutive5xx: 0, consecutiveGatewayErrors: 0 };
const to = [{ subset: "all" }];
const service = (routes: unknown[], extra: Record<string, unknown> = {}, only = ids) => ({ endpoints: endpointsOf(only), subsets: { all: {} }, outlierDetection: noEjection, routes, ...extra });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await run();
  return { value, ms: Date.now() - started };
}

/** A raw HTTP/1.1 exchange with the sidecar's socket: what a client that misbehaves can do. */
function rawClient(): { socket: Socket; received: () => string; write: (text: string) => void; answered: Promise<string> } {
  const socket = connect(Number(direct.port), direct.hostname);
  let text = "";
  let resolveAnswered!: (head: string) => void;
  const answered = new Promise<string>((resolve) => (resolveAnswered = resolve));
  socket.on("data", (chunk) => {
    text += chunk.toString("utf8");
    if (text.includes("\r\n\r\n")) resolveAnswered(text);
  });
  socket.on("error", () => {});
  socket.on("close", () => resolveAnswered(text));
  return { socket, received: () => text, write: (t) => socket.write(t), answered };
}

describe("policy regexes (item 1)", () => {
  it("a regex that backtracks exponentially answers at once, and a concurrent request is not held up", async () => {
    await m.apply(service([
      { name: "evil", match: [{ path: { regex: "/(a+)+b" } }], to },
      { name: "rest", to },
    ]));
    // 2^31 ways to split the a's: seconds on a backtracking engine, for this request and every
    // other one of the isolate meanwhile. On RE2 it does not match, at once, and falls to "rest".
    const evilPath = "/" + "a".repeat(31);
    const [evil, innocent] = await Promise.all([
      timed(() => m.call(evilPath, { headers: m.debugHeaders })),
      (async () => {
        await sleep(2);
        return timed(() => m.call("/innocent", { headers: m.debugHeaders }));
      })(),
    ]);
    expect(evil.value.status).toBe(200);
    expect(evil.value.headers.get("x-edgemesh-route")).toBe("rest");
    expect(innocent.value.status).toBe(200);
    await evil.value.arrayBuffer();
    await innocent.value.arrayBuffer();
    expect(evil.ms).toBeLessThan(500);
    expect(innocent.ms).toBeLessThan(500);
  });

  it("are refused at validation when they use syntax RE2 lacks, with the JSON path and the reason", async () => {
    const res = await m.mesh.applyPolicy({ mesh: "resil", services: { api: service([{ name: "r", match: [{ headers: { "x-v": { regex: "(a)\\1" } } }], to }]) } });
    expect(res.status).toBe(400);
    const { errors } = (await res.json()) as { errors: { path: string; message: string }[] };
    expect(errors).toEqual([{ path: '$.services.api.routes[0].match[0].headers["x-v"].regex', message: expect.stringMatching(/^backreferences are not supported/) }]);
  });
});

describe("accounting that cannot leak (item 3)", () => {
  it("a streaming response holds its breaker slot and its try until its body ends, not until its headers", async () => {
    await m.apply(service([{ name: "r", to }], {}, ["api-a"]));
    await m.configure("api-a", { mode: "trickle", trickleChunks: 6, trickleIntervalMs: 200 });
    const res = await m.call("/");
    expect(res.status).toBe(200);
    const during = await m.debug("resilience");
    expect(during.breaker.active).toBe(1);
    expect(during.endpointLoads[epId("api-a")].outstanding).toBe(1);
    expect((await res.text()).split("\n").filter(Boolean)).toHaveLength(6);
    await expectNothingHeld(m);
  });

  it("clients that disconnect mid-request leave no slot or try behind, so the isolate keeps serving", async () => {
    await m.apply(service([{ name: "r", to, timeoutMs: 500, retries: { attempts: 0 } }], { circuitBreaker: { maxConcurrent: 3, maxPending: 0 } }));
    for (const id of ids) await m.configure(id, { mode: "stall" });
    const clients = ids.map(() => rawClient());
    for (const c of clients) c.write(`GET /stalls HTTP/1.1\r\nhost: ${direct.host}\r\n\r\n`);
    await eventually(() => m.debug("resilience"), (r) => r.breaker.active === 3, 5000);
    for (const c of clients) c.socket.destroy();
    // Whether the runtime finishes the abandoned requests or drops them, the route's deadline
    // (500 ms) plus the lease grace (1 s) bounds how long their slots stay taken.
    await expectNothingHeld(m, 10_000);
    for (const id of ids) await m.configure(id, {});
    const res = await m.call("/");
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it("a request that disconnects while queued for a slot never receives one", async () => {
    await m.apply(service([{ name: "r", to, timeoutMs: 3000 }], { circuitBreaker: { maxConcurrent: 1, maxPending: 1 } }));
    for (const id of ids) await m.configure(id, { delayMs: 1000 });
    const occupying = m.call("/");
    await eventually(() => m.debug("resilience"), (r) => r.breaker.active === 1, 3000);
    const queued = rawClient();
    queued.write(`GET /queued HTTP/1.1\r\nhost: ${direct.host}\r\n\r\n`);
    await eventually(() => m.debug("resilience"), (r) => r.breaker.pending === 1, 3000);
    // The runtime drops the queued request's continuations: its wait never times out by itself,
    // and a slot handed to it would never be given back.
    queued.socket.destroy();
    const first = await occupying;
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    await expectNothingHeld(m);
    for (const id of ids) await m.configure(id, {});
    const next = await m.call("/");
    expect(next.status).toBe(200);
    await next.arrayBuffer();
  });

  it("a client that disconnects mid-body gives its slot back", async () => {
    await m.apply(service([{ name: "r", to }], {}, ["api-a"]));
    await m.configure("api-a", { mode: "trickle", trickleChunks: 1000, trickleIntervalMs: 100 });
    const c = rawClient();
    c.write(`GET /long HTTP/1.1\r\nhost: ${direct.host}\r\n\r\n`);
    await c.answered;
    await eventually(() => m.debug("resilience"), (r) => r.breaker.active === 1, 3000);
    c.socket.destroy();
    await expectNothingHeld(m, 10_000);
  });
});

describe("slow uploads (item 5)", () => {
  it("a body still arriving at the route's deadline is refused and never sent upstream", async () => {
    // retryNonIdempotent: the POST body is buffered for replay, so it is read before any try.
    await m.apply(service([{ name: "r", to, timeoutMs: 300, retries: { retryNonIdempotent: true } }]));
    const c = rawClient();
    const started = Date.now();
    c.write(`POST /upload HTTP/1.1\r\nhost: ${direct.host}\r\ncontent-length: 20\r\n\r\n0123456789`);
    const head = await Promise.race([c.answered, sleep(2500).then(() => "(no answer while the upload was incomplete)")]);
    const tookMs = Date.now() - started;
    c.write("0123456789"); // the rest, too late
    expect(head).toMatch(/^HTTP\/1\.1 408/);
    expect(head.toLowerCase()).toContain("x-edgemesh-timeout: request-body-timeout");
    expect(tookMs).toBeLessThan(2500);
    await sleep(300);
    c.socket.destroy();
    let hits = 0;
    for (const id of ids) hits += (await m.stats(id)).hits;
    expect(hits).toBe(0);
    await expectNothingHeld(m);
  });
});

describe("hedging (items 6 and 8)", () => {
  it("a hedged-away try teaches the default balancer (peak-EWMA P2C) that its endpoint is slow", async () => {
    await m.apply(service([{ name: "r", to, hedge: { afterMs: 30 } }], { retryBudget: { percent: 100, minRetriesPerSecond: 100 } }));
    await m.configure("api-a", { delayMs: 5000 });
    const r = await m.load({ requests: 40, concurrency: 1 });
    expect(r.statuses["200"]).toBe(40);
    // Without a sample from its cancelled tries, api-a's estimate would stay 0 and P2C would keep
    // picking it whenever it is one of the two candidates: about 2 requests in 3.
    expect((await m.stats("api-a")).hits).toBeLessThanOrEqual(5);
  });

  it("attempts bounds every try a request makes, hedges included", async () => {
    await m.apply(service([{ name: "r", to, hedge: { afterMs: 20 }, retries: { attempts: 2, backoff: { baseMs: 1, maxMs: 1 } } }], { retryBudget: { percent: 1000, minRetriesPerSecond: 1000 } }));
    for (const id of ids) await m.configure(id, { delayMs: 100, failPercent: 100, failStatus: 503 });
    const r = await m.load({ requests: 10, concurrency: 1 });
    expect(r.statuses["503"]).toBe(10);
    let hits = 0;
    for (const id of ids) hits += (await m.stats(id)).hits;
    // 1 + attempts = 3 tries a request; a hedge per try would make up to 6.
    expect(hits).toBeLessThanOrEqual(30);
    expect(hits).toBeGreaterThanOrEqual(20);
  });
});

describe("the stream idle timeout (item 9)", () => {
  it("aborts a response body that stops moving, and frees what it held", async () => {
    await m.apply(service([{ name: "r", to, streamIdleTimeoutMs: 300 }], {}, ["api-a"]));
    // The first chunk at once, then nothing for a minute.
    await m.configure("api-a", { mode: "trickle", trickleChunks: 3, trickleIntervalMs: 60_000 });
    const res = await m.call("/");
    expect(res.status).toBe(200);
    const outcome = await timed(() => Promise.race([res.text().then((text) => `ended: ${text}`, (err: unknown) => `failed: ${String(err)}`), sleep(8000).then(() => "hung")]));
    expect(outcome.value).not.toBe("hung");
    expect(outcome.value).not.toContain("chunk 1");
    expect(outcome.ms).toBeLessThan(5000);
    await expectNothingHeld(m);
  });

  it("lets a long body through while its chunks keep coming", async () => {
    await m.apply(service([{ name: "r", to, streamIdleTimeoutMs: 1000 }], {}, ["api-a"]));
    // 2 s in all, a chunk every 200 ms: longer than the idle timeout, never idle for it.
    await m.configure("api-a", { mode: "trickle", trickleChunks: 11, trickleIntervalMs: 200 });
    const res = await m.call("/");
    expect((await res.text()).split("\n").filter(Boolean)).toHaveLength(11);
    await expectNothingHeld(m);
  });

  it("is off with 0: the body is not watched and counts only until its headers", async () => {
    await m.apply(service([{ name: "r", to, streamIdleTimeoutMs: 0 }], {}, ["api-a"]));
    await m.configure("api-a", { mode: "trickle", trickleChunks: 4, trickleIntervalMs: 300 });
    const res = await m.call("/");
    expect(res.status).toBe(200);
    const during = await m.debug("resilience");
    expect(during.breaker.active).toBe(0);
    expect(during.endpointLoads[epId("api-a")].outstanding).toBe(0);
    expect((await res.text()).split("\n").filter(Boolean)).toHaveLength(4);
  });
});

describe("the mesh's own headers (item 11)", () => {
  it("are taken off inbound requests: a client cannot make a real write look like a shadow", async () => {
    await m.apply(service([{ name: "r", to }], {}, ["api-a"]));
    const res = await m.call("/", { method: "PUT", body: "real", headers: { "x-edgemesh-shadow": "1", "X-EdgeMesh-Route": "admin" } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const seen = await m.stats("api-a");
    expect(seen).toMatchObject({ hits: 1, shadowHits: 0 });
    expect(seen.lastHeaders.filter((h) => h.startsWith("x-edgemesh-"))).toEqual([]);
  });

  it("are taken off upstream responses; the sidecar's own are added after", async () => {
    await m.apply(service([{ name: "r", to }], {}, ["api-a"]));
    await m.configure("api-a", { responseHeaders: { "x-edgemesh-route": "spoofed", "x-edgemesh-generated": "1", "x-app": "kept" } });
    const plain = await m.call("/");
    await plain.arrayBuffer();
    expect(plain.headers.get("x-edgemesh-route")).toBeNull();
    expect(plain.headers.get("x-edgemesh-generated")).toBeNull();
    expect(plain.headers.get("x-app")).toBe("kept");
    const debugged = await m.call("/", { headers: m.debugHeaders });
    await debugged.arrayBuffer();
    expect(debugged.headers.get("x-edgemesh-route")).toBe("r");
  });

  it("x-edgemesh-debug is honoured only with a debug credential for this service, which is not passed on", async () => {
    await m.apply(service([{ name: "r", to }], {}, ["api-a"]));
    const mint = async (path: string, body: unknown) => {
      const res = await m.mesh.admin(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(res.status, path).toBe(201);
      return ((await res.json()) as { token: string }).token;
    };
    const identityToken = await mint("/v1/mesh-tokens", { caller: "api", callee: "api", ttlMs: 60_000 });
    const otherService = await mint("/v1/debug-tokens", { service: "billing" });
    const refused: Record<string, string>[] = [
      { "x-edgemesh-debug": "1" },
      // The admin token is no debug credential: it never reaches a sidecar.
      { "x-edgemesh-debug": "1", authorization: `Bearer ${m.mesh.adminToken}` },
      { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": identityToken },
      { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": otherService },
      { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": `${m.debugHeaders["x-edgemesh-debug-token"]!.slice(0, -4)}AAAA` },
    ];
    for (const headers of refused) {
      const res = await m.call("/", { headers });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      expect(res.headers.get("x-edgemesh-endpoint"), JSON.stringify(Object.keys(headers))).toBeNull();
      expect(res.headers.get("x-edgemesh-snapshot-version")).toBeNull();
    }
    // Authorization is the service's business: passed on like any other header.
    await (await m.call("/", { headers: { "x-edgemesh-debug": "1", authorization: "Bearer the-service-s-own" } })).arrayBuffer();
    expect((await m.stats("api-a")).lastHeaders).toContain("authorization");
    const res = await m.call("/", { headers: m.debugHeaders });
    await res.arrayBuffer();
    expect(res.headers.get("x-edgemesh-endpoint")).toBe(epId("api-a"));
    const forwarded = (await m.stats("api-a")).lastHeaders;
    expect(forwarded).not.toContain("x-edgemesh-debug-token");
    expect(forwarded).not.toContain("x-edgemesh-debug");
    // A debug credential for this one service opens it too.
    const forApi = await mint("/v1/debug-tokens", { service: "api", ttlMs: 60_000 });
    const own = await m.call("/", { headers: { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": forApi } });
    await own.arrayBuffer();
    expect(own.headers.get("x-edgemesh-route")).toBe("r");
  });

  it("error bodies never carry the raw exception text", async () => {
    await m.apply(service([{ name: "r", to, retries: { attempts: 0 } }], {}, ["api-a"]));
    await m.configure("api-a", { mode: "reset" });
    const res = await m.call("/");
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: "upstream-reset", route: "r" });
    expect(text).not.toMatch(/simulated|flaky/);
    // The operator asking with a debug credential gets the detail in a header.
    const debugged = await m.call("/", { headers: m.debugHeaders });
    await debugged.arrayBuffer();
    expect(debugged.headers.get("x-edgemesh-error-detail")).toMatch(/simulated connection reset/);
  });
});
