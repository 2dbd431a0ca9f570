import { describe, expect, it } from "vitest";
import { hasAdminToken } from "../../auth/admin-token.ts";

describe("admin token", () => {
  it("accepts only the exact bearer token", () => {
    expect(hasAdminToken("Bearer s3cret", "s3cret")).toBe(true);
    expect(hasAdminToken("bearer s3cret", "s3cret")).toBe(true);
    expect(hasAdminToken("Bearer s3cre", "s3cret")).toBe(false);
    expect(hasAdminToken("Bearer s3cretX", "s3cret")).toBe(false);
    expect(hasAdminToken("s3cret", "s3cret")).toBe(false);
    expect(hasAdminToken(null, "s3cret")).toBe(false);
    expect(hasAdminToken("Bearer ", "")).toBe(false);
  });
});
