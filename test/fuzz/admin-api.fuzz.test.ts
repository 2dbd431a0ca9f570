// Property-based fuzzing of the admin API through the real runtime (fast-check): random methods,
// paths (the routes with random parameters, and random paths), headers and bodies (random JSON,
// mutated policies and registrations, bytes that are no JSON), with and without the token.
// For every call: never a 5xx, and stored state (policy versions, registry, event log) changes
// only when the call was a write that succeeded. Changes that come with time (a lease lapsing, a
// health check of an endpoint a fuzzed policy added) are told apart by their events.
// EDGEMESH_FUZZ_ADMIN_RUNS sets the number of calls (default 400).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_WORKER, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";

const RUNS = Math.max(1, Number(process.env.EDGEMESH_FUZZ_ADMIN_RUNS ?? 400));
const TOPOLOGY: Topology = { mesh: "fz", services: { web: [{ id: "web-1", binding: "WEB_1", script: "test-health-target" }] } };
const VALID = {
  mesh: "fz",
  services: {
    web: { endpoints: [{ id: "web-1", binding: "WEB_1", labels: { version: "v1" } }], subsets: { v1: { version: "v1" } }, routes: [{ name: "all", to: [{ subset: "v1" }] }] },
    api: { endpoints: [{ id: "api-1", url: "https://api.example" }] },
  },
};

let mesh: RunningMesh;
let worker: { fetch(url: string, init?: RequestInit): Promise<Response> };

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY });
  worker = (await mesh.mf.getWorker(CONTROL_WORKER)) as unknown as typeof worker;
  expect((await mesh.applyPolicy(VALID)).status).toBe(201);
});
afterAll(async () => mesh?.dispose());

const auth = () => ({ authorization: `Bearer ${mesh.adminToken}` });

async function read(path: string): Promise<any> {
  const res = await worker.fetch(`http://control.test${path}`, { headers: auth() });
  return res.json();
}

/** What must not change unless a write succeeded. */
async function fingerprint(): Promise<{ text: string; latestSeq: number }> {
  const [history, registry, events] = await Promise.all([read("/v1/policy/history?limit=1000"), read("/v1/registry"), read("/v1/events?limit=1")]);
  const endpoints = Object.fromEntries(Object.entries(registry.services as Record<string, any[]>).map(([s, list]) => [s, list.map((e) => `${e.id}:${e.binding ?? e.url}:${e.weight}`)]));
  return { text: JSON.stringify({ history, endpoints, conflicts: registry.conflicts.length, latestSeq: events.latestSeq }), latestSeq: events.latestSeq };
}

/** Events that time, not a call, produces. */
const TIMED_EVENTS = new Set(["endpoint.expired", "health.changed"]);

const segment = fc.oneof(
  fc.constantFrom("web", "api", "ghost", "web-1", "x", "1", "0", "-1", "99999999999999999999", "%E0%A4%A", "%2e%2e", "..", "Bad_Name", "a".repeat(300), ""),
  fc.string({ maxLength: 20 }).map((s) => encodeURIComponent(s)),
);
const queryValue = fc.oneof(
  fc.constantFrom("1", "0", "-5", "1.5", "abc", "", "1e309", "9007199254740993", "%zz", "policy.applied,nope", "health.changed", "web"),
  fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
);
const path = fc.oneof(
  fc.tuple(segment).map(([s]) => `/v1/policy/${s}`),
  fc.tuple(queryValue).map(([q]) => `/v1/policy/history?limit=${q}`),
  fc.tuple(queryValue, queryValue).map(([a, b]) => `/v1/policy/diff?from=${a}&to=${b}`),
  fc.tuple(queryValue).map(([q]) => `/v1/policy/rollback?to=${q}`),
  fc.constantFrom("/v1/policy", "/v1/policy/validate", "/v1/policy/rollback", "/v1/registry", "/v1/registry/conflicts", "/v1/sidecars", "/v1/schema", "/v1/debug/fault", "/healthz", "/", "/v2/policy"),
  fc.tuple(segment).map(([s]) => `/v1/registry/${s}`),
  fc.tuple(segment, segment).map(([s, id]) => `/v1/registry/${s}/${id}`),
  fc.tuple(segment, segment).map(([s, id]) => `/v1/registry/${s}/${id}/heartbeat`),
  fc.tuple(queryValue).map(([q]) => `/v1/health?service=${q}`),
  fc.tuple(queryValue, queryValue).map(([l, e]) => `/v1/health/history?limit=${l}&endpoint=${e}`),
  fc.tuple(queryValue, queryValue, queryValue).map(([s, l, t]) => `/v1/events?since=${s}&limit=${l}&types=${t}`),
  fc.tuple(queryValue, queryValue).map(([s, t]) => `/v1/watch?since=${s}&types=${t}`),
  fc.tuple(queryValue).map(([g]) => `/v1/sync?generation=${g}`),
  fc.tuple(segment).map(([s]) => `/v1/snapshot/${s}`),
  fc.tuple(queryValue).map(([m]) => `/v1/policy?mesh=${m}`),
  fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
);

const mutatedPolicy = fc.tuple(fc.constantFrom("timeout", "drop-api", "unknown-field", "bad-subset", "other-mesh", "same"), fc.integer({ min: 1, max: 60_000 })).map(([kind, n]) => {
  const doc: any = structuredClone(VALID);
  if (kind === "timeout") doc.services.web.routes[0].timeoutMs = n;
  if (kind === "drop-api") delete doc.services.api;
  if (kind === "unknown-field") doc.services.web.surprise = n;
  if (kind === "bad-subset") doc.services.web.routes[0].to[0].subset = "v9";
  if (kind === "other-mesh") doc.mesh = "elsewhere";
  return JSON.stringify(doc);
});
const registration = fc.record({
  id: fc.oneof(fc.constantFrom("r-1", "r-2", "web-1", "BAD"), fc.string({ maxLength: 10 })),
  url: fc.option(fc.constantFrom("https://r.example", "http://127.0.0.1:9/x", "not a url"), { nil: undefined }),
  binding: fc.option(fc.constantFrom("WEB_1", "lower"), { nil: undefined }),
  leaseTtlMs: fc.option(fc.oneof(fc.constantFrom(600_000, 1_000, 5), fc.integer()), { nil: undefined }),
  weight: fc.option(fc.integer({ min: -2, max: 2_000 }), { nil: undefined }),
}, { requiredKeys: [] }).map((r) => JSON.stringify(r));
const body = fc.oneof(
  fc.constant(undefined),
  mutatedPolicy,
  registration,
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"snapshot":"ok","delayMs":0}', '{"snapshot":"slow","delayMs":1.5}', '{"snapshot":"fail","delayMs":-1}', "{", "null", "[]", '"x"', "{}"),
  fc.uint8Array({ maxLength: 64 }),
  fc.string({ maxLength: 200 }),
);
const headers = fc.record({
  authorization: fc.oneof(fc.constant("valid"), fc.constantFrom("", "Bearer wrong", "Basic abc", "Bearer "), fc.string({ maxLength: 20 })),
  "content-type": fc.option(fc.constantFrom("application/json", "text/plain", "multipart/form-data; boundary=x", "application/json; charset=utf-16"), { nil: undefined }),
  "if-match": fc.option(fc.oneof(fc.constantFrom('"1"', "*", 'W/"2"', "abc", '"99999999999999999999"', ""), fc.string({ maxLength: 10 })), { nil: undefined }),
  "x-edgemesh-author": fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  "x-edgemesh-message": fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  // (Node's fetch refuses any other upgrade, and one on anything but GET.)
  upgrade: fc.option(fc.constant("websocket"), { nil: undefined }),
}, { requiredKeys: ["authorization"] });

/** Calls that are well formed and mostly succeed, so successful writes are fuzzed too. */
const wellFormed = fc.oneof(
  mutatedPolicy.map((b) => ["POST", "/v1/policy", b] as const),
  fc.constantFrom("r-1", "r-2").map((id) => ["POST", "/v1/registry/web", JSON.stringify({ id, url: `https://${id}.example`, leaseTtlMs: 600_000 })] as const),
  fc.constantFrom("r-1", "r-2").map((id) => ["POST", `/v1/registry/web/${id}/heartbeat`, "{}"] as const),
  fc.constantFrom("r-1", "r-2").map((id) => ["DELETE", `/v1/registry/web/${id}`, undefined] as const),
  fc.constant(["POST", "/v1/policy/rollback", undefined] as const),
  fc.constant(["PUT", "/v1/debug/fault", '{"snapshot":"ok","delayMs":0}'] as const),
).map(([method, target, payload]) => [method, target, { authorization: "valid", "content-type": "application/json" }, payload] as [string, string, { authorization: string } & Record<string, string | undefined>, string | undefined]);

const WRITES: [string, RegExp][] = [
  ["POST", /^\/v1\/policy(\?|$)/],
  ["POST", /^\/v1\/policy\/rollback(\?|$)/],
  ["POST", /^\/v1\/registry\/[^/]+(\?|$)/],
  ["POST", /^\/v1\/registry\/[^/]+\/[^/]+\/heartbeat(\?|$)/],
  ["DELETE", /^\/v1\/registry\/[^/]+\/[^/]+(\?|$)/],
  ["PUT", /^\/v1\/debug\/fault(\?|$)/],
];

describe("the admin API under random calls", () => {
  it("never answers 5xx and changes stored state only on a successful write", async () => {
    let calls = 0;
    let writes = 0;
    let before = await fingerprint();
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: fc.tuple(fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"), path, headers, body) }, { weight: 1, arbitrary: wellFormed }), async ([method, target, h, payload]) => {
        calls++;
        const sent: Record<string, string | undefined> = { ...(h as Record<string, string | undefined>), authorization: h.authorization === "valid" ? auth().authorization : h.authorization };
        if (method !== "GET") delete sent.upgrade;
        // One client per call: wrong tokens must not lock the valid calls out (brute-force slowing
        // is the security suite's to test), so every call is still looked at.
        sent["cf-connecting-ip"] = `10.${(calls >> 16) & 255}.${(calls >> 8) & 255}.${calls & 255}`;
        const init: RequestInit = { method, headers: Object.fromEntries(Object.entries(sent).filter(([, v]) => v !== undefined)) as Record<string, string> };
        if (payload !== undefined && method !== "GET" && method !== "HEAD") init.body = payload;
        const res = (await worker.fetch(`http://control.test${target}`, init)) as Response & { webSocket?: WebSocket & { accept(): void } };
        if (res.webSocket) {
          res.webSocket.accept();
          res.webSocket.close(1000, "fuzz");
        }
        await res.arrayBuffer();
        expect(res.status, `${method} ${target} answered ${res.status}`).toBeLessThan(500);
        const after = await fingerprint();
        if (after.text === before.text) return;
        const wrote = res.status >= 200 && res.status < 300 && WRITES.some(([m, p]) => m === method && p.test(target));
        if (wrote) {
          writes++;
        } else {
          const events = (await read(`/v1/events?since=${before.latestSeq}&limit=10000`)).events as { type: string }[];
          const unexplained = events.filter((e) => !TIMED_EVENTS.has(e.type));
          expect(unexplained, `${method} ${target} (${res.status}) changed stored state`).toEqual([]);
          expect(events.length, `${method} ${target} (${res.status}) changed stored state without an event`).toBeGreaterThan(0);
        }
        before = after;
      }),
      { numRuns: RUNS },
    );
    console.log(`admin API fuzzing: ${calls} calls, ${writes} of them successful writes`);
    expect(calls).toBe(RUNS);
  }, 600_000);
});
