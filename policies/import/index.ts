// The importers' entry: reads YAML or JSON (several documents per source, Kubernetes `List`s
// too), translates Istio, SMI and Gateway API resources, merges what they contribute (routes,
// subsets, settings, access rules) into the base document, validates the result, and lists every
// field it did not translate. Pure: no I/O.
import { parseAllDocuments } from "yaml";
import { validatePolicy, type PolicyDocumentInput } from "../schema.ts";
import { PORT_REASON } from "./common.ts";
import { compareByPrecedence, GATEWAY_GROUP, GATEWAY_VERSIONS, translateHTTPRoute, type GatewayRoutes } from "./gateway.ts";
import { placeRankedRoutes } from "./gateway-api.ts";
import { compareGrpcPrecedence, GRPC_ROUTE_VERSIONS, translateGRPCRoute, type GrpcRoutes } from "./grpcroute.ts";
import { ISTIO_GROUP, ISTIO_VERSIONS, translateDestinationRule, translateVirtualService } from "./istio.ts";
import { policyName, uniqueName } from "./kube.ts";
import { Manifest } from "./manifest.ts";
import { ImportPlan, type PlannedAccessRule, type PlannedRoute, type ServicePlan } from "./plan.ts";
import { checkServiceAccountMap } from "./service-accounts.ts";
import { SMI_ACCESS_GROUP, SMI_PASSIVE_REASONS, SMI_SPECS_GROUP, SMI_SPLIT_GROUP, translateTrafficSplit, translateTrafficTarget, type RouteGroups } from "./smi.ts";
import type { IgnoredField, ImportError, ImportOptions, ImportResult, ImportSource, ImportWarning } from "./types.ts";

export type { IgnoredField, ImportError, ImportOptions, ImportResult, ImportSource, ImportWarning } from "./types.ts";

/** Most documents a single import may hold (a guard for the admin API, far above real use). */
export const MAX_IMPORT_DOCUMENTS = 1000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Kinds of the projects we import that have nothing to translate, with the reason. */
const NOT_IMPORTED: Record<string, string> = {
  Gateway: "gateways are north-south entry points; edgemesh imports routing between services",
  ServiceEntry: "external services are reached as origin URL endpoints of a mesh service; declare them in the policy",
  Sidecar: "each edgemesh sidecar serves one service and reaches what its bindings allow",
  EnvoyFilter: "Envoy configuration has no edgemesh equivalent",
  WorkloadEntry: "endpoints come from the policy or from registration (edgemesh register)",
  WorkloadGroup: "endpoints come from the policy or from registration (edgemesh register)",
  ProxyConfig: "proxy settings have no edgemesh equivalent",
  PeerAuthentication: "transport security is the platform's (service bindings, HTTPS origins)",
  AuthorizationPolicy: "Istio authorization is not imported: write it as the policy's access rules (allow and deny by caller, method, path and headers), or import SMI TrafficTargets",
  RequestAuthentication: "end-user authentication is not part of edgemesh's routing policy",
  TCPRoute: "layer-4 routes are not imported: edgemesh routes HTTP",
  TLSRoute: "layer-4 routes are not imported: edgemesh routes HTTP",
  UDPRoute: "layer-4 routes are not imported: edgemesh routes HTTP",
  ReferenceGrant: "edgemesh has one namespace per mesh",
  GatewayClass: "gateways are not imported",
};

interface Parsed {
  manifests: Manifest[];
  errors: ImportError[];
}

function parseSources(sources: ImportSource[]): Parsed {
  const manifests: Manifest[] = [];
  const errors: ImportError[] = [];
  const add = (value: unknown, source: string) => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => add(v, `${source}[${i}]`));
      return;
    }
    if (!isObject(value)) {
      errors.push({ path: "$", source, message: `expected a Kubernetes resource (an object with apiVersion and kind), got ${typeof value}` });
      return;
    }
    // `kubectl get -o yaml` wraps resources in a List.
    if (typeof value.kind === "string" && value.kind.endsWith("List") && Array.isArray(value.items)) {
      value.items.forEach((item, i) => add(item, `${source}.items[${i}]`));
      return;
    }
    if (manifests.length >= MAX_IMPORT_DOCUMENTS) {
      errors.push({ path: "$", source, message: `more than ${MAX_IMPORT_DOCUMENTS} resources in one import; split it` });
      return;
    }
    manifests.push(new Manifest(value, source));
  };
  for (const source of sources) {
    const documents = parseAllDocuments(source.text);
    const list = Array.isArray(documents) ? documents : [];
    list.forEach((doc, i) => {
      const where = `${source.name}#${i + 1}`;
      if (doc.errors.length > 0) {
        errors.push({ path: "$", source: where, message: `not valid YAML or JSON: ${doc.errors[0]!.message.split("\n")[0]}` });
        return;
      }
      try {
        add(doc.toJS({ maxAliasCount: 100 }), where);
      } catch (err) {
        errors.push({ path: "$", source: where, message: `cannot read this document: ${(err as Error).message}` });
      }
    });
  }
  return { manifests, errors };
}

function groupAndVersion(apiVersion: string): [string, string] {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? ["", apiVersion] : [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)];
}

/** Kinds we translate in some versions of their group, with those versions: another version is named as unsupported. */
const VERSIONED_KINDS = new Map([
  [`${ISTIO_GROUP} VirtualService`, ISTIO_VERSIONS],
  [`${ISTIO_GROUP} DestinationRule`, ISTIO_VERSIONS],
  [`${GATEWAY_GROUP} HTTPRoute`, GATEWAY_VERSIONS],
  [`${GATEWAY_GROUP} GRPCRoute`, GRPC_ROUTE_VERSIONS],
]);

const SERVICE_SELECTOR_ONLY = "only a Service's selector is read (it becomes the subset of a backend)";

/** Reads a Kubernetes Service: its selector may become a backend subset. */
function indexService(m: Manifest, plan: ImportPlan): void {
  const spec = m.root().object("spec");
  const selector = spec?.stringMap("selector");
  plan.kubeServices.set(m.name, { manifest: m, selector, referenced: false });
  if (spec) for (const key of Object.keys(spec.value as object)) if (key !== "selector") spec.at(key).ignore(key === "ports" ? PORT_REASON : SERVICE_SELECTOR_ONLY);
}

function hasEndpoints(svc: Record<string, unknown>): boolean {
  return Array.isArray(svc.endpoints) && svc.endpoints.length > 0;
}

function selectsAny(svc: Record<string, unknown>, selector: Record<string, string>): boolean {
  const endpoints = Array.isArray(svc.endpoints) ? svc.endpoints : [];
  return endpoints.some((e) => {
    const labels = isObject(e) && isObject(e.labels) ? e.labels : {};
    return Object.entries(selector).every(([k, v]) => labels[k] === v);
  });
}

/** Origins of what the import wrote into a service, by index, to name them in validation errors. */
interface ServiceOrigins {
  routes: PlannedRoute[];
  allow: PlannedAccessRule[];
}

/**
 * The service's access with the imported allow rules in place of the base's, and strict, so that
 * it admits only what they allow (SMI TrafficTarget); the base's deny rules and other settings stay.
 */
function mergeAccess(name: string, svc: Record<string, unknown>, access: NonNullable<ServicePlan["access"]>, warnings: ImportWarning[]): void {
  const current = isObject(svc.access) ? { ...svc.access } : {};
  const before = Array.isArray(current.allow) ? current.allow.length : 0;
  const resources = access.from.map((m) => m.resource).join(", ");
  if (before > 0) warnings.push({ message: `the ${before} access allow rule(s) service "${name}" had in the base document are replaced by the imported ones (${resources})` });
  warnings.push({ message: `service "${name}" now admits only the calls its TrafficTargets allow (${access.allow.length} allow rule(s), access.mode strict): every other caller gets 403, as in SMI` });
  const taken = new Set<string>();
  for (const rule of Array.isArray(current.deny) ? current.deny : []) if (isObject(rule) && typeof rule.name === "string") taken.add(rule.name);
  current.allow = access.allow.map((p) => ({ ...p.rule, name: uniqueName(policyName(p.rule.name ?? "allow"), taken) }));
  current.mode = "strict";
  svc.access = current;
}

/** Merges one service's contributions into its (base) entry; returns where its routes and allow rules came from. */
function mergeService(name: string, svc: Record<string, unknown>, plan: ServicePlan, warnings: ImportWarning[]): ServiceOrigins {
  if (!hasEndpoints(svc)) {
    warnings.push({ message: `service "${name}" has no endpoints in the base document: add them (with the labels its subsets select) or register instances; until then its requests are answered 503 no-endpoint` });
  }
  if (plan.subsets.size > 0) {
    const subsets = isObject(svc.subsets) ? { ...svc.subsets } : {};
    for (const [subset, planned] of plan.subsets) {
      subsets[subset] = planned.selector;
      if (hasEndpoints(svc) && !selectsAny(svc, planned.selector)) {
        warnings.push({ resource: planned.from, message: `subset "${subset}" of "${name}" (labels ${JSON.stringify(planned.selector)}) selects none of its endpoints in the base document` });
      }
    }
    svc.subsets = subsets;
  }
  const planned = [...plan.routes, ...plan.fallbacks];
  if (planned.length > 0) {
    const before = Array.isArray(svc.routes) ? svc.routes.length : 0;
    if (before > 0) warnings.push({ message: `the ${before} route(s) service "${name}" had in the base document are replaced by the imported ones` });
    const taken = new Set<string>();
    svc.routes = planned.map((p) => ({ ...p.route, name: uniqueName(policyName(p.route.name), taken) }));
  }
  const { loadBalancer, ...others } = plan.settings;
  if (loadBalancer) {
    const current = isObject(svc.loadBalancer) ? { ...svc.loadBalancer } : {};
    // A new algorithm replaces the old one's own knobs.
    if (loadBalancer.algorithm !== undefined) {
      delete current.hashOn;
      delete current.maglevTableSize;
    }
    svc.loadBalancer = { ...current, ...loadBalancer };
  }
  Object.assign(svc, others);
  if (plan.access) mergeAccess(name, svc, plan.access, warnings);
  return { routes: planned, allow: plan.access?.allow ?? [] };
}

/** A validation error's path into a route or an access allow rule of a service. */
const ORIGIN_PATH = /^\$\.services(?:\.([a-z0-9-]+)|\["([^"]+)"\])\.(routes|access\.allow)\[(\d+)\]/;

function dedupe<T>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = JSON.stringify(item);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Translates the sources and merges them into `options.base`. */
export function importManifests(sources: ImportSource[], options: ImportOptions = {}): ImportResult {
  const { manifests, errors } = parseSources(sources);
  const warnings: ImportWarning[] = [];
  const base = options.base;
  if (base !== undefined && !(isObject(base) && (base.services === undefined || isObject(base.services)))) {
    errors.push({ path: "$", message: "the base document is not a policy document (an object with mesh and services)" });
  }
  const serviceAccounts = options.serviceAccounts ?? {};
  errors.push(...checkServiceAccountMap(serviceAccounts));
  const plan = new ImportPlan(base);
  const groups: RouteGroups = { byName: new Map(), referenced: new Set() };
  const gatewayRoutes: GatewayRoutes = new Map();
  const grpcRoutes: GrpcRoutes = new Map();
  const translated = new Set<Manifest>();

  // Resources others refer to first (subsets, selectors, route groups), then the routes, then
  // access (its destinations and sources must be services the routes may have introduced).
  const later: [Manifest, () => void][] = [];
  const access: [Manifest, () => void][] = [];
  for (const m of manifests) {
    const [group, version] = groupAndVersion(m.apiVersion);
    const supported = (g: string, versions?: string[]) => group === g && (versions === undefined || versions.includes(version));
    if (!m.kind || !m.apiVersion) {
      m.error([], "not a Kubernetes resource: apiVersion and kind are required");
      m.ignoreAll("no apiVersion or kind");
      continue;
    }
    if (m.kind === "Service" && group === "" && version === "v1") {
      indexService(m, plan);
    } else if (m.kind === "DestinationRule" && supported(ISTIO_GROUP, ISTIO_VERSIONS)) {
      translateDestinationRule(m, plan);
      translated.add(m);
    } else if (m.kind === "VirtualService" && supported(ISTIO_GROUP, ISTIO_VERSIONS)) {
      later.push([m, () => translateVirtualService(m, plan)]);
    } else if (m.kind === "HTTPRoute" && supported(GATEWAY_GROUP, GATEWAY_VERSIONS)) {
      later.push([m, () => translateHTTPRoute(m, plan, gatewayRoutes)]);
    } else if (m.kind === "GRPCRoute" && supported(GATEWAY_GROUP, GRPC_ROUTE_VERSIONS)) {
      later.push([m, () => translateGRPCRoute(m, plan, grpcRoutes)]);
    } else if (m.kind === "TrafficSplit" && supported(SMI_SPLIT_GROUP)) {
      later.push([m, () => translateTrafficSplit(m, plan, groups)]);
    } else if (m.kind === "TrafficTarget" && supported(SMI_ACCESS_GROUP)) {
      access.push([m, () => translateTrafficTarget(m, plan, groups, serviceAccounts)]);
    } else if (m.kind === "HTTPRouteGroup" && supported(SMI_SPECS_GROUP)) {
      groups.byName.set(m.name, m);
    } else if (VERSIONED_KINDS.has(`${group} ${m.kind}`)) {
      m.ignoreAll(`${m.apiVersion} is not a version edgemesh reads; it reads ${VERSIONED_KINDS.get(`${group} ${m.kind}`)!.join(", ")}`);
    } else {
      m.ignoreAll(`${m.kind} (${m.apiVersion}) is not imported: ${SMI_PASSIVE_REASONS[m.kind] ?? NOT_IMPORTED[m.kind] ?? "edgemesh imports Istio VirtualService and DestinationRule, SMI TrafficSplit, HTTPRouteGroup and TrafficTarget, Gateway API HTTPRoute and GRPCRoute, and Kubernetes Service selectors"}`);
    }
  }
  for (const [m, translate] of [...later, ...access]) {
    translate();
    translated.add(m);
  }
  // A GRPCRoute wins over an HTTPRoute on the same Service: its routes go first.
  placeRankedRoutes(grpcRoutes, plan, compareGrpcPrecedence);
  placeRankedRoutes(gatewayRoutes, plan, compareByPrecedence);
  for (const [name, m] of groups.byName) {
    if (groups.referenced.has(name)) translated.add(m);
    else m.ignoreAll(SMI_PASSIVE_REASONS.HTTPRouteGroup!);
  }
  for (const { manifest, referenced } of plan.kubeServices.values()) {
    if (referenced) translated.add(manifest);
    else manifest.ignoreAll("a Service is read only for its selector when a route, split or mirror names it as a backend; nothing named this one");
  }

  const mesh = options.mesh ?? (isObject(base) && typeof base.mesh === "string" ? base.mesh : undefined);
  if (mesh === undefined) errors.push({ path: "$.mesh", message: "no mesh name: give one (--mesh, ?mesh=) or a base document that has it" });
  const document: Record<string, unknown> = isObject(base) ? structuredClone(base) : {};
  document.mesh = mesh ?? "";
  const services: Record<string, Record<string, unknown>> = isObject(document.services) ? (document.services as Record<string, Record<string, unknown>>) : {};
  document.services = services;
  const origins = new Map<string, ServiceOrigins>();
  for (const [name, servicePlan] of plan.services) {
    const svc = isObject(services[name]) ? services[name]! : (services[name] = {});
    origins.set(name, mergeService(name, svc, servicePlan, warnings));
  }
  if (plan.identities.size > 0) {
    const meshAccess = isObject(document.access) ? { ...document.access } : {};
    const declared = Array.isArray(meshAccess.identities) ? meshAccess.identities : [];
    meshAccess.identities = [...declared, ...plan.identities];
    document.access = meshAccess;
  }
  if ([...plan.services.values()].some((s) => s.access) && plan.baseAccessMode !== "strict") {
    warnings.push({ message: "SMI denies every call no TrafficTarget allows, across the mesh; the import makes strict only the services TrafficTargets name. Set access.mode to \"strict\" in the policy to deny by default everywhere (services without allow rules then admit no one)" });
  }

  for (const m of manifests) {
    errors.push(...m.errors);
    warnings.push(...m.warnings);
  }
  const checked = validatePolicy(document);
  if (!checked.ok) {
    for (const e of checked.errors) {
      if (mesh === undefined && e.path === "$.mesh") continue;
      const at = ORIGIN_PATH.exec(e.path);
      const service = at ? origins.get(at[1] ?? at[2]!) : undefined;
      const origin = at && service ? (at[3] === "routes" ? service.routes : service.allow)[Number(at[4])] : undefined;
      errors.push(origin ? { ...e, resource: origin.from.resource, source: origin.from.source } : e);
    }
  }
  const ignored: IgnoredField[] = manifests.flatMap((m) => m.ignoredFields());
  return {
    document: document as PolicyDocumentInput,
    ignored: dedupe(ignored),
    errors: dedupe(errors),
    warnings: dedupe(warnings),
    imported: [...translated].filter((m) => !m.wholeIgnored).map((m) => m.resource),
  };
}
