// Issuing mesh tokens: a signed, expiring statement "caller may call callee in this mesh", for
// callers that are not Workers of the mesh (origins, jobs, other accounts) and for what a sidecar
// attaches when it forwards to an origin. Ed25519 (asymmetric), so origins and other meshes verify
// with the public key and never hold the signing key. The format and verification are in
// verify.ts (self-contained, for origins); this module adds keys, key generation and signing.
import { EXTERNAL_CALLER } from "./caller-names.ts";
import {
  ANY_AUDIENCE,
  base64UrlDecode,
  base64UrlEncode,
  DEFAULT_MAX_LIFETIME_MS,
  IDENTITY_PATTERN,
  KeySetError,
  parseKeySet,
  prepareKeySet,
  TOKEN_ALGORITHM,
  TOKEN_TYPE,
  type MeshKeyJwk,
  type MeshKeySet,
  type MeshTokenClaims,
  type VerificationKeys,
} from "./verify.ts";

export {
  ANY_AUDIENCE,
  DEFAULT_CLOCK_SKEW_MS,
  KeySetError,
  TOKEN_HEADER,
  VerifiedTokenCache,
  keySetFromSecret,
  parseKeySet,
  prepareKeySet,
  verifyMeshRequest,
  verifyMeshToken,
  type MeshKeyJwk,
  type MeshKeySet,
  type MeshTokenClaims,
  type TokenFailureReason,
  type TokenVerdict,
  type VerificationKeys,
  type VerifyOptions,
} from "./verify.ts";

/** Name of the Worker secret holding the key set (JSON) on signers and verifiers. */
export const TOKEN_KEYS_SECRET = "EDGEMESH_TOKEN_KEYS";

/** A key set that can also sign: its one `signing` key with its private half imported. */
export interface SigningKeys extends VerificationKeys {
  readonly signing: { kid: string; key: CryptoKey };
}

/**
 * The RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over its required members in
 * lexicographic order. The default key id, stable for a key and the same in every JWK library.
 */
export async function keyThumbprint(x: string): Promise<string> {
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${x}"}`;
  return base64UrlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical))));
}

/** A new Ed25519 key (`edgemesh token keygen`), with its private half, as a JWK with a kid. */
export async function generateMeshKey(options: { kid?: string; status?: MeshKeyJwk["status"] } = {}): Promise<MeshKeyJwk> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const x = jwk.x!;
  const key: MeshKeyJwk = { kid: options.kid ?? (await keyThumbprint(x)), status: options.status ?? "signing", kty: "OKP", crv: "Ed25519", x, d: jwk.d!, alg: TOKEN_ALGORITHM, use: "sig" };
  parseKeySet({ keys: [key] }, "generated key"); // checks the kid given by hand
  return key;
}

/**
 * The key set without private keys, for origins and verify-only sidecars. Retired keys are left
 * out unless asked for: a generic JWT library (jose, …) does not know edgemesh's `status` and
 * would accept any key it is given.
 */
export function publicKeySet(set: MeshKeySet, options: { includeRetired?: boolean } = {}): MeshKeySet {
  const checked = parseKeySet(set);
  return {
    keys: checked.keys
      .filter((k) => options.includeRetired || k.status !== "retired")
      .map((k) => ({ kid: k.kid, status: k.status, kty: k.kty, crv: k.crv, x: k.x, alg: TOKEN_ALGORITHM, use: "sig" })),
  };
}

/** Imports a signer's key set: it must have exactly one `signing` key, with its private half `d`. */
export async function prepareSigningKeys(source: string | MeshKeySet): Promise<SigningKeys> {
  const set = parseKeySet(source, TOKEN_KEYS_SECRET);
  const signing = set.keys.find((k) => k.status === "signing");
  if (!signing) throw new KeySetError(`${TOKEN_KEYS_SECRET}: no key has "status": "signing"; a signer needs one`);
  if (!signing.d) throw new KeySetError(`${TOKEN_KEYS_SECRET}: the signing key "${signing.kid}" has no private part "d"`);
  const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: signing.x, d: signing.d }, { name: "Ed25519" }, false, ["sign"]);
  const verification = await prepareKeySet(set);
  return { byKid: verification.byKid, signing: { kid: signing.kid, key } };
}

export interface IssueOptions {
  mesh: string;
  caller: string;
  callee: string;
  ttlMs: number;
  /** Defaults to Date.now(). */
  nowMs?: number;
  /** Marks a token a sidecar attaches when it forwards to an origin (see VerifyOptions.forwarded). */
  forwarded?: boolean;
  /**
   * Makes a debug credential (claim `dbg`): it opens a sidecar's debug headers and is never an
   * identity. `caller` is then who asked for it (an admin token's name) and `callee` may be "*".
   */
  debug?: boolean;
  /** Longest lifetime allowed; default 24 h (what verifiers accept by default). */
  maxLifetimeMs?: number;
}

/** The reason a token cannot be issued: a caller's mistake, said in words. */
export class IssueError extends Error {
  override name = "IssueError";
}

/** Signs a token naming caller and callee, valid for `ttlMs` (rounded up to whole seconds). */
export async function issueToken(keys: SigningKeys, options: IssueOptions): Promise<string> {
  if (options.debug && options.forwarded) throw new IssueError("a debug credential is not attached for origins; give debug or forwarded, not both");
  for (const [field, value] of [["mesh", options.mesh], ["caller", options.caller], ["callee", options.callee]] as const) {
    if (field === "callee" && options.debug && value === ANY_AUDIENCE) continue;
    if (!IDENTITY_PATTERN.test(value)) throw new IssueError(`${field} "${value}" must be lowercase letters, digits and '-', 1-63 characters`);
  }
  if (options.caller === EXTERNAL_CALLER && !options.forwarded && !options.debug) {
    throw new IssueError(`"${EXTERNAL_CALLER}" means a caller without a verified identity; a token cannot claim it`);
  }
  const maxLifetimeMs = options.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS;
  if (!Number.isFinite(options.ttlMs) || options.ttlMs < 1000 || options.ttlMs > maxLifetimeMs) {
    throw new IssueError(`ttl must be between 1 s and ${maxLifetimeMs / 1000} s (got ${options.ttlMs} ms)`);
  }
  const iat = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const claims: MeshTokenClaims = {
    iss: options.mesh,
    sub: options.caller,
    aud: options.callee,
    iat,
    nbf: iat,
    exp: iat + Math.ceil(options.ttlMs / 1000),
    jti: base64UrlEncode(crypto.getRandomValues(new Uint8Array(16))),
  };
  if (options.forwarded) claims.fwd = true;
  if (options.debug) claims.dbg = true;
  const enc = new TextEncoder();
  const signingInput = `${base64UrlEncode(enc.encode(JSON.stringify({ alg: TOKEN_ALGORITHM, typ: TOKEN_TYPE, kid: keys.signing.kid })))}.${base64UrlEncode(enc.encode(JSON.stringify(claims)))}`;
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, keys.signing.key, enc.encode(signingInput)));
  return `${signingInput}.${base64UrlEncode(signature)}`;
}

/**
 * Reuses one token per (caller, callee) while more than half its lifetime is left, so a sidecar
 * forwarding to an origin signs about twice per TTL rather than per request. Bounded; tied to one
 * SigningKeys (a new key set means a new issuer).
 */
export class CachedTokenIssuer {
  private readonly tokens = new Map<string, { token: Promise<string>; renewAtMs: number }>();

  constructor(
    private readonly keys: SigningKeys,
    private readonly mesh: string,
    private readonly ttlMs: number,
    private readonly maxEntries = 1024,
  ) {}

  tokenFor(caller: string, callee: string, nowMs = Date.now(), forwarded = true): Promise<string> {
    const cacheKey = `${forwarded ? "f" : "c"} ${caller} ${callee}`;
    const hit = this.tokens.get(cacheKey);
    if (hit && nowMs < hit.renewAtMs) return hit.token;
    if (!hit && this.tokens.size >= this.maxEntries) this.tokens.delete(this.tokens.keys().next().value!);
    const token = issueToken(this.keys, { mesh: this.mesh, caller, callee, ttlMs: this.ttlMs, nowMs, forwarded });
    // iat is rounded down to the second, so renew a second early to stay past half-life.
    this.tokens.set(cacheKey, { token, renewAtMs: nowMs + this.ttlMs / 2 - 1000 });
    token.catch(() => this.tokens.delete(cacheKey));
    return token;
  }
}

/** The decoded, unverified parts of a token, for `edgemesh token inspect` and error messages. */
export function inspectToken(token: string): { header: unknown; claims: unknown } | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const decode = (s: string) => {
      const bytes = base64UrlDecode(s);
      return bytes ? JSON.parse(new TextDecoder().decode(bytes)) : undefined;
    };
    return { header: decode(parts[0]!), claims: decode(parts[1]!) };
  } catch {
    return undefined;
  }
}
