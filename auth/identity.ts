// Who is calling: the first stage of the sidecar's pipeline. Over a Worker service binding the
// binding's own `ctx.props.caller` names the caller; it is set by the caller's deployment config,
// so the calling code cannot forge it. Anything else must present a mesh token. A token that does
// not verify, or an identity header with no token behind it, is never trusted: per the service's
// policy it is refused (401) or the caller is treated as `external`. No claim at all is `external`.
import { EXTERNAL_CALLER } from "./caller-names.ts";
import { IDENTITY_PATTERN, verifyMeshToken, type TokenFailureReason, type VerificationKeys, type VerifiedTokenCache } from "./verify.ts";

export { EXTERNAL_CALLER };
/** An identity a client may claim in plain text; without a valid token behind it, it is refused or ignored. */
export const CALLER_CLAIM_HEADER = "x-edgemesh-caller";

export type UnverifiedIdentityPolicy = "refuse" | "external";

export type IdentityFailureReason = TokenFailureReason | "claim-without-token" | "claim-mismatch" | "tokens-not-configured";

export type CallerIdentity =
  | { kind: "verified"; caller: string; via: "binding" | "token" }
  /** `unverified`: a claim was made and not believed (policy `external`). */
  | { kind: "external"; unverified?: { reason: IdentityFailureReason; detail: string } }
  | { kind: "refused"; reason: IdentityFailureReason; detail: string };

export interface CallerEvidence {
  /** `ctx.props.caller` of the service binding the request came over; undefined from the internet. */
  bindingCaller: unknown;
  /** The mesh token header's value, if any. */
  token: string | null;
  /** The plain identity header's value, if any (never trusted on its own). */
  claimedCaller: string | null;
}

export interface IdentifyOptions {
  mesh: string;
  /** This sidecar's service: a token must be for it. */
  service: string;
  unverifiedIdentity: UnverifiedIdentityPolicy;
  /** The mesh's key set; undefined when no EDGEMESH_TOKEN_KEYS is configured. */
  keys: VerificationKeys | undefined;
  /** From the snapshot's `access.tokens`; the verifier's defaults otherwise. */
  clockSkewMs?: number;
  maxLifetimeMs?: number;
  nowMs?: number;
  cache?: VerifiedTokenCache;
}

const EXTERNAL: CallerIdentity = { kind: "external" };

function unverified(options: IdentifyOptions, reason: IdentityFailureReason, detail: string): CallerIdentity {
  return options.unverifiedIdentity === "refuse" ? { kind: "refused", reason, detail } : { kind: "external", unverified: { reason, detail } };
}

/**
 * The caller a service binding's `props.caller` names, or undefined when it names none (not a
 * string, not a caller name, or "external", which no one may claim).
 */
export function bindingCaller(propsCaller: unknown): string | undefined {
  return typeof propsCaller === "string" && propsCaller !== EXTERNAL_CALLER && IDENTITY_PATTERN.test(propsCaller) ? propsCaller : undefined;
}

/** `ctx.props.caller` of an invocation, unchecked: whatever the binding's props hold. */
export function propsCaller(props: unknown): unknown {
  return typeof props === "object" && props !== null ? (props as { caller?: unknown }).caller : undefined;
}

/**
 * Names the caller when no token has to be verified (a service binding, a bare identity header, or
 * nothing), without a promise; undefined when a token is presented and `identifyCaller` must check it.
 * The sidecar's hot path: `identifyWithoutVerifying(e, o) ?? await identifyCaller(e, o)`.
 */
export function identifyWithoutVerifying(evidence: CallerEvidence, options: IdentifyOptions): CallerIdentity | undefined {
  const fromBinding = bindingCaller(evidence.bindingCaller);
  if (fromBinding !== undefined) return { kind: "verified", caller: fromBinding, via: "binding" };
  if (evidence.token !== null) return undefined;
  if (evidence.claimedCaller !== null) {
    return unverified(options, "claim-without-token", `${CALLER_CLAIM_HEADER} without a mesh token is not believed`);
  }
  return EXTERNAL;
}

/** Names the caller of one request, verifying its token if it has one. Never throws. */
export async function identifyCaller(evidence: CallerEvidence, options: IdentifyOptions): Promise<CallerIdentity> {
  const known = identifyWithoutVerifying(evidence, options);
  if (known) return known;
  if (!options.keys) return unverified(options, "tokens-not-configured", "this sidecar has no EDGEMESH_TOKEN_KEYS, so it cannot verify mesh tokens");
  const verdict = await verifyMeshToken(evidence.token, options.keys, {
    audience: options.service,
    mesh: options.mesh,
    clockSkewMs: options.clockSkewMs,
    maxLifetimeMs: options.maxLifetimeMs,
    nowMs: options.nowMs,
    forwarded: "refuse",
    cache: options.cache,
  });
  if (!verdict.ok) return unverified(options, verdict.reason, verdict.detail);
  if (evidence.claimedCaller !== null && evidence.claimedCaller !== verdict.claims.sub) {
    return unverified(options, "claim-mismatch", `${CALLER_CLAIM_HEADER} says "${evidence.claimedCaller}" but the token names "${verdict.claims.sub}"`);
  }
  return { kind: "verified", caller: verdict.claims.sub, via: "token" };
}

/** The name access rules, rate limits and telemetry use for this caller. */
export function callerName(identity: CallerIdentity): string {
  return identity.kind === "verified" ? identity.caller : EXTERNAL_CALLER;
}

/** The 401 an identity claim that does not verify gets, under policy `refuse`. */
export function identityRefusedResponse(identity: Extract<CallerIdentity, { kind: "refused" }>): Response {
  return new Response(JSON.stringify({ error: "unauthenticated", reason: identity.reason, detail: identity.detail }, null, 2) + "\n", {
    status: 401,
    headers: { "content-type": "application/json", "x-edgemesh-unauthenticated": identity.reason, "x-edgemesh-generated": "1" },
  });
}
