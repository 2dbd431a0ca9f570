// Data-plane views: the snapshot a service's sidecars get, the sidecars seen and sync status.
import { Hono } from "hono";
import { control, integerParam, type ControlBindings } from "../common.ts";

export const syncRoutes = new Hono<ControlBindings>();

syncRoutes.get("/v1/snapshot/:service", async (c) => {
  const snap = await control(c).serviceSnapshot(c.req.param("service"));
  return snap ? c.json(snap) : c.json({ error: `no snapshot for service "${c.req.param("service")}" in the active policy` }, 404);
});

syncRoutes.get("/v1/sidecars", async (c) => c.json(await control(c).sidecarsSeen()));

syncRoutes.get("/v1/sync", async (c) => {
  const generation = integerParam(c, "generation");
  if (generation === "bad") return c.json({ error: "?generation must be a generation number (from an apply or register answer)" }, 400);
  return c.json(await control(c).syncStatus(generation));
});
