// Route matching: the first route whose any-of matches holds wins. Regexes run on RE2 (linear time,
// see policies/regex.ts) and are compiled once per snapshot by `prepareRoutes`, never per request.
import { compilePolicyRegex, type PolicyRegex } from "../../policies/regex.ts";
import type { CompiledMatch, CompiledRoute, CompiledStringMatch, CompiledValueMatch } from "../../policies/snapshot.ts";
import { stringMatches, valueMatches, type PreparedStringMatch, type PreparedValueMatch } from "./string-match.ts";

interface PreparedMatch {
  path: PreparedStringMatch | undefined;
  methods: ReadonlySet<string> | undefined;
  headers: PreparedValueMatch[];
  query: PreparedValueMatch[];
}

export interface PreparedRoute {
  route: CompiledRoute;
  matches: PreparedMatch[];
  needsQuery: boolean;
}

function prepareString<T extends CompiledStringMatch | CompiledValueMatch>(m: T): T & { regex: PolicyRegex | undefined } {
  return { ...m, regex: m.kind === "regex" ? compilePolicyRegex(m.value) : undefined };
}

function prepareMatch(m: CompiledMatch): PreparedMatch {
  return {
    path: m.path ? prepareString(m.path) : undefined,
    methods: m.methods ? new Set(m.methods) : undefined,
    headers: m.headers.map(prepareString),
    query: m.query.map(prepareString),
  };
}

export function prepareRoutes(routes: CompiledRoute[]): PreparedRoute[] {
  return routes.map((route) => ({
    route,
    matches: route.matches.map(prepareMatch),
    needsQuery: route.matches.some((m) => m.query.length > 0),
  }));
}

export interface RequestFacts {
  method: string;
  /** URL path without the query string. */
  path: string;
  headers: Headers;
  /** Parsed lazily: only routes that match on query parameters pay for it. */
  query: () => URLSearchParams;
}

function matchHolds(m: PreparedMatch, req: RequestFacts): boolean {
  if (m.methods && !m.methods.has(req.method)) return false;
  if (m.path && !stringMatches(m.path, req.path)) return false;
  for (const h of m.headers) if (!valueMatches(h, req.headers.get(h.name))) return false;
  if (m.query.length > 0) {
    const params = req.query();
    for (const q of m.query) if (!valueMatches(q, params.get(q.name))) return false;
  }
  return true;
}

/** Returns the first route that matches, or undefined when none does. */
export function matchRoute(routes: PreparedRoute[], req: RequestFacts): PreparedRoute | undefined {
  for (const prepared of routes) {
    if (prepared.matches.length === 0) return prepared;
    for (const m of prepared.matches) if (matchHolds(m, req)) return prepared;
  }
  return undefined;
}
