// The routing vocabulary in the schema (validation with errors that say what is wrong) and its
// compiled form in the snapshot.
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy, type PolicyError } from "../../policies/schema.ts";

const ENDPOINTS = [
  { id: "a1", binding: "A1", labels: { version: "v1" } },
  { id: "a2", binding: "A2", labels: { version: "v2" } },
];

function doc(routes: unknown[]) {
  return { mesh: "m", services: { a: { endpoints: ENDPOINTS, subsets: { v1: { version: "v1" }, v2: { version: "v2" } }, routes } } };
}

function errorsOf(routes: unknown[]): PolicyError[] {
  const r = validatePolicy(doc(routes));
  if (r.ok) throw new Error("expected the document to be refused");
  return r.errors;
}

function compiledRoute(route: Record<string, unknown>) {
  const r = validatePolicy(doc([{ name: "r", ...route }]));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return compilePolicy(r.document).services.a!.routes[0]!;
}

const at = (errors: PolicyError[], path: string) => errors.find((e) => e.path === path)?.message;

describe("header modifiers in the schema", () => {
  it("accepts set, add and remove per route and per destination", () => {
    const route = compiledRoute({
      to: [{ subset: "v1", weight: 90, requestHeaders: { set: [{ name: "X-Backend", value: "one" }] }, responseHeaders: { remove: ["Server"] } }, { subset: "v2", weight: 10 }],
      requestHeaders: { set: [{ name: "X-Set", value: "s" }], add: [{ name: "X-Add", value: "a" }], remove: ["X-Gone", "x-gone"] },
      responseHeaders: { add: [{ name: "Cache-Control", value: "no-store" }] },
    });
    expect(route.filters).toEqual({
      requestHeaders: { remove: ["x-gone"], set: [{ name: "x-set", value: "s" }], add: [{ name: "x-add", value: "a" }] },
      responseHeaders: { remove: [], set: [], add: [{ name: "cache-control", value: "no-store" }] },
      destinations: { v1: { requestHeaders: { remove: [], set: [{ name: "x-backend", value: "one" }], add: [] }, responseHeaders: { remove: ["server"], set: [], add: [] } } },
    });
  });

  it("refuses x-edgemesh-* headers at every level, and says why", () => {
    const errors = errorsOf([{
      name: "r",
      to: [{ subset: "v1", responseHeaders: { set: [{ name: "X-Edgemesh-Route", value: "fake" }] } }],
      requestHeaders: { add: [{ name: "x-edgemesh-caller", value: "admin" }], remove: ["X-EDGEMESH-DEBUG"] },
    }]);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.add[0].name")).toMatch(/x-edgemesh-\* headers belong to the mesh/);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.remove[0]")).toMatch(/x-edgemesh-\*/);
    expect(at(errors, "$.services.a.routes[0].to[0].responseHeaders.set[0].name")).toMatch(/x-edgemesh-\*/);
  });

  it("refuses host and framing headers, control characters, duplicates and contradictions", () => {
    const errors = errorsOf([{
      name: "r",
      to: [{ subset: "v1" }],
      requestHeaders: {
        set: [{ name: "Host", value: "x" }, { name: "X-A", value: "line\r\nbreak" }, { name: "x-a", value: "again" }],
        add: [{ name: "Content-Length", value: "3" }, { name: "X-B", value: "b" }],
        remove: ["x-b"],
      },
    }]);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.set[0].name")).toMatch(/use the route's "rewrite": \{ "hostname"/);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.set[1].value")).toMatch(/no CR, LF/);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.add[0].name")).toMatch(/managed by the runtime/);
  });

  it("reports duplicate names and set-and-removed headers once the entries themselves are valid", () => {
    const errors = errorsOf([{
      name: "r",
      to: [{ subset: "v1" }],
      requestHeaders: { set: [{ name: "X-A", value: "1" }, { name: "x-a", value: "2" }], add: [{ name: "X-B", value: "b" }], remove: ["x-b"] },
    }]);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.set[1].name")).toMatch(/already in set\[0\]; give several values as one comma-separated value/);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.remove[0]")).toMatch(/both removed and set or added/);
  });

  it("limits each list to 16 entries and values to 4096 characters", () => {
    const many = Array.from({ length: 17 }, (_, i) => ({ name: `x-h${i}`, value: "v" }));
    const errors = errorsOf([{ name: "r", to: [{ subset: "v1" }], requestHeaders: { set: many, add: [{ name: "x-big", value: "v".repeat(4097) }] } }]);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.set")).toMatch(/16/);
    expect(at(errors, "$.services.a.routes[0].requestHeaders.add[0].value")).toMatch(/4096/);
  });

  it("refuses two destinations of one subset with different modifiers (the split picks a subset)", () => {
    const errors = errorsOf([{ name: "r", to: [{ subset: "v1", requestHeaders: { set: [{ name: "x", value: "1" }] } }, { subset: "v1" }] }]);
    expect(at(errors, "$.services.a.routes[0].to[1]")).toMatch(/already names subset "v1" with other header modifiers/);
  });
});

describe("rewrites in the schema", () => {
  it("compiles a prefix replacement with the route's matched prefix, trailing slash dropped", () => {
    const route = compiledRoute({
      match: [{ path: { exact: "/prefix/one" } }, { path: { prefix: "/prefix/one/" }, headers: { x: { exact: "1" } } }],
      to: [{ subset: "v1" }],
      rewrite: { path: { replacePrefixMatch: "/one" }, hostname: "one.internal.example" },
    });
    expect(route.filters).toEqual({ rewrite: { path: { kind: "prefix", prefix: "/prefix/one", replacement: "/one" }, hostname: "one.internal.example" } });
  });

  it("compiles a full path replacement", () => {
    expect(compiledRoute({ to: [{ subset: "v1" }], rewrite: { path: { replaceFullPath: "/x" } } }).filters).toEqual({ rewrite: { path: { kind: "full", path: "/x" } } });
  });

  it("needs a path prefix match for a prefix replacement, the same on every match", () => {
    const noMatch = errorsOf([{ name: "r", to: [{ subset: "v1" }], rewrite: { path: { replacePrefixMatch: "/x" } } }]);
    expect(at(noMatch, "$.services.a.routes[0].rewrite.path.replacePrefixMatch")).toMatch(/the route has no match/);
    const regex = errorsOf([{ name: "r", match: [{ path: { regex: "/a.*" } }], to: [{ subset: "v1" }], rewrite: { path: { replacePrefixMatch: "/x" } } }]);
    expect(at(regex, "$.services.a.routes[0].rewrite.path.replacePrefixMatch")).toMatch(/match\[0\] does not match the path on a prefix/);
    const two = errorsOf([{ name: "r", match: [{ path: { prefix: "/a" } }, { path: { prefix: "/b" } }], to: [{ subset: "v1" }], rewrite: { path: { replacePrefixMatch: "/x" } } }]);
    expect(at(two, "$.services.a.routes[0].rewrite.path.replacePrefixMatch")).toMatch(/different path prefixes \("\/a" and "\/b"\).*split them into two routes/);
  });

  it("needs exactly one path modifier, paths that start with / and a DNS hostname", () => {
    const errors = errorsOf([
      { name: "r1", to: [{ subset: "v1" }], rewrite: { path: { replaceFullPath: "/a", replacePrefixMatch: "/b" } } },
      { name: "r2", to: [{ subset: "v1" }], rewrite: { path: { replaceFullPath: "a?b" } } },
      { name: "r3", to: [{ subset: "v1" }], rewrite: { hostname: "Not A Host" } },
      { name: "r4", to: [{ subset: "v1" }], rewrite: {} },
    ]);
    expect(at(errors, "$.services.a.routes[0].rewrite.path")).toMatch(/exactly one of "replaceFullPath" or "replacePrefixMatch"/);
    expect(at(errors, "$.services.a.routes[1].rewrite.path.replaceFullPath")).toMatch(/starts with "\/"/);
    expect(at(errors, "$.services.a.routes[2].rewrite.hostname")).toMatch(/lowercase DNS name/);
    expect(at(errors, "$.services.a.routes[3].rewrite")).toMatch(/give "path", "hostname" or both/);
  });
});

describe("redirects and direct responses in the schema", () => {
  it("compiles a redirect without `to`, status 302 by default", () => {
    const route = compiledRoute({ match: [{ path: { prefix: "/old" } }], redirect: { scheme: "https", hostname: "example.org", port: 8443, path: { replacePrefixMatch: "/new" } } });
    expect(route.filters).toEqual({ redirect: { status: 302, scheme: "https", hostname: "example.org", port: 8443, path: { kind: "prefix", prefix: "/old", replacement: "/new" } } });
    expect(route.split).toEqual({ subsets: [], cumulative: [], total: 0 });
  });

  it("accepts only 301, 302, 303, 307 and 308", () => {
    const errors = errorsOf([{ name: "r", redirect: { statusCode: 300 } }]);
    expect(at(errors, "$.services.a.routes[0].redirect.statusCode")).toMatch(/301\|302\|303\|307\|308/);
  });

  it("compiles a direct response with a default content type only when it has a body", () => {
    expect(compiledRoute({ directResponse: { status: 503, body: "down for maintenance" } }).filters)
      .toEqual({ directResponse: { status: 503, body: "down for maintenance", contentType: "text/plain; charset=utf-8" } });
    expect(compiledRoute({ directResponse: { status: 204 } }).filters).toEqual({ directResponse: { status: 204 } });
  });

  it("refuses forwarding fields on a route that answers itself, and a forwarding route without `to`", () => {
    const errors = errorsOf([
      { name: "r1", to: [{ subset: "v1" }], redirect: {} },
      { name: "r2", directResponse: { status: 200 }, rewrite: { hostname: "x.example" }, requestHeaders: { remove: ["x"] }, mirror: { subset: "v2" } },
      { name: "r3", redirect: {}, directResponse: { status: 200 } },
      { name: "r4" },
    ]);
    expect(at(errors, "$.services.a.routes[0].to")).toMatch(/answers the request itself and never forwards it: remove "to"/);
    expect(at(errors, "$.services.a.routes[1].rewrite")).toMatch(/no effect on a route that answers with "directResponse"/);
    expect(at(errors, "$.services.a.routes[1].requestHeaders")).toMatch(/no effect/);
    expect(at(errors, "$.services.a.routes[1].mirror")).toMatch(/no effect/);
    expect(at(errors, "$.services.a.routes[2].directResponse")).toMatch(/not both/);
    expect(at(errors, "$.services.a.routes[3].to")).toMatch(/needs at least one destination/);
  });

  it("limits the body to 64 KiB of UTF-8 and refuses a body on 204", () => {
    const errors = errorsOf([
      { name: "r1", directResponse: { status: 200, body: "é".repeat(32 * 1024 + 1) } },
      { name: "r2", directResponse: { status: 204, body: "x" } },
      { name: "r3", directResponse: { status: 200, contentType: "text/plain" } },
    ]);
    expect(at(errors, "$.services.a.routes[0].directResponse.body")).toMatch(/65538 bytes; at most 65536/);
    expect(at(errors, "$.services.a.routes[1].directResponse.body")).toMatch(/a 204 response has no body/);
    expect(at(errors, "$.services.a.routes[2].directResponse.contentType")).toMatch(/give "body" too/);
  });

  it("leaves routes without filters without a filters field", () => {
    expect(compiledRoute({ to: [{ subset: "v1" }] }).filters).toBeUndefined();
  });
});
