// The SMI importer on a canary in the spec's style (test/fixtures/import/smi-canary.yaml) and on
// the older API versions.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { importManifests, type ImportResult } from "../../policies/import/index.ts";
import { ACCESS_NOT_TRANSLATED } from "../../policies/import/smi.ts";
import { validatePolicy } from "../../policies/schema.ts";

const fixture = (name: string) => readFile(new URL(`../fixtures/import/${name}`, import.meta.url), "utf8");
const base = JSON.parse(await fixture("base-website.json"));
const services = (r: ImportResult) => r.document.services as Record<string, any>;

describe("SMI canary", async () => {
  const result = importManifests([{ name: "smi-canary.yaml", text: await fixture("smi-canary.yaml") }], { base });

  it("translates into a valid document", () => {
    expect(result.errors).toEqual([]);
    expect(validatePolicy(result.document).ok).toBe(true);
    expect(result.imported).toEqual(["TrafficSplit/website-canary", "TrafficSplit/api-ab-test", "HTTPRouteGroup/browsers", "Service/website-v1", "Service/website-v2"]);
  });

  it("splits the root service by weight among subsets made from the backend Services' selectors", () => {
    const website = services(result).website;
    expect(website.subsets).toEqual({ "website-v1": { app: "website", version: "v1" }, "website-v2": { app: "website", version: "v2" } });
    expect(website.routes).toEqual([{ name: "website-canary", to: [{ subset: "website-v1", weight: 90 }, { subset: "website-v2", weight: 10 }] }]);
  });

  it("narrows an A/B split to its route group's matches and sends the rest to the root service", () => {
    const api = services(result).api;
    expect(api.routes).toEqual([
      {
        name: "api-ab-test",
        match: [{ headers: { "user-agent": { regex: ".*Firefox.*" } } }, { path: { regex: "(?:/metrics).*" }, methods: ["GET"] }],
        // api-v1 and api-v2 have no Service in the input: the base's subsets v1 and v2 stand for them.
        to: [{ subset: "v1", weight: 0 }, { subset: "v2", weight: 100 }],
      },
      { name: "api-unmatched", to: [{ subset: "all" }] },
    ]);
    expect(api.subsets.all).toEqual({});
  });

  it("lists the TrafficTarget's rule as access not translated, spelling the rule out", () => {
    const access = result.ignored.filter((f) => f.reason.startsWith(ACCESS_NOT_TRANSLATED));
    expect(access).toEqual([
      {
        resource: "TrafficTarget/metrics-scrape",
        source: "smi-canary.yaml#6",
        path: "$.spec.rules[0]",
        reason: `${ACCESS_NOT_TRANSLATED}: allow ServiceAccount monitoring/prometheus to call ServiceAccount default/website for [metrics: path ~ ^/metrics, methods GET]; SMI denies every other call to ServiceAccount default/website`,
      },
    ]);
    expect(result.ignored.filter((f) => !f.reason.startsWith(ACCESS_NOT_TRANSLATED)).map((f) => `${f.resource} ${f.path}`)).toEqual(["Service/website-v1 $.spec.ports", "Service/website-v2 $.spec.ports"]);
  });
});

describe("SMI versions and mistakes", () => {
  it("reads v1alpha1 weights given as quantities, scaled to whole numbers", () => {
    const r = importManifests([{ name: "old.yaml", text: `apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: { name: api-rollout }
spec:
  service: api
  backends:
  - { service: api-v1, weight: 500m }
  - { service: api-v2, weight: "1" }
` }], { base });
    expect(r.errors).toEqual([]);
    expect(services(r).api.routes[0].to).toEqual([{ subset: "v1", weight: 500 }, { subset: "v2", weight: 1000 }]);
  });

  it("reads v1alpha3 route groups whose headers are a list of maps", () => {
    const r = importManifests([{ name: "v3.yaml", text: `apiVersion: specs.smi-spec.io/v1alpha3
kind: HTTPRouteGroup
metadata: { name: insiders }
spec:
  matches:
  - name: android-insiders
    headers:
    - user-agent: ".*Android.*"
    - cookie: "^(.*?;)?(type=insider)(;.*)?$"
---
apiVersion: split.smi-spec.io/v1alpha3
kind: TrafficSplit
metadata: { name: insiders-to-v2 }
spec:
  service: api
  matches: [{ kind: HTTPRouteGroup, name: insiders }]
  backends: [{ service: api-v2, weight: 1 }]
` }], { base });
    expect(r.errors).toEqual([]);
    expect(services(r).api.routes[0].match).toEqual([{ headers: { "user-agent": { regex: ".*Android.*" }, cookie: { regex: "^(.*?;)?(type=insider)(;.*)?$" } } }]);
  });

  it("says what to add when a backend has no subset to stand for it, and when a route group is missing", () => {
    const r = importManifests([{ name: "bad.yaml", text: `apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: { name: canary }
spec:
  service: website
  backends: [{ service: website-next, weight: 1 }]
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: { name: ab }
spec:
  service: api
  matches: [{ kind: HTTPRouteGroup, name: nowhere }]
  backends: [{ service: api-v1, weight: 1 }]
` }], { base });
    expect(r.errors).toEqual([
      expect.objectContaining({ resource: "TrafficSplit/canary", path: "$.spec.backends[0].service", message: expect.stringMatching(/Include the Kubernetes Service "website-next" \(its selector becomes the subset\), or define subset "website-next" or "next" of service "website"/) }),
      expect.objectContaining({ resource: "TrafficSplit/ab", path: "$.spec.matches[0]", message: 'HTTPRouteGroup "nowhere" is not in the input; include it' }),
    ]);
  });

  it("lists route groups nobody names and layer-4 kinds as not imported", () => {
    const r = importManifests([{ name: "l4.yaml", text: `apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: { name: db }
spec: { matches: { ports: [5432] } }
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: { name: unused }
spec: { matches: [{ name: all, pathRegex: ".*" }] }
` }], { mesh: "shop" });
    expect(r.ignored.map((f) => [f.resource, f.path, f.reason])).toEqual([
      ["TCPRoute/db", "$", expect.stringMatching(/layer-4 routes are not imported/)],
      ["HTTPRouteGroup/unused", "$", expect.stringMatching(/not named by any TrafficSplit or TrafficTarget/)],
    ]);
  });
});
