import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { accessDeniedBy, accessDeniedResponse, normalizePathForAccess, prepareAccess, type PreparedAccess } from "../../workers/sidecar/access.ts";

const endpoints = [{ id: "a1", binding: "A1" }];

function doc(services: Record<string, unknown>, access?: unknown): unknown {
  const withEndpoints = Object.fromEntries(Object.entries(services).map(([name, svc]) => [name, { endpoints, ...(svc as object) }]));
  return { mesh: "m", services: withEndpoints, ...(access === undefined ? {} : { access }) };
}

function prepared(document: unknown, service = "api"): PreparedAccess {
  const result = validatePolicy(document);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return prepareAccess(compilePolicy(result.document).services[service]!.access);
}

function errorsOf(document: unknown): { path: string; message: string }[] {
  const result = validatePolicy(document);
  return result.ok ? [] : result.errors;
}

const req = (method: string, path: string, headers: Record<string, string> = {}) => ({ method, path, headers: new Headers(headers) });
const CALLERS = { web: {}, jobs: {}, api: {} };

describe("access policy schema", () => {
  it("names every unknown caller with the ones that exist", () => {
    const errors = errorsOf(doc({ ...CALLERS, api: { access: { allow: [{ from: ["web", "wbe"] }] } } }, { identities: ["nightly"] }));
    expect(errors).toEqual([{
      path: "$.services.api.access.allow[0].from[1]",
      message: 'unknown caller "wbe"; services: web, jobs, api; identities: nightly; or "external", "*" (declare callers that are not services in access.identities)',
    }]);
    expect(errorsOf(doc({ ...CALLERS, api: { access: { allow: [{ from: ["nightly", "external", "*"] }] } } }, { identities: ["nightly"] }))).toEqual([]);
  });

  it("refuses regexes RE2 cannot run, naming the construct", () => {
    const errors = errorsOf(doc({ api: { access: { deny: [{ paths: [{ regex: "/(?=admin).*" }], headers: { "x-a": { regex: "(a)\\1" } } }] } } }));
    expect(errors.map((e) => e.path)).toEqual(['$.services.api.access.deny[0].paths[0].regex', '$.services.api.access.deny[0].headers["x-a"].regex']);
    expect(errors[0]!.message).toMatch(/not a valid RE2 regular expression.*\(\?=/);
  });

  it("reserves the name external, needs unique rule names, paths starting with / and one match kind", () => {
    expect(errorsOf(doc({ external: {} })).map((e) => e.path)).toEqual(["$.services.external"]);
    expect(errorsOf(doc({ api: {} }, { identities: ["external"] })).map((e) => e.path)).toEqual(["$.access.identities[0]"]);
    const dup = errorsOf(doc({ api: { access: { deny: [{ name: "x" }], allow: [{ name: "x" }] } } }));
    expect(dup).toEqual([{ path: "$.services.api.access.allow[0].name", message: 'rule name "x" is already used by deny[0]' }]);
    expect(errorsOf(doc({ api: { access: { deny: [{ paths: [{ prefix: "admin" }] }] } } }))[0]).toMatchObject({ path: "$.services.api.access.deny[0].paths[0].prefix" });
    expect(errorsOf(doc({ api: { access: { deny: [{ paths: [{ prefix: "/a", exact: "/b" }] }] } } }))[0]!.message).toMatch(/exactly one of "exact", "prefix", "regex" \(got exact, prefix\)/);
    expect(errorsOf(doc({ api: { access: { deny: [{ acces: 1 }] } } })).length).toBe(1);
  });

  it("compiles rule ids, mesh defaults and per-service overrides into the snapshot", () => {
    const result = validatePolicy(doc({
      ...CALLERS,
      api: { access: { deny: [{ name: "no-admin", paths: [{ prefix: "/admin" }] }, { methods: ["DELETE"] }], allow: [{ from: ["web", "*"] }] } },
      jobs: { access: { mode: "permissive", unverifiedIdentity: "external" } },
    }, { mode: "strict" }));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const mesh = compilePolicy(result.document);
    const api = mesh.services.api!.access;
    expect(api.deny.map((r) => r.id)).toEqual(["api/no-admin", "api/deny[1]"]);
    expect(api.allow[0]).toEqual({ id: "api/allow[0]", paths: [], headers: [] }); // "*" means any caller: no list
    expect(api).toMatchObject({ mode: "strict", unverifiedIdentity: "refuse", defaultDeny: true, defaultDenyId: "api/(default-deny)" });
    expect(mesh.services.jobs!.access).toMatchObject({ mode: "permissive", unverifiedIdentity: "external", defaultDeny: false });
    expect(mesh.services.web!.access).toMatchObject({ mode: "strict", defaultDeny: true, allow: [], deny: [] });
    expect(api.tokens).toEqual({ clockSkewMs: 30_000, maxLifetimeMs: 86_400_000, forwardedTtlMs: 300_000 });
  });

  it("takes token settings mesh-wide, with limits", () => {
    expect(errorsOf(doc({ api: {} }, { tokens: { clockSkewMs: 600_000 } }))[0]).toMatchObject({ path: "$.access.tokens.clockSkewMs" });
    expect(errorsOf(doc({ api: {} }, { tokens: { maxLifetimeMs: 60_000, forwardedTtlMs: 120_000 } }))[0]).toMatchObject({ path: "$.access.tokens.forwardedTtlMs", message: /must not exceed maxLifetimeMs/ });
    const result = validatePolicy(doc({ api: {} }, { tokens: { clockSkewMs: 5_000 } }));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(compilePolicy(result.document).services.api!.access.tokens.clockSkewMs).toBe(5_000);
  });
});

describe("access evaluation", () => {
  it("permissive with no rules admits everyone; strict with no allow rule refuses everyone", () => {
    const open = prepared(doc({ api: {} }));
    expect(accessDeniedBy(open, "external", req("POST", "/anything"))).toBeUndefined();
    const closed = prepared(doc({ ...CALLERS, api: {} }, { mode: "strict" }));
    for (const caller of ["web", "jobs", "external", "api"]) expect(accessDeniedBy(closed, caller, req("GET", "/"))).toBe("api/(default-deny)");
  });

  it("evaluates deny before allow, and names the refusing rule", () => {
    const access = prepared(doc({ ...CALLERS, api: { access: {
      allow: [{ name: "web-reads", from: ["web"], methods: ["GET"] }],
      deny: [{ name: "no-admin", paths: [{ prefix: "/admin" }] }],
    } } }));
    expect(accessDeniedBy(access, "web", req("GET", "/books"))).toBeUndefined();
    expect(accessDeniedBy(access, "web", req("GET", "/admin/users"))).toBe("api/no-admin");
    // Permissive, but the service has allow rules: they are a list.
    expect(accessDeniedBy(access, "web", req("POST", "/books"))).toBe("api/(default-deny)");
    expect(accessDeniedBy(access, "jobs", req("GET", "/books"))).toBe("api/(default-deny)");
  });

  it("matches callers by name, external and *", () => {
    const access = prepared(doc({ ...CALLERS, api: { access: {
      deny: [{ name: "no-outsiders-writing", from: ["external"], methods: ["POST", "PUT", "PATCH", "DELETE"] }],
      allow: [{ name: "anyone-reads", from: ["*"], methods: ["GET", "HEAD"] }, { name: "jobs-write", from: ["jobs"] }],
    } } }));
    expect(accessDeniedBy(access, "external", req("GET", "/"))).toBeUndefined();
    expect(accessDeniedBy(access, "external", req("POST", "/"))).toBe("api/no-outsiders-writing");
    expect(accessDeniedBy(access, "jobs", req("POST", "/"))).toBeUndefined();
    expect(accessDeniedBy(access, "web", req("POST", "/"))).toBe("api/(default-deny)");
  });

  it("matches paths exactly, by prefix and by RE2 regex (the whole path), and headers", () => {
    const access = prepared(doc({ ...CALLERS, api: { access: { allow: [
      { name: "exact", paths: [{ exact: "/health" }] },
      { name: "prefix", paths: [{ prefix: "/public/" }] },
      { name: "regex", paths: [{ regex: "/books/[0-9]+" }] },
      { name: "header", headers: { "X-Tenant": { exact: "acme" }, "x-debug": { present: false } } },
    ] } } }));
    const allowed = (path: string, headers: Record<string, string> = {}) => accessDeniedBy(access, "web", req("GET", path, headers)) === undefined;
    expect(allowed("/health")).toBe(true);
    expect(allowed("/health/x")).toBe(false);
    expect(allowed("/public/a.css")).toBe(true);
    expect(allowed("/books/12")).toBe(true);
    expect(allowed("/books/12/reviews")).toBe(false); // anchored: the whole path
    expect(allowed("/x/books/12")).toBe(false);
    expect(allowed("/private", { "x-tenant": "acme" })).toBe(true);
    expect(allowed("/private", { "x-tenant": "acme", "x-debug": "1" })).toBe(false);
    expect(allowed("/private", { "x-tenant": "other" })).toBe(false);
  });

  it("cannot be dodged by encoding the path, doubling slashes or a lower-case method", () => {
    const access = prepared(doc({ api: { access: { deny: [{ name: "no-admin", paths: [{ prefix: "/admin" }] }, { name: "no-patch", methods: ["PATCH"] }] } } }));
    for (const path of ["/%61dmin", "//admin", "/%61%64%6D%69%6E/x", "/ad%6din"]) expect(accessDeniedBy(access, "web", req("GET", path)), path).toBe("api/no-admin");
    expect(accessDeniedBy(access, "web", req("GET", "/%2Fadmin"))).toBeUndefined(); // an encoded slash is no separator
    expect(accessDeniedBy(access, "web", req("patch", "/x"))).toBe("api/no-patch");
  });

  it("normalizes only what is safe, and returns the same string when there is nothing to do", () => {
    const path = "/plain/path";
    expect(normalizePathForAccess(path)).toBe(path);
    expect(normalizePathForAccess("/a%2fb%7e%25%zz%4")).toBe("/a%2Fb~%25%zz%4");
    expect(normalizePathForAccess("///a//b/")).toBe("/a/b/");
  });

  it("answers 403 naming the rule", async () => {
    const res = accessDeniedResponse("api/no-admin", "web");
    expect(res.status).toBe(403);
    expect(res.headers.get("x-edgemesh-denied-by")).toBe("api/no-admin");
    expect(await res.json()).toEqual({ error: "access-denied", rule: "api/no-admin", caller: "web" });
  });
});
