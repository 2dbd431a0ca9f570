// Verifies edgemesh mesh tokens: JWS compact serialisation (a JWT) signed with Ed25519 (`alg:
// EdDSA`), naming mesh (`iss`), caller (`sub`) and callee (`aud`). This file is self-contained on
// purpose: it uses only Web Crypto and imports nothing, so an origin written in TypeScript (Node 20+,
// Deno, Bun, Workers) can copy it as it is and call `verifyMeshRequest`. The sidecar uses the same
// code, and auth/mesh-token.ts builds issuing on top of it.
//
// Everything here treats the token as hostile: sizes are capped before anything is decoded,
// base64url must be canonical (so no two spellings carry one signature), the signature is checked
// before any claim is believed, and a bad token yields a typed verdict, never an exception.

/** The request header a mesh token travels in (to a sidecar, and from a sidecar to its origins). */
export const TOKEN_HEADER = "x-edgemesh-token";
/** The JOSE `typ` of a mesh token (explicit typing, RFC 8725 §3.11): no other JWT is mistaken for one. */
export const TOKEN_TYPE = "edgemesh+jwt";
export const TOKEN_ALGORITHM = "EdDSA";
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
/** Tokens that claim to live longer than this are refused, whoever signed them. */
export const DEFAULT_MAX_LIFETIME_MS = 24 * 60 * 60 * 1000;

/** Caps checked before decoding: a real token is about 400 characters. */
export const MAX_TOKEN_CHARS = 2048;
const MAX_HEADER_CHARS = 256;
const MAX_PAYLOAD_CHARS = 1536;
/** An Ed25519 signature is 64 bytes: 86 base64url characters without padding. */
const SIGNATURE_CHARS = 86;
const MAX_KEYS = 16;

/** Identities and mesh names: lowercase letters, digits and '-', 1-63 characters (like service names). */
export const IDENTITY_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const KID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
const JTI_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface MeshTokenClaims {
  /** The mesh that issued the token. */
  iss: string;
  /** The caller. */
  sub: string;
  /** The callee: the service the token is for. */
  aud: string;
  /** Issued at, not before and expiry: seconds since the epoch (JWT NumericDate). */
  iat: number;
  nbf: number;
  exp: number;
  /** Token id: random, for logs and audit. */
  jti: string;
  /** Set on tokens a sidecar attaches when it forwards to an origin; a sidecar never accepts one. */
  fwd?: true;
  /**
   * Set on debug credentials (`POST /v1/debug-tokens`): they let their holder see a sidecar's
   * debug headers and are never an identity. `aud` may then be "*" (every service of the mesh).
   */
  dbg?: true;
}

/** The `aud` of a debug credential for every service of the mesh. */
export const ANY_AUDIENCE = "*";

export type TokenFailureReason =
  | "missing"
  | "malformed"
  | "unsupported-algorithm"
  | "unknown-key"
  | "retired-key"
  | "bad-signature"
  | "wrong-mesh"
  | "wrong-callee"
  | "not-yet-valid"
  | "expired"
  | "lifetime-too-long"
  | "forwarded-token"
  | "not-forwarded"
  | "debug-token"
  | "not-debug";

export type TokenVerdict =
  | { ok: true; claims: MeshTokenClaims; kid: string }
  | { ok: false; reason: TokenFailureReason; detail: string };

export type KeyStatus = "signing" | "verify" | "retired";
export const KEY_STATUSES: readonly KeyStatus[] = ["signing", "verify", "retired"];

/** One key of a key set: an Ed25519 JWK (RFC 8037) plus its edgemesh status. */
export interface MeshKeyJwk {
  kid: string;
  /** signing: signs new tokens (at most one); verify: still accepted; retired: refused by name. */
  status: KeyStatus;
  kty: "OKP";
  crv: "Ed25519";
  /** The public key, base64url. */
  x: string;
  /** The private key, base64url: only in the signers' key set, never in what origins get. */
  d?: string;
  alg?: "EdDSA";
  use?: "sig";
}

/** A JWKS-shaped key set; the secret `EDGEMESH_TOKEN_KEYS` holds one as JSON. */
export interface MeshKeySet {
  keys: MeshKeyJwk[];
}

/** A key set checked and imported once; reuse it across requests (CryptoKeys are not I/O). */
export interface VerificationKeys {
  readonly byKid: ReadonlyMap<string, { status: KeyStatus; key: CryptoKey | undefined }>;
}

/** A key set that cannot be used: an operator's configuration error, thrown with the field named. */
export class KeySetError extends Error {
  override name = "KeySetError";
}

// ---- base64url (RFC 4648 §5, no padding), strict --------------------------------------------

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

export function base64UrlEncode(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes base64url without padding; undefined for any other character, an impossible length, or
 * unused trailing bits that are not zero (a non-canonical spelling of the same bytes).
 */
export function base64UrlDecode(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) return undefined;
    buffer = ((buffer << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

// ---- key sets -------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeyMaterial(value: unknown, field: string): string {
  if (typeof value !== "string" || base64UrlDecode(value)?.length !== 32) {
    throw new KeySetError(`${field} must be a 32-byte Ed25519 key in base64url (43 characters)`);
  }
  return value;
}

/** Parses and checks a key set (JSON text or object); throws KeySetError naming the bad field. */
export function parseKeySet(source: string | MeshKeySet, what = "key set"): MeshKeySet {
  let doc: unknown = source;
  if (typeof source === "string") {
    try {
      doc = JSON.parse(source);
    } catch {
      throw new KeySetError(`${what} is not JSON; expected {"keys": [{"kid", "status", "kty": "OKP", "crv": "Ed25519", "x", ...}]}`);
    }
  }
  if (!isRecord(doc) || !Array.isArray(doc.keys)) throw new KeySetError(`${what} must be an object with a "keys" array`);
  if (doc.keys.length === 0 || doc.keys.length > MAX_KEYS) throw new KeySetError(`${what}: "keys" must hold 1-${MAX_KEYS} keys (got ${doc.keys.length})`);
  const seen = new Set<string>();
  let signing = 0;
  const keys = doc.keys.map((raw, i): MeshKeyJwk => {
    const at = `${what}: keys[${i}]`;
    if (!isRecord(raw)) throw new KeySetError(`${at} must be an object`);
    if (typeof raw.kid !== "string" || !KID_PATTERN.test(raw.kid)) throw new KeySetError(`${at}.kid must be 1-128 characters of letters, digits, '.', '_' or '-'`);
    if (seen.has(raw.kid)) throw new KeySetError(`${at}.kid "${raw.kid}" is used twice`);
    seen.add(raw.kid);
    if (!KEY_STATUSES.includes(raw.status as KeyStatus)) throw new KeySetError(`${at}.status must be one of ${KEY_STATUSES.join(", ")}`);
    if (raw.kty !== "OKP" || raw.crv !== "Ed25519") throw new KeySetError(`${at} must be an Ed25519 key: "kty": "OKP", "crv": "Ed25519"`);
    if (raw.alg !== undefined && raw.alg !== TOKEN_ALGORITHM) throw new KeySetError(`${at}.alg must be "EdDSA" when given`);
    const key: MeshKeyJwk = { kid: raw.kid, status: raw.status as KeyStatus, kty: "OKP", crv: "Ed25519", x: checkKeyMaterial(raw.x, `${at}.x`) };
    if (raw.d !== undefined) key.d = checkKeyMaterial(raw.d, `${at}.d`);
    if (key.status === "signing") signing++;
    return key;
  });
  if (signing > 1) throw new KeySetError(`${what}: at most one key may have "status": "signing" (got ${signing}); mark the others "verify"`);
  return { keys };
}

/** Imports the public half of every key that may still verify; retired keys are kept by name only. */
export async function prepareKeySet(source: string | MeshKeySet): Promise<VerificationKeys> {
  const set = parseKeySet(source);
  const byKid = new Map<string, { status: KeyStatus; key: CryptoKey | undefined }>();
  for (const k of set.keys) {
    // Only the fields Web Crypto needs: runtimes disagree about `alg` ("EdDSA" vs "Ed25519").
    const key = k.status === "retired" ? undefined
      : await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: k.x }, { name: "Ed25519" }, false, ["verify"]);
    byKid.set(k.kid, { status: k.status, key });
  }
  return { byKid };
}

const preparedBySource = new Map<string, Promise<VerificationKeys>>();

/**
 * `prepareKeySet` for a secret's text, imported once per isolate and text (a changed secret is a
 * new text). A rejected promise is not kept, so a fixed secret is picked up.
 */
export function keySetFromSecret(text: string): Promise<VerificationKeys> {
  let prepared = preparedBySource.get(text);
  if (!prepared) {
    if (preparedBySource.size >= 4) preparedBySource.clear();
    prepared = prepareKeySet(text);
    prepared.catch(() => preparedBySource.delete(text));
    preparedBySource.set(text, prepared);
  }
  return prepared;
}

// ---- verification ---------------------------------------------------------------------------

export interface VerifyOptions {
  /** The callee: the token's `aud` must equal it. */
  audience: string;
  /** The mesh: when given, the token's `iss` must equal it. */
  mesh?: string;
  /** Tolerated clock difference between issuer and verifier; default 30 s. */
  clockSkewMs?: number;
  /** Longest lifetime (exp - iat) accepted; default 24 h. */
  maxLifetimeMs?: number;
  /**
   * Tokens a sidecar attached when forwarding to an origin (`fwd`): an origin accepts them (the
   * default) or requires them (only traffic through the mesh); a sidecar refuses them, so a token
   * an origin received cannot be replayed into the mesh.
   */
  forwarded?: "accept" | "require" | "refuse";
  /**
   * Debug credentials (`dbg`): refused as identities (the default), or required, where the sidecar
   * checks the credential that opens its debug headers.
   */
  debug?: "refuse" | "require";
  /** Defaults to Date.now(). */
  nowMs?: number;
  /** Skips the signature check for tokens already verified with the same keys. */
  cache?: VerifiedTokenCache;
}

const fail = (reason: TokenFailureReason, detail: string): TokenVerdict => ({ ok: false, reason, detail });
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const ascii = new TextEncoder();

function decodeJson(segment: string): Record<string, unknown> | undefined {
  const bytes = base64UrlDecode(segment);
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

const isNumericDate = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function readClaims(payload: Record<string, unknown>): MeshTokenClaims | string {
  const { iss, sub, aud, iat, nbf, exp, jti, fwd, dbg } = payload;
  if (dbg !== undefined && dbg !== true) return 'claim "dbg" must be true when present';
  for (const [name, value] of [["iss", iss], ["sub", sub], ["aud", aud]] as const) {
    if (name === "aud" && dbg === true && value === ANY_AUDIENCE) continue;
    if (typeof value !== "string" || !IDENTITY_PATTERN.test(value)) return `claim "${name}" must be a name of lowercase letters, digits and '-'`;
  }
  if (!isNumericDate(iat) || !isNumericDate(exp)) return 'claims "iat" and "exp" must be whole seconds since the epoch';
  if (nbf !== undefined && !isNumericDate(nbf)) return 'claim "nbf" must be whole seconds since the epoch';
  if (typeof jti !== "string" || !JTI_PATTERN.test(jti)) return 'claim "jti" must be 1-64 base64url characters';
  if (fwd !== undefined && fwd !== true) return 'claim "fwd" must be true when present';
  const claims: MeshTokenClaims = { iss: iss as string, sub: sub as string, aud: aud as string, iat, nbf: (nbf as number | undefined) ?? iat, exp, jti };
  if (fwd === true) claims.fwd = true;
  if (dbg === true) claims.dbg = true;
  return claims;
}

/** Checks what can change between two uses of one token: time, audience, mesh, forwarding. */
function checkClaims(claims: MeshTokenClaims, kid: string, options: VerifyOptions): TokenVerdict {
  // Purpose first: a debug credential is never an identity, and only a debug credential opens debug.
  if (options.debug === "require" && !claims.dbg) return fail("not-debug", "this is not a debug credential (POST /v1/debug-tokens issues one)");
  if (options.debug !== "require" && claims.dbg) return fail("debug-token", "a debug credential is not an identity");
  if (options.mesh !== undefined && claims.iss !== options.mesh) return fail("wrong-mesh", `token was issued by mesh "${claims.iss}", not "${options.mesh}"`);
  if (claims.aud !== options.audience && !(claims.dbg && claims.aud === ANY_AUDIENCE)) return fail("wrong-callee", `token is for "${claims.aud}", not "${options.audience}"`);
  const forwarded = options.forwarded ?? "accept";
  if (forwarded === "refuse" && claims.fwd) return fail("forwarded-token", "token was attached by a sidecar for its origin and is not accepted by a sidecar");
  if (forwarded === "require" && !claims.fwd) return fail("not-forwarded", "only tokens attached by a sidecar of the mesh are accepted here");
  const nowMs = options.nowMs ?? Date.now();
  const skewMs = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  if ((claims.exp - claims.iat) * 1000 > (options.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS)) {
    return fail("lifetime-too-long", `token lives ${claims.exp - claims.iat} s, more than the ${Math.floor((options.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS) / 1000)} s allowed`);
  }
  if (Math.max(claims.iat, claims.nbf) * 1000 > nowMs + skewMs) return fail("not-yet-valid", `token is valid from ${new Date(Math.max(claims.iat, claims.nbf) * 1000).toISOString()}`);
  if (claims.exp * 1000 + skewMs <= nowMs) return fail("expired", `token expired at ${new Date(claims.exp * 1000).toISOString()}`);
  return { ok: true, claims, kid };
}

/** Verifies one token. Never throws: anything wrong with the token is a typed failure. */
export async function verifyMeshToken(token: unknown, keys: VerificationKeys, options: VerifyOptions): Promise<TokenVerdict> {
  if (typeof token !== "string" || token.length === 0) return fail("missing", "no token");
  if (token.length > MAX_TOKEN_CHARS) return fail("malformed", `token longer than ${MAX_TOKEN_CHARS} characters`);

  const cached = options.cache?.get(token, keys);
  if (cached) return checkClaims(cached.claims, cached.kid, options);

  const firstDot = token.indexOf(".");
  const secondDot = firstDot < 0 ? -1 : token.indexOf(".", firstDot + 1);
  if (secondDot < 0 || token.indexOf(".", secondDot + 1) >= 0) return fail("malformed", "a token is three base64url parts joined by '.'");
  const headerPart = token.slice(0, firstDot);
  const payloadPart = token.slice(firstDot + 1, secondDot);
  const signaturePart = token.slice(secondDot + 1);
  if (headerPart.length > MAX_HEADER_CHARS || payloadPart.length > MAX_PAYLOAD_CHARS) return fail("malformed", "token header or payload too large");
  if (signaturePart.length !== SIGNATURE_CHARS) return fail("malformed", "signature is not 64 bytes of base64url");

  const header = decodeJson(headerPart);
  if (!header) return fail("malformed", "token header is not base64url JSON");
  if (header.alg !== TOKEN_ALGORITHM) return fail("unsupported-algorithm", `alg must be "EdDSA" (got ${JSON.stringify(header.alg) ?? "none"})`);
  if (header.typ !== TOKEN_TYPE) return fail("malformed", `typ must be "${TOKEN_TYPE}"`);
  if (header.crit !== undefined) return fail("malformed", "no critical header extensions are understood");
  if (typeof header.kid !== "string" || !KID_PATTERN.test(header.kid)) return fail("malformed", "kid missing or invalid");
  const kid = header.kid;

  const entry = keys.byKid.get(kid);
  if (!entry) return fail("unknown-key", `no key "${kid}" in the key set`);
  if (entry.status === "retired" || !entry.key) return fail("retired-key", `key "${kid}" is retired`);

  const signature = base64UrlDecode(signaturePart);
  if (!signature || signature.length !== 64) return fail("malformed", "signature is not 64 bytes of base64url");
  let valid = false;
  try {
    valid = await crypto.subtle.verify({ name: "Ed25519" }, entry.key, signature, ascii.encode(token.slice(0, secondDot)));
  } catch {
    valid = false;
  }
  if (!valid) return fail("bad-signature", `signature does not verify with key "${kid}"`);

  // Only now is the payload the issuer's.
  const payload = decodeJson(payloadPart);
  if (!payload) return fail("malformed", "token payload is not base64url JSON");
  const claims = readClaims(payload);
  if (typeof claims === "string") return fail("malformed", claims);
  options.cache?.set(token, keys, claims, kid);
  return checkClaims(claims, kid, options);
}

// ---- a cache of verified signatures ---------------------------------------------------------

/**
 * Remembers tokens whose signature verified, per key set, so a caller that sends the same token on
 * every request costs one signature check. Claims (expiry, audience, mesh) are checked on every
 * use. Bounded: the oldest entry goes when it is full.
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, { keys: VerificationKeys; claims: MeshTokenClaims; kid: string }>();
  // A plain field, not a constructor parameter property: origins may run this file with type
  // stripping only (node --experimental-strip-types), which has no parameter properties.
  private readonly maxEntries: number;

  constructor(maxEntries = 1024) {
    this.maxEntries = maxEntries;
  }

  get(token: string, keys: VerificationKeys): { claims: MeshTokenClaims; kid: string } | undefined {
    const entry = this.entries.get(token);
    return entry && entry.keys === keys ? entry : undefined;
  }

  set(token: string, keys: VerificationKeys, claims: MeshTokenClaims, kid: string): void {
    if (this.entries.size >= this.maxEntries && !this.entries.has(token)) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(token, { keys, claims, kid });
  }

  get size(): number {
    return this.entries.size;
  }
}

// ---- for origins ----------------------------------------------------------------------------

export interface VerifyRequestOptions extends Omit<VerifyOptions, "audience"> {
  /** The key set without private keys (`edgemesh token keygen` prints it): JSON text, object or prepared. */
  publicKeys: string | MeshKeySet | VerificationKeys;
  /** The service this origin is: tokens for any other callee are refused. */
  audience: string;
  /** Header carrying the token; default x-edgemesh-token. */
  header?: string;
}

const preparedByObject = new WeakMap<MeshKeySet, Promise<VerificationKeys>>();

/**
 * Verifies the mesh token a request carries. For origins behind an edgemesh sidecar:
 *
 *     const verdict = await verifyMeshRequest(request, { publicKeys: env.EDGEMESH_TOKEN_PUBLIC_KEYS, audience: "reviews", mesh: "bookinfo" });
 *     if (!verdict.ok) return new Response(verdict.reason, { status: 401 });
 *     const caller = verdict.claims.sub;
 *
 * A bad key set throws KeySetError (a configuration error); a bad token never throws.
 */
export async function verifyMeshRequest(request: Request, options: VerifyRequestOptions): Promise<TokenVerdict> {
  const source = options.publicKeys;
  let keys: VerificationKeys;
  if (typeof source === "string") keys = await keySetFromSecret(source);
  else if ("byKid" in source) keys = source;
  else {
    let prepared = preparedByObject.get(source);
    if (!prepared) preparedByObject.set(source, (prepared = prepareKeySet(source)));
    keys = await prepared;
  }
  return verifyMeshToken(request.headers.get(options.header ?? TOKEN_HEADER), keys, options);
}
