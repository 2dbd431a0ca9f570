// Debugging the mesh:
//   GET /v1/sidecars/:service/debug/:view   (read) one isolate's view of the service's sidecar:
//       status, snapshot, outliers, resilience, telemetry or security, over SIDECAR_<SERVICE> on
//       its SidecarControl entrypoint (the sidecar has no public debug paths)
//   PUT /v1/debug/fault                     (admin) the test-only fault switch (EDGEMESH_CONTROL_FAULTS=true)
import { Hono } from "hono";
import { sidecarBindingName } from "../../../durable/bindings.ts";
import { SIDECAR_DEBUG_VIEWS, type SidecarControlRpc, type SidecarDebugView } from "../../../policies/sidecar-control.ts";
import { control, readJson, type ControlBindings } from "../common.ts";

export const debugRoutes = new Hono<ControlBindings>();

const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The control Worker's binding to a service's sidecar entrypoint, or why there is none. */
export function sidecarControl(env: object, service: string): { ok: true; sidecar: SidecarControlRpc; binding: string } | { ok: false; status: 400 | 404; error: string } {
  if (!SERVICE_NAME.test(service)) return { ok: false, status: 400, error: `"${service}" is not a service name (lowercase letters, digits and '-')` };
  const binding = sidecarBindingName(service);
  const sidecar = (env as Record<string, unknown>)[binding] as SidecarControlRpc | undefined;
  if (!sidecar) {
    return { ok: false, status: 404, error: `the control Worker has no service binding ${binding} (entrypoint SidecarControl) to the sidecar of "${service}"` };
  }
  return { ok: true, sidecar, binding };
}

debugRoutes.get("/v1/sidecars/:service/debug/:view", async (c) => {
  const view = c.req.param("view");
  if (!(SIDECAR_DEBUG_VIEWS as readonly string[]).includes(view)) {
    return c.json({ error: `unknown debug view "${view}"; known: ${SIDECAR_DEBUG_VIEWS.join(", ")}` }, 404);
  }
  const found = sidecarControl(c.env, c.req.param("service"));
  if (!found.ok) return c.json({ error: found.error }, found.status);
  try {
    // A service binding reaches one isolate of the sidecar: its breaker, budget and outliers.
    return c.json((await found.sidecar.debugView(view as SidecarDebugView)) as object, 200, { "x-edgemesh-scope": "one-isolate" });
  } catch (err) {
    return c.json({ error: `the sidecar of "${c.req.param("service")}" could not be asked over ${found.binding}`, detail: (err as Error).message }, 502);
  }
});

debugRoutes.put("/v1/debug/fault", async (c) => {
  const body = await readJson(c);
  if (!body.ok) return body.response;
  const v = body.value as { snapshot?: unknown; delayMs?: unknown } | null;
  const mode = v !== null && typeof v === "object" ? v.snapshot : undefined;
  const delayMs = v !== null && typeof v === "object" ? (v.delayMs ?? 0) : 0;
  if ((mode !== "ok" && mode !== "fail" && mode !== "slow") || typeof delayMs !== "number" || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > 600_000) {
    return c.json({ error: 'give { "snapshot": "ok" | "fail" | "slow", "delayMs": 0-600000 }' }, 400);
  }
  const result = await control(c).setFault({ snapshot: mode, delayMs });
  return result.ok ? c.json(result) : c.json({ error: result.message }, 403);
});
