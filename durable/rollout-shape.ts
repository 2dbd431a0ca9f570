// What a rollout does to its service's policy, as pure functions: which rollout a service declares
// (its spec key), the traffic shape written into the stored section (the shaped routes' weights
// and the audience routes), and what an operator's document would change of what the rollout
// holds (the guard against two writers of the same weights).
import { audienceHeaderMatch, audienceRouteName, type RolloutPolicy } from "../policies/rollout.ts";
import type { RoutePolicy, ServicePolicy } from "../policies/schema.ts";
import type { RolloutSpec } from "../policies/rollout-run.ts";
import type { TrafficShape } from "./rollout-machine.ts";
import type { Json } from "./policy-sections.ts";

type JsonObject = { [key: string]: Json };

/** JSON with object keys sorted, so the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * The identity of the rollout a service declares: its rollout block (defaults filled in) and the
 * selectors of its two subsets. A different key is a different rollout (another canary, other
 * gates); null when the service declares none.
 */
export function rolloutSpecKey(svc: ServicePolicy): string | null {
  const r = svc.rollout;
  if (!r) return null;
  return canonicalJson({ rollout: r, stable: svc.subsets[r.stable] ?? null, canary: svc.subsets[r.canary] ?? null });
}

/** The stable and canary weights of a shaped route. */
export function routeWeights(route: Pick<RoutePolicy, "to">, spec: Pick<RolloutSpec, "stable" | "canary">): { stable: number; canary: number } {
  const weightOf = (subset: string) => route.to.filter((d) => d.subset === subset).reduce((sum, d) => sum + d.weight, 0);
  return { stable: weightOf(spec.stable), canary: weightOf(spec.canary) };
}

/** The canary's percent of the first shaped route's traffic, as the document gives it. */
export function canaryPercent(svc: ServicePolicy, spec: Pick<RolloutSpec, "stable" | "canary" | "routes">): number {
  const route = svc.routes.find((r) => r.name === spec.routes[0]);
  if (!route) return 0;
  const w = routeWeights(route, spec);
  const total = w.stable + w.canary;
  return total > 0 ? Math.round((w.canary / total) * 100) : 0;
}

const isObject = (v: Json | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** The test audience's route before `route` (a stored route): its matches plus the audience's, all to the canary. */
function audienceRoute(route: JsonObject, rollout: RolloutPolicy): JsonObject {
  const { header, match } = audienceHeaderMatch(rollout.audience!);
  const matches = Array.isArray(route.match) && route.match.length > 0 ? route.match : [{}];
  const to = Array.isArray(route.to) ? route.to.filter(isObject) : [];
  const canary = to.find((d) => d.subset === rollout.canary) ?? { subset: rollout.canary };
  return {
    ...route,
    name: audienceRouteName(String(route.name)),
    match: matches.map((m) => {
      const base = isObject(m) ? m : {};
      return { ...base, headers: { ...(isObject(base.headers) ? base.headers : {}), [header]: match as JsonObject } };
    }),
    to: [{ ...canary, weight: 100 }],
  };
}

/**
 * A service's stored section (as the operator wrote it, defaults not filled in) with a traffic
 * shape written in: each shaped route sends `canaryWeight` percent to the canary and the rest to
 * the stable subset; with `audience`, the audience route stands just before it, else it is gone.
 * Everything else is left exactly as it was.
 */
export function shapeSection(section: Json, rollout: RolloutPolicy, shape: TrafficShape): Json {
  if (!isObject(section)) return section;
  const shaped = new Set(rollout.routes);
  const audienceNames = new Set(rollout.routes.map(audienceRouteName));
  const routes = (Array.isArray(section.routes) ? section.routes : []).filter((r) => !(isObject(r) && audienceNames.has(String(r.name))));
  const out: Json[] = [];
  for (const route of routes) {
    if (!isObject(route) || !shaped.has(String(route.name))) {
      out.push(route);
      continue;
    }
    const to = (Array.isArray(route.to) ? route.to : []).map((d) => {
      if (!isObject(d)) return d;
      if (d.subset === rollout.canary) return { ...d, weight: shape.canaryWeight };
      if (d.subset === rollout.stable) return { ...d, weight: 100 - shape.canaryWeight };
      return d;
    });
    const weighted = { ...route, to };
    if (shape.audience && rollout.audience) out.push(audienceRoute(weighted, rollout));
    out.push(weighted);
  }
  return { ...section, routes: out };
}

/**
 * What `incoming` would change of the traffic a rollout holds in `active`: the weights of its
 * routes and, while it runs (`withAudience`), its audience routes. Empty when nothing; otherwise
 * one line per change, for people.
 */
export function heldTrafficChanges(active: ServicePolicy, incoming: ServicePolicy, spec: RolloutSpec, withAudience: boolean): string[] {
  const changes: string[] = [];
  const text = (w: { stable: number; canary: number }) => `${spec.stable} ${w.stable}, ${spec.canary} ${w.canary}`;
  for (const name of spec.routes) {
    const before = active.routes.find((r) => r.name === name);
    const after = incoming.routes.find((r) => r.name === name);
    if (!before) continue;
    if (!after) {
      changes.push(`route "${name}" is missing`);
      continue;
    }
    const [b, a] = [routeWeights(before, spec), routeWeights(after, spec)];
    if (b.stable !== a.stable || b.canary !== a.canary) changes.push(`route "${name}" would send ${text(a)} instead of ${text(b)}`);
    if (!withAudience) continue;
    const audience = audienceRouteName(name);
    const placed = (svc: ServicePolicy) => {
      const i = svc.routes.findIndex((r) => r.name === audience);
      return i < 0 ? "absent" : canonicalJson({ route: svc.routes[i], before: svc.routes[i + 1]?.name });
    };
    if (placed(active) !== placed(incoming)) changes.push(`the audience route "${audience}" would change`);
  }
  return changes;
}
