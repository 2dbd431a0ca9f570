// Compiles the resilience knobs (policies/resilience.ts) into the snapshot's plain data:
// defaults already filled in by the schema, conditions turned into flags, header names lower-cased,
// mirror targets resolved to the endpoints they reach.
import type { RoutePolicy, ServicePolicy } from "./schema.ts";
import { Backoff, CircuitBreaker, LoadBalancer, OutlierDetection, RetryBudget, RetryPolicy } from "./resilience.ts";
import { grpcRetryCodes } from "./grpc.ts";
import type {
  CompiledEndpoint,
  CompiledFault,
  CompiledLoadBalancer,
  CompiledMirror,
  CompiledRetry,
  CompiledRoute,
  ServiceSnapshot,
} from "./snapshot.ts";

type ResilienceOfService = Pick<ServiceSnapshot, "loadBalancer" | "circuitBreaker" | "outlierDetection" | "retryBudget">;

export function compileRetry(r: RoutePolicy["retries"] | undefined): CompiledRetry {
  const p = r ?? RetryPolicy.parse({});
  const on = new Set(p.retryOn);
  const backoff = p.backoff ?? Backoff.parse({});
  return {
    attempts: p.attempts,
    perTryTimeoutMs: p.perTryTimeoutMs ?? 0,
    on5xx: on.has("5xx"),
    onGatewayError: on.has("gateway-error"),
    onConnectFailure: on.has("connect-failure"),
    onReset: on.has("reset"),
    grpcRetryCodes: grpcRetryCodes(p.retryOn),
    statusCodes: [...new Set(p.statusCodes)],
    retryNonIdempotent: p.retryNonIdempotent,
    maxBufferBytes: p.maxBufferBytes,
    backoffBaseMs: backoff.baseMs,
    backoffMaxMs: backoff.maxMs,
    maxRetryAfterMs: backoff.maxRetryAfterMs,
  };
}

function compileFault(f: NonNullable<RoutePolicy["fault"]>): CompiledFault {
  const out: CompiledFault = {
    delayPercent: f.delay?.percent ?? 0,
    delayMs: f.delay?.ms ?? 0,
    abortPercent: f.abort?.percent ?? 0,
    abortStatus: f.abort?.status ?? 503,
    headerName: f.onlyWithHeader?.name.toLowerCase() ?? "",
    bypassRetries: f.bypassRetries,
  };
  if (f.onlyWithHeader?.value !== undefined) out.headerValue = f.onlyWithHeader.value;
  return out;
}

/** The per-route resilience fields; service mirrors get their endpoints in `linkServiceMirrors`. */
export function compileRouteResilience(
  r: RoutePolicy,
  endpoints: CompiledEndpoint[],
  subsets: Record<string, number[]>,
): Pick<CompiledRoute, "retry" | "hedge" | "fault" | "mirror" | "streamIdleTimeoutMs"> {
  const out: Pick<CompiledRoute, "retry" | "hedge" | "fault" | "mirror" | "streamIdleTimeoutMs"> = { streamIdleTimeoutMs: r.streamIdleTimeoutMs, retry: compileRetry(r.retries) };
  if (r.hedge) out.hedge = { afterMs: r.hedge.afterMs };
  if (r.fault) out.fault = compileFault(r.fault);
  if (r.mirror) {
    const mirror: CompiledMirror = r.mirror.subset !== undefined
      ? { percent: r.mirror.percent, target: `subset:${r.mirror.subset}`, endpoints: (subsets[r.mirror.subset] ?? []).map((i) => endpoints[i]!) }
      : { percent: r.mirror.percent, target: `service:${r.mirror.service}`, endpoints: [] };
    out.mirror = mirror;
  }
  return out;
}

export function compileServiceResilience(policy: ServicePolicy): ResilienceOfService {
  const lbPolicy = policy.loadBalancer ?? LoadBalancer.parse({});
  const lb: CompiledLoadBalancer = {
    algorithm: lbPolicy.algorithm,
    maglevTableSize: lbPolicy.maglevTableSize,
    ewmaDecayMs: lbPolicy.ewmaDecayMs,
    errorPenaltyMs: lbPolicy.errorPenaltyMs,
    panicThresholdPercent: lbPolicy.panicThresholdPercent,
    localityPreference: lbPolicy.localityPreference,
    zoneLabel: lbPolicy.zoneLabel,
  };
  const h = lbPolicy.hashOn;
  if (h) {
    lb.hashOn = h.header !== undefined ? { kind: "header", name: h.header.toLowerCase() }
      : h.cookie !== undefined ? { kind: "cookie", name: h.cookie }
      : { kind: "query", name: h.query! };
  }
  return {
    loadBalancer: lb,
    circuitBreaker: { ...(policy.circuitBreaker ?? CircuitBreaker.parse({})) },
    outlierDetection: { ...(policy.outlierDetection ?? OutlierDetection.parse({})) },
    retryBudget: { ...(policy.retryBudget ?? RetryBudget.parse({})) },
  };
}

/** Fills in the endpoints of mirrors that target another service, once every service is compiled. */
export function linkServiceMirrors(services: Record<string, { endpoints: CompiledEndpoint[]; routes: CompiledRoute[] }>): void {
  for (const svc of Object.values(services)) {
    for (const route of svc.routes) {
      if (route.mirror?.target.startsWith("service:")) {
        route.mirror.endpoints = services[route.mirror.target.slice("service:".length)]?.endpoints ?? [];
      }
    }
  }
}
