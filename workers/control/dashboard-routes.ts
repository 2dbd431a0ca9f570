// The dashboard, a Hono sub-app mounted by the control Worker:
//   GET /                         redirects to /dashboard
//   GET /dashboard                the page shell (no mesh data: everything comes from the admin API)
//   GET /dashboard/assets/<file>  the bundled script, styles and icon (built by `npm run dashboard:build`)
//   GET /v1/dashboard/session     (admin token) the dashboard's settings and a watch ticket cookie
//   GET /v1/dashboard/sidecars/:service   (admin token) one sidecar isolate's debug state (SidecarControl)
//   GET /dashboard/watch          the watch stream, opened with the ticket cookie (a WebSocket)
// Every /v1 route sits behind the control Worker's admin-token middleware; the page itself holds
// no data, and the watch route accepts only a ticket that a token holder was given.
import { Hono, type Context } from "hono";
import { REQUESTS_DATASET } from "../../analytics/request-layout.ts";
import type { SidecarControlRpc } from "../../policies/sidecar-control.ts";
import { sidecarControl } from "./routes/debug.ts";
import { DASHBOARD_ASSETS, DASHBOARD_INDEX } from "./dashboard-assets.gen.ts";
import { cookieValue, DASHBOARD_WATCH_PATH, issueWatchTicket, verifyWatchTicket, WATCH_TICKET_COOKIE, watchTicketCookie } from "./dashboard-session.ts";

export interface DashboardEnv {
  MESH_CONTROL: DurableObjectNamespace;
  MESH_NAME: string;
  EDGEMESH_ADMIN_TOKEN: string;
  TELEMETRY_DATASET?: string;
}

type Env = { Bindings: DashboardEnv };
type Ctx = Context<Env>;

const MESH_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** The sidecar debug views the service page shows. */
const SIDECAR_VIEWS = ["status", "resilience", "outliers"] as const;

/**
 * The page may only talk to its own origin and runs only its own bundled script: a injected
 * string can never become markup or code, and no other site may frame it (clickjacking).
 */
const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

function meshOf(c: Ctx): string | undefined {
  const mesh = c.req.query("mesh") ?? c.env.MESH_NAME;
  return MESH_NAME.test(mesh) ? mesh : undefined;
}

const badMesh = (c: Ctx) => c.json({ error: `?mesh must be a mesh name (lowercase letters, digits and '-'), got "${c.req.query("mesh")}"` }, 400);

export const dashboardRoutes = new Hono<Env>();

dashboardRoutes.get("/", (c) => c.redirect("/dashboard", 302));

function page(c: Ctx): Response {
  if (c.req.header("if-none-match") === DASHBOARD_INDEX.etag) return c.body(null, 304, { etag: DASHBOARD_INDEX.etag });
  return c.body(DASHBOARD_INDEX.body, 200, { ...PAGE_HEADERS, "content-type": DASHBOARD_INDEX.contentType, etag: DASHBOARD_INDEX.etag, "cache-control": "no-cache" });
}

dashboardRoutes.get("/dashboard", page);
dashboardRoutes.get("/dashboard/", page);

dashboardRoutes.get("/dashboard/assets/:file", (c) => {
  const asset = Object.hasOwn(DASHBOARD_ASSETS, c.req.param("file")) ? DASHBOARD_ASSETS[c.req.param("file")] : undefined;
  if (!asset) return c.json({ error: `no dashboard asset "${c.req.param("file")}"` }, 404);
  // File names carry a hash of their content, so a browser may keep them for good.
  return c.body(asset.body, 200, {
    "content-type": asset.contentType,
    etag: asset.etag,
    "cache-control": "public, max-age=31536000, immutable",
    "x-content-type-options": "nosniff",
  });
});

dashboardRoutes.get("/v1/dashboard/session", async (c) => {
  const mesh = meshOf(c);
  if (!mesh) return badMesh(c);
  const { ticket, expiresAtMs } = await issueWatchTicket(c.env.EDGEMESH_ADMIN_TOKEN, mesh, Date.now());
  const secure = new URL(c.req.url).protocol === "https:";
  return c.json(
    { mesh, dataset: c.env.TELEMETRY_DATASET || REQUESTS_DATASET, watchPath: DASHBOARD_WATCH_PATH, watchTicketExpiresAtMs: expiresAtMs },
    200,
    { "set-cookie": watchTicketCookie(ticket, secure), "cache-control": "no-store" },
  );
});

/** One debug view of a sidecar (SidecarControl.debugView), or why it could not be read. */
async function sidecarView(sidecar: SidecarControlRpc, view: (typeof SIDECAR_VIEWS)[number]): Promise<unknown> {
  try {
    return await sidecar.debugView(view);
  } catch (err) {
    return { error: `the sidecar could not be asked for its ${view} view`, detail: (err as Error).message };
  }
}

dashboardRoutes.get("/v1/dashboard/sidecars/:service", async (c) => {
  const service = c.req.param("service");
  const found = sidecarControl(c.env, service);
  if (!found.ok) return c.json({ error: `${found.error}; add it to the control Worker's services to see its state here` }, found.status);
  const views = await Promise.all(SIDECAR_VIEWS.map((view) => sidecarView(found.sidecar, view)));
  return c.json({
    service,
    binding: found.binding,
    // A service binding reaches one isolate of the sidecar: its breaker, budget and outliers.
    scope: "one-isolate",
    ...Object.fromEntries(SIDECAR_VIEWS.map((view, i) => [view, views[i]])),
  });
});

dashboardRoutes.get(DASHBOARD_WATCH_PATH, async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ error: "the dashboard's watch stream is a WebSocket; other clients use GET /v1/watch with the admin token" }, 426);
  }
  // Browsers always send Origin on a WebSocket handshake; SameSite=Strict keeps the cookie off
  // cross-site requests already, and this refuses them even where a browser would not.
  if (c.req.header("origin") !== new URL(c.req.url).origin) {
    return c.json({ error: "the watch stream may only be opened by the dashboard's own page (Origin mismatch)" }, 403);
  }
  const mesh = meshOf(c);
  if (!mesh) return badMesh(c);
  if (!c.env.EDGEMESH_ADMIN_TOKEN) return c.json({ error: "the control plane has no EDGEMESH_ADMIN_TOKEN configured; set it as a secret" }, 503);
  const verdict = await verifyWatchTicket(c.env.EDGEMESH_ADMIN_TOKEN, cookieValue(c.req.header("cookie"), WATCH_TICKET_COOKIE), mesh, Date.now());
  if (!verdict.ok) {
    return c.json({ error: `no valid watch ticket (${verdict.reason}): sign in to the dashboard, which asks GET /v1/dashboard/session for one` }, 401);
  }
  const since = c.req.query("since");
  if (since !== undefined && !/^\d+$/.test(since)) return c.json({ error: `?since must be a sequence number, got "${since}"` }, 400);
  const target = new URL("https://mesh-control/watch");
  if (since !== undefined) target.searchParams.set("since", since);
  // The object needs the upgrade, not the browser's credentials.
  const headers = new Headers(c.req.raw.headers);
  headers.delete("cookie");
  headers.delete("authorization");
  const ns = c.env.MESH_CONTROL;
  return ns.get(ns.idFromName(mesh)).fetch(new Request(target, { headers }));
});
