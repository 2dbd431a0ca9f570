import { describe, expect, it } from "vitest";
import type { GeneratedWorker } from "../../scripts/deploy/configs.ts";
import { bindingTargets, deployOrder, selectWorkers, serviceOrder, unresolvedBindings } from "../../scripts/deploy/plan.ts";
import { bookinfoDescription, bookinfoPolicy, generate, resolved, withStockService } from "./deploy-fixtures.ts";

const names = (plan: readonly GeneratedWorker[]) => plan.map((w) => w.config.name);
/** The Workers that exist once the required secrets are set: `wrangler secret put` creates them. */
const withSecrets = (workers: readonly GeneratedWorker[]) => new Set(workers.filter((w) => w.kind !== "instance").map((w) => w.config.name));

async function bookinfo() {
  const d = resolved(await bookinfoDescription(), await bookinfoPolicy());
  return { d, workers: generate(d) };
}

describe("deploy order", () => {
  it("deploys the control Worker, then each service's Workers and sidecar, callees first", async () => {
    const { d, workers } = await bookinfo();
    expect(serviceOrder(d)).toEqual(["details", "ratings", "reviews", "productpage"]);
    expect(names(deployOrder(d, workers))).toEqual([
      "edgemesh-control",
      "bookinfo-details-v1", "edgemesh-sidecar-details",
      "bookinfo-ratings-v1", "edgemesh-sidecar-ratings",
      "bookinfo-reviews-v1", "bookinfo-reviews-v2", "bookinfo-reviews-v3", "edgemesh-sidecar-reviews",
      "bookinfo-productpage-v1", "edgemesh-sidecar-productpage",
    ]);
  });

  it("resolves every binding from the state the secrets leave (control and sidecars exist), and not from nothing", async () => {
    const { d, workers } = await bookinfo();
    const plan = deployOrder(d, workers);
    expect(unresolvedBindings(plan, withSecrets(workers))).toEqual([]);
    // From nothing the control Worker's bindings to itself and to the sidecars cannot resolve:
    // that is why the secrets come first.
    const fromNothing = unresolvedBindings(plan, new Set());
    expect(fromNothing.filter((u) => u.worker === "edgemesh-control").map((u) => u.binding)).toEqual(["HEALTH_PROBE", "SIDECAR_PRODUCTPAGE", "SIDECAR_DETAILS", "SIDECAR_REVIEWS", "SIDECAR_RATINGS"]);
    // Sidecars bind the control's objects and their own Workers, both deployed before them.
    expect(fromNothing.filter((u) => u.worker.startsWith("edgemesh-sidecar-"))).toEqual([]);
  });

  it("finds a binding that names a Worker nobody deploys", async () => {
    const desc = await bookinfoDescription();
    desc.services.ratings.instances[0] = { binding: "RATINGS_V1", worker: "legacy-ratings" };
    const d = resolved(desc, await bookinfoPolicy());
    const workers = generate(d);
    expect(unresolvedBindings(deployOrder(d, workers), withSecrets(workers))).toEqual([{ worker: "edgemesh-sidecar-ratings", binding: "RATINGS_V1", target: "legacy-ratings" }]);
    expect(unresolvedBindings(deployOrder(d, workers), new Set([...withSecrets(workers), "legacy-ratings"]))).toEqual([]);
  });

  it("deploys services that call each other, each Worker once", async () => {
    const { policy, description } = withStockService(await bookinfoPolicy(), await bookinfoDescription());
    description.services.stock.instances[0].calls = { PRODUCTPAGE: "productpage" }; // productpage -> stock -> productpage
    const d = resolved(description, policy);
    const workers = generate(d);
    const plan = deployOrder(d, workers);
    expect([...names(plan)].sort()).toEqual([...names(workers)].sort());
    expect(unresolvedBindings(plan, withSecrets(workers))).toEqual([]);
  });

  it("names the Workers a config binds", async () => {
    const { workers } = await bookinfo();
    const sidecar = workers.find((w) => w.config.name === "edgemesh-sidecar-reviews")!;
    expect(bindingTargets(sidecar.config)).toEqual([
      { binding: "REVIEWS_V1", target: "bookinfo-reviews-v1" },
      { binding: "REVIEWS_V2", target: "bookinfo-reviews-v2" },
      { binding: "REVIEWS_V3", target: "bookinfo-reviews-v3" },
      { binding: "MESH_CONTROL", target: "edgemesh-control" },
      { binding: "MESH_RELAY", target: "edgemesh-control" },
    ]);
  });
});

describe("--only", () => {
  it("selects the control Worker, a service's Workers and sidecar, or single Workers, in plan order", async () => {
    const { d, workers } = await bookinfo();
    const plan = deployOrder(d, workers);
    expect(names(selectWorkers(plan, ["reviews"]))).toEqual(["bookinfo-reviews-v1", "bookinfo-reviews-v2", "bookinfo-reviews-v3", "edgemesh-sidecar-reviews"]);
    expect(names(selectWorkers(plan, ["productpage", "control"]))).toEqual(["edgemesh-control", "bookinfo-productpage-v1", "edgemesh-sidecar-productpage"]);
    expect(names(selectWorkers(plan, ["bookinfo-reviews-v2"]))).toEqual(["bookinfo-reviews-v2"]);
  });

  it("refuses a name that is not in the mesh, and says what is", async () => {
    const { d, workers } = await bookinfo();
    expect(() => selectWorkers(deployOrder(d, workers), ["reviews", "reveiws"])).toThrow('--only: "reveiws" is neither "control", a service (details, ratings, reviews, productpage) nor a Worker of this mesh');
  });
});
