import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CachedTokenIssuer,
  generateMeshKey,
  inspectToken,
  issueToken,
  keyThumbprint,
  prepareSigningKeys,
  publicKeySet,
  type SigningKeys,
} from "../../auth/mesh-token.ts";
import {
  base64UrlDecode,
  base64UrlEncode,
  KeySetError,
  parseKeySet,
  prepareKeySet,
  VerifiedTokenCache,
  verifyMeshRequest,
  verifyMeshToken,
  type MeshKeyJwk,
  type MeshKeySet,
} from "../../auth/verify.ts";

const T0 = Date.UTC(2026, 6, 1, 12, 0, 0);
const mesh = "bookinfo";

async function signer(...keys: MeshKeyJwk[]): Promise<SigningKeys> {
  return prepareSigningKeys({ keys });
}

/** Signs any header and payload with a key, for tokens issueToken would never make. */
async function craft(key: MeshKeyJwk, header: unknown, payload: unknown): Promise<string> {
  const enc = new TextEncoder();
  const input = `${base64UrlEncode(enc.encode(JSON.stringify(header)))}.${base64UrlEncode(enc.encode(JSON.stringify(payload)))}`;
  const priv = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: key.x, d: key.d }, { name: "Ed25519" }, false, ["sign"]);
  return `${input}.${base64UrlEncode(new Uint8Array(await crypto.subtle.sign("Ed25519", priv, enc.encode(input))))}`;
}

const validClaims = (over: Record<string, unknown> = {}) => ({ iss: mesh, sub: "productpage", aud: "reviews", iat: T0 / 1000, nbf: T0 / 1000, exp: T0 / 1000 + 300, jti: "abc", ...over });

describe("base64url", () => {
  it("round-trips every length and refuses padding, foreign characters and non-canonical endings", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const text = base64UrlEncode(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64url"));
      expect(base64UrlDecode(text)).toEqual(bytes);
    }
    expect(base64UrlDecode("QQ==")).toBeUndefined();
    expect(base64UrlDecode("QQ+/")).toBeUndefined();
    expect(base64UrlDecode("Q")).toBeUndefined();
    // "QR" decodes to the same byte as "QQ" in lenient decoders; only "QQ" is canonical.
    expect(base64UrlDecode("QQ")).toEqual(new Uint8Array([0x41]));
    expect(base64UrlDecode("QR")).toBeUndefined();
  });
});

describe("keys", () => {
  it("names a key by its RFC 7638 thumbprint (the RFC 8037 example key)", async () => {
    expect(await keyThumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  });

  it("generates an Ed25519 signing key with its private part, and a public set without it", async () => {
    const key = await generateMeshKey();
    expect(key).toMatchObject({ status: "signing", kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
    expect(key.kid).toBe(await keyThumbprint(key.x));
    expect(base64UrlDecode(key.d!)!.length).toBe(32);
    const retired = await generateMeshKey({ kid: "old", status: "retired" });
    const pub = publicKeySet({ keys: [key, retired] });
    expect(pub.keys).toHaveLength(1);
    expect(pub.keys[0]).not.toHaveProperty("d");
    expect(publicKeySet({ keys: [key, retired] }, { includeRetired: true }).keys.map((k) => k.kid)).toEqual([key.kid, "old"]);
  });

  it("refuses unusable key sets with the field named", async () => {
    const a = await generateMeshKey({ kid: "a" });
    const b = await generateMeshKey({ kid: "b" });
    expect(() => parseKeySet("{nope")).toThrow(/not JSON/);
    expect(() => parseKeySet({ keys: [] })).toThrow(/1-16 keys/);
    expect(() => parseKeySet({ keys: [a, b] })).toThrow(/at most one key may have "status": "signing"/);
    expect(() => parseKeySet({ keys: [a, { ...b, kid: "a", status: "verify" }] })).toThrow(/keys\[1\]\.kid "a" is used twice/);
    expect(() => parseKeySet({ keys: [{ ...a, x: "short" }] })).toThrow(/keys\[0\]\.x must be a 32-byte Ed25519 key/);
    expect(() => parseKeySet({ keys: [{ ...a, status: "active" as never }] })).toThrow(/status must be one of signing, verify, retired/);
    expect(() => parseKeySet({ keys: [{ ...a, crv: "P-256" as never }] })).toThrow(KeySetError);
    await expect(prepareSigningKeys({ keys: [{ ...a, status: "verify" }] })).rejects.toThrow(/no key has "status": "signing"/);
    const { d: _d, ...publicOnly } = a;
    await expect(prepareSigningKeys({ keys: [publicOnly] })).rejects.toThrow(/has no private part "d"/);
  });
});

describe("issuing and verifying", () => {
  it("issues a standard JWS (alg EdDSA) that an independent Ed25519 implementation verifies", async () => {
    const key = await generateMeshKey({ kid: "k1" });
    const token = await issueToken(await signer(key), { mesh, caller: "productpage", callee: "reviews", ttlMs: 5 * 60_000, nowMs: T0 });
    const [h, p, s] = token.split(".") as [string, string, string];
    expect(JSON.parse(Buffer.from(h, "base64url").toString())).toEqual({ alg: "EdDSA", typ: "edgemesh+jwt", kid: "k1" });
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    expect(claims).toMatchObject({ iss: mesh, sub: "productpage", aud: "reviews", iat: T0 / 1000, nbf: T0 / 1000, exp: T0 / 1000 + 300 });
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // node:crypto (OpenSSL), not Web Crypto: the signature covers ASCII(header.payload).
    const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: key.x }, format: "jwk" });
    expect(nodeVerify(null, Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, "base64url"))).toBe(true);
    expect(inspectToken(token)?.claims).toEqual(claims);
  });

  it("accepts a valid token and names caller and key", async () => {
    const key = await generateMeshKey({ kid: "k1" });
    const keys = await signer(key);
    const token = await issueToken(keys, { mesh, caller: "productpage", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    const verdict = await verifyMeshToken(token, keys, { audience: "reviews", mesh, nowMs: T0 + 1000 });
    expect(verdict).toMatchObject({ ok: true, kid: "k1", claims: { sub: "productpage", aud: "reviews", iss: mesh } });
  });

  it("refuses a token for another callee or another mesh", async () => {
    const keys = await signer(await generateMeshKey());
    const token = await issueToken(keys, { mesh, caller: "productpage", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    expect(await verifyMeshToken(token, keys, { audience: "ratings", mesh, nowMs: T0 })).toMatchObject({ ok: false, reason: "wrong-callee" });
    expect(await verifyMeshToken(token, keys, { audience: "reviews", mesh: "other", nowMs: T0 })).toMatchObject({ ok: false, reason: "wrong-mesh" });
  });

  it("bounds clock skew on both ends (default 30 s, configurable)", async () => {
    const keys = await signer(await generateMeshKey());
    const token = await issueToken(keys, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    const at = (nowMs: number, clockSkewMs?: number) => verifyMeshToken(token, keys, { audience: "reviews", nowMs, clockSkewMs });
    expect((await at(T0 + 60_000 + 29_000)).ok).toBe(true);
    expect(await at(T0 + 60_000 + 30_000)).toMatchObject({ ok: false, reason: "expired" });
    expect((await at(T0 - 30_000)).ok).toBe(true);
    expect(await at(T0 - 31_000)).toMatchObject({ ok: false, reason: "not-yet-valid" });
    expect(await at(T0 + 61_000, 0)).toMatchObject({ ok: false, reason: "expired" });
    expect((await at(T0 + 61_000, 5_000)).ok).toBe(true);
  });

  it("refuses tokens that claim to live longer than allowed, and will not issue them", async () => {
    const key = await generateMeshKey();
    const keys = await signer(key);
    const long = await craft(key, { alg: "EdDSA", typ: "edgemesh+jwt", kid: key.kid }, validClaims({ exp: T0 / 1000 + 2 * 86_400 }));
    expect(await verifyMeshToken(long, keys, { audience: "reviews", nowMs: T0 })).toMatchObject({ ok: false, reason: "lifetime-too-long" });
    expect((await verifyMeshToken(long, keys, { audience: "reviews", nowMs: T0, maxLifetimeMs: 3 * 86_400_000 })).ok).toBe(true);
    await expect(issueToken(keys, { mesh, caller: "a", callee: "b", ttlMs: 2 * 86_400_000 })).rejects.toThrow(/ttl must be between 1 s and 86400 s/);
    await expect(issueToken(keys, { mesh, caller: "a", callee: "b", ttlMs: 10 })).rejects.toThrow(/ttl/);
  });

  it("will not issue a token for a malformed name or for the reserved caller external", async () => {
    const keys = await signer(await generateMeshKey());
    await expect(issueToken(keys, { mesh, caller: "Product Page", callee: "reviews", ttlMs: 60_000 })).rejects.toThrow(/caller "Product Page" must be lowercase/);
    await expect(issueToken(keys, { mesh, caller: "external", callee: "reviews", ttlMs: 60_000 })).rejects.toThrow(/cannot claim it/);
  });

  it("rotation: during the overlap both keys verify; a retired key is refused by name, an absent one as unknown", async () => {
    const k1 = await generateMeshKey({ kid: "k1" });
    const k2 = await generateMeshKey({ kid: "k2", status: "verify" });
    const before = await signer(k1, k2);
    const oldToken = await issueToken(before, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, nowMs: T0 });

    // Step 2: k2 signs, k1 only verifies. Tokens of both are accepted.
    const during = await signer({ ...k1, status: "verify" }, { ...k2, status: "signing" });
    const newToken = await issueToken(during, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    expect(inspectToken(newToken)?.header).toMatchObject({ kid: "k2" });
    for (const t of [oldToken, newToken]) expect((await verifyMeshToken(t, during, { audience: "reviews", nowMs: T0 })).ok).toBe(true);

    // Step 3: k1 retired.
    const after = await prepareKeySet({ keys: [{ ...k1, status: "retired" }, { ...k2, status: "signing" }] });
    expect(await verifyMeshToken(oldToken, after, { audience: "reviews", nowMs: T0 })).toMatchObject({ ok: false, reason: "retired-key" });
    expect((await verifyMeshToken(newToken, after, { audience: "reviews", nowMs: T0 })).ok).toBe(true);
    const gone = await prepareKeySet({ keys: [{ ...k2, status: "signing" }] });
    expect(await verifyMeshToken(oldToken, gone, { audience: "reviews", nowMs: T0 })).toMatchObject({ ok: false, reason: "unknown-key" });
  });

  it("refuses a forged signature: someone else's key under our key id", async () => {
    const ours = await generateMeshKey({ kid: "k1" });
    const theirs = await generateMeshKey({ kid: "k1" });
    const forged = await issueToken(await signer(theirs), { mesh, caller: "productpage", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    expect(await verifyMeshToken(forged, await prepareKeySet({ keys: [ours] }), { audience: "reviews", nowMs: T0 })).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("refuses other algorithms, other token types and critical extensions", async () => {
    const key = await generateMeshKey({ kid: "k1" });
    const keys = await prepareKeySet({ keys: [key] });
    const opts = { audience: "reviews", nowMs: T0 };
    const none = `${base64UrlEncode(new TextEncoder().encode(JSON.stringify({ alg: "none", typ: "edgemesh+jwt", kid: "k1" })))}.${base64UrlEncode(new TextEncoder().encode(JSON.stringify(validClaims())))}.`;
    expect(await verifyMeshToken(none, keys, opts)).toMatchObject({ ok: false });
    expect(await verifyMeshToken(await craft(key, { alg: "HS256", typ: "edgemesh+jwt", kid: "k1" }, validClaims()), keys, opts)).toMatchObject({ ok: false, reason: "unsupported-algorithm" });
    expect(await verifyMeshToken(await craft(key, { alg: "EdDSA", typ: "JWT", kid: "k1" }, validClaims()), keys, opts)).toMatchObject({ ok: false, reason: "malformed" });
    expect(await verifyMeshToken(await craft(key, { alg: "EdDSA", typ: "edgemesh+jwt", kid: "k1", crit: ["exp"] }, validClaims()), keys, opts)).toMatchObject({ ok: false, reason: "malformed" });
    expect((await verifyMeshToken(await craft(key, { alg: "EdDSA", typ: "edgemesh+jwt", kid: "k1" }, validClaims()), keys, opts)).ok).toBe(true);
  });

  it("refuses signed tokens whose claims are not what a mesh token says", async () => {
    const key = await generateMeshKey({ kid: "k1" });
    const keys = await prepareKeySet({ keys: [key] });
    const header = { alg: "EdDSA", typ: "edgemesh+jwt", kid: "k1" };
    for (const bad of [{ sub: 7 }, { aud: ["reviews"] }, { exp: "soon" }, { iat: 1.5 }, { jti: "" }, { fwd: "yes" }, { sub: "Product" }]) {
      const verdict = await verifyMeshToken(await craft(key, header, validClaims(bad)), keys, { audience: "reviews", nowMs: T0 });
      expect(verdict, JSON.stringify(bad)).toMatchObject({ ok: false, reason: "malformed" });
    }
  });

  it("refuses malformed input before decoding it", async () => {
    const keys = await prepareKeySet({ keys: [await generateMeshKey()] });
    const opts = { audience: "reviews", nowMs: T0 };
    expect(await verifyMeshToken(undefined, keys, opts)).toMatchObject({ ok: false, reason: "missing" });
    expect(await verifyMeshToken("a".repeat(5000), keys, opts)).toMatchObject({ ok: false, reason: "malformed", detail: /longer than 2048/ });
    for (const junk of ["a.b", "a.b.c.d", "..", "x.y.z", `e30.e30.${"A".repeat(86)}`, `${"A".repeat(300)}.e30.${"A".repeat(86)}`]) {
      expect((await verifyMeshToken(junk, keys, opts)).ok).toBe(false);
    }
  });

  it("forwarded tokens: an origin may require them, a sidecar refuses them", async () => {
    const keys = await signer(await generateMeshKey());
    const forwarded = await issueToken(keys, { mesh, caller: "external", callee: "reviews", ttlMs: 60_000, nowMs: T0, forwarded: true });
    const direct = await issueToken(keys, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    const opts = { audience: "reviews", nowMs: T0 };
    expect((await verifyMeshToken(forwarded, keys, opts)).ok).toBe(true);
    expect(await verifyMeshToken(forwarded, keys, { ...opts, forwarded: "refuse" })).toMatchObject({ ok: false, reason: "forwarded-token" });
    expect(await verifyMeshToken(direct, keys, { ...opts, forwarded: "require" })).toMatchObject({ ok: false, reason: "not-forwarded" });
    expect((await verifyMeshToken(forwarded, keys, { ...opts, forwarded: "require" })).ok).toBe(true);
  });

  it("debug credentials: never an identity, and only they open debug; one for every service only as a debug credential", async () => {
    const key = await generateMeshKey();
    const keys = await signer(key);
    const opts = { audience: "reviews", mesh, nowMs: T0 };
    const everyService = await issueToken(keys, { mesh, caller: "ops", callee: "*", ttlMs: 60_000, nowMs: T0, debug: true });
    const oneService = await issueToken(keys, { mesh, caller: "ops", callee: "ratings", ttlMs: 60_000, nowMs: T0, debug: true });
    const identity = await issueToken(keys, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    expect(await verifyMeshToken(everyService, keys, { ...opts, debug: "require" })).toMatchObject({ ok: true, claims: { sub: "ops", aud: "*", dbg: true } });
    expect(await verifyMeshToken(oneService, keys, { ...opts, debug: "require" })).toMatchObject({ ok: false, reason: "wrong-callee" });
    expect(await verifyMeshToken(identity, keys, { ...opts, debug: "require" })).toMatchObject({ ok: false, reason: "not-debug" });
    // The default, for sidecars and origins alike: a debug credential is refused as an identity.
    expect(await verifyMeshToken(everyService, keys, opts)).toMatchObject({ ok: false, reason: "debug-token" });
    expect(await verifyMeshToken(everyService, keys, { ...opts, audience: "ratings" })).toMatchObject({ ok: false, reason: "debug-token" });
    // "*" means nothing in an identity token, however it was signed.
    const star = await craft(key, { alg: "EdDSA", typ: "edgemesh+jwt", kid: key.kid }, validClaims({ aud: "*" }));
    expect(await verifyMeshToken(star, keys, opts)).toMatchObject({ ok: false, reason: "malformed" });
    const oddDebug = await craft(key, { alg: "EdDSA", typ: "edgemesh+jwt", kid: key.kid }, validClaims({ dbg: "yes" }));
    expect(await verifyMeshToken(oddDebug, keys, { ...opts, debug: "require" })).toMatchObject({ ok: false, reason: "malformed", detail: expect.stringContaining('"dbg"') });
    await expect(issueToken(keys, { mesh, caller: "job", callee: "*", ttlMs: 60_000 })).rejects.toThrow(/callee "\*"/);
    await expect(issueToken(keys, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, debug: true, forwarded: true })).rejects.toThrow(/not both/);
  });

  it("the verified-signature cache still checks expiry and audience, and is tied to one key set", async () => {
    const key = await generateMeshKey({ kid: "k1" });
    const keys = await signer(key);
    const token = await issueToken(keys, { mesh, caller: "job", callee: "reviews", ttlMs: 60_000, nowMs: T0 });
    const cache = new VerifiedTokenCache(2);
    expect((await verifyMeshToken(token, keys, { audience: "reviews", nowMs: T0, cache })).ok).toBe(true);
    expect(cache.size).toBe(1);
    expect(await verifyMeshToken(token, keys, { audience: "reviews", nowMs: T0 + 120_000, cache })).toMatchObject({ ok: false, reason: "expired" });
    expect(await verifyMeshToken(token, keys, { audience: "ratings", nowMs: T0, cache })).toMatchObject({ ok: false, reason: "wrong-callee" });
    // The key retired: a new key set is a new object, so the cached signature does not count.
    const retired = await prepareKeySet({ keys: [{ ...key, status: "retired" }] });
    expect(await verifyMeshToken(token, retired, { audience: "reviews", nowMs: T0, cache })).toMatchObject({ ok: false, reason: "retired-key" });
    for (const caller of ["a", "b", "c"]) {
      await verifyMeshToken(await issueToken(keys, { mesh, caller, callee: "reviews", ttlMs: 60_000, nowMs: T0 }), keys, { audience: "reviews", nowMs: T0, cache });
    }
    expect(cache.size).toBe(2);
  });

  it("verifyMeshRequest reads the x-edgemesh-token header with a public key set (JSON text)", async () => {
    const key = await generateMeshKey();
    const keys = await signer(key);
    const publicKeys = JSON.stringify(publicKeySet({ keys: [key] }));
    const token = await issueToken(keys, { mesh, caller: "reviews", callee: "ratings", ttlMs: 60_000, nowMs: T0, forwarded: true });
    const ok = await verifyMeshRequest(new Request("https://ratings.example/x", { headers: { "x-edgemesh-token": token } }), { publicKeys, audience: "ratings", mesh, nowMs: T0 });
    expect(ok).toMatchObject({ ok: true, claims: { sub: "reviews" } });
    const missing = await verifyMeshRequest(new Request("https://ratings.example/x"), { publicKeys, audience: "ratings", nowMs: T0 });
    expect(missing).toMatchObject({ ok: false, reason: "missing" });
    const set: MeshKeySet = publicKeySet({ keys: [key] });
    expect((await verifyMeshRequest(new Request("https://x/", { headers: { "x-edgemesh-token": token } }), { publicKeys: set, audience: "ratings", nowMs: T0 })).ok).toBe(true);
  });

  it("a cached issuer reuses a token until half its life is gone", async () => {
    const keys = await signer(await generateMeshKey());
    const issuer = new CachedTokenIssuer(keys, mesh, 60_000);
    const first = await issuer.tokenFor("productpage", "reviews", T0);
    expect(await issuer.tokenFor("productpage", "reviews", T0 + 20_000)).toBe(first);
    expect(await issuer.tokenFor("details", "reviews", T0 + 20_000)).not.toBe(first);
    const renewed = await issuer.tokenFor("productpage", "reviews", T0 + 30_000);
    expect(renewed).not.toBe(first);
    const verdict = await verifyMeshToken(renewed, keys, { audience: "reviews", nowMs: T0 + 85_000, clockSkewMs: 0 });
    expect(verdict).toMatchObject({ ok: true, claims: { sub: "productpage", fwd: true } });
  });
});
