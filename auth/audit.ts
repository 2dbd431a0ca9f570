// The audit log's record: which admin token (by name, never by value) did what, when, from where,
// and whether it was allowed. The author of a change comes from the token that made it, not from a
// header the client chose.
import type { AdminPrincipal, AdminScope } from "./admin-token.ts";

export type AuditOutcome = "ok" | "refused" | "failed";

export interface AuditRecord {
  /** Sequence number, given by the store. */
  seq: number;
  atMs: number;
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
  fields: { action: string; target?: string; outcome: AuditOutcome; clientIp: string; atMs: number; detail?: AuditRecord["detail"] },
): Omit<AuditRecord, "seq"> {
  const detail: AuditRecord["detail"] = {};
  for (const [key, value] of Object.entries(fields.detail ?? {})) if (!SECRET_DETAIL_KEY.test(key)) detail[key] = value;
  return {
    atMs: fields.atMs,
    tokenName: principal?.name ?? "",
    tokenScope: principal?.scope ?? "",
    action: fields.action,
    target: fields.target ?? "",
    outcome: fields.outcome,
    clientIp: fields.clientIp,
    detail,
  };
}
