// SMI (Service Mesh Interface) into the policy: TrafficSplit (split.smi-spec.io v1alpha1-v1alpha4)
// as a weighted route of its root service, narrowed by the HTTPRouteGroups it names
// (specs.smi-spec.io), with everything else going to the root service as SMI prescribes; and
// TrafficTarget (access.smi-spec.io v1alpha1-v1alpha3) as access allow rules of its destination,
// which then admits nothing else (SMI access is deny by default). ServiceAccounts become mesh
// callers as service-accounts.ts says.
import { AccessHeaderMatch, AccessPathMatch } from "../access.ts";
import { HTTP_METHODS, PORT_REASON, validRegex } from "./common.ts";
import { integerWeights, parseQuantity, serviceFromHost } from "./kube.ts";
import type { Field, Manifest } from "./manifest.ts";
import type { AccessRuleInput, DestinationInput, HeaderMatchInput, ImportPlan, MatchInput, RouteInput } from "./plan.ts";
import { callerForAccount, serviceAccountOf, serviceForAccount, type ServiceAccountMap } from "./service-accounts.ts";

export const SMI_SPLIT_GROUP = "split.smi-spec.io";
export const SMI_SPECS_GROUP = "specs.smi-spec.io";
export const SMI_ACCESS_GROUP = "access.smi-spec.io";

/** HTTPRouteGroups of the input by name, read when a split or target names them. */
export interface RouteGroups {
  byName: Map<string, Manifest>;
  referenced: Set<string>;
}

interface GroupMatch {
  name: string;
  match: MatchInput;
  /** Where the regexes were written, to report what access rules (RE2) refuse there. */
  pathField?: Field;
  headerFields: Record<string, Field>;
}

/**
 * The matches of an HTTPRouteGroup (all, or those named), translated; undefined when it is
 * missing or broken. A match whose methods are all ones edgemesh does not route can match no
 * request, so it is left out (with a warning) rather than turned into a match on any method.
 */
function groupMatches(groups: RouteGroups, name: string, only: string[] | undefined, from: Field): GroupMatch[] | undefined {
  const group = groups.byName.get(name);
  groups.referenced.add(name);
  if (!group) {
    from.error(`HTTPRouteGroup "${name}" is not in the input; include it`);
    return undefined;
  }
  const spec = group.root().object("spec");
  // v1alpha1 put matches at the top level.
  const list = spec ? spec.list("matches") : group.root().list("matches");
  const out: GroupMatch[] = [];
  const seen = new Set<string>();
  for (const f of list) {
    f.use();
    const matchName = f.string("name") ?? "";
    seen.add(matchName);
    if (only && !only.includes(matchName)) continue;
    const match: MatchInput = {};
    const found: GroupMatch = { name: matchName, match, headerFields: {} };
    const pathRegex = f.string("pathRegex");
    if (pathRegex !== undefined && !validRegex(pathRegex, f.at("pathRegex"))) return undefined;
    if (pathRegex !== undefined && pathRegex !== "" && pathRegex !== ".*" && pathRegex !== "/.*") {
      // SMI anchors pathRegex at the start only; the policy's regexes match the whole path.
      match.path = { regex: `(?:${pathRegex}).*` };
      found.pathField = f.at("pathRegex");
    }
    const methods = f.strings("methods").map((x) => x.toUpperCase());
    if (methods.length > 0 && !methods.includes("*")) {
      const known = methods.filter((x): x is (typeof HTTP_METHODS)[number] => (HTTP_METHODS as readonly string[]).includes(x));
      const unknown = methods.filter((x) => !known.includes(x as never));
      if (known.length === 0) {
        f.at("methods").warn(`match "${matchName}" names only methods edgemesh does not route (${unknown.join(", ")}): it can match no request and is left out`);
        continue;
      }
      if (unknown.length > 0) f.at("methods").warn(`methods edgemesh does not route were left out: ${unknown.join(", ")}`);
      match.methods = known;
    }
    const headers: Record<string, HeaderMatchInput> = {};
    const headerField = f.at("headers");
    if (headerField.present) {
      // A map in v1alpha4, a list of one-entry maps before.
      const maps = Array.isArray(headerField.value) ? f.list("headers") : [headerField];
      for (const map of maps) {
        map.use();
        if (typeof map.value !== "object" || map.value === null || Array.isArray(map.value)) {
          map.error("expected a map of header name to regular expression");
          continue;
        }
        for (const header of Object.keys(map.value)) {
          const value = map.string(header);
          if (value === undefined || !validRegex(value, map.at(header))) continue;
          headers[header.toLowerCase()] = { regex: value };
          found.headerFields[header.toLowerCase()] = map.at(header);
        }
      }
    }
    if (Object.keys(headers).length > 0) match.headers = headers;
    out.push(found);
  }
  if (only) for (const n of only) if (!seen.has(n)) from.error(`HTTPRouteGroup "${name}" has no match named "${n}"`);
  return out;
}

export function translateTrafficSplit(m: Manifest, plan: ImportPlan, groups: RouteGroups): void {
  const spec = m.root().object("spec");
  if (!spec) {
    m.error(["spec"], "a TrafficSplit needs a spec");
    return;
  }
  const rootName = spec.string("service") ?? "";
  const root = serviceFromHost(rootName, m.namespace);
  if ("problem" in root) {
    m.ignoreAll(root.problem);
    return;
  }
  const service = root.service;

  const backends = spec.list("backends");
  const raw: { subset: string; weight: number }[] = [];
  for (const b of backends) {
    b.use();
    const name = b.string("service") ?? "";
    const target = serviceFromHost(name, m.namespace);
    const weightField = b.at("weight");
    weightField.use();
    const weight = parseQuantity(weightField.value ?? 0);
    if (weight === undefined) {
      weightField.error(`not a weight: ${JSON.stringify(weightField.value)}; give a whole number (or a quantity such as "500m")`);
      return;
    }
    if ("problem" in target) {
      b.at("service").error(target.problem);
      return;
    }
    const subset = plan.backendSubset(service, target.service, m, b.at("service"));
    if (subset === undefined) return;
    raw.push({ subset, weight });
  }
  if (raw.length === 0) {
    spec.error("a TrafficSplit needs at least one backend");
    return;
  }
  const weights = integerWeights(raw.map((r) => r.weight));
  const to: DestinationInput[] = raw.map((r, i) => ({ subset: r.subset, weight: Math.min(1_000_000, weights[i]!) }));
  const route: RouteInput = { name: m.name || `${service}-split`, to };

  const refs = spec.list("matches");
  let narrowed = false;
  if (refs.length > 0) {
    const matches: MatchInput[] = [];
    for (const ref of refs) {
      ref.use();
      const kind = ref.string("kind");
      ref.string("apiGroup");
      const name = ref.string("name") ?? "";
      if (kind !== "HTTPRouteGroup") {
        ref.ignore(`only HTTPRouteGroup matches narrow a split (got ${kind ?? "no kind"}); this one is left out`);
        continue;
      }
      const found = groupMatches(groups, name, undefined, ref);
      if (!found) return;
      narrowed = true;
      matches.push(...found.map((g) => g.match));
    }
    if (matches.length > 0) route.match = matches;
  }
  const plannedService = plan.service(service);
  if (narrowed && !route.match) {
    // Without this, a route with no match would take every request.
    spec.at("matches").warn("the route groups this split names match no request edgemesh routes: the split is left out, and every request goes to the root service");
  } else plannedService.routes.push({ route, from: m });
  if ((narrowed || route.match) && plannedService.fallbacks.length === 0) {
    // SMI: requests the route groups do not match go to the root service, i.e. every endpoint.
    plannedService.fallbacks.push({ route: { name: `${service}-unmatched`, to: [{ subset: plan.allEndpointsSubset(service, m, spec) }] }, from: m });
  }
}

/** A route group match as the conditions of an access rule; undefined (reported) when RE2 refuses a regex. */
function accessConditions(g: GroupMatch): Pick<AccessRuleInput, "paths" | "methods" | "headers"> | undefined {
  const out: Pick<AccessRuleInput, "paths" | "methods" | "headers"> = {};
  let ok = true;
  // Access rules run on RE2 (linear time, for requests from anyone): check with the schema's own check.
  const check = (schema: typeof AccessPathMatch | typeof AccessHeaderMatch, regex: string, field: Field | undefined) => {
    const parsed = schema.safeParse({ regex });
    if (!parsed.success) {
      ok = false;
      field?.error(`in an access rule (TrafficTarget): ${parsed.error.issues[0]!.message}`);
    }
  };
  if (g.match.path?.regex !== undefined) {
    check(AccessPathMatch, g.match.path.regex, g.pathField);
    out.paths = [{ regex: g.match.path.regex }];
  }
  if (g.match.methods) out.methods = g.match.methods;
  for (const [name, m] of Object.entries(g.match.headers ?? {})) {
    if (m.regex === undefined) continue;
    check(AccessHeaderMatch, m.regex, g.headerFields[name]);
    (out.headers ??= {})[name] = { regex: m.regex };
  }
  return ok ? out : undefined;
}

/**
 * A TrafficTarget into allow rules of its destination service: one per route group match (or per
 * layer-4 route) it names, from every source. The destination then admits only what its targets
 * allow, as SMI prescribes, even when no rule could be translated.
 */
export function translateTrafficTarget(m: Manifest, plan: ImportPlan, groups: RouteGroups, accounts: ServiceAccountMap): void {
  // v1alpha1 has destination, specs and sources at the top level.
  const v1alpha1 = m.apiVersion.endsWith("/v1alpha1");
  const spec = v1alpha1 ? m.root() : m.root().object("spec");
  if (!spec) {
    m.error(["spec"], "a TrafficTarget needs a spec");
    return;
  }
  const destField = spec.object("destination");
  if (!destField) {
    spec.error("a TrafficTarget needs a destination (the ServiceAccount of the service it admits calls to)");
    return;
  }
  destField.at("port").ignore(PORT_REASON);
  const destinationAccount = serviceAccountOf(destField, m.namespace);
  const service = destinationAccount && serviceForAccount(destinationAccount, accounts, plan, destField);
  if (service === undefined) return;
  const access = plan.restrictAccess(service, m);

  const sources = spec.list("sources");
  const callers: string[] = [];
  for (const s of sources) {
    s.use();
    const account = serviceAccountOf(s, m.namespace);
    const caller = account && callerForAccount(account, accounts, plan, s);
    if (caller !== undefined && !callers.includes(caller)) callers.push(caller);
  }
  const rules = spec.list(v1alpha1 ? "specs" : "rules");
  if (sources.length === 0 || rules.length === 0) {
    spec.warn(`this TrafficTarget names no ${sources.length === 0 ? "source" : "rule"}, so it admits no call to "${service}"`);
    return;
  }
  // A source that stands for no caller is an error already; the others keep their rules.
  if (callers.length === 0) return;
  for (const rule of rules) {
    rule.use();
    const kind = rule.string("kind");
    const name = rule.string("name") ?? "";
    if (kind === "HTTPRouteGroup") {
      const only = rule.at("matches").present ? rule.strings("matches") : undefined;
      for (const g of groupMatches(groups, name, only, rule) ?? []) {
        const conditions = accessConditions(g);
        if (conditions) access.allow.push({ rule: { name: `${m.name}-${g.name || name}`, from: callers, ...conditions }, from: m });
      }
    } else if (kind === "TCPRoute") {
      // Layer 4 admits every request on the route's ports, and a service has one HTTP entry.
      access.allow.push({ rule: { name: `${m.name}-${name}`, from: callers }, from: m });
    } else if (kind === "UDPRoute") {
      rule.ignore(`edgemesh carries HTTP only: a UDPRoute admits nothing to "${service}" here`);
    } else {
      rule.at("kind").error(`unknown rule kind ${JSON.stringify(kind ?? null)}; a TrafficTarget rule names an HTTPRouteGroup or a TCPRoute`);
    }
  }
}

/** SMI kinds read only when something names them, or with nothing to translate. */
export const SMI_PASSIVE_REASONS: Record<string, string> = {
  HTTPRouteGroup: "not named by any TrafficSplit or TrafficTarget of the input",
  TCPRoute: "layer-4 routes are not imported: edgemesh routes HTTP (a TrafficTarget rule naming a TCPRoute admits its sources to the whole service: ports do not apply)",
  UDPRoute: "layer-4 routes are not imported: edgemesh routes HTTP",
  IdentityBinding: "identities come from a binding's caller props or mesh tokens; map ServiceAccounts to them with --service-account (?serviceAccount=)",
};
