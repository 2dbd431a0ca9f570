// The dashboard's routes on the control Worker of a real local mesh (workerd via Miniflare): the
// page and its assets, the session that hands out watch tickets, the watch stream and who may
// open it, and the sidecar view. The browser itself is driven in dashboard-browser.test.ts.
import { fetch as mfFetch } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOKINFO, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { WATCH_TICKET_COOKIE } from "../../workers/control/dashboard-session.ts";
import { bookinfoPolicy } from "../helpers.ts";

let mesh: RunningMesh;
let origin: string;

beforeAll(async () => {
  process.env.WRANGLER_SEND_METRICS = "false";
  mesh = await startMesh({ topology: BOOKINFO });
  origin = mesh.controlUrl.origin;
  expect((await mesh.applyPolicy(await bookinfoPolicy(), 0)).status).toBe(201);
});

afterAll(async () => {
  await mesh?.dispose();
});

async function ticketCookie(): Promise<string> {
  const res = await mesh.admin("/v1/dashboard/session");
  expect(res.status).toBe(200);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return setCookie.split(";")[0]!;
}

/** Opens the dashboard's watch stream the way a browser would (Miniflare's fetch speaks WebSocket). */
function openWatch(headers: Record<string, string>, since = 0) {
  return mfFetch(`${origin}/dashboard/watch?since=${since}`, { headers: { upgrade: "websocket", ...headers } });
}

describe("the page", () => {
  it("is at /dashboard, / leads there, and it carries no mesh data", async () => {
    const root = await fetch(`${origin}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/dashboard");
    const page = await fetch(`${origin}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await page.text();
    for (const name of ["productpage", "reviews", "ratings", "bookinfo"]) expect(html).not.toContain(name);
  });

  it("loads its script, styles and icon from the control Worker, cacheable for good", async () => {
    const html = await (await fetch(`${origin}/dashboard`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(3);
    for (const path of assets) {
      const res = await fetch(`${origin}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("cache-control")).toContain("immutable");
      expect((await res.text()).length).toBeGreaterThan(100);
    }
    expect((await fetch(`${origin}/dashboard/assets/nope.js`)).status).toBe(404);
  });
});

describe("signing in", () => {
  it("needs the admin token; with it, answers the mesh and sets a watch ticket cookie for the watch route only", async () => {
    expect((await fetch(`${origin}/v1/dashboard/session`)).status).toBe(401);
    expect((await fetch(`${origin}/v1/dashboard/session`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    const res = await mesh.admin("/v1/dashboard/session");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ mesh: "bookinfo", dataset: "edgemesh_requests", watchPath: "/dashboard/watch" });
    expect(res.headers.get("cache-control")).toBe("no-store");
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(new RegExp(`^${WATCH_TICKET_COOKIE}=w1\\.`));
    expect(cookie).toContain("Path=/dashboard/watch");
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
  });

  it("the ticket cookie opens nothing but the watch stream: admin calls with it alone are refused", async () => {
    const cookie = await ticketCookie();
    const history = await mesh.admin("/v1/policy/history");
    const { activeVersion } = (await history.json()) as { activeVersion: number };
    for (const [method, path] of [["POST", `/v1/policy/rollback?to=1`], ["GET", "/v1/policy"], ["POST", "/v1/policy"], ["GET", "/v1/dashboard/session"]] as const) {
      const res = await fetch(`${origin}${path}`, { method, headers: { cookie, origin, "if-match": `"${activeVersion}"` } });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    const after = (await (await mesh.admin("/v1/policy/history")).json()) as { activeVersion: number };
    expect(after.activeVersion).toBe(activeVersion);
  });
});

describe("the watch stream", () => {
  it("refuses plain requests, other origins, and missing or forged tickets", async () => {
    expect((await fetch(`${origin}/dashboard/watch`)).status).toBe(426);
    const cookie = await ticketCookie();
    expect((await openWatch({ cookie, origin: "https://evil.example" })).status).toBe(403);
    expect((await openWatch({ cookie })).status).toBe(403);
    expect((await openWatch({ origin })).status).toBe(401);
    const forged = cookie.replace(/.$/, (c) => (c === "A" ? "B" : "A"));
    expect((await openWatch({ cookie: forged, origin })).status).toBe(401);
    // The admin token itself is not a ticket: the dashboard route takes only the cookie.
    expect((await openWatch({ origin, authorization: `Bearer ${mesh.adminToken}` })).status).toBe(401);
  });

  it("with a ticket from the same origin, replays the log and follows new events", async () => {
    const res = await openWatch({ cookie: await ticketCookie(), origin });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const messages: { type: string; seq?: number; data?: Record<string, unknown> }[] = [];
    ws.addEventListener("message", (m) => messages.push(JSON.parse(String(m.data))));
    ws.accept();
    await expect.poll(() => messages[0]?.type, { timeout: 10_000 }).toBe("watch.hello");
    await expect.poll(() => messages.some((m) => m.type === "policy.applied"), { timeout: 10_000 }).toBe(true);
    const register = await mesh.admin("/v1/registry/ratings", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "ratings-watch-test", binding: "RATINGS_V1", labels: { version: "v1" }, leaseTtlMs: 60_000 }),
    });
    expect(register.status).toBe(201);
    await expect
      .poll(() => messages.some((m) => m.type === "endpoint.registered" && m.data?.endpointId === "ratings-watch-test"), { timeout: 10_000 })
      .toBe(true);
    ws.close(1000, "done");
    await mesh.admin("/v1/registry/ratings/ratings-watch-test", { method: "DELETE" });
  });
});

describe("the sidecar view", () => {
  it("shows one sidecar isolate's status, breaker, budget and outliers through the control Worker's binding", async () => {
    expect((await fetch(`${origin}/v1/dashboard/sidecars/reviews`)).status).toBe(401);
    // Traffic first, so the reviews sidecar has a snapshot.
    for (let i = 0; i < 5; i++) await (await fetch(new URL("/api/v1/products/0", mesh.url))).arrayBuffer();
    const res = await mesh.admin("/v1/dashboard/sidecars/reviews");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body).toMatchObject({ service: "reviews", binding: "SIDECAR_REVIEWS", scope: "one-isolate" });
    expect(body.status.service).toBe("reviews");
    expect(body.status.snapshot.policyVersion).toBeGreaterThanOrEqual(1);
    expect(body.resilience.breaker).toMatchObject({ active: expect.any(Number), pending: expect.any(Number) });
    expect(Array.isArray(body.outliers.events)).toBe(true);
    const missing = await mesh.admin("/v1/dashboard/sidecars/nosuch");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toContain("SIDECAR_NOSUCH");
    expect((await mesh.admin("/v1/dashboard/sidecars/Bad_Name")).status).toBe(400);
  });
});
