// LIKE patterns without a backtracking regex: wildcards, escapes, case folding, and a pattern
// that would make a naive matcher explode.
import { describe, expect, it } from "vitest";
import { compileLike } from "../../analytics/sql/like.ts";

const like = (pattern: string, text: string, caseInsensitive = false) => compileLike(pattern, caseInsensitive)(text);

describe("LIKE", () => {
  it("matches % and _ wildcards", () => {
    expect(like("error%", "error: boom")).toBe(true);
    expect(like("error%", "an error")).toBe(false);
    expect(like("%.jpg", "cat.jpg")).toBe(true);
    expect(like("%test%", "a test run")).toBe(true);
    expect(like("log__", "log42")).toBe(true);
    expect(like("log__", "log4")).toBe(false);
    expect(like("a%b%c", "axxbyyc")).toBe(true);
    expect(like("a%b%c", "axxcyyb")).toBe(false);
    expect(like("%", "")).toBe(true);
    expect(like("", "")).toBe(true);
    expect(like("", "x")).toBe(false);
    expect(like("/api/_/%", "/api/v/items")).toBe(true);
  });

  it("takes escaped wildcards literally", () => {
    expect(like("100\\%", "100%")).toBe(true);
    expect(like("100\\%", "1000")).toBe(false);
    expect(like("a\\_b", "a_b")).toBe(true);
    expect(like("a\\_b", "axb")).toBe(false);
  });

  it("folds case for ILIKE and counts characters, not UTF-16 units", () => {
    expect(like("%DEBUG%", "a debug line", true)).toBe(true);
    expect(like("%DEBUG%", "a debug line")).toBe(false);
    expect(like("caf_", "café")).toBe(true);
    expect(like("_x", "😀x")).toBe(true);
  });

  it("stays fast on a pattern that makes backtracking matchers explode", () => {
    const text = "a".repeat(20_000);
    const started = performance.now();
    expect(like("%a%a%a%a%a%a%a%a%b", text)).toBe(false);
    // Linear-ish work: well under a second even on a loaded machine (a backtracking regex takes minutes).
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
