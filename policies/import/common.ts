// Pieces the translators share: string matches, methods, and the prefix a path replacement needs.
import { matchedPathPrefix } from "../filters.ts";
import type { Field } from "./manifest.ts";
import type { MatchInput, RouteInput, StringMatchInput } from "./plan.ts";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const PORT_REASON = "an edgemesh service has one HTTP entry (its sidecar); ports do not apply";
export const NAMESPACE_REASON = "edgemesh has one namespace per mesh: services are named without their namespace";

/** Checks a regular expression the way the policy will (JavaScript syntax); reports it when broken. */
export function validRegex(source: string, field: Field): boolean {
  try {
    new RegExp(source);
    return true;
  } catch (err) {
    field.error(`not a valid regular expression: ${(err as Error).message}`);
    return false;
  }
}

/** An Istio-style { exact | prefix | regex } object; undefined (reported) when malformed. */
export function stringMatch(field: Field): StringMatchInput | undefined {
  const exact = field.string("exact");
  const prefix = field.string("prefix");
  const regex = field.string("regex");
  const given = [exact, prefix, regex].filter((v) => v !== undefined).length;
  if (given !== 1) {
    field.error(`give exactly one of exact, prefix or regex (got ${given})`);
    return undefined;
  }
  if (exact !== undefined) return { exact };
  if (prefix !== undefined) return prefix === "" ? { regex: ".*" } : { prefix };
  return validRegex(regex!, field) ? { regex: regex! } : undefined;
}

/**
 * The methods a method match admits. A prefix or regex match is turned into the list of standard
 * methods it matches, which is exactly what it would admit of requests edgemesh can route.
 */
export function methodsOf(m: StringMatchInput, field: Field): HttpMethod[] | undefined {
  let test: (method: string) => boolean;
  if (m.exact !== undefined) test = (x) => x === m.exact!.toUpperCase();
  else if (m.prefix !== undefined) test = (x) => x.startsWith(m.prefix!.toUpperCase());
  else {
    const re = new RegExp(`^(?:${m.regex})$`);
    test = (x) => re.test(x);
  }
  const methods = HTTP_METHODS.filter(test);
  if (methods.length === 0) {
    field.error(`matches none of the methods edgemesh routes (${HTTP_METHODS.join(", ")})`);
    return undefined;
  }
  return methods;
}

/**
 * A route whose rewrite or redirect replaces the matched path prefix needs every match on one
 * prefix. When its matches have different prefixes it becomes one route per match; when it has
 * no match, a match on prefix "/" (every request) is added. Undefined when some match does not
 * test the path on a prefix at all.
 */
export function splitForPrefixReplacement(route: RouteInput): RouteInput[] | undefined {
  const replaces = route.rewrite?.path?.replacePrefixMatch !== undefined || route.redirect?.path?.replacePrefixMatch !== undefined;
  if (!replaces) return [route];
  const matches: MatchInput[] = route.match && route.match.length > 0 ? route.match : [{ path: { prefix: "/" } }];
  const withPrefix = matches.map((m) => (m.path === undefined ? { ...m, path: { prefix: "/" } } : m));
  if (withPrefix.some((m) => m.path!.prefix === undefined && m.path!.exact === undefined)) return undefined;
  if (!("problem" in matchedPathPrefix(withPrefix))) return [{ ...route, match: withPrefix }];
  return withPrefix.map((m, j) => ({ ...route, name: `${route.name}-m${j}`, match: [m] }));
}
