// The audit log's record: which admin token (by name, never by value) did what, when, from where,
// and whether it was allowed. The author of a change comes from the token that made it, not from a
// header the client chose. `auditedAction` says which admin calls are recorded and under what name.
import type { AdminPrincipal, AdminScope } from "./admin-token.ts";

export type AuditOutcome = "ok" | "refused" | "failed";

export interface AuditRecord {
  /** Sequence number, given by the store. */
  seq: number;
  atMs: number;
  /** The mesh the call was about (`?mesh=`, else the control Worker's own). */
  mesh: string;
  /** The token's name; "bootstrap" for EDGEMESH_ADMIN_TOKEN; "" when no valid token was given. */
  tokenName: string;
  /** The scope the token held ("" without one). */
  tokenScope: AdminScope | "";
  /** What was attempted, e.g. "policy.apply", "tokens.create", "registry.deregister". */
  action: string;
  /** What it was done to: a policy version, a token name, "<service>/<endpoint>", … */
  target: string;
  outcome: AuditOutcome;
  /** Client address (cf-connecting-ip) as the control plane saw it. */
  clientIp: string;
  /** Small, value-free facts: a new version number, a scope, an HTTP status. */
  detail: Record<string, string | number | boolean | null>;
}

/** Keys whose values must never reach the log, whatever a caller passes in `detail`. */
const SECRET_DETAIL_KEY = /token|secret|password|authorization|key/i;

/** Builds a record (without its sequence); secret-looking detail keys are dropped, not stored. */
export function auditRecord(
  principal: AdminPrincipal | undefined,
  fields: { mesh?: string; action: string; target?: string; outcome: AuditOutcome; clientIp: string; atMs: number; detail?: AuditRecord["detail"] },
): Omit<AuditRecord, "seq"> {
  const detail: AuditRecord["detail"] = {};
  for (const [key, value] of Object.entries(fields.detail ?? {})) if (!SECRET_DETAIL_KEY.test(key)) detail[key] = value;
  return {
    atMs: fields.atMs,
    mesh: fields.mesh ?? "",
    tokenName: principal?.name ?? "",
    tokenScope: principal?.scope ?? "",
    action: fields.action,
    target: fields.target ?? "",
    outcome: fields.outcome,
    clientIp: fields.clientIp,
    detail,
  };
}

/** The outcome of an admin call, from its HTTP status: 2xx/3xx ok, 4xx refused, 5xx failed. */
export function auditOutcomeOf(status: number): AuditOutcome {
  return status < 400 ? "ok" : status < 500 ? "refused" : "failed";
}

/** [method, path pattern, action, target from the match]. */
const ACTIONS: readonly [string, RegExp, string, ((m: RegExpExecArray) => string) | undefined][] = [
  ["POST", /^\/v1\/policy$/, "policy.apply", undefined],
  ["POST", /^\/v1\/policy\/rollback$/, "policy.rollback", undefined],
  ["POST", /^\/v1\/import$/, "import.apply", undefined],
  ["POST", /^\/v1\/registry\/([^/]+)$/, "registry.register", (m) => m[1]!],
  ["DELETE", /^\/v1\/registry\/([^/]+)\/([^/]+)$/, "registry.deregister", (m) => `${m[1]}/${m[2]}`],
  ["POST", /^\/v1\/tokens$/, "tokens.create", undefined],
  ["DELETE", /^\/v1\/tokens\/([^/]+)$/, "tokens.revoke", (m) => m[1]!],
  ["POST", /^\/v1\/mesh-tokens$/, "mesh-tokens.issue", undefined],
  ["POST", /^\/v1\/debug-tokens$/, "debug-tokens.issue", undefined],
  ["PUT", /^\/v1\/debug\/fault$/, "debug.fault", undefined],
];

/** POSTs that change nothing, and a lease renewal: routine, every few seconds per instance. */
const NOT_AUDITED = [/^\/v1\/policy\/validate$/, /^\/v1\/analytics\/sql$/, /^\/v1\/registry\/[^/]+\/[^/]+\/heartbeat$/];

/**
 * Whether an admin call is recorded, and as what: every change (a method other than GET and HEAD)
 * but heartbeats and the POSTs that change nothing, plus minting debug credentials. An import is
 * recorded only when it applies (`?apply=true`). A change to a route not in the table is recorded
 * under its method and path, so a new route is audited before anyone names it.
 */
export function auditedAction(method: string, pathname: string, query: URLSearchParams): { action: string; target: string } | undefined {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return undefined;
  if (NOT_AUDITED.some((p) => p.test(pathname))) return undefined;
  for (const [m, pattern, action, target] of ACTIONS) {
    if (m !== method) continue;
    const match = pattern.exec(pathname);
    if (!match) continue;
    if (action === "import.apply" && query.get("apply") !== "true") return undefined;
    return { action, target: target ? decodeSegment(target(match)) : "" };
  }
  return { action: `${method} ${pathname}`, target: "" };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
