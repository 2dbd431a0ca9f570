// The sidecar: one per service, the same code for every service. This file only composes the
// pipeline stages; each stage is its own module with its own tests.
import type { MeshControlRpc } from "../../policies/snapshot.ts";
import { DEFAULT_RELAY_SHARDS, relayName, relayRegion, relayShard, type RelayRegion, type RequestPlace } from "../../policies/distribution.ts";
import { allLoads, hashKeyOf } from "./balance.ts";
import { hasAdminToken } from "../../auth/admin-token.ts";
import { methodAllowsBody, planBody, type BodyPlan } from "./body.ts";
import { admit, newBreaker, release } from "./breaker.ts";
import { budgetStatus, newRetryBudget } from "./budget.ts";
import { decideFault, faultApplies, faultResponse } from "./fault.ts";
import { upstreamFor } from "./forward.ts";
import { answerWithoutForwarding, shapeResponse, shapeUpstream } from "./filters.ts";
import { mirrorStats, pickMirrorEndpoint, sendShadow, shouldMirror } from "./mirror.ts";
import { newOutlierState, outlierReport } from "./outlier.ts";
import { proxy, type ProxyResult, type ResilienceState } from "./proxy.ts";
import { mayRetryMethod } from "./retry.ts";
import { matchRoute, type RequestFacts } from "./match.ts";
import { DEBUG_HEADER, meshError } from "./responses.ts";
import { currentSnapshot, snapshotStatus, type SnapshotSource } from "./snapshot-cache.ts";
import { pickSubset } from "./split.ts";
import { sleep } from "./sleep.ts";
import { probeBinding } from "./probe.ts";
import { recordOutcome } from "./report.ts";
import { callerOf } from "./caller.ts";
import { startTrace, type RequestTrace } from "./telemetry.ts";
import { recordRequest, telemetryStatus } from "./telemetry-recorder.ts";
import type { TelemetryEnv } from "./telemetry-sink.ts";

export interface SidecarEnv extends TelemetryEnv {
  SERVICE_NAME: string;
  MESH_NAME: string;
  MESH_CONTROL: DurableObjectNamespace;
  /** TTL used until the first snapshot says its own (ms). */
  SNAPSHOT_TTL_MS?: string;
  /** How long a cold isolate waits for the control plane (ms). */
  COLD_SNAPSHOT_TIMEOUT_MS?: string;
  /** Guards the sidecar's /__edgemesh/ debug endpoints; without it they are all refused. */
  EDGEMESH_ADMIN_TOKEN?: string;
  /** The distribution tier's relays (MeshRelay); without it check-ins go to MESH_CONTROL. */
  MESH_RELAY?: DurableObjectNamespace;
  /** Relays per region (default 4); the same on every sidecar of a service. */
  EDGEMESH_RELAY_SHARDS?: string;
}

const DEBUG_PREFIX = "/__edgemesh/";

// Per-isolate resilience state of this sidecar's service: plain data, never I/O objects.
const resilience: ResilienceState = { outliers: newOutlierState(), budget: newRetryBudget() };
const breaker = newBreaker();

// Built once per env (the same object for every request of an isolate), not per request. It holds
// the namespace binding, never a stub: a stub is made inside the request that uses it.
let source: SnapshotSource | undefined;
let sourceEnv: SidecarEnv | undefined;
/** Where this isolate runs, for its relay's location hint; an isolate never moves. */
let region: RelayRegion | undefined;

function sourceFor(env: SidecarEnv, place: RequestPlace | undefined): SnapshotSource {
  if (source === undefined || sourceEnv !== env) {
    sourceEnv = env;
    const src: SnapshotSource = {
      meshName: env.MESH_NAME,
      serviceName: env.SERVICE_NAME,
      control: () => controlFor(env, src),
      colo: "local",
      defaultTtlMs: Number(env.SNAPSHOT_TTL_MS ?? 1000),
      coldTimeoutMs: Number(env.COLD_SNAPSHOT_TIMEOUT_MS ?? 5000),
      shareInColo: env.MESH_RELAY !== undefined,
    };
    source = src;
  }
  if (typeof place?.colo === "string") source.colo = place.colo;
  region ??= relayRegion(place);
  return source;
}

/** The relay of this isolate's region and shard, or MeshControl itself without the tier. */
function controlFor(env: SidecarEnv, src: SnapshotSource): MeshControlRpc {
  if (!env.MESH_RELAY) return env.MESH_CONTROL.get(env.MESH_CONTROL.idFromName(env.MESH_NAME)) as unknown as MeshControlRpc;
  const hint = region ?? "enam";
  const name = relayName(env.MESH_NAME, hint, relayShard(env.SERVICE_NAME, src.colo, Number(env.EDGEMESH_RELAY_SHARDS ?? DEFAULT_RELAY_SHARDS)));
  return env.MESH_RELAY.get(env.MESH_RELAY.idFromName(name), { locationHint: hint }) as unknown as MeshControlRpc;
}

function debugEndpoint(request: Request, url: URL, env: SidecarEnv): Response | Promise<Response> {
  // The probe fetches any binding and the snapshot shows every endpoint: never open to all.
  if (!env.EDGEMESH_ADMIN_TOKEN) {
    return meshError(403, "x-edgemesh-denied-by", "admin-token-not-configured", {
      detail: "this sidecar's debug endpoints are disabled: set EDGEMESH_ADMIN_TOKEN on it and send authorization: Bearer <token>",
    });
  }
  if (!hasAdminToken(request.headers.get("authorization"), env.EDGEMESH_ADMIN_TOKEN)) {
    return meshError(401, "x-edgemesh-denied-by", "admin-token-required");
  }
  if (url.pathname === `${DEBUG_PREFIX}status`) {
    const s = snapshotStatus();
    return Response.json({
      service: env.SERVICE_NAME,
      mesh: env.MESH_NAME,
      isolateId: s.isolateId,
      snapshot: s.loaded
        ? { policyVersion: s.loaded.snapshot.policyVersion, generation: s.loaded.snapshot.generation, source: s.loaded.source, checkedAtMs: s.loaded.checkedAtMs }
        : null,
      revalidations: s.revalidations,
      failures: s.failures,
      lastError: s.lastError ?? null,
    });
  }
  if (url.pathname === `${DEBUG_PREFIX}telemetry`) return Response.json(telemetryStatus());
  if (url.pathname === `${DEBUG_PREFIX}snapshot`) {
    return Response.json(snapshotStatus().loaded?.snapshot ?? null);
  }
  if (url.pathname === `${DEBUG_PREFIX}outliers`) return Response.json(outlierReport(resilience.outliers, Date.now()));
  if (url.pathname === `${DEBUG_PREFIX}resilience`) {
    const snapshot = snapshotStatus().loaded?.snapshot;
    return Response.json({
      breaker: { active: breaker.active, pending: breaker.pending, rejectedPending: breaker.rejectedPending },
      retryBudget: snapshot ? budgetStatus(resilience.budget, snapshot.retryBudget, Date.now()) : null,
      endpointLoads: Object.fromEntries(allLoads()),
      mirror: mirrorStats,
    });
  }
  // The control plane's health checks of binding endpoints (see probe.ts).
  if (url.pathname === `${DEBUG_PREFIX}probe`) return probeBinding(url, env as unknown as Record<string, unknown>);
  return meshError(404, "x-edgemesh-error", "unknown-debug-endpoint", { known: [`${DEBUG_PREFIX}status`, `${DEBUG_PREFIX}snapshot`, `${DEBUG_PREFIX}outliers`, `${DEBUG_PREFIX}resilience`, `${DEBUG_PREFIX}telemetry`] });
}

async function handle(request: Request, env: SidecarEnv, ctx: ExecutionContext, trace: RequestTrace): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname.startsWith(DEBUG_PREFIX)) {
    trace.enabled = false;
    return debugEndpoint(request, url, env);
  }

  const colo = request.cf?.colo as string | undefined;
  trace.colo = colo ?? "";
  const loaded = await currentSnapshot(sourceFor(env, request.cf as RequestPlace | undefined), (p) => ctx.waitUntil(p));
  if (!loaded) {
    return meshError(503, "x-edgemesh-error", "no-snapshot", { detail: snapshotStatus().lastError ?? "control plane unreachable" });
  }
  const { snapshot } = loaded;
  if (snapshot.telemetry) {
    trace.enabled = snapshot.telemetry.enabled;
    trace.sampleInterval = snapshot.telemetry.sampleInterval;
    trace.countStreamedBytes = snapshot.telemetry.countStreamedBytes;
  }

  const facts: RequestFacts = { method: request.method, path: url.pathname, headers: request.headers, query: () => url.searchParams };
  const matched = matchRoute(loaded.routes, facts);
  if (!matched) return meshError(404, "x-edgemesh-no-route", "no-route-matched", { service: snapshot.service });
  const route = matched.route;
  trace.route = route.name;
  // Redirects and direct responses answer here: nothing is forwarded, so nothing is admitted.
  const answered = answerWithoutForwarding(route.filters, request.method, url);
  if (answered) return answered;

  const startedMs = Date.now();
  const fault = route.fault;
  const faultTargeted = fault !== undefined && faultApplies(fault, request.headers);
  if (faultTargeted && fault!.bypassRetries) {
    // Istio's way, when the policy asks for it: the fault answers for the whole request.
    // The delay still counts against the route's deadline, never beyond it.
    const decision = decideFault(fault!, Math.random);
    if (decision.delayMs > 0) await sleep(Math.min(decision.delayMs, route.timeoutMs));
    if (Date.now() >= startedMs + route.timeoutMs) {
      return meshError(504, "x-edgemesh-timeout", "route-timeout", { route: route.name, timeoutMs: route.timeoutMs });
    }
    if (decision.abortStatus > 0) return faultResponse(decision.abortStatus);
  }

  const subset = pickSubset(route.split);
  const members = snapshot.subsets[subset] ?? [];
  trace.subset = subset;

  // Admission comes before reading the body: a refused request must cost nothing, and a queued
  // one must not hold a buffered body while it waits.
  const admission = admit(breaker, snapshot.circuitBreaker);
  if (admission.kind === "rejected") {
    return meshError(503, "x-edgemesh-overloaded", admission.reason, { maxConcurrent: snapshot.circuitBreaker.maxConcurrent, maxPending: snapshot.circuitBreaker.maxPending });
  }
  if (admission.kind === "queued") {
    // The wait for a slot is part of the route's deadline.
    const waitMs = Math.max(0, startedMs + route.timeoutMs - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const granted = await Promise.race([admission.granted.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)))]);
    clearTimeout(timer);
    if (!granted && admission.cancel()) {
      return meshError(503, "x-edgemesh-overloaded", "pending-timeout", { maxConcurrent: snapshot.circuitBreaker.maxConcurrent, waitedMs: waitMs });
    }
  }

  let result: ProxyResult;
  try {
    const bindings = env as unknown as Record<string, unknown>;
    // A GET or HEAD sent with a body goes upstream without it (see body.ts).
    let headers = request.headers;
    let incoming = request.body;
    if (incoming && !methodAllowsBody(request.method)) {
      incoming = null;
      headers = new Headers(headers);
      headers.delete("content-length");
      headers.delete("transfer-encoding");
    }
    // Buffer the body only when something may replay it: a retry, a hedge or a mirror.
    const replayWanted = route.mirror !== undefined || ((route.retry.attempts > 0 || route.hedge !== undefined) && mayRetryMethod(route.retry, request.method));
    const body: BodyPlan = !incoming ? { kind: "none" }
      : replayWanted ? await planBody(incoming, headers.get("content-length"), route.retry.maxBufferBytes)
      : { kind: "stream", stream: incoming };
    if (body.kind === "buffered") trace.requestBytes = body.bytes.byteLength;
    // Header modifiers and rewrites of the route, then of the chosen destination.
    const upstream = shapeUpstream(route.filters, subset, url, headers);

    // Shadows only for admitted requests, so shedding load also sheds its mirror traffic.
    if (route.mirror && shouldMirror(route.mirror, Math.random())) {
      if (body.kind === "stream") mirrorStats.skippedUnbuffered++;
      else {
        const shadowEndpoint = pickMirrorEndpoint(route.mirror);
        const target = upstreamFor(shadowEndpoint, bindings);
        if (typeof target === "string") mirrorStats.failed++;
        else ctx.waitUntil(sendShadow(target, shadowEndpoint, upstream.url, request.method, upstream.headers, body.kind === "buffered" ? body.bytes : null, route.timeoutMs));
      }
    }

    result = await proxy(
      {
        snapshot, route, members, env: bindings, url: upstream.url, body, startedMs, headers: upstream.headers,
        method: request.method,
        colo: colo ?? "",
        hashKey: hashKeyOf(snapshot.loadBalancer, request.headers, facts.query),
        faultTargeted: faultTargeted && !fault!.bypassRetries,
        // Passive health: counted here, sent to the control plane in a batch with the next check-in.
        onTryEnded: recordOutcome,
      },
      resilience,
    );
  } finally {
    release(breaker);
  }
  trace.endpoint = result.endpoint >= 0 ? snapshot.endpoints[result.endpoint]!.id : "";
  trace.attempts = result.tries;
  trace.hedged = result.hedged;
  trace.reason = result.retryStoppedBy;

  const answer = shapeResponse(result.response, route.filters, subset);
  if (request.headers.get(DEBUG_HEADER) === null) return answer;
  const response = new Response(answer.body, answer);
  const h = response.headers;
  h.set("x-edgemesh-service", snapshot.service);
  h.set("x-edgemesh-route", route.name);
  h.set("x-edgemesh-subset", subset);
  h.set("x-edgemesh-endpoint", result.endpoint >= 0 ? snapshot.endpoints[result.endpoint]!.id : "");
  h.set("x-edgemesh-attempts", String(result.tries));
  h.set("x-edgemesh-caller", trace.source);
  if (result.hedged) h.set("x-edgemesh-hedged", "1");
  if (result.retryStoppedBy) h.set("x-edgemesh-retry-stopped-by", result.retryStoppedBy);
  h.set("x-edgemesh-snapshot-version", String(snapshot.policyVersion));
  h.set("x-edgemesh-snapshot-generation", String(snapshot.generation));
  return response;
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const trace = startTrace(request, callerOf(ctx.props), Date.now());
    let response: Response;
    try {
      response = await handle(request, env, ctx, trace);
    } catch (err) {
      // A broken request must never take the sidecar down.
      response = meshError(500, "x-edgemesh-error", "sidecar-internal-error", { detail: err instanceof Error ? err.message : String(err) });
    }
    return trace.enabled ? recordRequest(trace, response, env, ctx) : response;
  },
} satisfies ExportedHandler<SidecarEnv>;
