import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { matchRoute, prepareRoutes, type RequestFacts } from "../../workers/sidecar/match.ts";
import { pickSubset } from "../../workers/sidecar/split.ts";
import { chooseEndpoint } from "../../workers/sidecar/balance.ts";
import { compiledService } from "./resilience-fixtures.ts";

function routesOf(routes: unknown[]) {
  const r = validatePolicy({ mesh: "m", services: { s: { endpoints: [{ id: "e1", binding: "E1" }], subsets: { all: {} }, routes } } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return prepareRoutes(compilePolicy(r.document).services.s!.routes);
}

function req(method: string, url: string, headers: Record<string, string> = {}): RequestFacts {
  const u = new URL(url, "http://svc");
  return { method, path: u.pathname, headers: new Headers(headers), query: () => u.searchParams };
}

const to = [{ subset: "all" }];
const routes = routesOf([
  { name: "exact", match: [{ path: { exact: "/login" }, methods: ["POST"] }], to },
  { name: "regex", match: [{ path: { regex: "/items/[0-9]+" } }], to },
  { name: "header", match: [{ headers: { "end-user": { exact: "jason" } } }, { headers: { "x-canary": { present: true } } }], to },
  { name: "header-prefix", match: [{ headers: { "user-agent": { prefix: "Mobile" } } }], to },
  { name: "no-cookie", match: [{ path: { prefix: "/anon" }, headers: { cookie: { present: false } } }], to },
  { name: "query", match: [{ query: { debug: { exact: "1" }, v: { regex: "v[23]" } } }], to },
  { name: "api", match: [{ path: { prefix: "/api/" } }], to },
]);

const hit = (r: RequestFacts) => matchRoute(routes, r)?.route.name;

describe("route matching", () => {
  it("matches exact path and method together", () => {
    expect(hit(req("POST", "/login"))).toBe("exact");
    expect(hit(req("GET", "/login"))).toBeUndefined();
    expect(hit(req("POST", "/login/"))).toBeUndefined();
  });

  it("anchors regexes to the whole path", () => {
    expect(hit(req("GET", "/items/42"))).toBe("regex");
    expect(hit(req("GET", "/items/42/x"))).toBeUndefined();
    expect(hit(req("GET", "/x/items/42"))).toBeUndefined();
  });

  it("matches headers exactly, by prefix, and by presence or absence; any match of a route suffices", () => {
    expect(hit(req("GET", "/", { "End-User": "jason" }))).toBe("header");
    expect(hit(req("GET", "/", { "end-user": "jasonx" }))).toBeUndefined();
    expect(hit(req("GET", "/", { "x-canary": "" }))).toBe("header");
    expect(hit(req("GET", "/", { "user-agent": "MobileSafari" }))).toBe("header-prefix");
    expect(hit(req("GET", "/anon/page"))).toBe("no-cookie");
    expect(hit(req("GET", "/anon/page", { cookie: "a=b" }))).toBeUndefined();
  });

  it("needs every query condition to hold", () => {
    expect(hit(req("GET", "/?debug=1&v=v3"))).toBe("query");
    expect(hit(req("GET", "/?debug=1&v=v4"))).toBeUndefined();
    expect(hit(req("GET", "/?v=v2"))).toBeUndefined();
  });

  it("takes routes in order: the first match wins", () => {
    expect(hit(req("GET", "/api/x", { "end-user": "jason" }))).toBe("header");
    expect(hit(req("GET", "/api/x"))).toBe("api");
  });

  it("parses the query string only when a route asks for it", () => {
    let parsed = 0;
    const only = routesOf([{ name: "p", match: [{ path: { prefix: "/" } }], to }]);
    const r = req("GET", "/x?y=1");
    matchRoute(only, { ...r, query: () => (parsed++, r.query()) });
    expect(parsed).toBe(0);
  });
});

describe("weighted split", () => {
  const split = { subsets: ["v1", "v3"], cumulative: [90, 100], total: 100 };
  it("maps the random draw onto the cumulative table", () => {
    expect(pickSubset(split, 0)).toBe("v1");
    expect(pickSubset(split, 0.8999)).toBe("v1");
    expect(pickSubset(split, 0.9)).toBe("v3");
    expect(pickSubset(split, 0.99999)).toBe("v3");
  });
  it("lands near the weights over many draws", () => {
    let v3 = 0;
    for (let i = 0; i < 20_000; i++) if (pickSubset(split) === "v3") v3++;
    expect(v3 / 20_000).toBeGreaterThan(0.09);
    expect(v3 / 20_000).toBeLessThan(0.11);
  });
});

describe("round robin", () => {
  const lb = compiledService({ loadBalancer: { algorithm: "round-robin" } }).loadBalancer;
  const endpoints = Array.from({ length: 10 }, (_, i) => ({ id: `e${i}`, labels: {}, weight: 1 }));
  const pickEndpoint = (members: number[]) =>
    chooseEndpoint(lb, endpoints, members, { nowMs: 0, random: Math.random, exclude: [], available: undefined, hashKey: undefined, colo: "" });
  it("cycles through a subset's members and reports an empty subset", () => {
    const members = [4, 7, 9];
    expect([pickEndpoint(members), pickEndpoint(members), pickEndpoint(members), pickEndpoint(members)]).toEqual([4, 7, 9, 4]);
    expect(pickEndpoint([])).toBe(-1);
  });
});
