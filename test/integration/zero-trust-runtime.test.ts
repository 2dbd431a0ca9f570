// The zero-trust building blocks inside workerd (Miniflare): Ed25519 mesh tokens issued and
// verified by workerd's Web Crypto and by Node's, access rules with RE2 regexes (re2js bundled),
// and rate limits backed by Cloudflare's rate limiting binding as Miniflare simulates it.
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMeshKey, issueToken, prepareSigningKeys, publicKeySet } from "../../auth/mesh-token.ts";
import { prepareKeySet, verifyMeshToken } from "../../auth/verify.ts";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { COMPATIBILITY_DATE } from "../../scripts/mesh.ts";
import { bundleTestWorker } from "./bundle-test-worker.ts";

const SHARED_LIMIT = 3;
const PERIOD_S = 10;

function compiled() {
  const result = validatePolicy({
    mesh: "zt",
    access: { identities: ["nightly"] },
    services: {
      api: {
        endpoints: [{ id: "a1", binding: "A1" }],
        subsets: { all: {} },
        routes: [{ name: "reads", to: [{ subset: "all" }] }, { name: "writes", to: [{ subset: "all" }] }],
        access: {
          deny: [{ name: "no-admin", paths: [{ regex: "/admin(/.*)?" }] }],
          allow: [{ name: "nightly-books", from: ["nightly"], paths: [{ regex: "/books/[0-9]+" }] }],
        },
        rateLimits: [
          // Generous per isolate, so the shared binding is what refuses.
          { name: "shared-writes", routes: ["writes"], per: ["caller"], requests: SHARED_LIMIT, periodMs: PERIOD_S * 1000, burst: 1000, shared: { binding: "RATE_LIMIT_API" } },
          { name: "local-reads", routes: ["reads"], requests: 2, periodMs: 60_000 },
        ],
      },
    },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return compilePolicy(result.document).services.api!;
}

let mf: Miniflare;
const call = (path: string, body?: unknown) =>
  mf.dispatchFetch(`http://probe.test${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

beforeAll(async () => {
  const api = compiled();
  mf = new Miniflare({
    ...(await bundleTestWorker("test/workers/zero-trust-probe.ts")),
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: { RATE_LIMITS: JSON.stringify(api.rateLimits), ROUTES: api.routes.map((r) => r.name).join(",") },
    ratelimits: { RATE_LIMIT_API: { simple: { limit: SHARED_LIMIT, period: PERIOD_S } } },
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
});

describe("mesh tokens in workerd", () => {
  it("a token issued in Node verifies in workerd, and one issued in workerd verifies in Node", async () => {
    const key = await generateMeshKey({ kid: "k1" });
    const keyText = JSON.stringify({ keys: [key] });
    const nowMs = Date.now();
    const fromNode = await issueToken(await prepareSigningKeys({ keys: [key] }), { mesh: "zt", caller: "nightly", callee: "api", ttlMs: 60_000, nowMs });
    const inWorkerd = await (await call("/token/verify", { token: fromNode, keys: JSON.stringify(publicKeySet({ keys: [key] })), options: { audience: "api", mesh: "zt" } })).json();
    expect(inWorkerd).toMatchObject({ ok: true, kid: "k1", claims: { sub: "nightly", aud: "api" } });

    const { token: fromWorkerd } = (await (await call("/token/issue", { keys: keyText, options: { mesh: "zt", caller: "api", callee: "db", ttlMs: 60_000, forwarded: true } })).json()) as { token: string };
    const inNode = await verifyMeshToken(fromWorkerd, await prepareKeySet(keyText), { audience: "db", mesh: "zt", forwarded: "require" });
    expect(inNode).toMatchObject({ ok: true, claims: { sub: "api", fwd: true } });

    const forged = `${fromNode.slice(0, -4)}AAAA`;
    expect(await (await call("/token/verify", { token: forged, keys: keyText, options: { audience: "api" } })).json()).toMatchObject({ ok: false });
    expect(await (await call("/token/verify", { token: fromNode, keys: keyText, options: { audience: "db" } })).json()).toMatchObject({ ok: false, reason: "wrong-callee" });
  });
});

describe("access rules in workerd", () => {
  it("evaluates RE2 regexes and names the refusing rule", async () => {
    const access = compiled().access;
    const ask = (caller: string, path: string) => call("/access", { access, caller, method: "GET", path });
    expect((await ask("nightly", "/books/12")).status).toBe(200);
    const admin = await ask("nightly", "/admin/keys");
    expect(admin.status).toBe(403);
    expect(admin.headers.get("x-edgemesh-denied-by")).toBe("api/no-admin");
    expect((await ask("external", "/books/12")).headers.get("x-edgemesh-denied-by")).toBe("api/(default-deny)");
  });
});

describe("rate limits in workerd", () => {
  /** Miniflare's simulated binding counts in fixed windows aligned to the period; start early in one. */
  async function earlyInWindow(): Promise<void> {
    const intoWindowMs = Date.now() % (PERIOD_S * 1000);
    if (intoWindowMs > 5_000) await new Promise((r) => setTimeout(r, PERIOD_S * 1000 - intoWindowMs + 50));
  }

  it("the shared limit refuses past the binding's limit with 429 and Retry-After, per caller", async () => {
    await earlyInWindow();
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < SHARED_LIMIT + 2; i++) {
      const res = await call("/ratelimit?route=writes&caller=nightly");
      statuses.push(res.status);
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(refused!.headers.get("retry-after")).toBe(String(PERIOD_S));
    expect(refused!.headers.get("x-edgemesh-rate-limited")).toBe("api/shared-writes");
    expect(await refused!.json()).toMatchObject({ source: "shared" });
    // Another caller has its own key in the binding.
    expect((await call("/ratelimit?route=writes&caller=web")).status).toBe(200);
    const status = (await (await call("/ratelimit/status")).json()) as { refusedShared: number; sharedErrors: number };
    expect(status).toMatchObject({ refusedShared: 2, sharedErrors: 0 });
  });

  it("a local limit refuses without asking the binding", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await call("/ratelimit?route=reads&caller=web")).status);
    expect(statuses).toEqual([200, 200, 429]);
  });
});
