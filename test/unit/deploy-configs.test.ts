import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sidecarBindingName } from "../../durable/bindings.ts";
import { ROOT } from "../../scripts/build.ts";
import { CONTROL_MIGRATIONS, type GeneratedWorker, type WranglerConfig } from "../../scripts/deploy/configs.ts";
import { readableJson, renderConfig } from "../../scripts/deploy/files.ts";
import { bookinfoDescription, bookinfoPolicy, byName, generate, OUT_DIR, resolved, withStockService } from "./deploy-fixtures.ts";

const mainOf = (c: WranglerConfig) => path.resolve(OUT_DIR, c.main);
const names = (workers: GeneratedWorker[]) => workers.map((w) => w.config.name).sort();

async function bookinfoWorkers(): Promise<GeneratedWorker[]> {
  return generate(resolved(await bookinfoDescription(), await bookinfoPolicy()));
}

describe("generated configs: the control Worker", () => {
  it("runs the control plane with its Durable Objects, the migrations as first deployed, and the sidecars bound", async () => {
    const control = byName(await bookinfoWorkers(), "edgemesh-control");
    expect(control.kind).toBe("control");
    const c = control.config;
    expect(mainOf(c)).toBe(path.join(ROOT, "workers/control/index.ts"));
    expect(c.compatibility_date).toBe("2026-04-01");
    expect(c.workers_dev).toBe(true);
    expect(c.preview_urls).toBe(false);
    expect(c.vars).toEqual({ MESH_NAME: "bookinfo", TELEMETRY_DATASET: "edgemesh_requests" });
    expect(c.secrets).toEqual({ required: ["EDGEMESH_ADMIN_TOKEN", "EDGEMESH_TOKEN_KEYS"] });
    expect(c.durable_objects!.bindings).toEqual([
      { name: "MESH_CONTROL", class_name: "MeshControl" },
      { name: "MESH_RELAY", class_name: "MeshRelay" },
      { name: "TELEMETRY_STORE", class_name: "TelemetryStore" },
    ]);
    // Exactly the tags deployments already carry (the hand-written wrangler.toml had these):
    // changing or reordering one would make Cloudflare refuse the next deploy.
    expect(c.migrations).toEqual([
      { tag: "v1", new_sqlite_classes: ["MeshControl"] },
      { tag: "v2", new_sqlite_classes: ["TelemetryStore"] },
      { tag: "v3", new_sqlite_classes: ["MeshRelay"] },
    ]);
    expect(c.services).toEqual([
      { binding: "HEALTH_PROBE", service: "edgemesh-control", entrypoint: "HealthProbe" },
      { binding: "SIDECAR_PRODUCTPAGE", service: "edgemesh-sidecar-productpage", entrypoint: "SidecarControl" },
      { binding: "SIDECAR_DETAILS", service: "edgemesh-sidecar-details", entrypoint: "SidecarControl" },
      { binding: "SIDECAR_REVIEWS", service: "edgemesh-sidecar-reviews", entrypoint: "SidecarControl" },
      { binding: "SIDECAR_RATINGS", service: "edgemesh-sidecar-ratings", entrypoint: "SidecarControl" },
    ]);
    // The binding names are the ones MeshControl looks up.
    for (const s of ["productpage", "details", "reviews", "ratings"]) expect(c.services!.some((b) => b.binding === sidecarBindingName(s))).toBe(true);
  });

  it("never changes a migration the package already shipped", () => {
    expect(CONTROL_MIGRATIONS.slice(0, 3).map((m) => `${m.tag}:${m.new_sqlite_classes.join(",")}`)).toEqual(["v1:MeshControl", "v2:TelemetryStore", "v3:MeshRelay"]);
  });
});

describe("generated configs: sidecars", () => {
  it("gives every service a sidecar with its name, the control's objects, telemetry and a binding per endpoint", async () => {
    const workers = await bookinfoWorkers();
    const sidecars = workers.filter((w) => w.kind === "sidecar");
    expect(sidecars.map((w) => w.service)).toEqual(["productpage", "details", "reviews", "ratings"]);
    const reviews = byName(workers, "edgemesh-sidecar-reviews").config;
    expect(mainOf(reviews)).toBe(path.join(ROOT, "workers/sidecar/index.ts"));
    expect(reviews.compatibility_flags).toEqual(["enable_request_signal"]);
    expect(reviews.vars).toEqual({ SERVICE_NAME: "reviews", MESH_NAME: "bookinfo", EDGEMESH_RELAY_SHARDS: "4" });
    expect(reviews.secrets).toEqual({ required: ["EDGEMESH_TOKEN_KEYS"] });
    expect(reviews.durable_objects!.bindings).toEqual([
      { name: "MESH_CONTROL", class_name: "MeshControl", script_name: "edgemesh-control" },
      { name: "MESH_RELAY", class_name: "MeshRelay", script_name: "edgemesh-control" },
    ]);
    expect(reviews.migrations).toBeUndefined();
    expect(reviews.analytics_engine_datasets).toEqual([{ binding: "TELEMETRY", dataset: "edgemesh_requests" }]);
    expect(reviews.services).toEqual([
      { binding: "REVIEWS_V1", service: "bookinfo-reviews-v1" },
      { binding: "REVIEWS_V2", service: "bookinfo-reviews-v2" },
      { binding: "REVIEWS_V3", service: "bookinfo-reviews-v3" },
    ]);
    expect(reviews.ratelimits).toBeUndefined();
  });

  it("keeps internal sidecars off workers.dev and preview URLs; only the public one is on it", async () => {
    const sidecars = (await bookinfoWorkers()).filter((w) => w.kind === "sidecar");
    expect(sidecars.map((w) => [w.service, w.config.workers_dev, w.config.preview_urls, w.config.routes])).toEqual([
      ["productpage", true, false, undefined],
      ["details", false, false, undefined],
      ["reviews", false, false, undefined],
      ["ratings", false, false, undefined],
    ]);
  });

  it("puts routes, custom domains, the account, the dataset and the relay shards where wrangler reads them", async () => {
    const desc = await bookinfoDescription();
    desc.accountId = "0123456789abcdef0123456789abcdef";
    desc.analyticsDataset = "shop_requests";
    desc.relayShards = 8;
    desc.control = { workersDev: false, customDomains: ["mesh-admin.example.com"] };
    desc.services.productpage.workersDev = false;
    desc.services.productpage.routes = [{ pattern: "shop.example.com/*", zoneName: "example.com" }, { pattern: "shop2.example.com/*", zoneId: "f".repeat(32) }, { pattern: "shop3.example.com/*" }];
    desc.services.productpage.customDomains = ["bookinfo.example.com"];
    const workers = generate(resolved(desc, await bookinfoPolicy()));
    const control = byName(workers, "edgemesh-control").config;
    expect(control.account_id).toBe(desc.accountId);
    expect(control.workers_dev).toBe(false);
    expect(control.routes).toEqual([{ pattern: "mesh-admin.example.com", custom_domain: true }]);
    expect(control.vars!.TELEMETRY_DATASET).toBe("shop_requests");
    const productpage = byName(workers, "edgemesh-sidecar-productpage").config;
    expect(productpage.workers_dev).toBe(false);
    expect(productpage.routes).toEqual([
      { pattern: "shop.example.com/*", zone_name: "example.com" },
      { pattern: "shop2.example.com/*", zone_id: "f".repeat(32) },
      { pattern: "shop3.example.com/*" },
      { pattern: "bookinfo.example.com", custom_domain: true },
    ]);
    expect(productpage.analytics_engine_datasets).toEqual([{ binding: "TELEMETRY", dataset: "shop_requests" }]);
    expect(productpage.vars!.EDGEMESH_RELAY_SHARDS).toBe("8");
    for (const w of workers) expect(w.config.account_id).toBe(desc.accountId);
  });
});

describe("generated configs: the services' Workers", () => {
  it("binds each caller to its callees' sidecars with props naming the caller", async () => {
    const workers = await bookinfoWorkers();
    expect(workers.filter((w) => w.kind === "instance").map((w) => w.config.name)).toEqual([
      "bookinfo-productpage-v1", "bookinfo-details-v1", "bookinfo-reviews-v1", "bookinfo-reviews-v2", "bookinfo-reviews-v3", "bookinfo-ratings-v1",
    ]);
    const productpage = byName(workers, "bookinfo-productpage-v1").config;
    expect(mainOf(productpage)).toBe(path.join(ROOT, "examples/bookinfo/productpage.ts"));
    expect(productpage.vars).toEqual({ VERSION: "v1" });
    expect(productpage.services).toEqual([
      { binding: "DETAILS", service: "edgemesh-sidecar-details", props: { caller: "productpage" } },
      { binding: "REVIEWS", service: "edgemesh-sidecar-reviews", props: { caller: "productpage" } },
    ]);
    expect(byName(workers, "bookinfo-reviews-v3").config.services).toEqual([{ binding: "RATINGS", service: "edgemesh-sidecar-ratings", props: { caller: "reviews" } }]);
    const details = byName(workers, "bookinfo-details-v1").config;
    expect(details.services).toBeUndefined();
    for (const w of workers.filter((x) => x.kind === "instance")) expect([w.config.workers_dev, w.config.preview_urls]).toEqual([false, false]);
  });

  it("generates no config for a Worker deployed some other way, but binds it", async () => {
    const desc = await bookinfoDescription();
    desc.services.ratings.instances[0] = { binding: "RATINGS_V1", worker: "legacy-ratings" };
    const workers = generate(resolved(desc, await bookinfoPolicy()));
    expect(workers.some((w) => w.config.name === "legacy-ratings")).toBe(false);
    expect(byName(workers, "edgemesh-sidecar-ratings").config.services).toEqual([{ binding: "RATINGS_V1", service: "legacy-ratings" }]);
  });
});

describe("adding a service is one entry", () => {
  it("generates exactly one more sidecar and its Worker, binds it to the control and to its caller, and changes nothing else", async () => {
    const policy = await bookinfoPolicy();
    const description = await bookinfoDescription();
    const before = generate(resolved(description, policy));
    const more = withStockService(policy, description);
    const after = generate(resolved(more.description, more.policy));

    expect(names(after).filter((n) => !names(before).includes(n))).toEqual(["bookinfo-stock-v1", "edgemesh-sidecar-stock"]);
    expect(after.filter((w) => w.kind === "sidecar")).toHaveLength(before.filter((w) => w.kind === "sidecar").length + 1);

    const stock = byName(after, "edgemesh-sidecar-stock").config;
    expect(stock.vars).toEqual({ SERVICE_NAME: "stock", MESH_NAME: "bookinfo", EDGEMESH_RELAY_SHARDS: "4" });
    expect(stock.services).toEqual([{ binding: "STOCK_V1", service: "bookinfo-stock-v1" }]);
    expect(stock.workers_dev).toBe(false);
    expect(stock.ratelimits).toEqual([{ name: "RATE_LIMIT_STOCK", namespace_id: expect.stringMatching(/^\d+$/), simple: { limit: 600, period: 60 } }]);
    expect(stock.durable_objects).toEqual(byName(before, "edgemesh-sidecar-reviews").config.durable_objects);

    const controlBefore = byName(before, "edgemesh-control").config;
    const controlAfter = byName(after, "edgemesh-control").config;
    expect(controlAfter.services).toEqual([...controlBefore.services!, { binding: "SIDECAR_STOCK", service: "edgemesh-sidecar-stock", entrypoint: "SidecarControl" }]);
    expect({ ...controlAfter, services: undefined }).toEqual({ ...controlBefore, services: undefined });

    expect(byName(after, "bookinfo-productpage-v1").config.services).toEqual([
      ...byName(before, "bookinfo-productpage-v1").config.services!,
      { binding: "STOCK", service: "edgemesh-sidecar-stock", props: { caller: "productpage" } },
    ]);
    for (const w of before.filter((x) => x.kind !== "control" && x.config.name !== "bookinfo-productpage-v1")) {
      expect(byName(after, w.config.name)).toEqual(w);
    }
  });
});

describe("config files", () => {
  it("are JSONC that parses back to the config, with a header naming the source", async () => {
    for (const w of await bookinfoWorkers()) {
      const text = renderConfig(w, "policies/bookinfo.deploy.json");
      expect(text.split("\n")[0]).toBe("// Generated by `edgemesh deploy` from policies/bookinfo.deploy.json; edits here are overwritten.");
      const json = text.split("\n").filter((line) => !line.startsWith("//")).join("\n");
      expect(JSON.parse(json)).toEqual(w.config);
    }
  });

  it("print any JSON value so that it parses back the same", () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      expect(JSON.parse(readableJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
    }), { numRuns: 500 });
  });
});
