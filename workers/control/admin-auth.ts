// Authentication, authorization and the audit log of the admin API, as one Hono middleware on
// every /v1 route and /metrics:
//   1. one call to the MeshControl object of the control Worker's own mesh (MESH_NAME), which holds
//      the scoped tokens (hashed) and the brute-force throttle: 429 + Retry-After while a client is
//      locked out, 401 for a missing, wrong, expired or revoked token;
//   2. the route's scope (auth/admin-token.ts `requiredAdminScope`): 403 insufficient-scope;
//   3. the route runs with the token's name and scope in `c.get("principal")`;
//   4. a change (auth/audit.ts `auditedAction`) is recorded in the audit log with the token's name.
// Nothing is cached between calls, so a revoked token stops working with the next call.
import type { Context, MiddlewareHandler } from "hono";
import { auditedAction, auditOutcomeOf, auditRecord, type AuditRecord } from "../../auth/audit.ts";
import { requiredAdminScope, scopeAllows, type AdminPrincipal } from "../../auth/admin-token.ts";
import { clientKeyOf, retryAfterSeconds } from "../../auth/throttle.ts";
import type { MeshControl } from "../../durable/mesh-control.ts";

/** What a route may tell the audit log beyond what the path says (never a secret). */
export interface AuditNote {
  target?: string;
  detail?: AuditRecord["detail"];
}

/** Set by the middleware for the routes behind it. */
export interface AdminVariables {
  principal: AdminPrincipal;
  audit: AuditNote | undefined;
}

interface AdminAuthEnv {
  MESH_CONTROL: DurableObjectNamespace<MeshControl>;
  MESH_NAME: string;
}

type CredentialsApi = Pick<MeshControl, "authenticateAdmin" | "recordAudit">;

/** The object that holds the control plane's credentials and audit log: the one of MESH_NAME. */
export function credentialsHome(env: AdminAuthEnv): CredentialsApi {
  return env.MESH_CONTROL.get(env.MESH_CONTROL.idFromName(env.MESH_NAME)) as unknown as CredentialsApi;
}

const MESH_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Answers larger than this are not read for audit details. */
const MAX_AUDITED_ANSWER_BYTES = 64 * 1024;

/** Version and generation from a JSON answer, when it has them (policy, registry changes). */
async function detailFromAnswer(res: Response): Promise<AuditRecord["detail"]> {
  const detail: AuditRecord["detail"] = { status: res.status };
  if (!res.headers.get("content-type")?.includes("application/json")) return detail;
  if (Number(res.headers.get("content-length") ?? 0) > MAX_AUDITED_ANSWER_BYTES) return detail;
  try {
    const body = (await res.clone().json()) as Record<string, unknown>;
    for (const key of ["version", "generation", "currentVersion"]) if (typeof body[key] === "number") detail[key] = body[key] as number;
  } catch {
    // Not JSON after all: the status says enough.
  }
  return detail;
}

async function recordAudit(c: Context, principal: AdminPrincipal, action: { action: string; target: string }, env: AdminAuthEnv, detail: AuditRecord["detail"]): Promise<void> {
  const note = c.get("audit") as AuditNote | undefined;
  const mesh = c.req.query("mesh") ?? env.MESH_NAME;
  // A policy change is about the version it made, when the path names nothing.
  const target = note?.target ?? (action.target || (typeof detail.version === "number" ? String(detail.version) : ""));
  const record = auditRecord(principal, {
    mesh: MESH_NAME.test(mesh) ? mesh : "(invalid)",
    action: action.action,
    target,
    outcome: auditOutcomeOf(c.res.status),
    clientIp: clientKeyOf(c.req.raw.headers),
    atMs: Date.now(),
    detail: { ...detail, ...note?.detail },
  });
  try {
    await credentialsHome(env).recordAudit(record);
  } catch (err) {
    // The change is done; losing its record must not turn it into an error for the client.
    console.error("edgemesh control: audit record lost", record.action, err);
  }
}

export const requireAdminToken: MiddlewareHandler = async (c, next) => {
  const env = c.env as AdminAuthEnv;
  const result = await credentialsHome(env).authenticateAdmin(c.req.header("authorization") ?? null, clientKeyOf(c.req.raw.headers));
  if (!result.ok && result.status === 429) {
    return c.json({ error: "too many failed authentications from this client; wait before trying again", retryAfterSeconds: Number(retryAfterSeconds(result.retryAfterMs)) }, 429, {
      "retry-after": retryAfterSeconds(result.retryAfterMs),
    });
  }
  if (!result.ok) {
    const why = result.reason === "missing-token" ? "missing admin token" : "unknown, expired or revoked admin token";
    return c.json({ error: `${why}: send Authorization: Bearer <token> (EDGEMESH_ADMIN_TOKEN, or one made with edgemesh tokens create)`, reason: result.reason }, 401, {
      "www-authenticate": 'Bearer realm="edgemesh"',
    });
  }
  const principal = result.principal;
  const url = new URL(c.req.url);
  const audited = auditedAction(c.req.method, url.pathname, url.searchParams);
  const needed = requiredAdminScope(c.req.method, url.pathname);
  if (!scopeAllows(principal.scope, needed)) {
    c.res = c.json({ error: "insufficient-scope", detail: `${c.req.method} ${url.pathname} needs a token with scope ${needed}; "${principal.name}" has ${principal.scope}`, needed, held: principal.scope }, 403);
    if (audited) await recordAudit(c, principal, audited, env, { status: 403, needed });
    return c.res;
  }
  c.set("principal", principal);
  await next();
  if (audited) await recordAudit(c, principal, audited, env, await detailFromAnswer(c.res));
};

/** The caller of an admin route (set by requireAdminToken). */
export function principalOf(c: Context): AdminPrincipal {
  const principal = c.get("principal") as AdminPrincipal | undefined;
  if (!principal) throw new Error("admin route reached without the admin-token middleware");
  return principal;
}

/** Tells the audit log what a change was about, when the path does not say (never a secret). */
export function noteForAudit(c: Context, note: AuditNote): void {
  c.set("audit", note);
}
