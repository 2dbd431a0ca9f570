import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { COMPATIBILITY_DATE, CONTROL_WORKER, sidecarName } from "../../scripts/mesh.ts";
import { DEFAULT_CONTROL_WORKER, defaultRateLimitNamespace, DEFAULT_COMPATIBILITY_DATE, sidecarWorkerName } from "../../scripts/deploy/description.ts";
import { bookinfoDescription, bookinfoPolicy, resolve, resolved, withStockService } from "./deploy-fixtures.ts";

const errorsOf = (result: ReturnType<typeof resolve>) => (result.ok ? [] : result.errors);

describe("deploy description", () => {
  it("resolves the example: every service of the policy, derived Worker names, entry paths", async () => {
    const d = resolved(await bookinfoDescription(), await bookinfoPolicy());
    expect(d.mesh).toBe("bookinfo");
    expect(d.control).toEqual({ name: "edgemesh-control", expose: { workersDev: true, routes: [], customDomains: [] } });
    expect(d.services.map((s) => [s.name, s.sidecar])).toEqual([
      ["productpage", "edgemesh-sidecar-productpage"],
      ["details", "edgemesh-sidecar-details"],
      ["reviews", "edgemesh-sidecar-reviews"],
      ["ratings", "edgemesh-sidecar-ratings"],
    ]);
    const reviews = d.services.find((s) => s.name === "reviews")!;
    expect(reviews.instances.map((i) => i.worker)).toEqual(["bookinfo-reviews-v1", "bookinfo-reviews-v2", "bookinfo-reviews-v3"]);
    expect(reviews.instances[0]!.main).toBe(path.join(ROOT, "examples/bookinfo/reviews.ts"));
    expect(reviews.instances[2]!.calls).toEqual({ RATINGS: "ratings" });
    // Internal unless the description says otherwise: only productpage (the entry) is public.
    expect(d.services.filter((s) => s.expose.workersDev).map((s) => s.name)).toEqual(["productpage"]);
  });

  it("names Workers and picks the runtime date as the local mesh does", () => {
    expect(DEFAULT_COMPATIBILITY_DATE).toBe(COMPATIBILITY_DATE);
    expect(DEFAULT_CONTROL_WORKER).toBe(CONTROL_WORKER);
    expect(sidecarWorkerName("reviews")).toBe(sidecarName("reviews"));
  });

  it("names the field of a shape error, with what would be accepted", async () => {
    const desc = await bookinfoDescription();
    desc.services.reviews.instances[0].binding = "reviews-v1";
    desc.control = { name: "Edgemesh Control" };
    desc.relayShards = 0;
    desc.servics = {};
    const errors = errorsOf(resolve(desc, await bookinfoPolicy()));
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: "$.services.reviews.instances[0].binding", message: expect.stringContaining("UPPER_SNAKE_CASE") },
        { path: "$.control.name", message: expect.stringContaining("lowercase letters, digits and '-'") },
        { path: "$.relayShards", message: expect.stringMatching(/>=\s*1|at least 1|too small/i) },
        { path: "$.servics", message: 'unknown field "servics" (a typo?)' },
      ]),
    );
  });

  it("checks the description against the policy: services, endpoints, callees", async () => {
    const desc = await bookinfoDescription();
    desc.services.reviewz = { instances: [] };
    desc.services.reviews.instances.splice(1, 1); // REVIEWS_V2 is an endpoint of the policy
    desc.services.productpage.instances[0].calls.INVENTORY = "inventory";
    const errors = errorsOf(resolve(desc, await bookinfoPolicy()));
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: "$.services.reviewz", message: expect.stringContaining('"reviewz" is not a service of the policy (mesh "bookinfo"); its services: productpage, details, reviews, ratings') },
        { path: "$.services.reviews.instances", message: expect.stringContaining('endpoint "reviews-v2" (services.reviews.endpoints[1]) uses binding REVIEWS_V2, which no instance serves') },
        { path: "$.services.productpage.instances[0].calls.INVENTORY", message: expect.stringContaining('"inventory" is not a service of the policy') },
      ]),
    );
  });

  it("refuses a binding endpoint of a service the description leaves out", async () => {
    const desc = await bookinfoDescription();
    delete desc.services.ratings;
    expect(errorsOf(resolve(desc, await bookinfoPolicy()))).toEqual([
      { path: "$.services.ratings", message: expect.stringContaining("uses binding RATINGS_V1, which no instance serves") },
    ]);
  });

  it("refuses two Workers of one name, and names both places", async () => {
    const desc = await bookinfoDescription();
    desc.services.reviews.instances[1].worker = "bookinfo-reviews-v1";
    desc.services.ratings.sidecar = "edgemesh-control";
    const errors = errorsOf(resolve(desc, await bookinfoPolicy()));
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: "$.services.reviews.instances[1].worker", message: 'Worker name "bookinfo-reviews-v1" is already used by $.services.reviews.instances[0].binding' },
        { path: "$.services.ratings.sidecar", message: 'Worker name "edgemesh-control" is already used by $.control.name' },
      ]),
    );
  });

  it("refuses bindings a sidecar already has, and calls or vars on a Worker edgemesh does not deploy", async () => {
    const policy = await bookinfoPolicy();
    policy.services.details.endpoints[0].binding = "MESH_CONTROL";
    const desc = await bookinfoDescription();
    desc.services.details.instances[0] = { binding: "MESH_CONTROL", main: "../examples/bookinfo/details.ts" };
    desc.services.ratings.instances[0] = { binding: "RATINGS_V1", worker: "legacy-ratings", calls: { DETAILS: "details" }, vars: { A: "b" } };
    const errors = errorsOf(resolve(desc, policy));
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: "$.services.details.instances[0].binding", message: expect.stringContaining("MESH_CONTROL is a name every sidecar already uses") },
        { path: "$.services.ratings.instances[0].calls", message: expect.stringContaining('give "main"') },
        { path: "$.services.ratings.instances[0].vars", message: expect.stringContaining('give "main"') },
      ]),
    );
  });

  it("binds a Worker deployed some other way when the instance has no main", async () => {
    const desc = await bookinfoDescription();
    desc.services.ratings.instances[0] = { binding: "RATINGS_V1", worker: "legacy-ratings" };
    const ratings = resolved(desc, await bookinfoPolicy()).services.find((s) => s.name === "ratings")!;
    expect(ratings.instances).toEqual([{ service: "ratings", binding: "RATINGS_V1", worker: "legacy-ratings", vars: {}, calls: {} }]);
  });

  it("asks for a name when a derived one would be too long", async () => {
    const policy = await bookinfoPolicy();
    const long = `s${"x".repeat(60)}`;
    policy.services[long] = { endpoints: [] };
    const errors = errorsOf(resolve(await bookinfoDescription(), policy));
    expect(errors).toEqual([{ path: `$.services.${long}`, message: expect.stringContaining('set "sidecar" to a shorter Worker name') }]);
  });

  it("checks routes and custom domains", async () => {
    const desc = await bookinfoDescription();
    desc.services.productpage.routes = [{ pattern: "https://shop.example.com/*", zoneName: "example.com" }, { pattern: "shop.example.com/*", zoneName: "example.com", zoneId: "0".repeat(32) }];
    desc.services.productpage.customDomains = ["not a host"];
    const errors = errorsOf(resolve(desc, await bookinfoPolicy()));
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: "$.services.productpage.routes[0].pattern", message: expect.stringContaining("no scheme") },
        { path: "$.services.productpage.routes[1]", message: expect.stringContaining('at most one of "zoneName" or "zoneId"') },
        { path: "$.services.productpage.customDomains[0]", message: expect.stringContaining("hostname") },
      ]),
    );
  });

  describe("shared rate limits", () => {
    it("gives each shared binding its limit and a stable namespace, overridable", async () => {
      const { policy, description } = withStockService(await bookinfoPolicy(), await bookinfoDescription());
      const stock = resolved(description, policy).services.find((s) => s.name === "stock")!;
      const namespaceId = defaultRateLimitNamespace("bookinfo", "stock", "RATE_LIMIT_STOCK");
      expect(stock.rateLimits).toEqual([{ binding: "RATE_LIMIT_STOCK", limit: 600, periodSeconds: 60, namespaceId }]);
      expect(namespaceId).toBeGreaterThanOrEqual(1_000_000);
      expect(defaultRateLimitNamespace("bookinfo", "stock", "RATE_LIMIT_STOCK")).toBe(namespaceId);
      expect(defaultRateLimitNamespace("bookinfo", "stock", "RATE_LIMIT_STOCK_2")).not.toBe(namespaceId);

      description.services.stock.rateLimitNamespaces = { RATE_LIMIT_STOCK: 1001 };
      expect(resolved(description, policy).services.find((s) => s.name === "stock")!.rateLimits[0]!.namespaceId).toBe(1001);
    });

    it("refuses a namespace used twice and a namespace for no limit (one binding for two different limits is the schema's to refuse)", async () => {
      const { policy, description } = withStockService(await bookinfoPolicy(), await bookinfoDescription());
      policy.services.details.rateLimits = [{ requests: 5, periodMs: 10_000, shared: { binding: "RATE_LIMIT_DETAILS" } }];
      description.services.details.rateLimitNamespaces = { RATE_LIMIT_DETAILS: 7 };
      description.services.stock.rateLimitNamespaces = { RATE_LIMIT_STOCK: 7, RATE_LIMIT_NONE: 8 };
      const errors = errorsOf(resolve(description, policy));
      expect(errors).toEqual(
        expect.arrayContaining([
          { path: "$.services.stock.rateLimitNamespaces.RATE_LIMIT_STOCK", message: expect.stringContaining("namespace 7 is already used by services.details binding RATE_LIMIT_DETAILS") },
          { path: "$.services.stock.rateLimitNamespaces.RATE_LIMIT_NONE", message: expect.stringContaining("no shared rate limit of \"stock\" uses binding RATE_LIMIT_NONE") },
        ]),
      );
    });
  });
});
