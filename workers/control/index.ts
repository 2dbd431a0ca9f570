// The control Worker: the admin API under /v1 (every call needs the admin token) in front of the
// MeshControl Durable Object, which it also exports.
import { Hono, type Context } from "hono";
import { Endpoint, jsonPath, PolicyDocument, policyJsonSchema, validatePolicy } from "../../policies/schema.ts";
import type { ApplyResult, ControlFault, MeshControl } from "../../durable/mesh-control.ts";
import { LeaseTtlMs } from "../../policies/health.ts";
import { MESH_EVENT_TYPES } from "../../durable/events.ts";
import { importRoutes } from "./import-routes.ts";
import { requireAdminToken } from "./admin-auth.ts";
import { analyticsRoutes, type AnalyticsEnv } from "./analytics-routes.ts";
import { dashboardRoutes } from "./dashboard-routes.ts";

export { MeshControl } from "../../durable/mesh-control.ts";
export { TelemetryStore } from "../../durable/telemetry-store.ts";

export interface ControlEnv extends AnalyticsEnv {
  MESH_CONTROL: DurableObjectNamespace<MeshControl>;
  /** The mesh used when a call names none (`?mesh=`). */
  MESH_NAME: string;
  EDGEMESH_ADMIN_TOKEN: string;
  /** "true" enables PUT /v1/debug/fault (local and test meshes only). */
  EDGEMESH_CONTROL_FAULTS?: string;
}

type Env = { Bindings: ControlEnv };
type Ctx = Context<Env>;

const app = new Hono<Env>();

app.get("/healthz", (c) => c.json({ ok: true }));

app.use("/v1/*", requireAdminToken);
// Analytics queries, golden metrics and /metrics (Prometheus), in their own sub-app.
app.route("/", analyticsRoutes);
// The dashboard at /dashboard (and / redirecting there); its /v1 routes sit behind the token check above.
app.route("/", dashboardRoutes);

function meshName(c: Ctx): string {
  return c.req.query("mesh") ?? c.env.MESH_NAME;
}

/** The object's methods as declared; the stub's generic RPC types are too deep for tsc here. */
type MeshControlApi = Pick<MeshControl, "apply" | "rollback" | "getPolicy" | "history" | "diff" | "activeVersion" | "register" | "deregister" | "registry" | "serviceSnapshot" | "sidecarsSeen"
  | "heartbeat" | "healthStatus" | "healthHistory" | "events" | "syncStatus" | "setFault" | "fetch" | "policyLoadError">;

function control(c: Ctx): MeshControlApi {
  const ns = c.env.MESH_CONTROL;
  return ns.get(ns.idFromName(meshName(c))) as unknown as MeshControlApi;
}

/** Parses If-Match (`"3"`, `3` or `W/"3"`) into the expected version; `*` or absent means none. */
function expectedVersion(c: Ctx): number | undefined | "bad" {
  const raw = c.req.header("if-match");
  if (raw === undefined || raw.trim() === "*") return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(raw.trim());
  return m ? Number(m[1]) : "bad";
}

const badIfMatch = (c: Ctx) => c.json({ error: 'If-Match must be a policy version such as "3" (or * for any)' }, 400);

async function readJson(c: Ctx): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const text = await c.req.text();
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, response: c.json({ error: "the body is not valid JSON", detail: (err as Error).message }, 400) };
  }
}

function applyResponse(c: Ctx, result: ApplyResult): Response {
  if (result.ok) return c.json(result, 201, { etag: `"${result.version}"` });
  if (result.reason === "invalid") return c.json({ error: "policy rejected; the active policy is unchanged", errors: result.errors }, 400);
  if (result.reason === "conflict") return c.json({ error: result.message, currentVersion: result.currentVersion }, 409, { etag: `"${result.currentVersion}"` });
  return c.json({ error: result.message }, 404);
}

app.get("/v1/schema", (c) => c.json(policyJsonSchema() as object));

app.get("/v1/policy", async (c) => {
  const stub = control(c);
  const policy = await stub.getPolicy();
  if (!policy) {
    const loadError = await stub.policyLoadError();
    if (loadError) return c.json({ error: loadError.message, loadError }, 500);
    return c.json({ error: `mesh "${meshName(c)}" has no policy yet; apply one with POST /v1/policy` }, 404);
  }
  return c.json(policy, 200, { etag: `"${policy.version}"` });
});

/** `?limit=`: undefined when absent, "bad" unless a positive integer. */
function limitParam(c: Ctx): number | undefined | "bad" {
  const raw = c.req.query("limit");
  if (raw === undefined) return undefined;
  const limit = Number(raw);
  return /^\d+$/.test(raw.trim()) && Number.isInteger(limit) && limit >= 1 ? limit : "bad";
}

const badLimit = (c: Ctx) => c.json({ error: `?limit must be a positive integer, got "${c.req.query("limit")}"` }, 400);

app.get("/v1/policy/history", async (c) => {
  const limit = limitParam(c);
  if (limit === "bad") return badLimit(c);
  return c.json(await control(c).history(limit ?? 50));
});

app.get("/v1/policy/diff", async (c) => {
  const from = Number(c.req.query("from"));
  const stub = control(c);
  const to = c.req.query("to") === undefined ? await stub.activeVersion() : Number(c.req.query("to"));
  if (!Number.isInteger(from) || !Number.isInteger(to)) return c.json({ error: "give ?from=<version>&to=<version> (to defaults to the active one)" }, 400);
  const result = await stub.diff(from, to);
  return "changes" in result ? c.json({ from, to, changes: result.changes }) : c.json({ error: result.message }, 404);
});

app.get("/v1/policy/:version{[0-9]+}", async (c) => {
  const policy = await control(c).getPolicy(Number(c.req.param("version")));
  return policy ? c.json(policy) : c.json({ error: `there is no policy version ${c.req.param("version")}` }, 404);
});

app.post("/v1/policy/validate", async (c) => {
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const result = validatePolicy(body.value);
  return result.ok ? c.json({ ok: true, errors: [] }) : c.json({ ok: false, errors: result.errors }, 400);
});

app.post("/v1/policy", async (c) => {
  const expected = expectedVersion(c);
  if (expected === "bad") return badIfMatch(c);
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const result = await control(c).apply(meshName(c), body.value, {
    expectedVersion: expected,
    author: c.req.header("x-edgemesh-author") ?? "admin-api",
    message: c.req.header("x-edgemesh-message") ?? "",
  });
  return applyResponse(c, result);
});

app.post("/v1/policy/rollback", async (c) => {
  const expected = expectedVersion(c);
  if (expected === "bad") return badIfMatch(c);
  const raw = c.req.query("to");
  const to = raw === undefined ? undefined : Number(raw);
  if (to !== undefined && !Number.isInteger(to)) return c.json({ error: "?to must be a policy version number" }, 400);
  const result = await control(c).rollback(to, { expectedVersion: expected, author: c.req.header("x-edgemesh-author") ?? "admin-api" });
  return applyResponse(c, result);
});

app.get("/v1/registry", async (c) => c.json(await control(c).registry()));

/** Reads an optional `leaseTtlMs` from a registration or heartbeat body. */
function leaseTtl(value: unknown): { ok: true; leaseTtlMs: number | undefined } | { ok: false; errors: { path: string; message: string }[] } {
  const raw = value !== null && typeof value === "object" ? (value as { leaseTtlMs?: unknown }).leaseTtlMs : undefined;
  if (raw === undefined) return { ok: true, leaseTtlMs: undefined };
  const parsed = LeaseTtlMs.safeParse(raw);
  return parsed.success
    ? { ok: true, leaseTtlMs: parsed.data }
    : { ok: false, errors: parsed.error.issues.map((i) => ({ path: jsonPath(["leaseTtlMs", ...i.path]), message: i.message })) };
}

app.get("/v1/registry/conflicts", async (c) => c.json({ conflicts: (await control(c).registry()).conflicts }));

/** Service names follow the policy schema's pattern (the key type of `services`). */
const ServiceName = PolicyDocument.shape.services.keyType;

app.post("/v1/registry/:service", async (c) => {
  const service = ServiceName.safeParse(c.req.param("service"));
  if (!service.success) {
    const issue = service.error.issues[0] as { message: string; pattern?: string } | undefined;
    return c.json({ error: `registration rejected: ${issue?.message ?? "bad service name"} (pattern ${issue?.pattern ?? "see GET /v1/schema"}), got "${c.req.param("service")}"` }, 400);
  }
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const { leaseTtlMs: _lease, ...fields } = (body.value ?? {}) as Record<string, unknown>;
  const lease = leaseTtl(body.value);
  const parsed = Endpoint.safeParse(fields);
  if (!parsed.success || !lease.ok) {
    const errors = [
      ...(parsed.success ? [] : parsed.error.issues.map((i) => ({ path: jsonPath(i.path), message: i.message }))),
      ...(lease.ok ? [] : lease.errors),
    ];
    return c.json({ error: "registration rejected", errors }, 400);
  }
  const { id, binding, url, labels, weight } = parsed.data;
  const endpoint = { id, labels, weight, ...(binding !== undefined ? { binding } : {}), ...(url !== undefined ? { url: url.replace(/\/+$/, "") } : {}) };
  const result = await control(c).register(c.req.param("service"), endpoint, lease.leaseTtlMs);
  return result.ok ? c.json(result, 201) : c.json({ error: result.message }, 409);
});

app.post("/v1/registry/:service/:id/heartbeat", async (c) => {
  const text = await c.req.text();
  let value: unknown = {};
  try {
    if (text.trim()) value = JSON.parse(text);
  } catch (err) {
    return c.json({ error: "the body is not valid JSON", detail: (err as Error).message }, 400);
  }
  const lease = leaseTtl(value);
  if (!lease.ok) return c.json({ error: "heartbeat rejected", errors: lease.errors }, 400);
  const result = await control(c).heartbeat(c.req.param("service"), c.req.param("id"), lease.leaseTtlMs);
  return result.ok ? c.json(result) : c.json({ error: result.message }, 404);
});

app.delete("/v1/registry/:service/:id", async (c) => {
  const result = await control(c).deregister(c.req.param("service"), c.req.param("id"));
  return result.ok ? c.json(result) : c.json({ error: `service "${c.req.param("service")}" has no registered endpoint "${c.req.param("id")}"` }, 404);
});

app.get("/v1/snapshot/:service", async (c) => {
  const snap = await control(c).serviceSnapshot(c.req.param("service"));
  return snap ? c.json(snap) : c.json({ error: `no snapshot for service "${c.req.param("service")}" in the active policy` }, 404);
});

app.get("/v1/sidecars", async (c) => c.json(await control(c).sidecarsSeen()));

app.get("/v1/sync", async (c) => {
  const raw = c.req.query("generation");
  const generation = raw === undefined ? undefined : Number(raw);
  if (generation !== undefined && !Number.isInteger(generation)) return c.json({ error: "?generation must be a generation number (from an apply or register answer)" }, 400);
  return c.json(await control(c).syncStatus(generation));
});

app.get("/v1/health", async (c) => c.json(await control(c).healthStatus(c.req.query("service"))));

app.get("/v1/health/history", async (c) => {
  const limit = limitParam(c);
  if (limit === "bad") return badLimit(c);
  return c.json({
    transitions: await control(c).healthHistory({
      service: c.req.query("service"),
      endpointId: c.req.query("endpoint"),
      limit,
    }),
  });
});

/** `?types=a,b`: undefined for all types, "bad" with the unknown ones named. */
function typesParam(c: Ctx): string[] | undefined | { bad: string[] } {
  const raw = c.req.query("types");
  if (!raw) return undefined;
  const types = raw.split(",").map((t) => t.trim()).filter(Boolean);
  const unknown = types.filter((t) => !(MESH_EVENT_TYPES as string[]).includes(t));
  return unknown.length > 0 ? { bad: unknown } : types;
}

const badTypes = (c: Ctx, bad: string[]) => c.json({ error: `unknown event types: ${bad.join(", ")}; known: ${MESH_EVENT_TYPES.join(", ")}` }, 400);

app.get("/v1/events", async (c) => {
  const since = Number(c.req.query("since") ?? 0);
  if (!Number.isInteger(since)) return c.json({ error: `?since must be an integer, got "${c.req.query("since")}"` }, 400);
  const limit = limitParam(c);
  if (limit === "bad") return badLimit(c);
  const types = typesParam(c);
  if (types && "bad" in types) return badTypes(c, types.bad);
  return c.json(await control(c).events(since, limit ?? 1000, types));
});

app.get("/v1/watch", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ error: "the watch stream is a WebSocket: connect with Upgrade: websocket (or poll GET /v1/events?since=<seq>)" }, 426);
  }
  const types = typesParam(c);
  if (types && "bad" in types) return badTypes(c, types.bad);
  const target = new URL("https://mesh-control/watch");
  for (const name of ["since", "types"]) {
    const value = c.req.query(name);
    if (value !== undefined) target.searchParams.set(name, value);
  }
  return control(c).fetch(new Request(target, { headers: c.req.raw.headers }));
});

app.route("/v1/import", importRoutes<Env>({ control, meshName }));

app.put("/v1/debug/fault", async (c) => {
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const v = body.value as Partial<ControlFault> | null;
  const mode = v?.snapshot;
  const delayMs = v?.delayMs ?? 0;
  if ((mode !== "ok" && mode !== "fail" && mode !== "slow") || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > 600_000) {
    return c.json({ error: 'give { "snapshot": "ok" | "fail" | "slow", "delayMs": 0-600000 }' }, 400);
  }
  const result = await control(c).setFault({ snapshot: mode, delayMs });
  return result.ok ? c.json(result) : c.json({ error: result.message }, 403);
});

app.notFound((c) => c.json({ error: `no such admin route: ${c.req.method} ${c.req.path}` }, 404));
app.onError((err, c) => c.json({ error: "control plane error", detail: err.message }, 500));

export default app;
