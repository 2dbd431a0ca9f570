import { describe, expect, it } from "vitest";
import { auditRecord } from "../../auth/audit.ts";
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
      ["POST", "/v1/policy", "write"],
      ["POST", "/v1/policy/rollback", "write"],
      ["POST", "/v1/registry/reviews", "write"],
      ["POST", "/v1/registry/reviews/r1/heartbeat", "write"],
      ["DELETE", "/v1/registry/reviews/r1", "write"],
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
    expect(record).toEqual({ atMs: 5, tokenName: "ci", tokenScope: "write", action: "policy.apply", target: "7", outcome: "ok", clientIp: "192.0.2.1", detail: { version: 7 } });
    expect(auditRecord(undefined, { action: "policy.apply", outcome: "refused", clientIp: "x", atMs: 1 })).toMatchObject({ tokenName: "", tokenScope: "" });
  });
});
