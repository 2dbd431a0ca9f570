import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { compilePolicy } from "../../policies/compile.ts";
import { importGrpcRoute, importGrpcRoutes } from "../../policies/import/grpcroute.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { matchRoute, prepareRoutes } from "../../workers/sidecar/match.ts";

const yamlDocs = (text: string) => parseAllDocuments(text).map((d) => d.toJS());

const CANARY = `
apiVersion: gateway.networking.k8s.io/v1
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
  - matches:
    - method: { service: edgemesh.example.v1.GreeterService }
    backendRefs:
    - { name: greeter-v1, port: 8080, weight: 90 }
    - { name: greeter-v2, port: 8080, weight: 10 }
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: { add: [{ name: x-from, value: mesh }] }
`;

/** Applies an import to a policy with the greeter's endpoints and routes a call with it. */
function routerFor(imported: ReturnType<typeof importGrpcRoute>) {
  const greeter = imported.services.greeter!;
  const checked = validatePolicy({
    mesh: "m",
    services: {
      greeter: {
        endpoints: [{ id: "g1", binding: "G1", labels: { version: "v1" } }, { id: "g2", binding: "G2", labels: { version: "v2" } }],
        subsets: greeter.subsets,
        routes: [...greeter.routes, { name: "fallback", to: [{ subset: Object.keys(greeter.subsets)[0]! }] }],
      },
    },
  });
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors, null, 2));
  const routes = prepareRoutes(compilePolicy(checked.document).services.greeter!.routes);
  return (path: string, headers: Record<string, string> = {}) =>
    matchRoute(routes, { method: "POST", path, headers: new Headers(headers), query: () => new URLSearchParams() })!.route;
}

describe("GRPCRoute importer", () => {
  it("turns a canary GRPCRoute into routes and subsets that validate and route as the GRPCRoute says", () => {
    const imported = importGrpcRoute(yamlDocs(CANARY)[0]);
    expect(imported.errors).toEqual([]);
    const greeter = imported.services.greeter!;
    expect(greeter.subsets).toEqual({ v2: { version: "v2" }, v1: { version: "v1" } });
    expect(greeter.routes).toEqual([
      {
        name: "greeter-canary-r0",
        match: [{ grpc: { service: { exact: "edgemesh.example.v1.GreeterService" }, method: { exact: "Greet" } }, headers: { "x-canary": { exact: "1" } } }],
        to: [{ subset: "v2", weight: 1 }],
      },
      {
        name: "greeter-canary-r1",
        match: [{ grpc: { service: { exact: "edgemesh.example.v1.GreeterService" } } }],
        to: [{ subset: "v1", weight: 90 }, { subset: "v2", weight: 10 }],
      },
    ]);
    const route = routerFor(imported);
    expect(route("/edgemesh.example.v1.GreeterService/Greet", { "x-canary": "1" }).name).toBe("greeter-canary-r0");
    expect(route("/edgemesh.example.v1.GreeterService/Greet").name).toBe("greeter-canary-r1");
    expect(route("/edgemesh.example.v1.GreeterService/GreetStream", { "x-canary": "1" }).split).toEqual({ subsets: ["v1", "v2"], cumulative: [90, 100], total: 100 });
    expect(route("/other.Service/Greet").name).toBe("fallback");
  });

  it("lists every field it did not map, with its path", () => {
    const { ignored } = importGrpcRoute(yamlDocs(CANARY)[0]);
    expect(ignored.map((i) => `${i.source} ${i.path}`)).toEqual([
      "GRPCRoute shop/greeter-canary $.spec.hostnames",
      "GRPCRoute shop/greeter-canary $.spec.parentRefs[0].port",
      "GRPCRoute shop/greeter-canary $.spec.rules[0].backendRefs[0].port",
      "GRPCRoute shop/greeter-canary $.spec.rules[1].backendRefs[0].port",
      "GRPCRoute shop/greeter-canary $.spec.rules[1].backendRefs[1].port",
      "GRPCRoute shop/greeter-canary $.spec.rules[1].filters[0]",
    ]);
    expect(ignored.at(-1)!.message).toMatch(/RequestHeaderModifier is not in the policy schema/);
  });

  it("orders routes by GRPCRoute precedence: longer service, longer method, more headers, older route, name, rule order", () => {
    const route = (name: string, created: string, rules: unknown[]) => ({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GRPCRoute",
      metadata: { name, namespace: "ns", creationTimestamp: created },
      spec: { parentRefs: [{ kind: "Service", name: "greeter" }], rules },
    });
    const to = (v: string) => [{ name: `greeter-${v}` }];
    const { services, errors } = importGrpcRoutes([
      route("b-route", "2024-01-02T00:00:00Z", [
        { backendRefs: to("v1") },
        { matches: [{ method: { method: "Greet" } }], backendRefs: to("v1") },
        { matches: [{ method: { service: "a.Svc" } }, { method: { service: "a.Svc" }, headers: [{ name: "x", value: "1" }] }], backendRefs: to("v2") },
      ]),
      route("a-route", "2024-01-03T00:00:00Z", [{ matches: [{ method: { service: "a.Svc" } }], backendRefs: to("v2") }]),
      route("c-route", "2024-01-01T00:00:00Z", [{ matches: [{ method: { service: "a.Svc", method: "Greet" } }], backendRefs: to("v1") }]),
    ]);
    expect(errors).toEqual([]);
    expect(services.greeter!.routes.map((r) => r.name)).toEqual([
      "c-route-r0", // service 5 + method 5
      "b-route-r2-m1", // service 5, 1 header
      "b-route-r2-m0", // service 5, older than a-route
      "a-route-r0",
      "b-route-r1", // method only
      "b-route-r0", // matches everything
    ]);
  });

  it("answers a rule without backends with UNAVAILABLE, as GRPCRoute requires", () => {
    const { services, errors } = importGrpcRoute({
      apiVersion: "gateway.networking.k8s.io/v1", kind: "GRPCRoute", metadata: { name: "down" },
      spec: { parentRefs: [{ kind: "Service", name: "greeter" }], rules: [{ matches: [{ method: { method: "Greet" } }] }] },
    });
    expect(errors).toEqual([]);
    expect(services.greeter!.routes[0]).toMatchObject({ to: [{ subset: "all", weight: 1 }], fault: { abort: { percent: 100, status: 503 }, bypassRetries: true } });
    expect(services.greeter!.subsets).toEqual({ all: {} });
  });

  it("maps RequestMirror to a subset or another service, with its fraction", () => {
    const { services, ignored } = importGrpcRoute({
      apiVersion: "gateway.networking.k8s.io/v1", kind: "GRPCRoute", metadata: { name: "m" },
      spec: {
        parentRefs: [{ kind: "Service", name: "greeter" }],
        rules: [
          { backendRefs: [{ name: "greeter-v1" }], filters: [
            { type: "RequestMirror", requestMirror: { backendRef: { name: "greeter-v2" }, fraction: { numerator: 1, denominator: 4 } } },
            { type: "RequestMirror", requestMirror: { backendRef: { name: "audit" } } },
          ] },
          { backendRefs: [{ name: "greeter" }], filters: [{ type: "RequestMirror", requestMirror: { backendRef: { name: "audit" }, percent: 5 } }] },
        ],
      },
    });
    expect(services.greeter!.routes.map((r) => r.mirror)).toEqual([{ subset: "v2", percent: 25 }, { service: "audit", percent: 5 }]);
    expect(ignored.map((i) => i.path)).toEqual(["$.spec.rules[0].filters[1]"]);
  });

  it("uses the caller's mapping of services and backends", () => {
    const { services, errors } = importGrpcRoute(
      {
        apiVersion: "gateway.networking.k8s.io/v1alpha2", kind: "GRPCRoute", metadata: { name: "x" },
        spec: { parentRefs: [{ kind: "Service", name: "greeter-svc" }], rules: [{ matches: [{ method: { type: "RegularExpression", service: "edgemesh\\..*", method: "Greet.*" } }], backendRefs: [{ name: "stable" }, { name: "canary", weight: 0 }] }] },
      },
      { serviceFor: (name) => name.replace(/-svc$/, ""), subsetFor: (_svc, b) => ({ subset: b.name, selector: { track: b.name } }) },
    );
    expect(errors).toEqual([]);
    expect(services.greeter).toEqual({
      routes: [{ name: "x-r0", match: [{ grpc: { service: { regex: "edgemesh\\..*" }, method: { regex: "Greet.*" } } }], to: [{ subset: "stable", weight: 1 }, { subset: "canary", weight: 0 }] }],
      subsets: { stable: { track: "stable" }, canary: { track: "canary" } },
    });
  });

  it("refuses what it cannot express, naming the field", () => {
    const base = { apiVersion: "gateway.networking.k8s.io/v1", kind: "GRPCRoute", metadata: { name: "bad" } };
    const errorsOf = (spec: unknown, doc: object = base) => importGrpcRoute({ ...doc, spec }).errors.map((e) => `${e.path}: ${e.message}`);
    const svc = [{ kind: "Service", name: "greeter" }];
    expect(errorsOf({ parentRefs: [{ name: "gw" }] })).toEqual(["$.spec.parentRefs: no parentRef of kind Service: nothing in the mesh to attach this route to"]);
    expect(errorsOf({ parentRefs: svc, rules: [{ backendRefs: [{ name: "billing" }] }] })[0]).toMatch(/backendRefs\[0\]: backendRef "billing" is not a version of service "greeter"/);
    expect(errorsOf({ parentRefs: svc, rules: [{ backendRefs: [{ name: "greeter-v1", kind: "ServiceImport", group: "multicluster.x-k8s.io" }] }] })[0]).toMatch(/kind ServiceImport/);
    expect(errorsOf({ parentRefs: svc, rules: [{ backendRefs: [{ name: "greeter-v1" }], filters: [{ type: "ExtensionRef", extensionRef: { name: "x" } }] }] })[0]).toMatch(/filters\[0\]: ExtensionRef/);
    expect(errorsOf({ parentRefs: svc, rules: [{ matches: [{ method: { type: "Prefix", service: "a" } }], backendRefs: [{ name: "greeter-v1" }] }] })[0]).toMatch(/method\.type: expected Exact or RegularExpression/);
    expect(errorsOf({}, { ...base, kind: "HTTPRoute" })).toEqual(['$.kind: expected kind GRPCRoute, got "HTTPRoute"']);
    expect(errorsOf({}, { ...base, apiVersion: "v1" })[0]).toMatch(/^\$\.apiVersion/);
  });
});
