// The admin token check of the control Worker, as Hono middleware: every /v1 route and /metrics.
import type { MiddlewareHandler } from "hono";
import { hasAdminToken } from "../../auth/admin-token.ts";

export const requireAdminToken: MiddlewareHandler<{ Bindings: { EDGEMESH_ADMIN_TOKEN: string } }> = async (c, next) => {
  if (!c.env.EDGEMESH_ADMIN_TOKEN) {
    return c.json({ error: "the control plane has no EDGEMESH_ADMIN_TOKEN configured; set it as a secret" }, 503);
  }
  if (!hasAdminToken(c.req.header("authorization"), c.env.EDGEMESH_ADMIN_TOKEN)) {
    return c.json({ error: "missing or wrong admin token: send Authorization: Bearer <EDGEMESH_ADMIN_TOKEN>" }, 401, {
      "www-authenticate": 'Bearer realm="edgemesh"',
    });
  }
  await next();
};
