// Admin credentials: scopes, the route table, the bearer header, and a constant-time comparison
// (auth/ is the home of credential helpers: pure, Web-standard, importing nothing else of ours).
// Tokens are checked in MeshControl (durable/admin-tokens.ts); sidecars hold no admin credential.

export function timingSafeEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const left = enc.encode(a);
  const right = enc.encode(b);
  // Compare over the longer length so the time does not reveal where a shorter guess ends.
  const length = Math.max(left.length, right.length);
  let diff = left.length ^ right.length;
  for (let i = 0; i < length; i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
}

// ---- scopes ---------------------------------------------------------------------------------
// Admin tokens carry one scope; each includes the ones before it: read < write < admin.

export type AdminScope = "read" | "write" | "admin";
export const ADMIN_SCOPES: readonly AdminScope[] = ["read", "write", "admin"];

/** The name the bootstrap token (secret EDGEMESH_ADMIN_TOKEN, scope admin) goes by in the audit log. */
export const BOOTSTRAP_TOKEN_NAME = "bootstrap";

export interface AdminPrincipal {
  /** The token's name (never its value): what the audit log records. */
  name: string;
  scope: AdminScope;
}

export function scopeAllows(held: AdminScope, needed: AdminScope): boolean {
  return ADMIN_SCOPES.indexOf(held) >= ADMIN_SCOPES.indexOf(needed);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(authorization: string | null | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match ? match[1] : undefined;
}

/**
 * Routes that change nothing although their method is POST. A debug credential only shows what a
 * read token can already see (routes, subsets, endpoint ids, versions), so minting one is a read.
 */
const READS_BY_POST = new Set(["/v1/policy/validate", "/v1/analytics/sql", "/v1/debug-tokens"]);
/** Prefixes whose every method needs admin: credentials and the test-only fault switch. */
const ADMIN_PREFIXES = ["/v1/tokens", "/v1/mesh-tokens", "/v1/debug/"];
/** Prefixes whose changes need write: the policy (directly, imported, or rolled out) and the registry. */
const WRITE_PREFIXES = ["/v1/policy", "/v1/import", "/v1/registry/", "/v1/rollouts/"];

function under(pathname: string, prefix: string): boolean {
  return prefix.endsWith("/") ? pathname.startsWith(prefix) : pathname === prefix || pathname.startsWith(`${prefix}/`);
}

/**
 * The scope an admin route needs (the table in docs/security.md). Reads (and minting a debug
 * credential) need read; policy, import and registry changes need write; token management,
 * minting mesh tokens and the fault switch need admin. A change to any route not listed needs admin, so a new route is closed until classified.
 */
export function requiredAdminScope(method: string, pathname: string): AdminScope {
  if (ADMIN_PREFIXES.some((p) => under(pathname, p))) return "admin";
  if (method === "GET" || method === "HEAD" || READS_BY_POST.has(pathname)) return "read";
  if (WRITE_PREFIXES.some((p) => under(pathname, p))) return "write";
  return "admin";
}
