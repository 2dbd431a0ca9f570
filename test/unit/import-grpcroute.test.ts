// The Gateway API GRPCRoute importer (mesh form), through the importers' entry like every other
// kind: routes and their precedence, backends resolved as for HTTPRoute, filters, what is listed
// as ignored, and routing with the result in the sidecar's matcher.
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { compareGrpcPrecedence } from "../../policies/import/grpcroute.ts";
import { importManifests, type ImportResult } from "../../policies/import/index.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { matchRoute, prepareRoutes } from "../../workers/sidecar/match.ts";

const base = {
  mesh: "shop",
  services: {
    greeter: {
      endpoints: [{ id: "g1", binding: "G1", labels: { version: "v1" } }, { id: "g2", binding: "G2", labels: { version: "v2" } }],
      subsets: { v1: { version: "v1" }, v2: { version: "v2" } },
      routes: [{ name: "old", to: [{ subset: "v1" }] }],
    },
    audit: { endpoints: [{ id: "a1", binding: "A1" }] },
  },
};

const importYaml = (text: string): ImportResult => importManifests([{ name: "grpc.yaml", text }], { base });
const routesOf = (r: ImportResult) => (r.document.services as any).greeter.routes as any[];

const CANARY = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: greeter-canary, namespace: shop }
spec:
  parentRefs:
  - { group: "", kind: Service, name: greeter, port: 8080 }
  hostnames: [greeter.shop.svc.cluster.local]
  rules:
  - matches:
    - method: { service: edgemesh.example.v1.GreeterService, method: Greet }
      headers:
      - { name: x-canary, value: "1" }
    backendRefs:
    - { name: greeter-v2, port: 8080 }
  - name: split
    matches:
    - method: { service: .edgemesh.example.v1.GreeterService }
    backendRefs:
    - { name: greeter-v1, port: 8080, weight: 90 }
    - name: greeter-v2
      port: 8080
      weight: 10
      filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: x-version, value: v2 }] } }]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: { add: [{ name: x-from, value: mesh }] }
`;

/** Routes an RPC with the imported document, as the sidecar's matcher does. */
function routerFor(r: ImportResult) {
  const checked = validatePolicy(r.document);
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors, null, 2));
  const routes = prepareRoutes(compilePolicy(checked.document).services.greeter!.routes);
  return (path: string, headers: Record<string, string> = {}) =>
    matchRoute(routes, { method: "POST", path, headers: new Headers(headers), query: () => new URLSearchParams() })!.route;
}

describe("GRPCRoute (mesh form)", () => {
  it("turns a canary into routes on the parent's subsets that validate and route as the GRPCRoute says", () => {
    const r = importYaml(CANARY);
    expect(r.errors).toEqual([]);
    expect(r.imported).toEqual(["GRPCRoute/greeter-canary"]);
    expect(routesOf(r)).toEqual([
      {
        name: "greeter-canary-rule0",
        match: [{ grpc: { service: { exact: "edgemesh.example.v1.GreeterService" }, method: { exact: "Greet" } }, headers: { "x-canary": { exact: "1" } } }],
        to: [{ subset: "v2", weight: 1 }],
      },
      {
        name: "greeter-canary-split",
        match: [{ grpc: { service: { exact: "edgemesh.example.v1.GreeterService" } } }],
        requestHeaders: { add: [{ name: "x-from", value: "mesh" }] },
        to: [{ subset: "v1", weight: 90 }, { subset: "v2", weight: 10, responseHeaders: { set: [{ name: "x-version", value: "v2" }] } }],
      },
    ]);
    expect(r.warnings).toEqual(expect.arrayContaining([{ message: 'the 1 route(s) service "greeter" had in the base document are replaced by the imported ones' }]));
    const route = routerFor(r);
    expect(route("/edgemesh.example.v1.GreeterService/Greet", { "x-canary": "1" }).name).toBe("greeter-canary-rule0");
    expect(route("/edgemesh.example.v1.GreeterService/Greet").name).toBe("greeter-canary-split");
    expect(route("/edgemesh.example.v1.GreeterService/GreetStream", { "x-canary": "1" }).split).toEqual({ subsets: ["v1", "v2"], cumulative: [90, 100], total: 100 });
  });

  it("lists every field it did not map, with its path and reason", () => {
    const r = importYaml(CANARY);
    expect(r.ignored.map((i) => [i.resource, i.path, i.source])).toEqual([
      ["GRPCRoute/greeter-canary", "$.spec.parentRefs[0].port", "grpc.yaml#1"],
      ["GRPCRoute/greeter-canary", "$.spec.hostnames", "grpc.yaml#1"],
      ["GRPCRoute/greeter-canary", "$.spec.rules[0].backendRefs[0].port", "grpc.yaml#1"],
      ["GRPCRoute/greeter-canary", "$.spec.rules[1].backendRefs[0].port", "grpc.yaml#1"],
      ["GRPCRoute/greeter-canary", "$.spec.rules[1].backendRefs[1].port", "grpc.yaml#1"],
    ]);
    expect(r.ignored[1]!.reason).toMatch(/hostnames do not apply/);
  });

  it("orders routes by GRPCRoute precedence: longer service, longer method, more headers, older route, name, rule order", () => {
    const route = (name: string, created: string, rules: unknown[]) => JSON.stringify({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GRPCRoute",
      metadata: { name, namespace: "ns", ...(created ? { creationTimestamp: created } : {}) },
      spec: { parentRefs: [{ kind: "Service", name: "greeter" }], rules },
    });
    const to = (v: string) => [{ name: `greeter-${v}` }];
    const r = importYaml([
      route("b-route", "2024-01-02T00:00:00Z", [
        { backendRefs: to("v1") },
        { matches: [{ method: { method: "Greet" } }], backendRefs: to("v1") },
        { matches: [{ method: { service: "a.Svc" } }, { method: { service: "a.Svc" }, headers: [{ name: "x", value: "1" }] }], backendRefs: to("v2") },
      ]),
      route("a-route", "2024-01-03T00:00:00Z", [{ matches: [{ method: { service: "a.Svc" } }], backendRefs: to("v2") }]),
      route("c-route", "2024-01-01T00:00:00Z", [{ matches: [{ method: { service: "a.Svc", method: "Greet" } }], backendRefs: to("v1") }]),
      // No creation time: not known to be older than any, so it loses the tie.
      route("0-route", "", [{ matches: [{ method: { service: "a.Svc" } }], backendRefs: to("v2") }]),
    ].join("\n---\n"));
    expect(r.errors).toEqual([]);
    expect(routesOf(r).map((x) => x.name)).toEqual([
      "c-route-rule0", // service 5 + method 5
      "b-route-rule2-m1", // service 5, 1 header
      "b-route-rule2-m0", // service 5, older than a-route
      "a-route-rule0",
      "0-route-rule0",
      "b-route-rule1", // method only
      "b-route-rule0", // matches everything
    ]);
  });

  it("answers a rule without backends with 503, which gRPC clients read as UNAVAILABLE, and warns", () => {
    const r = importYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: down }
spec:
  parentRefs: [{ kind: Service, name: greeter }]
  rules:
  - matches: [{ method: { method: Greet } }]
    filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x, value: "1" }] } }]
  - matches: [{ method: { method: Other } }]
    backendRefs: [{ name: greeter-v1, weight: 0 }]
`);
    expect(r.errors).toEqual([]);
    expect(routesOf(r)).toEqual([
      // The header modifier goes with the forwarding: a route answering by itself has none.
      { name: "down-rule0", match: [{ grpc: { method: { exact: "Greet" } } }], directResponse: { status: 503 } },
      { name: "down-rule1", match: [{ grpc: { method: { exact: "Other" } } }], directResponse: { status: 503 } },
    ]);
    expect(r.warnings.filter((w) => w.resource)).toEqual([
      expect.objectContaining({ path: "$.spec.rules[0]", message: expect.stringMatching(/^this rule has no backendRefs: GRPCRoute answers such calls with UNAVAILABLE/) }),
      expect.objectContaining({ path: "$.spec.rules[1]", message: expect.stringMatching(/^no backend of this rule can receive traffic/) }),
    ]);
  });

  it("resolves backends as every importer does: a Kubernetes Service's selector, the parent itself, a base subset", () => {
    const r = importYaml(`apiVersion: v1
kind: Service
metadata: { name: greeter-canary }
spec: { selector: { version: v2, track: canary } }
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: GRPCRoute
metadata: { name: g }
spec:
  parentRefs: [{ kind: Service, name: greeter }]
  rules:
  - matches: [{ method: { service: a.Svc } }]
    backendRefs: [{ name: greeter-canary, weight: 1 }, { name: greeter, weight: 1 }, { name: greeter-v1, weight: 8 }]
`);
    expect(r.errors).toEqual([]);
    expect(r.imported).toEqual(["GRPCRoute/g", "Service/greeter-canary"]);
    const greeter = (r.document.services as any).greeter;
    expect(greeter.routes[0].to).toEqual([{ subset: "greeter-canary", weight: 1 }, { subset: "all", weight: 1 }, { subset: "v1", weight: 8 }]);
    expect(greeter.subsets).toEqual({ v1: { version: "v1" }, v2: { version: "v2" }, "greeter-canary": { version: "v2", track: "canary" }, all: {} });
  });

  it("maps RequestMirror to a subset or another mesh service, keeping only the first", () => {
    const r = importYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: m }
spec:
  parentRefs: [{ kind: Service, name: greeter }]
  rules:
  - matches: [{ method: { method: A } }]
    backendRefs: [{ name: greeter-v1 }]
    filters:
    - { type: RequestMirror, requestMirror: { backendRef: { name: greeter-v2 }, fraction: { numerator: 1, denominator: 4 } } }
    - { type: RequestMirror, requestMirror: { backendRef: { name: audit } } }
  - backendRefs: [{ name: greeter-v1 }]
    filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: audit }, percent: 5 } }]
`);
    expect(r.errors).toEqual([]);
    expect(routesOf(r).map((x) => x.mirror)).toEqual([{ subset: "v2", percent: 25 }, { service: "audit", percent: 5 }]);
    expect(r.ignored.map((i) => [i.path, i.reason])).toEqual([["$.spec.rules[0].filters[1]", expect.stringMatching(/only the first RequestMirror is kept/)]]);
  });

  it("puts GRPCRoute routes before the HTTPRoute routes of the same service, and says so", () => {
    const r = importYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: rest }
spec:
  parentRefs: [{ kind: Service, group: "", name: greeter }]
  rules: [{ backendRefs: [{ name: greeter-v1 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: rpc }
spec:
  parentRefs: [{ kind: Service, name: greeter }]
  rules: [{ matches: [{ method: { service: a.Svc } }], backendRefs: [{ name: greeter-v2 }] }]
`);
    expect(r.errors).toEqual([]);
    expect(routesOf(r).map((x) => x.name)).toEqual(["rpc-rule0", "rest-rule0"]);
    expect(r.warnings).toEqual(expect.arrayContaining([
      expect.objectContaining({ resource: "HTTPRoute/rest", message: expect.stringMatching(/also has routes from GRPCRoute\/rpc; the HTTPRoute routes come after them: a GRPCRoute wins/) }),
    ]));
  });

  it("refuses what it cannot express, naming the field", () => {
    const errorsOf = (spec: string, apiVersion = "gateway.networking.k8s.io/v1") => {
      const r = importYaml(`apiVersion: ${apiVersion}\nkind: GRPCRoute\nmetadata: { name: bad }\nspec:\n  parentRefs: [{ kind: Service, name: greeter }]\n${spec}`);
      return r.errors.map((e) => `${e.path}: ${e.message}`);
    };
    expect(errorsOf("  rules: [{ backendRefs: [{ name: billing }] }]\n")[0]).toMatch(/^\$\.spec\.rules\[0\]\.backendRefs\[0\]\.name: backend Service "billing" of "greeter": edgemesh splits a service's traffic among its subsets/);
    expect(errorsOf("  rules: [{ backendRefs: [{ name: greeter-v1 }], filters: [{ type: ExtensionRef, extensionRef: { name: x } }] }]\n")).toEqual([
      "$.spec.rules[0].filters[0]: ExtensionRef filters are implementation-specific and edgemesh has none; the Gateway API forbids skipping one, so remove it (or express it in the policy) to import this rule",
    ]);
    expect(errorsOf("  rules: [{ backendRefs: [{ name: greeter-v1 }], filters: [{ type: URLRewrite }] }]\n")).toEqual(['$.spec.rules[0].filters[0].type: unknown filter type "URLRewrite"']);
    expect(errorsOf("  rules: [{ matches: [{ method: { type: Prefix, service: a } }], backendRefs: [{ name: greeter-v1 }] }]\n")).toEqual([
      '$.spec.rules[0].matches[0].method.type: unknown method match type "Prefix"; give Exact or RegularExpression',
    ]);
    expect(errorsOf("  rules: [{ matches: [{ method: { service: a/b } }, { method: {} }], backendRefs: [{ name: greeter-v1 }] }]\n")).toEqual([
      '$.spec.rules[0].matches[0].method.service: "a/b" is not a gRPC service name, e.g. "edgemesh.example.v1.GreeterService"',
      "$.spec.rules[0].matches[1].method: give service, method or both",
    ]);
    expect(errorsOf("  rules: [{ matches: [{ method: { type: RegularExpression, method: \"(?=x)\" } }], backendRefs: [{ name: greeter-v1 }] }]\n")[0]).toMatch(/method\.method: not a valid RE2 regular expression/);
  });

  it("reads v1 and v1alpha2, lists other versions and Gateway-only routes as not imported", () => {
    const doc = (apiVersion: string, name: string, parent: string) => `apiVersion: ${apiVersion}\nkind: GRPCRoute\nmetadata: { name: ${name} }\nspec:\n  parentRefs: [${parent}]\n  rules: [{ backendRefs: [{ name: greeter-v1 }] }]\n`;
    const r = importYaml([
      doc("gateway.networking.k8s.io/v1alpha2", "old", "{ kind: Service, name: greeter }"),
      doc("gateway.networking.k8s.io/v1beta1", "beta", "{ kind: Service, name: greeter }"),
      doc("gateway.networking.k8s.io/v1", "north-south", "{ name: public-gw }"),
    ].join("---\n"));
    expect(r.errors).toEqual([]);
    expect(r.imported).toEqual(["GRPCRoute/old"]);
    expect(r.ignored.map((i) => [i.resource, i.path, i.reason])).toEqual([
      ["GRPCRoute/beta", "$", "gateway.networking.k8s.io/v1beta1 is not a version edgemesh reads; it reads v1, v1alpha2"],
      ["GRPCRoute/north-south", "$", expect.stringMatching(/no parentRef of kind Service: only the mesh form of GRPCRoute/)],
    ]);
  });
});

describe("compareGrpcPrecedence", () => {
  const rank = { serviceChars: 5, methodChars: 0, headers: 0, created: "", namespacedName: "ns/a", rule: 0, match: 0 };
  it("ranks more specific matches first, then falls through to the route order", () => {
    expect(compareGrpcPrecedence({ ...rank, methodChars: 1 }, { ...rank, serviceChars: 5 })).toBeLessThan(0);
    expect(compareGrpcPrecedence({ ...rank, headers: 1 }, { ...rank, headers: 2 })).toBeGreaterThan(0);
    expect(compareGrpcPrecedence({ ...rank, created: "2024-01-01T00:00:00Z" }, rank)).toBeLessThan(0);
    expect(compareGrpcPrecedence({ ...rank, namespacedName: "ns/b" }, rank)).toBeGreaterThan(0);
    expect(compareGrpcPrecedence({ ...rank, match: 1 }, { ...rank, match: 1 })).toBe(0);
  });
});
