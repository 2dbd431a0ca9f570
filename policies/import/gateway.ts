// Gateway API HTTPRoute in its mesh form (GAMMA: parentRefs of kind Service;
// gateway.networking.k8s.io v1, v1beta1, v1alpha2) into the policy. Each (rule, match) becomes a
// route, and the routes of a service are ordered by the Gateway API's precedence across every
// HTTPRoute attached to it: exact path, then regular expression, then the longest prefix; then a
// method match, more header matches, more query matches; then the oldest route, its
// namespace/name, and rule and match order. Filters map onto the routing vocabulary one to one.
// What it shares with GRPCRoute (parents, backends, header matches, common filters) is in
// gateway-api.ts.
import { REDIRECT_STATUS_CODES, trimTrailingSlash } from "../filters.ts";
import { HTTP_METHODS, splitForPrefixReplacement, validRegex } from "./common.ts";
import {
  backendDestinations,
  compareRouteOrder,
  noUsableBackend,
  ruleFilters,
  translateRouteRules,
  valueMatches,
  withoutForwarding,
  type RankedRoutes,
  type RouteOrder,
} from "./gateway-api.ts";
import { durationField, timeoutWithin } from "./kube.ts";
import type { Field, Manifest } from "./manifest.ts";
import type { ImportPlan, MatchInput, RouteInput } from "./plan.ts";

export { GATEWAY_GROUP } from "./gateway-api.ts";
export const GATEWAY_VERSIONS = ["v1", "v1beta1", "v1alpha2"];

/** How a (rule, match) ranks among all the HTTPRoute routes of a service (smaller first). */
interface Precedence extends RouteOrder {
  /** 0 exact, 1 regular expression, 2 prefix. */
  pathKind: number;
  pathLength: number;
  hasMethod: boolean;
  headers: number;
  queries: number;
}

/** HTTPRoute routes per parent service, ordered once every HTTPRoute has been read. */
export type GatewayRoutes = RankedRoutes<Precedence>;

export function compareByPrecedence(a: Precedence, b: Precedence): number {
  return a.pathKind - b.pathKind
    || b.pathLength - a.pathLength
    || Number(b.hasMethod) - Number(a.hasMethod)
    || b.headers - a.headers
    || b.queries - a.queries
    || compareRouteOrder(a, b);
}

/** One HTTPRouteMatch: the policy's matches (two for a path prefix: "/x" and "/x/…") and its precedence. */
function gatewayMatch(f: Field | undefined): { matches: MatchInput[]; pathKind: number; pathLength: number; hasMethod: boolean; headers: number; queries: number } | undefined {
  const base: MatchInput = {};
  let pathKind = 2;
  let pathLength = 1;
  let paths: MatchInput["path"][] = [undefined];
  const path = f?.object("path");
  if (path) {
    const type = path.string("type") ?? "PathPrefix";
    const value = path.string("value") ?? "/";
    if (type === "Exact") {
      pathKind = 0;
      pathLength = value.length;
      paths = [{ exact: value }];
    } else if (type === "RegularExpression") {
      if (!validRegex(value, path.at("value"))) return undefined;
      pathKind = 1;
      pathLength = value.length;
      paths = [{ regex: value }];
    } else if (type === "PathPrefix") {
      // The Gateway API matches whole path elements: "/v2" holds for "/v2" and "/v2/x", not "/v2x".
      const prefix = trimTrailingSlash(value);
      pathLength = Math.max(1, prefix.length);
      paths = prefix === "" ? [undefined] : [{ exact: prefix }, { prefix: `${prefix}/` }];
    } else {
      path.at("type").error(`unknown path match type "${type}"; give Exact, PathPrefix or RegularExpression`);
      return undefined;
    }
  }
  const headers = valueMatches(f?.list("headers") ?? [], "header");
  if (Object.keys(headers).length > 0) base.headers = headers;
  const query = valueMatches(f?.list("queryParams") ?? [], "query parameter");
  if (Object.keys(query).length > 0) base.query = query;
  const method = f?.string("method");
  if (method !== undefined) {
    if (!(HTTP_METHODS as readonly string[]).includes(method)) {
      f!.at("method").error(`unknown method "${method}"; give one of ${HTTP_METHODS.join(", ")}`);
      return undefined;
    }
    base.methods = [method as (typeof HTTP_METHODS)[number]];
  }
  return {
    matches: paths.map((p) => (p === undefined ? { ...base } : { ...base, path: p })),
    pathKind,
    pathLength,
    hasMethod: method !== undefined,
    headers: Object.keys(headers).length,
    queries: Object.keys(query).length,
  };
}

function pathModifier(f: Field): { replaceFullPath: string } | { replacePrefixMatch: string } | undefined {
  const type = f.string("type");
  if (type === "ReplaceFullPath") {
    const path = f.string("replaceFullPath");
    if (path !== undefined) return { replaceFullPath: path };
  } else if (type === "ReplacePrefixMatch") {
    const prefix = f.string("replacePrefixMatch");
    if (prefix !== undefined) return { replacePrefixMatch: prefix };
  }
  f.error(`give type ReplaceFullPath with replaceFullPath, or ReplacePrefixMatch with replacePrefixMatch (got ${type ?? "no type"})`);
  return undefined;
}

/** HTTPRoute's own filters (those GRPCRoute lacks); false for a type it does not know. */
function httpRouteFilter(type: string, f: Field, action: Omit<RouteInput, "name">): boolean {
  if (type === "RequestRedirect") {
    const r = f.object("requestRedirect");
    if (!r) return true;
    const redirect: NonNullable<RouteInput["redirect"]> = {};
    const scheme = r.string("scheme");
    if (scheme === "http" || scheme === "https") redirect.scheme = scheme;
    else if (scheme !== undefined) r.at("scheme").error(`scheme "${scheme}": give http or https`);
    const hostname = r.string("hostname");
    if (hostname !== undefined) redirect.hostname = hostname;
    const port = r.number("port");
    if (port !== undefined) redirect.port = port;
    const pathField = r.object("path");
    const path = pathField && pathModifier(pathField);
    if (path) redirect.path = path;
    const status = r.number("statusCode");
    if (status !== undefined) {
      if ((REDIRECT_STATUS_CODES as readonly number[]).includes(status)) redirect.statusCode = status as (typeof REDIRECT_STATUS_CODES)[number];
      else r.at("statusCode").error(`status ${status}: give one of ${REDIRECT_STATUS_CODES.join(", ")}`);
    }
    action.redirect = redirect;
  } else if (type === "URLRewrite") {
    const r = f.object("urlRewrite");
    if (!r) return true;
    const rewrite: NonNullable<RouteInput["rewrite"]> = {};
    const hostname = r.string("hostname");
    if (hostname !== undefined) rewrite.hostname = hostname;
    const pathField = r.object("path");
    const path = pathField && pathModifier(pathField);
    if (path) rewrite.path = path;
    if (rewrite.hostname !== undefined || rewrite.path) action.rewrite = rewrite;
  } else if (type === "CORS") {
    f.ignore("CORS is left to the service: edgemesh does not answer preflights");
  } else if (type === "ExternalAuth") {
    // Skipping an authorization check would let through what it refuses.
    f.useWhole();
    f.error("ExternalAuth cannot be imported: edgemesh does not call external authorization services, and skipping the filter would admit what it refuses; express the rule as access policy (docs/security.md) and remove the filter");
  } else return false;
  return true;
}

/** The fields of a rule shared by all its matches, for one parent service. */
function ruleAction(rule: Field, service: string, m: Manifest, plan: ImportPlan): Omit<RouteInput, "name"> | undefined {
  const action: Omit<RouteInput, "name"> = {};
  ruleFilters(rule, action, service, m, plan, (type, f) => httpRouteFilter(type, f, action));

  const timeouts = rule.object("timeouts");
  if (timeouts) {
    const request = durationField(timeouts, "request");
    if (request !== undefined) action.timeoutMs = timeoutWithin(request, timeouts.at("request"), "timeouts.request");
    const backend = durationField(timeouts, "backendRequest");
    if (backend !== undefined) action.retries = { ...action.retries, perTryTimeoutMs: timeoutWithin(backend, timeouts.at("backendRequest"), "timeouts.backendRequest") };
  }
  const retry = rule.object("retry");
  if (retry) {
    const attempts = retry.number("attempts");
    const codes = retry.list("codes").flatMap((c) => (c.use(), typeof c.value === "number" ? [c.value] : []));
    const backoff = durationField(retry, "backoff");
    action.retries = {
      ...action.retries,
      ...(attempts !== undefined ? { attempts: Math.max(0, Math.min(10, attempts)) } : {}),
      // The Gateway API retries the listed statuses; connection errors are retried too.
      retryOn: ["connect-failure", "reset"],
      statusCodes: codes,
      ...(backoff !== undefined ? { backoff: { baseMs: Math.min(10_000, Math.max(1, backoff)), maxMs: Math.min(60_000, Math.max(250, backoff * 10)) } } : {}),
    };
  }
  rule.at("sessionPersistence").ignore("use the service's loadBalancer consistent-hash on a cookie or header for stickiness");

  const backendRefs = rule.list("backendRefs");
  if (action.redirect) {
    if (backendRefs.length > 0) rule.at("backendRefs").ignore("a redirect answers the request itself; its backends never receive it");
    return withoutForwarding(action);
  }
  const to = backendDestinations(rule, service, m, plan);
  if (to === undefined) return undefined;
  if (noUsableBackend(to)) {
    // The Gateway API answers 500 when a rule has no (usable) backend.
    rule.warn(backendRefs.length === 0 ? "this rule has no backendRefs: the Gateway API answers such requests with 500, and so does the imported route" : "no backend of this rule can receive traffic: its requests are answered with 500");
    return { ...withoutForwarding(action), directResponse: { status: 500, body: "no backend for this route\n" } };
  }
  action.to = to;
  return action;
}

export function translateHTTPRoute(m: Manifest, plan: ImportPlan, routes: GatewayRoutes): void {
  translateRouteRules(m, routes, (rule, service) => ruleAction(rule, service, m, plan), (mf, route, rule) => {
    const translated = gatewayMatch(mf);
    if (!translated) return undefined;
    if (translated.matches.some((x) => Object.keys(x).length > 0)) route.match = translated.matches;
    const { matches: _, ...rank } = translated;
    const split = splitForPrefixReplacement(route);
    if (!split) {
      rule.error("ReplacePrefixMatch replaces the matched path prefix, so it needs a PathPrefix match; this match tests the path with a regular expression");
      return undefined;
    }
    return { routes: split, rank };
  });
}
