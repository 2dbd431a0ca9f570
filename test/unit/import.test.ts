// What every import shares: reading YAML and JSON (several documents, Lists), merging into the
// base document, names of services from Kubernetes hosts, durations, and the report.
import { describe, expect, it } from "vitest";
import { importManifests } from "../../policies/import/index.ts";
import { integerWeights, parseDurationMs, policyName, serviceFromHost, uniqueName } from "../../policies/import/kube.ts";
import { UNKNOWN_FIELD } from "../../policies/import/manifest.ts";

const split = (name: string, service: string, backend: string) => ({
  apiVersion: "split.smi-spec.io/v1alpha4",
  kind: "TrafficSplit",
  metadata: { name },
  spec: { service, backends: [{ service: backend, weight: 1 }] },
});

const base = {
  mesh: "shop",
  services: {
    web: { endpoints: [{ id: "web-1", binding: "WEB_1", labels: { version: "v1" } }], subsets: { v1: { version: "v1" } }, routes: [{ name: "old", to: [{ subset: "v1" }] }] },
    cart: { endpoints: [{ id: "cart-1", url: "https://cart.example" }], routes: [{ name: "keep", to: [{ subset: "all" }] }], subsets: { all: {} } },
  },
};

describe("reading the input", () => {
  it("reads JSON, several YAML documents per source, and Kubernetes Lists", () => {
    const r = importManifests(
      [
        { name: "a.json", text: JSON.stringify({ apiVersion: "v1", kind: "List", items: [split("one", "web", "web-v1")] }) },
        { name: "b.yaml", text: `---\n# nothing here\n---\n${JSON.stringify(split("two", "web", "web-v1"))}\n` },
      ],
      { base },
    );
    expect(r.errors).toEqual([]);
    expect(r.imported).toEqual(["TrafficSplit/one", "TrafficSplit/two"]);
  });

  it("reports a broken document with its source and keeps going", () => {
    const r = importManifests([{ name: "bad.yaml", text: `${JSON.stringify(split("one", "web", "web-v1"))}\n---\nkind: [unclosed\n` }], { base });
    expect(r.imported).toEqual(["TrafficSplit/one"]);
    expect(r.errors).toEqual([expect.objectContaining({ source: "bad.yaml#2", path: "$", message: expect.stringMatching(/^not valid YAML or JSON/) })]);
  });

  it("refuses YAML alias bombs instead of expanding them", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`)].join("\n");
    const r = importManifests([{ name: "bomb.yaml", text: bomb }], { base });
    expect(r.errors).toEqual([expect.objectContaining({ source: "bomb.yaml#1", message: expect.stringMatching(/cannot read this document|not valid/) })]);
  });

  it("lists resources of other kinds and unsupported versions as not imported", () => {
    const r = importManifests([{ name: "k.yaml", text: `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public }
---
apiVersion: networking.istio.io/v2
kind: VirtualService
metadata: { name: future }
---
metadata: { name: nameless }
` }], { base });
    expect(r.ignored.map((f) => [f.resource, f.reason])).toEqual([
      ["Deployment/web", expect.stringMatching(/Deployment \(apps\/v1\) is not imported: edgemesh imports Istio VirtualService/)],
      ["Gateway/public", expect.stringMatching(/gateways are north-south entry points/)],
      ["VirtualService/future", expect.stringMatching(/networking.istio.io\/v2 is not a version edgemesh reads; it reads v1alpha3, v1beta1, v1/)],
      ["(no kind)/nameless", "no apiVersion or kind"],
    ]);
    expect(r.errors).toEqual([expect.objectContaining({ resource: "(no kind)/nameless", message: expect.stringMatching(/apiVersion and kind are required/) })]);
  });

  it("reports a value of the wrong type where it is", () => {
    const r = importManifests([{ name: "t.yaml", text: JSON.stringify({ ...split("one", "web", "web-v1"), spec: { service: "web", backends: [{ service: 7, weight: 1 }] } }) }], { base });
    expect(r.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: "$.spec.backends[0].service", message: "expected a string, got a number (7)" })]));
  });
});

describe("merging into the base document", () => {
  it("replaces the routes of the services the import routes and keeps everything else", () => {
    const r = importManifests([{ name: "s.yaml", text: JSON.stringify(split("canary", "web", "web-v1")) }], { base });
    const services = r.document.services as any;
    expect(services.web.routes).toEqual([{ name: "canary", to: [{ subset: "v1", weight: 1 }] }]);
    expect(services.web.endpoints).toEqual(base.services.web.endpoints);
    expect(services.cart).toEqual(base.services.cart);
    expect(r.document.mesh).toBe("shop");
    expect(r.warnings).toEqual([{ message: 'the 1 route(s) service "web" had in the base document are replaced by the imported ones' }]);
    // The base itself is untouched.
    expect(base.services.web.routes).toEqual([{ name: "old", to: [{ subset: "v1" }] }]);
  });

  it("creates services the base lacks, warning that they need endpoints", () => {
    const r = importManifests([{ name: "s.yaml", text: JSON.stringify(split("canary", "search", "search")) }], { mesh: "shop" });
    expect(r.errors).toEqual([]);
    expect(r.document).toEqual({ mesh: "shop", services: { search: { subsets: { all: {} }, routes: [{ name: "canary", to: [{ subset: "all", weight: 1 }] }] } } });
    expect(r.warnings).toEqual([{ message: expect.stringMatching(/service "search" has no endpoints in the base document/) }]);
  });

  it("warns when a subset selects none of the service's endpoints", () => {
    const r = importManifests([{ name: "s.yaml", text: `apiVersion: v1
kind: Service
metadata: { name: web-v9 }
spec: { selector: { version: v9 } }
---
${JSON.stringify(split("canary", "web", "web-v9"))}` }], { base });
    expect(r.warnings).toEqual(expect.arrayContaining([{ resource: "Service/web-v9", message: 'subset "web-v9" of "web" (labels {"version":"v9"}) selects none of its endpoints in the base document' }]));
  });

  it("needs a mesh name from the options or the base", () => {
    const r = importManifests([{ name: "s.yaml", text: JSON.stringify(split("canary", "web", "web")) }]);
    expect(r.errors).toEqual([{ path: "$.mesh", message: "no mesh name: give one (--mesh, ?mesh=) or a base document that has it" }]);
  });

  it("names the resource behind an error found validating the result", () => {
    const r = importManifests([{ name: "vs.yaml", text: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web }
spec:
  hosts: [web]
  http:
  - route:
    - { destination: { host: web, subset: v1 }, weight: 0 }
` }], { base });
    expect(r.errors).toEqual([{ path: "$.services.web.routes[0].to", message: "at least one destination needs a weight above 0", resource: "VirtualService/web", source: "vs.yaml#1" }]);
  });

  it("keeps route names unique and within the policy's pattern", () => {
    const long = "A".repeat(80);
    const r = importManifests([{ name: "s.yaml", text: [split(long, "web", "web-v1"), split(long, "web", "web-v1")].map((d) => JSON.stringify(d)).join("\n---\n") }], { base });
    const names = (r.document.services as any).web.routes.map((x: any) => x.name);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    for (const n of names) expect(n).toMatch(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
    expect(r.errors).toEqual([]);
  });

  it("lists fields of understood resources that nothing read as unknown", () => {
    const r = importManifests([{ name: "s.yaml", text: JSON.stringify({ ...split("canary", "web", "web-v1"), spec: { service: "web", backends: [{ service: "web-v1", weight: 1, wieght: 2 }] } }) }], { base });
    expect(r.ignored).toEqual([{ resource: "TrafficSplit/canary", source: "s.yaml#1", path: "$.spec.backends[0].wieght", reason: UNKNOWN_FIELD }]);
  });
});

describe("Kubernetes conventions", () => {
  it("maps hosts to mesh services, refusing external and wildcard hosts", () => {
    expect(serviceFromHost("reviews", undefined)).toEqual({ service: "reviews" });
    expect(serviceFromHost("reviews.bookinfo.svc.cluster.local", undefined)).toEqual({ service: "reviews" });
    expect(serviceFromHost("reviews.bookinfo.svc", undefined)).toEqual({ service: "reviews" });
    expect(serviceFromHost("reviews.bookinfo", "bookinfo")).toEqual({ service: "reviews" });
    expect(serviceFromHost("api.example.com", undefined)).toEqual({ problem: expect.stringMatching(/not a Kubernetes service name/) });
    expect(serviceFromHost("*.bookinfo.svc.cluster.local", undefined)).toEqual({ problem: expect.stringMatching(/wildcard/) });
  });

  it("parses durations into milliseconds, rounding up", () => {
    expect(parseDurationMs("10s")).toBe(10_000);
    expect(parseDurationMs("0.5s")).toBe(500);
    expect(parseDurationMs("1m30s")).toBe(90_000);
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("1h")).toBe(3_600_000);
    expect(parseDurationMs("100us")).toBe(1);
    expect(parseDurationMs("ten seconds")).toBeUndefined();
  });

  it("scales fractional weights together", () => {
    expect(integerWeights([90, 10])).toEqual([90, 10]);
    expect(integerWeights([0.5, 1])).toEqual([500, 1000]);
  });

  it("makes names fit the policy's pattern and unique", () => {
    expect(policyName("Reviews_Route.v2")).toBe("reviews-route-v2");
    expect(policyName("x".repeat(100))).toMatch(/^x{54}-[a-z0-9]+$/);
    const taken = new Set<string>();
    expect([uniqueName("a", taken), uniqueName("a", taken), uniqueName("a", taken)]).toEqual(["a", "a-2", "a-3"]);
  });
});
