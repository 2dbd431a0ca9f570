// What every admin route module shares: the env, the MeshControl stub, request-body limits and
// the parsing of common parameters.
import type { Context } from "hono";
import type { MeshControl } from "../../durable/mesh-control.ts";
import { MESH_EVENT_TYPES } from "../../policies/events.ts";
import type { AdminVariables } from "./admin-auth.ts";
import type { AnalyticsEnv } from "./analytics-routes.ts";

export interface ControlEnv extends AnalyticsEnv {
  MESH_CONTROL: DurableObjectNamespace<MeshControl>;
  /** The mesh used when a call names none (`?mesh=`). */
  MESH_NAME: string;
  EDGEMESH_ADMIN_TOKEN: string;
  /** The mesh token key set (JSON, with the signing key's private part): mints mesh and debug tokens. */
  EDGEMESH_TOKEN_KEYS?: string;
  /** "true" enables PUT /v1/debug/fault (local and test meshes only). */
  EDGEMESH_CONTROL_FAULTS?: string;
}

export type ControlBindings = { Bindings: ControlEnv; Variables: AdminVariables };
export type Ctx = Context<ControlBindings>;

/** The largest policy document the admin API accepts (POST /v1/policy, /v1/policy/validate). */
export const MAX_POLICY_BYTES = 8 * 1024 * 1024;
/** The largest body any other admin route accepts. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export function meshName(c: Ctx): string {
  return c.req.query("mesh") ?? c.env.MESH_NAME;
}

/** The object's methods as declared; the stub's generic RPC types are too deep for tsc here. */
export type MeshControlApi = Pick<
  MeshControl,
  | "missingPolicyPieces" | "commitPolicy" | "rollbackTarget" | "policyText" | "getPolicy" | "history" | "diff" | "activeVersion"
  | "register" | "deregister" | "registry" | "serviceSnapshot" | "sidecarsSeen" | "heartbeat" | "healthStatus" | "healthHistory"
  | "events" | "syncStatus" | "setFault" | "fetch" | "policyLoadError"
  | "createAdminToken" | "listAdminTokens" | "revokeAdminToken" | "audit"
  | "rolloutList" | "rolloutStatus" | "rolloutAction"
>;

export function control(c: Ctx): MeshControlApi {
  const ns = c.env.MESH_CONTROL;
  return ns.get(ns.idFromName(meshName(c))) as unknown as MeshControlApi;
}

const mebibytes = (n: number) => (n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`);

// Any route module's context will do (import-routes.ts is generic over its env).
type AnyCtx = Context<any>;

function tooLarge(c: AnyCtx, limitBytes: number, seen: string): Response {
  return c.json(
    { error: `request body too large (${seen}); this route accepts at most ${limitBytes} bytes (${mebibytes(limitBytes)})`, limitBytes },
    413,
  );
}

/**
 * The request body as text, refused with 413 past `limitBytes`: at once when Content-Length says
 * so, otherwise as soon as the streamed body passes the limit (it is never read whole first).
 */
export async function readBody(c: AnyCtx, limitBytes: number): Promise<{ ok: true; text: string } | { ok: false; response: Response }> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared) > limitBytes) {
    return { ok: false, response: tooLarge(c, limitBytes, `Content-Length ${declared}`) };
  }
  const body = c.req.raw.body;
  if (!body) return { ok: true, text: "" };
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > limitBytes) {
      await reader.cancel().catch(() => {});
      return { ok: false, response: tooLarge(c, limitBytes, `more than ${limitBytes} bytes`) };
    }
    text += decoder.decode(value, { stream: true });
  }
  return { ok: true, text: text + decoder.decode() };
}

/** The body parsed as JSON (400 when it is not), within `limitBytes` (413). */
export async function readJson(c: Ctx, limitBytes = MAX_ADMIN_BODY_BYTES, emptyAs?: unknown): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const body = await readBody(c, limitBytes);
  if (!body.ok) return body;
  if (emptyAs !== undefined && body.text.trim() === "") return { ok: true, value: emptyAs };
  try {
    return { ok: true, value: JSON.parse(body.text) };
  } catch (err) {
    return { ok: false, response: c.json({ error: "the body is not valid JSON", detail: (err as Error).message }, 400) };
  }
}

/** Parses If-Match (`"3"`, `3` or `W/"3"`) into the expected version; `*` or absent means none. */
export function expectedVersion(c: Ctx): number | undefined | "bad" {
  const raw = c.req.header("if-match");
  if (raw === undefined || raw.trim() === "*") return undefined;
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(raw.trim());
  return m ? Number(m[1]) : "bad";
}

export const badIfMatch = (c: Ctx) => c.json({ error: 'If-Match must be a policy version such as "3" (or * for any)' }, 400);

/** A non-negative integer query parameter: undefined when absent, "bad" otherwise. */
export function integerParam(c: Ctx, name: string, min = 0): number | undefined | "bad" {
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  return /^\s*-?\d{1,15}\s*$/.test(raw) && Number.isSafeInteger(value) && value >= min ? value : "bad";
}

/** `?limit=`: undefined when absent, "bad" unless a positive integer. */
export function limitParam(c: Ctx): number | undefined | "bad" {
  return integerParam(c, "limit", 1);
}

export const badLimit = (c: Ctx) => c.json({ error: `?limit must be a positive integer, got "${c.req.query("limit")}"` }, 400);

/** `?types=a,b`: undefined for all types, "bad" with the unknown ones named. */
export function typesParam(c: Ctx): string[] | undefined | { bad: string[] } {
  const raw = c.req.query("types");
  if (!raw) return undefined;
  const types = raw.split(",").map((t) => t.trim()).filter(Boolean);
  const unknown = types.filter((t) => !(MESH_EVENT_TYPES as string[]).includes(t));
  return unknown.length > 0 ? { bad: unknown } : types;
}

export const badTypes = (c: Ctx, bad: string[]) => c.json({ error: `unknown event types: ${bad.join(", ")}; known: ${MESH_EVENT_TYPES.join(", ")}` }, 400);
