// Property-based fuzzing of the sidecar on the real runtime (workerd via Miniflare), over raw
// HTTP/1.1 sockets so nothing a client could send is off limits: random methods, paths and query
// strings, header names, values and sizes (the mesh's own x-edgemesh-* among them, identity claims
// and tokens, forged or real, and a real debug credential), bodies sent
// with a length or chunked, and clients that disconnect before, during or after their upload or
// halfway through the response. Properties: the sidecar never answers 500 sidecar-internal-error,
// not even to a client that went away (it counts them), and once every deadline has passed no
// breaker slot, waiter or try in flight is left behind.
// EDGEMESH_FUZZ_SIDECAR_RUNS sets the number of batches (default 100, about half a minute; a batch is 1-4
// concurrent requests).
import fc from "fast-check";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { endpointsOf, expectNothingHeld, instanceIds, type ResilienceMesh, useResilienceMeshOnSocket } from "../integration/resilience-helpers.ts";

const RUNS = Number(process.env.EDGEMESH_FUZZ_SIDECAR_RUNS ?? 100);
const ids = instanceIds(3);
let m: ResilienceMesh;
let direct: URL;

useResilienceMeshOnSocket(ids, (started, sidecarUrl) => {
  m = started;
  direct = sidecarUrl;
});

// Short deadlines, so whatever a vanished request held expires within seconds of the last case.
const ROUTE_TIMEOUT_MS = 800;
const STREAM_IDLE_MS = 600;
const LEASE_GRACE_MS = 1000;

function policy() {
  const to = (subset = "all") => [{ subset }];
  const common = { timeoutMs: ROUTE_TIMEOUT_MS, streamIdleTimeoutMs: STREAM_IDLE_MS };
  return {
    endpoints: endpointsOf(ids, (id) => ({ role: id === "api-c" ? "shadow" : "main" })),
    subsets: { all: {}, main: { role: "main" }, shadow: { role: "shadow" } },
    routes: [
      { name: "regex", match: [{ path: { regex: "/re/[a-z0-9]+(/.*)?" } }, { headers: { "x-re": { regex: "(a|b)+c?" } } }], to: to("main"), ...common },
      { name: "hedged", match: [{ path: { prefix: "/hedge" } }], to: to(), hedge: { afterMs: 10 }, retries: { attempts: 2, perTryTimeoutMs: 300, retryNonIdempotent: true, maxBufferBytes: 1024 }, ...common },
      { name: "faulty", match: [{ path: { prefix: "/fault" } }], to: to(), fault: { abort: { percent: 30, status: 503 }, delay: { percent: 30, ms: 20 } }, ...common },
      { name: "mirrored", match: [{ path: { prefix: "/mirror" } }], to: to("main"), mirror: { subset: "shadow", percent: 50 }, ...common },
      { name: "query", match: [{ query: { v: { regex: "v[0-9]+" } } }], to: to("main"), ...common },
      { name: "default", to: to("main"), retries: { attempts: 1, maxBufferBytes: 4096 }, ...common },
    ],
    circuitBreaker: { maxConcurrent: 8, maxPending: 4 },
    outlierDetection: { consecutiveGatewayErrors: 5, baseEjectionMs: 200, maxEjectionMs: 1000 },
    retryBudget: { percent: 50, minRetriesPerSecond: 20 },
    // Zero trust runs first on every request: a deny rule, and a limit no batch reaches.
    access: { deny: [{ name: "no-secret", paths: [{ prefix: "/x/secret" }, { regex: "/re/[a-z]+/admin" }] }] },
    rateLimits: [{ name: "per-ip", per: ["client-ip", "caller"], requests: 100_000, periodMs: 1000 }],
  };
}

/** Stands for the mesh's real debug credential, minted once the mesh runs. */
const DEBUG_CREDENTIAL = "(debug credential)";
const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
const PATH_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%";
const token = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: min, maxLength: max });
// Visible ASCII and spaces/tabs inside: what a header value may hold on the wire.
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 64 }),
  fc.integer({ min: 0, max: 8192 }).map((n) => "v".repeat(n)),
  fc.constantFrom("1", "", "Bearer edgemesh-local-admin-token", "Bearer wrong", "0", "-1", "chunked", "productpage", "external", DEBUG_CREDENTIAL),
  // Shaped like a mesh token: three base64url parts, a forged signature.
  fc.tuple(token(1, 40), token(1, 200), token(86, 86)).map(([h, p, sig]) => `eyJ${h}.${p}.${sig}`.replace(/[^A-Za-z0-9_.-]/g, "A")),
);

const headerName = fc.oneof(
  { weight: 4, arbitrary: token(1, 24) },
  {
    weight: 4,
    arbitrary: fc.constantFrom("x-edgemesh-debug", "x-edgemesh-shadow", "X-EdgeMesh-Route", "authorization", "x-re", "cookie", "accept-encoding", "x-flaky-status", "x-flaky-delay-ms", "x-edgemesh-generated"),
  },
  // Identity claims are refused (401) before anything else runs: rarer, so the rest is still reached.
  { weight: 1, arbitrary: fc.constantFrom("x-edgemesh-token", "x-edgemesh-caller", "x-edgemesh-debug-token", "cf-connecting-ip") },
);

const flakyStatus = fc.constantFrom("200", "204", "304", "404", "429", "500", "502", "503", "599");

// Mostly methods the runtime passes on (it answers 501 itself to most others).
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE") },
  { weight: 1, arbitrary: token(1, 12).map((t) => t.toUpperCase()) },
);

const path = fc.tuple(
  fc.oneof({ weight: 8, arbitrary: fc.constantFrom("/", "/re/", "/hedge", "/fault", "/mirror", "/x") }, { weight: 1, arbitrary: fc.constantFrom("/__edgemesh/resilience", "/__edgemesh/") }),
  fc.string({ unit: fc.constantFrom(...PATH_CHARS), maxLength: 300 }),
  fc.option(fc.string({ unit: fc.constantFrom(...PATH_CHARS, "?", "="), maxLength: 100 }).map((q) => `?v=v${q.length}&${q}`), { nil: "" }),
).map(([prefix, rest, query]) => prefix + rest.replace(/%(?![0-9A-Fa-f]{2})/g, "%25") + query);

/** When the client goes away: never, before its body is sent, halfway through it, or halfway through the answer. */
const disconnect = fc.constantFrom("none", "none", "none", "before-body", "mid-body", "mid-response");

const requestCase = fc.record({
  method,
  path,
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 }),
  flakyStatus: fc.option(flakyStatus, { nil: undefined }),
  // Beyond the per-try timeout (300 ms) and the route's (800 ms) too.
  flakyDelayMs: fc.option(fc.constantFrom(0, 20, 400, 1200), { nil: undefined }),
  body: fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.integer({ min: 0, max: 100_000 }).map((n) => "b".repeat(n))), { nil: undefined }),
  chunked: fc.boolean(),
  disconnect,
});

type Case = typeof requestCase extends fc.Arbitrary<infer T> ? T : never;

interface Outcome {
  status: number;
  head: string;
}

/**
 * Whether the whole response is in: the runtime may keep the connection open (e.g. when it was
 * answered before its request body was read), so the client cannot wait for it to close.
 */
function responseComplete(method: string, head: string, body: string): boolean {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  if (method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200)) return true;
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length) return Buffer.byteLength(body, "latin1") >= Number(length[1]);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return body.endsWith("0\r\n\r\n");
  return false;
}

/** Sends one case over a raw socket; answers the status line and headers it got (status 0: none). */
function send(c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(Number(direct.port), direct.hostname);
    let received = "";
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const head = received.split("\r\n\r\n")[0] ?? "";
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head });
    };
    // Every route answers (or gives up) within its deadline; a stalled or idle body within the idle timeout.
    const timer = setTimeout(finish, ROUTE_TIMEOUT_MS + STREAM_IDLE_MS + 3000);
    socket.on("error", finish);
    socket.on("close", finish);
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      const end = received.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (c.disconnect === "mid-response" || responseComplete(c.method, received.slice(0, end), received.slice(end + 4))) finish();
    });
    socket.on("connect", () => {
      const lines = [`${c.method} ${c.path} HTTP/1.1`, `host: ${direct.host}`, "connection: close"];
      for (const [name, value] of c.headers) {
        // Framing is the test's job, not the case's.
        if (/^(content-length|transfer-encoding|host|connection)$/i.test(name)) continue;
        lines.push(`${name}: ${value === DEBUG_CREDENTIAL ? m.debugHeaders["x-edgemesh-debug-token"] : value}`);
      }
      if (c.flakyStatus) lines.push(`x-flaky-status: ${c.flakyStatus}`);
      if (c.flakyDelayMs !== undefined) lines.push(`x-flaky-delay-ms: ${c.flakyDelayMs}`);
      const body = c.body === undefined ? undefined : Buffer.from(c.body, "latin1");
      if (body) lines.push(c.chunked ? "transfer-encoding: chunked" : `content-length: ${body.length}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      if (c.disconnect === "before-body") return finish();
      if (!body) return;
      const framed = c.chunked ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]) : body;
      if (c.disconnect === "mid-body") {
        socket.write(framed.subarray(0, Math.floor(framed.length / 2)));
        setTimeout(finish, 20);
        return;
      }
      socket.write(framed);
    });
  });
}

describe("the sidecar under random requests and disconnects", () => {
  it(`never fails internally and leaves nothing held (${RUNS} batches; EDGEMESH_FUZZ_SIDECAR_RUNS for more)`, async () => {
    await m.apply(policy());
    // Some instances misbehave throughout: slow, failing a share, resetting.
    await m.configure("api-a", { failPercent: 20, failStatus: 503 });
    await m.configure("api-b", { delayMs: 15 });
    await m.configure("api-c", { mode: "reset" });
    let requests = 0;
    const statuses: Record<number, number> = {};
    await fc.assert(
      fc.asyncProperty(fc.array(requestCase, { minLength: 1, maxLength: 4 }), async (batch) => {
        const outcomes = await Promise.all(batch.map(send));
        for (const [i, o] of outcomes.entries()) {
          requests++;
          statuses[o.status] = (statuses[o.status] ?? 0) + 1;
          const internal = o.status === 500 && /x-edgemesh-error: sidecar-internal-error/i.test(o.head);
          if (internal) throw new Error(`sidecar-internal-error for ${JSON.stringify({ ...batch[i], body: batch[i]!.body?.slice(0, 80) })}:\n${o.head}`);
        }
      }),
      { numRuns: RUNS },
    );
    console.log(`sidecar fuzz: ${RUNS} batches, ${requests} requests; statuses ${JSON.stringify(statuses)}`);

    // Whatever vanished clients held expires by the route deadline or the idle timeout, plus grace.
    const r = await expectNothingHeld(m, ROUTE_TIMEOUT_MS + STREAM_IDLE_MS + LEASE_GRACE_MS + 8000);
    console.log(`sidecar fuzz: afterwards breaker ${JSON.stringify(r.breaker)}, reclaimed tries ${r.reclaimedTries}, internal errors ${r.internalErrors}`);
    // Also those no client saw (it had gone away): the sidecar counts every one.
    expect(r.internalErrors).toBe(0);
  }, 600_000);
});
