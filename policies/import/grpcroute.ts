// Gateway API GRPCRoute (gateway.networking.k8s.io v1, v1alpha2), mesh form, into edgemesh routes.
//
// In the mesh form (GAMMA) a route's parentRefs name Kubernetes Services: the route applies to
// calls to that service, and its backendRefs split them over Services that are versions of it
// ("greeter-v1", "greeter-v2"), which become subsets here. Each (rule, match) becomes one route,
// ordered by GRPCRoute's precedence (longest matching service, then method, then most header
// matches; ties: oldest route, then namespace/name, then rule order), because edgemesh routes
// are first-match. Every field that is not mapped is listed in `ignored` with its path; what cannot
// be expressed faithfully is an error, never silently approximated.
import type { z } from "zod";
import type { Route } from "../schema.ts";

type RouteInput = z.input<typeof Route>;
type MatchInput = NonNullable<RouteInput["match"]>[number];

export interface ImportIssue {
  /** "GRPCRoute <namespace>/<name>" (or "document <i>" when it has no name). */
  source: string;
  /** JSON path inside that document, e.g. `$.spec.rules[0].filters[1]`. */
  path: string;
  message: string;
}

export interface BackendRef {
  name: string;
  namespace?: string;
  port?: number;
}

export interface SubsetMapping {
  subset: string;
  /** The labels the subset selects, e.g. { version: "v2" }; {} selects every endpoint. */
  selector: Record<string, string>;
}

export interface GrpcRouteImportContext {
  /** The mesh service a parentRef's Kubernetes Service stands for. Default: its name. */
  serviceFor?: (name: string, namespace: string | undefined) => string;
  /**
   * The subset of `service` a backendRef stands for, or undefined when it stands for none. Default:
   * the service itself -> subset "all" (every endpoint); "<service>-<version>" -> subset
   * "<version>" selecting { version: "<version>" }, the usual naming of per-version Services.
   */
  subsetFor?: (service: string, backend: BackendRef) => SubsetMapping | undefined;
}

export interface ImportedServiceRoutes {
  /** Ordered as they must be tried; prepend them to the service's routes (GRPCRoutes win over catch-alls). */
  routes: RouteInput[];
  /** Subsets the routes use, with their selectors. */
  subsets: Record<string, Record<string, string>>;
}

export interface GrpcRouteImport {
  services: Record<string, ImportedServiceRoutes>;
  ignored: ImportIssue[];
  errors: ImportIssue[];
}

const API_GROUP = "gateway.networking.k8s.io";
const API_VERSIONS = new Set([`${API_GROUP}/v1`, `${API_GROUP}/v1alpha2`]);
const ROUTE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function defaultSubsetFor(service: string, backend: BackendRef): SubsetMapping | undefined {
  if (backend.name === service) return { subset: "all", selector: {} };
  if (backend.name.startsWith(`${service}-`)) {
    const version = backend.name.slice(service.length + 1);
    if (ROUTE_NAME.test(version)) return { subset: version, selector: { version } };
  }
  return undefined;
}

/** A Kubernetes name turned into an edgemesh route name: lowercase, '-' for anything else, at most 63 characters. */
function routeName(raw: string): string {
  const cleaned = raw.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
  return cleaned === "" ? "grpcroute" : cleaned;
}

interface Entry {
  service: string;
  route: RouteInput;
  /** GRPCRoute precedence, larger first: characters of service, of method, header matches. */
  rank: [number, number, number];
  routeOrder: [string, string];
  ruleIndex: number;
  matchIndex: number;
}

class Importer {
  readonly ignored: ImportIssue[] = [];
  readonly errors: ImportIssue[] = [];
  readonly entries: Entry[] = [];
  readonly subsets = new Map<string, Map<string, { selector: Record<string, string>; at: string }>>();
  private readonly usedNames = new Set<string>();

  constructor(private readonly ctx: GrpcRouteImportContext) {}

  importDocument(doc: unknown, index: number): void {
    let source = `document ${index}`;
    const error = (path: string, message: string): void => void this.errors.push({ source, path, message });
    const ignore = (path: string, message: string): void => void this.ignored.push({ source, path, message });
    if (!isObject(doc)) return error("$", "not an object");
    if (doc.kind !== "GRPCRoute") return error("$.kind", `expected kind GRPCRoute, got ${JSON.stringify(doc.kind)}`);
    if (typeof doc.apiVersion !== "string" || !API_VERSIONS.has(doc.apiVersion)) {
      return error("$.apiVersion", `expected one of ${[...API_VERSIONS].join(", ")}, got ${JSON.stringify(doc.apiVersion)}`);
    }
    const metadata = isObject(doc.metadata) ? doc.metadata : {};
    const name = str(metadata.name);
    if (!name) return error("$.metadata.name", "a GRPCRoute needs a name");
    const namespace = str(metadata.namespace) ?? "default";
    source = `GRPCRoute ${namespace}/${name}`;
    const routeOrder: [string, string] = [str(metadata.creationTimestamp) ?? "", `${namespace}/${name}`];
    const spec = isObject(doc.spec) ? doc.spec : {};

    for (const key of Object.keys(spec)) {
      if (key === "hostnames") ignore("$.spec.hostnames", "hostnames select Gateway listeners; a mesh route applies to every call to its parent Service");
      else if (key !== "parentRefs" && key !== "rules") ignore(`$.spec.${key}`, "not a GRPCRoute field edgemesh maps");
    }

    const services: string[] = [];
    list(spec.parentRefs).forEach((ref, i) => {
      const at = `$.spec.parentRefs[${i}]`;
      if (!isObject(ref) || !str(ref.name)) return error(at, "a parentRef needs a name");
      const kind = str(ref.kind) ?? "Gateway";
      const group = str(ref.group) ?? (kind === "Gateway" ? API_GROUP : "");
      if (kind !== "Service" || (group !== "" && group !== "core")) {
        return ignore(at, `parentRef of kind ${kind}: edgemesh imports the mesh form of GRPCRoute (parentRefs of kind Service)`);
      }
      for (const field of ["port", "sectionName"]) if (ref[field] !== undefined) ignore(`${at}.${field}`, "the route applies to the whole service");
      services.push(this.ctx.serviceFor?.(ref.name as string, str(ref.namespace)) ?? (ref.name as string));
    });
    if (services.length === 0) return error("$.spec.parentRefs", "no parentRef of kind Service: nothing in the mesh to attach this route to");

    const rules = list(spec.rules);
    (rules.length === 0 ? [{}] : rules).forEach((rule, ruleIndex) => {
      if (!isObject(rule)) return error(`$.spec.rules[${ruleIndex}]`, "not an object");
      for (const service of new Set(services)) this.importRule(service, rule, ruleIndex, name, routeOrder, error, ignore);
    });
  }

  private importRule(
    service: string,
    rule: Json,
    ruleIndex: number,
    routeNameBase: string,
    routeOrder: [string, string],
    error: (path: string, message: string) => void,
    ignore: (path: string, message: string) => void,
  ): void {
    const at = `$.spec.rules[${ruleIndex}]`;
    for (const key of Object.keys(rule)) {
      if (key === "sessionPersistence") ignore(`${at}.sessionPersistence`, "use the service's loadBalancer consistent-hash (hashOn a header or cookie) instead");
      else if (!["matches", "filters", "backendRefs", "name"].includes(key)) ignore(`${at}.${key}`, "not a GRPCRoute rule field edgemesh maps");
    }

    const base: Omit<RouteInput, "name" | "match"> = { to: [] };
    const backends = list(rule.backendRefs);
    const to: { subset: string; weight: number }[] = [];
    let failed = false;
    backends.forEach((b, i) => {
      const bAt = `${at}.backendRefs[${i}]`;
      const mapped = this.mapBackend(service, b, bAt, error, ignore);
      if (!mapped) {
        failed = true;
        return;
      }
      const weight = isObject(b) && b.weight !== undefined ? Number(b.weight) : 1;
      if (!Number.isInteger(weight) || weight < 0 || weight > 1_000_000) {
        failed = true;
        return error(`${bAt}.weight`, `a weight is an integer 0-1000000, got ${JSON.stringify(b && (b as Json).weight)}`);
      }
      if (isObject(b) && b.filters !== undefined) ignore(`${bAt}.filters`, "per-backend filters are not in the policy schema");
      to.push({ subset: mapped, weight });
    });
    if (failed) return;
    if (to.length === 0 || to.every((d) => d.weight === 0)) {
      // GRPCRoute: a rule with no usable backend answers UNAVAILABLE. An abort of every request
      // with 503 is exactly that for RPC callers (the sidecar answers it as UNAVAILABLE).
      base.fault = { abort: { percent: 100, status: 503 }, bypassRetries: true };
      const all = this.useSubset(service, { subset: "all", selector: {} }, `${at}.backendRefs`, error);
      if (!all) return;
      to.splice(0, to.length, { subset: all, weight: 1 });
    }
    base.to = to;

    let mirrored = false;
    list(rule.filters).forEach((f, i) => {
      const fAt = `${at}.filters[${i}]`;
      const type = isObject(f) ? str(f.type) : undefined;
      if (type === "RequestMirror" && isObject(f) && isObject(f.requestMirror)) {
        if (mirrored) return ignore(fAt, "edgemesh mirrors a route to one target; only the first RequestMirror is kept");
        const mirror = this.mapMirror(service, f.requestMirror, `${fAt}.requestMirror`, error);
        if (mirror) {
          base.mirror = mirror;
          mirrored = true;
        }
      } else if (type === "RequestHeaderModifier" || type === "ResponseHeaderModifier") {
        ignore(fAt, `${type} is not in the policy schema yet`);
      } else if (type === "ExtensionRef") {
        // GRPCRoute: an unresolved custom filter must fail the requests, never be skipped.
        error(fAt, "ExtensionRef filters cannot be resolved by edgemesh, and GRPCRoute forbids skipping them");
        failed = true;
      } else {
        error(fAt, `unknown filter type ${JSON.stringify(type)}`);
        failed = true;
      }
    });
    if (failed) return;

    const ruleName = str(rule.name);
    const matches = list(rule.matches);
    (matches.length === 0 ? [undefined] : matches).forEach((m, matchIndex) => {
      const converted = m === undefined ? { match: undefined, rank: [0, 0, 0] as [number, number, number] } : this.mapMatch(m, `${at}.matches[${matchIndex}]`, error, ignore);
      if (!converted) return;
      const suffix = `${ruleName ?? `r${ruleIndex}`}${matches.length > 1 ? `-m${matchIndex}` : ""}`;
      const route: RouteInput = { name: this.uniqueName(service, routeName(`${routeNameBase}-${suffix}`)), ...structuredClone(base) };
      if (converted.match) route.match = [converted.match];
      this.entries.push({ service, route, rank: converted.rank, routeOrder, ruleIndex, matchIndex });
    });
  }

  private mapBackend(service: string, b: unknown, at: string, error: (p: string, m: string) => void, ignore: (p: string, m: string) => void): string | undefined {
    if (!isObject(b) || !str(b.name)) {
      error(at, "a backendRef needs a name");
      return undefined;
    }
    const kind = str(b.kind) ?? "Service";
    const group = str(b.group) ?? "";
    if (kind !== "Service" || (group !== "" && group !== "core")) {
      error(at, `backendRef of kind ${kind}: only Services can be mapped to subsets`);
      return undefined;
    }
    if (b.port !== undefined) ignore(`${at}.port`, "edgemesh endpoints are reached by binding or URL, not by port");
    const backend: BackendRef = { name: b.name as string };
    if (str(b.namespace)) backend.namespace = b.namespace as string;
    if (typeof b.port === "number") backend.port = b.port;
    const mapping = (this.ctx.subsetFor ?? defaultSubsetFor)(service, backend);
    if (!mapping) {
      error(at, `backendRef "${backend.name}" is not a version of service "${service}": name it "${service}-<version>" or map it with a subset mapping`);
      return undefined;
    }
    return this.useSubset(service, mapping, at, error);
  }

  private useSubset(service: string, mapping: SubsetMapping, at: string, error: (p: string, m: string) => void): string | undefined {
    let known = this.subsets.get(service);
    if (!known) this.subsets.set(service, (known = new Map()));
    const previous = known.get(mapping.subset);
    if (previous && JSON.stringify(previous.selector) !== JSON.stringify(mapping.selector)) {
      error(at, `subset "${mapping.subset}" of "${service}" selects ${JSON.stringify(mapping.selector)} here but ${JSON.stringify(previous.selector)} at ${previous.at}`);
      return undefined;
    }
    if (!previous) known.set(mapping.subset, { selector: mapping.selector, at });
    return mapping.subset;
  }

  private mapMirror(service: string, m: Json, at: string, error: (p: string, m: string) => void): RouteInput["mirror"] | undefined {
    const ref = m.backendRef;
    if (!isObject(ref) || !str(ref.name)) {
      error(`${at}.backendRef`, "a RequestMirror needs a backendRef with a name");
      return undefined;
    }
    let percent = 100;
    if (typeof m.percent === "number") percent = m.percent;
    else if (isObject(m.fraction)) {
      const numerator = Number(m.fraction.numerator);
      const denominator = m.fraction.denominator === undefined ? 100 : Number(m.fraction.denominator);
      if (!(denominator > 0) || !(numerator >= 0) || numerator > denominator) {
        error(`${at}.fraction`, "numerator must be 0..denominator and denominator above 0");
        return undefined;
      }
      percent = (numerator / denominator) * 100;
    }
    const backend: BackendRef = { name: ref.name as string };
    const mapping = (this.ctx.subsetFor ?? defaultSubsetFor)(service, backend);
    if (mapping) {
      const subset = this.useSubset(service, mapping, `${at}.backendRef`, error);
      return subset === undefined ? undefined : { subset, percent };
    }
    // Not a version of this service: mirror to the mesh service it stands for.
    return { service: this.ctx.serviceFor?.(backend.name, str(ref.namespace)) ?? backend.name, percent };
  }

  private mapMatch(m: unknown, at: string, error: (p: string, m: string) => void, ignore: (p: string, m: string) => void): { match: MatchInput; rank: [number, number, number] } | undefined {
    if (!isObject(m)) {
      error(at, "not an object");
      return undefined;
    }
    const match: MatchInput = {};
    let serviceChars = 0;
    let methodChars = 0;
    if (m.method !== undefined) {
      const method = isObject(m.method) ? m.method : {};
      const type = str(method.type) ?? "Exact";
      if (type !== "Exact" && type !== "RegularExpression") {
        error(`${at}.method.type`, `expected Exact or RegularExpression, got ${JSON.stringify(method.type)}`);
        return undefined;
      }
      // GRPCRoute allows a leading dot on a fully-qualified service name; paths never have one.
      const service = type === "Exact" ? str(method.service)?.replace(/^\./, "") : str(method.service);
      const rpc = str(method.method);
      if (service !== undefined || rpc !== undefined) {
        const grpc: NonNullable<MatchInput["grpc"]> = {};
        if (service !== undefined) grpc.service = type === "Exact" ? { exact: service } : { regex: service };
        if (rpc !== undefined) grpc.method = type === "Exact" ? { exact: rpc } : { regex: rpc };
        match.grpc = grpc;
        serviceChars = service?.length ?? 0;
        methodChars = rpc?.length ?? 0;
      }
    }
    const headers: Record<string, { exact: string } | { regex: string }> = {};
    let bad = false;
    list(m.headers).forEach((h, i) => {
      const hAt = `${at}.headers[${i}]`;
      if (!isObject(h) || !str(h.name) || typeof h.value !== "string") {
        bad = true;
        return error(hAt, "a header match needs a name and a value");
      }
      const type = str(h.type) ?? "Exact";
      if (type !== "Exact" && type !== "RegularExpression") {
        bad = true;
        return error(`${hAt}.type`, `expected Exact or RegularExpression, got ${JSON.stringify(h.type)}`);
      }
      const headerName = (h.name as string).toLowerCase();
      // GRPCRoute: of entries naming the same header, only the first counts.
      if (headerName in headers) return ignore(hAt, `header "${h.name}" is already matched by an earlier entry, which wins`);
      headers[headerName] = type === "Exact" ? { exact: h.value } : { regex: h.value };
    });
    if (bad) return undefined;
    const headerCount = Object.keys(headers).length;
    if (headerCount > 0) match.headers = headers;
    for (const key of Object.keys(m)) if (key !== "method" && key !== "headers") ignore(`${at}.${key}`, "not a GRPCRoute match field");
    return { match, rank: [serviceChars, methodChars, headerCount] };
  }

  private uniqueName(service: string, name: string): string {
    let candidate = name;
    for (let n = 2; this.usedNames.has(`${service}/${candidate}`); n++) {
      const tail = `-${n}`;
      candidate = `${name.slice(0, 63 - tail.length).replace(/-+$/, "")}${tail}`;
    }
    this.usedNames.add(`${service}/${candidate}`);
    return candidate;
  }

  result(): GrpcRouteImport {
    const byRank = [...this.entries].sort((a, b) => {
      for (let i = 0; i < 3; i++) if (a.rank[i] !== b.rank[i]) return b.rank[i]! - a.rank[i]!;
      // A route without a creation time sorts after those with one (it is not known to be older).
      const [ta, na] = a.routeOrder;
      const [tb, nb] = b.routeOrder;
      if (ta !== tb) return ta === "" ? 1 : tb === "" ? -1 : ta < tb ? -1 : 1;
      if (na !== nb) return na < nb ? -1 : 1;
      return a.ruleIndex - b.ruleIndex || a.matchIndex - b.matchIndex;
    });
    const services: Record<string, ImportedServiceRoutes> = {};
    for (const e of byRank) {
      const svc = (services[e.service] ??= { routes: [], subsets: {} });
      svc.routes.push(e.route);
    }
    for (const [service, subsets] of this.subsets) {
      const svc = (services[service] ??= { routes: [], subsets: {} });
      for (const [name, { selector }] of subsets) svc.subsets[name] = selector;
    }
    return { services, ignored: this.ignored, errors: this.errors };
  }
}

/**
 * Imports GRPCRoutes (parsed YAML/JSON documents). Routes of several documents that attach to the
 * same service are merged in GRPCRoute precedence order. On errors, `services` holds what could be
 * imported; a caller should refuse the import rather than apply half of it.
 */
export function importGrpcRoutes(docs: readonly unknown[], ctx: GrpcRouteImportContext = {}): GrpcRouteImport {
  const importer = new Importer(ctx);
  docs.forEach((doc, i) => importer.importDocument(doc, i));
  return importer.result();
}

/** Imports one GRPCRoute document. */
export function importGrpcRoute(doc: unknown, ctx: GrpcRouteImportContext = {}): GrpcRouteImport {
  return importGrpcRoutes([doc], ctx);
}
