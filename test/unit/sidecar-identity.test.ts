// The sidecar's identity stage over plain Requests (workers/sidecar/identity.ts): which requests
// need no promise and no header read, tokens verified with the key set from env, the debug
// credential, and the cached tokens a sidecar attaches for origins.
import { describe, expect, it } from "vitest";
import { generateMeshKey, issueToken, prepareSigningKeys, publicKeySet, verifyMeshToken, prepareKeySet, type MeshKeySet } from "../../auth/mesh-token.ts";
import type { ServiceSnapshot } from "../../policies/snapshot.ts";
import { bindingCallerOf, debugCredentialValid, forwardedToken, identify, identityStatus, prepareIdentity } from "../../workers/sidecar/identity.ts";

const snapshot = (access?: Partial<ServiceSnapshot["access"]>) =>
  ({
    mesh: "m",
    service: "api",
    access: access && { mode: "permissive", unverifiedIdentity: "refuse", deny: [], allow: [], defaultDeny: false, defaultDenyId: "api/(default-deny)", tokens: { clockSkewMs: 30_000, maxLifetimeMs: 86_400_000, forwardedTtlMs: 300_000 }, ...access },
  }) as ServiceSnapshot;

async function keySet(): Promise<MeshKeySet> {
  return { keys: [await generateMeshKey({ kid: "k1" })] };
}

/** A Request whose header reads are counted. */
function counted(headers: Record<string, string> = {}): { request: Request; reads: () => number } {
  const request = new Request("http://api/x", { headers });
  let reads = 0;
  const get = request.headers.get.bind(request.headers);
  Object.defineProperty(request.headers, "get", { value: (name: string) => (reads++, get(name)) });
  return { request, reads: () => reads };
}

describe("identifying callers in the sidecar", () => {
  it("a binding's props name the caller at once, with no promise and no header read", () => {
    const { request, reads } = counted({ "x-edgemesh-caller": "someone-else", "x-edgemesh-token": "junk" });
    const identity = identify(request, { caller: "web" }, prepareIdentity(snapshot({})), {});
    expect(identity).toEqual({ kind: "verified", caller: "web", via: "binding" });
    expect(reads()).toBe(0);
  });

  it("nothing claimed is external, at once; a bare claim is refused or ignored per policy", () => {
    expect(identify(new Request("http://api/x"), undefined, prepareIdentity(snapshot({})), {})).toEqual({ kind: "external" });
    const claim = new Request("http://api/x", { headers: { "x-edgemesh-caller": "web" } });
    expect(identify(claim, undefined, prepareIdentity(snapshot({})), {})).toMatchObject({ kind: "refused", reason: "claim-without-token" });
    expect(identify(claim, undefined, prepareIdentity(snapshot({ unverifiedIdentity: "external" })), {})).toMatchObject({ kind: "external", unverified: { reason: "claim-without-token" } });
  });

  it("a token is verified with the key set from env, and its signature checked once", async () => {
    const keys = await keySet();
    const env = { EDGEMESH_TOKEN_KEYS: JSON.stringify(keys) };
    const token = await issueToken(await prepareSigningKeys(keys), { mesh: "m", caller: "job", callee: "api", ttlMs: 60_000 });
    const request = new Request("http://api/x", { headers: { "x-edgemesh-token": token } });
    const prepared = prepareIdentity(snapshot({}));
    const first = identify(request, {}, prepared, env);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({ kind: "verified", caller: "job", via: "token" });
    const cached = identityStatus().cachedTokens;
    expect(await identify(request, {}, prepared, env)).toEqual({ kind: "verified", caller: "job", via: "token" });
    expect(identityStatus().cachedTokens).toBe(cached);
  });

  it("without a usable key set a token cannot be believed, and the broken secret is counted", async () => {
    const request = new Request("http://api/x", { headers: { "x-edgemesh-token": "a.b.c" } });
    const prepared = prepareIdentity(snapshot({}));
    expect(await identify(request, {}, prepared, {})).toMatchObject({ kind: "refused", reason: "tokens-not-configured" });
    const before = identityStatus().keyErrors;
    const errors = console.error;
    console.error = () => {};
    try {
      expect(await identify(request, {}, prepared, { EDGEMESH_TOKEN_KEYS: '{"keys": [{"kid": "x"}]}' })).toMatchObject({ kind: "refused", reason: "tokens-not-configured" });
    } finally {
      console.error = errors;
    }
    expect(identityStatus().keyErrors).toBe(before + 1);
    expect(identityStatus().lastKeyError).toContain("keys[0].status");
  });

  it("before the snapshot is known, telemetry names the binding's caller or external", () => {
    expect(bindingCallerOf({ caller: "web" })).toBe("web");
    expect(bindingCallerOf({ caller: "external" })).toBe("external");
    expect(bindingCallerOf(null)).toBe("external");
  });

  it("snapshots without access policy get the schema's defaults", () => {
    expect(prepareIdentity(snapshot())).toMatchObject({ mesh: "m", service: "api", unverifiedIdentity: "refuse", clockSkewMs: 30_000, forwardedTtlMs: 300_000 });
  });
});

describe("the debug credential", () => {
  it("opens debug only for a debug token of this service (or every one) of this mesh", async () => {
    const keys = await keySet();
    const signing = await prepareSigningKeys(keys);
    const env = { EDGEMESH_TOKEN_KEYS: JSON.stringify(keys) };
    const prepared = prepareIdentity(snapshot({}));
    const ask = (token?: string) => debugCredentialValid(new Request("http://api/x", { headers: token ? { "x-edgemesh-debug-token": token } : {} }), prepared, env);
    const debug = (callee: string, mesh = "m") => issueToken(signing, { mesh, caller: "ops", callee, ttlMs: 60_000, debug: true });
    expect(await ask(await debug("*"))).toBe(true);
    expect(await ask(await debug("api"))).toBe(true);
    expect(await ask(await debug("billing"))).toBe(false);
    expect(await ask(await debug("*", "elsewhere"))).toBe(false);
    expect(await ask(await issueToken(signing, { mesh: "m", caller: "job", callee: "api", ttlMs: 60_000 }))).toBe(false);
    expect(await ask()).toBe(false);
    expect(await debugCredentialValid(new Request("http://api/x", { headers: { "x-edgemesh-debug-token": await debug("*") } }), prepared, {})).toBe(false);
  });
});

describe("tokens attached for origins", () => {
  it("name the caller and this service, are marked forwarded, and are reused rather than signed per request", async () => {
    const keys = await keySet();
    const env = { EDGEMESH_TOKEN_KEYS: JSON.stringify(keys) };
    const prepared = prepareIdentity(snapshot({}));
    const first = await forwardedToken("web", prepared, env);
    expect(first).toBeDefined();
    expect(await forwardedToken("web", prepared, env)).toBe(first);
    const other = await forwardedToken("external", prepared, env);
    expect(other).not.toBe(first);
    const verdict = await verifyMeshToken(first, await prepareKeySet(publicKeySet(keys)), { audience: "api", mesh: "m", forwarded: "require" });
    expect(verdict).toMatchObject({ ok: true, claims: { sub: "web", aud: "api", fwd: true } });
    expect((verdict as { claims: { exp: number; iat: number } }).claims.exp - (verdict as { claims: { iat: number } }).claims.iat).toBe(300);
  });

  it("are not attached without a key set that can sign", async () => {
    const prepared = prepareIdentity(snapshot({}));
    expect(await forwardedToken("web", prepared, {})).toBeUndefined();
    const errors = console.error;
    console.error = () => {};
    try {
      const verifyOnly = JSON.stringify(publicKeySet(await keySet()));
      expect(await forwardedToken("web", prepared, { EDGEMESH_TOKEN_KEYS: verifyOnly })).toBeUndefined();
    } finally {
      console.error = errors;
    }
  });
});
