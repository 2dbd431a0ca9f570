import { describe, expect, it } from "vitest";
import { anchored, compilePolicyRegex, policyRegexProblem } from "../../policies/regex.ts";
import { validatePolicy } from "../../policies/schema.ts";

function errorsOf(match: Record<string, unknown>) {
  const result = validatePolicy({ mesh: "m", services: { s: { endpoints: [{ id: "e1", binding: "E1" }], subsets: { all: {} }, routes: [{ name: "r", match: [match], to: [{ subset: "all" }] }] } } });
  return result.ok ? [] : result.errors;
}

describe("policy regexes (RE2)", () => {
  it("refuses syntax RE2 lacks, naming the construct and the JSON path", () => {
    expect(errorsOf({ path: { regex: "/(a)\\1" } })).toEqual([
      { path: "$.services.s.routes[0].match[0].path.regex", message: expect.stringMatching(/^backreferences are not supported \(found "\\1"\); policy regexes run on RE2/) },
    ]);
    expect(errorsOf({ headers: { "user-agent": { regex: "Mozilla(?=.*Chrome).*" } } })).toEqual([
      { path: '$.services.s.routes[0].match[0].headers["user-agent"].regex', message: expect.stringMatching(/^lookahead is not supported \(found "\(\?="\)/) },
    ]);
    expect(errorsOf({ query: { v: { regex: "(?<!x)v2" } } })).toEqual([
      { path: "$.services.s.routes[0].match[0].query.v.regex", message: expect.stringMatching(/^lookbehind is not supported \(found "\(\?<!"\)/) },
    ]);
    expect(policyRegexProblem("(?<name>a)\\k<name>")).toMatch(/^backreferences/);
    expect(policyRegexProblem("\\u0041")).toMatch(/write \\x\{XXXX\}/);
  });

  it("reports RE2's own parse errors, and refuses a regex that only parses inside the anchors", () => {
    expect(policyRegexProblem("([a-z")).toMatch(/^not a valid RE2 regular expression: missing closing \]/);
    expect(policyRegexProblem("a++")).toMatch(/invalid nested repetition operator/);
    // Wrapped as ^(?:a)|(b)$ this would compile, and match "a..." unanchored.
    expect(policyRegexProblem("a)|(b")).toMatch(/^not a valid RE2 regular expression/);
  });

  it("does not mistake escaped or bracketed characters for unsupported constructs", () => {
    expect(policyRegexProblem("\\\\1")).toBeUndefined(); // a backslash, then "1"
    expect(policyRegexProblem("[(?=]x")).toBeUndefined();
    expect(policyRegexProblem("[]\\\\1]")).toBeUndefined();
    expect(policyRegexProblem("(?P<id>[0-9]+)/(?i)items")).toBeUndefined();
  });

  it("matches the whole value in linear time, even for patterns that backtrack exponentially", () => {
    const evil = compilePolicyRegex(anchored("/(a+)+b"));
    // A backtracking engine takes seconds on this (2^31 paths); RE2 answers at once.
    expect(evil.testExact("/" + "a".repeat(31))).toBe(false);
    expect(evil.testExact("/aaab")).toBe(true);
    const items = compilePolicyRegex(anchored("/items/[0-9]+"));
    expect(items.testExact("/items/12")).toBe(true);
    expect(items.testExact("/items/12/x")).toBe(false);
    expect(items.testExact("x/items/12")).toBe(false);
  });

  it("a regex RE2 cannot compile (a snapshot validated before RE2) matches nothing instead of throwing", () => {
    expect(compilePolicyRegex(anchored("(a)\\1")).testExact("aa")).toBe(false);
  });
});
