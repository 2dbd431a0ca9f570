// Property-based fuzzing of access rules, compiled from random documents through the real schema
// and compiler: deny is evaluated before allow; strict with no allow rule refuses everything; a
// rule never matches a caller it does not name; and the decision equals a plain reference model.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { accessDeniedBy, prepareAccess } from "../../workers/sidecar/access.ts";

const SERVICES = ["api", "web", "jobs"];
const CALLERS = [...SERVICES, "nightly", "external"];
const METHODS = ["GET", "POST", "DELETE"] as const;
const PATHS = ["/", "/admin", "/admin/users", "/books/1", "/books/22", "/public/x"];
type PathMatch = { exact: string } | { prefix: string } | { regex: string };
type HeaderCondition = Record<string, { exact: string } | { present: boolean }>;
const PATH_MATCHES: PathMatch[] = [{ exact: "/admin" }, { prefix: "/admin" }, { prefix: "/books/" }, { regex: "/books/[0-9]" }, { regex: "/(public|admin)/.*" }];
const HEADER_CONDITIONS: HeaderCondition[] = [{ "x-tenant": { exact: "acme" } }, { "x-debug": { present: true } }, { "x-debug": { present: false } }];

interface Rule {
  from?: string[];
  methods?: (typeof METHODS)[number][];
  paths?: PathMatch[];
  headers?: HeaderCondition;
}

const rule: fc.Arbitrary<Rule> = fc.record({
  from: fc.subarray([...CALLERS, "*"], { minLength: 1 }),
  methods: fc.subarray([...METHODS], { minLength: 1 }),
  paths: fc.subarray(PATH_MATCHES, { minLength: 1 }),
  headers: fc.constantFrom(...HEADER_CONDITIONS),
}, { requiredKeys: [] });

const request = fc.record({
  caller: fc.constantFrom(...CALLERS),
  method: fc.constantFrom(...METHODS),
  path: fc.constantFrom(...PATHS),
  tenant: fc.constantFrom(null, "acme", "other"),
  debug: fc.boolean(),
});
type Req = { caller: string; method: string; path: string; tenant: string | null; debug: boolean };

function compile(allow: Rule[], deny: Rule[], mode: "permissive" | "strict") {
  const services = Object.fromEntries(SERVICES.map((s) => [s, { endpoints: [{ id: "e", binding: "E" }] }]));
  (services.api as Record<string, unknown>).access = { allow, deny };
  const result = validatePolicy({ mesh: "m", access: { mode, identities: ["nightly"] }, services });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return prepareAccess(compilePolicy(result.document).services.api!.access);
}

function headersOf(r: Req): Headers {
  const h = new Headers();
  if (r.tenant !== null) h.set("x-tenant", r.tenant);
  if (r.debug) h.set("x-debug", "1");
  return h;
}

/** The rule semantics written plainly, with JavaScript regexes (the patterns above mean the same in RE2). */
function holds(rule: Rule, r: Req): boolean {
  if (rule.from && !rule.from.includes("*") && !rule.from.includes(r.caller)) return false;
  if (rule.methods && !rule.methods.includes(r.method as never)) return false;
  if (rule.paths && !rule.paths.some((m) => ("exact" in m ? r.path === m.exact : "prefix" in m ? r.path.startsWith(m.prefix) : new RegExp(`^(?:${m.regex})$`).test(r.path)))) return false;
  for (const [name, m] of Object.entries(rule.headers ?? {})) {
    const value = headersOf(r).get(name);
    if ("present" in m ? (value !== null) !== m.present : value !== m.exact) return false;
  }
  return true;
}

function reference(allow: Rule[], deny: Rule[], mode: string, r: Req): string | undefined {
  const d = deny.findIndex((rule) => holds(rule, r));
  if (d >= 0) return `api/deny[${d}]`;
  if (mode === "permissive" && allow.length === 0) return undefined;
  return allow.some((rule) => holds(rule, r)) ? undefined : "api/(default-deny)";
}

const decide = (access: ReturnType<typeof compile>, r: Req) => accessDeniedBy(access, r.caller, { method: r.method, path: r.path, headers: headersOf(r) });

describe("access rule fuzzing", () => {
  it("decides exactly as the reference model, for random rules, modes and requests", () => {
    fc.assert(fc.property(fc.array(rule, { maxLength: 6 }), fc.array(rule, { maxLength: 6 }), fc.constantFrom("permissive", "strict"), fc.array(request, { minLength: 1, maxLength: 20 }),
      (allow, deny, mode, requests) => {
        const access = compile(allow, deny, mode);
        for (const r of requests) expect(decide(access, r)).toBe(reference(allow, deny, mode, r));
      }), { numRuns: 300 });
  });

  it("deny wins over allow: a request a deny rule matches is refused by the first such rule, whatever allows it", () => {
    fc.assert(fc.property(fc.array(rule, { maxLength: 6 }), fc.array(rule, { minLength: 1, maxLength: 6 }), fc.constantFrom("permissive", "strict"), request,
      (allow, deny, mode, r) => {
        const first = deny.findIndex((d) => holds(d, r));
        fc.pre(first >= 0);
        // Even with a rule that allows everything first in line.
        expect(decide(compile([{}, ...allow], deny, mode), r)).toBe(`api/deny[${first}]`);
      }), { numRuns: 300 });
  });

  it("strict with no allow rule refuses every request", () => {
    fc.assert(fc.property(fc.array(rule, { maxLength: 6 }), request, (deny, r) => {
      expect(decide(compile([], deny, "strict"), r)).toBeDefined();
    }), { numRuns: 300 });
  });

  it("a rule never matches a caller it does not name", () => {
    fc.assert(fc.property(rule, request, (named, r) => {
      fc.pre(named.from !== undefined && !named.from.includes("*") && !named.from.includes(r.caller));
      expect(decide(compile([], [named], "permissive"), r)).toBeUndefined(); // the deny rule does not touch it
      expect(decide(compile([named], [], "permissive"), r)).toBe("api/(default-deny)"); // nor does the allow rule admit it
    }), { numRuns: 300 });
  });
});
