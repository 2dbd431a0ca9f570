// What Gateway API HTTPRoute (gateway.ts) and GRPCRoute (grpcroute.ts) share in their mesh form
// (GAMMA): Service parents, Service backends as subsets of the parent, header matches, the
// filters both route kinds have (header modifiers, mirror, ExtensionRef), the tie-breaks of
// their precedence, and placing each service's ranked routes into the plan.
import { NAMESPACE_REASON, PORT_REASON, validRegex } from "./common.ts";
import { serviceFromHost } from "./kube.ts";
import type { Field, Manifest } from "./manifest.ts";
import { headerModifier, type DestinationInput, type HeaderMatchInput, type HeaderModifierInput, type ImportPlan, type PlannedRoute, type RouteInput } from "./plan.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

/** Where a route resource stands among the others when their rules tie. */
export interface RouteOrder {
  /** `metadata.creationTimestamp`, "" when absent. */
  created: string;
  namespacedName: string;
  rule: number;
  match: number;
}

export interface RankedRoute<P extends RouteOrder> extends PlannedRoute {
  rank: P;
}

/** A route kind's routes per parent service, ordered once every resource of that kind is read. */
export type RankedRoutes<P extends RouteOrder> = Map<string, RankedRoute<P>[]>;

/**
 * The Gateway API's last tie-breaks, shared by every route kind: the oldest route (one without a
 * creation time is not known to be older, so it comes after those with one), then namespace/name,
 * then rule and match order.
 */
export function compareRouteOrder(a: RouteOrder, b: RouteOrder): number {
  if (a.created !== b.created) {
    if (a.created === "") return 1;
    if (b.created === "") return -1;
    return a.created < b.created ? -1 : 1;
  }
  if (a.namespacedName !== b.namespacedName) return a.namespacedName < b.namespacedName ? -1 : 1;
  return a.rule - b.rule || a.match - b.match;
}

/** The creation time and namespace/name of a route resource, for `RouteOrder`. */
function routeOrigin(m: Manifest): Pick<RouteOrder, "created" | "namespacedName"> {
  const metadata = m.value.metadata as Record<string, unknown> | undefined;
  return { created: typeof metadata?.creationTimestamp === "string" ? metadata.creationTimestamp : "", namespacedName: `${m.namespace ?? ""}/${m.name}` };
}

/**
 * The mesh services a route attaches to: its parentRefs of kind Service. Gateway parents are
 * listed as ignored; a route with no Service parent is left out whole (empty answer).
 */
function serviceParents(m: Manifest, spec: Field): string[] {
  const parents: string[] = [];
  for (const p of spec.list("parentRefs")) {
    p.use();
    const kind = p.string("kind") ?? "Gateway";
    // The group defaults to the Gateway API's, which has no kind Service: an omitted group with
    // kind Service can only mean the core one.
    const group = p.string("group") ?? (kind === "Service" ? "" : GATEWAY_GROUP);
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
  if (parents.length === 0) m.ignoreAll(`no parentRef of kind Service: only the mesh form of ${m.kind} (GAMMA) is imported`);
  spec.at("hostnames").ignore("a mesh route applies to every request to its Service; hostnames do not apply");
  return parents;
}

/** Header (or query parameter) matches, Exact or RegularExpression; of repeated names the first wins. */
export function valueMatches(list: Field[], kindOf: string): Record<string, HeaderMatchInput> {
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

/** A backendRef's Service name, or undefined (listed as ignored) when it is not a Service. */
export function backendService(b: Field): string | undefined {
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

type RouteAction = Omit<RouteInput, "name">;

function mirrorFilter(f: Field, action: RouteAction, service: string, m: Manifest, plan: ImportPlan): void {
  if (action.mirror) {
    f.ignore("edgemesh mirrors each route to one target; only the first RequestMirror is kept");
    return;
  }
  const r = f.object("requestMirror");
  const ref = r?.object("backendRef");
  if (!r || !ref) return;
  const target = backendService(ref);
  if (target === undefined) return;
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
}

/**
 * Reads a rule's filters into `action`. The filters every route kind has are handled here;
 * `routeKindFilter` handles the kind's own (HTTPRoute's redirect, rewrite, …) and answers false
 * for a type it does not know. A second filter of one type (but RequestMirror) is listed as
 * ignored, as the Gateway API allows one.
 */
export function ruleFilters(rule: Field, action: RouteAction, service: string, m: Manifest, plan: ImportPlan, routeKindFilter: (type: string, f: Field) => boolean): void {
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
      const body = f.object(type === "RequestHeaderModifier" ? "requestHeaderModifier" : "responseHeaderModifier");
      const modifier = body && gatewayHeaderModifier(body);
      if (modifier) action[type === "RequestHeaderModifier" ? "requestHeaders" : "responseHeaders"] = modifier;
    } else if (type === "RequestMirror") {
      mirrorFilter(f, action, service, m, plan);
    } else if (type === "ExtensionRef") {
      // The Gateway API forbids skipping a custom filter it cannot resolve (its requests must fail),
      // and edgemesh has none to resolve it to.
      f.useWhole();
      f.error("ExtensionRef filters are implementation-specific and edgemesh has none; the Gateway API forbids skipping one, so remove it (or express it in the policy) to import this rule");
    } else if (!routeKindFilter(type, f)) {
      f.at("type").error(`unknown filter type "${type}"`);
    }
  }
}

/**
 * A rule's backendRefs as destinations (weights default to 1), with their header modifier
 * filters. Undefined when a backend stands for no subset (reported); backends of other kinds are
 * left out (listed as ignored).
 */
export function backendDestinations(rule: Field, service: string, m: Manifest, plan: ImportPlan): DestinationInput[] | undefined {
  const to: DestinationInput[] = [];
  for (const b of rule.list("backendRefs")) {
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
  return to;
}

/** Whether a rule's destinations can take no request at all (none, or all of weight 0). */
export const noUsableBackend = (to: DestinationInput[]): boolean => to.length === 0 || to.every((d) => d.weight === 0);

/** Drops what a route answering by itself (redirect, direct response) must not have. */
export function withoutForwarding(action: RouteAction): RouteAction {
  for (const key of ["requestHeaders", "rewrite", "mirror", "to"] as const) delete action[key];
  return action;
}

/**
 * What a route kind makes of one (rule, match), given the route with the rule's action and its
 * name: the routes (usually one) and their precedence; undefined when the match is broken
 * (reported).
 */
export type MatchTranslator<P extends RouteOrder> = (
  match: Field | undefined,
  route: RouteInput,
  rule: Field,
) => { routes: RouteInput[]; rank: Omit<P, keyof RouteOrder> } | undefined;

/**
 * A route resource's rules, for each Service parent: each (rule, match) becomes routes named
 * `<route>-<rule name or rule<i>>[-m<j>]`, collected with their precedence in `routes`.
 */
export function translateRouteRules<P extends RouteOrder>(
  m: Manifest,
  routes: RankedRoutes<P>,
  ruleAction: (rule: Field, service: string) => RouteAction | undefined,
  translateMatch: MatchTranslator<P>,
): void {
  const spec = m.root().object("spec");
  if (!spec) {
    m.error(["spec"], `a ${m.kind} needs a spec`);
    return;
  }
  const parents = serviceParents(m, spec);
  const origin = routeOrigin(m);
  const rules = spec.list("rules");
  for (const service of parents) {
    const list = routes.get(service) ?? [];
    routes.set(service, list);
    rules.forEach((rule, i) => {
      rule.use();
      const ruleName = rule.string("name");
      const action = ruleAction(rule, service);
      if (!action) return;
      const matchFields = rule.list("matches");
      const matches = matchFields.length > 0 ? matchFields.map((f) => (f.use(), f)) : [undefined];
      matches.forEach((mf, j) => {
        const name = `${m.name}-${ruleName ?? `rule${i}`}${matches.length > 1 ? `-m${j}` : ""}`;
        const translated = translateMatch(mf, { name, ...action }, rule);
        if (!translated) return;
        const rank = { ...translated.rank, ...origin, rule: i, match: j } as P;
        for (const route of translated.routes) list.push({ route, from: m, rank });
      });
    });
  }
}

/**
 * Appends every service's routes of one kind to the plan in that kind's precedence order, after
 * the routes the service already has (with a warning naming where those came from).
 */
export function placeRankedRoutes<P extends RouteOrder>(routes: RankedRoutes<P>, plan: ImportPlan, compare: (a: P, b: P) => number): void {
  for (const [service, list] of routes) {
    if (list.length === 0) continue;
    const planned = plan.service(service).routes;
    const kind = list[0]!.from.kind;
    if (planned.length > 0) {
      const earlier = planned[0]!.from;
      const why = earlier.kind === "GRPCRoute" && kind === "HTTPRoute" ? ": a GRPCRoute wins over an HTTPRoute on the same Service, so the RPCs its matches take never reach the HTTPRoute" : "";
      list[0]!.from.warn([], `service "${service}" also has routes from ${earlier.resource}; the ${kind} routes come after them${why}`);
    }
    planned.push(...[...list].sort((a, b) => compare(a.rank, b.rank)));
  }
}
