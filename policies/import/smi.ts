// SMI (Service Mesh Interface) into the policy: TrafficSplit (split.smi-spec.io v1alpha1-v1alpha4)
// as a weighted route of its root service, narrowed by the HTTPRouteGroups it names
// (specs.smi-spec.io), with everything else going to the root service as SMI prescribes.
// TrafficTarget (access.smi-spec.io) is access control; the policy has no access section yet, so
// each of its rules is listed as not translated, with the rule spelled out.
import { HTTP_METHODS, PORT_REASON, validRegex } from "./common.ts";
import { integerWeights, parseQuantity, serviceFromHost } from "./kube.ts";
import type { Field, Manifest } from "./manifest.ts";
import type { DestinationInput, HeaderMatchInput, ImportPlan, MatchInput, RouteInput } from "./plan.ts";

export const SMI_SPLIT_GROUP = "split.smi-spec.io";
export const SMI_SPECS_GROUP = "specs.smi-spec.io";
export const SMI_ACCESS_GROUP = "access.smi-spec.io";

export const ACCESS_NOT_TRANSLATED = "access rule not translated (the policy schema has no access section yet)";

/** HTTPRouteGroups of the input by name, read when a split or target names them. */
export interface RouteGroups {
  byName: Map<string, Manifest>;
  referenced: Set<string>;
}

interface GroupMatch {
  name: string;
  match: MatchInput;
  /** Human-readable, for access rules. */
  text: string;
}

/** The matches of an HTTPRouteGroup (all, or those named), translated; undefined when it is missing. */
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
  for (const f of list) {
    f.use();
    const matchName = f.string("name") ?? "";
    if (only && !only.includes(matchName)) continue;
    const match: MatchInput = {};
    const text: string[] = [];
    const pathRegex = f.string("pathRegex");
    if (pathRegex !== undefined && !validRegex(pathRegex, f.at("pathRegex"))) return undefined;
    if (pathRegex !== undefined && pathRegex !== "" && pathRegex !== ".*" && pathRegex !== "/.*") {
      // SMI anchors pathRegex at the start only; the policy's regexes match the whole path.
      match.path = { regex: `(?:${pathRegex}).*` };
      text.push(`path ~ ^${pathRegex}`);
    }
    const methods = f.strings("methods").map((x) => x.toUpperCase());
    if (methods.length > 0 && !methods.includes("*")) {
      const known = methods.filter((x): x is (typeof HTTP_METHODS)[number] => (HTTP_METHODS as readonly string[]).includes(x));
      if (known.length < methods.length) f.at("methods").warn(`methods edgemesh does not route were left out: ${methods.filter((x) => !known.includes(x as never)).join(", ")}`);
      if (known.length > 0) match.methods = known;
      text.push(`methods ${known.join("|")}`);
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
        for (const name of Object.keys(map.value)) {
          const value = map.string(name);
          if (value === undefined || !validRegex(value, map.at(name))) continue;
          headers[name.toLowerCase()] = { regex: value };
          text.push(`${name} ~ ${value}`);
        }
      }
    }
    if (Object.keys(headers).length > 0) match.headers = headers;
    out.push({ name: matchName, match, text: text.length > 0 ? text.join(", ") : "any request" });
  }
  if (only) for (const n of only) if (!out.some((m) => m.name === n)) from.error(`HTTPRouteGroup "${name}" has no match named "${n}"`);
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
      matches.push(...found.map((g) => g.match));
    }
    if (matches.length > 0) route.match = matches;
  }
  const plannedService = plan.service(service);
  plannedService.routes.push({ route, from: m });
  if (route.match && plannedService.fallbacks.length === 0) {
    // SMI: requests the route groups do not match go to the root service, i.e. every endpoint.
    plannedService.fallbacks.push({ route: { name: `${service}-unmatched`, to: [{ subset: plan.allEndpointsSubset(service, m, spec) }] }, from: m });
  }
}

function identity(f: Field): string {
  const kind = f.string("kind") ?? "ServiceAccount";
  const name = f.string("name") ?? "(no name)";
  const namespace = f.string("namespace");
  f.string("group");
  f.string("apiGroup");
  return `${kind} ${namespace ? `${namespace}/` : ""}${name}`;
}

export function translateTrafficTarget(m: Manifest, groups: RouteGroups): void {
  const spec = m.root().object("spec");
  if (!spec) {
    m.error(["spec"], "a TrafficTarget needs a spec");
    return;
  }
  const destField = spec.object("destination");
  const destination = destField ? identity(destField) : "(no destination)";
  destField?.at("port").ignore(PORT_REASON);
  const sources = spec.list("sources").map((s) => (s.use(), identity(s)));
  const rules = spec.list("rules");
  if (rules.length === 0) {
    spec.at("destination").ignore(`${ACCESS_NOT_TRANSLATED}: this target names no rule, so SMI allows nothing to ${destination}`);
    return;
  }
  for (const rule of rules) {
    rule.use();
    const kind = rule.string("kind");
    const name = rule.string("name") ?? "";
    const only = rule.at("matches").present ? rule.strings("matches") : undefined;
    let what: string;
    if (kind === "HTTPRouteGroup") {
      const found = groupMatches(groups, name, only, rule);
      what = found ? found.map((g) => `${g.name || "(unnamed)"}: ${g.text}`).join("; ") || "no request" : `the routes of HTTPRouteGroup ${name}`;
    } else what = `${kind ?? "(no kind)"} ${name} (layer 4)`;
    rule.ignore(`${ACCESS_NOT_TRANSLATED}: allow ${sources.join(", ") || "(no source)"} to call ${destination} for [${what}]; SMI denies every other call to ${destination}`);
  }
}

/** SMI kinds read only when something names them, or with nothing to translate. */
export const SMI_PASSIVE_REASONS: Record<string, string> = {
  HTTPRouteGroup: "not named by any TrafficSplit or TrafficTarget of the input",
  TCPRoute: "layer-4 routes are not imported: edgemesh routes HTTP",
  UDPRoute: "layer-4 routes are not imported: edgemesh routes HTTP",
  IdentityBinding: `${ACCESS_NOT_TRANSLATED}: identities come from the binding's caller props or mesh tokens`,
};
