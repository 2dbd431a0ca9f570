// Gateway API HTTPRoute in its mesh form (GAMMA: parentRefs of kind Service;
// gateway.networking.k8s.io v1, v1beta1, v1alpha2) into the policy. Each (rule, match) becomes a
// route, and the routes of a service are ordered by the Gateway API's precedence across every
// HTTPRoute attached to it: exact path, then regular expression, then the longest prefix; then a
// method match, more header matches, more query matches; then the oldest route, its
// namespace/name, and rule and match order. Filters map onto the routing vocabulary one to one.
import { REDIRECT_STATUS_CODES, trimTrailingSlash } from "../filters.ts";
import { HTTP_METHODS, NAMESPACE_REASON, PORT_REASON, splitForPrefixReplacement, validRegex } from "./common.ts";
import { durationField, serviceFromHost, timeoutWithin } from "./kube.ts";
import type { Field, Manifest } from "./manifest.ts";
import { headerModifier, type DestinationInput, type HeaderMatchInput, type HeaderModifierInput, type ImportPlan, type MatchInput, type PlannedRoute, type RouteInput } from "./plan.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";
export const GATEWAY_VERSIONS = ["v1", "v1beta1", "v1alpha2"];

/** How a (rule, match) ranks among all the routes of a service (smaller first). */
interface Precedence {
  /** 0 exact, 1 regular expression, 2 prefix. */
  pathKind: number;
  pathLength: number;
  hasMethod: boolean;
  headers: number;
  queries: number;
  created: string;
  namespacedName: string;
  rule: number;
  match: number;
}

export interface RankedRoute extends PlannedRoute {
  rank: Precedence;
}

/** HTTPRoute routes per parent service, ordered once every HTTPRoute has been read. */
export type GatewayRoutes = Map<string, RankedRoute[]>;

export function compareByPrecedence(a: Precedence, b: Precedence): number {
  return a.pathKind - b.pathKind
    || b.pathLength - a.pathLength
    || Number(b.hasMethod) - Number(a.hasMethod)
    || b.headers - a.headers
    || b.queries - a.queries
    || (a.created < b.created ? -1 : a.created > b.created ? 1 : 0)
    || (a.namespacedName < b.namespacedName ? -1 : a.namespacedName > b.namespacedName ? 1 : 0)
    || a.rule - b.rule
    || a.match - b.match;
}

function valueMatches(list: Field[], kindOf: string): Record<string, HeaderMatchInput> {
  const out: Record<string, HeaderMatchInput> = {};
  for (const f of list) {
    f.use();
    const type = f.string("type") ?? "Exact";
    const rawName = f.string("name") ?? "";
    const name = kindOf === "header" ? rawName.toLowerCase() : rawName;
    const value = f.string("value") ?? "";
    if (name in out) {
      f.ignore(`a second ${kindOf} match on "${rawName}": the Gateway API uses the first one`);
      continue;
    }
    if (type === "Exact") out[name] = { exact: value };
    else if (type === "RegularExpression") {
      if (validRegex(value, f.at("value"))) out[name] = { regex: value };
    } else f.at("type").error(`unknown ${kindOf} match type "${type}"; give Exact or RegularExpression`);
  }
  return out;
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

function gatewayHeaderModifier(f: Field): HeaderModifierInput | undefined {
  const pairs = (key: string): [string, string, Field][] =>
    f.list(key).flatMap((h) => {
      h.use();
      const name = h.string("name");
      const value = h.string("value");
      return name !== undefined && value !== undefined ? [[name, value, h.at("name")] as [string, string, Field]] : [];
    });
  const remove = f.list("remove").flatMap((r): [string, Field][] => (r.use(), typeof r.value === "string" ? [[r.value, r]] : []));
  return headerModifier(pairs("set"), pairs("add"), remove);
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

/** A backendRef's Service name, or undefined (reported) when it is not a Service. */
function backendService(b: Field): string | undefined {
  const kind = b.string("kind") ?? "Service";
  const group = b.string("group") ?? "";
  if (kind !== "Service" || (group !== "" && group !== "core")) {
    b.ignore(`only Service backends are mesh services (got ${group ? `${group}/` : ""}${kind}); this backend is left out`);
    return undefined;
  }
  b.at("namespace").ignore(NAMESPACE_REASON);
  b.at("port").ignore(PORT_REASON);
  const name = b.string("name") ?? "";
  const target = serviceFromHost(name, undefined);
  if ("problem" in target) {
    b.at("name").error(target.problem);
    return undefined;
  }
  return target.service;
}

/** The fields of a rule shared by all its matches, for one parent service. */
function ruleAction(rule: Field, service: string, m: Manifest, plan: ImportPlan): Omit<RouteInput, "name"> | undefined {
  const action: Omit<RouteInput, "name"> = {};
  const seen = new Set<string>();
  for (const f of rule.list("filters")) {
    f.use();
    const type = f.string("type") ?? "";
    if (seen.has(type) && type !== "RequestMirror") {
      f.ignore(`a second ${type} filter in one rule is not allowed by the Gateway API; the first is used`);
      continue;
    }
    seen.add(type);
    if (type === "RequestHeaderModifier" || type === "ResponseHeaderModifier") {
      const key = type === "RequestHeaderModifier" ? "requestHeaderModifier" : "responseHeaderModifier";
      const body = f.object(key);
      const modifier = body && gatewayHeaderModifier(body);
      if (modifier) action[type === "RequestHeaderModifier" ? "requestHeaders" : "responseHeaders"] = modifier;
    } else if (type === "RequestRedirect") {
      const r = f.object("requestRedirect");
      if (!r) continue;
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
      if (!r) continue;
      const rewrite: NonNullable<RouteInput["rewrite"]> = {};
      const hostname = r.string("hostname");
      if (hostname !== undefined) rewrite.hostname = hostname;
      const pathField = r.object("path");
      const path = pathField && pathModifier(pathField);
      if (path) rewrite.path = path;
      if (rewrite.hostname !== undefined || rewrite.path) action.rewrite = rewrite;
    } else if (type === "RequestMirror") {
      if (action.mirror) {
        f.ignore("edgemesh mirrors each route to one target; only the first RequestMirror is kept");
        continue;
      }
      const r = f.object("requestMirror");
      const ref = r?.object("backendRef");
      if (!r || !ref) continue;
      const target = backendService(ref);
      if (target === undefined) continue;
      let percent = 100;
      const p = r.number("percent");
      const fraction = r.object("fraction");
      if (p !== undefined) percent = p;
      else if (fraction) {
        const numerator = fraction.number("numerator") ?? 0;
        const denominator = fraction.number("denominator") ?? 100;
        percent = denominator > 0 ? (100 * numerator) / denominator : 0;
      }
      percent = Math.max(0, Math.min(100, percent));
      const subset = plan.backendSubset(service, target, m, ref.at("name"), true);
      if (subset !== undefined) action.mirror = { subset, percent };
      else if (plan.knownService(target)) action.mirror = { service: target, percent };
      else ref.at("name").error(`mirror target "${target}" is neither a subset of "${service}" nor a service of the mesh; define it in the base document or include its Kubernetes Service`);
    } else if (type === "CORS") {
      f.ignore("CORS is left to the service: edgemesh does not answer preflights");
    } else if (type === "ExtensionRef" || type === "ExternalAuth") {
      f.ignore(`${type} filters are implementation-specific; edgemesh has none`);
    } else {
      f.at("type").error(`unknown filter type "${type}"`);
    }
  }

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
    for (const key of ["requestHeaders", "rewrite", "mirror"] as const) delete action[key];
    return action;
  }
  const to: DestinationInput[] = [];
  for (const b of backendRefs) {
    b.use();
    const backend = backendService(b);
    if (backend === undefined) continue;
    const subset = plan.backendSubset(service, backend, m, b.at("name"));
    if (subset === undefined) return undefined;
    const destination: DestinationInput = { subset, weight: Math.min(1_000_000, Math.max(0, b.number("weight") ?? 1)) };
    const seenFilters = new Set<string>();
    for (const bf of b.list("filters")) {
      bf.use();
      const type = bf.string("type") ?? "";
      if ((type === "RequestHeaderModifier" || type === "ResponseHeaderModifier") && !seenFilters.has(type)) {
        seenFilters.add(type);
        const body = bf.object(type === "RequestHeaderModifier" ? "requestHeaderModifier" : "responseHeaderModifier");
        const modifier = body && gatewayHeaderModifier(body);
        if (modifier) destination[type === "RequestHeaderModifier" ? "requestHeaders" : "responseHeaders"] = modifier;
      } else bf.ignore(`edgemesh applies header modifiers per backend; a ${type || "typeless"} filter on a backend is left out`);
    }
    to.push(destination);
  }
  if (to.length === 0 || to.every((d) => d.weight === 0)) {
    // The Gateway API answers 500 when a rule has no (usable) backend.
    rule.warn(backendRefs.length === 0 ? "this rule has no backendRefs: the Gateway API answers such requests with 500, and so does the imported route" : "no backend of this rule can receive traffic: its requests are answered with 500");
    for (const key of ["requestHeaders", "rewrite", "mirror"] as const) delete action[key];
    action.directResponse = { status: 500, body: "no backend for this route\n" };
    return action;
  }
  action.to = to;
  return action;
}

export function translateHTTPRoute(m: Manifest, plan: ImportPlan, routes: GatewayRoutes): void {
  const spec = m.root().object("spec");
  if (!spec) {
    m.error(["spec"], "an HTTPRoute needs a spec");
    return;
  }
  const parents: string[] = [];
  for (const p of spec.list("parentRefs")) {
    p.use();
    const kind = p.string("kind") ?? "Gateway";
    const group = p.string("group") ?? GATEWAY_GROUP;
    if (kind !== "Service" || (group !== "" && group !== "core")) {
      p.ignore(`a ${kind} parent is north-south routing; edgemesh imports the mesh form (parentRefs of kind Service)`);
      continue;
    }
    p.at("namespace").ignore(NAMESPACE_REASON);
    p.at("port").ignore(`${PORT_REASON}: the route applies to every request to the service`);
    p.at("sectionName").ignore(PORT_REASON);
    const target = serviceFromHost(p.string("name") ?? "", undefined);
    if ("problem" in target) p.at("name").error(target.problem);
    else if (!parents.includes(target.service)) parents.push(target.service);
  }
  if (parents.length === 0) {
    m.ignoreAll("no parentRef of kind Service: only the mesh form of HTTPRoute (GAMMA) is imported");
    return;
  }
  spec.at("hostnames").ignore("a mesh route applies to every request to its Service; hostnames do not apply");
  const metadata = m.value.metadata as Record<string, unknown> | undefined;
  const created = typeof metadata?.creationTimestamp === "string" ? metadata.creationTimestamp : "";
  const namespacedName = `${m.namespace ?? ""}/${m.name}`;

  const rules = spec.list("rules");
  for (const service of parents) {
    const list = routes.get(service) ?? [];
    routes.set(service, list);
    rules.forEach((rule, i) => {
      rule.use();
      const ruleName = rule.string("name");
      const action = ruleAction(rule, service, m, plan);
      if (!action) return;
      const matchFields = rule.list("matches");
      const matches = matchFields.length > 0 ? matchFields.map((f) => (f.use(), f)) : [undefined];
      matches.forEach((mf, j) => {
        const translated = gatewayMatch(mf);
        if (!translated) return;
        const name = `${m.name}-${ruleName ?? `rule${i}`}${matches.length > 1 ? `-m${j}` : ""}`;
        const route: RouteInput = { name, ...action };
        if (translated.matches.some((x) => Object.keys(x).length > 0)) route.match = translated.matches;
        const { matches: _, ...rank } = translated;
        const split = splitForPrefixReplacement(route);
        if (!split) {
          rule.error("ReplacePrefixMatch replaces the matched path prefix, so it needs a PathPrefix match; this match tests the path with a regular expression");
          return;
        }
        for (const r of split) list.push({ route: r, from: m, rank: { ...rank, created, namespacedName, rule: i, match: j } });
      });
    });
  }
}

/** Appends every service's HTTPRoute routes to the plan in Gateway API precedence order. */
export function placeGatewayRoutes(routes: GatewayRoutes, plan: ImportPlan): void {
  for (const [service, list] of routes) {
    const planned = plan.service(service).routes;
    if (planned.length > 0 && list.length > 0) {
      list[0]!.from.warn([], `service "${service}" also has routes from ${planned[0]!.from.resource}; the HTTPRoute routes come after them`);
    }
    planned.push(...[...list].sort((a, b) => compareByPrecedence(a.rank, b.rank)));
  }
}
