// How a compiled string match holds: exact, prefix or regex on a value, and for a named header or
// query parameter also present or absent. Route matching (match.ts) and access rules (access.ts)
// match the same way; each compiles its regexes once per snapshot, never per request.
import type { PolicyRegex } from "../../policies/regex.ts";
import type { CompiledStringMatch, CompiledValueMatch } from "../../policies/snapshot.ts";

export interface PreparedStringMatch {
  kind: CompiledStringMatch["kind"];
  value: string;
  regex: PolicyRegex | undefined;
}

export interface PreparedValueMatch {
  name: string;
  kind: CompiledValueMatch["kind"];
  value: string;
  regex: PolicyRegex | undefined;
}

export function stringMatches(m: PreparedStringMatch | PreparedValueMatch, value: string): boolean {
  switch (m.kind) {
    case "exact":
      return value === m.value;
    case "prefix":
      return value.startsWith(m.value);
    default:
      return m.regex!.testExact(value);
  }
}

/** A named value's match; `value` is null when the request does not carry it. */
export function valueMatches(m: PreparedValueMatch, value: string | null): boolean {
  if (m.kind === "present") return value !== null;
  if (m.kind === "absent") return value === null;
  return value !== null && stringMatches(m, value);
}
