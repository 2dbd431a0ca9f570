// Compiles a validated policy document into per-service snapshots the sidecar can use as they are:
// routes in order, matches normalised, weights turned into cumulative tables, subsets resolved
// to endpoint indexes, defaults filled in.
import { DEFAULT_ROUTE_TIMEOUT_MS, type HeaderMatchPolicy, type PolicyDocument, type RouteMatchPolicy, type ServicePolicy } from "./schema.ts";
import { anchored } from "./regex.ts";
import { compileRetry, compileRouteResilience, compileServiceResilience, linkServiceMirrors } from "./compile-resilience.ts";
import { compileAccess, type MeshAccessPolicy } from "./access.ts";
import { compileRateLimits } from "./ratelimit.ts";
import { grpcPathMatch } from "./grpc.ts";
import { compileFilters } from "./compile-filters.ts";
import {
  ALL_ENDPOINTS_SUBSET,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  type CompiledEndpoint,
  type CompiledMatch,
  type CompiledMesh,
  type CompiledRoute,
  type CompiledStringMatch,
  type CompiledValueMatch,
  type ServiceSnapshot,
} from "./snapshot.ts";

export const DEFAULT_ROUTE_NAME = "default";

function stringMatch(m: { exact?: string; prefix?: string; regex?: string }): CompiledStringMatch {
  if (m.exact !== undefined) return { kind: "exact", value: m.exact };
  if (m.prefix !== undefined) return { kind: "prefix", value: m.prefix };
  // Anchored so "regex" means the whole value, as in Envoy's safe_regex and Istio.
  return { kind: "regex", value: anchored(m.regex!) };
}

function valueMatch(name: string, m: HeaderMatchPolicy): CompiledValueMatch {
  if (m.present !== undefined) return { name, kind: m.present ? "present" : "absent", value: "" };
  return { name, ...stringMatch(m) };
}

function compileMatch(m: RouteMatchPolicy): CompiledMatch {
  const compiled: CompiledMatch = {
    headers: Object.entries(m.headers ?? {}).map(([n, hm]) => valueMatch(n.toLowerCase(), hm)),
    query: Object.entries(m.query ?? {}).map(([n, qm]) => valueMatch(n, qm)),
  };
  if (m.path) compiled.path = stringMatch(m.path);
  else if (m.grpc) compiled.path = stringMatch(grpcPathMatch(m.grpc));
  if (m.methods) compiled.methods = [...new Set(m.methods)];
  return compiled;
}

function selects(labels: Record<string, string>, selector: Record<string, string>): boolean {
  for (const key in selector) if (labels[key] !== selector[key]) return false;
  return true;
}

export function compileService(
  mesh: string,
  service: string,
  policy: ServicePolicy,
  extraEndpoints: CompiledEndpoint[],
  // Required, not defaulted: a caller that forgot it would compile a strict mesh as permissive.
  meshAccess: MeshAccessPolicy,
): Omit<ServiceSnapshot, "policyVersion" | "generation" | "epoch"> {
  const endpoints: CompiledEndpoint[] = [
    ...policy.endpoints.map((e) => {
      const out: CompiledEndpoint = { id: e.id, labels: { ...e.labels }, weight: e.weight };
      if (e.binding !== undefined) out.binding = e.binding;
      if (e.url !== undefined) out.url = e.url.replace(/\/+$/, "");
      return out;
    }),
    ...extraEndpoints,
  ];
  const subsets: Record<string, number[]> = { [ALL_ENDPOINTS_SUBSET]: endpoints.map((_, i) => i) };
  for (const [subsetName, selector] of Object.entries(policy.subsets)) {
    subsets[subsetName] = endpoints.flatMap((e, i) => (selects(e.labels, selector) ? [i] : []));
  }

  const routes: CompiledRoute[] = policy.routes.map((r) => {
    const to = r.to.filter((d) => d.weight > 0);
    let total = 0;
    const cumulative = to.map((d) => (total += d.weight));
    return {
      name: r.name,
      matches: (r.match ?? []).map(compileMatch),
      split: { subsets: to.map((d) => d.subset), cumulative, total },
      timeoutMs: r.timeoutMs,
      ...compileRouteResilience(r, endpoints, subsets),
      ...compileFilters(r),
    };
  });
  if (routes.length === 0) {
    routes.push({
      name: DEFAULT_ROUTE_NAME,
      matches: [],
      split: { subsets: [ALL_ENDPOINTS_SUBSET], cumulative: [1], total: 1 },
      timeoutMs: DEFAULT_ROUTE_TIMEOUT_MS,
      streamIdleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS,
      retry: compileRetry(undefined),
    });
  }
  const telemetry = { ...policy.telemetry };
  return {
    mesh, service, snapshotTtlMs: policy.snapshotTtlMs, endpoints, subsets, routes, ...compileServiceResilience(policy),
    access: compileAccess(service, policy.access, meshAccess),
    rateLimits: compileRateLimits(service, policy.rateLimits),
    telemetry,
  };
}

/** Compiles every service; `extraEndpoints` are registered instances to merge with the declared ones. */
export function compilePolicy(doc: PolicyDocument, extraEndpoints: Record<string, CompiledEndpoint[]> = {}): CompiledMesh {
  const services: CompiledMesh["services"] = {};
  for (const [service, policy] of Object.entries(doc.services)) {
    services[service] = compileService(doc.mesh, service, policy, extraEndpoints[service] ?? [], doc.access);
  }
  linkServiceMirrors(services);
  return { mesh: doc.mesh, services };
}
