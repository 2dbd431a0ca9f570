// Credentials through the admin API:
//   POST   /v1/tokens             (admin) a scoped admin token: {name, scope, ttlMs?}; its value is in this answer only
//   GET    /v1/tokens             (admin) names, scopes, times; never a value
//   DELETE /v1/tokens/:name       (admin) revokes at once
//   POST   /v1/mesh-tokens        (admin) a mesh token: {caller, callee, ttlMs}; lets its holder act as the caller
//   POST   /v1/debug-tokens       (read)  a debug credential: {service?, ttlMs?}; opens sidecars' debug headers
// Admin tokens live in the MeshControl object of the control Worker's own mesh, with the throttle
// that checks them; mesh and debug tokens are signed here with EDGEMESH_TOKEN_KEYS.
import { Hono } from "hono";
import { ADMIN_SCOPES, type AdminScope } from "../../../auth/admin-token.ts";
import { ANY_AUDIENCE, inspectToken, IssueError, issueToken, KeySetError, prepareSigningKeys, type SigningKeys } from "../../../auth/mesh-token.ts";
import { noteForAudit, principalOf } from "../admin-auth.ts";
import { meshName, readJson, type ControlBindings, type Ctx, type MeshControlApi } from "../common.ts";

export const tokenRoutes = new Hono<ControlBindings>();

/** How long a debug credential lives unless asked otherwise. */
export const DEFAULT_DEBUG_TOKEN_TTL_MS = 60 * 60_000;

type TokenStore = Pick<MeshControlApi, "createAdminToken" | "listAdminTokens" | "revokeAdminToken">;

function credentialsHome(c: Ctx): TokenStore {
  const ns = c.env.MESH_CONTROL;
  return ns.get(ns.idFromName(c.env.MESH_NAME)) as unknown as TokenStore;
}

// Imported once per isolate and key-set text (CryptoKeys are not I/O); a changed secret is a new text.
let signer: { text: string; keys: Promise<SigningKeys> } | undefined;

function signingKeys(text: string): Promise<SigningKeys> {
  if (signer?.text !== text) {
    const keys = prepareSigningKeys(text);
    keys.catch(() => (signer = undefined));
    signer = { text, keys };
  }
  return signer.keys;
}

const asObject = (v: unknown): Record<string, unknown> => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function optionalTtl(raw: unknown): number | undefined | "bad" {
  if (raw === undefined) return undefined;
  return typeof raw === "number" && Number.isSafeInteger(raw) && raw > 0 ? raw : "bad";
}

tokenRoutes.post("/v1/tokens", async (c) => {
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const { name, scope, ttlMs } = asObject(body.value);
  if (typeof name !== "string" || !ADMIN_SCOPES.includes(scope as AdminScope)) {
    return c.json({ error: `give {"name": "<lowercase name>", "scope": "${ADMIN_SCOPES.join('" | "')}", "ttlMs"?: <ms>}` }, 400);
  }
  const ttl = optionalTtl(ttlMs);
  if (ttl === "bad") return c.json({ error: "ttlMs must be a positive whole number of milliseconds" }, 400);
  noteForAudit(c, { target: name, detail: { scope: scope as string, ...(ttl !== undefined ? { ttlMs: ttl } : {}) } });
  const result = await credentialsHome(c).createAdminToken({ name, scope: scope as AdminScope, ...(ttl !== undefined ? { ttlMs: ttl } : {}) }, principalOf(c).name);
  if (!result.ok) return c.json({ error: result.message, reason: result.reason }, result.reason === "invalid" ? 400 : 409);
  return c.json({ ...result.info, token: result.token, note: "the value is shown this once; it is stored only as its SHA-256" }, 201, { "cache-control": "no-store" });
});

tokenRoutes.get("/v1/tokens", async (c) => c.json({ tokens: await credentialsHome(c).listAdminTokens() }));

tokenRoutes.delete("/v1/tokens/:name", async (c) => {
  const name = c.req.param("name");
  return (await credentialsHome(c).revokeAdminToken(name)) ? c.json({ ok: true, revoked: name }) : c.json({ error: `there is no admin token named "${name}"` }, 404);
});

/** Signs a token with the control Worker's key set; the answer for a missing or broken one. */
async function sign(c: Ctx, options: Parameters<typeof issueToken>[1]): Promise<Response> {
  const text = c.env.EDGEMESH_TOKEN_KEYS;
  if (!text) return c.json({ error: "the control Worker has no EDGEMESH_TOKEN_KEYS secret, so it cannot sign tokens (edgemesh token keygen makes a key set)" }, 503);
  let token: string;
  try {
    token = await issueToken(await signingKeys(text), options);
  } catch (err) {
    if (err instanceof IssueError) return c.json({ error: err.message }, 400);
    if (err instanceof KeySetError) return c.json({ error: `EDGEMESH_TOKEN_KEYS cannot sign: ${err.message}` }, 503);
    throw err;
  }
  const parts = inspectToken(token);
  return c.json({ token, header: parts?.header, claims: parts?.claims }, 201, { "cache-control": "no-store" });
}

tokenRoutes.post("/v1/mesh-tokens", async (c) => {
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const { caller, callee, ttlMs } = asObject(body.value);
  if (typeof caller !== "string" || typeof callee !== "string" || typeof ttlMs !== "number") {
    return c.json({ error: 'give {"caller": "<who the holder may act as>", "callee": "<the service it may call>", "ttlMs": <ms>}' }, 400);
  }
  noteForAudit(c, { target: `${caller}->${callee}`, detail: { ttlMs } });
  return sign(c, { mesh: meshName(c), caller, callee, ttlMs });
});

tokenRoutes.post("/v1/debug-tokens", async (c) => {
  const body = await readJson(c, undefined, {});
  if (!body.ok) return body.response;
  const { service, ttlMs } = asObject(body.value);
  const ttl = optionalTtl(ttlMs);
  if ((service !== undefined && typeof service !== "string") || ttl === "bad") {
    return c.json({ error: 'give {"service"?: "<one service, default every one>", "ttlMs"?: <ms, default 3600000>}' }, 400);
  }
  const callee = (service as string | undefined) ?? ANY_AUDIENCE;
  noteForAudit(c, { target: callee, detail: { ttlMs: ttl ?? DEFAULT_DEBUG_TOKEN_TTL_MS } });
  return sign(c, { mesh: meshName(c), caller: principalOf(c).name, callee, ttlMs: ttl ?? DEFAULT_DEBUG_TOKEN_TTL_MS, debug: true });
});
