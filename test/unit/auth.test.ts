import { describe, expect, it } from "vitest";
import { timingSafeEqual } from "../../auth/admin-token.ts";

describe("constant-time comparison", () => {
  it("is equality, whatever the lengths", () => {
    expect(timingSafeEqual("s3cret", "s3cret")).toBe(true);
    expect(timingSafeEqual("", "")).toBe(true);
    expect(timingSafeEqual("s3cre", "s3cret")).toBe(false);
    expect(timingSafeEqual("s3cretX", "s3cret")).toBe(false);
    expect(timingSafeEqual("S3cret", "s3cret")).toBe(false);
    expect(timingSafeEqual("", "s3cret")).toBe(false);
    // Multi-byte characters compare by their UTF-8 bytes.
    expect(timingSafeEqual("é", "é")).toBe(true);
    expect(timingSafeEqual("é", "e")).toBe(false);
  });
});
