// The sidecar's identity stage and the mesh tokens it handles, over auth/identity.ts and
// auth/mesh-token.ts: who is calling (binding props, then a verified token, then "external"), the
// debug credential that opens the debug headers, and the token the sidecar attaches when it
// forwards to a URL endpoint. Keys come from the secret EDGEMESH_TOKEN_KEYS, imported once per
// isolate and text; verified signatures and issued tokens are cached per isolate, so a caller that
// repeats its token costs a map lookup, and an origin call costs about two signatures per caller
// per forwardedTtlMs.
import { EXTERNAL_CALLER } from "../../auth/caller-names.ts";
import { bindingCaller, CALLER_CLAIM_HEADER, identifyCaller, identifyWithoutVerifying, propsCaller, type CallerEvidence, type CallerIdentity, type IdentifyOptions } from "../../auth/identity.ts";
import { CachedTokenIssuer, keySetFromSecret, prepareSigningKeys, TOKEN_HEADER, VerifiedTokenCache, verifyMeshToken, type VerificationKeys } from "../../auth/mesh-token.ts";
import type { CompiledAccess, ServiceSnapshot } from "../../policies/snapshot.ts";

/** With `x-edgemesh-debug: 1`, the debug credential (`POST /v1/debug-tokens`) travels here. */
export const DEBUG_TOKEN_HEADER = "x-edgemesh-debug-token";

export interface IdentityEnv {
  /** The mesh token key set (JSON): verifies inbound tokens, signs the ones for URL endpoints. */
  EDGEMESH_TOKEN_KEYS?: string;
}

/** What identifying a caller needs of one snapshot, made once when the snapshot is installed. */
export type PreparedIdentity = Omit<IdentifyOptions, "nowMs"> & { forwardedTtlMs: number };

/** The token settings of snapshots compiled before access policy existed: the schema's defaults. */
const DEFAULT_TOKEN_SETTINGS: CompiledAccess["tokens"] = { clockSkewMs: 30_000, maxLifetimeMs: 86_400_000, forwardedTtlMs: 300_000 };

// Per isolate: plain data and CryptoKeys, no I/O objects.
const verifiedTokens = new VerifiedTokenCache();
export const identityStats = { verified: 0, refused: 0, treatedAsExternal: 0, forwardedTokens: 0, keyErrors: 0, lastKeyError: "" };

export function prepareIdentity(snapshot: ServiceSnapshot): PreparedIdentity {
  const tokens = snapshot.access?.tokens ?? DEFAULT_TOKEN_SETTINGS;
  return {
    mesh: snapshot.mesh,
    service: snapshot.service,
    unverifiedIdentity: snapshot.access?.unverifiedIdentity ?? "refuse",
    // The key set comes from env, which a request brings: filled in when a token is verified.
    keys: undefined,
    clockSkewMs: tokens.clockSkewMs,
    maxLifetimeMs: tokens.maxLifetimeMs,
    forwardedTtlMs: tokens.forwardedTtlMs,
    cache: verifiedTokens,
  };
}

/** The caller the binding names, or "external": telemetry's source until identity is known. */
export function bindingCallerOf(props: unknown): string {
  return bindingCaller(propsCaller(props)) ?? EXTERNAL_CALLER;
}

function keyError(err: unknown): undefined {
  identityStats.keyErrors++;
  identityStats.lastKeyError = err instanceof Error ? err.message : String(err);
  // A configuration error, named by field (never a key's value); tokens are refused meanwhile.
  console.error("edgemesh sidecar: EDGEMESH_TOKEN_KEYS cannot be used:", identityStats.lastKeyError);
  return undefined;
}

/** The last key-set text that could not be used: it is not parsed (nor logged) again per request. */
let brokenKeyText: string | undefined;

async function verificationKeys(env: IdentityEnv): Promise<VerificationKeys | undefined> {
  const text = env.EDGEMESH_TOKEN_KEYS;
  if (!text || text === brokenKeyText) return undefined;
  return keySetFromSecret(text).catch((err: unknown) => {
    brokenKeyText = text;
    return keyError(err);
  });
}

function counted(identity: CallerIdentity): CallerIdentity {
  if (identity.kind === "verified") identityStats.verified++;
  else if (identity.kind === "refused") identityStats.refused++;
  else if (identity.unverified) identityStats.treatedAsExternal++;
  return identity;
}

async function verifying(evidence: CallerEvidence, prepared: PreparedIdentity, env: IdentityEnv): Promise<CallerIdentity> {
  const keys = await verificationKeys(env);
  return counted(await identifyCaller(evidence, { ...prepared, keys }));
}

/**
 * Who is calling. Without a promise unless a token must be verified: a binding's props win and
 * then no header is read; a request with neither token nor claim is "external".
 */
export function identify(request: Request, props: unknown, prepared: PreparedIdentity, env: IdentityEnv): CallerIdentity | Promise<CallerIdentity> {
  const fromProps = propsCaller(props);
  const evidence: CallerEvidence = bindingCaller(fromProps) !== undefined
    ? { bindingCaller: fromProps, token: null, claimedCaller: null }
    : { bindingCaller: fromProps, token: request.headers.get(TOKEN_HEADER), claimedCaller: request.headers.get(CALLER_CLAIM_HEADER) };
  const known = identifyWithoutVerifying(evidence, prepared);
  return known ? (known.kind === "refused" ? counted(known) : known) : verifying(evidence, prepared, env);
}

/**
 * Whether this request's debug credential opens the debug headers: a mesh token with the `dbg`
 * claim for this service (or every service) of this mesh, verified with the sidecar's keys.
 */
export async function debugCredentialValid(request: Request, prepared: PreparedIdentity, env: IdentityEnv): Promise<boolean> {
  const token = request.headers.get(DEBUG_TOKEN_HEADER);
  if (token === null) return false;
  const keys = await verificationKeys(env);
  if (!keys) return false;
  const verdict = await verifyMeshToken(token, keys, {
    audience: prepared.service, mesh: prepared.mesh, clockSkewMs: prepared.clockSkewMs, maxLifetimeMs: prepared.maxLifetimeMs, debug: "require", cache: verifiedTokens,
  });
  return verdict.ok;
}

// One issuer per key-set text, mesh and lifetime: a changed secret or policy makes a new one.
let issuer: { text: string; mesh: string; ttlMs: number; issuer: Promise<CachedTokenIssuer | undefined> } | undefined;

/**
 * The token a try to a URL endpoint carries: `caller` may call this service, marked forwarded
 * (`fwd`) so it cannot be replayed into the mesh. Undefined without a key set that can sign.
 */
export async function forwardedToken(caller: string, prepared: PreparedIdentity, env: IdentityEnv): Promise<string | undefined> {
  const text = env.EDGEMESH_TOKEN_KEYS;
  if (!text) return undefined;
  if (issuer?.text !== text || issuer.mesh !== prepared.mesh || issuer.ttlMs !== prepared.forwardedTtlMs) {
    const ttlMs = prepared.forwardedTtlMs;
    const mesh = prepared.mesh;
    issuer = { text, mesh, ttlMs, issuer: prepareSigningKeys(text).then((keys) => new CachedTokenIssuer(keys, mesh, ttlMs), keyError) };
  }
  const signer = await issuer.issuer;
  if (!signer) return undefined;
  identityStats.forwardedTokens++;
  return signer.tokenFor(caller, prepared.service).catch(keyError);
}

/** For the sidecar's security debug view. */
export function identityStatus(): typeof identityStats & { cachedTokens: number } {
  return { ...identityStats, cachedTokens: verifiedTokens.size };
}
