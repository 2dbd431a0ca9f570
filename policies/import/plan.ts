// What the translators contribute, per mesh service, before it is merged into the base document:
// routes (each with the resource it came from), subsets, service-wide settings and access allow
// rules, plus the identities the document must declare. The plan also answers the questions every
// translator asks: which subset a Kubernetes backend Service is, which subsets and services exist,
// and which caller names the document knows.
import { HeaderValue, ModifiedHeaderName } from "../filters.ts";
import type { PolicyDocumentInput } from "../schema.ts";
import type { Field, Manifest } from "./manifest.ts";
import { uniqueName } from "./kube.ts";

type ServiceInput = PolicyDocumentInput["services"][string];
export type RouteInput = NonNullable<ServiceInput["routes"]>[number];
export type DestinationInput = NonNullable<RouteInput["to"]>[number];
export type MatchInput = NonNullable<RouteInput["match"]>[number];
export type StringMatchInput = NonNullable<MatchInput["path"]>;
export type HeaderMatchInput = NonNullable<MatchInput["headers"]>[string];
export type HeaderModifierInput = NonNullable<RouteInput["requestHeaders"]>;
export type LoadBalancerInput = NonNullable<ServiceInput["loadBalancer"]>;
export type CircuitBreakerInput = NonNullable<ServiceInput["circuitBreaker"]>;
export type OutlierDetectionInput = NonNullable<ServiceInput["outlierDetection"]>;
export type RetryBudgetInput = NonNullable<ServiceInput["retryBudget"]>;
export type AccessRuleInput = NonNullable<NonNullable<ServiceInput["access"]>["allow"]>[number];

export interface PlannedRoute {
  route: RouteInput;
  from: Manifest;
}

export interface PlannedAccessRule {
  rule: AccessRuleInput;
  from: Manifest;
}

export interface PlannedSubset {
  selector: Record<string, string>;
  /** `Kind/name` of what defined it. */
  from: string;
}

export interface ServiceSettings {
  loadBalancer?: LoadBalancerInput;
  circuitBreaker?: CircuitBreakerInput;
  outlierDetection?: OutlierDetectionInput;
  retryBudget?: RetryBudgetInput;
}

export interface ServicePlan {
  routes: PlannedRoute[];
  /** Routes that go after every other route of the service (e.g. SMI's "everything else to the root service"). */
  fallbacks: PlannedRoute[];
  subsets: Map<string, PlannedSubset>;
  settings: ServiceSettings;
  /** `Kind/name` of the resources that set each setting, for conflict warnings. */
  settingsFrom: Map<keyof ServiceSettings, string>;
  /**
   * Allow rules replacing the service's, which then admits nothing else (strict): set when an
   * access resource (an SMI TrafficTarget) names the service, even with no rule.
   */
  access?: { allow: PlannedAccessRule[]; from: Manifest[] };
}

/** A Kubernetes Service of the input: its selector picks the endpoints of a backend subset. */
export interface KubeService {
  manifest: Manifest;
  selector: Record<string, string> | undefined;
  referenced: boolean;
}

interface BaseService {
  subsets: Record<string, Record<string, string>>;
  endpoints: unknown[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const sameSelector = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

export class ImportPlan {
  readonly services = new Map<string, ServicePlan>();
  readonly kubeServices = new Map<string, KubeService>();
  /** Identities the import's access rules name that the base document does not declare. */
  readonly identities = new Set<string>();
  private readonly baseServices: Record<string, BaseService> = {};
  private readonly baseIdentities = new Set<string>();
  /** The base document's mesh-wide access mode, as written (undefined: the default, permissive). */
  readonly baseAccessMode: string | undefined;

  constructor(base: unknown) {
    const access = isObject(base) && isObject(base.access) ? base.access : {};
    if (Array.isArray(access.identities)) for (const id of access.identities) if (typeof id === "string") this.baseIdentities.add(id);
    this.baseAccessMode = typeof access.mode === "string" ? access.mode : undefined;
    const services = isObject(base) && isObject(base.services) ? base.services : {};
    for (const [name, svc] of Object.entries(services)) {
      const s = isObject(svc) ? svc : {};
      const subsets: Record<string, Record<string, string>> = {};
      if (isObject(s.subsets)) for (const [k, v] of Object.entries(s.subsets)) if (isObject(v)) subsets[k] = v as Record<string, string>;
      this.baseServices[name] = { subsets, endpoints: Array.isArray(s.endpoints) ? s.endpoints : [] };
    }
  }

  service(name: string): ServicePlan {
    let plan = this.services.get(name);
    if (!plan) {
      plan = { routes: [], fallbacks: [], subsets: new Map(), settings: {}, settingsFrom: new Map() };
      this.services.set(name, plan);
    }
    return plan;
  }

  /** Whether the service is known to the base document or to the imported resources. */
  knownService(name: string): boolean {
    return name in this.baseServices || this.services.has(name);
  }

  /** Whether the name is an identity the base declares or the import will declare. */
  knownIdentity(name: string): boolean {
    return this.baseIdentities.has(name) || this.identities.has(name);
  }

  /** Declares an identity (a caller that is not a service) unless the document already knows it. */
  declareIdentity(name: string): void {
    if (!this.knownService(name) && !this.baseIdentities.has(name)) this.identities.add(name);
  }

  /** Makes the service admit only what allow rules of the import admit (they are added with `allow`). */
  restrictAccess(service: string, from: Manifest): NonNullable<ServicePlan["access"]> {
    const plan = this.service(service);
    plan.access ??= { allow: [], from: [] };
    if (!plan.access.from.includes(from)) plan.access.from.push(from);
    return plan.access;
  }

  /** The selector of a subset the import or the base document defines, if any. */
  subsetSelector(service: string, subset: string): Record<string, string> | undefined {
    return this.services.get(service)?.subsets.get(subset)?.selector ?? this.baseServices[service]?.subsets[subset];
  }

  baseHasEndpoints(service: string): boolean {
    return (this.baseServices[service]?.endpoints.length ?? 0) > 0;
  }

  defineSubset(service: string, name: string, selector: Record<string, string>, from: Manifest, field: Field): void {
    const plan = this.service(service);
    const existing = plan.subsets.get(name);
    if (existing && !sameSelector(existing.selector, selector)) {
      field.warn(`subset "${name}" of service "${service}" is also defined by ${existing.from} with other labels; ${from.resource} wins`);
    }
    const baseSelector = this.baseServices[service]?.subsets[name];
    if (!existing && baseSelector && !sameSelector(baseSelector, selector)) {
      field.warn(`subset "${name}" of service "${service}" replaces the base document's (labels ${JSON.stringify(baseSelector)} become ${JSON.stringify(selector)})`);
    }
    plan.subsets.set(name, { selector, from: from.resource });
  }

  /** The subset holding every endpoint of the service: an existing one with no labels, else one named "all". */
  allEndpointsSubset(service: string, from: Manifest, field: Field): string {
    const known: [string, Record<string, string>][] = [
      ...[...(this.services.get(service)?.subsets.entries() ?? [])].map(([name, s]): [string, Record<string, string>] => [name, s.selector]),
      ...Object.entries(this.baseServices[service]?.subsets ?? {}),
    ];
    const taken = new Set<string>();
    for (const [name, selector] of known) {
      if (Object.keys(selector).length === 0) return name;
      taken.add(name);
    }
    const name = uniqueName("all", taken);
    this.defineSubset(service, name, {}, from, field);
    return name;
  }

  /**
   * The subset of `parent` that a Kubernetes backend Service stands for (Gateway API backendRefs,
   * SMI backends, mirrors), in this order: the parent itself (every endpoint); a Service of the
   * input (its selector becomes the subset); a subset of that name in the import or the base
   * document; a base subset named by the part after "<parent>-" (echo-v1 -> v1). Undefined (and
   * an error on `field`) when none fits.
   */
  backendSubset(parent: string, backend: string, from: Manifest, field: Field, quiet = false): string | undefined {
    if (backend === parent) return this.allEndpointsSubset(parent, from, field);
    const kube = this.kubeServices.get(backend);
    if (kube?.selector) {
      kube.referenced = true;
      this.defineSubset(parent, backend, kube.selector, kube.manifest, field);
      return backend;
    }
    if (this.subsetSelector(parent, backend) !== undefined) return backend;
    const suffix = backend.startsWith(`${parent}-`) ? backend.slice(parent.length + 1) : undefined;
    if (suffix && this.subsetSelector(parent, suffix) !== undefined) return suffix;
    if (quiet) return undefined;
    field.error(
      `backend Service "${backend}" of "${parent}": edgemesh splits a service's traffic among its subsets, and none stands for "${backend}". ` +
      `Include the Kubernetes Service "${backend}" (its selector becomes the subset), or define subset "${backend}"${suffix ? ` or "${suffix}"` : ""} of service "${parent}" in the base document`,
    );
    return undefined;
  }
}

/** Header modifications from (name, value, field) triples; invalid names and values are reported where they are. */
export function headerModifier(
  set: [string, string, Field][],
  add: [string, string, Field][],
  remove: [string, Field][],
): HeaderModifierInput | undefined {
  const valid = (name: string, value: string | undefined, field: Field): boolean => {
    const n = ModifiedHeaderName.safeParse(name);
    if (!n.success) {
      field.error(n.error.issues[0]!.message);
      return false;
    }
    if (value === undefined) return true;
    const v = HeaderValue.safeParse(value);
    if (!v.success) field.error(`header "${name}": ${v.error.issues[0]!.message}`);
    return v.success;
  };
  const out: HeaderModifierInput = {};
  const s = set.filter(([n, v, f]) => valid(n, v, f)).map(([name, value]) => ({ name, value }));
  const a = add.filter(([n, v, f]) => valid(n, v, f)).map(([name, value]) => ({ name, value }));
  const r = remove.filter(([n, f]) => valid(n, undefined, f)).map(([name]) => name);
  if (s.length) out.set = s;
  if (a.length) out.add = a;
  if (r.length) out.remove = r;
  return s.length + a.length + r.length > 0 ? out : undefined;
}

export function setSetting<K extends keyof ServiceSettings>(plan: ServicePlan, key: K, value: ServiceSettings[K], from: Manifest, field: Field): void {
  const previous = plan.settingsFrom.get(key);
  if (previous !== undefined && previous !== from.resource) field.warn(`${key} of this service is also set by ${previous}; ${from.resource} wins`);
  plan.settings[key] = value;
  plan.settingsFrom.set(key, from.resource);
}
