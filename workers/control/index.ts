// The control Worker: the admin API under /v1 (every call needs a scoped admin token) in front of the
// MeshControl Durable Object, which it exports with the relays of the distribution tier. Each
// group of routes is its own module, mounted here.
import { Hono } from "hono";
import { requireAdminToken } from "./admin-auth.ts";
import { analyticsRoutes } from "./analytics-routes.ts";
import { applyDocument } from "./apply.ts";
import { control, meshName, type ControlBindings, type Ctx } from "./common.ts";
import { dashboardRoutes } from "./dashboard-routes.ts";
import { importRoutes, type ImportControl } from "./import-routes.ts";
import { principalOf } from "./admin-auth.ts";
import { auditRoutes } from "./routes/audit.ts";
import { debugRoutes } from "./routes/debug.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { policyRoutes } from "./routes/policy.ts";
import { registryRoutes } from "./routes/registry.ts";
import { rolloutRoutes } from "./routes/rollouts.ts";
import { syncRoutes } from "./routes/sync.ts";
import { tokenRoutes } from "./routes/tokens.ts";

export { MeshControl } from "../../durable/mesh-control.ts";
export { MeshRelay } from "../../durable/relay.ts";
export { HealthProbe } from "../../durable/health-probe.ts";
export { TelemetryStore } from "../../durable/telemetry-store.ts";
export type { ControlEnv } from "./common.ts";

const app = new Hono<ControlBindings>();

app.get("/healthz", (c) => c.json({ ok: true }));

app.use("/v1/*", requireAdminToken);
// Analytics queries, golden metrics and /metrics (Prometheus), in their own sub-app.
app.route("/", analyticsRoutes);
// The dashboard at /dashboard (and / redirecting there); its /v1 routes sit behind the token check above.
app.route("/", dashboardRoutes);

app.route("/", policyRoutes);
app.route("/", registryRoutes);
app.route("/", healthRoutes);
app.route("/", eventRoutes);
app.route("/", syncRoutes);
app.route("/", debugRoutes);
app.route("/", tokenRoutes);
app.route("/", auditRoutes);
app.route("/", rolloutRoutes);

/** An import that applies goes the way of POST /v1/policy: validated and split here, then committed. */
function importControl(c: Ctx): ImportControl {
  const stub = control(c);
  return {
    getPolicy: () => stub.getPolicy(),
    // The author is the admin token that made the change, never a header the client chose.
    apply: (mesh, document, options) => applyDocument(stub, mesh, document, { kind: "apply", ...options, author: principalOf(c).name }),
  };
}
app.route("/v1/import", importRoutes<ControlBindings>({ control: importControl, meshName }));

app.notFound((c) => c.json({ error: `no such admin route: ${c.req.method} ${c.req.path}` }, 404));
app.onError((err, c) => c.json({ error: "control plane error", detail: err.message }, 500));

export default app;
