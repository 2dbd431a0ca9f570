// The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core)
// against a real local mesh: sign-in, the topology with live numbers, the service page, rollback
// from the policy page (and its 409), and a health change in the events view. One mesh and one
// browser for the whole file; each test opens its own browser context (fresh cookies and storage).
// Screenshots go to test/artifacts/ (git-ignored).
//
// Chromium is required, not optional: CI installs it (`apt-get install -y chromium`, see .ci/run),
// and without it these tests fail, saying how to install it.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { BOOKINFO, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { bookinfoPolicy, nodeServer, sidecar, type Fetch } from "../helpers.ts";

// Callbacks given to page.evaluate run in the browser; these name its globals for the type checker
// (this file runs in Node, whose types have no DOM).
declare const document: any;
declare const window: any;
declare const location: any;
declare function getComputedStyle(element: unknown): any;

const CHROMIUM = process.env.EDGEMESH_CHROMIUM ?? "/usr/bin/chromium";
// Without the background-networking flags Chromium dials out at start, and this machine's closed
// network refuses it. Playwright gives every launch a fresh temporary --user-data-dir.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const ARTIFACTS = path.join(ROOT, "test/artifacts");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const SERVICES = ["productpage", "details", "reviews", "ratings"];
const EDGES = ["external->productpage", "productpage->details", "productpage->reviews", "reviews->ratings"];

let mesh: RunningMesh;
let browser: Browser;
let reviews: Fetch;
const contexts: BrowserContext[] = [];

/** A page in a fresh context that records every console error and uncaught exception. */
async function openPage(viewport = DESKTOP): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport, baseURL: mesh.controlUrl.origin });
  contexts.push(context);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
  return { page, errors };
}

async function signIn(page: Page, hash = ""): Promise<void> {
  await page.goto(`/dashboard${hash}`);
  await page.getByLabel("Admin token").fill(mesh.adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#watch-state.watch-live").waitFor({ timeout: 15_000 });
}

/** Requests through the app's entry (productpage's sidecar); every fifth as jason, so reviews v2 calls ratings. */
async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(new URL(`/api/v1/products/0${i % 5 === 0 ? "?user=jason" : ""}`, mesh.url));
    await res.arrayBuffer();
  }
}

/** A request every `everyMs` until stopped, as `npm start` sends: sidecars keep checking in. */
function steadyTraffic(everyMs = 250): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      await traffic(1);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

/** What the reviews sidecar does with `n` requests: policy version served and subsets chosen. */
async function reviewsServing(n: number): Promise<{ versions: Set<string>; subsets: Record<string, number> }> {
  const versions = new Set<string>();
  const subsets: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await reviews("/reviews/0", { headers: await mesh.debugHeaders() });
    await res.arrayBuffer();
    versions.add(res.headers.get("x-edgemesh-snapshot-version") ?? "none");
    const subset = res.headers.get("x-edgemesh-subset") ?? "none";
    subsets[subset] = (subsets[subset] ?? 0) + 1;
  }
  return { versions, subsets };
}

async function activeVersion(): Promise<number> {
  return ((await (await mesh.admin("/v1/policy/history?limit=1")).json()) as { activeVersion: number }).activeVersion;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the dashboard's browser tests need it. Install it with: apt-get install -y chromium (or set EDGEMESH_CHROMIUM to its path)`);
  }
  process.env.WRANGLER_SEND_METRICS = "false";
  await mkdir(ARTIFACTS, { recursive: true });
  [mesh, browser] = await Promise.all([
    startMesh({ topology: BOOKINFO }),
    chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true }),
  ]);
  expect((await mesh.applyPolicy(await bookinfoPolicy(), 0)).status).toBe(201);
  reviews = await sidecar(mesh, "reviews");
  await traffic(25);
}, 120_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await mesh?.dispose();
});

describe("the dashboard in Chromium", () => {
  it("refuses access without a token: a sign-in form, no mesh data, no API, no watch stream", async () => {
    const { page } = await openPage();
    await page.goto("/dashboard");
    await expect(page.getByRole("heading", { name: "Sign in to edgemesh" }).isVisible()).resolves.toBe(true);
    const text = await page.locator("body").innerText();
    for (const name of SERVICES) expect(text).not.toContain(name);
    // The page's own origin cannot read the API or open the stream without the token either.
    const probes = await page.evaluate(async () => {
      const registry = (await fetch("/v1/registry")).status;
      const session = (await fetch("/v1/dashboard/session")).status;
      const stream = await new Promise<string>((resolve) => {
        const ws = new (globalThis as any).WebSocket(`${location.origin.replace("http", "ws")}/dashboard/watch?since=0`);
        ws.onmessage = () => resolve("message");
        ws.onclose = () => resolve("closed");
        ws.onerror = () => resolve("error");
      });
      return { registry, session, stream };
    });
    expect(probes.registry).toBe(401);
    expect(probes.session).toBe(401);
    expect(probes.stream).not.toBe("message");
    // A wrong token is refused and shows nothing either.
    await page.getByLabel("Admin token").fill("not-the-token");
    await page.keyboard.press("Enter");
    await expect(page.getByRole("alert").filter({ hasText: "That token was refused" }).waitFor()).resolves.toBeUndefined();
    expect(await page.locator("svg.topology").count()).toBe(0);
    expect(await page.locator("#nav").isHidden()).toBe(true);
  }, 60_000);

  it("with the token shows the four services and the edges between them, at desktop and phone widths", async () => {
    const { page, errors } = await openPage();
    await signIn(page);
    for (const service of SERVICES) await page.locator(`svg.topology a.node[data-service="${service}"]`).waitFor();
    for (const edge of EDGES) await page.locator(`svg.topology g.edge[data-edge="${edge}"][data-requests]`).waitFor({ timeout: 20_000 });
    expect(await page.locator("svg.topology .node").count()).toBe(SERVICES.length + 1); // + external
    const label = await page.locator(`g.edge[data-edge="productpage->reviews"] text`).textContent();
    expect(label).toMatch(/\/s · \d+(\.\d)?%p99 \d+ ms/);
    expect(await page.locator(`g.edge[data-edge="productpage->reviews"]`).getAttribute("data-health")).toBe("healthy");
    await shot(page, "topology-desktop");

    const phone = await openPage(PHONE);
    await signIn(phone.page);
    for (const edge of EDGES) await phone.page.locator(`g.edge[data-edge="${edge}"][data-requests]`).waitFor({ timeout: 20_000 });
    expect(await phone.page.locator("svg.topology").getAttribute("data-orientation")).toBe("vertical");
    // Readable at phone width: nothing makes the page scroll sideways.
    expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await shot(phone.page, "topology-phone");
    expect(errors).toEqual([]);
    expect(phone.errors).toEqual([]);
  }, 60_000);

  it("changes the numbers on an edge when traffic flows, without reloading", async () => {
    const { page, errors } = await openPage();
    await signIn(page);
    const edge = page.locator(`g.edge[data-edge="productpage->details"][data-requests]`);
    await edge.waitFor({ timeout: 20_000 });
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const before = { requests: Number(await edge.getAttribute("data-requests")), label: await edge.locator("text").textContent() };
    await traffic(60);
    await page.waitForFunction(
      (n) => Number(document.querySelector(`g.edge[data-edge="productpage->details"]`)?.getAttribute("data-requests")) >= n,
      before.requests + 60,
      { timeout: 25_000 },
    );
    const after = { requests: Number(await edge.getAttribute("data-requests")), label: await edge.locator("text").textContent() };
    expect(after.requests).toBeGreaterThanOrEqual(before.requests + 60);
    expect(after.label).not.toBe(before.label);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(errors).toEqual([]);
  }, 60_000);

  it("reaches a service page by keyboard and shows its metrics, routes, endpoints, breaker, budget and sidecars", async () => {
    const { page, errors } = await openPage();
    await signIn(page);
    await page.locator(`svg.topology a.node[data-service="reviews"]`).waitFor();
    // Tab to the reviews node; focus must be visible on the way.
    let onReviews = false;
    for (let i = 0; i < 40 && !onReviews; i++) {
      await page.keyboard.press("Tab");
      onReviews = await page.evaluate(() => document.activeElement?.getAttribute("data-service") === "reviews");
      const outline = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return "none";
        const style = getComputedStyle(el.matches("a.node") ? el.querySelector(".node-box")! : el);
        return el.matches("a.node") ? style.strokeWidth : style.outlineStyle;
      });
      expect(outline, `focus is visible on step ${i}`).not.toBe("none");
    }
    expect(onReviews).toBe(true);
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/service\/reviews$/);
    await page.locator('[data-table="routes"] [data-route="default"]').waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe("H1");

    const split = async (route: string) =>
      Object.fromEntries(await page.locator(`[data-route="${route}"] .split-pct`).evaluateAll((els) => els.map((e) => [e.getAttribute("data-subset"), e.textContent])));
    expect(await split("default")).toEqual({ v1: "90%", v3: "10%" });
    expect(await split("jason")).toEqual({ v2: "100%" });
    const endpoints = await page.locator('[data-table="endpoints"] tbody tr').allInnerTexts();
    expect(endpoints.map((r) => r.split(/\s/)[0])).toEqual(["reviews-v1", "reviews-v2", "reviews-v3"]);
    expect(endpoints.every((r) => r.includes("serving"))).toBe(true);
    // Sidecars count as synced while they check in, which they do while they have traffic.
    const stopTraffic = steadyTraffic();
    try {
      await page.locator('[data-table="sidecars"] tbody tr td:has-text("synced")').first().waitFor({ timeout: 20_000 });
    } finally {
      await stopTraffic();
    }
    await expect(page.locator(".chart svg").count()).resolves.toBe(3);
    const resilience = await page.locator("#resilience-title").locator("..").innerText();
    expect(resilience).toContain("One sidecar isolate's view");
    expect(resilience).toMatch(/In flight\s+\d+/);
    expect(resilience).toMatch(/Retry budget\s+\d+ \/ \d+/);
    await page.waitForFunction(() => document.querySelector(".chart-line.series-rate")?.getAttribute("d")?.includes("L"), null, { timeout: 15_000 });
    await shot(page, "service-desktop");

    const phone = await openPage(PHONE);
    await signIn(phone.page, "#/service/reviews");
    await phone.page.locator('[data-table="routes"] [data-route="default"]').waitFor({ timeout: 15_000 });
    await phone.page.waitForFunction(() => document.querySelector(".chart-line.series-rate")?.getAttribute("d")?.includes("L"), null, { timeout: 15_000 });
    expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await shot(phone.page, "service-phone");
    expect(errors).toEqual([]);
    expect(phone.errors).toEqual([]);
  }, 90_000);

  it("rolls back from the policy page, after confirmation, and the sidecars serve the old version", async () => {
    // A change to roll back: every reviews request to v3.
    const policy = await bookinfoPolicy();
    policy.services.reviews.routes[1].to = [{ subset: "v3", weight: 100 }];
    const applied = await mesh.admin("/v1/policy", {
      method: "POST",
      headers: { "content-type": "application/json", "x-edgemesh-message": "all reviews to v3" },
      body: JSON.stringify(policy),
    });
    expect(applied.status).toBe(201);
    const changed = ((await applied.json()) as { version: number }).version;
    const original = changed - 1;
    await expect.poll(async () => (await reviewsServing(3)).versions, { timeout: 15_000 }).toEqual(new Set([String(changed)]));
    expect((await reviewsServing(20)).subsets).toEqual({ v3: 20 });

    const { page, errors } = await openPage();
    await signIn(page, "#/policy");
    const versions = page.locator('[data-table="versions"]');
    await versions.locator(`text=all reviews to v3`).waitFor();
    // The default comparison is the active version against the one before: the split change shows.
    await page.locator('[data-table="diff"]').waitFor();
    const diff = await page.locator('[data-table="diff"]').innerText();
    expect(diff).toContain("$.services.reviews.routes[1].to[0].weight");
    expect(diff).toContain("$.services.reviews.routes[1].to[1]");
    await shot(page, "policy-desktop");

    // Asking opens a confirmation; Escape cancels and nothing happens.
    await page.locator(`button[data-rollback-to="${original}"]`).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await activeVersion()).toBe(changed);

    await page.locator(`button[data-rollback-to="${original}"]`).click();
    await dialog.getByRole("button", { name: `Roll back to v${original}` }).click();
    const outcome = page.locator('[data-outcome="rolled-back"]');
    await outcome.waitFor();
    const restored = changed + 1;
    expect(await outcome.innerText()).toContain(`version ${restored} is now active with v${original}'s document`);
    expect(await activeVersion()).toBe(restored);
    const history = (await (await mesh.admin("/v1/policy/history?limit=1")).json()) as { versions: { author: string; kind: string; restoredVersion: number }[] };
    // The author is the admin token the dashboard signed in with (here the bootstrap secret).
    expect(history.versions[0]).toMatchObject({ author: "bootstrap", kind: "rollback", restoredVersion: original });

    // The sidecars serve the restored document: mostly v1 again, and the new version number.
    await expect.poll(async () => (await reviewsServing(3)).versions, { timeout: 15_000 }).toEqual(new Set([String(restored)]));
    const after = await reviewsServing(40);
    expect(after.subsets.v1 ?? 0).toBeGreaterThan(25);
    expect(Object.keys(after.subsets).every((s) => s === "v1" || s === "v3")).toBe(true);
    expect(errors).toEqual([]);
  }, 90_000);

  it("refuses a rollback that would overwrite a change made while the operator was confirming, and says so (409)", async () => {
    // At least two versions, whatever ran before: one to roll back to.
    expect((await mesh.applyPolicy(await bookinfoPolicy())).status).toBe(201);
    const { page, errors } = await openPage();
    await signIn(page, "#/policy");
    const before = await activeVersion();
    const target = before - 1;
    await page.locator(`button[data-rollback-to="${target}"]`).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    // Someone else applies a change while the dialog is open.
    const theirPolicy = await bookinfoPolicy();
    theirPolicy.services.reviews.routes[1].to = [{ subset: "v1", weight: 80 }, { subset: "v3", weight: 20 }];
    const concurrent = await mesh.applyPolicy(theirPolicy);
    expect(concurrent.status).toBe(201);
    const theirs = ((await concurrent.json()) as { version: number }).version;
    await dialog.getByRole("button", { name: `Roll back to v${target}` }).click();
    const conflict = page.locator('[data-outcome="conflict"]');
    await conflict.waitFor();
    const text = await conflict.innerText();
    expect(text).toContain("409");
    expect(text).toContain(`You confirmed against v${before}, but v${theirs} is active now. Nothing was changed.`);
    expect(await activeVersion()).toBe(theirs);
    // The comparison now shows what changed meanwhile: the version confirmed against to the active one.
    await page.locator(`[data-table="diff"] caption:has-text("from v${before} to v${theirs}")`).waitFor();
    expect(await page.locator('[data-table="diff"]').innerText()).toContain("$.services.reviews.routes[1].to[0].weight");
    await shot(page, "policy-conflict-desktop");
    // The one console error is Chromium's own line about the refused request.
    expect(errors).toEqual([expect.stringMatching(/status of 409/)]);
  }, 60_000);

  it("shows a health change in the events view as it happens, and filters by kind and service", async () => {
    // An instance whose health check fails: its /healthz answers 503.
    const target = await nodeServer((req, res) => {
      if (req.url?.startsWith("/healthz")) res.writeHead(503).end("unhealthy");
      else res.writeHead(200, { "content-type": "application/json" }).end('{"id":0,"version":"v9","ratings":{}}');
    });
    const { page, errors } = await openPage();
    try {
      await signIn(page, "#/events");
      await page.locator('[data-table="events"]').waitFor();
      const policy = await bookinfoPolicy();
      policy.services.ratings.healthCheck = { path: "/healthz", intervalMs: 200, timeoutMs: 150, unhealthyThreshold: 1, healthyThreshold: 1 };
      expect((await mesh.applyPolicy(policy)).status).toBe(201);
      const registered = await mesh.admin("/v1/registry/ratings", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "ratings-failing", url: target.url, labels: { version: "v9" }, leaseTtlMs: 60_000 }),
      });
      expect(registered.status).toBe(201);

      const rows = page.locator('[data-table="events"] tbody tr');
      const healthRow = rows.filter({ hasText: "ratings/ratings-failing healthy → unhealthy" });
      await healthRow.first().waitFor({ timeout: 20_000 });
      expect(await rows.filter({ hasText: "ratings/ratings-failing registered" }).count()).toBe(1);
      await shot(page, "events-desktop");

      await page.getByLabel("Service").selectOption("ratings");
      await page.getByLabel("Policy").uncheck();
      await page.getByLabel("Registry").uncheck();
      await page.getByLabel("Rollouts").uncheck();
      const shown = await rows.allInnerTexts();
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.every((r) => r.includes("health.changed") && r.includes("ratings"))).toBe(true);
      await page.getByLabel("Health").uncheck();
      await page.getByLabel("Policy").check();
      await page.getByLabel("Service").selectOption("");
      const policyOnly = await rows.allInnerTexts();
      expect(policyOnly.some((r) => r.includes("policy.applied"))).toBe(true);
      expect(policyOnly.every((r) => r.includes("policy."))).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await mesh.admin("/v1/registry/ratings/ratings-failing", { method: "DELETE" });
      await target.close();
    }
  }, 60_000);

  it("shows a rollout on the service page, and pauses it after confirmation", async () => {
    const policy = await bookinfoPolicy();
    policy.services.reviews.rollout = { stable: "v1", canary: "v3", routes: ["default"], steps: [10, 50, 100], intervalMs: 60_000 };
    expect((await mesh.applyPolicy(policy)).status).toBe(201);
    const { page, errors } = await openPage();
    try {
      await signIn(page, "#/service/reviews");
      const state = page.locator("[data-panel=rollout] [data-rollout-state]");
      await page.locator('[data-panel=rollout] [data-rollout-state="progressing"]').waitFor({ timeout: 20_000 });
      const panel = await page.locator("[data-panel=rollout]").innerText();
      expect(panel).toContain("Rollout: v1 → v3");
      expect(panel).toContain("step 1 of 3");
      expect(await page.locator('[data-panel=rollout] [data-rollout-weights] [data-subset="v3"]').textContent()).toBe("10%");
      expect(await page.locator('[data-table="rollout-gates"] tbody tr').count()).toBe(2);
      await shot(page, "service-rollout-desktop");

      await page.locator('[data-rollout-action="pause"]').click();
      const dialog = page.getByRole("dialog");
      await dialog.waitFor();
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
      await dialog.getByRole("button", { name: "Pause" }).click();
      await page.locator('[data-outcome="rollout-pause"]').waitFor();
      await page.locator('[data-panel=rollout] [data-rollout-state="paused"]').waitFor();
      expect(await state.textContent()).toContain("Paused");
      const rollout = (await (await mesh.admin("/v1/rollouts/reviews")).json()) as { state: string; reason: string };
      // Who paused it is the admin token the dashboard signed in with (here the bootstrap secret).
      expect(rollout).toMatchObject({ state: "paused", reason: 'paused by bootstrap at 10% for "v3"' });
      expect(errors).toEqual([]);
    } finally {
      // Leave reviews as the other tests expect it: no rollout.
      await mesh.admin("/v1/rollouts/reviews/abort", { method: "POST" });
      expect((await mesh.applyPolicy(await bookinfoPolicy())).status).toBe(201);
    }
  }, 60_000);
});
