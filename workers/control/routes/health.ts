// Health routes: every endpoint's active and passive health, and the history of transitions.
import { Hono } from "hono";
import { badLimit, control, limitParam, type ControlBindings } from "../common.ts";

export const healthRoutes = new Hono<ControlBindings>();

healthRoutes.get("/v1/health", async (c) => c.json(await control(c).healthStatus(c.req.query("service"))));

healthRoutes.get("/v1/health/history", async (c) => {
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
