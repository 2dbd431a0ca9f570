// The SMI importer on a canary and on access control in the spec's style
// (test/fixtures/import/smi-canary.yaml, smi-access.yaml) and on the older API versions. Access is
// checked twice: the rules written, and what the sidecar's evaluator admits with them.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { importManifests, type ImportOptions, type ImportResult } from "../../policies/import/index.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { accessDeniedBy, prepareAccess } from "../../workers/sidecar/access.ts";

const fixture = (name: string) => readFile(new URL(`../fixtures/import/${name}`, import.meta.url), "utf8");
const base = JSON.parse(await fixture("base-website.json"));
const services = (r: ImportResult) => r.document.services as Record<string, any>;

/** Who the imported policy lets call `service`: undefined when admitted, else the refusing rule. */
function accessOf(r: ImportResult, service: string) {
  const checked = validatePolicy(r.document);
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors, null, 2));
  const access = prepareAccess(compilePolicy(checked.document).services[service]!.access);
  return (caller: string, method: string, path: string, headers: Record<string, string> = {}) => accessDeniedBy(access, caller, { method, path, headers: new Headers(headers) });
}

const importSmi = (name: string, text: string, options: ImportOptions = { base }) => importManifests([{ name, text }], options);

describe("SMI canary", async () => {
  const result = importManifests([{ name: "smi-canary.yaml", text: await fixture("smi-canary.yaml") }], { base });

  it("translates into a valid document", () => {
    expect(result.errors).toEqual([]);
    expect(validatePolicy(result.document).ok).toBe(true);
    expect(result.imported).toEqual(["TrafficSplit/website-canary", "TrafficSplit/api-ab-test", "TrafficTarget/metrics-scrape", "HTTPRouteGroup/browsers", "Service/website-v1", "Service/website-v2"]);
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

  it("turns the TrafficTarget into an allow rule of its destination, which then admits nothing else", () => {
    // prometheus is declared as an identity in the base document, so the ServiceAccount needs no mapping.
    expect(services(result).website.access).toEqual({
      mode: "strict",
      allow: [{ name: "metrics-scrape-metrics", from: ["prometheus"], paths: [{ regex: "(?:/metrics).*" }], methods: ["GET"] }],
    });
    const admits = accessOf(result, "website");
    expect(admits("prometheus", "GET", "/metrics")).toBeUndefined();
    expect(admits("prometheus", "POST", "/metrics")).toBe("website/(default-deny)");
    expect(admits("prometheus", "GET", "/")).toBe("website/(default-deny)");
    expect(admits("external", "GET", "/metrics")).toBe("website/(default-deny)");
    // The split's service has no TrafficTarget: its access is untouched.
    expect(services(result).api.access).toBeUndefined();
    expect(result.ignored.map((f) => `${f.resource} ${f.path}`)).toEqual(["Service/website-v1 $.spec.ports", "Service/website-v2 $.spec.ports"]);
  });
});

describe("SMI access (TrafficTarget)", async () => {
  const text = await fixture("smi-access.yaml");
  const accounts = { "default/website-sa": "website", "batch/nightly-report": "nightly-report" };
  const result = importSmi("smi-access.yaml", text, { base, serviceAccounts: accounts });

  it("writes one allow rule per route group match from the mapped sources, and makes the destination strict", () => {
    expect(result.errors).toEqual([]);
    expect(result.imported).toEqual(["TrafficTarget/api-from-website", "TrafficTarget/api-metrics", "TrafficTarget/api-from-reports", "HTTPRouteGroup/api-routes"]);
    expect(services(result).api.access).toEqual({
      mode: "strict",
      allow: [
        { name: "api-from-website-read-items", from: ["website"], paths: [{ regex: "(?:/items).*" }], methods: ["GET", "HEAD"] },
        { name: "api-from-website-write-items", from: ["website"], paths: [{ regex: "(?:/items/[0-9]+$).*" }], methods: ["PUT", "POST"], headers: { "content-type": { regex: "application/json.*" } } },
        { name: "api-metrics-metrics", from: ["prometheus"], paths: [{ regex: "(?:/metrics).*" }], methods: ["GET"] },
        // A TCPRoute rule is layer 4: every request on the service's one HTTP entry.
        { name: "api-from-reports-api-port", from: ["nightly-report"] },
      ],
    });
    // The mapped name that is no service becomes an identity, next to the base's.
    expect((result.document as any).access).toEqual({ identities: ["prometheus", "nightly-report"] });
    // Routing is untouched: the base's subsets stay, no routes appear.
    expect(services(result).api.routes).toBeUndefined();
  });

  it("admits exactly what the targets allow, in the sidecar's evaluator", () => {
    const admits = accessOf(result, "api");
    expect(admits("website", "GET", "/items/7")).toBeUndefined();
    expect(admits("website", "HEAD", "/items")).toBeUndefined();
    expect(admits("website", "PUT", "/items/7", { "content-type": "application/json; charset=utf-8" })).toBeUndefined();
    expect(admits("website", "PUT", "/items/7", { "content-type": "text/plain" })).toBe("api/(default-deny)");
    expect(admits("website", "PUT", "/items/7/photo", { "content-type": "application/json" })).toBe("api/(default-deny)");
    expect(admits("website", "DELETE", "/items/7")).toBe("api/(default-deny)");
    expect(admits("website", "GET", "/metrics")).toBe("api/(default-deny)");
    expect(admits("prometheus", "GET", "/metrics")).toBeUndefined();
    expect(admits("prometheus", "GET", "/items")).toBe("api/(default-deny)");
    expect(admits("nightly-report", "DELETE", "/anything")).toBeUndefined();
    expect(admits("external", "GET", "/items")).toBe("api/(default-deny)");
  });

  it("says what it did to access, and lists the layer-4 and port fields it did not translate", () => {
    expect(result.warnings.map((w) => w.message)).toEqual(expect.arrayContaining([
      expect.stringMatching(/^"nightly-report" \(ServiceAccount batch\/nightly-report\) is not a service of the mesh, so it is declared in access.identities/),
      'service "api" now admits only the calls its TrafficTargets allow (4 allow rule(s), access.mode strict): every other caller gets 403, as in SMI',
      expect.stringMatching(/^SMI denies every call no TrafficTarget allows, across the mesh; the import makes strict only the services TrafficTargets name/),
    ]));
    expect(result.ignored.map((f) => [f.resource, f.path, f.reason])).toEqual([
      ["TCPRoute/api-port", "$", expect.stringMatching(/a TrafficTarget rule naming a TCPRoute admits its sources to the whole service/)],
      ["TrafficTarget/api-from-reports", "$.spec.destination.port", expect.stringMatching(/ports do not apply/)],
    ]);
  });

  it("says how to map a ServiceAccount the document does not know, instead of guessing", () => {
    const r = importSmi("smi-access.yaml", text, { base, serviceAccounts: { "default/website-sa": "website" } });
    expect(r.errors).toEqual([
      expect.objectContaining({
        resource: "TrafficTarget/api-from-reports",
        path: "$.spec.sources[0]",
        message: 'ServiceAccount batch/nightly-report is neither a service nor a declared identity of the mesh; map it to the service it runs as, or to an identity for a caller with a mesh token (edgemesh import --service-account batch/nightly-report=<name>; ?serviceAccount=batch/nightly-report=<name> in the admin API), or declare "nightly-report" in access.identities of the base document',
      }),
    ]);
    // What could be translated is still there, and nothing is admitted on a guess.
    expect(services(r).api.access.allow.map((a: any) => a.name)).toEqual(["api-from-website-read-items", "api-from-website-write-items", "api-metrics-metrics"]);
  });

  it("maps the destination by name or by the mapping, and refuses one that is not a service", () => {
    const target = (destination: string, apiVersion = "access.smi-spec.io/v1alpha3") => `apiVersion: ${apiVersion}
kind: TrafficTarget
metadata: { name: t, namespace: shop }
spec:
  destination: { kind: ServiceAccount, name: ${destination} }
  rules: [{ kind: TCPRoute, name: any }]
  sources: [{ kind: ServiceAccount, name: prometheus, namespace: monitoring }]
`;
    expect(importSmi("t.yaml", target("website-runner")).errors).toEqual([
      expect.objectContaining({ path: "$.spec.destination", message: expect.stringMatching(/^ServiceAccount shop\/website-runner: no service of the mesh is named "website-runner"; map it to the service whose workloads run as it \(edgemesh import --service-account shop\/website-runner=<name>/) }),
    ]);
    const mapped = importSmi("t.yaml", target("website-runner"), { base, serviceAccounts: { "website-runner": "website" } });
    expect(mapped.errors).toEqual([]);
    expect(services(mapped).website.access.allow).toEqual([{ name: "t-any", from: ["prometheus"] }]);
    const notService = importSmi("t.yaml", target("website-runner"), { base, serviceAccounts: { "shop/website-runner": "reporting" } });
    expect(notService.errors[0]!.message).toMatch(/mapped to "reporting", which is not a service of the mesh/);
    expect(importSmi("t.yaml", target("website"), { base, serviceAccounts: { "Bad Key": "x", ok: "Not-A-Name" } }).errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^"Bad Key" is not a ServiceAccount/),
      expect.stringMatching(/^"Not-A-Name" is not a service or identity name/),
    ]);
  });

  it("keeps the base's deny rules, replaces its allow rules, and keeps the service strict with no rule at all", () => {
    const withAccess = structuredClone(base);
    withAccess.services.website.access = { deny: [{ name: "t-any", paths: [{ prefix: "/admin" }] }], allow: [{ name: "old", from: ["*"] }] };
    const r = importSmi("t.yaml", `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: t }
spec:
  destination: { kind: ServiceAccount, name: website }
  rules: [{ kind: TCPRoute, name: any }]
  sources: [{ kind: ServiceAccount, name: prometheus }]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: nothing }
spec:
  destination: { kind: ServiceAccount, name: api }
  rules: []
  sources: [{ kind: ServiceAccount, name: prometheus }]
`, { base: withAccess });
    expect(r.errors).toEqual([]);
    // The imported rule's name is made unique against the deny rule's.
    expect(services(r).website.access).toEqual({ mode: "strict", deny: [{ name: "t-any", paths: [{ prefix: "/admin" }] }], allow: [{ name: "t-any-2", from: ["prometheus"] }] });
    expect(r.warnings.map((w) => w.message)).toEqual(expect.arrayContaining([
      'the 1 access allow rule(s) service "website" had in the base document are replaced by the imported ones (TrafficTarget/t)',
      'this TrafficTarget names no rule, so it admits no call to "api"',
    ]));
    expect(services(r).api.access).toEqual({ mode: "strict", allow: [] });
    expect(accessOf(r, "api")("prometheus", "GET", "/")).toBe("api/(default-deny)");
    expect(accessOf(r, "website")("prometheus", "GET", "/admin")).toBe("website/t-any");
  });

  it("checks path and header regexes as access rules do (RE2), where they are written", () => {
    const r = importSmi("re2.yaml", `apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: { name: g }
spec:
  matches:
  - { name: lookahead, pathRegex: "/(?!admin).*" }
  - { name: backref, headers: { x-a: '(a)\\1' } }
  - { name: fine, pathRegex: "/ok" }
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: t }
spec:
  destination: { kind: ServiceAccount, name: website }
  rules: [{ kind: HTTPRouteGroup, name: g }]
  sources: [{ kind: ServiceAccount, name: prometheus }]
`);
    expect(r.errors.map((e) => [e.resource, e.path, e.message])).toEqual([
      ["HTTPRouteGroup/g", "$.spec.matches[0].pathRegex", expect.stringMatching(/^in an access rule \(TrafficTarget\): not a valid RE2 regular expression/)],
      ["HTTPRouteGroup/g", '$.spec.matches[1].headers["x-a"]', expect.stringMatching(/^in an access rule \(TrafficTarget\): not a valid RE2 regular expression/)],
    ]);
    // Only the rule RE2 accepts is written: an allow rule left out admits less, never more.
    expect(services(r).website.access.allow).toEqual([{ name: "t-fine", from: ["prometheus"], paths: [{ regex: "(?:/ok).*" }] }]);
  });

  it("reads v1alpha1 targets (destination, specs and sources at the top level) and leaves out matches on methods edgemesh does not route", () => {
    const r = importSmi("old.yaml", `apiVersion: specs.smi-spec.io/v1alpha1
kind: HTTPRouteGroup
metadata: { name: g }
matches:
- { name: dav, pathRegex: /files, methods: [PROPFIND] }
- { name: read, pathRegex: /files, methods: [GET, PROPFIND] }
---
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata: { name: old }
destination: { kind: ServiceAccount, name: website, port: "8080" }
specs: [{ kind: HTTPRouteGroup, name: g }]
sources: [{ kind: ServiceAccount, name: prometheus }, { kind: Group, name: admins }]
`);
    expect(r.errors.map((e) => [e.path, e.message])).toEqual([["$.sources[1].kind", "only ServiceAccount identities can be mapped to mesh callers (got Group)"]]);
    expect(services(r).website.access.allow).toEqual([{ name: "old-read", from: ["prometheus"], paths: [{ regex: "(?:/files).*" }], methods: ["GET"] }]);
    expect(r.warnings.map((w) => [w.path, w.message])).toEqual(expect.arrayContaining([
      ["$.matches[0].methods", 'match "dav" names only methods edgemesh does not route (PROPFIND): it can match no request and is left out'],
      ["$.matches[1].methods", "methods edgemesh does not route were left out: PROPFIND"],
    ]));
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

  it("leaves out a split whose route groups can match no request, instead of letting it take every request", () => {
    const r = importManifests([{ name: "dav.yaml", text: `apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: { name: dav }
spec: { matches: [{ name: propfind, methods: [PROPFIND] }] }
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: { name: dav-canary }
spec:
  service: api
  matches: [{ kind: HTTPRouteGroup, name: dav }]
  backends: [{ service: api-v2, weight: 1 }]
` }], { base });
    expect(r.errors).toEqual([]);
    expect(services(r).api.routes).toEqual([{ name: "api-unmatched", to: [{ subset: "all" }] }]);
    expect(r.warnings.map((w) => w.message)).toEqual(expect.arrayContaining([
      "the route groups this split names match no request edgemesh routes: the split is left out, and every request goes to the root service",
    ]));
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
