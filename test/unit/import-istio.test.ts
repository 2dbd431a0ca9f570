// The Istio importer on a realistic bookinfo setup (test/fixtures/import/istio-bookinfo.yaml) and
// on the corners of the VirtualService and DestinationRule APIs.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { importManifests, type ImportResult } from "../../policies/import/index.ts";
import { UNKNOWN_FIELD } from "../../policies/import/manifest.ts";
import { validatePolicy } from "../../policies/schema.ts";

const fixture = (name: string) => readFile(new URL(`../fixtures/import/${name}`, import.meta.url), "utf8");
const bookinfoBase = JSON.parse(await fixture("base-bookinfo.json"));

function importYaml(text: string, base: unknown = bookinfoBase): ImportResult {
  return importManifests([{ name: "test.yaml", text }], { base });
}

const services = (r: ImportResult) => r.document.services as Record<string, any>;
const reasonAt = (r: ImportResult, path: string, resource?: string) => r.ignored.find((f) => f.path === path && (!resource || f.resource === resource))?.reason;

describe("Istio bookinfo", async () => {
  const result = importManifests([{ name: "istio-bookinfo.yaml", text: await fixture("istio-bookinfo.yaml") }], { base: bookinfoBase });
  const reviews = services(result).reviews;
  const ratings = services(result).ratings;

  it("translates every resource into a valid document", () => {
    expect(result.errors).toEqual([]);
    expect(result.imported).toEqual(["DestinationRule/reviews", "DestinationRule/ratings", "VirtualService/reviews", "VirtualService/ratings"]);
    expect(validatePolicy(result.document).ok).toBe(true);
  });

  it("maps matches, weights, subsets, rewrite, retries, timeout, mirror and destination headers of reviews", () => {
    expect(reviews.routes).toEqual([
      { name: "jason", match: [{ headers: { "end-user": { exact: "jason" } } }], to: [{ subset: "v2", weight: 100 }] },
      {
        name: "api-v3",
        match: [{ path: { prefix: "/reviews/v3/" }, methods: ["GET", "HEAD"] }],
        to: [{ subset: "v3", weight: 100 }],
        rewrite: { path: { replacePrefixMatch: "/reviews/" } },
        retries: { attempts: 3, perTryTimeoutMs: 2000, retryOn: ["gateway-error", "connect-failure", "reset", "cancelled"], statusCodes: [503] },
      },
      {
        name: "canary",
        to: [
          { subset: "v1", weight: 75 },
          { subset: "v3", weight: 25, requestHeaders: { set: [{ name: "x-canary", value: "true" }] }, responseHeaders: { remove: ["x-internal-build"] } },
        ],
        timeoutMs: 10_000,
        mirror: { subset: "v2", percent: 5 },
      },
    ]);
  });

  it("keeps the base document's endpoints and takes the DestinationRule's subsets and service settings", () => {
    expect(reviews.endpoints).toEqual(bookinfoBase.services.reviews.endpoints);
    expect(reviews.subsets).toEqual({ v1: { version: "v1" }, v2: { version: "v2" }, v3: { version: "v3" } });
    expect(reviews.loadBalancer).toEqual({ algorithm: "least-request" });
    expect(reviews.circuitBreaker).toEqual({ maxConcurrent: 200, maxPending: 50 });
    expect(reviews.outlierDetection).toEqual({ consecutive5xx: 7, consecutiveGatewayErrors: 0, baseEjectionMs: 900_000, maxEjectionMs: 3_600_000, maxEjectionPercent: 30 });
    expect(ratings.loadBalancer).toEqual({ algorithm: "consistent-hash", hashOn: { header: "x-user" }, maglevTableSize: 4099 });
  });

  it("reads both the old integer percent and percentage.value for faults, which answer the request as in Istio", () => {
    expect(ratings.routes[0]).toEqual({
      name: "ratings-0",
      match: [{ headers: { "end-user": { prefix: "test-" } } }],
      to: [{ subset: "v1", weight: 100 }],
      fault: { bypassRetries: true, delay: { percent: 10, ms: 7000 }, abort: { percent: 0.5, status: 500 } },
    });
  });

  it("lists every field it did not translate, with its path and why", () => {
    expect(result.ignored.map((f) => `${f.resource} ${f.path}`)).toEqual([
      "DestinationRule/reviews $.spec.trafficPolicy.connectionPool.tcp.maxConnections",
      "DestinationRule/reviews $.spec.trafficPolicy.connectionPool.tcp.connectTimeout",
      "DestinationRule/reviews $.spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection",
      "DestinationRule/reviews $.spec.trafficPolicy.outlierDetection.interval",
      "DestinationRule/reviews $.spec.trafficPolicy.tls",
      "DestinationRule/reviews $.spec.subsets[2].trafficPolicy",
      "VirtualService/reviews $.spec.http[2].route[0].destination.port",
      "VirtualService/reviews $.spec.http[2].corsPolicy",
      "VirtualService/ratings $.spec.http[0].match[0].sourceLabels",
    ]);
    expect(reasonAt(result, "$.spec.http[0].match[0].sourceLabels")).toMatch(/broader without this condition/);
    expect(reasonAt(result, "$.spec.subsets[2].trafficPolicy")).toMatch(/per service, not per subset/);
    expect(result.ignored.every((f) => f.source.startsWith("istio-bookinfo.yaml#"))).toBe(true);
  });

  it("warns that the base document's routes of reviews were replaced", () => {
    expect(result.warnings).toEqual([{ message: 'the 1 route(s) service "reviews" had in the base document are replaced by the imported ones' }]);
  });

  it("compiles: the rewrite replaces the matched prefix", () => {
    const checked = validatePolicy(result.document);
    if (!checked.ok) throw new Error("invalid");
    const route = compilePolicy(checked.document).services.reviews!.routes.find((r) => r.name === "api-v3")!;
    expect(route.filters?.rewrite).toEqual({ path: { kind: "prefix", prefix: "/reviews/v3", replacement: "/reviews/" } });
  });
});

const vs = (http: string, extra = "") => `apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
${extra}  http:
${http}`;

describe("Istio VirtualService corners", () => {
  it("translates redirects (301 by default, authority with a port) and direct responses (text or base64)", () => {
    const r = importYaml(vs(`  - name: moved
    match: [{ uri: { prefix: /old } }]
    redirect: { uri: /new, authority: "new.example.org:8443" }
  - name: tls
    match: [{ uri: { exact: /login } }]
    redirect: { scheme: https, redirectCode: 308, derivePort: FROM_PROTOCOL_DEFAULT }
  - name: maintenance
    match: [{ uri: { prefix: /admin } }]
    directResponse: { status: 503, body: { string: "down for maintenance" } }
  - name: teapot
    directResponse: { status: 418, body: { bytes: ${JSON.stringify(Buffer.from("short and stout").toString("base64"))} } }
`));
    expect(r.errors).toEqual([]);
    expect(services(r).reviews.routes).toEqual([
      { name: "moved", match: [{ path: { prefix: "/old" } }], redirect: { statusCode: 301, hostname: "new.example.org", port: 8443, path: { replaceFullPath: "/new" } } },
      { name: "tls", match: [{ path: { exact: "/login" } }], redirect: { statusCode: 308, scheme: "https" } },
      { name: "maintenance", match: [{ path: { prefix: "/admin" } }], directResponse: { status: 503, body: "down for maintenance" } },
      { name: "teapot", directResponse: { status: 418, body: "short and stout" } },
    ]);
  });

  it("splits a rewrite over matches with different prefixes into one route per match", () => {
    const r = importYaml(vs(`  - name: legacy
    match: [{ uri: { prefix: /v1/reviews } }, { uri: { prefix: /api/reviews } }]
    rewrite: { uri: /reviews, authority: reviews.internal }
    route: [{ destination: { host: reviews, subset: v1 } }]
`));
    expect(r.errors).toEqual([]);
    expect(services(r).reviews.routes.map((x: any) => [x.name, x.match, x.rewrite])).toEqual([
      ["legacy-m0", [{ path: { prefix: "/v1/reviews" } }], { path: { replacePrefixMatch: "/reviews" }, hostname: "reviews.internal" }],
      ["legacy-m1", [{ path: { prefix: "/api/reviews" } }], { path: { replacePrefixMatch: "/reviews" }, hostname: "reviews.internal" }],
    ]);
  });

  it("turns method regexes into method lists, empty header matches into presence, withoutHeaders into absence", () => {
    const r = importYaml(vs(`  - match:
    - method: { regex: "P(OS|U)T" }
      headers: { x-debug: {} }
      withoutHeaders: { x-bot: {}, x-user: { exact: admin } }
      queryParams: { v: { regex: "[0-9]+" } }
    route: [{ destination: { host: reviews } }]
`));
    expect(r.errors).toEqual([]);
    expect(services(r).reviews.routes[0].match).toEqual([{ methods: ["POST", "PUT"], headers: { "x-debug": { present: true }, "x-bot": { present: false } }, query: { v: { regex: "[0-9]+" } } }]);
    // No subset: all the service's endpoints, through a subset that selects them all.
    expect(services(r).reviews.routes[0].to).toEqual([{ subset: "all", weight: 100 }]);
    expect(services(r).reviews.subsets.all).toEqual({});
    expect(reasonAt(r, `$.spec.http[0].match[0].withoutHeaders["x-user"]`)).toMatch(/only an empty withoutHeaders match/);
  });

  it("drops destinations of other services, and matches that only apply at gateways, saying so", () => {
    const r = importYaml(vs(`  - match: [{ gateways: [public-gateway], uri: { prefix: /x } }, { uri: { prefix: /y } }]
    route:
    - { destination: { host: reviews, subset: v1 }, weight: 80 }
    - { destination: { host: ratings.bookinfo.svc.cluster.local }, weight: 20 }
  - route: [{ destination: { host: api.example.com } }]
`));
    expect(r.errors).toEqual([]);
    expect(services(r).reviews.routes).toEqual([{ name: "reviews-0", match: [{ path: { prefix: "/y" } }], to: [{ subset: "v1", weight: 80 }] }]);
    expect(reasonAt(r, "$.spec.http[0].match[0]")).toMatch(/only applies at gateway\(s\) public-gateway/);
    expect(reasonAt(r, "$.spec.http[0].route[1]")).toMatch(/this destination is "ratings", not "reviews"/);
    expect(reasonAt(r, "$.spec.http[1]")).toMatch(/no destination of this route is a subset of "reviews"/);
  });

  it("reports a subset no DestinationRule or base document defines", () => {
    const r = importYaml(vs(`  - route: [{ destination: { host: reviews, subset: v9 } }]\n`));
    expect(r.errors).toEqual([expect.objectContaining({ resource: "VirtualService/reviews", path: "$.spec.http[0].route[0].destination.subset", message: expect.stringMatching(/subset "v9" of "reviews" is not defined: include the DestinationRule/) })]);
  });

  it("ignores a VirtualService bound only to gateways, and lists unknown fields as such", () => {
    const gatewayOnly = importYaml(vs(`  - route: [{ destination: { host: reviews } }]\n`, "  gateways: [bookinfo-gateway]\n"));
    expect(gatewayOnly.ignored).toEqual([expect.objectContaining({ path: "$", reason: expect.stringMatching(/bound to gateway\(s\) bookinfo-gateway only/) })]);
    expect(gatewayOnly.imported).toEqual([]);
    const typo = importYaml(vs(`  - route: [{ destination: { host: reviews } }]\n    retires: { attempts: 5 }\n`));
    expect(reasonAt(typo, "$.spec.http[0].retires")).toBe(UNKNOWN_FIELD);
  });

  it("clamps what exceeds edgemesh's limits and warns; no timeout becomes the longest one", () => {
    const r = importYaml(vs(`  - route: [{ destination: { host: reviews } }]
    timeout: 0s
    retries: { attempts: 25, perTryTimeout: 1.5s, retryOn: "5xx,unavailable,retriable-4xx" }
    mirrors:
    - { destination: { host: ratings }, percentage: { value: 20 } }
    - { destination: { host: details } }
`));
    const route = services(r).reviews.routes[0];
    expect(route.timeoutMs).toBe(300_000);
    expect(route.retries).toEqual({ attempts: 10, perTryTimeoutMs: 1500, retryOn: ["5xx", "unavailable"], statusCodes: [409] });
    expect(route.mirror).toEqual({ service: "ratings", percent: 20 });
    expect(r.warnings.map((w) => w.message)).toEqual(expect.arrayContaining([expect.stringMatching(/0 means no timeout/), expect.stringMatching(/25 retries is above edgemesh's limit/)]));
    expect(reasonAt(r, "$.spec.http[0].mirrors[1]")).toMatch(/only the first of mirrors is kept/);
  });

  it("gives retries without retryOn Istio's default conditions", () => {
    const r = importYaml(vs(`  - route: [{ destination: { host: reviews } }]
    retries: { attempts: 1 }
`));
    expect(services(r).reviews.routes[0].retries).toEqual({ attempts: 1, retryOn: ["connect-failure", "reset", "unavailable", "cancelled"] });
  });

  it("reads the old integer percent of an abort (v1alpha3) and warns about a fault without any percentage", () => {
    const r = importYaml(vs(`  - route: [{ destination: { host: reviews } }]
    fault: { abort: { percent: 25, httpStatus: 503 }, delay: { fixedDelay: 2s } }
`));
    expect(services(r).reviews.routes[0].fault).toEqual({ bypassRetries: true, abort: { percent: 25, status: 503 }, delay: { percent: 0, ms: 2000 } });
    expect(r.warnings).toEqual(expect.arrayContaining([expect.objectContaining({ path: "$.spec.http[0].fault.delay", message: expect.stringMatching(/no percentage: Istio delays no request/) })]));
  });

  it("refuses header operations on x-edgemesh-* headers where they are written", () => {
    const r = importYaml(vs(`  - route: [{ destination: { host: reviews } }]
    headers: { request: { set: { x-edgemesh-route: spoofed, x-ok: "1" } } }
`));
    expect(r.errors).toEqual([expect.objectContaining({ path: `$.spec.http[0].headers.request.set["x-edgemesh-route"]`, message: expect.stringMatching(/x-edgemesh-\* headers belong to the mesh/) })]);
    expect(services(r).reviews.routes[0].requestHeaders).toEqual({ set: [{ name: "x-ok", value: "1" }] });
  });
});

describe("Istio DestinationRule corners", () => {
  const dr = (policy: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  trafficPolicy:
${policy}`;

  it("maps cookie hashing, round robin, pool limits from maxConnections, and minHealthPercent as the panic threshold", () => {
    const r = importYaml(dr(`    loadBalancer: { consistentHash: { httpCookie: { name: session, ttl: 0s } } }
    connectionPool: { tcp: { maxConnections: 64 }, http: { maxRetries: 3 } }
    outlierDetection: { consecutiveErrors: 4, minHealthPercent: 40 }
    retryBudget: { percent: { value: 10 }, minRetryConcurrency: 5 }
`));
    const svc = services(r).reviews;
    expect(svc.loadBalancer).toEqual({ algorithm: "consistent-hash", hashOn: { cookie: "session" }, panicThresholdPercent: 40 });
    expect(svc.circuitBreaker).toEqual({ maxConcurrent: 64 });
    expect(svc.outlierDetection).toEqual({ consecutiveGatewayErrors: 4, maxEjectionPercent: 10 });
    expect(svc.retryBudget).toEqual({ percent: 10 });
    expect(reasonAt(r, "$.spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl")).toMatch(/never sets one/);
    expect(reasonAt(r, "$.spec.trafficPolicy.connectionPool.http.maxRetries")).toMatch(/retry budget/);
    expect(r.errors).toEqual([]);
  });

  it("drops the base's hash settings when the rule picks another balancer", () => {
    const base = structuredClone(bookinfoBase);
    base.services.reviews.loadBalancer = { algorithm: "consistent-hash", hashOn: { header: "x-user" }, ewmaDecayMs: 5000 };
    const r = importYaml(dr("    loadBalancer: { simple: ROUND_ROBIN }\n"), base);
    expect(services(r).reviews.loadBalancer).toEqual({ algorithm: "round-robin", ewmaDecayMs: 5000 });
    expect(r.errors).toEqual([]);
  });

  it("ignores a rule for an external host", () => {
    const r = importYaml("apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: { name: ext }\nspec: { host: api.example.com }\n");
    expect(r.ignored).toEqual([expect.objectContaining({ path: "$", reason: expect.stringMatching(/not a Kubernetes service name/) })]);
  });
});
