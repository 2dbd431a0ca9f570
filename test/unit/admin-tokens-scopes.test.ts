import { describe, expect, it } from "vitest";
import { auditedAction, auditOutcomeOf, auditRecord } from "../../auth/audit.ts";
import { bearerToken, requiredAdminScope, scopeAllows } from "../../auth/admin-token.ts";

describe("admin scopes", () => {
  it("orders read < write < admin", () => {
    expect(scopeAllows("admin", "write")).toBe(true);
    expect(scopeAllows("write", "read")).toBe(true);
    expect(scopeAllows("read", "write")).toBe(false);
    expect(scopeAllows("write", "admin")).toBe(false);
  });

  it("maps every admin route to the scope in docs/security.md", () => {
    const table: [string, string, string][] = [
      ["GET", "/v1/policy", "read"],
      ["GET", "/v1/policy/history", "read"],
      ["POST", "/v1/policy/validate", "read"],
      ["GET", "/v1/registry", "read"],
      ["GET", "/v1/watch", "read"],
      ["GET", "/v1/audit", "read"],
      ["POST", "/v1/analytics/sql", "read"],
      ["GET", "/metrics", "read"],
      // A debug credential shows what a read token already sees.
      ["POST", "/v1/debug-tokens", "read"],
      ["GET", "/v1/sidecars/reviews/debug/status", "read"],
      ["POST", "/v1/policy", "write"],
      ["POST", "/v1/policy/rollback", "write"],
      ["POST", "/v1/registry/reviews", "write"],
      ["POST", "/v1/registry/reviews/r1/heartbeat", "write"],
      ["DELETE", "/v1/registry/reviews/r1", "write"],
      ["POST", "/v1/import", "write"],
      ["POST", "/v1/rollouts/reviews/promote", "write"],
      ["GET", "/v1/tokens", "admin"],
      ["POST", "/v1/tokens", "admin"],
      ["DELETE", "/v1/tokens/ci", "admin"],
      ["POST", "/v1/mesh-tokens", "admin"],
      ["PUT", "/v1/debug/fault", "admin"],
      // A change to a route nobody classified is closed until it is.
      ["POST", "/v1/something-new", "admin"],
      ["POST", "/v1/policyx", "admin"],
    ];
    for (const [method, path, scope] of table) expect(requiredAdminScope(method, path), `${method} ${path}`).toBe(scope);
  });

  it("reads a bearer token and nothing else", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer   abc ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(null)).toBeUndefined();
  });
});

describe("audit records", () => {
  it("name the token, never its value, and drop secret-looking details", () => {
    const record = auditRecord({ name: "ci", scope: "write" }, {
      action: "policy.apply", target: "7", outcome: "ok", clientIp: "192.0.2.1", atMs: 5,
      detail: { version: 7, token: "edgemesh_secret", authorization: "Bearer x", apiKey: "k" },
    });
    expect(record).toEqual({ atMs: 5, mesh: "", tokenName: "ci", tokenScope: "write", action: "policy.apply", target: "7", outcome: "ok", clientIp: "192.0.2.1", detail: { version: 7 } });
    expect(auditRecord(undefined, { action: "policy.apply", outcome: "refused", clientIp: "x", atMs: 1 })).toMatchObject({ tokenName: "", tokenScope: "" });
  });
});

describe("which admin calls the audit log records", () => {
  const action = (method: string, url: string) => {
    const parsed = new URL(url, "http://control");
    return auditedAction(method, parsed.pathname, parsed.searchParams);
  };

  it("names every change, with its target from the path", () => {
    expect(action("POST", "/v1/policy")).toEqual({ action: "policy.apply", target: "" });
    expect(action("POST", "/v1/policy/rollback?to=3")).toEqual({ action: "policy.rollback", target: "" });
    expect(action("POST", "/v1/registry/reviews")).toEqual({ action: "registry.register", target: "reviews" });
    expect(action("DELETE", "/v1/registry/reviews/r%2D1")).toEqual({ action: "registry.deregister", target: "reviews/r-1" });
    expect(action("POST", "/v1/tokens")).toEqual({ action: "tokens.create", target: "" });
    expect(action("DELETE", "/v1/tokens/ci")).toEqual({ action: "tokens.revoke", target: "ci" });
    expect(action("POST", "/v1/mesh-tokens")).toEqual({ action: "mesh-tokens.issue", target: "" });
    expect(action("POST", "/v1/debug-tokens")).toEqual({ action: "debug-tokens.issue", target: "" });
    expect(action("PUT", "/v1/debug/fault")).toEqual({ action: "debug.fault", target: "" });
    expect(action("POST", "/v1/import?apply=true")).toEqual({ action: "import.apply", target: "" });
  });

  it("records a change to a route nobody named under its method and path", () => {
    expect(action("POST", "/v1/rollouts/reviews/promote")).toEqual({ action: "POST /v1/rollouts/reviews/promote", target: "" });
    expect(action("PATCH", "/v1/policy")).toEqual({ action: "PATCH /v1/policy", target: "" });
  });

  it("leaves out reads, POSTs that change nothing and lease renewals", () => {
    for (const [method, url] of [
      ["GET", "/v1/policy"], ["HEAD", "/v1/audit"], ["POST", "/v1/policy/validate"], ["POST", "/v1/analytics/sql"],
      ["POST", "/v1/registry/reviews/r1/heartbeat"], ["POST", "/v1/import"], ["POST", "/v1/import?apply=false"],
    ] as const) expect(action(method, url), `${method} ${url}`).toBeUndefined();
  });

  it("tells the outcome from the status", () => {
    expect([200, 201, 302, 400, 403, 409, 500, 502].map(auditOutcomeOf)).toEqual(["ok", "ok", "ok", "refused", "refused", "refused", "failed", "failed"]);
  });
});
