// Merging self-registered instances with the endpoints a policy declares. A clash is reported
// with both sides named; the policy's declaration wins only where keeping both is impossible. Pure.
import type { PolicyDocument } from "../policies/schema.ts";
import type { CompiledEndpoint } from "../policies/snapshot.ts";

export interface RegisteredInstance extends CompiledEndpoint {
  service: string;
  leaseTtlMs: number;
  registeredAtMs: number;
  lastHeartbeatMs: number;
  expiresAtMs: number;
}

export type ConflictKind = "id-declared-in-policy" | "same-target" | "service-not-in-policy";

export interface RegistryConflict {
  kind: ConflictKind;
  service: string;
  endpointId: string;
  /** The other endpoint involved, for same-target conflicts. */
  otherEndpointId?: string;
  /** What happens to the registered instance meanwhile. */
  effect: "shadowed" | "both-kept" | "not-served";
  message: string;
}

const targetOf = (e: Pick<CompiledEndpoint, "binding" | "url">) => (e.binding !== undefined ? `binding ${e.binding}` : `url ${e.url}`);

/**
 * Returns, per service, the registered instances to add to the declared endpoints, and every
 * conflict: a registered id the policy also declares (the instance is shadowed by the policy's
 * endpoint), two endpoints reaching the same binding or URL (both kept, so it gets double traffic),
 * and instances of a service the policy does not have (not served until the policy adds it).
 */
export function mergeRegistered(
  document: PolicyDocument | undefined,
  registered: readonly RegisteredInstance[],
): { extra: Record<string, CompiledEndpoint[]>; conflicts: RegistryConflict[] } {
  const extra: Record<string, CompiledEndpoint[]> = {};
  const conflicts: RegistryConflict[] = [];
  const targets = new Map<string, string>();
  for (const [service, policy] of Object.entries(document?.services ?? {})) {
    for (const e of policy.endpoints) targets.set(`${service} ${targetOf({ binding: e.binding, url: e.url?.replace(/\/+$/, "") })}`, e.id);
  }
  for (const r of registered) {
    const policy = document?.services[r.service];
    if (!policy) {
      conflicts.push({ kind: "service-not-in-policy", service: r.service, endpointId: r.id, effect: "not-served",
        message: `instance "${r.id}" registered for service "${r.service}", which the active policy does not have; add the service to the policy to serve it` });
      continue;
    }
    if (policy.endpoints.some((e) => e.id === r.id)) {
      conflicts.push({ kind: "id-declared-in-policy", service: r.service, endpointId: r.id, effect: "shadowed",
        message: `endpoint id "${r.id}" of service "${r.service}" is both declared in the policy and registered; the policy's endpoint is served, the registration is ignored until one of them is renamed or removed` });
      continue;
    }
    const key = `${r.service} ${targetOf(r)}`;
    const other = targets.get(key);
    if (other !== undefined) {
      conflicts.push({ kind: "same-target", service: r.service, endpointId: r.id, otherEndpointId: other, effect: "both-kept",
        message: `endpoints "${other}" and "${r.id}" of service "${r.service}" both reach ${targetOf(r)}; both are served, so it takes a double share of traffic` });
    } else targets.set(key, r.id);
    const endpoint: CompiledEndpoint = { id: r.id, labels: r.labels, weight: r.weight };
    if (r.binding !== undefined) endpoint.binding = r.binding;
    if (r.url !== undefined) endpoint.url = r.url;
    (extra[r.service] ??= []).push(endpoint);
  }
  return { extra, conflicts };
}
