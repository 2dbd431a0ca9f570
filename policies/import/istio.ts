// Istio VirtualService and DestinationRule (networking.istio.io v1alpha3, v1beta1, v1) into the
// policy: HTTP routes with their matches, weighted subsets, retries, timeout, fault, mirror,
// header operations, rewrite, redirect and direct response; subsets from DestinationRule labels;
// load balancer, connection pool limits (as the circuit breaker) and outlier detection.
import { REDIRECT_STATUS_CODES } from "../filters.ts";
import { RETRY_CONDITIONS } from "../resilience.ts";
import { durationField, MAX_TIMEOUT_MS, serviceFromHost, timeoutWithin } from "./kube.ts";
import type { Field, Manifest } from "./manifest.ts";
import { methodsOf, PORT_REASON, splitForPrefixReplacement, stringMatch } from "./common.ts";
import {
  headerModifier,
  setSetting,
  type CircuitBreakerInput,
  type DestinationInput,
  type HeaderMatchInput,
  type HeaderModifierInput,
  type ImportPlan,
  type LoadBalancerInput,
  type MatchInput,
  type OutlierDetectionInput,
  type RouteInput,
} from "./plan.ts";

export const ISTIO_GROUP = "networking.istio.io";
export const ISTIO_VERSIONS = ["v1alpha3", "v1beta1", "v1"];

const MESH_GATEWAY = "mesh";
const ONE_SERVICE = "an edgemesh route splits traffic among subsets of its own service";
const PER_SERVICE = "edgemesh applies load balancing, circuit breaking and outlier detection per service, not per subset";

// ---- VirtualService ---------------------------------------------------------------------------

/** Istio's `headers: { request: {set, add, remove}, response: {...} }` as the policy's two modifiers. */
function headerOperations(headers: Field | undefined): { requestHeaders?: HeaderModifierInput; responseHeaders?: HeaderModifierInput } {
  if (!headers) return {};
  const out: { requestHeaders?: HeaderModifierInput; responseHeaders?: HeaderModifierInput } = {};
  for (const [side, key] of [["request", "requestHeaders"], ["response", "responseHeaders"]] as const) {
    const ops = headers.object(side);
    if (!ops) continue;
    const pairs = (op: string): [string, string, Field][] =>
      ops.entries(op).flatMap(([name, f]) => {
        f.use();
        return typeof f.value === "string" ? [[name, f.value, f] as [string, string, Field]] : (f.error("expected a string value"), []);
      });
    const remove = ops.list("remove").flatMap((f): [string, Field][] => (f.use(), typeof f.value === "string" ? [[f.value, f]] : []));
    const modifier = headerModifier(pairs("set"), pairs("add"), remove);
    if (modifier) out[key] = modifier;
  }
  return out;
}

function headerMatch(field: Field): HeaderMatchInput | undefined {
  // Istio: an empty match object means "the header is present".
  if (typeof field.value === "object" && field.value !== null && Object.keys(field.value).length === 0) {
    field.use();
    return { present: true };
  }
  field.use();
  return stringMatch(field);
}

/** One Istio HTTPMatchRequest; null when the match never applies to mesh traffic. */
function istioMatch(f: Field): MatchInput | null | undefined {
  f.use();
  const gateways = f.strings("gateways");
  if (gateways.length > 0 && !gateways.includes(MESH_GATEWAY)) {
    f.ignore(`this match only applies at gateway(s) ${gateways.join(", ")}, never to mesh traffic; it is left out`);
    return null;
  }
  f.string("name");
  const m: MatchInput = {};
  const uri = f.object("uri");
  if (uri) {
    const path = stringMatch(uri);
    if (!path) return undefined;
    m.path = path;
  }
  const method = f.object("method");
  if (method) {
    const sm = stringMatch(method);
    const methods = sm && methodsOf(sm, method);
    if (!methods) return undefined;
    m.methods = methods;
  }
  const headers: Record<string, HeaderMatchInput> = {};
  for (const [name, hf] of f.entries("headers")) {
    if (name.startsWith(":")) {
      hf.ignore(`pseudo-header "${name}" cannot be matched as a header; the match is broader without it`);
      continue;
    }
    const hm = headerMatch(hf);
    if (hm) headers[name.toLowerCase()] = hm;
  }
  for (const [name, hf] of f.entries("withoutHeaders")) {
    if (typeof hf.value === "object" && hf.value !== null && Object.keys(hf.value).length === 0) {
      hf.use();
      headers[name.toLowerCase()] = { present: false };
    } else hf.ignore("only an empty withoutHeaders match (the header is absent) has an edgemesh equivalent; the match is broader without this condition");
  }
  if (Object.keys(headers).length > 0) m.headers = headers;
  const query: Record<string, HeaderMatchInput> = {};
  for (const [name, qf] of f.entries("queryParams")) {
    const qm = headerMatch(qf);
    if (qm) query[name] = qm;
  }
  if (Object.keys(query).length > 0) m.query = query;
  const ignoreCase = f.boolean("ignoreUriCase");
  if (ignoreCase) f.at("ignoreUriCase").ignore("case-insensitive URI matching is not supported: the path match is case-sensitive");
  const broader = "the match is broader without this condition";
  f.at("sourceLabels").ignore(`matching on the caller's pod labels is not supported; ${broader}`);
  f.at("sourceNamespace").ignore(`matching on the caller's namespace is not supported; ${broader}`);
  f.at("port").ignore(`${PORT_REASON}; ${broader}`);
  f.at("authority").ignore(`a sidecar serves one service, so the authority is not matched; ${broader}`);
  f.at("scheme").ignore(`matching on the scheme is not supported; ${broader}`);
  f.at("statPrefix").ignore("edgemesh names route statistics by route name");
  return m;
}

/** Istio retryOn ("5xx,reset,503") as the policy's conditions and status codes. */
function retryConditions(f: Field): { retryOn: (typeof RETRY_CONDITIONS)[number][]; statusCodes: number[] } | undefined {
  const raw = f.string("retryOn");
  if (raw === undefined) return undefined;
  const retryOn = new Set<(typeof RETRY_CONDITIONS)[number]>();
  const statusCodes = new Set<number>();
  const dropped: string[] = [];
  for (const part of raw.split(",").map((p) => p.trim()).filter(Boolean)) {
    if ((RETRY_CONDITIONS as readonly string[]).includes(part)) retryOn.add(part as (typeof RETRY_CONDITIONS)[number]);
    else if (part === "refused-stream") retryOn.add("reset");
    else if (part === "retriable-4xx") statusCodes.add(409);
    else if (/^\d{3}$/.test(part) && Number(part) >= 100 && Number(part) <= 599) statusCodes.add(Number(part));
    else if (part !== "retriable-status-codes") dropped.push(part);
  }
  if (dropped.length > 0) {
    f.at("retryOn").ignore(`conditions without an edgemesh equivalent were left out: ${dropped.join(", ")} (they are Envoy-specific)`);
  }
  return { retryOn: [...retryOn], statusCodes: [...statusCodes] };
}

function retries(f: Field): RouteInput["retries"] {
  const out: NonNullable<RouteInput["retries"]> = {};
  const attempts = f.number("attempts");
  if (attempts !== undefined) {
    if (attempts > 10) f.at("attempts").warn(`${attempts} retries is above edgemesh's limit; set to 10`);
    out.attempts = Math.max(0, Math.min(10, Math.floor(attempts)));
  }
  const perTry = durationField(f, "perTryTimeout");
  if (perTry !== undefined) out.perTryTimeoutMs = Math.min(MAX_TIMEOUT_MS, Math.max(1, perTry));
  // Istio's default conditions when retryOn is not given: connect-failure, refused-stream
  // (a reset), and the gRPC statuses unavailable and cancelled.
  const conditions = retryConditions(f) ?? { retryOn: ["connect-failure", "reset", "unavailable", "cancelled"], statusCodes: [] };
  out.retryOn = conditions.retryOn;
  if (conditions.statusCodes.length > 0) out.statusCodes = conditions.statusCodes;
  const backoff = durationField(f, "backoff");
  if (backoff !== undefined) out.backoff = { baseMs: Math.min(10_000, Math.max(1, backoff)), maxMs: Math.min(60_000, Math.max(250, backoff * 10)) };
  f.at("retryRemoteLocalities").ignore("edgemesh retries on another endpoint of the same subset, preferring the caller's zone");
  f.at("retryIgnorePreviousHosts").ignore("edgemesh always retries on another endpoint when there is one");
  return out;
}

/** Istio's percentage: `percentage.value` (double) or the old integer `percent`. */
function percentOf(f: Field, what: string): number {
  const percentage = f.object("percentage");
  const value = percentage?.number("value");
  if (value !== undefined) return Math.max(0, Math.min(100, value));
  const old = f.number("percent");
  if (old !== undefined) return Math.max(0, Math.min(100, old));
  f.warn(`no percentage: Istio ${what} no request, so neither does edgemesh (percent 0)`);
  return 0;
}

function fault(f: Field): RouteInput["fault"] {
  const out: NonNullable<RouteInput["fault"]> = { bypassRetries: true };
  const delay = f.object("delay");
  if (delay) {
    const ms = durationField(delay, "fixedDelay");
    delay.at("exponentialDelay").ignore("exponential delays are not supported; only fixedDelay");
    if (ms !== undefined) out.delay = { percent: percentOf(delay, "delays"), ms: Math.min(60_000, Math.max(1, ms)) };
  }
  const abort = f.object("abort");
  if (abort) {
    const status = abort.number("httpStatus");
    abort.at("grpcStatus").ignore("edgemesh injects aborts as HTTP statuses; a gRPC-status abort has no equivalent");
    abort.at("http2Error").ignore("HTTP/2 stream errors cannot be produced by a Worker");
    if (status !== undefined) {
      if (status < 200 || status > 599) abort.at("httpStatus").error(`abort status ${status} is outside 200-599`);
      else out.abort = { percent: percentOf(abort, "aborts"), status };
    }
  }
  return out.delay || out.abort ? out : undefined;
}

/** An Istio Destination to a subset of `service`, or undefined (with the reason) when it goes elsewhere. */
function destinationSubset(dest: Field, service: string, m: Manifest, plan: ImportPlan): { subset: string } | { otherService: string } | undefined {
  const host = dest.string("host") ?? "";
  const target = serviceFromHost(host, m.namespace);
  dest.at("port").ignore(PORT_REASON);
  if ("problem" in target) return { otherService: host };
  if (target.service !== service) return { otherService: target.service };
  const subset = dest.string("subset");
  if (subset === undefined) return { subset: plan.allEndpointsSubset(service, m, dest) };
  if (plan.subsetSelector(service, subset) === undefined) {
    dest.at("subset").error(`subset "${subset}" of "${service}" is not defined: include the DestinationRule that defines it, or define it in the base document`);
    return undefined;
  }
  return { subset };
}

function mirror(http: Field, service: string, m: Manifest, plan: ImportPlan): RouteInput["mirror"] {
  let dest: Field | undefined;
  let percentField: Field | undefined;
  const mirrors = http.list("mirrors");
  if (mirrors.length > 0) {
    dest = mirrors[0]!.use().object("destination");
    percentField = mirrors[0]!.object("percentage");
    mirrors.slice(1).forEach((extra) => extra.ignore("edgemesh mirrors each route to one target; only the first of mirrors is kept"));
  } else {
    dest = http.object("mirror");
    percentField = http.object("mirrorPercentage");
  }
  if (!dest) return undefined;
  let percent = 100;
  const value = percentField?.number("value");
  const old = http.number("mirrorPercent");
  if (value !== undefined) percent = value;
  else if (old !== undefined) percent = old;
  percent = Math.max(0, Math.min(100, percent));
  const target = destinationSubset(dest, service, m, plan);
  if (!target) return undefined;
  if ("subset" in target) return { subset: target.subset, percent };
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(target.otherService)) {
    dest.ignore(`mirror target "${target.otherService}" is not a mesh service`);
    return undefined;
  }
  dest.at("subset").ignore("a mirror to another service goes to all its endpoints; edgemesh cannot mirror to a subset of another service");
  return { service: target.otherService, percent };
}

function redirect(f: Field): RouteInput["redirect"] | undefined {
  const out: NonNullable<RouteInput["redirect"]> = {};
  const code = f.number("redirectCode") ?? 301; // Istio's default
  if (!(REDIRECT_STATUS_CODES as readonly number[]).includes(code)) {
    f.at("redirectCode").error(`redirect code ${code}: edgemesh redirects with ${REDIRECT_STATUS_CODES.join(", ")}`);
    return undefined;
  }
  out.statusCode = code as (typeof REDIRECT_STATUS_CODES)[number];
  const scheme = f.string("scheme");
  if (scheme !== undefined) {
    if (scheme === "http" || scheme === "https") out.scheme = scheme;
    else f.at("scheme").error(`scheme "${scheme}": give http or https`);
  }
  const authority = f.string("authority");
  if (authority !== undefined) {
    const [host, port] = authority.toLowerCase().split(":");
    out.hostname = host!;
    if (port !== undefined) out.port = Number(port);
  }
  const port = f.number("port");
  if (port !== undefined) out.port = port;
  const derive = f.string("derivePort");
  if (derive === "FROM_PROTOCOL_DEFAULT" && scheme === undefined) {
    f.at("derivePort").ignore("without a scheme edgemesh keeps the request's port; the protocol's default port is used only when the redirect names a scheme");
  } else if (derive === "FROM_REQUEST_PORT" && scheme !== undefined) {
    f.at("derivePort").ignore("with a scheme edgemesh uses that scheme's default port, not the request's");
  }
  const uri = f.string("uri");
  const prefixRewrite = f.string("prefixRewrite");
  if (uri !== undefined) out.path = { replaceFullPath: uri };
  else if (prefixRewrite !== undefined) out.path = { replacePrefixMatch: prefixRewrite };
  return out;
}

function directResponse(f: Field): RouteInput["directResponse"] | undefined {
  const status = f.number("status");
  if (status === undefined || status < 200 || status > 599) {
    f.error(`a direct response needs a status in 200-599 (got ${status ?? "none"})`);
    return undefined;
  }
  const out: NonNullable<RouteInput["directResponse"]> = { status };
  const body = f.object("body");
  if (body) {
    const text = body.string("string");
    const bytes = body.string("bytes");
    if (text !== undefined) out.body = text;
    else if (bytes !== undefined) {
      try {
        const binary = atob(bytes);
        out.body = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
      } catch {
        body.at("bytes").ignore("the body is not base64-encoded UTF-8 text; edgemesh direct responses carry text");
      }
    }
  }
  return out;
}

function rewrite(f: Field, route: RouteInput): void {
  const out: NonNullable<RouteInput["rewrite"]> = {};
  const uri = f.string("uri");
  if (uri !== undefined) out.path = { replacePrefixMatch: uri };
  const authority = f.string("authority");
  if (authority !== undefined) out.hostname = authority.toLowerCase().split(":")[0]!;
  f.at("uriRegexRewrite").ignore("regex rewrites are not supported; use a prefix or full path rewrite");
  if (out.path || out.hostname) route.rewrite = out;
}

function virtualServiceRoute(http: Field, index: number, service: string, m: Manifest, plan: ImportPlan): RouteInput[] {
  http.use();
  const name = http.string("name") ?? `${m.name}-${index}`;
  const route: RouteInput = { name };

  const matchFields = http.list("match");
  if (matchFields.length > 0) {
    const matches = matchFields.map(istioMatch);
    if (matches.some((x) => x === undefined)) return [];
    const mesh = matches.filter((x): x is MatchInput => x !== null);
    if (mesh.length === 0) {
      http.ignore("every match of this route applies only at gateways, never to mesh traffic");
      return [];
    }
    route.match = mesh;
  }

  const redirectField = http.object("redirect");
  const directField = http.object("directResponse");
  const destinations = http.list("route");
  if (http.object("delegate")) {
    http.ignore("delegate VirtualServices are not followed; import the delegate's routes with the root's host instead");
    return [];
  }
  if ((redirectField || directField) && destinations.length > 0) {
    http.at("route").ignore("a route that redirects or answers directly forwards nothing; its destinations are left out");
  }
  if (redirectField) {
    const r = redirect(redirectField);
    if (!r) return [];
    route.redirect = r;
  } else if (directField) {
    const d = directResponse(directField);
    if (!d) return [];
    route.directResponse = d;
  } else {
    const to: DestinationInput[] = [];
    for (const d of destinations) {
      d.use();
      const dest = d.object("destination");
      if (!dest) continue;
      const target = destinationSubset(dest, service, m, plan);
      if (!target) return [];
      if ("otherService" in target) {
        d.ignore(`this destination is "${target.otherService}", not "${service}": ${ONE_SERVICE}, so its share of the traffic is left out`);
        continue;
      }
      const weight = d.number("weight");
      const destination: DestinationInput = { subset: target.subset, weight: weight ?? (destinations.length === 1 ? 100 : 0), ...headerOperations(d.object("headers")) };
      to.push(destination);
    }
    if (to.length === 0) {
      http.ignore(`no destination of this route is a subset of "${service}" (${ONE_SERVICE}); the route is left out`);
      return [];
    }
    route.to = to;
  }

  const rewriteField = http.object("rewrite");
  if (rewriteField) rewrite(rewriteField, route);
  const timeout = durationField(http, "timeout");
  if (timeout !== undefined) route.timeoutMs = timeoutWithin(timeout, http.at("timeout"), "timeout");
  const retriesField = http.object("retries");
  if (retriesField) route.retries = retries(retriesField);
  const faultField = http.object("fault");
  if (faultField) {
    const f = fault(faultField);
    if (f) route.fault = f;
  }
  const mirrored = mirror(http, service, m, plan);
  if (mirrored) route.mirror = mirrored;
  Object.assign(route, headerOperations(http.object("headers")));
  http.at("corsPolicy").ignore("CORS is left to the service: edgemesh does not answer preflights");
  if (route.redirect || route.directResponse) {
    // Istio allows these on a redirect; the policy refuses what could never apply.
    for (const key of ["fault", "mirror", "rewrite", "requestHeaders"] as const) {
      if (route[key] !== undefined) {
        http.at(key === "requestHeaders" ? "headers" : key).warn(`${key} has no effect on a route that answers itself; left out`);
        delete route[key];
      }
    }
  }

  const split = splitForPrefixReplacement(route);
  if (!split) {
    (rewriteField ?? redirectField)!.at(rewriteField ? "uri" : "prefixRewrite").ignore("replacing the matched prefix needs every match to test the path on a prefix or exact path; this route has a regex or no path match, so the path is not rewritten");
    if (route.rewrite?.path) delete route.rewrite.path;
    if (route.rewrite && !route.rewrite.hostname) delete route.rewrite;
    if (route.redirect?.path) delete route.redirect.path;
    return [route];
  }
  return split;
}

export function translateVirtualService(m: Manifest, plan: ImportPlan): void {
  const spec = m.root().object("spec");
  if (!spec) {
    m.error(["spec"], "a VirtualService needs a spec");
    return;
  }
  const gateways = spec.strings("gateways");
  if (gateways.length > 0 && !gateways.includes(MESH_GATEWAY)) {
    m.ignoreAll(`bound to gateway(s) ${gateways.join(", ")} only, not to "mesh": edgemesh imports the routing between services (north-south gateways are out of scope)`);
    return;
  }
  gateways.forEach((g, i) => g !== MESH_GATEWAY && spec.at("gateways").at(i).ignore("gateway bindings are not imported; the routes apply to mesh traffic"));
  spec.at("exportTo").ignore("every sidecar of a service applies its routes; there is no visibility scoping");
  spec.at("tcp").ignore("edgemesh routes HTTP; TCP routes are not imported");
  spec.at("tls").ignore("edgemesh routes HTTP; TLS (SNI) routes are not imported");

  const hostsField = spec.at("hosts");
  const services: string[] = [];
  spec.strings("hosts").forEach((host, i) => {
    const r = serviceFromHost(host, m.namespace);
    if ("problem" in r) hostsField.at(i).ignore(r.problem);
    else if (!services.includes(r.service)) services.push(r.service);
  });
  if (services.length === 0) {
    m.ignoreAll("none of its hosts is a mesh service (a Kubernetes service name)");
    return;
  }
  const https = spec.list("http");
  for (const service of services) {
    const plannedRoutes = plan.service(service).routes;
    https.forEach((http, i) => {
      for (const route of virtualServiceRoute(http, i, service, m, plan)) plannedRoutes.push({ route, from: m });
    });
  }
}

// ---- DestinationRule --------------------------------------------------------------------------

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function loadBalancer(f: Field): LoadBalancerInput | undefined {
  const out: LoadBalancerInput = {};
  const simple = f.string("simple");
  const simpleMap: Record<string, LoadBalancerInput["algorithm"]> = { ROUND_ROBIN: "round-robin", LEAST_REQUEST: "least-request", LEAST_CONN: "least-request", RANDOM: "weighted-random" };
  if (simple !== undefined) {
    if (simpleMap[simple]) out.algorithm = simpleMap[simple];
    else if (simple === "UNSPECIFIED") { /* Istio's default: keep edgemesh's default balancer */ }
    else f.at("simple").ignore(simple === "PASSTHROUGH" ? "PASSTHROUGH sends to the original destination address; edgemesh always picks among the service's endpoints" : `unknown balancer "${simple}"; edgemesh's default (p2c-ewma) is kept`);
  }
  const hash = f.object("consistentHash");
  if (hash) {
    const header = hash.string("httpHeaderName");
    const cookie = hash.object("httpCookie");
    const query = hash.string("httpQueryParameterName");
    if (header !== undefined) out.hashOn = { header };
    else if (query !== undefined) out.hashOn = { query };
    else if (cookie) {
      const name = cookie.string("name");
      if (name !== undefined) out.hashOn = { cookie: name };
      cookie.ignoreEach(["path", "ttl", "attributes"], "edgemesh hashes on a cookie the client already sends; it never sets one");
    }
    hash.at("useSourceIp").ignore("hashing on the source IP is not supported (callers inside the mesh reach the sidecar over bindings); hash on a header instead");
    const ring = hash.object("ringHash");
    if (ring) {
      ring.at("minimumRingSize").ignore("edgemesh uses Maglev for consistent hashing, not a ring hash");
      ring.ignore("edgemesh uses Maglev for consistent hashing, not a ring hash");
    }
    hash.at("minimumRingSize").ignore("edgemesh uses Maglev for consistent hashing, not a ring hash");
    const maglev = hash.object("maglev");
    const tableSize = maglev?.number("tableSize");
    if (tableSize !== undefined) {
      if (isPrime(tableSize) && tableSize >= 7 && tableSize <= 131_071) out.maglevTableSize = tableSize;
      else maglev!.at("tableSize").ignore(`edgemesh's Maglev table size is a prime in 7-131071; ${tableSize} is not, so the default 65537 is kept`);
    }
    if (out.hashOn) out.algorithm = "consistent-hash";
  }
  const locality = f.object("localityLbSetting");
  if (locality) {
    const enabled = locality.boolean("enabled");
    if (enabled === false) out.localityPreference = false;
    locality.ignoreEach(["distribute", "failover", "failoverPriority"], "edgemesh prefers endpoints in the caller's zone when any is available; weighted distribution and failover chains are not supported");
  }
  f.at("zoneAwareLbSetting").ignore("edgemesh prefers endpoints in the caller's zone (loadBalancer.localityPreference)");
  f.at("warmupDurationSecs").ignore("slow start is not supported");
  f.at("warmup").ignore("slow start is not supported");
  return Object.keys(out).length > 0 ? out : undefined;
}

function connectionPool(f: Field): CircuitBreakerInput | undefined {
  const out: CircuitBreakerInput = {};
  const http = f.object("http");
  const tcp = f.object("tcp");
  const maxRequests = http?.number("http2MaxRequests");
  const maxPending = http?.number("http1MaxPendingRequests");
  const maxConnections = tcp?.number("maxConnections");
  if (maxRequests !== undefined) out.maxConcurrent = Math.max(1, Math.min(100_000, maxRequests));
  else if (maxConnections !== undefined) out.maxConcurrent = Math.max(1, Math.min(100_000, maxConnections));
  if (maxRequests !== undefined && maxConnections !== undefined) {
    tcp!.at("maxConnections").ignore("http2MaxRequests already limits concurrent requests (circuitBreaker.maxConcurrent)");
  }
  if (maxPending !== undefined) out.maxPending = Math.max(0, Math.min(100_000, maxPending));
  const noConnections = "Workers fetch manages connections; edgemesh limits requests, not connections";
  http?.ignoreEach(["maxRequestsPerConnection", "idleTimeout", "h2UpgradePolicy", "useClientProtocol", "maxConcurrentStreams", "http2KeepAlive"], noConnections);
  http?.at("maxRetries").ignore("edgemesh bounds retries with its retry budget (retryBudget) instead of a count of concurrent retries");
  tcp?.ignoreEach(["connectTimeout", "tcpKeepalive", "maxConnectionDuration", "idleTimeout"], noConnections);
  return Object.keys(out).length > 0 ? out : undefined;
}

function outlierDetection(f: Field, lb: LoadBalancerInput | undefined): { outlier: OutlierDetectionInput; lb: LoadBalancerInput | undefined } {
  // Istio's defaults where they differ from edgemesh's: no gateway-error ejection, 10% at most.
  const out: OutlierDetectionInput = { consecutiveGatewayErrors: 0, maxEjectionPercent: 10 };
  const c5xx = f.number("consecutive5xxErrors");
  const cGateway = f.number("consecutiveGatewayErrors");
  const cOld = f.number("consecutiveErrors");
  if (c5xx !== undefined) out.consecutive5xx = Math.max(0, Math.min(1000, c5xx));
  if (cGateway !== undefined) out.consecutiveGatewayErrors = Math.max(0, Math.min(1000, cGateway));
  else if (cOld !== undefined) out.consecutiveGatewayErrors = Math.max(0, Math.min(1000, cOld)); // the deprecated field counted gateway errors
  const base = durationField(f, "baseEjectionTime");
  if (base !== undefined) out.baseEjectionMs = Math.max(10, Math.min(3_600_000, base));
  const maxPercent = f.number("maxEjectionPercent");
  if (maxPercent !== undefined) out.maxEjectionPercent = Math.max(0, Math.min(100, maxPercent));
  if (out.baseEjectionMs !== undefined && out.baseEjectionMs > 300_000) out.maxEjectionMs = Math.min(3_600_000, out.baseEjectionMs * 10);
  let outLb = lb;
  const minHealth = f.number("minHealthPercent");
  // Below this share of healthy endpoints Istio stops ejecting and uses them all: edgemesh's panic threshold.
  if (minHealth !== undefined) outLb = { ...lb, panicThresholdPercent: Math.max(0, Math.min(100, minHealth)) };
  f.at("interval").ignore("edgemesh ejects as failures happen (consecutive counts per request), not on a sweep interval");
  f.at("splitExternalLocalOriginErrors").ignore("edgemesh counts connect failures and resets as gateway errors (consecutiveGatewayErrors)");
  f.at("consecutiveLocalOriginFailures").ignore("edgemesh counts connect failures and resets as gateway errors (consecutiveGatewayErrors)");
  f.at("outlierDetectionHttpErrorCodes").ignore("edgemesh counts every 5xx (consecutive5xx) and 502/503/504 (consecutiveGatewayErrors)");
  return { outlier: out, lb: outLb };
}

function trafficPolicy(f: Field, service: string, m: Manifest, plan: ImportPlan): void {
  const svc = plan.service(service);
  const lbField = f.object("loadBalancer");
  let lb = lbField ? loadBalancer(lbField) : undefined;
  const poolField = f.object("connectionPool");
  if (poolField) {
    const cb = connectionPool(poolField);
    if (cb) setSetting(svc, "circuitBreaker", cb, m, poolField);
  }
  const odField = f.object("outlierDetection");
  if (odField) {
    const od = outlierDetection(odField, lb);
    lb = od.lb;
    setSetting(svc, "outlierDetection", od.outlier, m, odField);
  }
  if (lb) setSetting(svc, "loadBalancer", lb, m, lbField ?? odField!);
  const budget = f.object("retryBudget");
  if (budget) {
    const percent = budget.object("percent")?.number("value") ?? budget.number("percent");
    if (percent !== undefined) setSetting(svc, "retryBudget", { percent: Math.max(0, Math.min(1000, percent)) }, m, budget);
    budget.ignoreEach(["minRetryConcurrency"], "edgemesh's floor is minRetriesPerSecond (a rate), not a concurrency");
    budget.ignoreEach(["budgetInterval"], "edgemesh counts the budget over retryBudget.windowMs");
  }
  f.at("tls").ignore("transport security is the platform's: Worker service bindings, or HTTPS to origin endpoints");
  f.at("portLevelSettings").ignore(PORT_REASON);
  f.at("tunnel").ignore("tunnelling is not supported");
  f.at("proxyProtocol").ignore("the PROXY protocol is not supported");
}

export function translateDestinationRule(m: Manifest, plan: ImportPlan): void {
  const spec = m.root().object("spec");
  if (!spec) {
    m.error(["spec"], "a DestinationRule needs a spec");
    return;
  }
  const host = spec.string("host") ?? "";
  const target = serviceFromHost(host, m.namespace);
  if ("problem" in target) {
    m.ignoreAll(target.problem);
    return;
  }
  const service = target.service;
  for (const s of spec.list("subsets")) {
    s.use();
    const name = s.string("name");
    if (name === undefined) {
      s.error("a subset needs a name");
      continue;
    }
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
      s.at("name").error(`subset name "${name}" must be lowercase letters, digits and '-', 1-63 characters`);
      continue;
    }
    plan.defineSubset(service, name, s.stringMap("labels") ?? {}, m, s);
    s.at("trafficPolicy").ignore(PER_SERVICE);
  }
  const policy = spec.object("trafficPolicy");
  if (policy) trafficPolicy(policy, service, m, plan);
  spec.at("exportTo").ignore("every sidecar of a service applies its policy; there is no visibility scoping");
  spec.at("workloadSelector").ignore("the policy applies to every sidecar of the service");
}

export const ISTIO_KINDS: Record<string, (m: Manifest, plan: ImportPlan) => void> = {
  VirtualService: translateVirtualService,
  DestinationRule: translateDestinationRule,
};
