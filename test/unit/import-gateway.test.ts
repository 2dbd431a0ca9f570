// The Gateway API HTTPRoute importer (mesh form). Its behaviour on the real mesh is covered by the
// conformance suite (test/conformance); these tests pin the translation itself.
import { describe, expect, it } from "vitest";
import { compareByPrecedence } from "../../policies/import/gateway.ts";
import { importManifests, type ImportResult } from "../../policies/import/index.ts";

const base = {
  mesh: "gamma",
  services: {
    echo: {
      endpoints: [
        { id: "echo-v1", binding: "ECHO_V1", labels: { version: "v1" } },
        { id: "echo-v2", binding: "ECHO_V2", labels: { version: "v2" } },
      ],
      subsets: { v1: { version: "v1" }, v2: { version: "v2" } },
    },
    mirror: { endpoints: [{ id: "mirror-1", binding: "MIRROR_1" }] },
  },
};

function importRoutes(text: string): ImportResult {
  return importManifests([{ name: "routes.yaml", text }], { base });
}

const route = (name: string, rules: string, meta = "") => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}${meta} }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo }]
  rules:
${rules}`;

const routesOf = (r: ImportResult) => (r.document.services as any).echo.routes as any[];

describe("HTTPRoute (mesh form)", () => {
  it("matches whole path elements for PathPrefix, and defaults weights to 1", () => {
    const r = importRoutes(route("r", `  - matches: [{ path: { type: PathPrefix, value: /api/ } }]
    backendRefs: [{ name: echo-v1 }, { name: echo-v2, weight: 3 }]
`));
    expect(r.errors).toEqual([]);
    expect(routesOf(r)).toEqual([{ name: "r-rule0", match: [{ path: { exact: "/api" } }, { path: { prefix: "/api/" } }], to: [{ subset: "v1", weight: 1 }, { subset: "v2", weight: 3 }] }]);
  });

  it("orders (rule, match) pairs across HTTPRoutes by the Gateway API's precedence", () => {
    const r = importRoutes([
      route("newer", `  - matches: [{ path: { type: PathPrefix, value: /a } }]
    backendRefs: [{ name: echo-v2 }]
`, ", creationTimestamp: 2024-05-02T00:00:00Z"),
      route("older", `  - matches:
    - path: { type: PathPrefix, value: /a }
    - path: { type: PathPrefix, value: /a/b }
    - path: { type: Exact, value: /a }
    - path: { type: PathPrefix, value: /a }
      method: GET
    - path: { type: PathPrefix, value: /a }
      headers: [{ name: x, value: "1" }, { name: y, value: "2" }]
    - path: { type: PathPrefix, value: /a }
      headers: [{ name: x, value: "1" }]
      queryParams: [{ name: q, value: "1" }]
    - path: { type: RegularExpression, value: "/a/[0-9]+" }
    backendRefs: [{ name: echo-v1 }]
`, ", creationTimestamp: 2024-05-01T00:00:00Z"),
    ].join("---\n"));
    expect(r.errors).toEqual([]);
    expect(routesOf(r).map((x) => x.name)).toEqual([
      "older-rule0-m2", // exact
      "older-rule0-m6", // regular expression
      "older-rule0-m1", // longest prefix
      "older-rule0-m3", // method
      "older-rule0-m4", // two headers
      "older-rule0-m5", // one header and a query
      "older-rule0-m0", // the older route wins the tie
      "newer-rule0",
    ]);
  });

  it("maps every filter: header modifiers, rewrite, mirror; and timeouts and retry", () => {
    const r = importRoutes(route("r", `  - name: api
    matches: [{ path: { type: PathPrefix, value: /api } }]
    filters:
    - { type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: X-Env, value: prod }], remove: [Cookie] } }
    - { type: ResponseHeaderModifier, responseHeaderModifier: { add: [{ name: Cache-Control, value: no-store }] } }
    - { type: URLRewrite, urlRewrite: { hostname: api.internal, path: { type: ReplacePrefixMatch, replacePrefixMatch: /v2 } } }
    - { type: RequestMirror, requestMirror: { backendRef: { name: mirror, port: 80 }, fraction: { numerator: 1, denominator: 4 } } }
    - { type: CORS, cors: { allowOrigins: ["*"] } }
    timeouts: { request: 5s, backendRequest: 1500ms }
    retry: { attempts: 3, codes: [502, 503], backoff: 50ms }
    backendRefs:
    - name: echo-v2
      filters:
      - { type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: X-Backend, value: v2 }] } }
`));
    expect(r.errors).toEqual([]);
    expect(routesOf(r)).toEqual([{
      name: "r-api",
      match: [{ path: { exact: "/api" } }, { path: { prefix: "/api/" } }],
      to: [{ subset: "v2", weight: 1, responseHeaders: { set: [{ name: "X-Backend", value: "v2" }] } }],
      requestHeaders: { set: [{ name: "X-Env", value: "prod" }], remove: ["Cookie"] },
      responseHeaders: { add: [{ name: "Cache-Control", value: "no-store" }] },
      rewrite: { hostname: "api.internal", path: { replacePrefixMatch: "/v2" } },
      mirror: { service: "mirror", percent: 25 },
      timeoutMs: 5000,
      retries: { perTryTimeoutMs: 1500, attempts: 3, retryOn: ["connect-failure", "reset"], statusCodes: [502, 503], backoff: { baseMs: 50, maxMs: 500 } },
    }]);
    expect(r.ignored.map((f) => f.path)).toEqual(["$.spec.rules[0].filters[3].requestMirror.backendRef.port", "$.spec.rules[0].filters[4]"]);
  });

  it("answers 500 for a rule without backends, as the Gateway API does, and warns", () => {
    const r = importRoutes(route("r", `  - matches: [{ path: { type: Exact, value: /nothing } }]\n`));
    expect(routesOf(r)).toEqual([{ name: "r-rule0", match: [{ path: { exact: "/nothing" } }], directResponse: { status: 500, body: "no backend for this route\n" } }]);
    expect(r.warnings).toEqual([expect.objectContaining({ path: "$.spec.rules[0]", message: expect.stringMatching(/no backendRefs: the Gateway API answers such requests with 500/) })]);
  });

  it("gives a prefix-replacing redirect on the catch-all path a prefix match", () => {
    const r = importRoutes(route("r", `  - filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } } }]\n`));
    expect(r.errors).toEqual([]);
    expect(routesOf(r)).toEqual([{ name: "r-rule0", match: [{ path: { prefix: "/" } }], redirect: { path: { replacePrefixMatch: "/new" } } }]);
  });

  it("leaves out Gateway parents, hostnames and non-Service backends, saying why", () => {
    const r = importRoutes(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: { name: mixed }
spec:
  parentRefs: [{ name: public-gw }, { kind: Service, group: "", name: echo, namespace: gamma }]
  hostnames: [echo.example.org]
  rules:
  - backendRefs: [{ name: echo-v1 }, { kind: Bucket, group: storage.example.org, name: assets }]
    sessionPersistence: { sessionName: s }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: north-south }
spec:
  parentRefs: [{ name: public-gw }]
  rules: [{ backendRefs: [{ name: echo-v1 }] }]
`);
    expect(r.errors).toEqual([]);
    expect(r.imported).toEqual(["HTTPRoute/mixed"]);
    expect(r.ignored.map((f) => [f.resource, f.path, f.reason])).toEqual([
      ["HTTPRoute/mixed", "$.spec.parentRefs[0]", expect.stringMatching(/a Gateway parent is north-south routing/)],
      ["HTTPRoute/mixed", "$.spec.parentRefs[1].namespace", expect.stringMatching(/one namespace per mesh/)],
      ["HTTPRoute/mixed", "$.spec.hostnames", expect.stringMatching(/hostnames do not apply/)],
      ["HTTPRoute/mixed", "$.spec.rules[0].backendRefs[1]", expect.stringMatching(/only Service backends are mesh services \(got storage.example.org\/Bucket\)/)],
      ["HTTPRoute/mixed", "$.spec.rules[0].sessionPersistence", expect.stringMatching(/consistent-hash/)],
      ["HTTPRoute/north-south", "$", expect.stringMatching(/no parentRef of kind Service/)],
    ]);
  });

  it("reports unknown match and filter types where they are", () => {
    const r = importRoutes(route("r", `  - matches: [{ path: { type: Glob, value: "/a*" } }]
    filters: [{ type: Teleport }]
    backendRefs: [{ name: echo-v1 }]
`));
    expect(r.errors.map((e) => [e.path, e.message])).toEqual([
      ["$.spec.rules[0].filters[0].type", 'unknown filter type "Teleport"'],
      ["$.spec.rules[0].matches[0].path.type", 'unknown path match type "Glob"; give Exact, PathPrefix or RegularExpression'],
    ]);
  });
});

describe("HTTPRoute rules shared with GRPCRoute", () => {
  it("refuses filters it cannot honour and must not skip (ExtensionRef, ExternalAuth)", () => {
    const r = importRoutes(route("r", `  - filters: [{ type: ExtensionRef, extensionRef: { group: x.io, kind: Auth, name: a } }]
    backendRefs: [{ name: echo-v1 }]
  - filters: [{ type: ExternalAuth, externalAuth: { protocol: HTTP, backendRef: { name: authz } } }]
    backendRefs: [{ name: echo-v1 }]
`));
    expect(r.errors.map((e) => [e.path, e.message])).toEqual([
      ["$.spec.rules[0].filters[0]", expect.stringMatching(/^ExtensionRef filters are implementation-specific and edgemesh has none; the Gateway API forbids skipping one/)],
      ["$.spec.rules[1].filters[0]", expect.stringMatching(/^ExternalAuth cannot be imported: .* skipping the filter would admit what it refuses/)],
    ]);
    // Neither filter's fields are listed as ignored on top of the error.
    expect(r.ignored).toEqual([]);
  });

  it("reads a Service parent written without its (core) group, and orders a route without creation time after dated ones", () => {
    const r = importRoutes([
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: a-undated }
spec:
  parentRefs: [{ kind: Service, name: echo }]
  rules: [{ backendRefs: [{ name: echo-v1 }] }]
`,
      route("z-dated", `  - backendRefs: [{ name: echo-v2 }]
`, ", creationTimestamp: 2024-05-01T00:00:00Z"),
    ].join("---\n"));
    expect(r.errors).toEqual([]);
    expect(routesOf(r).map((x) => x.name)).toEqual(["z-dated-rule0", "a-undated-rule0"]);
  });
});

describe("compareByPrecedence", () => {
  const rank = { pathKind: 2, pathLength: 1, hasMethod: false, headers: 0, queries: 0, created: "", namespacedName: "/a", rule: 0, match: 0 };
  it("falls through to namespace/name, then rule and match order", () => {
    expect(compareByPrecedence(rank, { ...rank, namespacedName: "/b" })).toBeLessThan(0);
    expect(compareByPrecedence({ ...rank, rule: 1 }, rank)).toBeGreaterThan(0);
    expect(compareByPrecedence({ ...rank, match: 1 }, { ...rank, match: 1 })).toBe(0);
  });
});
