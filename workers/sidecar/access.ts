// Access control, after the caller is identified and before routing: deny rules first (the first
// that matches refuses), then, when the service has allow rules or the mesh is strict, a request
// no allow rule admits is refused. Matchers are prepared once per snapshot (`prepareAccess`); a
// request costs one pass over the rules that may apply, and nothing is allocated for a request
// whose path needs no normalising.
import { compileAnchoredRegex } from "../../policies/regex.ts";
import type { CompiledAccess, CompiledAccessRule, CompiledStringMatch, CompiledValueMatch } from "../../policies/snapshot.ts";
import { stringMatches, valueMatches, type PreparedValueMatch } from "./string-match.ts";

interface PreparedRule {
  id: string;
  callers: ReadonlySet<string> | undefined;
  methods: ReadonlySet<string> | undefined;
  paths: PreparedValueMatch[];
  headers: PreparedValueMatch[];
}

export interface PreparedAccess {
  deny: PreparedRule[];
  allow: PreparedRule[];
  defaultDeny: boolean;
  defaultDenyId: string;
  /** Whether any rule looks at the path, so others skip normalising it. */
  needsPath: boolean;
}

/** What access rules look at; the sidecar's route-matching facts fit as they are. */
export interface AccessRequest {
  method: string;
  /** URL path without the query string, as `new URL()` gives it (dot segments resolved). */
  path: string;
  headers: Headers;
}

function prepareValue(m: CompiledStringMatch | CompiledValueMatch): PreparedValueMatch {
  return { name: "name" in m ? m.name : "", kind: m.kind, value: m.value, regex: m.kind === "regex" ? compileAnchoredRegex(m.value) : undefined };
}

function prepareRule(rule: CompiledAccessRule): PreparedRule {
  return {
    id: rule.id,
    callers: rule.callers ? new Set(rule.callers) : undefined,
    methods: rule.methods ? new Set(rule.methods) : undefined,
    paths: rule.paths.map(prepareValue),
    headers: rule.headers.map(prepareValue),
  };
}

/** What a snapshot compiled before access policy existed gets: no rules, nothing refused. */
export const NO_ACCESS_RULES: PreparedAccess = { deny: [], allow: [], defaultDeny: false, defaultDenyId: "", needsPath: false };

/** Whether any rule could refuse a request, so a service without rules skips the stage. */
export function hasAccessRules(access: PreparedAccess): boolean {
  return access.defaultDeny || access.deny.length > 0;
}

/** Once per snapshot: regexes compiled, caller and method lists turned into sets. */
export function prepareAccess(access: CompiledAccess): PreparedAccess {
  const deny = access.deny.map(prepareRule);
  const allow = access.allow.map(prepareRule);
  return {
    deny,
    allow,
    defaultDeny: access.defaultDeny,
    defaultDenyId: access.defaultDenyId,
    needsPath: [...deny, ...allow].some((r) => r.paths.length > 0),
  };
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The path rules are matched against: percent-encoded unreserved characters decoded (RFC 3986
 * §6.2.2.2 says they are the same path, and origins decode them) and repeated slashes merged, so
 * `/%61dmin` and `//admin` cannot slip past a rule about `/admin`. Other escapes (such as %2F)
 * stay encoded, upper-cased: an origin does not read them as separators. Returns the input itself
 * when there is nothing to do.
 */
export function normalizePathForAccess(path: string): string {
  if (path.indexOf("%") < 0 && path.indexOf("//") < 0) return path;
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === "%" && i + 2 < path.length) {
      const high = hexValue(path.charCodeAt(i + 1));
      const low = hexValue(path.charCodeAt(i + 2));
      if (high >= 0 && low >= 0) {
        const decoded = String.fromCharCode(high * 16 + low);
        out += UNRESERVED.test(decoded) ? decoded : `%${path.slice(i + 1, i + 3).toUpperCase()}`;
        i += 2;
        continue;
      }
    }
    if (c === "/" && out.endsWith("/")) continue;
    out += c;
  }
  return out;
}

function methodMatches(methods: ReadonlySet<string>, method: string): boolean {
  if (methods.has(method)) return true;
  // Fetch upper-cases only the standard methods but PATCH; "patch" must not slip past a rule.
  const upper = method.toUpperCase();
  return upper !== method && methods.has(upper);
}

function ruleHolds(rule: PreparedRule, caller: string, req: AccessRequest, path: string): boolean {
  if (rule.callers && !rule.callers.has(caller)) return false;
  if (rule.methods && !methodMatches(rule.methods, req.method)) return false;
  if (rule.paths.length > 0) {
    let any = false;
    for (const p of rule.paths) {
      if (stringMatches(p, path)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  for (const h of rule.headers) if (!valueMatches(h, req.headers.get(h.name))) return false;
  return true;
}

/**
 * Undefined when `caller` (a verified name or "external") may make this request; otherwise the id
 * of the rule that refuses it ("<service>/<rule>"), for x-edgemesh-denied-by.
 */
export function accessDeniedBy(access: PreparedAccess, caller: string, req: AccessRequest): string | undefined {
  const path = access.needsPath ? normalizePathForAccess(req.path) : req.path;
  for (const rule of access.deny) if (ruleHolds(rule, caller, req, path)) return rule.id;
  if (!access.defaultDeny) return undefined;
  for (const rule of access.allow) if (ruleHolds(rule, caller, req, path)) return undefined;
  return access.defaultDenyId;
}

/** The 403 a refused request gets. */
export function accessDeniedResponse(ruleId: string, caller: string): Response {
  return new Response(JSON.stringify({ error: "access-denied", rule: ruleId, caller }, null, 2) + "\n", {
    status: 403,
    headers: { "content-type": "application/json", "x-edgemesh-denied-by": ruleId, "x-edgemesh-generated": "1" },
  });
}
