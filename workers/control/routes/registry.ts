// Registry routes: self-registration with leases, heartbeats, deregistration, the merged view.
import { Hono } from "hono";
import { LeaseTtlMs } from "../../../policies/health.ts";
import { Endpoint, jsonPath, PolicyDocument } from "../../../policies/schema.ts";
import { noteForAudit } from "../admin-auth.ts";
import { control, readJson, type ControlBindings } from "../common.ts";

export const registryRoutes = new Hono<ControlBindings>();

registryRoutes.get("/v1/registry", async (c) => c.json(await control(c).registry()));

registryRoutes.get("/v1/registry/conflicts", async (c) => c.json({ conflicts: (await control(c).registry()).conflicts }));

/** Reads an optional `leaseTtlMs` from a registration or heartbeat body. */
function leaseTtl(value: unknown): { ok: true; leaseTtlMs: number | undefined } | { ok: false; errors: { path: string; message: string }[] } {
  const raw = value !== null && typeof value === "object" ? (value as { leaseTtlMs?: unknown }).leaseTtlMs : undefined;
  if (raw === undefined) return { ok: true, leaseTtlMs: undefined };
  const parsed = LeaseTtlMs.safeParse(raw);
  return parsed.success
    ? { ok: true, leaseTtlMs: parsed.data }
    : { ok: false, errors: parsed.error.issues.map((i) => ({ path: jsonPath(["leaseTtlMs", ...i.path]), message: i.message })) };
}

/** Service names follow the policy schema's pattern (the key type of `services`). */
const ServiceName = PolicyDocument.shape.services.keyType;

registryRoutes.post("/v1/registry/:service", async (c) => {
  const service = ServiceName.safeParse(c.req.param("service"));
  if (!service.success) {
    const issue = service.error.issues[0] as { message: string; pattern?: string } | undefined;
    return c.json({ error: `registration rejected: ${issue?.message ?? "bad service name"} (pattern ${issue?.pattern ?? "see GET /v1/schema"}), got "${c.req.param("service")}"` }, 400);
  }
  const body = await readJson(c);
  if (!body.ok) return body.response;
  if (body.value === null || typeof body.value !== "object" || Array.isArray(body.value)) {
    return c.json({ error: "registration rejected", errors: [{ path: "$", message: "the body must be an endpoint object, e.g. {\"id\": \"reviews-4\", \"url\": \"https://...\"}" }] }, 400);
  }
  const { leaseTtlMs: _lease, ...fields } = body.value as Record<string, unknown>;
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
  noteForAudit(c, { target: `${c.req.param("service")}/${id}` });
  const endpoint = { id, labels, weight, ...(binding !== undefined ? { binding } : {}), ...(url !== undefined ? { url: url.replace(/\/+$/, "") } : {}) };
  const result = await control(c).register(c.req.param("service"), endpoint, lease.leaseTtlMs);
  if (result.ok) return c.json(result, 201);
  return c.json({ error: result.message, ...(result.reason === "unknown-service" ? { services: result.services } : {}) }, result.reason === "unknown-service" ? 404 : 409);
});

registryRoutes.post("/v1/registry/:service/:id/heartbeat", async (c) => {
  const body = await readJson(c, undefined, {});
  if (!body.ok) return body.response;
  const lease = leaseTtl(body.value);
  if (!lease.ok) return c.json({ error: "heartbeat rejected", errors: lease.errors }, 400);
  const result = await control(c).heartbeat(c.req.param("service"), c.req.param("id"), lease.leaseTtlMs);
  return result.ok ? c.json(result) : c.json({ error: result.message }, 404);
});

registryRoutes.delete("/v1/registry/:service/:id", async (c) => {
  const result = await control(c).deregister(c.req.param("service"), c.req.param("id"));
  return result.ok ? c.json(result) : c.json({ error: `service "${c.req.param("service")}" has no registered endpoint "${c.req.param("id")}"` }, 404);
});
