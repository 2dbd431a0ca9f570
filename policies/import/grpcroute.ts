// Gateway API GRPCRoute (gateway.networking.k8s.io v1, v1alpha2) in its mesh form (GAMMA:
// parentRefs of kind Service) into the policy. Each (rule, match) becomes a route matching the
// RPC's service and method (`match.grpc`, which is a match on the path /service/method) and
// headers, and the routes of a service are ordered by GRPCRoute's precedence across every
// GRPCRoute attached to it: most characters of the service, then of the method, then most header
// matches; then the oldest route, its namespace/name, and rule and match order. Parents,
// backends (subsets of the parent, resolved as for every importer by ImportPlan.backendSubset),
// header matches and the filters HTTPRoute has too are shared with it in gateway-api.ts.
import { GRPC_METHOD_NAME, GRPC_SERVICE_NAME, regexProblem } from "../grpc.ts";
import {
  backendDestinations,
  compareRouteOrder,
  noUsableBackend,
  ruleFilters,
  translateRouteRules,
  valueMatches,
  withoutForwarding,
  type RankedRoutes,
  type RouteOrder,
} from "./gateway-api.ts";
import type { Field, Manifest } from "./manifest.ts";
import type { ImportPlan, MatchInput, RouteInput } from "./plan.ts";

export const GRPC_ROUTE_VERSIONS = ["v1", "v1alpha2"];

/** How a (rule, match) ranks among all the GRPCRoute routes of a service (smaller first). */
interface GrpcPrecedence extends RouteOrder {
  serviceChars: number;
  methodChars: number;
  headers: number;
}

/** GRPCRoute routes per parent service, ordered once every GRPCRoute has been read. */
export type GrpcRoutes = RankedRoutes<GrpcPrecedence>;

export function compareGrpcPrecedence(a: GrpcPrecedence, b: GrpcPrecedence): number {
  return b.serviceChars - a.serviceChars || b.methodChars - a.methodChars || b.headers - a.headers || compareRouteOrder(a, b);
}

type MatchPart = { exact: string } | { regex: string };

/** One side of a method match (service or method), checked where it is written. */
function namePart(f: Field, key: "service" | "method", regex: boolean): MatchPart | undefined {
  let value = f.string(key);
  if (value === undefined || value === "") return undefined;
  if (regex) {
    const problem = regexProblem(value);
    if (problem) {
      f.at(key).error(problem);
      return undefined;
    }
    return { regex: value };
  }
  // GRPCRoute allows a leading dot on a fully-qualified service name; paths never have one.
  if (key === "service") value = value.replace(/^\./, "");
  const pattern = key === "service" ? GRPC_SERVICE_NAME : GRPC_METHOD_NAME;
  if (!pattern.test(value)) {
    f.at(key).error(`"${value}" is not a gRPC ${key} name, e.g. ${key === "service" ? '"edgemesh.example.v1.GreeterService"' : '"Greet"'}`);
    return undefined;
  }
  return { exact: value };
}

/** One GRPCRouteMatch: the policy's match (none for a match-everything) and its precedence. */
function grpcMatch(f: Field | undefined): { match: MatchInput | undefined; serviceChars: number; methodChars: number; headers: number } | undefined {
  const match: MatchInput = {};
  let serviceChars = 0;
  let methodChars = 0;
  const method = f?.object("method");
  if (method) {
    const type = method.string("type") ?? "Exact";
    if (type !== "Exact" && type !== "RegularExpression") {
      method.at("type").error(`unknown method match type "${type}"; give Exact or RegularExpression`);
      return undefined;
    }
    const given = ["service", "method"].filter((k) => method.at(k).present);
    const service = namePart(method, "service", type === "RegularExpression");
    const rpc = namePart(method, "method", type === "RegularExpression");
    if (given.length === 0) {
      method.error("give service, method or both");
      return undefined;
    }
    if ((given.includes("service") && !service) || (given.includes("method") && !rpc)) return undefined;
    match.grpc = { ...(service ? { service } : {}), ...(rpc ? { method: rpc } : {}) };
    serviceChars = service ? ("exact" in service ? service.exact : service.regex).length : 0;
    methodChars = rpc ? ("exact" in rpc ? rpc.exact : rpc.regex).length : 0;
  }
  const headers = valueMatches(f?.list("headers") ?? [], "header");
  const headerCount = Object.keys(headers).length;
  if (headerCount > 0) match.headers = headers;
  return { match: Object.keys(match).length > 0 ? match : undefined, serviceChars, methodChars, headers: headerCount };
}

/** The fields of a rule shared by all its matches, for one parent service. */
function ruleAction(rule: Field, service: string, m: Manifest, plan: ImportPlan): Omit<RouteInput, "name"> | undefined {
  const action: Omit<RouteInput, "name"> = {};
  ruleFilters(rule, action, service, m, plan, () => false);
  rule.at("sessionPersistence").ignore("use the service's loadBalancer consistent-hash on a header or cookie for stickiness");
  const backendRefs = rule.list("backendRefs");
  const to = backendDestinations(rule, service, m, plan);
  if (to === undefined) return undefined;
  if (noUsableBackend(to)) {
    // GRPCRoute answers UNAVAILABLE when a rule has no usable backend; gRPC, gRPC-Web and Connect
    // clients all read an HTTP 503 as UNAVAILABLE.
    rule.warn(`${backendRefs.length === 0 ? "this rule has no backendRefs" : "no backend of this rule can receive traffic"}: GRPCRoute answers such calls with UNAVAILABLE; the imported route answers 503, which gRPC clients read as UNAVAILABLE`);
    return { ...withoutForwarding(action), directResponse: { status: 503 } };
  }
  action.to = to;
  return action;
}

export function translateGRPCRoute(m: Manifest, plan: ImportPlan, routes: GrpcRoutes): void {
  translateRouteRules(m, routes, (rule, service) => ruleAction(rule, service, m, plan), (mf, route) => {
    const translated = grpcMatch(mf);
    if (!translated) return undefined;
    const { match, ...rank } = translated;
    return { routes: [match ? { ...route, match: [match] } : route], rank };
  });
}
