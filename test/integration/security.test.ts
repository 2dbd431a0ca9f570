// The security suite: each attack on zero trust performed against the real local mesh (workerd via
// Miniflare, the control Worker, MeshControl and the sidecars as `npm start` runs them), asserting
// that it is refused, how, and that the refusal is counted. Forged credentials are made here in
// Node with the mesh's own key set (RunningMesh.tokenKeys) or with keys the mesh does not know.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMeshKey, issueToken, prepareSigningKeys, publicKeySet, type MeshKeyJwk, type MeshKeySet } from "../../auth/mesh-token.ts";
import { verifyMeshRequest } from "../../auth/verify.ts";
import { sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";
import { eventually } from "../control-helpers.ts";
import { nodeServer, sidecar, type Fetch } from "../helpers.ts";

const MESH = "sec";
const SHARED_PERIOD_S = 10;

const TOPOLOGY: Topology = {
  mesh: MESH,
  services: {
    api: [{ id: "api-1", binding: "API_1", script: "test-echo" }],
    vault: [{ id: "vault-1", binding: "VAULT_1", script: "test-echo" }],
  },
  extraWorkers: [
    // Workers of the mesh: their bindings' props name them to the sidecars they call.
    { name: "web-to-api", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName("api"), props: { caller: "web" } } } },
    { name: "web-to-vault", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName("vault"), props: { caller: "web" } } } },
  ],
};

function policy(originUrl: string) {
  return {
    mesh: MESH,
    access: { identities: ["nightly"] },
    services: {
      api: {
        endpoints: [
          { id: "api-1", binding: "API_1", labels: { kind: "worker" } },
          { id: "origin-1", url: originUrl, labels: { kind: "origin" } },
        ],
        subsets: { worker: { kind: "worker" }, origin: { kind: "origin" } },
        routes: [
          { name: "to-origin", match: [{ path: { prefix: "/origin/" } }], to: [{ subset: "origin" }] },
          { name: "limited", match: [{ path: { prefix: "/limited" } }], to: [{ subset: "worker" }] },
          { name: "shared", match: [{ path: { prefix: "/shared" } }], to: [{ subset: "worker" }] },
          { name: "default", to: [{ subset: "worker" }] },
        ],
        healthCheck: { path: "/healthz", intervalMs: 500, timeoutMs: 400 },
        access: {
          deny: [
            { name: "no-admin-from-outside", from: ["external"], paths: [{ prefix: "/admin" }] },
            { name: "web-cannot-delete", from: ["web"], methods: ["DELETE"] },
          ],
        },
        rateLimits: [
          { name: "per-caller", routes: ["limited"], per: ["caller"], requests: 3, periodMs: 60_000 },
          // Generous per isolate: the binding, counting across isolates, is what refuses.
          { name: "across-isolates", routes: ["shared"], requests: 2, periodMs: SHARED_PERIOD_S * 1000, burst: 1000, shared: { binding: "RATE_LIMIT_API" } },
        ],
      },
      // Strict, and no allow rule: nobody may call it.
      vault: { endpoints: [{ id: "vault-1", binding: "VAULT_1" }], access: { mode: "strict" } },
      web: { endpoints: [{ id: "web-1", url: originUrl }] },
    },
  };
}

let mesh: RunningMesh;
let api: Fetch;
let vault: Fetch;
let origin: Awaited<ReturnType<typeof nodeServer>>;
/** What the origin endpoint received last. */
let originSaw: { headers: Record<string, string | string[] | undefined> } | undefined;

beforeAll(async () => {
  origin = await nodeServer((req, res) => {
    // Health checks reach the origin too; only the mesh's traffic is of interest.
    if (req.url !== "/healthz") originSaw = { headers: req.headers };
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ origin: true, url: req.url }));
  });
  const doc = policy(origin.url);
  // The policy tells the local runner which rate limiting bindings the sidecars need.
  mesh = await startMesh({ topology: TOPOLOGY, policy: doc, sidecarVars: { TELEMETRY_FLUSH_MS: "100" } });
  expect((await mesh.applyPolicy(doc, 0)).status).toBe(201);
  api = await sidecar(mesh, "api");
  vault = await sidecar(mesh, "vault");
});

afterAll(async () => {
  await mesh?.dispose();
  await origin?.close();
});

/** A token signed with `keys` (default: the mesh's own), as an issuer of this mesh would. */
async function token(claims: { caller: string; callee: string; ttlMs?: number; nowMs?: number; mesh?: string; forwarded?: boolean }, keys: MeshKeySet = mesh.tokenKeys): Promise<string> {
  return issueToken(await prepareSigningKeys(keys), {
    mesh: claims.mesh ?? MESH, caller: claims.caller, callee: claims.callee, ttlMs: claims.ttlMs ?? 60_000, nowMs: claims.nowMs, forwarded: claims.forwarded,
  });
}

/** A request from outside the mesh (no binding props) to the api sidecar. */
async function fromOutside(path: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await api(path, { ...init, headers });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body };
}

/** Requests from a Worker of the mesh (binding props name it "web"), counted by a response header. */
async function fromWeb(client: "web-to-api" | "web-to-vault", path: string, opts: { method?: string; requests?: number; tally?: string } = {}): Promise<{ statuses: Record<string, number>; tally: Record<string, number> }> {
  const q = new URLSearchParams({ requests: String(opts.requests ?? 1), concurrency: "1", path, method: opts.method ?? "GET", tally: opts.tally ?? "x-edgemesh-denied-by" });
  const res = await (await mesh.mf.getWorker(client)).fetch(`http://client/run?${q}`);
  return (await res.json()) as { statuses: Record<string, number>; tally: Record<string, number> };
}

/** Telemetry rows of the api/vault sidecars by outcome, reason and source (the local store's SQL). */
async function outcomes(where: string): Promise<{ source: string; outcome: string; reason: string; n: number }[]> {
  const res = await mesh.admin("/v1/analytics/sql", {
    method: "POST",
    body: `SELECT blob2 AS source, blob7 AS outcome, blob10 AS reason, sum(_sample_interval * double1) AS n FROM edgemesh_requests WHERE ${where} GROUP BY source, outcome, reason FORMAT JSON`,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { source: string; outcome: string; reason: string; n: number }[] }).data.map((r) => ({ ...r, n: Number(r.n) }));
}

describe("identity: attacks on who is calling", () => {
  it("a valid mesh token names its caller; the sidecar takes the token and claim off before forwarding", async () => {
    const res = await fromOutside("/books/1", { "x-edgemesh-token": await token({ caller: "nightly", callee: "api" }), "x-edgemesh-caller": "nightly", ...(await mesh.debugHeaders()) });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgemesh-caller")).toBe("nightly");
    expect(Object.keys(res.body.headers).filter((h) => h.startsWith("x-edgemesh-"))).toEqual([]);
  });

  it("spoofed identity header from outside: 401, and the service never sees the request", async () => {
    const res = await fromOutside("/books/1", { "x-edgemesh-caller": "web" });
    expect(res.status).toBe(401);
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("claim-without-token");
    expect(res.body).toMatchObject({ error: "unauthenticated", reason: "claim-without-token" });
    expect(res.body.endpoint).toBeUndefined();
    // A claim that contradicts the token is no better.
    const mismatch = await fromOutside("/books/1", { "x-edgemesh-token": await token({ caller: "nightly", callee: "api" }), "x-edgemesh-caller": "web" });
    expect(mismatch.headers.get("x-edgemesh-unauthenticated")).toBe("claim-mismatch");
  });

  it("a token replayed to another service: 401 wrong-callee", async () => {
    const forVault = await token({ caller: "nightly", callee: "vault" });
    const res = await fromOutside("/books/1", { "x-edgemesh-token": forVault });
    expect(res.status).toBe(401);
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("wrong-callee");
  });

  it("a token of another mesh: 401 wrong-mesh", async () => {
    const res = await fromOutside("/books/1", { "x-edgemesh-token": await token({ caller: "nightly", callee: "api", mesh: "elsewhere" }) });
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("wrong-mesh");
  });

  it("an expired token: 401 expired (beyond the 30 s clock skew)", async () => {
    const expired = await token({ caller: "nightly", callee: "api", ttlMs: 60_000, nowMs: Date.now() - 5 * 60_000 });
    const res = await fromOutside("/books/1", { "x-edgemesh-token": expired });
    expect(res.status).toBe(401);
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("expired");
  });

  it("a forged signature: someone else's key under the mesh's key id, and an altered payload: 401 bad-signature", async () => {
    const kid = mesh.tokenKeys.keys[0]!.kid;
    const impostor = { keys: [await generateMeshKey({ kid })] };
    const forged = await fromOutside("/books/1", { "x-edgemesh-token": await token({ caller: "nightly", callee: "api" }, impostor) });
    expect(forged.status).toBe(401);
    expect(forged.headers.get("x-edgemesh-unauthenticated")).toBe("bad-signature");
    // The caller rewritten in a genuine token (same length, so the signature still parses).
    const genuine = await token({ caller: "nightly", callee: "api" });
    const [header, payload, signature] = genuine.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const altered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: "nightlx" })).toString("base64url")}.${signature}`;
    expect((await fromOutside("/books/1", { "x-edgemesh-token": altered })).headers.get("x-edgemesh-unauthenticated")).toBe("bad-signature");
  });

  it("a token an origin received from a sidecar, replayed into the mesh: 401 forwarded-token", async () => {
    await fromOutside("/origin/x");
    const received = originSaw!.headers["x-edgemesh-token"] as string;
    expect(received).toBeTruthy();
    const res = await fromOutside("/books/1", { "x-edgemesh-token": received });
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("forwarded-token");
  });

  it("a debug credential used as an identity: 401 debug-token", async () => {
    const debugToken = (await mesh.debugHeaders())["x-edgemesh-debug-token"]!;
    const res = await fromOutside("/books/1", { "x-edgemesh-token": debugToken });
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("debug-token");
  });

  it("refusals are counted in telemetry as unauthenticated, with the reason", async () => {
    const rows = await eventually(() => outcomes("blob3 = 'api' AND blob7 = 'unauthenticated'"), (r) => r.some((x) => x.reason === "wrong-callee") && r.some((x) => x.reason === "claim-without-token"), 10_000, 200);
    for (const row of rows) expect(row.source).toBe("external");
  });
});

describe("mesh tokens towards origins", () => {
  it("a try to a URL endpoint carries the caller's token, which the origin verifies with the public keys alone", async () => {
    const publicKeys = JSON.stringify(publicKeySet(mesh.tokenKeys));
    const verify = async () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(originSaw!.headers)) if (typeof v === "string") headers.set(k, v);
      return verifyMeshRequest(new Request("http://origin/", { headers }), { publicKeys, audience: "api", mesh: MESH, forwarded: "require" });
    };
    expect((await fromOutside("/origin/a")).status).toBe(200);
    expect(await verify()).toMatchObject({ ok: true, claims: { sub: "external", aud: "api", iss: MESH, fwd: true } });
    expect((await fromWeb("web-to-api", "/origin/b")).statuses).toEqual({ 200: 1 });
    expect(await verify()).toMatchObject({ ok: true, claims: { sub: "web", aud: "api", fwd: true } });
    // Binding endpoints know their caller from the binding: no token is attached for them.
    const toWorker = await fromOutside("/books/1");
    expect(toWorker.body.headers["x-edgemesh-token"]).toBeUndefined();
  });
});

describe("keys and rotation", () => {
  let rotated: RunningMesh;
  let keyA: MeshKeyJwk;
  let keyB: MeshKeyJwk;
  let keyC: MeshKeyJwk;

  beforeAll(async () => {
    // Mid-rotation sidecars: B signs, A is still accepted (the overlap), C is retired.
    [keyA, keyB, keyC] = await Promise.all([generateMeshKey({ kid: "a" }), generateMeshKey({ kid: "b" }), generateMeshKey({ kid: "c" })]);
    const sidecarKeys: MeshKeySet = { keys: [{ ...keyB, status: "signing" }, { ...keyA, status: "verify" }, { ...keyC, status: "retired" }] };
    rotated = await startMesh({
      topology: { mesh: MESH, services: { api: TOPOLOGY.services.api! } },
      sidecarVars: { EDGEMESH_TOKEN_KEYS: JSON.stringify(sidecarKeys) },
    });
    expect((await rotated.applyPolicy({ mesh: MESH, access: { identities: ["nightly"] }, services: { api: { endpoints: [{ id: "api-1", binding: "API_1" }] } } }, 0)).status).toBe(201);
  });
  afterAll(() => rotated?.dispose());

  const call = async (key: MeshKeyJwk) => {
    const signed = await token({ caller: "nightly", callee: "api" }, { keys: [{ ...key, status: "signing" }] });
    const res = await (await sidecar(rotated, "api"))("/x", { headers: { "x-edgemesh-token": signed } });
    await res.arrayBuffer();
    return { status: res.status, reason: res.headers.get("x-edgemesh-unauthenticated") };
  };

  it("a rotated key is still accepted during the overlap, and the new one too", async () => {
    expect(await call(keyA)).toEqual({ status: 200, reason: null });
    expect(await call(keyB)).toEqual({ status: 200, reason: null });
  });

  it("a retired key is refused by name; a key nobody knows as unknown", async () => {
    expect(await call(keyC)).toEqual({ status: 401, reason: "retired-key" });
    expect(await call(await generateMeshKey({ kid: "d" }))).toEqual({ status: 401, reason: "unknown-key" });
  });
});

describe("access policy", () => {
  it("a denied caller gets 403 naming the rule, and the refusal is counted as denied", async () => {
    const refused = await fromWeb("web-to-api", "/books/1", { method: "DELETE", requests: 3 });
    expect(refused).toMatchObject({ statuses: { 403: 3 }, tally: { "api/web-cannot-delete": 3 } });
    // The same caller may read, and an outsider may not reach /admin, which web may.
    expect((await fromWeb("web-to-api", "/admin/keys")).statuses).toEqual({ 200: 1 });
    const outsider = await fromOutside("/admin/keys");
    expect(outsider.status).toBe(403);
    expect(outsider.headers.get("x-edgemesh-denied-by")).toBe("api/no-admin-from-outside");
    expect(outsider.body).toEqual({ error: "access-denied", rule: "api/no-admin-from-outside", caller: "external" });
    // Encodings of the path do not slip past the rule.
    for (const path of ["/%61dmin/keys", "http://api.test//admin/keys", "/books/../admin/keys"]) expect((await fromOutside(path)).status, path).toBe(403);
    const rows = await eventually(() => outcomes("blob3 = 'api' AND blob7 = 'denied'"), (r) => r.some((x) => x.source === "web" && x.n >= 3), 10_000, 200);
    expect(rows).toContainEqual({ source: "web", outcome: "denied", reason: "api/web-cannot-delete", n: 3 });
  });

  it("a strict mesh with no allow rule refuses everyone: outsiders, Workers of the mesh and token holders", async () => {
    const outsider = await vault("/secret");
    expect(outsider.status).toBe(403);
    expect(outsider.headers.get("x-edgemesh-denied-by")).toBe("vault/(default-deny)");
    expect(await fromWeb("web-to-vault", "/secret")).toMatchObject({ statuses: { 403: 1 }, tally: { "vault/(default-deny)": 1 } });
    const holder = await vault("/secret", { headers: { "x-edgemesh-token": await token({ caller: "nightly", callee: "vault" }) } });
    expect(holder.status).toBe(403);
    expect(await holder.json()).toMatchObject({ caller: "nightly", rule: "vault/(default-deny)" });
  });
});

describe("rate limits", () => {
  it("per caller: 429 with Retry-After past the limit, other callers unaffected, counted as rate-limited", async () => {
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof fromOutside>> | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await fromOutside("/limited");
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const retryAfter = Number(limited!.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(limited!.headers.get("x-edgemesh-rate-limited")).toBe("api/per-caller");
    expect(limited!.body).toMatchObject({ error: "rate-limited", limit: "api/per-caller", source: "local" });
    expect((await fromWeb("web-to-api", "/limited", { requests: 3 })).statuses).toEqual({ 200: 3 });
    const rows = await eventually(() => outcomes("blob3 = 'api' AND blob7 = 'rate-limited'"), (r) => r.some((x) => x.n >= 2), 10_000, 200);
    expect(rows).toEqual([{ source: "external", outcome: "rate-limited", reason: "api/per-caller", n: 2 }]);
  });

  it("shared: the rate limiting binding the local runner wired from the policy counts across isolates", async () => {
    // Miniflare's binding counts in fixed windows aligned to the period: start early in one.
    const intoWindowMs = Date.now() % (SHARED_PERIOD_S * 1000);
    if (intoWindowMs > 4_000) await new Promise((r) => setTimeout(r, SHARED_PERIOD_S * 1000 - intoWindowMs + 50));
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof fromOutside>> | undefined;
    for (let i = 0; i < 3; i++) {
      const res = await fromOutside("/shared");
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(limited!.headers.get("retry-after")).toBe(String(SHARED_PERIOD_S));
    expect(limited!.body).toMatchObject({ limit: "api/across-isolates", source: "shared" });
    expect((await mesh.sidecarView("api", "security")).rateLimits).toMatchObject({ refusedShared: 1, sharedErrors: 0 });
  });
});

describe("the sidecars' credentials and entrypoint", () => {
  it("a sidecar holds no admin credential: its env has the token keys and nothing that can change policy", async () => {
    const env = await mesh.mf.getBindings(sidecarName("api"));
    expect(Object.keys(env)).not.toContain("EDGEMESH_ADMIN_TOKEN");
    expect(Object.keys(env)).toContain("EDGEMESH_TOKEN_KEYS");
  });

  it("refuses its old /__edgemesh/* debug paths from outside, with or without the admin token, and forwards nothing", async () => {
    for (const path of ["status", "snapshot", "probe?binding=API_1&path=/", "telemetry"]) {
      const res = await fromOutside(`/__edgemesh/${path}`, { authorization: `Bearer ${mesh.adminToken}` });
      expect(res.status, path).toBe(404);
      expect(res.body.endpoint).toBeUndefined();
      expect(res.body.isolateId).toBeUndefined();
    }
  });

  it("the control plane's health probes of binding endpoints still work, through the entrypoint", async () => {
    const health = await eventually(
      async () => (await (await mesh.admin("/v1/health?service=api")).json()) as { endpoints: { endpointId: string; active: { state: string; checks: number; lastDetail: string | null } | null }[] },
      (h) => (h.endpoints.find((e) => e.endpointId === "api-1")?.active?.checks ?? 0) >= 2,
      10_000,
      100,
    );
    expect(health.endpoints.find((e) => e.endpointId === "api-1")!.active).toMatchObject({ state: "healthy" });
  });

  it("x-edgemesh-debug needs a debug credential, not the admin token", async () => {
    const withAdmin = await fromOutside("/books/1", { "x-edgemesh-debug": "1", authorization: `Bearer ${mesh.adminToken}` });
    expect(withAdmin.headers.get("x-edgemesh-route")).toBeNull();
    const withDebug = await fromOutside("/books/1", await mesh.debugHeaders());
    expect(withDebug.headers.get("x-edgemesh-route")).toBe("default");
  });
});

describe("admin credentials", () => {
  /** Calls the admin API with the given token (or none) as client `ip`. */
  const adminAs = (tokenValue: string | undefined, path: string, init: RequestInit & { ip?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (tokenValue !== undefined) headers.set("authorization", `Bearer ${tokenValue}`);
    headers.set("cf-connecting-ip", init.ip ?? "192.0.2.10");
    return fetch(new URL(path, mesh.controlUrl), { ...init, headers });
  };
  const create = async (name: string, scope: string) => {
    const res = await mesh.admin("/v1/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, scope }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { token: string }).token;
  };

  it("admin calls without a token: 401, for reads and writes", async () => {
    for (const [method, path] of [["GET", "/v1/policy"], ["POST", "/v1/policy"], ["GET", "/v1/tokens"], ["GET", "/metrics"], ["GET", "/v1/sidecars/api/debug/status"]] as const) {
      const res = await adminAs(undefined, path, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="edgemesh"');
    }
  });

  it("a read-only token reads, and is refused every write with 403, recorded in the audit log", async () => {
    const reader = await create("reader", "read");
    expect((await adminAs(reader, "/v1/policy")).status).toBe(200);
    expect((await adminAs(reader, "/v1/sidecars/api/debug/status")).status).toBe(200);
    const write = await adminAs(reader, "/v1/policy", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(policy(origin.url)) });
    expect(write.status).toBe(403);
    expect(await write.json()).toMatchObject({ error: "insufficient-scope", needed: "write", held: "read" });
    expect((await adminAs(reader, "/v1/registry/api/api-9", { method: "DELETE" })).status).toBe(403);
    expect((await adminAs(reader, "/v1/tokens", { method: "POST", body: "{}" })).status).toBe(403);
    expect((await adminAs(reader, "/v1/mesh-tokens", { method: "POST", body: "{}" })).status).toBe(403);
    const audit = (await (await mesh.admin("/v1/audit?token=reader")).json()) as { records: { action: string; outcome: string; detail: Record<string, unknown> }[] };
    expect(audit.records.map((r) => `${r.action} ${r.outcome}`)).toEqual(["mesh-tokens.issue refused", "tokens.create refused", "registry.deregister refused", "policy.apply refused"]);
  });

  it("the author of a policy version is the token that applied it, never a header", async () => {
    const writer = await create("ci-deploy", "write");
    const applied = await adminAs(writer, "/v1/policy", { method: "POST", headers: { "content-type": "application/json", "x-edgemesh-author": "someone-else" }, body: JSON.stringify(policy(origin.url)) });
    expect(applied.status).toBe(201);
    const version = ((await applied.json()) as { version: number }).version;
    const history = (await (await mesh.admin("/v1/policy/history?limit=1")).json()) as { versions: { version: number; author: string }[] };
    expect(history.versions[0]).toMatchObject({ version, author: "ci-deploy" });
    const audit = (await (await mesh.admin("/v1/audit?action=policy.apply&limit=1")).json()) as { records: unknown[] };
    expect(audit.records[0]).toMatchObject({ tokenName: "ci-deploy", tokenScope: "write", action: "policy.apply", target: String(version), outcome: "ok", clientIp: "192.0.2.10", detail: { version } });
    // A write token cannot mint credentials.
    expect((await adminAs(writer, "/v1/tokens", { method: "POST", body: JSON.stringify({ name: "x", scope: "admin" }) })).status).toBe(403);
  });

  it("a revoked token stops working with the next call", async () => {
    const doomed = await create("doomed", "read");
    expect((await adminAs(doomed, "/v1/policy")).status).toBe(200);
    expect((await mesh.admin("/v1/tokens/doomed", { method: "DELETE" })).status).toBe(200);
    expect((await adminAs(doomed, "/v1/policy")).status).toBe(401);
    const listed = (await (await mesh.admin("/v1/tokens")).json()) as { tokens: { name: string }[] };
    expect(listed.tokens.map((t) => t.name)).not.toContain("doomed");
    // Token values never reach the audit log or the list.
    const everything = JSON.stringify(await (await mesh.admin("/v1/audit?limit=1000")).json()) + JSON.stringify(listed);
    expect(everything).not.toContain(doomed);
    expect(everything).not.toContain("edgemesh_");
  });

  it("brute force: after 5 failures a client is slowed down (429 + Retry-After, even with the right token); others are not", async () => {
    const attacker = "198.51.100.66";
    for (let i = 0; i < 6; i++) expect((await adminAs(`edgemesh_guess${i}`, "/v1/policy", { ip: attacker })).status).toBe(401);
    const locked = await adminAs(mesh.adminToken, "/v1/policy", { ip: attacker });
    expect(locked.status).toBe(429);
    const retryAfter = Number(locked.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect((await adminAs(mesh.adminToken, "/v1/policy", { ip: "198.51.100.67" })).status).toBe(200);
    // Missing tokens guess nothing and are not counted.
    for (let i = 0; i < 8; i++) expect((await adminAs(undefined, "/v1/policy", { ip: "198.51.100.68" })).status).toBe(401);
    expect((await adminAs(mesh.adminToken, "/v1/policy", { ip: "198.51.100.68" })).status).toBe(200);
    // After the lockout, the right token works again and clears the client's failures.
    await new Promise((r) => setTimeout(r, retryAfter * 1000 + 100));
    expect((await adminAs(mesh.adminToken, "/v1/policy", { ip: attacker })).status).toBe(200);
    expect((await adminAs("edgemesh_wrong", "/v1/policy", { ip: attacker })).status).toBe(401);
  });

  it("mesh tokens are minted with scope admin, and the sidecar accepts them", async () => {
    const minted = await mesh.admin("/v1/mesh-tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ caller: "nightly", callee: "api", ttlMs: 300_000 }) });
    expect(minted.status).toBe(201);
    const { token: value, claims } = (await minted.json()) as { token: string; claims: Record<string, unknown> };
    expect(claims).toMatchObject({ iss: MESH, sub: "nightly", aud: "api" });
    expect((await fromOutside("/books/1", { "x-edgemesh-token": value })).status).toBe(200);
    const audit = (await (await mesh.admin("/v1/audit?action=mesh-tokens.issue&token=bootstrap&limit=1")).json()) as { records: unknown[] };
    expect(audit.records[0]).toMatchObject({ target: "nightly->api", outcome: "ok" });
    expect(JSON.stringify(audit)).not.toContain(value);
  });
});
