// The control Worker: the admin API under /v1 (every call needs the admin token) in front of the
// MeshControl Durable Object, which it exports with the relays of the distribution tier. Each
// group of routes is its own module in routes/, mounted here.
import { Hono } from "hono";
import { hasAdminToken } from "../../auth/admin-token.ts";
import type { ControlBindings } from "./common.ts";
import { debugRoutes } from "./routes/debug.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { policyRoutes } from "./routes/policy.ts";
import { registryRoutes } from "./routes/registry.ts";
import { syncRoutes } from "./routes/sync.ts";

export { MeshControl } from "../../durable/mesh-control.ts";
export { MeshRelay } from "../../durable/relay.ts";
export { HealthProbe } from "../../durable/health-probe.ts";
export type { ControlEnv } from "./common.ts";

const app = new Hono<ControlBindings>();

app.get("/healthz", (c) => c.json({ ok: true }));

app.use("/v1/*", async (c, next) => {
  if (!c.env.EDGEMESH_ADMIN_TOKEN) {
    return c.json({ error: "the control plane has no EDGEMESH_ADMIN_TOKEN configured; set it as a secret" }, 503);
  }
  if (!hasAdminToken(c.req.header("authorization"), c.env.EDGEMESH_ADMIN_TOKEN)) {
    return c.json({ error: "missing or wrong admin token: send Authorization: Bearer <EDGEMESH_ADMIN_TOKEN>" }, 401, {
      "www-authenticate": 'Bearer realm="edgemesh"',
    });
  }
  await next();
});

app.route("/", policyRoutes);
app.route("/", registryRoutes);
app.route("/", healthRoutes);
app.route("/", eventRoutes);
app.route("/", syncRoutes);
app.route("/", debugRoutes);

app.notFound((c) => c.json({ error: `no such admin route: ${c.req.method} ${c.req.path}` }, 404));
app.onError((err, c) => c.json({ error: "control plane error", detail: err.message }, 500));

export default app;
