// GET /v1/audit?limit=&before=&token=&action=&mesh= (read): the audit log, newest first. It lives
// in the MeshControl object of the control Worker's own mesh, with the credentials it names; here
// `?mesh=` filters records by the mesh they were about.
import { Hono } from "hono";
import { badLimit, integerParam, limitParam, type ControlBindings, type MeshControlApi } from "../common.ts";

export const auditRoutes = new Hono<ControlBindings>();

auditRoutes.get("/v1/audit", async (c) => {
  const limit = limitParam(c);
  if (limit === "bad") return badLimit(c);
  const before = integerParam(c, "before", 1);
  if (before === "bad") return c.json({ error: `?before must be a sequence number (an answer's nextBefore), got "${c.req.query("before")}"` }, 400);
  const ns = c.env.MESH_CONTROL;
  const home = ns.get(ns.idFromName(c.env.MESH_NAME)) as unknown as Pick<MeshControlApi, "audit">;
  return c.json(
    await home.audit({
      limit: limit ?? 100,
      ...(before !== undefined ? { before } : {}),
      ...(c.req.query("token") !== undefined ? { tokenName: c.req.query("token") } : {}),
      ...(c.req.query("action") !== undefined ? { action: c.req.query("action") } : {}),
      ...(c.req.query("mesh") !== undefined ? { mesh: c.req.query("mesh") } : {}),
    }),
  );
});
