// Event routes: the event log over HTTP (/v1/events) and the live watch stream (/v1/watch).
import { Hono } from "hono";
import { badLimit, badTypes, control, integerParam, limitParam, typesParam, type ControlBindings } from "../common.ts";

export const eventRoutes = new Hono<ControlBindings>();

eventRoutes.get("/v1/events", async (c) => {
  const since = integerParam(c, "since", Number.MIN_SAFE_INTEGER);
  if (since === "bad") return c.json({ error: `?since must be an integer, got "${c.req.query("since")}"` }, 400);
  const limit = limitParam(c);
  if (limit === "bad") return badLimit(c);
  const types = typesParam(c);
  if (types && "bad" in types) return badTypes(c, types.bad);
  return c.json(await control(c).events(since ?? 0, limit ?? 1000, types));
});

eventRoutes.get("/v1/watch", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ error: "the watch stream is a WebSocket: connect with Upgrade: websocket (or poll GET /v1/events?since=<seq>)" }, 426);
  }
  const types = typesParam(c);
  if (types && "bad" in types) return badTypes(c, types.bad);
  const since = integerParam(c, "since");
  if (since === "bad") return c.json({ error: `?since must be a non-negative integer, got "${c.req.query("since")}"` }, 400);
  const target = new URL("https://mesh-control/watch");
  if (since !== undefined) target.searchParams.set("since", String(since));
  const typesRaw = c.req.query("types");
  if (typesRaw !== undefined) target.searchParams.set("types", typesRaw);
  return control(c).fetch(new Request(target, { headers: c.req.raw.headers }));
});
